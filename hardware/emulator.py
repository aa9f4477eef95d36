"""A tower that answers exactly like the real ones, for tests, the demo and commissioning.

The emulator reuses the *tower half* of the same codecs the bridge encodes with (see
:mod:`kyoten.hardware.protocol`), so it speaks the real bytes: PNS (NH, LA6, LR5) and PHN over
TCP, the HTTP control API, and the serial converters' ASCII frames on a pseudo-terminal that
pyserial opens like a USB-serial adapter. It keeps the lamp state, reports each change once
(the CLI prints one line per change), and can show the tower on a small auto-refreshing page.

Front ends can be stopped and started again on the same address, which is how tests play a
tower that loses power and comes back.
"""

from __future__ import annotations

import asyncio
import html
import os
import tty
from collections.abc import Callable
from contextlib import suppress

import aiohttp
from aiohttp import web
from kyoten.hardware.model import COLOURS, Light, TowerState
from kyoten.hardware.protocol import Codec
from kyoten.hardware.protocol.httpapi import HttpNh
from kyoten.hardware.protocol.phe import Phe
from kyoten.hardware.protocol.phn import Phn
from kyoten.hardware.protocol.pns import PnsLa6, PnsLr5, PnsNh

#: ``--protocol`` name → codec factory (``serial`` is the one ``--pty`` serves)
PROTOCOLS: dict[str, Callable[[], Codec]] = {
    "pns-nh": PnsNh,
    "pns-la6": PnsLa6,
    "pns-lr5": PnsLr5,
    "phn": Phn,
    "http": HttpNh,
    "serial": Phe,
}
IDLE_TIMEOUT = 60.0  # a client that connects and says nothing is dropped after this


class EmulatedTower:
    """The lamp state and its history; every front end feeds requests through :meth:`handle`."""

    def __init__(self, codec: Codec, on_change: Callable[[TowerState], None] | None = None) -> None:
        self.codec = codec
        self.state = TowerState()
        self.history: list[TowerState] = []
        self.requests = 0
        #: fault to inject: acknowledge writes but keep showing the old state, as an LA6 does
        #: whose control mode was switched away from command control
        self.frozen = False
        self._on_change = on_change
        self._changed = asyncio.Event()

    def handle(self, request: bytes) -> bytes:
        """Answer one complete request and apply it."""
        self.requests += 1
        reply, state = self.codec.answer(request, self.state)
        if state != self.state and not self.frozen:
            self.state = state
            self.history.append(state)
            if self._on_change is not None:
                self._on_change(state)
            # wake every waiter, and give later waiters a fresh event
            self._changed.set()
            self._changed = asyncio.Event()
        return reply

    async def wait_for(self, predicate: Callable[[TowerState], bool], timeout: float) -> TowerState:
        """Wait (bounded) until the shown state satisfies ``predicate``; for tests and demos."""
        async with asyncio.timeout(timeout):
            while not predicate(self.state):
                await self._changed.wait()
        return self.state


class TcpFrontEnd:
    """PNS/PHN over TCP; several commands per connection are answered in turn."""

    def __init__(self, tower: EmulatedTower, host: str = "127.0.0.1", port: int = 0) -> None:
        self.tower = tower
        self.host = host
        self.port = port
        self._server: asyncio.Server | None = None
        self._clients: set[asyncio.StreamWriter] = set()
        #: most connections open at once (a real LA6 refuses a 9th; tests check the bridge's lock)
        self.peak_clients = 0

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._clients.add(writer)
        self.peak_clients = max(self.peak_clients, len(self._clients))
        buffer = b""
        try:
            while True:
                while (missing := self.tower.codec.request_needed(buffer)) > 0:
                    async with asyncio.timeout(IDLE_TIMEOUT):
                        chunk = await reader.read(missing)
                    if not chunk:
                        return
                    buffer += chunk
                writer.write(self.tower.handle(buffer))
                buffer = b""
                await writer.drain()
        except (TimeoutError, OSError):
            pass
        finally:
            self._clients.discard(writer)
            writer.close()

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for writer in list(self._clients):
                writer.close()
            await self._server.wait_closed()
            self._server = None


