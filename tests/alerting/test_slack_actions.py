"""Acknowledge / Close from Slack over Socket Mode, against the local Socket Mode fake and a
JSON-RPC stand-in for the Zabbix API (the real Zabbix 6.0 API is in
``tests/templates/test_zabbix60_slack_ack.py``).

slack-sdk's own asyncio Socket Mode client connects to the fake exactly as to Slack:
``apps.connections.open`` on the Web API fake, then the WebSocket it names, ``hello``, envelopes
that must be acknowledged by ``envelope_id`` within 3 s.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from kyoten.alerting.channels.slack_blocks import ACK, CLOSE, OPEN_EVENT
from kyoten.alerting.slack_actions import (
    ActionsConfig,
    SlackActions,
    UserMapping,
    parse_actions,
)
from pytest_aiohttp import AiohttpServer

from .conftest import FakeSlack, eventually

APP_TOKEN = "xapp-1-secret-app-token-42"
BOT_TOKEN = "xoxb-secret-bot-token-42"
HANAKO_TOKEN = "zbx-token-of-hanako-0123456789abcdef"
ADMIN_TOKEN = "zbx-token-of-admin-0123456789abcdef"
TARO_TOKEN = "zbx-token-of-taro-0123456789abcdef"


@dataclass
class FakeZabbix:
    """``api_jsonrpc.php`` as 6.0 answers it, for the methods the bridge calls."""

    users: dict[str, dict[str, Any]] = field(
        default_factory=lambda: {
            HANAKO_TOKEN: {"userid": "5", "username": "hanako", "type": "1"},
            ADMIN_TOKEN: {"userid": "1", "username": "Admin", "type": "3"},
            TARO_TOKEN: {"userid": "6", "username": "taro", "type": "1"},
        }
    )
    problems: set[str] = field(default_factory=lambda: {"7001", "7002"})
    acks: list[dict[str, Any]] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        method, params = body["method"], body.get("params") or {}

        def result(value: Any) -> web.Response:
            return web.json_response({"jsonrpc": "2.0", "result": value, "id": body["id"]})

        def error(data: str) -> web.Response:
            return web.json_response(
                {
                    "jsonrpc": "2.0",
                    "error": {"code": -32500, "message": "Application error.", "data": data},
                    "id": body["id"],
                }
            )

        if method == "apiinfo.version":
            return result("6.0.14")
        if method == "user.checkAuthentication":
            user = self.users.get(params.get("token", ""))
            return result(user) if user else error("Not authorized.")
        if method == "event.acknowledge":
            if body.get("auth") not in self.users:
                return error("Not authorized.")
            ids = params["eventids"]
            if not set(ids) <= self.problems:
                return error("No permissions to referred object or it does not exist!")
            self.acks.append({**params, "auth": body["auth"]})
            return result({"eventids": ids})
        return error(f"unknown method {method}")


@dataclass
class Harness:
    slack: FakeSlack
    zabbix: FakeZabbix
    actions: SlackActions

    def ephemerals(self) -> list[dict[str, Any]]:
        return [c.data for c in self.slack.calls if c.method == "chat.postEphemeral"]


@pytest.fixture
async def harness(slack: FakeSlack, aiohttp_server: AiohttpServer) -> AsyncIterator[Harness]:
    zabbix = FakeZabbix()
    app = web.Application()
    app.router.add_post("/api_jsonrpc.php", zabbix.handle)
    server = await aiohttp_server(app, host="127.0.0.1")
    cfg = ActionsConfig(
        app_token=APP_TOKEN,
        bot_token=BOT_TOKEN,
        slack_channel="noc-slack",
        api_url=f"http://127.0.0.1:{server.port}/api_jsonrpc.php",
        users={
            "U0HANAKO": UserMapping("U0HANAKO", "hanako", HANAKO_TOKEN),
            "U0ADMIN": UserMapping("U0ADMIN", "Admin", ADMIN_TOKEN),
            "U0MIXUP": UserMapping("U0MIXUP", "hanako", TARO_TOKEN),
        },
        base_url=slack.base_url,
        timeout=5,
    )
    async with aiohttp.ClientSession() as http:
        actions = SlackActions(cfg, http, retry_cap=0.2)
        await actions.start()
        await eventually(lambda: actions.health.state == "connected")
        yield Harness(slack, zabbix, actions)
        await actions.stop()


async def test_click_of_a_mapped_user_acknowledges_as_that_user(harness: Harness) -> None:
    sock = harness.slack.socket
    envelope = await sock.click(user="U0HANAKO", action_id=ACK, value="7001", username="hanako.y")
    assert await sock.wait_ack(envelope)  # acked by envelope_id within Slack's 3 s
    await eventually(lambda: bool(harness.ephemerals()))
    (ack,) = harness.zabbix.acks
    assert ack["eventids"] == ["7001"]
    assert ack["action"] == 2 | 4  # acknowledge, with a message
    assert ack["auth"] == HANAKO_TOKEN  # as hanako, with hanako's own token
    assert "hanako.y" in ack["message"] and "U0HANAKO" in ack["message"]
    (answer,) = harness.ephemerals()
    assert answer["user"] == "U0HANAKO" and answer["channel"] == "C0NOC"
    assert "hanako" in answer["text"] and "Not done" not in answer["text"]
    assert sock.late == []


async def test_close_sends_the_close_bit(harness: Harness) -> None:
    envelope = await harness.slack.socket.click(user="U0HANAKO", action_id=CLOSE, value="7002")
    assert await harness.slack.socket.wait_ack(envelope)
    await eventually(lambda: bool(harness.zabbix.acks))
    assert harness.zabbix.acks[0]["action"] == 1 | 4


async def test_unmapped_user_is_refused_ephemerally_and_nothing_is_done(harness: Harness) -> None:
    envelope = await harness.slack.socket.click(user="U0STRANGER", action_id=ACK, value="7001")
    assert await harness.slack.socket.wait_ack(envelope)
    await eventually(lambda: bool(harness.ephemerals()))
    (answer,) = harness.ephemerals()
    assert answer["user"] == "U0STRANGER"
    assert "not mapped to a Zabbix user" in answer["text"]
    assert harness.zabbix.acks == []
    assert harness.actions.health.refused == 1


@pytest.mark.parametrize(
    ("user", "why"),
    [("U0ADMIN", "Super admin"), ("U0MIXUP", "belongs to another Zabbix user")],
)
async def test_never_acts_as_an_admin_or_as_someone_else(
    harness: Harness, user: str, why: str
) -> None:
    await harness.slack.socket.click(user=user, action_id=ACK, value="7001")
    await eventually(lambda: bool(harness.ephemerals()))
    assert why in harness.ephemerals()[0]["text"]
    assert harness.zabbix.acks == []


async def test_a_zabbix_error_does_not_break_the_next_click(harness: Harness) -> None:
    """zabbix_utils closes its *internal* session on an APIRequestError; ours stays open."""
    await harness.slack.socket.click(user="U0HANAKO", action_id=ACK, value="9999")
    await eventually(lambda: len(harness.ephemerals()) == 1)
    assert "Zabbix refused it as hanako" in harness.ephemerals()[0]["text"]
    assert "does not exist" in harness.ephemerals()[0]["text"]
    await harness.slack.socket.click(user="U0HANAKO", action_id=ACK, value="7001")
    await eventually(lambda: len(harness.ephemerals()) == 2)
    assert [a["eventids"] for a in harness.zabbix.acks] == [["7001"]]
    assert "Not done" not in harness.ephemerals()[1]["text"]


async def test_a_redelivered_envelope_and_url_buttons_act_once_or_not_at_all(
    harness: Harness,
) -> None:
    sock = harness.slack.socket
    envelope = await sock.click(user="U0HANAKO", action_id=ACK, value="7001")
    await sock.wait_ack(envelope)
    # Slack redelivers an envelope it thinks was lost: same id, retry_attempt 1
    await sock.connections[-1].send_json({**sock.envelopes[envelope].body, "retry_attempt": 1})
    await sock.click(user="U0HANAKO", action_id=OPEN_EVENT, value="")
    await eventually(lambda: len(harness.ephemerals()) >= 1)
    await asyncio.sleep(0.3)
    assert len(harness.zabbix.acks) == 1
    assert len(harness.ephemerals()) == 1


async def test_reconnects_when_slack_rotates_the_connection(harness: Harness) -> None:
    sock = harness.slack.socket
    opened = sock.opened
    await sock.disconnect()
    await eventually(lambda: sock.opened > opened and bool(sock.connections))
    envelope = await sock.click(user="U0HANAKO", action_id=ACK, value="7001")
    assert await sock.wait_ack(envelope, 5)
    await eventually(lambda: bool(harness.zabbix.acks))


async def test_tokens_stay_out_of_logs_and_health(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    await harness.slack.socket.click(user="U0HANAKO", action_id=ACK, value="7001")
    await harness.slack.socket.click(user="U0HANAKO", action_id=ACK, value="9999")
    await eventually(lambda: len(harness.ephemerals()) == 2)
    seen = caplog.text + repr(harness.actions.health.as_dict()) + repr(harness.ephemerals())
    seen += repr(harness.actions.cfg)
    for secret in (APP_TOKEN, BOT_TOKEN, HANAKO_TOKEN, "ticket=fake"):
        assert secret not in seen


async def test_a_bad_app_token_is_reported_not_retried_silently(
    slack: FakeSlack, aiohttp_server: AiohttpServer
) -> None:
    cfg = ActionsConfig("xoxb-not-an-app-token", BOT_TOKEN, "noc", "http://127.0.0.1:9/", {},
                        base_url=slack.base_url, timeout=2)  # fmt: skip
    async with aiohttp.ClientSession() as http:
        actions = SlackActions(cfg, http, retry_cap=0.2)
        await actions.start()
        await eventually(lambda: actions.health.state == "failing")
        assert "not_allowed_token_type" in actions.health.last_error
        await actions.stop()


def test_config_refuses_what_it_cannot_use() -> None:
    problems: list[str] = []
    files = {"/t/hanako": HANAKO_TOKEN + "\n", "/t/app": APP_TOKEN}

    def read(path: str) -> str:
        if path not in files:
            raise FileNotFoundError(2, "No such file or directory")
        return files[path]

    cfg = parse_actions(
        {
            "app_token_file": "/t/app",
            "slack_channel": "noc-slack",
            "users": {"U0HANAKO": {"zabbix_user": "hanako", "token_file": "/t/hanako"}},
        },
        slack_channels={"noc-slack": {"token": BOT_TOKEN, "base_url": "http://x/api/"}},
        zabbix_url="https://zabbix.example/",
        read_file=read,
        problems=problems,
    )
    assert problems == []
    assert cfg is not None
    assert cfg.api_url == "https://zabbix.example/api_jsonrpc.php"
    assert cfg.users["U0HANAKO"].token == HANAKO_TOKEN and cfg.bot_token == BOT_TOKEN
    parse_actions(
        {"app_token": "xoxb-wrong", "slack_channel": "mail", "users": {"U1": {"token": "t"}},
         "extra": 1},
        slack_channels={},
        zabbix_url="",
        read_file=read,
        problems=problems,
    )  # fmt: skip
    text = "\n".join(problems)
    for expected in ("app_token: not an app-level token", "slack_channel: must name a channel",
                     "api_url", "users.U1.zabbix_user", "extra: unknown setting"):  # fmt: skip
        assert expected in text
