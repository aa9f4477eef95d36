"""Zabbix delivers an event's messages in any order (each alert is retried on its own, so a
recovery can overtake its problem and an acknowledgement come after the recovery), sometimes
twice. Whatever the order and the duplicates, the bridge ends in the state in-order delivery
gives: on the tower, in ``/health``, in the mailbox and in Slack — on both outbox backends.

The property test posts a random permutation of a few events' messages, with repeats (Zabbix
retrying an alert it did not see answered), to the real app: mail through the SMTP sink, Slack
through the fake of its Web API, a PATLITE tower through the emulator (PNS over TCP). With the
PostgreSQL outbox two bridges (two sites) share the work and each message goes to either one.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kyoten.alerting.app import OUTBOX, create_app
from kyoten.alerting.events import parse_event
from kyoten.alerting.outbox import Outbox
from kyoten.alerting.outbox.core import EventState, fold
from kyoten.alerting.render import RESOLVED_COLOUR
from kyoten.alerting.tower_policy import Problem, TowerPolicy, decide
from kyoten.hardware.emulator import EmulatedTower, TcpFrontEnd
from kyoten.hardware.model import Light, TowerState
from kyoten.hardware.protocol.pns import PnsNh
from pytest_aiohttp import AiohttpClient

from .conftest import AUTH, FakeSlack, Smtp, bridge_config, payload, settings_of

IDLE = TowerState(green=Light.ON)
_ids = itertools.count(70_000)


# -- what Zabbix sends for one event, and what in-order delivery leaves ----------------------

#: update kind -> (``{EVENT.UPDATE.ACTION}``, new severity or None)
ACTIONS = {
    "ack": ("acknowledged, commented", None),
    "unack": ("unacknowledged, commented", None),
    "comment": ("commented", None),
    "disaster": ("changed severity from High to Disaster, commented", 5),
    "average": ("changed severity to Average, commented", 3),
    "close": ("closed, commented", None),
}


@dataclass(frozen=True)
class Plan:
    """One event: its problem, the updates in the order people made them, maybe a recovery."""

    updates: tuple[str, ...]
    recovery: bool


@dataclass(frozen=True)
class Outcome:
    """What in-order delivery of an event's messages leaves."""

    resolved: bool
    acknowledged: bool
    severity: int


def messages(eid: str, plan: Plan) -> tuple[list[dict[str, str]], Outcome]:
    """The payloads Zabbix would send for ``plan`` (in Zabbix's own order), each with the
    macros as Zabbix resolves them at that moment, and the in-order outcome."""
    severity, ack, closed = 4, False, False
    out = [payload(eid)]
    for i, kind in enumerate(plan.updates):
        text, new_severity = ACTIONS[kind]
        ack = {"ack": True, "unack": False}.get(kind, ack)
        severity = new_severity or severity
        closed = closed or kind == "close"
        macros = {
            "{EVENT.UPDATE.ACTION}": text,
            "{EVENT.UPDATE.MESSAGE}": f"note {eid}.{i}",
            "{EVENT.UPDATE.TIME}": f"19:{31 + i}:00",
            "{EVENT.NSEVERITY}": str(severity),
            "{EVENT.ACK.STATUS}": "Yes" if ack else "No",
        }
        if new_severity:
            macros["{EVENT.UPDATE.NSEVERITY}"] = str(new_severity)
        out.append(payload(eid, "update", **macros))
    if plan.recovery:
        out.append(payload(eid, "recovery", **{"{EVENT.NSEVERITY}": str(severity)}))
    return out, Outcome(plan.recovery or closed, ack, severity)


# -- the bridges -----------------------------------------------------------------------------


@dataclass
class Bridges:
    clients: list[TestClient[Any, Any]]
    outbox: Outbox
    tower: EmulatedTower
    smtp: Any  # Smtp (None where no mail channel is configured)
    slack: FakeSlack


