"""A signal tower: one codec, one transport, one command at a time.

:func:`open_tower` chooses both from the tower's URL::

    pns://host[:10000]?model=nh|la6|lr5[&tiers=red,amber,green]   PNS over TCP
    phn://host[:10000]                                             PHN over TCP
    http://[user:password@]host[:port][/prefix]                    NH HTTP control API
    serial:///dev/ttyUSB0[?baud=9600&id=??]                        serial converter (PHE/PHC)
    socket://host:port | rfc2217://host:port | loop://             the same, via pyserial URLs

:class:`Tower` holds a lock so only one command is ever in flight (the serial converters
require it and LA6 caps its connections at 8), and turns protocol refusals into errors that carry
the tower's redacted URL. It retries an unreachable tower with exponential backoff only for a
caller with no retry policy of its own: ``retries`` is the number of extra attempts, which the
``kyoten tower`` CLI (:mod:`kyoten.hardware.cli`, ``--retries``, default 2) uses for a person at a
terminal. The bridge's tower channel (:mod:`kyoten.alerting.channels.tower`) passes
``retries=0``: its pipeline retries a failed apply with its own backoff and shows the failure in
``/health``, and a retry underneath would only hide and delay it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from functools import partial
from types import TracebackType
from typing import TYPE_CHECKING, TypeVar
from urllib.parse import parse_qsl, urlsplit

from kyoten.common.redact import redact_url
from kyoten.hardware.errors import (
    TowerConfigError,
    TowerProtocolError,
    TowerRejected,
    TowerUnreachable,
)
from kyoten.hardware.model import TowerState
from kyoten.hardware.protocol import BadReply, Codec, Nak
from kyoten.hardware.protocol.httpapi import HttpNh
from kyoten.hardware.protocol.phe import Phe
from kyoten.hardware.protocol.phn import Phn
from kyoten.hardware.protocol.pns import PnsLa6, PnsLr5, PnsNh, parse_tiers
from kyoten.hardware.transport import Link

if TYPE_CHECKING:
    import aiohttp

T = TypeVar("T")
DEFAULT_PORT = 10000
PNS_MODELS = ("nh", "la6", "lr5")
PYSERIAL_SCHEMES = ("socket", "rfc2217", "loop")
SCHEMES = ("pns", "phn", "http", "https", "serial", *PYSERIAL_SCHEMES)


class Tower:
    """Drive one tower; use as ``async with open_tower(url) as tower: await tower.set(...)``.

    :param timeout: seconds per attempt of one command.
    :param retries: extra attempts after a :class:`~kyoten.hardware.errors.TowerUnreachable`
        (0: one attempt, as the bridge uses it), waiting ``backoff * 2**n`` up to ``max_backoff``
        in between. A refusal or a garbled reply is never retried.
    """

    def __init__(
        self,
        codec: Codec,
        link: Link,
        *,
        timeout: float = 3.0,
        retries: int = 2,
        backoff: float = 0.2,
        max_backoff: float = 5.0,
    ) -> None:
        self.codec = codec
        self.link = link
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self._lock = asyncio.Lock()

    @property
    def url(self) -> str:
        """The tower's URL without credentials."""
        return self.link.url

    @property
    def can_read(self) -> bool:
        """Whether :meth:`status` works for this protocol."""
        return self.codec.can_read

    async def set(self, state: TowerState) -> None:
        """Show ``state`` (the whole vector) on the tower."""
        request = self.codec.encode_set(state)
        self._judge(self.codec.check_ack, await self._exchange(request))

    async def clear(self) -> None:
        """Turn every lamp and the buzzer off."""
        self._judge(self.codec.check_ack, await self._exchange(self.codec.encode_clear()))

    async def status(self) -> TowerState:
        """Read back what the tower shows (raises UnsupportedState where it cannot be read)."""
        reply = await self._exchange(self.codec.encode_status())
        return self._judge(self.codec.decode_status, reply)

    async def _exchange(self, request: bytes) -> bytes:
        needed = partial(self.codec.reply_needed, request)
        async with self._lock:
            for attempt in range(self.retries + 1):
                try:
                    return await self.link.exchange(request, needed, self.timeout)
                except TowerUnreachable:
                    if attempt == self.retries:
                        raise
                await asyncio.sleep(min(self.backoff * 2**attempt, self.max_backoff))
        raise AssertionError("unreachable")  # pragma: no cover

    def _judge(self, check: Callable[[bytes], T], reply: bytes) -> T:
        try:
            return check(reply)
        except Nak as exc:
            refused = f"{self.codec.name}: tower refused the command ({exc})"
            raise TowerRejected(self.url, refused) from None
        except BadReply as exc:
            raise TowerProtocolError(self.url, f"{self.codec.name}: {exc}") from None

    async def close(self) -> None:
        """Release the transport (an open serial port, an owned HTTP session)."""
        await self.link.close()

    async def __aenter__(self) -> Tower:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()


