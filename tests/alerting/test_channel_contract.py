"""Conformance of every registered channel (Alertmanager's ``RetryTests`` and
``AssertNotifyLeaksNoSecret``, for our contract):

* each failure kind is classified retryable or permanent as the contract says, with the
  ``Retry-After`` the far end gave;
* no secret (token, password, webhook URL) appears in the error, the channel's repr or any log
  record — neither from the channel nor from the library under it;
* the whole app keeps secrets out of ``/health``, ``/metrics``, dead letters and logs.

A channel type registered in :data:`~kyoten.alerting.channels.REGISTRY` without a harness here
fails, so a new channel cannot pass by omission: add its harness to the ``harnesses`` fixture
(and its type to ``HARNESSED``).
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from kyoten.alerting.app import create_app
from kyoten.alerting.channels import REGISTRY, load_builder
from kyoten.alerting.channels.base import (
    ChannelError,
    ChannelResources,
    EventChannel,
    Notification,
    StateChannel,
    StateSnapshot,
)
from kyoten.alerting.events import parse_event
from pytest_aiohttp import AiohttpClient

from .conftest import (
    AUTH,
    SLACK_TOKEN,
    SMTP_PASSWORD,
    TOKEN,
    WEBHOOK_PATH,
    FakeSlack,
    SmtpSink,
    bridge_config,
    free_port,
    payload,
    settings_of,
)

#: Channel types the ``harnesses`` fixture covers (checked against the fixture itself).
HARNESSED = ("mail", "slack", "slack-webhook", "tower")
# failure kind -> (retryable, retry_after)
EXPECTED = {
    "unreachable": (True, None),
    "server_error": (True, None),
    "rate_limited": (True, 7.0),
    "rejected": (False, None),
    "bad_credentials": (False, None),
}


@dataclass
class Harness:
    """Builds settings for a failure kind; ``secrets`` must never be shown."""

    settings: Callable[[str], dict[str, Any]]
    secrets: tuple[str, ...]
    has_retry_after: bool = True  # the protocol can say how long to wait (HTTP, not SMTP)


def _auth(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
    ok = isinstance(data, LoginPassword) and data.password.decode() == SMTP_PASSWORD
    return AuthResult(success=ok, handled=False)


TOWER_PASSWORD = "tower-secret-pw-1234"


class FakeTowerApi:
    """A tower's HTTP control API that answers with the scripted failure."""

    def __init__(self) -> None:
        self.script: list[tuple[int, int | None]] = []
        self.app = web.Application()
        self.app.router.add_get("/api/control", self._control)

    async def _control(self, request: web.Request) -> web.Response:
        status, after = self.script.pop(0) if self.script else (200, None)
        headers = {"Retry-After": str(after)} if after is not None else {}
        return web.Response(text="NG", status=status, headers=headers)


@pytest.fixture
async def tower_api(aiohttp_server: Any) -> Any:
    fake = FakeTowerApi()
    server = await aiohttp_server(fake.app, host="127.0.0.1")
    return fake, server.port


@pytest.fixture
def auth_smtp() -> Any:
    sink = SmtpSink()
    port = free_port()
    ctl = Controller(
        sink, hostname="127.0.0.1", port=port, authenticator=_auth, auth_require_tls=False
    )
    ctl.start()
    yield port, sink
    ctl.stop()


@pytest.fixture
async def harnesses(
    auth_smtp: Any, slack: FakeSlack, tower_api: Any
) -> AsyncIterator[dict[str, Harness]]:
    port, sink = auth_smtp
    fake_tower, tower_port = tower_api
    dead_port = free_port()
    wrong_password = "wrong-secret-password-99"

    def mail(kind: str) -> dict[str, Any]:
        scripted = {
            "server_error": "421 Service not available",
            "rate_limited": "452 Too many",
            "rejected": "550 Mailbox unavailable",
        }
        if kind in scripted:
            sink.script.append(scripted[kind])
        return {
            "host": "127.0.0.1",
            "port": dead_port if kind == "unreachable" else port,
            "security": "none",
            "username": "kyoten",
            "password": wrong_password if kind == "bad_credentials" else SMTP_PASSWORD,
            "from": "kyoten@example.com",
            "to": ["ops@example.com"],
            "timeout": 3,
        }

    def bot(kind: str) -> dict[str, Any]:
        if kind == "server_error":
            slack.fail("chat.postMessage", 500)
        elif kind == "rate_limited":
            slack.fail("chat.postMessage", 429, "ratelimited", retry_after=7)
        elif kind == "rejected":
            slack.fail("chat.postMessage", 200, "channel_not_found")
        elif kind == "bad_credentials":
            slack.fail("chat.postMessage", 200, "invalid_auth")
        base = f"http://127.0.0.1:{dead_port}/api/" if kind == "unreachable" else slack.base_url
        return {"token": SLACK_TOKEN, "channel": "#ops", "base_url": base, "timeout": 3}

    def webhook(kind: str) -> dict[str, Any]:
        answers = {
            "server_error": (500, None),
            "rate_limited": (429, 7),
            "rejected": (404, None),
            "bad_credentials": (403, None),
        }
        if kind in answers:
            status, after = answers[kind]
            slack.fail("webhook", status, "no_service", retry_after=after)
        url = (
            f"http://127.0.0.1:{dead_port}{WEBHOOK_PATH}"
            if kind == "unreachable"
            else slack.webhook_url
        )
        return {"webhook_url": url, "timeout": 3}

    def tower(kind: str) -> dict[str, Any]:
        answers = {
            "server_error": (500, None),
            "rate_limited": (429, 7),  # a tower never says 429; a proxy in front might
            "rejected": (404, None),
            "bad_credentials": (401, None),
        }
        if kind in answers:
            fake_tower.script.append(answers[kind])
        p = dead_port if kind == "unreachable" else tower_port
        return {
            "url": f"http://127.0.0.1:{p}",
            "username": "admin",
            "password": TOWER_PASSWORD,
            "timeout": 3,
            "retries": 0,
        }

    built = {
        "tower": Harness(tower, (TOWER_PASSWORD,), has_retry_after=False),
        "mail": Harness(mail, (SMTP_PASSWORD, wrong_password), has_retry_after=False),
        "slack": Harness(bot, (SLACK_TOKEN,)),
        "slack-webhook": Harness(webhook, (WEBHOOK_PATH, "secret-webhook-path-42")),
    }
    assert sorted(built) == sorted(HARNESSED), "keep HARNESSED in step with the harnesses"
    yield built


