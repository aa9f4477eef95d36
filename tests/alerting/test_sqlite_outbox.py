"""The SQLite outbox's bulk path: a batch of new problems written with one statement per table
must leave exactly what the one-event path leaves, in the same order."""

from __future__ import annotations

import asyncio
import dataclasses
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from kyoten.alerting.canary import OWN_ID_PREFIX
from kyoten.alerting.events import Event, parse_event
from kyoten.alerting.outbox import Accepted
from kyoten.alerting.outbox import sqlite as sqlite_outbox
from kyoten.alerting.outbox.sqlite import SqliteOutbox

from .conftest import payload

NOW = 1_800_000_000.0


def problem(event_id: str, **over: str) -> Event:
    return parse_event(payload(event_id, **over))


# (event, channels): a problem already stored, repeats inside the batch, a problem routed
# nowhere, different channel sets, an acknowledged one, then its recovery in the same batch.
BATCH: list[tuple[Event, tuple[str, ...]]] = [
    (problem("10"), ("slack", "mail")),
    (problem("11"), ("slack",)),
    (problem("12", **{"{EVENT.ACK.STATUS}": "Yes"}), ("mail", "slack")),
    (problem("11"), ("slack",)),  # Zabbix's retry while the first is still pending
    (problem("13"), ()),
    (problem("14", **{"{EVENT.NSEVERITY}": "5"}), ("mail",)),
    (parse_event(payload("14", "recovery")), ("slack",)),
    (problem("15"), ("slack", "mail")),
    # out of order: a recovery before its problem in the batch, an update before the batch
    (parse_event(payload("17", "recovery")), ("slack",)),
    (problem("17"), ("slack", "mail")),
    (problem("16"), ("mail",)),
]