def config(
    tmp_path: Path, smtp: Smtp, slack: FakeSlack, tower_port: int, reassert: float = 3600,
    **over: Any,
) -> Any:  # fmt: skip
    doc = bridge_config(tmp_path, smtp, slack, **{"follow_up_wait": 30, **over})
    doc["channels"]["tower"] = {
        "type": "tower",
        "url": f"pns://127.0.0.1:{tower_port}?model=nh",
        "reassert": reassert,  # one bridge: only events make the tower change
        "timeout": 2,
    }
    doc["routes"] = [{"channels": ["mail", "slack", "tower"]}]
    return doc


@pytest.fixture
async def tower() -> AsyncIterator[tuple[EmulatedTower, int]]:
    emulated = EmulatedTower(PnsNh())
    front = TcpFrontEnd(emulated)
    await front.start()
    yield emulated, front.port
    await front.stop()


@pytest.fixture(
    params=["sqlite", pytest.param("postgresql", marks=pytest.mark.integration)],
)
async def bridges(
    request: pytest.FixtureRequest,
    aiohttp_client: AiohttpClient,
    tmp_path: Path,
    smtp: Smtp,
    slack: FakeSlack,
    tower: tuple[EmulatedTower, int],
) -> AsyncIterator[Bridges]:
    """One bridge on SQLite; two (one per site) sharing a PostgreSQL outbox."""
    emulated, port = tower
    if request.param == "sqlite":
        sites = [config(tmp_path, smtp, slack, port)]
    else:
        conninfo = request.getfixturevalue("outbox_db")
        # Both sites drive the one NOC tower; each applies the shared snapshot when it takes
        # a delivery, so the one that applied last may have read it a moment earlier: the
        # re-assert (1 s) brings the tower to the final snapshot whichever bridge did that.
        sites = [
            config(tmp_path, smtp, slack, port, reassert=1, node=node)
            | {"outbox": {"backend": "postgresql", "conninfo": conninfo}}
            for node in ("site-a", "site-b")
        ]
    clients = [await aiohttp_client(create_app(settings_of(doc, tmp_path))) for doc in sites]
    await emulated.wait_for(lambda s: s == IDLE, 5)
    yield Bridges(clients, clients[0].server.app[OUTBOX], emulated, smtp, slack)


async def settled(b: Bridges, timeout: float = 15.0) -> None:
    """Until no delivery is pending on any channel (every accepted message went out)."""
    deadline = time.monotonic() + timeout
    while True:
        backlog = await b.outbox.backlog()
        if all(x.pending == 0 for x in backlog.values()):
            return
        assert time.monotonic() < deadline, f"still pending: {backlog}"
        await asyncio.sleep(0.02)


async def post(client: TestClient[Any, Any], body: dict[str, str]) -> None:
    resp = await client.post("/v1/events", json=body, headers=AUTH)
    assert resp.status in (200, 202), await resp.text()


def tower_state(outcomes: list[Outcome]) -> TowerState:
    """What the tower must show for these events (the buzzer well inside silence_after)."""
    now = time.time()
    open_ = [
        Problem(str(i), o.severity, o.acknowledged, now)
        for i, o in enumerate(outcomes)
        if not o.resolved
    ]
    return decide(open_, now, TowerPolicy())


async def check_event(b: Bridges, eid: str, plan: Plan, outcome: Outcome) -> None:
    """The mailbox and Slack hold what in-order delivery leaves for ``eid``."""
    # Mail: one mail per distinct message, the problem first; every follow-up replies to it.
    mails = [m for m in b.smtp.sink.messages() if str(m["X-Kyoten-Event"]).split()[0] == eid]
    kinds = [str(m["X-Kyoten-Event"]).split()[1] for m in mails]
    assert kinds[0] == "problem", kinds
    assert len(mails) == 1 + len(plan.updates) + plan.recovery, kinds
    assert len({str(m["Message-ID"]) for m in mails}) == len(mails)
    problem_id = str(mails[0]["Message-ID"])
    for follow in mails[1:]:
        assert str(follow["In-Reply-To"]) == problem_id
        assert str(follow["Subject"]) == "Re: " + str(mails[0]["Subject"])

    # Slack: one message for the event, every update and the recovery once in its thread.
    (ts, top), *others = b.slack.top_level(f"({eid})").items()
    assert not others, [m["text"] for _, m in others]
    replies = [m["text"] for m in b.slack.replies(ts)]
    for i in range(len(plan.updates)):
        assert sum(f"note {eid}.{i}" in text for text in replies) == 1, replies
    assert sum(text.startswith("[Resolved]") for text in replies) == plan.recovery, replies
    assert len(replies) == len(plan.updates) + plan.recovery, replies
    if plan.recovery:
        assert top["attachments"][0]["color"] == RESOLVED_COLOUR
        assert top["text"].startswith("[Resolved]")


