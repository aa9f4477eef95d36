"""Issue 6 §6 end to end: Zabbix webhook → bridge (real app, SQLite outbox, pipeline) → tower
channel → PNS over TCP → the emulator, with the emulator switched off and on again."""

from __future__ import annotations

import asyncio
import json
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


def bridge_settings(tmp_path: Path, port: int) -> Any:
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
