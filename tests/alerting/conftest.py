"""Real parts for the bridge tests: an SMTP server, a faithful fake of Slack, payload builders.

* :class:`SmtpSink` — aiosmtpd on 127.0.0.1 that stores every mail it receives and can be told
  to answer the next ``DATA`` with a given code (421 temporary, 550 permanent, ...).
* :class:`FakeSlack` — an aiohttp app serving Slack's Web API methods the bridge uses
  (``chat.postMessage``, ``chat.update``, ``reactions.add``/``remove``) and an incoming webhook.
  It records every call and can be scripted to answer 429 + Retry-After, 5xx or ``ok: false``,
  exactly as Slack does (slack-sdk's own mock handler is the model).
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from kyoten.alerting import mediatype
from kyoten.alerting.config import Settings, parse_settings
from kyoten.alerting.devtools.socket_mode_fake import SocketModeFake
from pytest_aiohttp import AiohttpServer

TOKEN = "intake-token-0123456789abcdef"
SLACK_TOKEN = "xoxb-secret-slack-token-42"
SMTP_PASSWORD = "smtp-secret-password-42"
WEBHOOK_PATH = "/services/T000/B000/secret-webhook-path-42"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- Zabbix payloads ---------------------------------------------------------------------


def macros(event_id: str, kind: str = "problem", **over: str) -> dict[str, str]:
    """Macro values Zabbix would resolve for one event of ``kind``."""
    base = {
        "{EVENT.ID}": event_id,
        "{EVENT.NSEVERITY}": "4",
        "{EVENT.SOURCE}": "0",
        "{EVENT.NAME}": f"Replication lag high ({event_id})",
        "{EVENT.OPDATA}": "42s",
        "{EVENT.ACK.STATUS}": "No",
        "{EVENT.DATE}": "2026.11.28",
        "{EVENT.TIME}": "19:30:00",
        "{EVENT.TAGSJSON}": json.dumps([{"tag": "service", "value": "db"}]),
        "{HOST.NAME}": "db2.site-b",
        "{TRIGGER.HOSTGROUP.NAME}": "Databases",
        "{TRIGGER.ID}": "23001",
        "{TRIGGER.NAME}": "Replication lag is high",
        "{ALERT.SENDTO}": "ops",
        "{ALERT.SUBJECT}": "subject",
        "{ALERT.MESSAGE}": "message",
        "{EVENT.VALUE}": "0" if kind == "recovery" else "1",
        "{EVENT.UPDATE.STATUS}": "1" if kind == "update" else "0",
    }
    if kind == "update":
        base |= {
            "{EVENT.UPDATE.ACTION}": "acknowledged, commented",
            "{EVENT.UPDATE.MESSAGE}": "on it",
            "{EVENT.UPDATE.DATE}": "2026.11.28",
            "{EVENT.UPDATE.TIME}": "19:31:00",
            "{USER.FULLNAME}": "Hanako Yamada (hanako)",
        }
    if kind == "recovery":
        base |= {"{EVENT.RECOVERY.DATE}": "2026.11.28", "{EVENT.RECOVERY.TIME}": "19:40:00"}
    base |= over
    return base


def payload(event_id: str, kind: str = "problem", **over: str) -> dict[str, str]:
    """The JSON body the media type's script would POST."""
    return mediatype.render_payload(macros(event_id, kind, **over))


AUTH = {"Authorization": f"Bearer {TOKEN}"}


# -- SMTP ----------------------------------------------------------------------------------


@dataclass
class SmtpSink:
    """Handler for aiosmtpd: keeps mails, answers scripted codes first."""

    mails: list[Envelope] = field(default_factory=list)
    script: list[str] = field(default_factory=list)  # answers for the next DATA commands

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.script:
            return self.script.pop(0)
        self.mails.append(envelope)
        return "250 OK"

    def messages(self) -> list[Any]:
        import email
        from email import policy

        return [
            email.message_from_bytes(m.content, policy=policy.default)  # type: ignore[arg-type]
            for m in self.mails
        ]


