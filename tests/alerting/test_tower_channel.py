"""The tower channel against the emulator on 127.0.0.1: policy → bytes → lamps, read-back,
drift, a dead tower, and the buzzer's own deadline."""

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


class Store:
    """What the bridge's store would answer to ``resources.open_problems()``."""

    def __init__(self) -> None:
        self.problems: tuple[OpenProblem, ...] = ()

    async def open_problems(self) -> tuple[OpenProblem, ...]:
        return self.problems


@pytest.fixture
async def emulator() -> AsyncIterator[tuple[EmulatedTower, TcpFrontEnd]]:
    tower = EmulatedTower(PnsNh())
    front = TcpFrontEnd(tower)
    await front.start()
    yield tower, front
    await front.stop()


@pytest.fixture
async def resources() -> AsyncIterator[tuple[ChannelResources, Store]]:
    store = Store()
    async with aiohttp.ClientSession() as http:
        yield ChannelResources(http, store.open_problems, logging.getLogger("test.tower")), store


def snap(*problems: OpenProblem, muted: bool = False) -> StateSnapshot:
    return StateSnapshot(problems, muted, time.time())


async def test_disaster_ack_recovery_on_the_emulator(
    emulator: tuple[EmulatedTower, TcpFrontEnd], resources: tuple[ChannelResources, Store]
) -> None:
    emulated, front = emulator
    channel = build("noc", {"url": f"pns://127.0.0.1:{front.port}"}, resources[0])
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
    resources: tuple[ChannelResources, Store],
    caplog: pytest.LogCaptureFixture,
) -> None:
    emulated, front = emulator
    channel = build("noc", {"url": f"pns://127.0.0.1:{front.port}"}, resources[0])
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
    emulator: tuple[EmulatedTower, TcpFrontEnd], resources: tuple[ChannelResources, Store]
) -> None:
    emulated, front = emulator
    emulated.frozen = True  # ACKs every write, shows nothing
    channel = build("noc", {"url": f"pns://127.0.0.1:{front.port}"}, resources[0])
    try:
        with pytest.raises(ChannelError, match=r"acknowledged red=blink .* but shows red=off") as e:
            await channel.apply(snap(disaster()))
        assert e.value.retryable
    finally:
        await channel.aclose()


async def test_dead_tower_is_a_retryable_error_naming_it_then_recovers(
    emulator: tuple[EmulatedTower, TcpFrontEnd], resources: tuple[ChannelResources, Store]
) -> None:
    emulated, front = emulator
    url = f"pns://127.0.0.1:{front.port}"
    channel = build("noc", {"url": url, "timeout": 0.3, "retries": 0}, resources[0])
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


async def test_buzzer_stops_at_its_deadline_without_waiting_for_a_reassert(
    emulator: tuple[EmulatedTower, TcpFrontEnd], resources: tuple[ChannelResources, Store]
) -> None:
    emulated, front = emulator
    res, store = resources
    settings = {"url": f"pns://127.0.0.1:{front.port}", "silence_after": 0.3}
    channel = build("noc", settings, res)
    try:
        store.problems = (disaster(),)
        await channel.apply(snap(*store.problems))
        assert emulated.state.buzzer == 1
        shown = await emulated.wait_for(lambda s: s.buzzer == 0, timeout=3)
        assert shown == TowerState(red=Light.BLINK)
    finally:
        await channel.aclose()


async def test_http_tower_password_from_settings_is_used_and_never_shown(
    resources: tuple[ChannelResources, Store],
) -> None:
    emulated = EmulatedTower(HttpNh())
    front = WebFrontEnd(emulated, credentials=("admin", "pa ss"))
    await front.start()
    url = f"http://127.0.0.1:{front.port}/"
    good = build("noc", {"url": url, "password": "pa ss"}, resources[0])
    bad = build("noc", {"url": url, "password": "nope!"}, resources[0])
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


async def test_settings_errors_are_collected(resources: tuple[ChannelResources, Store]) -> None:
    with pytest.raises(ConfigError) as caught:
        build(
            "noc",
            {"url": "modbus://x", "colour": "red", "colours": {"high": "pink"}, "timeout": 0},
            resources[0],
        )
    text = "\n".join(caught.value.errors)
    assert "unknown key colour; valid: url, username, password" in text
    assert "valid schemes: pns, phn, http" in text
    assert "colours.high: unknown colour 'pink'" in text
    assert "timeout: must be positive seconds" in text
    with pytest.raises(ConfigError, match="only HTTP towers take a password"):
        build("noc", {"url": "pns://h", "password": "x"}, resources[0])


async def test_registered_in_the_channel_registry() -> None:
    from kyoten.alerting.channels import load_builder

    assert load_builder("tower") is build
    await asyncio.sleep(0)


async def test_lamps_the_tower_lacks_are_warned_and_never_hide_the_rest(
    resources: tuple[ChannelResources, Store], caplog: pytest.LogCaptureFixture
) -> None:
    emulated = EmulatedTower(Phn())  # red, amber, green only
    front = TcpFrontEnd(emulated)
    await front.start()
    url = f"phn://127.0.0.1:{front.port}"
    try:
        with caplog.at_level(logging.WARNING, "test.tower"):
            channel = build("rack", {"url": url}, resources[0])
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
                           resources[0])  # fmt: skip
        assert caplog.text == ""
        await fitted.aclose()
        with pytest.raises(ConfigError, match=r"phn has buzzer patterns 1\.\.2, not 4"):
            build("rack", {"url": url, "buzzer": 4}, resources[0])
    finally:
        await front.stop()
