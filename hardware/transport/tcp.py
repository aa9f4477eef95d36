"""PNS and PHN over TCP, one connection per command.

Every official sample and community client connects, sends one command, reads the reply and
closes; LA6-POE allows only 8 simultaneous PNS+PHN connections, and a held connection would
silently die across a tower power cycle. Connecting per command costs about a millisecond on a
LAN and makes every command start from a known state, so that is what this does.
"""

from __future__ import annotations

import asyncio
from contextlib import suppress
from dataclasses import dataclass

from kyoten.hardware.errors import TowerUnreachable
from kyoten.hardware.transport import ReplyNeeded


@dataclass
class TcpLink:
    """A TCP tower at ``host:port``; ``url`` is used in errors only."""

    host: str
    port: int
    url: str
    connect_timeout: float = 3.0

    async def exchange(self, request: bytes, needed: ReplyNeeded, timeout: float) -> bytes:
        try:
            async with asyncio.timeout(self.connect_timeout):
                reader, writer = await asyncio.open_connection(self.host, self.port)
        except TimeoutError:
            raise TowerUnreachable(
                self.url, f"connect timed out after {self.connect_timeout}s"
            ) from None
        except OSError as exc:
            raise TowerUnreachable(self.url, f"connect failed: {exc.strerror or exc}") from exc
        reply = b""
        try:
            async with asyncio.timeout(timeout):
                writer.write(request)
                await writer.drain()
                while (missing := needed(reply)) > 0:
                    chunk = await reader.read(missing)
                    if not chunk:
                        raise TowerUnreachable(
                            self.url, f"connection closed after {len(reply)} reply bytes"
                        )
                    reply += chunk
            return reply
        except TimeoutError:
            got = reply.hex(" ") or "nothing"
            raise TowerUnreachable(
                self.url, f"no complete reply within {timeout}s (got {got})"
            ) from None
        except OSError as exc:
            raise TowerUnreachable(self.url, f"connection failed: {exc.strerror or exc}") from exc
        finally:
            writer.close()
            with suppress(OSError):
                await writer.wait_closed()

    async def close(self) -> None:
        """Nothing is held between commands."""
