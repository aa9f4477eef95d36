"""End to end: Zabbix webhook → bridge (real app, SQLite outbox, pipeline) → tower
channel → PNS over TCP → the emulator, with the emulator switched off and on again, a tower that
hangs up (retried by the pipeline, never by the driver), a power-cycled tower (drift in
``/health``), and the buzzer's silence deadline kept by the pipeline's state lane."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from kyoten.alerting import mediatype
from kyoten.alerting.app import create_app
from kyoten.alerting.config import parse_settings
from kyoten.hardware.emulator import EmulatedTower, TcpFrontEnd
from kyoten.hardware.model import Light, TowerState
from kyoten.hardware.protocol.phn import Phn
from kyoten.hardware.protocol.pns import PnsNh
from prometheus_client.parser import text_string_to_metric_families

TOKEN = "e2e-token-0123456789abcdef"
WAIT = 5.0  # every wait below is bounded by this

# What Zabbix resolves the macros to for one Disaster (see the media type's contract tests).
DISASTER = {
    "{EVENT.ID}": "9001",
    "{EVENT.NSEVERITY}": "5",
    "{EVENT.SOURCE}": "0",
    "{EVENT.NAME}": "Primary database down",
    "{EVENT.OPDATA}": "",
    "{EVENT.ACK.STATUS}": "No",
    "{EVENT.DATE}": "2026.11.28",
    "{EVENT.TIME}": "20:00:00",
    "{EVENT.TAGSJSON}": json.dumps([{"tag": "service", "value": "db"}]),
    "{HOST.NAME}": "db1.site-a",
    "{TRIGGER.HOSTGROUP.NAME}": "Databases",
    "{TRIGGER.ID}": "24001",
    "{TRIGGER.NAME}": "Primary database down",
    "{ALERT.SENDTO}": "noc",
    "{ALERT.SUBJECT}": "Problem: db down",
    "{ALERT.MESSAGE}": "body",
    "{EVENT.VALUE}": "1",
    "{EVENT.UPDATE.STATUS}": "0",
}
ACK = {
    **DISASTER,
    "{EVENT.ACK.STATUS}": "Yes",
    "{EVENT.UPDATE.STATUS}": "1",
    "{EVENT.UPDATE.ACTION}": "acknowledged",
    "{EVENT.UPDATE.MESSAGE}": "on it",
    "{EVENT.UPDATE.NSEVERITY}": "5",
    "{EVENT.UPDATE.DATE}": "2026.11.28",
    "{EVENT.UPDATE.TIME}": "20:01:00",
    "{USER.FULLNAME}": "Taro Sato (taro)",
}
RECOVERY = {
    **DISASTER,
    "{EVENT.VALUE}": "0",
    "{EVENT.RECOVERY.DATE}": "2026.11.28",
    "{EVENT.RECOVERY.TIME}": "20:05:00",
}


@pytest.fixture
async def tower() -> AsyncIterator[tuple[EmulatedTower, TcpFrontEnd]]:
    emulated = EmulatedTower(PnsNh())
    front = TcpFrontEnd(emulated)
    await front.start()
    yield emulated, front
    await front.stop()


def bridge_settings(tmp_path: Path, port: int, **tower: Any) -> Any:
    """The bridge with one tower channel; ``tower`` overrides its settings."""
    return parse_settings(
        {
            "token": TOKEN,
            "outbox": {"backend": "sqlite", "path": str(tmp_path / "bridge.db")},
            "poll_interval": 0.05,
            "retry": {"base": 0.1, "cap": 0.3},
            "channels": {
                "noc-tower": {
                    "type": "tower",
                    "url": f"pns://127.0.0.1:{port}?model=nh",
                    "reassert": 1,
                    "timeout": 0.3,
                    "retries": 0,
                    **tower,
                }
            },
            "routes": [{"channels": ["noc-tower"], "host_groups": ["Databases"]}],
        }
    )


async def post(client: TestClient[Any, Any], macros: dict[str, str]) -> None:
    reply = await client.post(
        "/v1/events",
        json=mediatype.render_payload(macros),
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    assert reply.status == 202, await reply.text()


async def health_until(
    client: TestClient[Any, Any], check: Callable[[dict[str, Any]], bool]
) -> dict[str, Any]:
    async with asyncio.timeout(WAIT):
        while True:
            body: dict[str, Any] = await (await client.get("/health")).json()
            if check(body["channels"]["noc-tower"]):
                return body
            await asyncio.sleep(0.05)


async def metric(client: TestClient[Any, Any], name: str, **labels: str) -> float | None:
    """One sample of ``/metrics`` (None when absent)."""
    text = await (await client.get("/metrics")).text()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return float(sample.value)
    return None


class HangingUpFront(TcpFrontEnd):
    """The emulator behind a front end that accepts and hangs up on connections while
    ``hang_up`` is set (a tower half-way through booting), counting them."""

    def __init__(self, tower: EmulatedTower) -> None:
        super().__init__(tower)
        self.hang_up = False
        self.hung_up = 0

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.hang_up:
            self.hung_up += 1
            writer.close()
            return
        await super()._serve(reader, writer)


class Clock:
    """The bridge's clock, moved by hand (whole seconds, so sums are exact)."""

    def __init__(self) -> None:
        self.now = float(int(time.time()))

    def __call__(self) -> float:
        return self.now


