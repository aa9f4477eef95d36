"""The tower channel against the emulator on 127.0.0.1: policy → bytes → lamps, read-back,
drift, a dead tower tried once per apply, and the buzzer's deadline returned to the pipeline
(which acts on it: ``test_tower_e2e.py``)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest
from kyoten.alerting.channels.base import (
    ChannelError,
    ChannelResources,
    OpenProblem,
    StateChannel,
    StateSnapshot,
)
from kyoten.alerting.channels.tower import TowerChannel, build
from kyoten.alerting.config import ConfigError
from kyoten.alerting.events import Severity
from kyoten.hardware.emulator import EmulatedTower, TcpFrontEnd, WebFrontEnd
from kyoten.hardware.model import Light, TowerState
from kyoten.hardware.protocol.httpapi import HttpNh
from kyoten.hardware.protocol.phn import Phn
from kyoten.hardware.protocol.pns import PnsNh

RED_BLINK_BUZZ = TowerState(red=Light.BLINK, buzzer=1)


def disaster(*, acked: bool = False, at: float | None = None) -> OpenProblem:
    opened = time.time() if at is None else at
    return OpenProblem("101", Severity.DISASTER, "DB down", "db1", acked, opened, opened)


@pytest.fixture
async def emulator() -> AsyncIterator[tuple[EmulatedTower, TcpFrontEnd]]:
    tower = EmulatedTower(PnsNh())
    front = TcpFrontEnd(tower)
    await front.start()
    yield tower, front
    await front.stop()


@pytest.fixture
async def resources() -> AsyncIterator[ChannelResources]:
    async with aiohttp.ClientSession() as http:
        yield ChannelResources(http, logging.getLogger("test.tower"))


def snap(*problems: OpenProblem, muted: bool = False) -> StateSnapshot:
    return StateSnapshot(problems, muted, time.time())


async def test_disaster_ack_recovery_on_the_emulator(
    emulator: tuple[EmulatedTower, TcpFrontEnd], resources: ChannelResources
) -> None:
    emulated, front = emulator
    channel = build("noc", {"url": f"pns://127.0.0.1:{front.port}"}, resources)
    assert isinstance(channel, StateChannel)
    try:
        await channel.apply(snap(disaster()))
        assert emulated.state == RED_BLINK_BUZZ
        await channel.apply(snap(disaster(acked=True)))
        assert emulated.state == TowerState(red=Light.ON)
        await channel.apply(snap())
        assert emulated.state == TowerState(green=Light.ON)
        await channel.apply(snap(disaster(), muted=True))
        assert emulated.state == TowerState(red=Light.BLINK)
    finally:
        await channel.aclose()


async def test_a_changed_tower_is_noticed_and_corrected(
    emulator: tuple[EmulatedTower, TcpFrontEnd],
    resources: ChannelResources,
    caplog: pytest.LogCaptureFixture,
) -> None:
    emulated, front = emulator
    channel = build("noc", {"url": f"pns://127.0.0.1:{front.port}"}, resources)
    assert isinstance(channel, TowerChannel)
    try:
        await channel.apply(snap(disaster()))
        emulated.state = TowerState()  # power-cycled: comes back dark
        with caplog.at_level(logging.WARNING, "test.tower"):
            await channel.apply(snap(disaster()))  # the periodic re-assert
        assert emulated.state == RED_BLINK_BUZZ
        assert channel.drifts == 1
        assert "showed red=off" in caplog.text and "re-asserting" in caplog.text
        assert channel.health()["drifts"] == 1
    finally:
        await channel.aclose()


async def test_a_tower_that_does_not_hold_its_state_fails_the_apply(
    emulator: tuple[EmulatedTower, TcpFrontEnd], resources: ChannelResources
) -> None:
    emulated, front = emulator
    emulated.frozen = True  # ACKs every write, shows nothing
    channel = build("noc", {"url": f"pns://127.0.0.1:{front.port}"}, resources)
    try:
        with pytest.raises(ChannelError, match=r"acknowledged red=blink .* but shows red=off") as e:
            await channel.apply(snap(disaster()))
        assert e.value.retryable
    finally:
        await channel.aclose()


async def test_dead_tower_is_a_retryable_error_naming_it_then_recovers(
    emulator: tuple[EmulatedTower, TcpFrontEnd], resources: ChannelResources
) -> None:
    emulated, front = emulator
    url = f"pns://127.0.0.1:{front.port}"
    channel = build("noc", {"url": url, "timeout": 0.3, "retries": 0}, resources)
    try:
        await front.stop()
        with pytest.raises(ChannelError) as caught:
            await channel.apply(snap(disaster()))
        assert caught.value.retryable and caught.value.reason.startswith(f"{url}: connect")
        await front.start()
        await channel.apply(snap(disaster()))
        assert emulated.state == RED_BLINK_BUZZ
    finally:
        await channel.aclose()


async def test_apply_returns_the_buzzer_deadline_and_keeps_no_timer(
    emulator: tuple[EmulatedTower, TcpFrontEnd], resources: ChannelResources
) -> None:
    emulated, front = emulator
    settings = {"url": f"pns://127.0.0.1:{front.port}", "silence_after": 0.3}
    channel = build("noc", settings, resources)
    try:
        problem = disaster()
        at = await channel.apply(StateSnapshot((problem,), False, problem.opened_at))
        assert at == pytest.approx(problem.opened_at + 0.3)
        assert emulated.state == RED_BLINK_BUZZ
        await asyncio.sleep(0.5)  # past the deadline: the channel does nothing by itself
        assert emulated.history == [RED_BLINK_BUZZ]
        assert at is not None
        assert await channel.apply(StateSnapshot((problem,), False, at)) is None  # the lane's
        assert emulated.state == TowerState(red=Light.BLINK)
        assert await channel.apply(snap(disaster(acked=True))) is None  # nothing to silence
    finally:
        await channel.aclose()


async def test_the_bridge_tries_a_tower_once_per_apply(
    resources: ChannelResources, caplog: pytest.LogCaptureFixture
) -> None:
    """The pipeline retries a failed apply; a retry in the driver would hide the failure from
    ``/health`` and delay the pipeline's own backoff, so a configured ``retries`` is ignored."""
    connections = 0

    async def rebooting(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        writer.close()  # accepts and hangs up, like a tower half-way through booting

    server = await asyncio.start_server(rebooting, "127.0.0.1", 0)
    url = f"pns://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    try:
        with caplog.at_level(logging.WARNING, "test.tower"):
            channel = build("noc", {"url": url, "timeout": 0.5, "retries": 3}, resources)
        assert "retries: 3 ignored" in caplog.text
        assert channel.tower.retries == 0
        with pytest.raises(ChannelError, match=r"connection (closed|failed)") as caught:
            await channel.apply(snap(disaster()))
        assert caught.value.retryable
        assert connections == 1
        await channel.aclose()
    finally:
        server.close()
        await server.wait_closed()


async def test_http_tower_password_from_settings_is_used_and_never_shown(
    resources: ChannelResources,
) -> None:
    emulated = EmulatedTower(HttpNh())
    front = WebFrontEnd(emulated, credentials=("admin", "pa ss"))
    await front.start()
    url = f"http://127.0.0.1:{front.port}/"
    good = build("noc", {"url": url, "password": "pa ss"}, resources)
    bad = build("noc", {"url": url, "password": "nope!"}, resources)
    try:
        await good.apply(snap(disaster(acked=True)))
        assert emulated.state == TowerState(red=Light.ON)
        with pytest.raises(ChannelError) as caught:
            await bad.apply(snap())
        assert not caught.value.retryable
        assert "HTTP 401" in caught.value.reason and "nope" not in caught.value.reason
    finally:
        await good.aclose()
        await bad.aclose()
        await front.stop()


async def test_settings_errors_are_collected(resources: ChannelResources) -> None:
    with pytest.raises(ConfigError) as caught:
        build(
            "noc",
            {"url": "modbus://x", "colour": "red", "colours": {"high": "pink"}, "timeout": 0},
            resources,
        )
    text = "\n".join(caught.value.errors)
    assert "channels.noc.colour: unknown setting; expected one of buzzer, colours" in text
    assert "valid schemes: pns, phn, http" in text
    assert "colours.high: unknown colour 'pink'" in text
    assert "channels.noc.timeout: 0.0 s must be above 0 s; seconds per command" in text
    with pytest.raises(ConfigError, match="only HTTP towers take a password"):
        build("noc", {"url": "pns://h", "password": "x"}, resources)


async def test_registered_in_the_channel_registry() -> None:
    from kyoten.alerting.channels import load_builder

    assert load_builder("tower") is build
    await asyncio.sleep(0)


async def test_lamps_the_tower_lacks_are_warned_and_never_hide_the_rest(
    resources: ChannelResources, caplog: pytest.LogCaptureFixture
) -> None:
    emulated = EmulatedTower(Phn())  # red, amber, green only
    front = TcpFrontEnd(emulated)
    await front.start()
    url = f"phn://127.0.0.1:{front.port}"
    try:
        with caplog.at_level(logging.WARNING, "test.tower"):
            channel = build("rack", {"url": url}, resources)
            assert "no lamp for the colour of not_classified, information" in caplog.text
            info = OpenProblem("7", Severity.INFORMATION, "disk 80%", "db1", False, 0.0, 0.0)
            await channel.apply(snap(info, disaster()))
            assert emulated.state == RED_BLINK_BUZZ  # the Disaster shows; blue is dropped
            assert "has no blue lamp; not shown" in caplog.text
            assert channel.health()["not_shown"] == ["blue"]
        await channel.aclose()
        caplog.clear()
        with caplog.at_level(logging.WARNING, "test.tower"):
            fitted = build("rack", {"url": url, "colours": {"information": "green",
                                                            "not_classified": "green"}},
                           resources)  # fmt: skip
        assert caplog.text == ""
        await fitted.aclose()
        with pytest.raises(ConfigError, match=r"phn has buzzer patterns 1\.\.2, not 4"):
            build("rack", {"url": url, "buzzer": 4}, resources)
    finally:
        await front.stop()