def test_every_registered_channel_type_has_a_harness() -> None:
    missing = sorted(set(REGISTRY) - set(HARNESSED))
    assert not missing, f"channel types without a conformance harness: {missing}"


@pytest.mark.parametrize("kind", sorted(EXPECTED))
@pytest.mark.parametrize("channel_type", sorted(REGISTRY))
async def test_failure_classification_and_no_secret_leaks(
    channel_type: str,
    kind: str,
    harnesses: dict[str, Harness],
    caplog: pytest.LogCaptureFixture,
) -> None:
    harness = harnesses.get(channel_type)
    if harness is None:
        pytest.fail(f"no conformance harness for channel type {channel_type!r}")
    caplog.set_level(logging.DEBUG)
    retryable, retry_after = EXPECTED[kind]
    async with aiohttp.ClientSession() as http:
        resources = ChannelResources(http, logging.getLogger("test"))
        channel = load_builder(channel_type)("under-test", harness.settings(kind), resources)
        with pytest.raises(ChannelError) as exc:
            if isinstance(channel, EventChannel):
                await channel.send(Notification(parse_event(payload("31"))))
            else:  # a state channel (tower) is shown the open problems instead
                assert isinstance(channel, StateChannel)
                await channel.apply(StateSnapshot((), muted=False, now=time.time()))
        await channel.aclose()
    err = exc.value
    assert err.retryable is retryable, err.reason
    assert err.retry_after == (retry_after if harness.has_retry_after else None)
    shown = "\n".join([err.reason, str(err), repr(channel), _client_logs(caplog)])
    for secret in harness.secrets:
        assert secret not in shown


@pytest.mark.parametrize("channel_type", ["mail", "slack", "slack-webhook"])
async def test_app_keeps_secrets_out_of_health_metrics_dead_letters_and_logs(
    channel_type: str,
    aiohttp_client: AiohttpClient,
    tmp_path: Path,
    harnesses: dict[str, Harness],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    harness = harnesses[channel_type]
    doc = bridge_config(tmp_path, None, None)
    doc["channels"] = {"c": {"type": channel_type, **harness.settings("bad_credentials")}}
    doc["routes"] = [{"channels": ["c"]}]
    client = await aiohttp_client(create_app(settings_of(doc, tmp_path)))
    await client.post("/v1/events", json=payload("41"), headers=AUTH)
    await client.post(
        "/v1/events", json=payload("42"), headers={"Authorization": f"Bearer {TOKEN}x"}
    )
    from kyoten.alerting.app import OUTBOX

    outbox = client.server.app[OUTBOX]
    dead: list[Any] = []

    async def poll() -> bool:
        dead[:] = await outbox.dead_letters()
        return bool(dead)

    await _until(poll)
    health = await (await client.get("/health")).text()
    metrics = await (await client.get("/metrics")).text()
    assert "permanent" in dead[0].error
    shown = "\n".join([health, metrics, dead[0].error, _client_logs(caplog)])
    for secret in (*harness.secrets, TOKEN):
        assert secret not in shown


def _client_logs(caplog: pytest.LogCaptureFixture) -> str:
    """Everything logged on our side. The far ends run in this process too: aiosmtpd logs to
    ``mail.log`` and the Slack fake's aiohttp server to ``aiohttp.access``; the bridge's own
    access log has the same name but never shows headers, so nothing of ours is lost."""
    return "\n".join(
        f"{r.name} {r.getMessage()} {r.exc_text or ''}"
        for r in caplog.records
        if not r.name.startswith(("mail.log", "aiohttp.access"))
    )


async def _until(check: Callable[[], Awaitable[bool]]) -> None:
    import asyncio

    for _ in range(250):
        if await check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("condition not met")
