"""Serial converters through pyserial's ``serial_for_url``, with blocking I/O off the loop.

``serial_for_url`` makes one code path serve a device (``/dev/ttyUSB0``), ``socket://`` (a
serial server), ``rfc2217://`` and ``loop://``. pyserial blocks, so each exchange runs whole in
a worker thread; a threading lock keeps a second exchange off the port even if the awaiting task
was cancelled while its thread still runs. The port stays open between commands (re-opening
a USB-serial adapter can take long and may toggle DTR) and is dropped on any error, so the next
command re-opens it: that is the reconnect.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Protocol, cast

import serial
from kyoten.hardware.errors import TowerUnreachable
from kyoten.hardware.transport import ReplyNeeded


class _Port(Protocol):
    """The part of a pyserial port this link uses (every URL handler has these)."""

    timeout: float | None

    def read(self, size: int = 1) -> bytes: ...
    def write(self, data: bytes, /) -> int | None: ...
    def flush(self) -> None: ...
    def reset_input_buffer(self) -> None: ...
    def close(self) -> None: ...


class SerialLink:
    """A serial tower at a pyserial URL, 8N1 without flow control."""

    def __init__(self, port_url: str, url: str, *, baudrate: int = 9600) -> None:
        self._port_url = port_url
        self._baudrate = baudrate
        self._port: _Port | None = None
        self._mutex = threading.Lock()
        self.url = url

    async def exchange(self, request: bytes, needed: ReplyNeeded, timeout: float) -> bytes:
        return await asyncio.to_thread(self._exchange_blocking, request, needed, timeout)

    def _exchange_blocking(self, request: bytes, needed: ReplyNeeded, timeout: float) -> bytes:
        with self._mutex:
            try:
                port = self._open(timeout)
                port.reset_input_buffer()  # a late reply to an earlier, timed-out command
                port.write(request)
                port.flush()
                deadline = time.monotonic() + timeout
                reply = b""
                while (missing := needed(reply)) > 0:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        got = reply.hex(" ") or "nothing"
                        raise TowerUnreachable(
                            self.url, f"no complete reply within {timeout}s (got {got})"
                        )
                    port.timeout = remaining
                    reply += port.read(missing)
                return reply
            except (serial.SerialException, OSError) as exc:
                self._drop()
                raise TowerUnreachable(self.url, f"serial I/O failed: {exc}") from exc
            except TowerUnreachable:
                self._drop()
                raise

    def _open(self, timeout: float) -> _Port:
        if self._port is None:
            port = serial.serial_for_url(
                self._port_url,
                baudrate=self._baudrate,
                bytesize=serial.EIGHTBITS,
                parity=serial.PARITY_NONE,
                stopbits=serial.STOPBITS_ONE,
                xonxoff=False,
                rtscts=False,
                timeout=timeout,
                write_timeout=timeout,
            )
            self._port = cast(_Port, port)
        return self._port

    def _drop(self) -> None:
        if self._port is not None:
            try:
                self._port.close()
            finally:
                self._port = None

    async def close(self) -> None:
        def locked_drop() -> None:
            with self._mutex:
                self._drop()

        await asyncio.to_thread(locked_drop)