@dataclass
class Smtp:
    host: str
    port: int
    sink: SmtpSink


@pytest.fixture
def smtp() -> Iterator[Smtp]:
    """A real SMTP server on 127.0.0.1 (plain, no auth)."""
    sink = SmtpSink()
    port = free_port()
    ctl = Controller(sink, hostname="127.0.0.1", port=port)
    ctl.start()
    yield Smtp("127.0.0.1", port, sink)
    ctl.stop()


# -- Slack ---------------------------------------------------------------------------------


@dataclass
class Call:
    method: str
    data: dict[str, Any]
    auth: str
    at: float


class FakeSlack:
    """Records calls; ``fail(method, ...)`` scripts the next answers for a method.

    It also keeps the channel as Slack would show it: :attr:`messages` by ``ts`` (text and
    attachments as last posted or edited, ``thread_ts`` for a reply, reactions), and answers
    ``chat.update`` or a reaction on an unknown ``ts`` with ``message_not_found`` as Slack does.
    """

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.messages: dict[str, dict[str, Any]] = {}
        self.webhook_posts: list[dict[str, Any]] = []
        self._script: dict[str, list[tuple[int, dict[str, Any], dict[str, str]]]] = {}
        self._ts = 1700000000
        self.delay = 0.0
        self.app = web.Application()
        self.app.router.add_post("/api/{method}", self._api)
        self.app.router.add_post(WEBHOOK_PATH, self._webhook)
        # Socket Mode: apps.connections.open hands out its URL, on this same server
        self.socket = SocketModeFake()
        self.socket.install(self.app)
        self.base_url = ""
        self.webhook_url = ""
        #: when set, every API call is recorded in :attr:`stalled` and never answered (the far
        #: end took the message and went silent), until the caller hangs up
        self.stall = False
        self.stalled: list[Call] = []

    def fail(
        self,
        method: str,
        status: int,
        error: str | None = None,
        retry_after: int | None = None,
        times: int = 1,
    ) -> None:
        body: dict[str, Any] = {"ok": False, "error": error or "internal_error"}
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}
        self._script.setdefault(method, []).extend([(status, body, headers)] * times)

    def posts(self) -> list[Call]:
        return [c for c in self.calls if c.method == "chat.postMessage"]

    def top_level(self, needle: str = "") -> dict[str, dict[str, Any]]:
        """Messages not in a thread (whose text contains ``needle``), by ``ts``."""
        return {
            ts: m
            for ts, m in self.messages.items()
            if m["thread_ts"] is None and needle in m["text"]
        }

    def replies(self, ts: str) -> list[dict[str, Any]]:
        """The thread under ``ts``, oldest first."""
        return [m for m in self.messages.values() if m["thread_ts"] == ts]

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        if request.content_type == "application/json":
            data = await request.json()
        else:
            data = dict(await request.post())
        data = {**request.query, **data}  # slack-sdk sends some methods' arguments as a query
        if self.stall:
            auth = request.headers.get("Authorization", "")
            self.stalled.append(Call(method, data, auth, time.monotonic()))
            await asyncio.Event().wait()
        if self.delay:
            await asyncio.sleep(self.delay)
        scripted = self._script.get(method)
        if scripted:
            status, body, headers = scripted.pop(0)
            self.calls.append(
                Call(
                    method + "!" + str(status),
                    data,
                    request.headers.get("Authorization", ""),
                    time.monotonic(),
                )
            )
            return web.json_response(body, status=status, headers=headers)
        self.calls.append(
            Call(method, data, request.headers.get("Authorization", ""), time.monotonic())
        )
        if method == "apps.connections.open":
            return web.json_response(
                self.socket.open_connection(request.headers.get("Authorization", ""))
            )
        if method == "chat.postMessage":
            self._ts += 1
            ts = f"{self._ts}.000100"
            self.messages[ts] = {
                "text": data.get("text", ""),
                "attachments": data.get("attachments") or [],
                "thread_ts": data.get("thread_ts"),
                "reactions": set(),
                "blocks": data.get("blocks") or [],
            }
            return web.json_response(
                {
                    "ok": True,
                    "channel": "C0OPS",
                    "ts": ts,
                    "message": {"text": data.get("text", "")},
                }
            )
        target = self.messages.get(str(data.get("ts") or data.get("timestamp")))
        if method in ("chat.update", "reactions.add", "reactions.remove") and target is None:
            return web.json_response({"ok": False, "error": "message_not_found"})
        if method == "reactions.add" and target is not None:
            target["reactions"].add(data.get("name"))
        if method == "reactions.remove" and target is not None:
            target["reactions"].discard(data.get("name"))
        if method == "chat.update" and target is not None:
            target["text"] = data.get("text", "")
            target["attachments"] = data.get("attachments") or []
            if "blocks" in data:  # Slack keeps a message's blocks when an update omits them
                target["blocks"] = data.get("blocks") or []
            return web.json_response(
                {"ok": True, "channel": data.get("channel"), "ts": data.get("ts")}
            )
        return web.json_response({"ok": True})

    async def _webhook(self, request: web.Request) -> web.Response:
        scripted = self._script.get("webhook")
        if scripted:
            status, body, headers = scripted.pop(0)
            return web.Response(text=str(body.get("error")), status=status, headers=headers)
        self.webhook_posts.append(await request.json())
        return web.Response(text="ok", content_type="text/plain")