def _options(url: str, query: str, allowed: tuple[str, ...]) -> dict[str, str]:
    options = dict(parse_qsl(query, keep_blank_values=True))
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        valid = ", ".join(allowed) or "none"
        raise TowerConfigError(
            f"{url}: unknown option {', '.join(unknown)}; valid options: {valid}"
        )
    return options


def build_codec(url: str) -> Codec:
    """The codec a tower URL selects (pure; also what the emulator uses for ``--protocol``)."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    safe = redact_url(url)
    if scheme == "pns":
        opts = _options(safe, parts.query, ("model", "tiers"))
        model = opts.get("model", "nh").lower()
        if model not in PNS_MODELS:
            raise TowerConfigError(
                f"{safe}: unknown PNS model {model!r}; valid models: {', '.join(PNS_MODELS)}"
            )
        if "tiers" in opts and model != "la6":
            raise TowerConfigError(f"{safe}: tiers= applies to model=la6 only")
        if model == "la6":
            return PnsLa6(tiers=parse_tiers(opts["tiers"])) if "tiers" in opts else PnsLa6()
        return PnsLr5() if model == "lr5" else PnsNh()
    if scheme == "phn":
        _options(safe, parts.query, ())
        return Phn()
    if scheme in ("http", "https"):
        _options(safe, parts.query, ())
        return HttpNh()
    if scheme == "serial" or scheme in PYSERIAL_SCHEMES:
        opts = _options(safe, parts.query, ("baud", "id"))
        return Phe(unit_id=opts.get("id", "??"))
    raise TowerConfigError(
        f"{safe}: unknown tower URL scheme {parts.scheme!r}; valid schemes: {', '.join(SCHEMES)}"
    )


def _link(url: str, *, connect_timeout: float, session: aiohttp.ClientSession | None) -> Link:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    safe = redact_url(url)
    if scheme in ("pns", "phn"):
        if not parts.hostname:
            raise TowerConfigError(f"{safe}: no host; expected {scheme}://host[:port]")
        from kyoten.hardware.transport.tcp import TcpLink

        return TcpLink(parts.hostname, parts.port or DEFAULT_PORT, safe, connect_timeout)
    if scheme in ("http", "https"):
        if not parts.hostname:
            raise TowerConfigError(f"{safe}: no host; expected {scheme}://host[:port]")
        from kyoten.hardware.transport.http import HttpLink

        return HttpLink(url, safe, session)
    from kyoten.hardware.transport.serialport import SerialLink

    opts = dict(parse_qsl(parts.query))
    baud = opts.get("baud", "9600")
    if not baud.isdigit():
        raise TowerConfigError(f"{safe}: baud must be a number, got {baud!r}")
    if scheme == "serial":
        if not parts.path:
            raise TowerConfigError(f"{safe}: no device; expected serial:///dev/ttyUSB0")
        port_url = parts.path
    else:  # hand pyserial its own URL without our options
        base, _, query = url.partition("?")
        rest = [p for p in query.split("&") if p and p.partition("=")[0] not in ("baud", "id")]
        port_url = base + ("?" + "&".join(rest) if rest else "")
    return SerialLink(port_url, safe, baudrate=int(baud))


def open_tower(
    url: str,
    *,
    timeout: float = 3.0,
    retries: int = 2,
    backoff: float = 0.2,
    session: aiohttp.ClientSession | None = None,
) -> Tower:
    """A :class:`Tower` for ``url``; nothing is connected until the first command."""
    codec = build_codec(url)
    link = _link(url, connect_timeout=timeout, session=session)
    return Tower(codec, link, timeout=timeout, retries=retries, backoff=backoff)
