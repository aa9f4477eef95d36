"""Emulated towers on 127.0.0.1 and a real pty, started per test and always stopped."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from kyoten.hardware.emulator import (
    PROTOCOLS,
    EmulatedTower,
    PtyFrontEnd,
    TcpFrontEnd,
    WebFrontEnd,
)

FrontEnd = TcpFrontEnd | WebFrontEnd | PtyFrontEnd
StartEmulator = Callable[[str], Awaitable[tuple[EmulatedTower, FrontEnd]]]


@pytest.fixture
async def start_emulator() -> AsyncIterator[StartEmulator]:
    """``await start_emulator("pns-nh")`` → (tower, front end); ``serial`` gets a pty."""
    started: list[FrontEnd] = []

    async def start(protocol: str) -> tuple[EmulatedTower, FrontEnd]:
        tower = EmulatedTower(PROTOCOLS[protocol]())
        front: FrontEnd
        if protocol == "http":
            front = WebFrontEnd(tower)
        elif protocol == "serial":
            front = PtyFrontEnd(tower)
        else:
            front = TcpFrontEnd(tower)
        await front.start()
        started.append(front)
        return tower, front

    yield start
    for front in started:
        await front.stop()