async def check_state(b: Bridges, eids: list[str], outcomes: list[Outcome]) -> None:
    """Open problems, ``/health`` and the tower agree with in-order delivery."""
    for channel in ("mail", "slack", "tower"):
        shown = {p.event_id: p for p in await b.outbox.open_problems(channel)}
        want = {e: o for e, o in zip(eids, outcomes, strict=True) if not o.resolved}
        assert shown.keys() == want.keys(), (channel, shown, want)
        for e, o in want.items():
            assert (int(shown[e].severity), shown[e].acknowledged) == (o.severity, o.acknowledged)
    for client in b.clients:
        health = await (await client.get("/health")).json()
        opened = sum(not o.resolved for o in outcomes)
        assert health["channels"]["tower"]["open_problems"] == opened
    expected = tower_state(outcomes)
    assert await b.tower.wait_for(lambda s: s == expected, 5) == expected


plans = st.builds(
    Plan,
    updates=st.lists(st.sampled_from(sorted(ACTIONS)), max_size=3).map(tuple),
    recovery=st.booleans(),
)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data(), events=st.lists(plans, min_size=1, max_size=3))
async def test_any_order_with_repeats_ends_as_in_order_delivery(
    bridges: Bridges, data: st.DataObject, events: list[Plan]
) -> None:
    eids = [str(next(_ids)) for _ in events]
    sent: list[dict[str, str]] = []
    outcomes: list[Outcome] = []
    for eid, plan in zip(eids, events, strict=True):
        bodies, outcome = messages(eid, plan)
        sent.extend(bodies)
        outcomes.append(outcome)
    repeats = data.draw(st.lists(st.sampled_from(sent), max_size=3), label="repeats")
    order = data.draw(st.permutations(sent + repeats), label="arrival order")
    sites = data.draw(
        st.lists(st.integers(0, len(bridges.clients) - 1), min_size=len(order),
                 max_size=len(order)),
        label="bridge of each message",
    )  # fmt: skip
    try:
        for body, site in zip(order, sites, strict=True):
            await post(bridges.clients[site], body)
        await settled(bridges)

        await check_state(bridges, eids, outcomes)
        for eid, plan, outcome in zip(eids, events, outcomes, strict=True):
            await check_event(bridges, eid, plan, outcome)
    finally:
        # leave nothing open for the next example (Zabbix would send these recoveries one day)
        for eid in eids:
            await post(bridges.clients[0], payload(eid, "recovery"))
        await settled(bridges)
    assert await bridges.tower.wait_for(lambda s: s == IDLE, 5) == IDLE


@settings(max_examples=1000, deadline=None)
@given(plan=plans, data=st.data())
def test_the_event_state_fold_ends_as_in_order_delivery(plan: Plan, data: st.DataObject) -> None:
    """The pure part both outbox backends store: folding an event's messages in any order, with
    repeats, gives the state in-order delivery gives (many examples: it costs microseconds)."""
    bodies, outcome = messages("1", plan)
    events = [parse_event(b) for b in bodies]
    repeats = data.draw(st.lists(st.sampled_from(events), max_size=4), label="repeats")
    state = EventState()
    for event in data.draw(st.permutations(events + repeats), label="arrival order"):
        state = fold(state, event)
    assert state.problem and state.resolved == outcome.resolved
    assert (state.severity, state.acknowledged) == (outcome.severity, outcome.acknowledged)


async def test_an_older_acknowledgement_arriving_last_does_not_win(one_bridge: Bridges) -> None:
    """Acknowledged at 19:31, unacknowledged at 19:32; Zabbix's retry brings the ack last."""
    b = one_bridge
    bodies, outcome = messages("7004", Plan(("ack", "unack"), recovery=False))
    problem, ack, unack = bodies
    for body in (unack, problem, ack):
        await post(b.clients[0], body)
    await settled(b)
    assert not outcome.acknowledged
    (shown,) = await b.outbox.open_problems("tower")
    assert not shown.acknowledged
    high = TowerState(red=Light.BLINK)  # unacknowledged High: blinking
    assert await b.tower.wait_for(lambda s: s == high, 5) == high


