"""The whole bridge through ``aiohttp_client``: intake, threading, ordering, retries, health."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
from kyoten.alerting.app import create_app
from kyoten.alerting.events import parse_event
from kyoten.alerting.outbox.sqlite import SqliteOutbox
from pytest_aiohttp import AiohttpClient

from .conftest import (
    AUTH,
    TOKEN,
    FakeSlack,
    Smtp,
    bridge_config,
    eventually,
    payload,
    settings_of,
)


async def start(aiohttp_client: AiohttpClient, tmp_path: Path, doc: dict[str, Any]) -> Any:
    return await aiohttp_client(create_app(settings_of(doc, tmp_path)))


def stored(tmp_path: Path) -> int:
    with sqlite3.connect(tmp_path / "bridge.db") as db:
        return int(db.execute("SELECT count(*) FROM events").fetchone()[0])


async def test_problem_update_recovery_thread_in_slack_and_mail(
    aiohttp_client: AiohttpClient, tmp_path: Path, smtp: Smtp, slack: FakeSlack
) -> None:
    client = await start(aiohttp_client, tmp_path, bridge_config(tmp_path, smtp, slack))
    for kind in ("problem", "update", "recovery"):
        resp = await client.post("/v1/events", json=payload("100", kind), headers=AUTH)
        assert resp.status == 202, await resp.text()
        assert (await resp.json())["channels"] == ["mail", "slack"]

    await eventually(lambda: len(smtp.sink.mails) == 3 and len(slack.posts()) == 3)
    problem, update, recovery = slack.posts()
    ts = "1700000001.000100"
    assert "thread_ts" not in problem.data
    assert problem.data["attachments"][0]["color"] == "#E97659"  # High
    assert update.data["thread_ts"] == ts and "on it" in update.data["text"]
    assert recovery.data["thread_ts"] == ts
    methods = [c.method for c in slack.calls]
    assert methods == [
        "chat.postMessage",
        "reactions.add",
        "chat.postMessage",
        "chat.update",
        "chat.postMessage",
    ]
    edit = next(c for c in slack.calls if c.method == "chat.update")
    assert edit.data["ts"] == ts and edit.data["attachments"][0]["color"] == "#009900"
    assert all(c.auth == "Bearer xoxb-secret-slack-token-42" for c in slack.calls)

    first, second, third = smtp.sink.messages()
    assert first["Message-ID"] == "<kyoten.100.problem@example.com>"
    for follow in (second, third):
        assert follow["In-Reply-To"] == first["Message-ID"]
        assert follow["References"] == first["Message-ID"]
        assert follow["Subject"] == "Re: " + first["Subject"]
    assert first.get_body(("html",)) is not None and first.get_body(("plain",)) is not None


async def test_zabbix_retry_collapses_to_one_delivery(
    aiohttp_client: AiohttpClient, tmp_path: Path, slack: FakeSlack
) -> None:
    client = await start(aiohttp_client, tmp_path, bridge_config(tmp_path, None, slack))
    first = await client.post("/v1/events", json=payload("7"), headers=AUTH)
    again = await client.post("/v1/events", json=payload("7"), headers=AUTH)
    assert (first.status, again.status) == (202, 200)
    assert (await again.json())["status"] == "duplicate"
    await eventually(lambda: len(slack.posts()) == 1)
    assert stored(tmp_path) == 1


@pytest.mark.parametrize(
    ("headers", "body", "status", "reason"),
    [
        ({}, payload("1"), 401, "missing bearer token"),
        ({"Authorization": "Bearer wrong-token-wrong-token"}, payload("1"), 401, "invalid"),
        ({"Authorization": f"Basic {TOKEN}"}, payload("1"), 401, "missing bearer"),
        (AUTH, b"{not json", 400, "not valid JSON"),
        (AUTH, b"\xff\xfe", 400, "UTF-8"),
        (AUTH, b"[" * 60_000 + b"]" * 60, 400, "nested too deeply"),
        (AUTH, b'{"kyoten_schema": "1"}', 422, "missing"),
        (AUTH, payload("1", **{"{EVENT.NSEVERITY}": "9"}), 422, "severity 0-5"),
        (AUTH, b"x" * 70_000, 413, "exceeds the limit"),
    ],
)
async def test_bad_requests_get_precise_reasons_and_store_nothing(
    aiohttp_client: AiohttpClient,
    tmp_path: Path,
    slack: FakeSlack,
    headers: dict[str, str],
    body: Any,
    status: int,
    reason: str,
) -> None:
    client = await start(aiohttp_client, tmp_path, bridge_config(tmp_path, None, slack))
    if isinstance(body, bytes):
        resp = await client.post(
            "/v1/events", data=body, headers={**headers, "Content-Type": "application/json"}
        )
    else:
        resp = await client.post("/v1/events", json=body, headers=headers)
    assert resp.status == status
    assert reason in (await resp.json())["error"]
    assert stored(tmp_path) == 0
    if status == 401:
        assert resp.headers["WWW-Authenticate"].startswith("Bearer")


async def test_chunked_oversized_body_is_refused(
    aiohttp_client: AiohttpClient, tmp_path: Path, slack: FakeSlack
) -> None:
    client = await start(aiohttp_client, tmp_path, bridge_config(tmp_path, None, slack))

    async def chunks() -> Any:
        for _ in range(20):
            yield b"x" * 8192

    resp = await client.post(
        "/v1/events", data=chunks(), headers={**AUTH, "Content-Type": "application/json"}
    )
    assert resp.status == 413
    assert stored(tmp_path) == 0


async def test_wrong_content_type_is_refused(
    aiohttp_client: AiohttpClient, tmp_path: Path, slack: FakeSlack
) -> None:
    client = await start(aiohttp_client, tmp_path, bridge_config(tmp_path, None, slack))
    resp = await client.post(
        "/v1/events", data="event_id=1", headers={**AUTH, "Content-Type": "text/plain"}
    )
    assert resp.status == 415 and "application/json" in (await resp.json())["error"]


async def test_update_never_overtakes_its_problem_under_retries(
    aiohttp_client: AiohttpClient, tmp_path: Path, slack: FakeSlack
) -> None:
    slack.fail("chat.postMessage", 503, times=2)  # the problem's first two tries fail
    client = await start(aiohttp_client, tmp_path, bridge_config(tmp_path, None, slack))
    for kind in ("problem", "update", "recovery"):
        assert (
            await client.post("/v1/events", json=payload("5", kind), headers=AUTH)
        ).status == 202
    other = await client.post("/v1/events", json=payload("6"), headers=AUTH)
    assert other.status == 202

    await eventually(lambda: len(slack.posts()) == 4)
    ok = [c for c in slack.calls if "!" not in c.method]
    by_event = [
        c
        for c in ok
        if c.method == "chat.postMessage" and ("(5)" in c.data["text"] or "thread_ts" in c.data)
    ]
    problem, update, recovery = by_event
    assert "thread_ts" not in problem.data
    assert update.data["thread_ts"] == recovery.data["thread_ts"]
    assert [c.method for c in slack.calls[:2]] == ["chat.postMessage!503"] * 2


async def test_rate_limit_honours_retry_after(
    aiohttp_client: AiohttpClient, tmp_path: Path, slack: FakeSlack
) -> None:
    slack.fail("chat.postMessage", 429, "ratelimited", retry_after=1)
    client = await start(aiohttp_client, tmp_path, bridge_config(tmp_path, None, slack))
    await client.post("/v1/events", json=payload("9"), headers=AUTH)
    await eventually(lambda: len(slack.posts()) == 1)
    refused, ok = slack.calls
    assert refused.method == "chat.postMessage!429"
    assert ok.at - refused.at >= 0.95  # waited as told, although the backoff cap is 0.2 s


async def test_permanent_failure_is_a_dead_letter_and_replay_delivers_it(
    aiohttp_client: AiohttpClient, tmp_path: Path, slack: FakeSlack
) -> None:
    slack.fail("chat.postMessage", 200, "channel_not_found")
    client = await start(aiohttp_client, tmp_path, bridge_config(tmp_path, None, slack))
    await client.post("/v1/events", json=payload("11"), headers=AUTH)
    app = client.server.app
    from kyoten.alerting.app import OUTBOX, PIPELINE

    outbox = app[OUTBOX]
    await eventually(lambda: app[PIPELINE].lanes["slack"].last_error != "")
    dead: list[Any] = []
    for _ in range(100):  # the outcome is committed just after the error is noted
        dead = await outbox.dead_letters()
        if dead:
            break
        await asyncio.sleep(0.02)
    assert [(d.event_id, d.attempts) for d in dead] == [("11", 1)]
    assert "channel_not_found" in dead[0].error and "permanent" in dead[0].error
    health = await (await client.get("/health")).json()
    assert health["channels"]["slack"]["dead"] == 1

    assert await outbox.replay(0.0, "slack") == 1
    app[PIPELINE].lanes["slack"].wake.set()
    await eventually(lambda: len(slack.posts()) == 1)


async def test_gives_up_after_max_attempts(
    aiohttp_client: AiohttpClient, tmp_path: Path, slack: FakeSlack
) -> None:
    slack.fail("chat.postMessage", 500, times=10)
    client = await start(aiohttp_client, tmp_path, bridge_config(tmp_path, None, slack))
    await client.post("/v1/events", json=payload("12"), headers=AUTH)
    from kyoten.alerting.app import OUTBOX

    outbox = client.server.app[OUTBOX]
    dead: list[Any] = []

    async def poll() -> None:
        dead[:] = await outbox.dead_letters()

    for _ in range(200):
        await poll()
        if dead:
            break
        await asyncio.sleep(0.05)
    assert [d.attempts for d in dead] == [5]
    assert "gave up after 5 attempts" in dead[0].error
    assert sum(c.method == "chat.postMessage!500" for c in slack.calls) == 5


async def test_mute_window_records_instead_of_sending(
    aiohttp_client: AiohttpClient, tmp_path: Path, slack: FakeSlack
) -> None:
    doc = bridge_config(tmp_path, None, slack)
    doc["channels"]["slack"]["mute"] = [{"start": "00:00", "end": "00:00"}]  # all week, all day
    client = await start(aiohttp_client, tmp_path, doc)
    await client.post("/v1/events", json=payload("13"), headers=AUTH)
    with sqlite3.connect(tmp_path / "bridge.db") as db:
        for _ in range(200):
            row = db.execute("SELECT status FROM deliveries").fetchone()
            if row and row[0] != "pending":
                break
            await asyncio.sleep(0.02)
    assert row[0] == "muted" and slack.calls == []
    health = await (await client.get("/health")).json()
    assert health["channels"]["slack"]["state"] == "muted"


async def test_storm_becomes_a_digest(
    aiohttp_client: AiohttpClient, tmp_path: Path, slack: FakeSlack
) -> None:
    doc = bridge_config(tmp_path, None, slack)
    doc["channels"]["slack"]["digest"] = {"threshold": 3, "window": 60, "max": 50, "interval": 0.2}
    slack.delay = 0.05  # slow enough that a backlog builds up
    client = await start(aiohttp_client, tmp_path, doc)
    for i in range(30):
        await client.post("/v1/events", json=payload(str(1000 + i)), headers=AUTH)
    with sqlite3.connect(tmp_path / "bridge.db") as db:
        for _ in range(300):
            n = db.execute("SELECT count(*) FROM deliveries WHERE status='done'").fetchone()[0]
            if n == 30:
                break
            await asyncio.sleep(0.02)
    assert n == 30
    texts = [c.data["text"] for c in slack.posts()]
    digests = [t for t in texts if t.startswith("[Digest]")]
    assert digests and len(texts) < 30
    assert sum(t.count("\n[High]") + t.startswith("[High]") for t in texts) == 30


async def start_with_backlog(
    aiohttp_client: AiohttpClient, tmp_path: Path, slack: FakeSlack, ids: range
) -> Any:
    """A bridge (Slack digest threshold 5) started on an outbox holding undelivered problems,
    as one that stopped during a storm would leave it."""
    outbox = SqliteOutbox(str(tmp_path / "bridge.db"))
    await outbox.open()
    for i in ids:
        await outbox.accept(parse_event(payload(str(i))), ["slack"], time.time())
    await outbox.close()
    doc = bridge_config(tmp_path, None, slack)
    doc["channels"]["slack"]["digest"] = {"threshold": 5, "window": 60, "max": 50, "interval": 0.2}
    return await start(aiohttp_client, tmp_path, doc)


async def test_backlog_left_by_a_storm_is_digested_after_a_restart(
    aiohttp_client: AiohttpClient, tmp_path: Path, slack: FakeSlack
) -> None:
    """Arrivals in the window say nothing after a restart (or once the window has passed):
    the pending backlog itself must still go out as digests, not one message per event."""
    await start_with_backlog(aiohttp_client, tmp_path, slack, range(3000, 3020))
    with sqlite3.connect(tmp_path / "bridge.db") as db:
        for _ in range(300):
            n = db.execute("SELECT count(*) FROM deliveries WHERE status='done'").fetchone()[0]
            if n == 20:
                break
            await asyncio.sleep(0.02)
    assert n == 20
    texts = [c.data["text"] for c in slack.posts()]
    assert texts and all(t.startswith("[Digest]") for t in texts), texts
    assert sum(t.count("\n[High]") + t.startswith("[High]") for t in texts) == 20


async def test_a_backlog_below_the_threshold_is_sent_one_by_one(
    aiohttp_client: AiohttpClient, tmp_path: Path, slack: FakeSlack
) -> None:
    await start_with_backlog(aiohttp_client, tmp_path, slack, range(3100, 3104))
    await eventually(lambda: len(slack.posts()) == 4)
    assert not any(c.data["text"].startswith("[Digest]") for c in slack.posts())


async def test_health_and_metrics(
    aiohttp_client: AiohttpClient, tmp_path: Path, smtp: Smtp, slack: FakeSlack
) -> None:
    client = await start(aiohttp_client, tmp_path, bridge_config(tmp_path, smtp, slack))
    await client.post("/v1/events", json=payload("20"), headers=AUTH)
    await client.post("/v1/events", json=payload("20"), headers=AUTH)
    await client.post("/v1/events", json=payload("21"), headers={})
    await eventually(lambda: len(slack.posts()) == 1 and len(smtp.sink.mails) == 1)
    for _ in range(100):  # outcomes are committed just after the far end has the message
        health = await client.get("/health")
        body = await health.json()
        if all(c["pending"] == 0 for c in body["channels"].values()):
            break
        await asyncio.sleep(0.02)
    assert health.status == 200 and body["status"] == "ok"
    assert set(body["channels"]) == {"mail", "slack"}
    assert body["channels"]["slack"]["state"] == "ok"
    assert body["channels"]["slack"]["open_problems"] == 1
    metrics = await (await client.get("/metrics")).text()
    assert 'kyoten_bridge_events_accepted_total{kind="problem"} 1.0' in metrics
    assert "kyoten_bridge_events_duplicate_total 1.0" in metrics
    assert 'kyoten_bridge_requests_rejected_total{reason="unauthenticated"} 1.0' in metrics
    assert 'kyoten_bridge_deliveries_total{channel="mail",outcome="done"} 1.0' in metrics
    assert 'kyoten_bridge_pending{channel="slack"} 0.0' in metrics
