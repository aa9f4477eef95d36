"""Acknowledge and close from Slack, for real: the local Socket Mode fake hands out a button
click, the bridge's :class:`~kyoten.alerting.slack_actions.SlackActions` calls the real Zabbix 6.0
API (``event.acknowledge``) as the Zabbix user mapped from the Slack user, with that user's own
API token, and ``event.get`` shows the problem acknowledged by that user (then closed).

The operator is a plain *User role* user with read-write on the probe's host group — never the
Super admin — and an unmapped Slack user or an event that does not exist changes nothing.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from kyoten.alerting.channels.slack_blocks import ACK, CLOSE
from kyoten.alerting.devtools.socket_mode_fake import SocketModeFake
from kyoten.alerting.slack_actions import ActionsConfig, SlackActions, UserMapping
from kyoten.shell.lab.zabbix import Zabbix60, api_token, operator
from pytest_aiohttp import AiohttpServer

from .conftest import wait_until

pytestmark = pytest.mark.integration

GROUP = "kyoten ack probe"
HOST = "ack-probe"
OPERATOR = "kyoten-noc-hanako"


class SlackApi:
    """The two Web API methods Socket Mode needs (the full fake is in tests/alerting)."""

    def __init__(self) -> None:
        self.socket = SocketModeFake()
        self.ephemerals: list[dict[str, Any]] = []
        self.app = web.Application()
        self.app.router.add_post("/api/{method}", self._api)
        self.socket.install(self.app)

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        if method == "apps.connections.open":
            return web.json_response(
                self.socket.open_connection(request.headers.get("Authorization", ""))
            )
        data = await request.json() if request.content_type == "application/json" else {}
        if method == "chat.postEphemeral":
            self.ephemerals.append(dict(data))
        return web.json_response({"ok": True})


def _probe(api: Any) -> tuple[str, str, str]:
    """Host group, host with a trapper item, a Disaster trigger that allows manual close, and
    the operator (User role, read-write on the group) with an API token: (groupid, triggerid,
    operator's token)."""
    found = api.hostgroup.get(filter={"name": GROUP}, output=["groupid"])
    gid = found[0]["groupid"] if found else api.hostgroup.create(name=GROUP)["groupids"][0]
    if not api.host.get(filter={"host": HOST}, output=["hostid"]):
        hostid = api.host.create(host=HOST, groups=[{"groupid": gid}])["hostids"][0]
        api.item.create(hostid=hostid, name="probe", key_="probe", type=2, value_type=3)
        api.trigger.create(
            description="kyoten ack probe",
            expression=f"last(/{HOST}/probe)>0",
            priority=5,
            type=1,  # one event per value > 0: each test run opens a fresh problem
            manual_close=1,
            tags=[{"tag": "manual_close", "value": "yes"}],
        )
    (trigger,) = api.trigger.get(filter={"description": "kyoten ack probe"}, output=["triggerid"])
    userid = operator(api, OPERATOR, "kyoten ack operators", gid)
    return gid, trigger["triggerid"], api_token(api, userid, f"slack {time.time_ns()}")


def _fire(zabbix: Zabbix60, api: Any, triggerid: str) -> str:
    """Send a value, wait for the new problem; its event id."""
    from zabbix_utils import Sender

    before = {p["eventid"] for p in api.problem.get(objectids=[triggerid], output=["eventid"])}
    sender = Sender(server="127.0.0.1", port=zabbix.port)
    zabbix.reload_config()
    wait_until(lambda: sender.send_value(HOST, "probe", time.time_ns()).processed == 1,
               "the trapper value", 60)  # fmt: skip

    def fresh() -> list[str]:
        now = {p["eventid"] for p in api.problem.get(objectids=[triggerid], output=["eventid"])}
        return sorted(now - before)

    return str(wait_until(fresh, "the probe's problem", 60)[-1])


@pytest.fixture
async def slack_api(aiohttp_server: AiohttpServer) -> AsyncIterator[SlackApi]:
    fake = SlackApi()
    server = await aiohttp_server(fake.app, host="127.0.0.1")
    fake.socket.set_base("127.0.0.1", server.port)
    fake.base_url = f"http://127.0.0.1:{server.port}/api/"  # type: ignore[attr-defined]
    yield fake


async def test_acknowledge_and_close_from_slack_reach_the_real_zabbix(
    zabbix60: Zabbix60, slack_api: SlackApi
) -> None:
    api = zabbix60.api()
    _, triggerid, token = await asyncio.to_thread(_probe, api)
    eventid = await asyncio.to_thread(_fire, zabbix60, api, triggerid)
    cfg = ActionsConfig(
        app_token="xapp-1-lab-app-token",
        bot_token="xoxb-lab-bot-token",
        slack_channel="noc-slack",
        api_url=zabbix60.url,
        users={"U0HANAKO": UserMapping("U0HANAKO", OPERATOR, token)},
        base_url=slack_api.base_url,  # type: ignore[attr-defined]
        timeout=20,
    )
    sock = slack_api.socket

    async def click(user: str, verb: str, value: str, answers: int) -> str:
        envelope = await sock.click(user=user, action_id=verb, value=value)
        assert await sock.wait_ack(envelope), "Slack wants the envelope acked within 3 s"
        for _ in range(300):
            if len(slack_api.ephemerals) >= answers:
                return str(slack_api.ephemerals[answers - 1]["text"])
            await asyncio.sleep(0.1)
        raise AssertionError("no ephemeral answer")

    def event() -> dict[str, Any]:
        (found,) = api.event.get(
            eventids=[eventid], output=["acknowledged", "r_eventid"], select_acknowledges="extend"
        )
        return dict(found)

    async with aiohttp.ClientSession() as http:
        actions = SlackActions(cfg, http)
        await actions.start()
        try:
            for _ in range(100):
                if actions.health.state == "connected":
                    break
                await asyncio.sleep(0.1)
            assert actions.health.state == "connected", actions.health.as_dict()

            text = await click("U0STRANGER", ACK, eventid, 1)
            assert "not mapped to a Zabbix user" in text
            text = await click("U0HANAKO", ACK, "99999999", 2)  # no such event: Zabbix says no
            assert "Zabbix refused it as" in text
            assert event()["acknowledged"] == "0"

            text = await click("U0HANAKO", ACK, eventid, 3)
            assert "Not done" not in text, text
            found = event()
            assert found["acknowledged"] == "1"
            (ack,) = found["acknowledges"]
            assert ack["username"] == OPERATOR  # as the mapped user, not the admin
            assert "Acknowledged from Slack by" in ack["message"] and "U0HANAKO" in ack["message"]

            text = await click("U0HANAKO", CLOSE, eventid, 4)
            assert "Not done" not in text, text
            wait_until(lambda: event()["r_eventid"] != "0", "the problem to be closed", 60)
            assert not api.problem.get(eventids=[eventid], output=["eventid"])
        finally:
            await actions.stop()