async def test_failing_tower_is_retried_by_the_pipeline_not_the_driver(
    aiohttp_client: Any, tmp_path: Path
) -> None:
    emulated = EmulatedTower(PnsNh())
    front = HangingUpFront(emulated)
    await front.start()
    try:
        # "retries: 2" is ignored: one connection per apply, whatever the file says
        settings = bridge_settings(tmp_path, front.port, reassert=3600, retries=2)
        client = await aiohttp_client(create_app(settings))
        await emulated.wait_for(lambda s: s == TowerState(green=Light.ON), WAIT)
        front.hang_up = True
        await post(client, DISASTER)
        body = await health_until(client, lambda ch: ch["state"] in ("failing", "paused"))
        channel = body["channels"]["noc-tower"]
        url = f"pns://127.0.0.1:{front.port}?model=nh"
        assert channel["last_error"].startswith(f"{url}: connection")
        assert channel["pending"] == 1 and body["status"] == "degraded"
        await asyncio.sleep(0.5)  # a few of the pipeline's retries (base 0.1 s, cap 0.3 s)
        front.hang_up = False
        alarm = TowerState(red=Light.BLINK, buzzer=1)
        assert await emulated.wait_for(lambda s: s == alarm, WAIT) == alarm
        body = await health_until(client, lambda ch: ch["state"] == "ok" and ch["pending"] == 0)
        assert body["channels"]["noc-tower"]["last_error"].startswith(f"{url}: connection")
        # every connection the tower hung up on was one attempt of the pipeline, which
        # counted it as a retry: the driver under it tried nothing more
        retries = await metric(
            client, "kyoten_bridge_deliveries_total", channel="noc-tower", outcome="retry"
        )
        assert front.hung_up >= 2
        assert retries == front.hung_up
    finally:
        await front.stop()


async def test_power_cycled_tower_shows_as_drift_in_health_and_metrics(
    aiohttp_client: Any, tmp_path: Path, tower: tuple[EmulatedTower, TcpFrontEnd]
) -> None:
    emulated, front = tower
    client = await aiohttp_client(create_app(bridge_settings(tmp_path, front.port)))
    green = TowerState(green=Light.ON)
    await emulated.wait_for(lambda s: s == green, WAIT)
    await health_until(client, lambda ch: ch["state"] == "ok")
    assert (await client.get("/health")).status == 200
    body = await (await client.get("/health")).json()
    assert body["channels"]["noc-tower"]["drifts"] == 0
    drifts = "kyoten_bridge_drifts_total"
    assert await metric(client, drifts, channel="noc-tower") == 0

    emulated.state = TowerState()  # power-cycled: back dark, still answering
    await emulated.wait_for(lambda s: s == green, WAIT)  # the re-assert (1 s) corrects it
    body = await health_until(client, lambda ch: ch["drifts"] == 1)
    assert body["status"] == "ok"  # corrected drift is reported, not a failure
    assert await metric(client, drifts, channel="noc-tower") == 1