def dump(path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """The outbox's rows, ``seq`` replaced by the event's rank: the one-event path leaves gaps
    (a conflicting INSERT still takes a number), only the order matters."""
    with sqlite3.connect(path) as db:
        events = db.execute(
            "SELECT seq, dedup_key, event_id, kind, body, accepted_at FROM events ORDER BY seq"
        ).fetchall()
        rank = {row[0]: i for i, row in enumerate(events)}
        return {
            "events": [(rank[r[0]], *r[1:]) for r in events],
            "deliveries": [
                (r[0], rank[r[1]], *r[2:])
                for r in db.execute(
                    "SELECT id, seq, channel, event_id, status, next_at FROM deliveries ORDER BY id"
                )
            ],
            "open_problems": db.execute(
                "SELECT * FROM open_problems ORDER BY channel, event_id"
            ).fetchall(),
            "event_state": db.execute("SELECT * FROM event_state ORDER BY event_id").fetchall(),
        }


async def fill(path: Path, concurrently: bool) -> list[Accepted]:
    outbox = SqliteOutbox(str(path))
    await outbox.open()
    try:
        await outbox.accept(problem("10"), ("slack", "mail"), NOW - 60)  # stored before
        await outbox.accept(parse_event(payload("16", "update")), ("slack",), NOW - 30)
        calls = [outbox.accept(e, channels, NOW + i) for i, (e, channels) in enumerate(BATCH)]
        if concurrently:  # queued before the first commit: one transaction
            return list(await asyncio.gather(*calls))
        return [await call for call in calls]  # one transaction each: the one-event path
    finally:
        await outbox.close()


async def test_a_batch_of_problems_leaves_what_one_at_a_time_leaves(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bulk_sizes: list[int] = []
    insert_problems = sqlite_outbox._insert_problems

    def counted(conn: sqlite3.Connection, jobs: list[Any]) -> None:
        insert_problems(conn, jobs)
        bulk_sizes.append(len(jobs))  # only if it worked: a failure falls back one by one

    monkeypatch.setattr(sqlite_outbox, "_insert_problems", counted)
    together = await fill(tmp_path / "bulk.db", concurrently=True)
    # problems 10–14, then 17 and 16 (the recoveries and problem 15 go one by one)
    assert bulk_sizes == [6, 2]
    singly = await fill(tmp_path / "single.db", concurrently=False)
    assert bulk_sizes == [6, 2]  # the one-event path never bulks

    assert together == singly
    assert [a.new for a in together] == [False, True, True, False, True, True, True, True] + [
        True
    ] * 3
    assert together[6] == Accepted(True, ("slack", "mail"))  # the recovery follows its problem
    assert dump(tmp_path / "bulk.db") == dump(tmp_path / "single.db")
    rows = dump(tmp_path / "bulk.db")
    # in seq order = arrival order
    assert [r[2] for r in rows["events"]] == [
        "10", "16", "11", "12", "13", "14", "14", "15", "17", "17", "16"
    ]  # fmt: skip
    assert ("slack", "12") in {(r[0], r[1]) for r in rows["open_problems"]}
    assert not [r for r in rows["open_problems"] if r[1] == "14"]  # closed by the recovery
    assert not [r for r in rows["open_problems"] if r[1] == "17"]  # resolved before it came
    # 16's update (slack) came first: its problem (mail) opens it there and gives it to mail
    assert {(r[0], r[1]) for r in rows["open_problems"] if r[1] == "16"} == {
        ("mail", "16"), ("slack", "16")
    }  # fmt: skip
    seq = {(r[2], r[3]): r[0] for r in rows["events"]}
    update_16 = {r[2] for r in rows["deliveries"] if r[1] == seq[("16", "update")]}
    assert update_16 == {"slack", "mail"}


async def test_seq_stays_above_purged_events(tmp_path: Path) -> None:
    """AUTOINCREMENT never reuses a number; the bulk path must not either."""
    outbox = SqliteOutbox(str(tmp_path / "bridge.db"))
    await outbox.open()
    try:
        await asyncio.gather(*(outbox.accept(problem(str(i)), (), NOW) for i in range(20, 24)))
        with sqlite3.connect(tmp_path / "bridge.db") as db:
            db.execute("DELETE FROM events")
        await asyncio.gather(*(outbox.accept(problem(str(i)), (), NOW) for i in range(30, 33)))
    finally:
        await outbox.close()
    with sqlite3.connect(tmp_path / "bridge.db") as db:
        seqs = [r[0] for r in db.execute("SELECT seq FROM events ORDER BY seq")]
    assert seqs == [5, 6, 7]


async def test_an_outbox_from_before_event_state_keeps_its_open_problems(tmp_path: Path) -> None:
    """Opening an outbox written before ``event_state`` existed derives each event's state from
    what is stored, so an acknowledgement still reaches its open problem."""
    path = tmp_path / "bridge.db"
    outbox = SqliteOutbox(str(path))
    await outbox.open()
    await outbox.accept(problem("40"), ("tower",), NOW)
    await outbox.close()
    with sqlite3.connect(path) as db:
        db.execute("DROP TABLE event_state")  # as an older bridge left it

    outbox = SqliteOutbox(str(path))
    await outbox.open()
    try:
        await outbox.accept(parse_event(payload("40", "update")), (), NOW + 1)  # acknowledged
        (shown,) = await outbox.open_problems("tower")
        assert shown.acknowledged and shown.changed_at == NOW + 1
        await outbox.accept(parse_event(payload("40", "recovery")), (), NOW + 2)
        assert await outbox.open_problems("tower") == ()
    finally:
        await outbox.close()


async def test_the_bridges_own_alert_is_due_before_any_group_wait(tmp_path: Path) -> None:
    """A grouped lane claims what was due ``group_wait`` ago; the bridge's own alert-path
    alert must not wait (it fires when Zabbix raises nothing, and its deadline is three canary
    intervals), while a Zabbix problem accepted at the same moment still does."""
    outbox = SqliteOutbox(str(tmp_path / "bridge.db"))
    await outbox.open()
    own = dataclasses.replace(problem("9"), event_id=f"{OWN_ID_PREFIX}site-a-1")
    try:
        await outbox.accept(problem("10"), ("slack",), NOW)
        await outbox.accept(own, ("slack",), NOW)
        async with outbox.claim("slack", 10, NOW - 10) as claim:  # group_wait 10 s
            assert [c.event.event_id for c in claim.items] == [own.event_id]
        async with outbox.claim("slack", 10, NOW + 10) as claim:
            assert {c.event.event_id for c in claim.items} == {own.event_id, "10"}
    finally:
        await outbox.close()