@pytest.fixture
async def slack(aiohttp_server: AiohttpServer) -> AsyncIterator[FakeSlack]:
    fake = FakeSlack()
    server = await aiohttp_server(fake.app, host="127.0.0.1")
    fake.base_url = f"http://127.0.0.1:{server.port}/api/"
    fake.webhook_url = f"http://127.0.0.1:{server.port}{WEBHOOK_PATH}"
    fake.socket.set_base("127.0.0.1", server.port)
    yield fake


# -- a PostgreSQL outbox -----------------------------------------------------------------------


@pytest.fixture
def outbox_db(pg_primary: Any) -> Iterator[str]:
    """A fresh database in the shared lab primary (integration tests); its conninfo."""
    import uuid

    import psycopg

    name = f"kyoten_bridge_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(pg_primary.conninfo("postgres"), autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    yield pg_primary.conninfo(name)
    with psycopg.connect(pg_primary.conninfo("postgres"), autocommit=True) as admin:
        admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


# -- settings ------------------------------------------------------------------------------


def bridge_config(
    tmp_path: Path, smtp: Smtp | None, slack: FakeSlack | None, **over: Any
) -> dict[str, Any]:
    """A bridge config document: mail and Slack channels on the fakes, fast retries."""
    channels: dict[str, Any] = {}
    if smtp is not None:
        channels["mail"] = {
            "type": "mail",
            "host": smtp.host,
            "port": smtp.port,
            "security": "none",
            "from": "kyoten@example.com",
            "to": ["ops@example.com"],
            "timeout": 5,
        }
    if slack is not None:
        channels["slack"] = {
            "type": "slack",
            "token": SLACK_TOKEN,
            "channel": "#ops",
            "base_url": slack.base_url,
            "timeout": 5,
        }
    doc: dict[str, Any] = {
        "token": TOKEN,
        "node": "test",
        "outbox": {
            "backend": "sqlite",
            "path": str(tmp_path / "bridge.db"),
            "synchronous": "NORMAL",
        },
        "retry": {"base": 0.05, "cap": 0.2, "max_attempts": 5},
        "poll_interval": 0.05,
        "channels": channels,
        "routes": [{"channels": list(channels)}],
    }
    doc.update(over)
    return doc


def settings_of(doc: dict[str, Any], tmp_path: Path) -> Settings:
    return parse_settings(doc, base=tmp_path)


def write_config(tmp_path: Path, doc: dict[str, Any]) -> Path:
    path = tmp_path / "bridge.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


async def eventually(check: Callable[[], bool], timeout: float = 10.0) -> None:
    """Wait until ``check()`` holds (bounded); fail with a clear message otherwise."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        await asyncio.sleep(0.02)