def _page(tower: EmulatedTower, title: str) -> str:
    lamps = []
    for colour, light in zip(COLOURS, tower.state.lights(), strict=True):
        style = "off" if light is Light.OFF else light.value
        lamps.append(f'<div class="lamp {colour.value} {style}" title="{colour.value}"></div>')
    buzzer = f"buzzer pattern {tower.state.buzzer}" if tower.state.buzzer else "buzzer silent"
    return f"""<!doctype html><html><head><meta charset="utf-8">
<meta http-equiv="refresh" content="1"><title>{html.escape(title)}</title><style>
body{{font-family:sans-serif;background:#222;color:#eee}} .tower{{width:90px}}
.lamp{{height:50px;margin:4px;border-radius:8px;opacity:.15}}
.on,.blink,.blink2{{opacity:1}} .blink{{animation:b 1s steps(1) infinite}}
.blink2{{animation:b .4s steps(1) infinite}} @keyframes b{{50%{{opacity:.15}}}}
.red{{background:#e22}} .amber{{background:#fa0}} .green{{background:#2c2}}
.blue{{background:#26f}} .white{{background:#fff}}</style></head><body>
<h3>{html.escape(title)}</h3><div class="tower">{"".join(lamps)}</div>
<p>{buzzer}</p><p><code>{html.escape(tower.state.describe())}</code></p></body></html>"""


def web_app(
    tower: EmulatedTower, title: str, credentials: tuple[str, str] | None = None
) -> web.Application:
    """``/`` shows the tower, ``/state`` returns it as JSON; HTTP towers also get the API,
    behind basic auth when ``credentials`` are given (as a tower with a password set)."""

    async def page(request: web.Request) -> web.Response:
        return web.Response(text=_page(tower, title), content_type="text/html")

    async def state(request: web.Request) -> web.Response:
        lights = {
            c.value: light.value for c, light in zip(COLOURS, tower.state.lights(), strict=True)
        }
        return web.json_response({**lights, "buzzer": tower.state.buzzer})

    async def control(request: web.Request) -> web.Response:
        if credentials is not None:
            expected = aiohttp.encode_basic_auth(*credentials)
            if request.headers.get("Authorization") != expected:
                return web.Response(status=401, text="Unauthorized")
        return web.Response(text=tower.handle(request.path_qs.encode()).decode())

    app = web.Application()
    app.router.add_get("/", page)
    app.router.add_get("/state", state)
    if isinstance(tower.codec, HttpNh):
        app.router.add_get("/api/control", control)
    return app


class WebFrontEnd:
    """The HTTP control API and/or the status page on one address."""

    def __init__(
        self,
        tower: EmulatedTower,
        host: str = "127.0.0.1",
        port: int = 0,
        credentials: tuple[str, str] | None = None,
    ) -> None:
        self.tower = tower
        self.host = host
        self.port = port
        self.credentials = credentials
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        title = f"kyoten tower emulator ({self.tower.codec.name})"
        self._runner = web.AppRunner(web_app(self.tower, title, self.credentials), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True)
        await site.start()
        self.port = int(self._runner.addresses[0][1])

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


class PtyFrontEnd:
    """A serial converter on a pseudo-terminal; :attr:`path` is what a client opens."""

    def __init__(self, tower: EmulatedTower) -> None:
        self.tower = tower
        self.path = ""
        self._master = -1
        self._slave = -1
        self._buffer = b""

    async def start(self) -> None:
        self._master, self._slave = os.openpty()
        # raw: no echo, no line editing, so the line carries exactly the converter's bytes;
        # the emulator keeps the slave open so the master never sees EIO between clients
        tty.setraw(self._slave)
        os.set_blocking(self._master, False)
        self.path = os.ttyname(self._slave)
        asyncio.get_running_loop().add_reader(self._master, self._readable)

    def _readable(self) -> None:
        try:
            self._buffer += os.read(self._master, 256)
        except (BlockingIOError, OSError):
            return
        codec = self.tower.codec
        while self._buffer and codec.request_needed(self._buffer) == 0:
            end = self._buffer.find(b"!") + 1 or len(self._buffer)
            request, self._buffer = self._buffer[:end], self._buffer[end:]
            reply = self.tower.handle(request)
            if reply:
                os.write(self._master, reply)

    async def stop(self) -> None:
        if self._master >= 0:
            asyncio.get_running_loop().remove_reader(self._master)
            for fd in (self._master, self._slave):
                with suppress(OSError):
                    os.close(fd)
            self._master = self._slave = -1
