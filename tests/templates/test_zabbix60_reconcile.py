"""Reconciling open problems against the real Zabbix 6.0 API: the bridge holds open a problem
Zabbix never had (its events lost, as on the losing side of a split brain) and a real one that
Zabbix then resolves without the bridge hearing of it. The reconciliation, as a read-only user
with an API token of its own, closes both — and only once Zabbix no longer has them open — and
the tower goes back to calm green.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from kyoten.alerting import mediatype
from kyoten.alerting.app import OUTBOX, RECONCILE, create_app
from kyoten.alerting.config import parse_settings
from kyoten.hardware.emulator import EmulatedTower, TcpFrontEnd
from kyoten.hardware.model import Light, TowerState
from kyoten.hardware.protocol.pns import PnsNh
from kyoten.shell.lab.zabbix import Zabbix60, api_token, operator
from pytest_aiohttp import AiohttpClient

from .conftest import wait_until

pytestmark = pytest.mark.integration

GROUP = "kyoten reconcile probe"
HOST = "reconcile-probe"
TRIGGER = "kyoten reconcile probe"
READER = "kyoten-reconcile-reader"
READERS = "kyoten reconcile readers"
TOKEN = "reconcile-intake-token-0123456789"
LOST = "987654321"  # an event id this Zabbix never had
CALM = TowerState(green=Light.ON)


def _probe(zabbix: Zabbix60, api: Any) -> tuple[str, str]:
    """A trapper host with a High trigger, a problem on it, and a read-only user's API token:
    (the problem's event id, the token)."""
    from zabbix_utils import Sender

    found = api.hostgroup.get(filter={"name": GROUP}, output=["groupid"])
    gid = found[0]["groupid"] if found else api.hostgroup.create(name=GROUP)["groupids"][0]
    if not api.host.get(filter={"host": HOST}, output=["hostid"]):
        hostid = api.host.create(host=HOST, groups=[{"groupid": gid}])["hostids"][0]
        api.item.create(hostid=hostid, name="probe", key_="probe", type=2, value_type=3)
        api.trigger.create(description=TRIGGER, expression=f"last(/{HOST}/probe)>0", priority=4)
    (trigger,) = api.trigger.get(filter={"description": TRIGGER}, output=["triggerid"])
    userid = operator(api, READER, READERS, gid)
    (ugroup,) = api.usergroup.get(filter={"name": READERS}, output=["usrgrpid"])
    api.usergroup.update(usrgrpid=ugroup["usrgrpid"], rights=[{"permission": 2, "id": gid}])
    token = api_token(api, userid, f"reconcile {time.time_ns()}")

    sender = Sender(server="127.0.0.1", port=zabbix.port)
    zabbix.reload_config()
    wait_until(lambda: sender.send_value(HOST, "probe", 0).processed == 1, "the trapper", 60)
    wait_until(lambda: not api.problem.get(objectids=[trigger["triggerid"]]), "calm probe", 30)
    assert sender.send_value(HOST, "probe", 1).processed == 1
    (problem,) = wait_until(
        lambda: api.problem.get(objectids=[trigger["triggerid"]], output=["eventid"]),
        "the probe's problem",
        30,
        interval=0.5,
    )
    return str(problem["eventid"]), token


def _resolve(zabbix: Zabbix60, api: Any, eventid: str) -> None:
    from zabbix_utils import Sender

    assert Sender(server="127.0.0.1", port=zabbix.port).send_value(HOST, "probe", 0).processed
    wait_until(lambda: not api.problem.get(eventids=[eventid], output=["eventid"]),
               "the probe's problem to resolve", 30, interval=0.5)  # fmt: skip


@pytest.fixture
async def tower() -> AsyncIterator[tuple[EmulatedTower, TcpFrontEnd]]:
    emulated = EmulatedTower(PnsNh())
    front = TcpFrontEnd(emulated)
    await front.start()
    yield emulated, front
    await front.stop()


def _problem(eventid: str) -> dict[str, str]:
    return mediatype.render_payload(
        {
            "{EVENT.ID}": eventid,
            "{EVENT.NSEVERITY}": "4",
            "{EVENT.SOURCE}": "0",
            "{EVENT.NAME}": f"{TRIGGER} ({eventid})",
            "{EVENT.VALUE}": "1",
            "{EVENT.UPDATE.STATUS}": "0",
            "{EVENT.ACK.STATUS}": "No",
            "{HOST.NAME}": HOST,
            "{TRIGGER.HOSTGROUP.NAME}": GROUP,
        }
    )


async def test_problems_zabbix_no_longer_has_open_are_closed_and_the_tower_calms(
    zabbix60: Zabbix60,
    aiohttp_client: AiohttpClient,
    tmp_path: Path,
    tower: tuple[EmulatedTower, TcpFrontEnd],
) -> None:
    emulated, front = tower
    api = zabbix60.api()
    eventid, api_token_value = await asyncio.to_thread(_probe, zabbix60, api)
    (tmp_path / "zabbix.token").write_text(api_token_value + "\n")
    settings = parse_settings(
        {
            "token": TOKEN,
            "outbox": {"backend": "sqlite", "path": "bridge.db"},
            "poll_interval": 0.05,
            "zabbix_url": zabbix60.url.removesuffix("/api_jsonrpc.php"),
            "channels": {
                "noc-tower": {
                    "type": "tower",
                    "url": f"pns://127.0.0.1:{front.port}?model=nh",
                    "reassert": 1,
                    "timeout": 0.5,
                    "retries": 0,
                },
            },
            "routes": [{"channels": ["noc-tower"]}],
            "reconcile": {"token_file": "zabbix.token", "interval": 1, "grace": 0},
        },
        base=tmp_path,
    )
    client = await aiohttp_client(create_app(settings))
    for eid in (LOST, eventid):
        reply = await client.post(
            "/v1/events", json=_problem(eid), headers={"Authorization": f"Bearer {TOKEN}"}
        )
        assert reply.status == 202, await reply.text()
    await emulated.wait_for(lambda s: s != CALM, 5)  # the problems show
    outbox = client.app[OUTBOX]

    async def open_ids() -> list[str]:
        return [p.event_id for p in await outbox.open_problems("noc-tower")]

    # the lost event goes within a round or two; the real one stays while Zabbix has it open
    async with asyncio.timeout(10):
        while await open_ids() != [eventid]:
            await asyncio.sleep(0.2)
    loop = client.app[RECONCILE]
    rounds = loop.health()["last_run_at"]
    async with asyncio.timeout(5):
        while loop.health()["last_run_at"] == rounds:
            await asyncio.sleep(0.1)
    assert await open_ids() == [eventid]
    assert loop.health()["last_error"] is None

    await asyncio.to_thread(_resolve, zabbix60, api, eventid)  # the bridge is not told
    async with asyncio.timeout(10):
        while await open_ids():
            await asyncio.sleep(0.2)
    assert await emulated.wait_for(lambda s: s == CALM, 5) == CALM
    body = await (await client.get("/health")).json()
    assert body["reconcile"]["reconciled_total"] == 2
    assert body["channels"]["noc-tower"]["open_problems"] == 0
    assert api_token_value not in str(body)