@pytest.mark.integration
async def test_two_sites_accepting_one_events_messages_at_once_agree(
    aiohttp_client: AiohttpClient, tmp_path: Path, outbox_db: str
) -> None:
    """Zabbix's retries bring a problem to one site and its recovery to the other at the same
    moment, for many events: each event's messages are folded one after the other (the event's
    state row is locked first), so none ends open."""
    sites = []
    for node in ("site-a", "site-b"):
        doc = bridge_config(tmp_path, None, None, node=node, follow_up_wait=30)
        doc["outbox"] = {"backend": "postgresql", "conninfo": outbox_db}
        doc["channels"] = {"board": {"type": "mail", "host": "127.0.0.1", "port": 9,
                                     "from": "k@example.com", "to": ["o@example.com"],
                                     "mute": [{"start": "00:00", "end": "00:00"}]}}  # fmt: skip
        doc["routes"] = [{"channels": ["board"]}]
        sites.append(await aiohttp_client(create_app(settings_of(doc, tmp_path))))
    eids = [str(75_000 + i) for i in range(12)]
    for e in eids:  # an acknowledgement came first: the events' state rows exist
        await post(sites[0], payload(e, "update"))
    import psycopg

    async with await psycopg.AsyncConnection.connect(outbox_db, autocommit=True) as gate:
        for i, e in enumerate(eids):
            # hold both sites' intake at its first statement, then let both go at once
            async with gate.transaction():
                await gate.execute("LOCK TABLE kyoten_events IN SHARE MODE")
                pair = asyncio.gather(
                    post(sites[i % 2], payload(e)), post(sites[(i + 1) % 2], payload(e, "recovery"))
                )
                await asyncio.sleep(0.1)
            await pair
    late = {"{EVENT.UPDATE.TIME}": "19:45:00", "{EVENT.UPDATE.ACTION}": "commented"}
    for i, e in enumerate(eids):  # a later comment must not re-open any of them
        await post(sites[i % 2], payload(e, "update", **late))
    outbox = sites[0].server.app[OUTBOX]
    assert await outbox.open_problems("board") == ()


# -- the two orderings of the issue, spelled out -----------------------------------------------


@pytest.fixture
async def one_bridge(
    aiohttp_client: AiohttpClient,
    tmp_path: Path,
    smtp: Smtp,
    slack: FakeSlack,
    tower: tuple[EmulatedTower, int],
) -> Bridges:
    emulated, port = tower
    client = await aiohttp_client(
        create_app(settings_of(config(tmp_path, smtp, slack, port), tmp_path))
    )
    await emulated.wait_for(lambda s: s == IDLE, 5)
    return Bridges([client], client.server.app[OUTBOX], emulated, smtp, slack)


async def test_recovery_before_its_problem_resolves_it(one_bridge: Bridges) -> None:
    b = one_bridge
    await post(b.clients[0], payload("7001", "recovery"))
    await post(b.clients[0], payload("7001"))  # Zabbix's retry of the problem, seconds later
    await settled(b)

    assert await b.tower.wait_for(lambda s: s == IDLE, 5) == IDLE
    health = await (await b.clients[0].get("/health")).json()
    assert all(c["open_problems"] == 0 for c in health["channels"].values()), health
    ((ts, top),) = b.slack.top_level("(7001)").items()  # one message, shown resolved
    assert top["attachments"][0]["color"] == RESOLVED_COLOUR
    assert top["text"].startswith("[Resolved]")
    assert [m["text"].split()[0] for m in b.slack.replies(ts)] == ["[Resolved]"]
    kinds = [str(m["X-Kyoten-Event"]) for m in b.smtp.sink.messages()]
    assert kinds == ["7001 problem", "7001 recovery"]
    first, second = b.smtp.sink.messages()
    assert second["In-Reply-To"] == first["Message-ID"]
    assert "[Resolved]" in first.get_body(("plain",)).get_content()


