"""SQLite outbox: WAL, group commit on one writer thread, no server.

Why one thread: SQLite has one writer at a time anyway, and ``synchronous=FULL`` costs one fsync
per commit. The thread takes every job queued while the previous commit ran and runs them in one
transaction — a group commit — so sixteen concurrent requests pay for one fsync, not sixteen,
while each request still gets its answer only after *its* data is committed. The event loop never
blocks on disk. If one job of a batch fails, the batch is rolled back and its jobs are re-run one
transaction each, so a bad job cannot take others down with it.
"""

from __future__ import annotations

import asyncio
import json
import queue
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

from ..channels.base import OpenProblem
from ..events import Event, Kind, Severity, Tag, UpdateAction, event_from_json
from . import Accepted, Backlog, Claim, Claimed, Dead, DeadLetter, Done, Muted, Outcome, Retry

T = TypeVar("T")
_MAX_BATCH = 512

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    dedup_key TEXT NOT NULL UNIQUE,
    event_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    body TEXT NOT NULL,
    accepted_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS events_event_id ON events (event_id);
CREATE TABLE IF NOT EXISTS deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    seq INTEGER NOT NULL,
    channel TEXT NOT NULL,
    event_id TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    next_at REAL NOT NULL,
    created_at REAL NOT NULL,
    finished_at REAL,
    last_error TEXT,
    UNIQUE (seq, channel)
);
CREATE INDEX IF NOT EXISTS deliveries_pending ON deliveries (channel, id)
    WHERE status = 'pending';
CREATE INDEX IF NOT EXISTS deliveries_event ON deliveries (channel, event_id, id);
CREATE TABLE IF NOT EXISTS receipts (
    channel TEXT NOT NULL,
    event_id TEXT NOT NULL,
    receipt TEXT NOT NULL,
    PRIMARY KEY (channel, event_id)
);
CREATE TABLE IF NOT EXISTS open_problems (
    channel TEXT NOT NULL,
    event_id TEXT NOT NULL,
    severity INTEGER NOT NULL,
    name TEXT NOT NULL,
    host TEXT NOT NULL,
    acknowledged INTEGER NOT NULL,
    opened_at REAL NOT NULL,
    changed_at REAL NOT NULL,
    tags TEXT NOT NULL,
    PRIMARY KEY (channel, event_id)
);
"""

_CLAIM = """
SELECT d.id, d.attempts, d.created_at, e.body, r.receipt
FROM deliveries d
JOIN events e ON e.seq = d.seq
LEFT JOIN receipts r ON r.channel = d.channel AND r.event_id = d.event_id
WHERE d.channel = ? AND d.status = 'pending' AND d.next_at <= ?
  AND NOT EXISTS (
    SELECT 1 FROM deliveries p
    WHERE p.channel = d.channel AND p.event_id = d.event_id
      AND p.status = 'pending' AND p.id < d.id)