async def test_buzzer_falls_silent_at_silence_after_through_the_state_lane(
    aiohttp_client: Any, tmp_path: Path, tower: tuple[EmulatedTower, TcpFrontEnd]
) -> None:
    """No event and the re-assert an hour away: only the deadline the channel returned makes
    the lane apply again, and it does so at ``silence_after`` on the bridge's clock."""
    emulated, front = tower
    clock = Clock()
    settings = bridge_settings(tmp_path, front.port, reassert=3600, silence_after=30)
    client = await aiohttp_client(create_app(settings, clock=clock))
    await emulated.wait_for(lambda s: s == TowerState(green=Light.ON), WAIT)
    await post(client, DISASTER)
    alarm = TowerState(red=Light.BLINK, buzzer=1)
    assert await emulated.wait_for(lambda s: s == alarm, WAIT) == alarm

    clock.now += 29
    await asyncio.sleep(0.3)  # several poll intervals: not due yet
    assert emulated.state == alarm
    clock.now += 1
    silent = TowerState(red=Light.BLINK)
    assert await emulated.wait_for(lambda s: s == silent, WAIT) == silent
    assert emulated.history[-2:] == [alarm, silent]


async def test_disaster_ack_recovery_outage_and_return(
    aiohttp_client: Any, tmp_path: Path, tower: tuple[EmulatedTower, TcpFrontEnd]
) -> None:
    emulated, front = tower
    client = await aiohttp_client(create_app(bridge_settings(tmp_path, front.port)))
    # start-up: nothing open → steady green
    await emulated.wait_for(lambda s: s == TowerState(green=Light.ON), WAIT)

    await post(client, DISASTER)
    red_alarm = TowerState(red=Light.BLINK, buzzer=1)
    assert await emulated.wait_for(lambda s: s == red_alarm, WAIT) == red_alarm

    await post(client, ACK)
    steady = TowerState(red=Light.ON)
    assert await emulated.wait_for(lambda s: s == steady, WAIT) == steady

    await post(client, RECOVERY)
    green = TowerState(green=Light.ON)
    assert await emulated.wait_for(lambda s: s == green, WAIT) == green

    # the tower loses power: it goes dark and stops answering; a new Disaster arrives
    await front.stop()
    emulated.state = TowerState()
    await post(client, {**DISASTER, "{EVENT.ID}": "9002"})
    body = await health_until(client, lambda ch: ch["state"] in ("failing", "paused"))
    channel = body["channels"]["noc-tower"]
    assert body["status"] == "degraded"
    assert channel["last_error"].startswith(f"pns://127.0.0.1:{front.port}?model=nh: connect")
    assert channel["pending"] >= 1

    # power back: the bridge's retry re-asserts the whole state, and health recovers
    await front.start()
    assert await emulated.wait_for(lambda s: s == red_alarm, WAIT) == red_alarm
    await health_until(client, lambda ch: ch["state"] == "ok" and ch["pending"] == 0)


async def test_each_tower_shows_only_its_own_routes(aiohttp_client: Any, tmp_path: Path) -> None:
    """Two towers, two protocols: the NOC tower takes everything, the DBA's PHN tower only
    Disasters; a High problem lights the first and leaves the second green."""
    noc, dba = EmulatedTower(PnsNh()), EmulatedTower(Phn())
    fronts = [TcpFrontEnd(noc), TcpFrontEnd(dba)]
    for front in fronts:
        await front.start()
    try:
        settings = parse_settings(
            {
                "token": TOKEN,
                "outbox": {"backend": "sqlite", "path": str(tmp_path / "bridge.db")},
                "poll_interval": 0.05,
                "channels": {
                    "noc": {"type": "tower", "url": f"pns://127.0.0.1:{fronts[0].port}"},
                    "dba": {"type": "tower", "url": f"phn://127.0.0.1:{fronts[1].port}"},
                },
                "routes": [
                    {"channels": ["noc"], "host_groups": ["Databases"], "continue": True},
                    {"channels": ["dba"], "host_groups": ["Databases"], "min_severity": 5},
                ],
            }
        )
        client = await aiohttp_client(create_app(settings))
        green = TowerState(green=Light.ON)
        await dba.wait_for(lambda s: s == green, WAIT)
        await post(client, {**DISASTER, "{EVENT.ID}": "9100", "{EVENT.NSEVERITY}": "4"})
        high = TowerState(red=Light.BLINK)
        assert await noc.wait_for(lambda s: s == high, WAIT) == high
        await post(client, {**DISASTER, "{EVENT.ID}": "9101"})
        alarm = TowerState(red=Light.BLINK, buzzer=1)
        assert await dba.wait_for(lambda s: s == alarm, WAIT) == alarm
        assert await noc.wait_for(lambda s: s == alarm, WAIT) == alarm
        assert green in dba.history and high not in dba.history
    finally:
        for front in fronts:
            await front.stop()
