"""Each transport against the emulator: TCP on 127.0.0.1, HTTP, and a real pseudo-terminal."""

from __future__ import annotations

import asyncio
import time

import pytest
from kyoten.common.redact import redact_url
from kyoten.hardware.emulator import EmulatedTower, TcpFrontEnd, WebFrontEnd
from kyoten.hardware.errors import (
    TowerConfigError,
    TowerProtocolError,
    TowerRejected,
    TowerUnreachable,
    UnsupportedState,
)
from kyoten.hardware.model import Light, TowerState
from kyoten.hardware.protocol.phe import Phe
from kyoten.hardware.tower import open_tower

from .conftest import StartEmulator

RED_BLINK = TowerState(red=Light.BLINK, green=Light.ON, buzzer=1)

TCP_CASES = [
    ("pns-nh", "pns://127.0.0.1:{port}?model=nh"),
    ("pns-la6", "pns://127.0.0.1:{port}?model=la6"),
    ("pns-lr5", "pns://127.0.0.1:{port}?model=lr5"),
    ("phn", "phn://127.0.0.1:{port}"),
]


@pytest.mark.parametrize(("protocol", "template"), TCP_CASES)
async def test_tcp_set_status_clear(
    start_emulator: StartEmulator, protocol: str, template: str
) -> None:
    emulated, front = await start_emulator(protocol)
    assert isinstance(front, TcpFrontEnd)
    async with open_tower(template.format(port=front.port), timeout=2) as tower:
        await tower.set(RED_BLINK)
        assert emulated.state == RED_BLINK
        assert await tower.status() == RED_BLINK
        await tower.clear()
        assert emulated.state == TowerState()
    assert emulated.history == [RED_BLINK, TowerState()]


async def test_http_sends_credentials_but_never_shows_them(start_emulator: StartEmulator) -> None:
    emulated, front = await start_emulator("http")
    assert isinstance(front, WebFrontEnd)
    front.credentials = ("admin", "s3cret")
    await front.stop()
    await front.start()
    async with open_tower(f"http://admin:wrong@127.0.0.1:{front.port}/", timeout=2) as tower:
        with pytest.raises(TowerRejected, match="HTTP 401") as caught:
            await tower.set(RED_BLINK)
        assert "wrong" not in str(caught.value)
    async with open_tower(f"http://admin:s3cret@127.0.0.1:{front.port}/", timeout=2) as tower:
        assert "s3cret" not in tower.url
        await tower.set(RED_BLINK)
        assert emulated.state == RED_BLINK
        with pytest.raises(UnsupportedState):
            await tower.status()
        await tower.clear()
        assert emulated.state == TowerState()


async def test_serial_over_a_real_pty(start_emulator: StartEmulator) -> None:
    emulated, front = await start_emulator("serial")
    path = front.path
    assert path.startswith("/dev/")
    async with open_tower(f"serial://{path}?baud=9600", timeout=2) as tower:
        state = TowerState(red=Light.ON, amber=Light.BLINK2, buzzer=4)
        await tower.set(state)
        assert emulated.state == state
        assert await tower.status() == state
        await tower.clear()
        assert emulated.state == TowerState()


async def test_serial_through_a_pyserial_socket_url() -> None:
    """``socket://`` is a serial-device server: the converter's frames over plain TCP."""
    emulated = EmulatedTower(Phe())
    front = TcpFrontEnd(emulated)
    await front.start()
    try:
        async with open_tower(f"socket://127.0.0.1:{front.port}?id=??", timeout=2) as tower:
            await tower.set(TowerState(green=Light.ON))
            assert await tower.status() == TowerState(green=Light.ON)
    finally:
        await front.stop()


async def test_loop_url_echoes_our_frame_which_is_not_an_ack() -> None:
    async with open_tower("loop://", timeout=1, retries=0) as tower:
        with pytest.raises(TowerProtocolError, match=r"^loop://: serial: expected ACK"):
            await tower.set(TowerState(red=Light.ON))