ORDER BY d.id
LIMIT ?
"""


def tags_json(event: Event) -> str:
    """Tags as stored in ``open_problems``."""
    return json.dumps([[t.tag, t.value] for t in event.tags])


def open_problem_from_row(row: Sequence[Any]) -> OpenProblem:
    """``(event_id, severity, name, host, acknowledged, opened_at, changed_at, tags)``."""
    return OpenProblem(
        event_id=row[0],
        severity=Severity(row[1]),
        name=row[2],
        host=row[3],
        acknowledged=bool(row[4]),
        opened_at=row[5],
        changed_at=row[6],
        tags=tuple(Tag(t, v) for t, v in json.loads(row[7])),
    )


def open_problem_change(event: Event) -> tuple[str, bool | None]:
    """What ``event`` does to the open-problem row: ("open"|"close"|"update", ack or None)."""
    if event.closes:
        return "close", None
    if event.kind is Kind.PROBLEM:
        return "open", event.acknowledged
    assert event.update is not None
    acts = event.update.actions
    ack = (
        False
        if UpdateAction.UNACKNOWLEDGE in acts
        else True
        if UpdateAction.ACKNOWLEDGE in acts
        else None
    )
    return "update", ack


@dataclass
class _Job:
    fn: Callable[[sqlite3.Connection], Any]
    future: asyncio.Future[Any]
    result: Any = None
    error: BaseException | None = None


@dataclass
class _SqliteClaim:
    outbox: SqliteOutbox
    channel: str
    items: list[Claimed] = field(default_factory=list)

    async def finish(self, outcomes: Sequence[Outcome]) -> None:
        by_id = {c.id: c for c in self.items}
        channel = self.channel

        def run(conn: sqlite3.Connection) -> None:
            for o in outcomes:
                if isinstance(o, Done | Muted):
                    status = "done" if isinstance(o, Done) else "muted"
                    conn.execute(
                        "UPDATE deliveries SET status=?, finished_at=?, attempts=attempts+1"
                        " WHERE id=? AND status='pending'",
                        (status, self.outbox.clock(), o.id),
                    )
                    event = by_id[o.id].event
                    if isinstance(o, Done) and o.receipt and event.kind is Kind.PROBLEM:
                        conn.execute(
                            "INSERT OR REPLACE INTO receipts VALUES (?, ?, ?)",
                            (channel, event.event_id, json.dumps(dict(o.receipt))),
                        )
                    elif event.closes:
                        conn.execute(
                            "DELETE FROM receipts WHERE channel=? AND event_id=?",
                            (channel, event.event_id),
                        )
                elif isinstance(o, Retry):
                    conn.execute(
                        "UPDATE deliveries SET attempts=attempts+1, next_at=?, last_error=?"
                        " WHERE id=? AND status='pending'",
                        (o.next_at, o.error, o.id),
                    )
                elif isinstance(o, Dead):
                    conn.execute(
                        "UPDATE deliveries SET status='dead', attempts=attempts+1,"
                        " last_error=?, finished_at=? WHERE id=? AND status='pending'",
                        (o.error, self.outbox.clock(), o.id),
                    )

        await self.outbox.run(run)


class SqliteOutbox:
    """The default outbox; see the module docstring."""

    def __init__(
        self, path: str, *, synchronous: str = "FULL", clock: Callable[[], float] | None = None
    ) -> None:
        import time

        self.path = path
        self.synchronous = synchronous
        self.clock = clock or time.time
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    # -- the writer thread ---------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={self.synchronous}")
        conn.execute("PRAGMA busy_timeout=10000")
        conn.executescript(SCHEMA)
        return conn

    def _serve(self, conn: sqlite3.Connection) -> None:
        assert self._loop is not None
        while True:
            first = self._queue.get()
            if first is None:
                break
            batch = [first]
            stop = False
            while len(batch) < _MAX_BATCH:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stop = True
                    break
                batch.append(nxt)
            if not self._run_batch(conn, batch):
                for job in batch:  # isolate the failing job: one transaction each
                    self._run_batch(conn, [job])
            self._loop.call_soon_threadsafe(_settle, batch)
            if stop:
                break
        conn.close()

    @staticmethod
    def _run_batch(conn: sqlite3.Connection, batch: list[_Job]) -> bool:
        try:
            conn.execute("BEGIN IMMEDIATE")
            for job in batch:
                job.result = job.fn(conn)
            conn.execute("COMMIT")
            return True
        except Exception as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            if len(batch) == 1:
                batch[0].error = exc
            return False

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(conn)`` in a committed transaction on the writer thread."""
        if self._thread is None or self._loop is None:
            raise RuntimeError("outbox is not open")
        future: asyncio.Future[T] = self._loop.create_future()
        self._queue.put(_Job(fn, future))
        return await future

    # -- Outbox --------------------------------------------------------------------------

    async def open(self) -> None:
        self._loop = asyncio.get_running_loop()
        conn = await asyncio.to_thread(self._connect)
        self._thread = threading.Thread(
            target=self._serve, args=(conn,), name="outbox", daemon=True
        )
        self._thread.start()

    async def close(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            await asyncio.to_thread(self._thread.join)
            self._thread = None

    async def accept(self, event: Event, channels: Sequence[str], now: float) -> Accepted:
        body = json.dumps(event.to_json(), separators=(",", ":"))

        def run(conn: sqlite3.Connection) -> Accepted:
            cur = conn.execute(
                "INSERT INTO events (dedup_key, event_id, kind, body, accepted_at)"
                " VALUES (?, ?, ?, ?, ?) ON CONFLICT (dedup_key) DO NOTHING RETURNING seq",
                (event.dedup_key, event.event_id, event.kind.value, body, now),
            )
            row = cur.fetchone()
            if row is None:
                return Accepted(False, ())
            seq = row[0]
            targets = list(channels)
            if event.kind is not Kind.PROBLEM:
                for (c,) in conn.execute(
                    "SELECT DISTINCT d.channel FROM events e JOIN deliveries d ON d.seq = e.seq"
                    " WHERE e.event_id = ? AND e.kind = 'problem'",
                    (event.event_id,),
                ):
                    if c not in targets:
                        targets.append(c)
            conn.executemany(
                "INSERT INTO deliveries (seq, channel, event_id, next_at, created_at)"
                " VALUES (?, ?, ?, ?, ?)",
                [(seq, c, event.event_id, now, now) for c in targets],
            )
            self._track(conn, event, targets, now)
            return Accepted(True, tuple(targets))

        return await self.run(run)

    @staticmethod
    def _track(conn: sqlite3.Connection, event: Event, channels: Sequence[str], now: float) -> None:
        change, ack = open_problem_change(event)
        for c in channels:
            if change == "close":
                conn.execute(
                    "DELETE FROM open_problems WHERE channel=? AND event_id=?",
                    (c, event.event_id),
                )
                continue
            conn.execute(
                "INSERT INTO open_problems VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (channel, event_id) DO UPDATE SET severity=excluded.severity,"
                " acknowledged=CASE WHEN ? IS NULL THEN acknowledged ELSE excluded.acknowledged"
                " END, changed_at=excluded.changed_at",
                (
                    c,
                    event.event_id,
                    int(event.severity),
                    event.name,
                    event.host,
                    int(bool(ack)),
                    now,
                    now,
                    tags_json(event),
                    ack,
                ),
            )

    def claim(self, channel: str, limit: int, now: float) -> AbstractAsyncContextManager[Claim]:
        return self._claim(channel, limit, now)

    @asynccontextmanager
    async def _claim(self, channel: str, limit: int, now: float) -> AsyncIterator[_SqliteClaim]:
        def run(conn: sqlite3.Connection) -> list[Claimed]:
            rows = conn.execute(_CLAIM, (channel, now, limit)).fetchall()
            return [
                Claimed(
                    id=r[0],
                    attempts=r[1],
                    created_at=r[2],
                    event=event_from_json(json.loads(r[3])),
                    thread=json.loads(r[4]) if r[4] else None,
                )
                for r in rows
            ]

        # A single process owns a SQLite outbox and one worker owns a channel, so reading
        # without holding a lock across the send is safe, and intake is never blocked by it.
        yield _SqliteClaim(self, channel, await self.run(run))

    async def open_problems(self, channel: str) -> tuple[OpenProblem, ...]:
        def run(conn: sqlite3.Connection) -> tuple[OpenProblem, ...]:
            rows = conn.execute(
                "SELECT event_id, severity, name, host, acknowledged, opened_at, changed_at,"
                " tags FROM open_problems WHERE channel=? ORDER BY opened_at, event_id",
                (channel,),
            ).fetchall()
            return tuple(open_problem_from_row(r) for r in rows)

        return await self.run(run)

    async def backlog(self) -> dict[str, Backlog]:
        def run(conn: sqlite3.Connection) -> dict[str, Backlog]:
            out: dict[str, dict[str, Any]] = {}
            for c, n, oldest in conn.execute(
                "SELECT channel, count(*), min(created_at) FROM deliveries"
                " WHERE status='pending' GROUP BY channel"
            ):
                out.setdefault(c, {}).update(pending=n, oldest=oldest)
            for c, n in conn.execute(
                "SELECT channel, count(*) FROM deliveries WHERE status='dead' GROUP BY channel"
            ):
                out.setdefault(c, {})["dead"] = n
            for c, n in conn.execute(
                "SELECT channel, count(*) FROM open_problems GROUP BY channel"
            ):
                out.setdefault(c, {})["open_problems"] = n
            return {c: Backlog(**v) for c, v in out.items()}

        return await self.run(run)

    async def dead_letters(self, channel: str | None = None, limit: int = 100) -> list[DeadLetter]:
        def run(conn: sqlite3.Connection) -> list[DeadLetter]:
            rows = conn.execute(
                "SELECT d.id, d.channel, d.event_id, e.kind, e.body, d.attempts,"
                " coalesce(d.last_error, ''), d.created_at FROM deliveries d"
                " JOIN events e ON e.seq = d.seq WHERE d.status='dead'"
                " AND (? IS NULL OR d.channel = ?) ORDER BY d.id DESC LIMIT ?",
                (channel, channel, limit),
            ).fetchall()
            return [
                DeadLetter(r[0], r[1], r[2], r[3], json.loads(r[4])["name"], r[5], r[6], r[7])
                for r in rows
            ]

        return await self.run(run)

    async def replay(self, now: float, channel: str | None = None, ids: Sequence[int] = ()) -> int:
        def run(conn: sqlite3.Connection) -> int:
            sql = (
                "UPDATE deliveries SET status='pending', attempts=0, next_at=?,"
                " finished_at=NULL WHERE status='dead' AND (? IS NULL OR channel=?)"
            )
            args: list[Any] = [now, channel, channel]
            if ids:
                sql += f" AND id IN ({','.join('?' * len(ids))})"
                args.extend(ids)
            return conn.execute(sql, args).rowcount

        return await self.run(run)

    async def purge(self, before: float) -> int:
        def run(conn: sqlite3.Connection) -> int:
            conn.execute(
                "DELETE FROM deliveries WHERE seq IN (SELECT seq FROM events"
                " WHERE accepted_at < ?) AND status IN ('done', 'muted')",
                (before,),
            )
            return conn.execute(
                "DELETE FROM events WHERE accepted_at < ? AND NOT EXISTS"
                " (SELECT 1 FROM deliveries d WHERE d.seq = events.seq)",
                (before,),
            ).rowcount

        return await self.run(run)


def _settle(batch: list[_Job]) -> None:
    for job in batch:
        if job.future.done():  # the awaiting request was cancelled
            continue
        if job.error is not None:
            job.future.set_exception(job.error)
        else:
            job.future.set_result(job.result)