async def test_acknowledgement_after_the_recovery_does_not_reopen(one_bridge: Bridges) -> None:
    b = one_bridge
    await post(b.clients[0], payload("7002"))
    await post(b.clients[0], payload("7002", "recovery"))
    await settled(b)
    await post(b.clients[0], payload("7002", "update"))  # "acknowledged, commented: on it"
    await settled(b)

    assert await b.tower.wait_for(lambda s: s == IDLE, 5) == IDLE
    await asyncio.sleep(0.3)  # and it stays idle
    assert b.tower.state == IDLE
    health = await (await b.clients[0].get("/health")).json()
    assert all(c["open_problems"] == 0 for c in health["channels"].values()), health
    ((ts, top),) = b.slack.top_level("(7002)").items()
    assert top["attachments"][0]["color"] == RESOLVED_COLOUR  # still resolved
    replies = [m["text"] for m in b.slack.replies(ts)]
    assert len(replies) == 2 and replies[0].startswith("[Resolved]")
    assert "acknowledged" in replies[1] and "on it" in replies[1]  # threaded, with its comment
    ack = b.smtp.sink.messages()[-1]
    assert ack["X-Kyoten-Event"] == "7002 update"
    assert ack["In-Reply-To"] == "<kyoten.7002.problem@example.com>"


async def test_a_problem_later_than_the_wait_completes_the_resolved_message(
    aiohttp_client: AiohttpClient,
    tmp_path: Path,
    smtp: Smtp,
    slack: FakeSlack,
    tower: tuple[EmulatedTower, int],
) -> None:
    """A recovery waits ``follow_up_wait`` for its problem, then goes alone (a resolved
    message); a problem arriving after that edits that message: still one message, resolved."""
    emulated, port = tower
    doc = config(tmp_path, smtp, slack, port, follow_up_wait=0.3)
    client = await aiohttp_client(create_app(settings_of(doc, tmp_path)))
    b = Bridges([client], client.server.app[OUTBOX], emulated, smtp, slack)
    started = time.monotonic()
    await post(client, payload("7003", "recovery"))
    await settled(b)
    assert time.monotonic() - started >= 0.3  # it waited for the problem first
    ((ts, top),) = slack.top_level("(7003)").items()
    assert top["text"].startswith("[Resolved]") and slack.replies(ts) == []

    await post(client, payload("7003"))
    await settled(b)
    assert list(slack.top_level("(7003)")) == [ts]  # the same message, completed
    top = slack.messages[ts]
    assert top["text"].startswith("[Resolved]")
    assert top["attachments"][0]["color"] == RESOLVED_COLOUR
    assert {f["title"] for f in top["attachments"][0]["fields"]} >= {"Host", "Severity"}
    assert await emulated.wait_for(lambda s: s == IDLE, 5) == IDLE


async def test_a_webhook_channel_says_resolved_once_for_a_late_problem(
    aiohttp_client: AiohttpClient, tmp_path: Path, slack: FakeSlack
) -> None:
    """An incoming webhook can neither edit nor thread: the late problem is posted resolved and
    its recovery, already said, is not posted again."""
    doc = bridge_config(tmp_path, None, None, follow_up_wait=30)
    doc["channels"] = {"hook": {"type": "slack-webhook", "webhook_url": slack.webhook_url}}
    doc["routes"] = [{"channels": ["hook"]}]
    client = await aiohttp_client(create_app(settings_of(doc, tmp_path)))
    b = Bridges([client], client.server.app[OUTBOX], EmulatedTower(PnsNh()), None, slack)
    await post(client, payload("7005", "recovery"))
    await post(client, payload("7005"))
    await settled(b)
    assert [p["text"].split()[0] for p in slack.webhook_posts] == ["[Resolved]"]
    assert slack.webhook_posts[0]["attachments"][0]["color"] == RESOLVED_COLOUR
    await post(client, payload("7006"))  # in order: problem, then its recovery, both posted
    await post(client, payload("7006", "recovery"))
    await settled(b)
    assert [p["text"].split()[0] for p in slack.webhook_posts[1:]] == ["[High]", "[Resolved]"]