async def test_nak_is_a_rejection_naming_the_tower(start_emulator: StartEmulator) -> None:
    _, front = await start_emulator("pns-la6")  # an AB tower refuses XX frames
    assert isinstance(front, TcpFrontEnd)
    url = f"pns://127.0.0.1:{front.port}?model=nh"
    async with open_tower(url, timeout=2) as tower:
        with pytest.raises(
            TowerRejected, match=rf"^{url.replace('?', '[?]')}: pns-nh: tower refused"
        ):
            await tower.set(RED_BLINK)


async def test_silent_tower_times_out_after_bounded_retries() -> None:
    connections = 0

    async def mute(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        await reader.read(100)
        await asyncio.sleep(1)
        writer.close()

    server = await asyncio.start_server(mute, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        tower = open_tower(f"pns://127.0.0.1:{port}", timeout=0.2, retries=2, backoff=0.05)
        started = time.monotonic()
        with pytest.raises(TowerUnreachable, match=rf"^pns://127.0.0.1:{port}: no complete reply"):
            await tower.set(RED_BLINK)
        assert connections == 3
        assert time.monotonic() - started < 2
    finally:
        server.close()
        await server.wait_closed()


async def test_retries_zero_is_one_attempt() -> None:
    """How the bridge opens a tower: a failure surfaces at once, for its pipeline to retry."""
    connections = 0

    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        writer.close()

    server = await asyncio.start_server(hang_up, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        tower = open_tower(f"pns://127.0.0.1:{port}", timeout=0.5, retries=0, backoff=0.05)
        with pytest.raises(TowerUnreachable, match=rf"^pns://127.0.0.1:{port}: connection"):
            await tower.set(RED_BLINK)
        assert connections == 1
    finally:
        server.close()
        await server.wait_closed()


async def test_tower_back_after_an_outage_is_reached_by_the_retry(
    start_emulator: StartEmulator,
) -> None:
    emulated, front = await start_emulator("pns-nh")
    assert isinstance(front, TcpFrontEnd)
    await front.stop()
    tower = open_tower(f"pns://127.0.0.1:{front.port}", timeout=0.5, retries=4, backoff=0.1)
    attempt = asyncio.create_task(tower.set(RED_BLINK))
    await asyncio.sleep(0.15)  # first attempts are refused while the tower is "off"
    assert not attempt.done()
    await front.start()
    await asyncio.wait_for(attempt, 5)
    assert emulated.state == RED_BLINK


async def test_one_command_in_flight_per_tower(start_emulator: StartEmulator) -> None:
    emulated, front = await start_emulator("pns-nh")
    assert isinstance(front, TcpFrontEnd)
    tower = open_tower(f"pns://127.0.0.1:{front.port}", timeout=2)
    states = [TowerState(buzzer=n % 5) for n in range(1, 21)]
    await asyncio.gather(*(tower.set(s) for s in states))
    assert emulated.requests == 20
    assert front.peak_clients == 1


async def test_unreachable_http_tower_error_does_not_leak_the_password() -> None:
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    url = f"http://admin:s3cret@127.0.0.1:{port}/"
    async with open_tower(url, timeout=0.5, retries=0) as tower:
        with pytest.raises(TowerUnreachable) as caught:
            await tower.set(RED_BLINK)
    text = str(caught.value)
    assert text.startswith(f"http://***@127.0.0.1:{port}/: ")
    assert "s3cret" not in text and "admin" not in text


def test_redact_url_and_bad_urls_name_the_choices() -> None:
    assert redact_url("http://u:p@host:81/x") == "http://***@host:81/x"
    assert redact_url("pns://host") == "pns://host"
    with pytest.raises(TowerConfigError, match="valid schemes: pns, phn, http, https, serial"):
        open_tower("modbus://host")
    with pytest.raises(TowerConfigError, match="valid models: nh, la6, lr5"):
        open_tower("pns://host?model=nh2")
    with pytest.raises(TowerConfigError, match="unknown option colour; valid options: model"):
        open_tower("pns://host?colour=red")
    with pytest.raises(TowerConfigError, match="no host"):
        open_tower("phn:///x")
