"""The HTTP control API, through one aiohttp session per link (or the application's).

Tower URLs may carry ``user:password@``: the credentials are sent as HTTP basic auth and are
removed from the URL that requests and errors see, so aiohttp's own exception texts cannot leak
them either.
"""

from __future__ import annotations

from urllib.parse import unquote, urlsplit, urlunsplit

import aiohttp
from kyoten.hardware.errors import TowerProtocolError, TowerRejected, TowerUnreachable
from kyoten.hardware.transport import ReplyNeeded


class HttpLink:
    """GET ``<base>/api/control?…`` and return the body."""

    def __init__(
        self, base_url: str, url: str, session: aiohttp.ClientSession | None = None
    ) -> None:
        parts = urlsplit(base_url)
        user, password = unquote(parts.username or ""), unquote(parts.password or "")
        self._headers = (
            {"Authorization": aiohttp.encode_basic_auth(user, password)} if user or password else {}
        )
        host = parts.hostname or ""
        netloc = f"[{host}]" if ":" in host else host
        if parts.port is not None:
            netloc += f":{parts.port}"
        self._base = urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))
        self._session = session
        self._own_session = session is None
        self.url = url

    async def exchange(self, request: bytes, needed: ReplyNeeded, timeout: float) -> bytes:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
            self._own_session = True
        target = self._base + request.decode("ascii")
        try:
            async with self._session.get(
                target, headers=self._headers, timeout=aiohttp.ClientTimeout(total=timeout)
            ) as response:
                body = await response.read()
        except TimeoutError:
            raise TowerUnreachable(self.url, f"no HTTP reply within {timeout}s") from None
        except aiohttp.ClientError as exc:
            raise TowerUnreachable(self.url, f"HTTP request failed: {type(exc).__name__}") from exc
        if response.status in (401, 403):
            raise TowerRejected(self.url, f"HTTP {response.status}: check the tower's credentials")
        if 400 <= response.status < 500 and response.status not in (408, 429):
            # the tower understood and refused (wrong path or prefix, unknown command):
            # sending the same request again cannot succeed
            raise TowerRejected(self.url, f"HTTP {response.status}: check the URL's path")
        if response.status != 200:
            raise TowerProtocolError(self.url, f"HTTP {response.status}")  # 5xx, 408, 429
        return body

    async def close(self) -> None:
        if self._own_session and self._session is not None:
            await self._session.close()
        self._session = None
