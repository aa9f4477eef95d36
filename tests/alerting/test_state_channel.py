"""State channels (towers) through the real pipeline: snapshots of the open problems, kept in
the durable store, rebuilt after a restart, retried on failure (and shown in ``/health`` and the
metrics), re-asserted without events, and applied again when the channel said it would change."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from kyoten.alerting.app import create_app
from kyoten.alerting.channels import REGISTRY
from kyoten.alerting.channels.base import (
    ChannelError,
    ChannelResources,
    StateChannel,
    StateSnapshot,
)
from kyoten.alerting.events import Severity
from prometheus_client.parser import text_string_to_metric_families
from pytest_aiohttp import AiohttpClient

from .conftest import AUTH, bridge_config, eventually, payload, settings_of


class Board:
    """A state channel that records what it was asked to show; with ``change_in`` it says that
    what it shows changes by itself that many seconds after each apply."""

    def __init__(self, name: str, resources: ChannelResources, change_in: float | None) -> None:
        self.name = name
        self.resources = resources
        self.change_in = change_in
        self.shown: list[StateSnapshot] = []
        self.failures = 0

    async def apply(self, snapshot: StateSnapshot) -> float | None:
        if self.failures:
            self.failures -= 1
            raise ChannelError("board unreachable", retryable=True)
        self.shown.append(snapshot)
        return None if self.change_in is None else snapshot.now + self.change_in

    async def aclose(self) -> None:
        return None

    def last(self) -> dict[str, tuple[Severity, bool]]:
        return {p.event_id: (p.severity, p.acknowledged) for p in self.shown[-1].problems}


@pytest.fixture
def boards(monkeypatch: pytest.MonkeyPatch) -> list[Board]:
    built: list[Board] = []

    def build(name: str, settings: Mapping[str, Any], resources: ChannelResources) -> Board:
        board = Board(name, resources, settings.get("change_in"))
        built.append(board)
        return board

    monkeypatch.setitem(REGISTRY, "board", build)
    return built


def config(tmp_path: Path, **policy: Any) -> dict[str, Any]:
    doc = bridge_config(tmp_path, None, None)
    doc["channels"] = {"board": {"type": "board", **policy}}
    doc["routes"] = [{"min_severity": "high", "channels": ["board"]}]
    return doc


async def test_snapshot_follows_problems_updates_and_recoveries(
    aiohttp_client: AiohttpClient, tmp_path: Path, boards: list[Board]
) -> None:
    client = await aiohttp_client(create_app(settings_of(config(tmp_path), tmp_path)))
    (board,) = boards
    assert isinstance(board, StateChannel)
    await eventually(lambda: len(board.shown) >= 1)  # start-up apply, nothing open
    assert board.last() == {}

    await client.post("/v1/events", json=payload("1"), headers=AUTH)
    await client.post("/v1/events", json=payload("2", **{"{EVENT.NSEVERITY}": "5"}), headers=AUTH)
    low = await client.post(
        "/v1/events", json=payload("3", **{"{EVENT.NSEVERITY}": "2"}), headers=AUTH
    )
    assert (await low.json())["channels"] == []  # not routed to the board
    await eventually(lambda: board.last().keys() == {"1", "2"})
    assert board.last()["2"] == (Severity.DISASTER, False)

    await client.post("/v1/events", json=payload("1", "update"), headers=AUTH)
    await eventually(lambda: board.last().get("1") == (Severity.HIGH, True))
    await client.post("/v1/events", json=payload("2", "recovery"), headers=AUTH)
    await eventually(lambda: board.last().keys() == {"1"})
    closed = payload(
        "1", "update", **{"{EVENT.UPDATE.ACTION}": "closed", "{EVENT.UPDATE.TIME}": "19:50:00"}
    )
    await client.post("/v1/events", json=closed, headers=AUTH)
    await eventually(lambda: board.last() == {})


async def test_state_is_rebuilt_from_the_store_after_a_restart(
    aiohttp_client: AiohttpClient, tmp_path: Path, boards: list[Board]
) -> None:
    settings = settings_of(config(tmp_path), tmp_path)
    first = await aiohttp_client(create_app(settings))
    await first.post("/v1/events", json=payload("7"), headers=AUTH)
    await first.post("/v1/events", json=payload("8"), headers=AUTH)
    await first.post("/v1/events", json=payload("7", "update"), headers=AUTH)
    await eventually(lambda: boards[0].shown != [] and boards[0].last().keys() == {"7", "8"})
    await first.close()

    await aiohttp_client(create_app(settings))  # a new process would do the same
    second = boards[1]
    await eventually(lambda: second.shown != [])
    assert second.last() == {"7": (Severity.HIGH, True), "8": (Severity.HIGH, False)}


async def test_failed_apply_is_retried_and_state_reasserted(
    aiohttp_client: AiohttpClient, tmp_path: Path, boards: list[Board]
) -> None:
    client = await aiohttp_client(create_app(settings_of(config(tmp_path, reassert=1), tmp_path)))
    (board,) = boards
    await eventually(lambda: len(board.shown) >= 1)
    board.failures = 2
    await client.post("/v1/events", json=payload("9"), headers=AUTH)
    await eventually(lambda: bool(board.shown) and board.last().keys() == {"9"})
    assert board.failures == 0
    n = len(board.shown)
    await asyncio.sleep(1.3)  # no event: the re-assert alone applies the state again
    assert len(board.shown) > n and board.last().keys() == {"9"}

    board.failures = 1000  # the board goes away: a failing re-assert shows in /health
    await asyncio.sleep(1.3)
    health = await (await client.get("/health")).json()
    assert health["channels"]["board"]["state"] in ("failing", "paused")
    assert health["channels"]["board"]["last_error"] == "board unreachable"
    assert health["status"] == "degraded"
    assert "drifts" not in health["channels"]["board"]  # only for channels that read back
    # the failed re-asserts count as retries, like failed deliveries (2 were the event's)
    metrics = await (await client.get("/metrics")).text()
    assert sample(metrics, "kyoten_bridge_channel_failing", channel="board") == 1
    assert sample(metrics, "kyoten_bridge_deliveries_total", channel="board", outcome="retry") > 2


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample in Prometheus text (0 when absent)."""
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and s.labels == labels:
                return float(s.value)
    return 0.0


class Clock:
    """The pipeline's clock, moved by hand (whole seconds, so sums are exact)."""

    def __init__(self) -> None:
        self.now = float(int(time.time()))

    def __call__(self) -> float:
        return self.now


async def test_lane_applies_again_at_the_time_apply_returned(
    aiohttp_client: AiohttpClient, tmp_path: Path, boards: list[Board]
) -> None:
    """No event and the re-assert an hour away: the channel's own next change alone makes the
    lane call ``apply`` again, with a fresh snapshot at that time."""
    clock = Clock()
    settings = settings_of(config(tmp_path, reassert=3600, change_in=60), tmp_path)
    await aiohttp_client(create_app(settings, clock=clock))
    (board,) = boards
    await eventually(lambda: len(board.shown) >= 1)
    started = board.shown[0].now
    clock.now += 59
    await asyncio.sleep(0.3)  # several poll intervals: not due yet
    assert len(board.shown) == 1
    clock.now += 1
    await eventually(lambda: len(board.shown) == 2)
    assert board.shown[1].now == started + 60
