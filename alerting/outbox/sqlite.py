"""SQLite outbox: the default backend of :class:`~kyoten.alerting.outbox.core.Outbox`, for one
bridge with no database server. WAL, group commit.

SQLite has one writer at a time anyway, and ``synchronous=FULL`` costs one fsync per commit. So
every operation is a job; the jobs queued while a commit is in flight run together in the next
transaction — a group commit — and sixteen concurrent requests pay for one fsync, not sixteen,
while each request still gets its answer only after *its* data is committed.

Where the work runs, and why: the statements themselves (indexed, microseconds each) run on the
event loop; only ``COMMIT`` — where SQLite waits for the disk — runs on a worker thread, so the
loop keeps serving requests during the fsync. A storm of new problems, the case that must be
fast, is written in bulk: consecutive problem events of a batch become one multi-row ``INSERT``
per table, their ``seq`` numbers assigned here, which saves the loop about a fifth of the SQL's
cost per event. Every other job (follow-ups, outcomes, housekeeping) runs its own statements. If
one job of a batch fails, the batch is rolled back and its jobs are re-run one transaction each
(a problem then takes the one-event path), so a bad job cannot take others down with it.
``tests/alerting/test_sqlite_outbox.py`` checks that both paths leave the same rows.

Other ways to run the writes (a writer thread, one statement per storm batch, ``COMMIT`` on the
loop, a larger page cache) were measured with ``bench/bridge.py`` and were slower or no faster;
``docs/design/outbox.md`` keeps the figures, and what limits this design.

The one blocking case: ``BEGIN IMMEDIATE`` waits (up to ``busy_timeout``) while another process
holds the write lock — in practice only ``kyoten bridge replay``, whose transaction is tiny.

What both backends share (value types, row building, the open-problem and receipt changes) is in
:mod:`.core`; which channels an event goes to is :func:`kyoten.alerting.routing.fan_out`'s.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import sqlite3
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import orjson

from ..channels.base import OpenProblem
from ..events import Event, Kind, event_from_json
from ..routing import fan_out
from .core import (
    STATE_COLUMNS,
    Accepted,
    Backlog,
    Claim,
    Claimed,
    Dead,
    DeadLetter,
    Done,
    EventState,
    Muted,
    Outcome,
    Retry,
    dead_letter_from_row,
    delivery_rows,
    fold,
    open_problem_change,
    open_problem_from_row,
    open_problem_rows,
    receipt_change,
    state_from_row,
)

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
CREATE INDEX IF NOT EXISTS events_accepted_at ON events (accepted_at);
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
CREATE INDEX IF NOT EXISTS deliveries_dead ON deliveries (channel) WHERE status = 'dead';
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
CREATE TABLE IF NOT EXISTS event_state (
    event_id TEXT PRIMARY KEY,
    problem INTEGER NOT NULL DEFAULT 0,
    resolved INTEGER NOT NULL DEFAULT 0,
    acknowledged INTEGER NOT NULL DEFAULT 0,
    ack_stamp TEXT NOT NULL DEFAULT '',
    severity INTEGER NOT NULL DEFAULT 0,
    sev_stamp TEXT NOT NULL DEFAULT '',
    changed_at REAL NOT NULL
);
"""

# An outbox written before event_state existed: each event's state from what the other tables
# say (problem and recovery seen; the open problem's severity and acknowledged flag).
_MIGRATE = """
INSERT OR IGNORE INTO event_state
SELECT e.event_id, max(e.kind = 'problem'), max(e.kind = 'recovery'),
       coalesce((SELECT max(o.acknowledged) FROM open_problems o WHERE o.event_id = e.event_id), 0),
       '0',
       coalesce((SELECT max(o.severity) FROM open_problems o WHERE o.event_id = e.event_id), 0),
       '0', max(e.accepted_at)
FROM events e GROUP BY e.event_id
"""

# A delivery's place in its event's order: problem, updates, recovery (then arrival).
_RANK = "(CASE {0}.kind WHEN 'problem' THEN 0 WHEN 'update' THEN 1 ELSE 2 END)"

_CLAIM = f"""
SELECT d.id, d.attempts, d.created_at, e.body, r.receipt, coalesce(s.resolved, 0)
FROM deliveries d
JOIN events e ON e.seq = d.seq
LEFT JOIN receipts r ON r.channel = d.channel AND r.event_id = d.event_id
LEFT JOIN event_state s ON s.event_id = d.event_id
WHERE d.channel = ? AND d.status = 'pending' AND d.next_at <= ?
  AND (e.kind = 'problem' OR s.problem = 1 OR r.receipt IS NOT NULL OR d.created_at <= ?)
  AND (e.kind = 'problem' OR NOT EXISTS (  -- nothing comes before a problem
    SELECT 1 FROM deliveries p JOIN events pe ON pe.seq = p.seq
    WHERE p.channel = d.channel AND p.event_id = d.event_id AND p.status = 'pending'
      AND ({_RANK.format("pe")} < {_RANK.format("e")}
           OR {_RANK.format("pe")} = {_RANK.format("e")} AND p.id < d.id)))
ORDER BY d.id
LIMIT ?
"""

# State channels show a snapshot of the open problems: every due delivery, in no event order.
_CLAIM_ANY = """
SELECT d.id, d.attempts, d.created_at, e.body, NULL, 0
FROM deliveries d JOIN events e ON e.seq = d.seq
WHERE d.channel = ? AND d.status = 'pending' AND d.next_at <= ?
ORDER BY d.id
LIMIT ?
"""

_DUE = """
SELECT count(*) FROM (
  SELECT 1 FROM deliveries
  WHERE channel = ? AND status = 'pending' AND next_at <= ? LIMIT ?)
"""

# What routing.fan_out needs for a follow-up: the channels its problem was delivered to.
_PROBLEM_WENT_TO = """
SELECT DISTINCT d.channel FROM events e JOIN deliveries d ON d.seq = e.seq
WHERE e.event_id = ? AND e.kind = 'problem'
"""

# A problem accepted after follow-ups of its event: they go where the problem goes too, as
# fan_out would have sent them had the problem come first.
_BACKFILL = """
INSERT INTO deliveries (seq, channel, event_id, next_at, created_at)
SELECT seq, ?, event_id, ?, ? FROM events WHERE event_id = ? AND kind <> 'problem'
ON CONFLICT (seq, channel) DO NOTHING
"""

_UPSERT_STATE = f"""
INSERT INTO event_state ({STATE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (event_id) DO UPDATE SET problem=excluded.problem, resolved=excluded.resolved,
    acknowledged=excluded.acknowledged, ack_stamp=excluded.ack_stamp,
    severity=excluded.severity, sev_stamp=excluded.sev_stamp, changed_at=excluded.changed_at
"""

_STATE_OF = (
    "SELECT event_id, problem, resolved, acknowledged, ack_stamp, severity, sev_stamp"
    " FROM event_state WHERE event_id IN ({})"
)


@dataclass(frozen=True, slots=True)
class _NewProblem:
    """A problem's accept, which may join its neighbours' bulk insert."""

    event: Event
    body: str
    channels: tuple[str, ...]
    now: float


@dataclass
class _Job:
    fn: Callable[[sqlite3.Connection], Any]
    future: asyncio.Future[Any]
    result: Any = None
    error: BaseException | None = None
    problem: _NewProblem | None = None


@dataclass
class _SqliteClaim:
    outbox: SqliteOutbox
    channel: str
    items: list[Claimed] = field(default_factory=list)

    async def finish(self, outcomes: Sequence[Outcome]) -> None:
        by_id = {c.id: c for c in self.items}
        channel = self.channel

        # One executemany per statement: a storm digest finishes thousands of rows at once.
        # Delivery rows are independent of each other; receipt changes keep their order.
        now = self.outbox.clock()
        finished: dict[str, list[tuple[Any, ...]]] = {"done": [], "muted": []}
        retried: list[tuple[Any, ...]] = []
        dead: list[tuple[Any, ...]] = []
        receipts: list[tuple[Any, ...]] = []
        for o in outcomes:
            if isinstance(o, Done | Muted):
                finished["done" if isinstance(o, Done) else "muted"].append((now, o.id))
                if receipt_change(o) == "store":
                    assert isinstance(o, Done) and o.receipt is not None
                    receipts.append(
                        (
                            channel,
                            by_id[o.id].event.event_id,
                            orjson.dumps(dict(o.receipt)).decode(),
                        )
                    )
            elif isinstance(o, Retry):
                retried.append((o.next_at, o.error, o.id))
            elif isinstance(o, Dead):
                dead.append((o.error, now, o.id))

        def run(conn: sqlite3.Connection) -> None:
            for status in ("done", "muted"):
                if finished[status]:
                    conn.executemany(
                        f"UPDATE deliveries SET status='{status}', finished_at=?,"
                        " attempts=attempts+1 WHERE id=? AND status='pending'",
                        finished[status],
                    )
            if dead:
                conn.executemany(
                    "UPDATE deliveries SET status='dead', attempts=attempts+1,"
                    " last_error=?, finished_at=? WHERE id=? AND status='pending'",
                    dead,
                )
            if retried:
                conn.executemany(
                    "UPDATE deliveries SET attempts=attempts+1, next_at=?, last_error=?"
                    " WHERE id=? AND status='pending'",
                    retried,
                )
            if receipts:
                conn.executemany("INSERT OR REPLACE INTO receipts VALUES (?, ?, ?)", receipts)

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
        self._conn: sqlite3.Connection | None = None
        self._reader: sqlite3.Connection | None = None
        self._pending: list[_Job] = []
        self._flusher: asyncio.Task[None] | None = None
        self._fsync = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="outbox")

    # -- the engine: statements on the loop, the commit's fsync on a thread ----------------

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={self.synchronous}")
        conn.execute("PRAGMA busy_timeout=5000")
        fresh = not conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type='table' AND name='event_state'"
        ).fetchone()
        conn.executescript(SCHEMA)
        if fresh:
            conn.execute(_MIGRATE)
        return conn

    async def run(
        self, fn: Callable[[sqlite3.Connection], T], problem: _NewProblem | None = None
    ) -> T:
        """Run ``fn(conn)`` in a transaction; return once that transaction is committed.

        Jobs queued while a commit is in flight run together in the next transaction (group
        commit). ``fn`` runs on the event loop and must be short: indexed statements only.
        """
        if self._conn is None:
            raise RuntimeError("outbox is not open")
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._pending.append(_Job(fn, future, problem=problem))
        if self._flusher is None:
            self._flusher = asyncio.create_task(self._flush())
        return await future

    async def _flush(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._pending:
                batch, self._pending = self._pending[:_MAX_BATCH], self._pending[_MAX_BATCH:]
                if not await self._transaction(loop, batch, bulk=True):
                    for job in batch:  # isolate the failing job: one transaction each
                        await self._transaction(loop, [job], bulk=False)
                _settle(batch)
        finally:
            self._flusher = None

    async def _transaction(
        self, loop: asyncio.AbstractEventLoop, batch: list[_Job], *, bulk: bool
    ) -> bool:
        conn = self._conn
        assert conn is not None
        try:
            conn.execute("BEGIN IMMEDIATE")
            i = 0
            while i < len(batch):
                j = i + 1
                if bulk and batch[i].problem is not None:
                    while j < len(batch) and batch[j].problem is not None:
                        j += 1
                if j - i > 1:
                    _insert_problems(conn, batch[i:j])
                else:
                    batch[i].result = batch[i].fn(conn)
                i = j
            # The commit is where SQLite fsyncs; the loop serves requests meanwhile (and
            # queues their jobs for the next transaction). Nothing else touches ``conn``.
            await loop.run_in_executor(self._fsync, conn.execute, "COMMIT")
            return True
        except Exception as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            if len(batch) == 1:
                batch[0].error = exc
            return False

    # -- Outbox --------------------------------------------------------------------------

    async def open(self) -> None:
        self._conn = await asyncio.get_running_loop().run_in_executor(self._fsync, self._connect)
        self._reader = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._reader.execute("PRAGMA busy_timeout=5000")

    def read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run a read-only ``fn`` now, on the reader connection (WAL: sees committed data and
        never waits for the writer), so claims and health checks skip the commit queue."""
        if self._reader is None:
            raise RuntimeError("outbox is not open")
        return fn(self._reader)

    async def close(self) -> None:
        while self._flusher is not None:
            await asyncio.shield(self._flusher)
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        self._fsync.shutdown(wait=True)

    async def accept(self, event: Event, channels: Sequence[str], now: float) -> Accepted:
        body = orjson.dumps(event.to_json()).decode()
        follow_up = event.kind is not Kind.PROBLEM  # only a follow-up needs where its problem went

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
            went_to: Iterable[str] = ()
            if follow_up:
                went_to = (c for (c,) in conn.execute(_PROBLEM_WENT_TO, (event.event_id,)))
            targets = fan_out(event, channels, went_to)
            _insert_rows(
                conn,
                "INSERT INTO deliveries (seq, channel, event_id, next_at, created_at)",
                delivery_rows(seq, event.event_id, targets, now),
            )
            old = _states(conn, [event.event_id]).get(event.event_id, EventState())
            new = fold(old, event)
            conn.execute(_UPSERT_STATE, new.row(event.event_id, now))
            _insert_rows(
                conn,
                "INSERT INTO open_problems",
                open_problem_rows(event, targets, new, now),
                "ON CONFLICT (channel, event_id) DO NOTHING",
            )
            _after_state(conn, event.event_id, targets if not follow_up else (), old, new, now)
            return Accepted(True, targets)

        problem = None if follow_up else _NewProblem(event, body, fan_out(event, channels), now)
        return await self.run(run, problem)

    def claim(
        self,
        channel: str,
        limit: int,
        now: float,
        *,
        ordered: bool = True,
        follow_up_wait: float = 0.0,
    ) -> AbstractAsyncContextManager[Claim]:
        return self._claim(channel, limit, now, ordered, follow_up_wait)

    @asynccontextmanager
    async def _claim(
        self, channel: str, limit: int, now: float, ordered: bool, follow_up_wait: float
    ) -> AsyncIterator[_SqliteClaim]:
        def run(conn: sqlite3.Connection) -> list[Claimed]:
            if ordered:
                args: tuple[Any, ...] = (channel, now, now - follow_up_wait, limit)
                rows = conn.execute(_CLAIM, args).fetchall()
            else:
                rows = conn.execute(_CLAIM_ANY, (channel, now, limit)).fetchall()
            return [
                Claimed(
                    id=r[0],
                    attempts=r[1],
                    created_at=r[2],
                    event=event_from_json(orjson.loads(r[3])),
                    thread=orjson.loads(r[4]) if r[4] else None,
                    resolved=bool(r[5]),
                )
                for r in rows
            ]

        # A single process owns a SQLite outbox and one worker owns a channel, so reading
        # without holding a lock across the send is safe, and intake is never blocked by it.
        yield _SqliteClaim(self, channel, self.read(run))

    async def due(self, channel: str, now: float, limit: int) -> int:
        def run(conn: sqlite3.Connection) -> int:
            row = conn.execute(_DUE, (channel, now, limit)).fetchone()
            return int(row[0])

        return self.read(run)

    async def pace(self, channel: str, rate: float, burst: int) -> float | None:
        return None  # one bridge per SQLite file: its own token bucket is the limit

    async def open_problems(self, channel: str) -> tuple[OpenProblem, ...]:
        def run(conn: sqlite3.Connection) -> tuple[OpenProblem, ...]:
            rows = conn.execute(
                "SELECT event_id, severity, name, host, acknowledged, opened_at, changed_at,"
                " tags FROM open_problems WHERE channel=? ORDER BY opened_at, event_id",
                (channel,),
            ).fetchall()
            return tuple(open_problem_from_row(r) for r in rows)

        return self.read(run)

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

        return self.read(run)

    async def dead_letters(self, channel: str | None = None, limit: int = 100) -> list[DeadLetter]:
        def run(conn: sqlite3.Connection) -> list[DeadLetter]:
            rows = conn.execute(
                "SELECT d.id, d.channel, d.event_id, e.kind, e.body, d.attempts,"
                " coalesce(d.last_error, ''), d.created_at FROM deliveries d"
                " JOIN events e ON e.seq = d.seq WHERE d.status='dead'"
                " AND (? IS NULL OR d.channel = ?) ORDER BY d.id DESC LIMIT ?",
                (channel, channel, limit),
            ).fetchall()
            return [dead_letter_from_row(r) for r in rows]

        return self.read(run)

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
        def run(conn: sqlite3.Connection) -> tuple[int, int]:
            # A slice at a time: this runs on the event loop, so keep each transaction short.
            old = "SELECT seq FROM events WHERE accepted_at < ? ORDER BY accepted_at LIMIT 2000"
            conn.execute(
                f"DELETE FROM deliveries WHERE seq IN ({old}) AND status IN ('done', 'muted')",
                (before,),
            )
            events = conn.execute(
                f"DELETE FROM events WHERE seq IN ({old}) AND NOT EXISTS"
                " (SELECT 1 FROM deliveries d WHERE d.seq = events.seq)",
                (before,),
            ).rowcount
            # A resolved event whose messages are all purged is forgotten with its receipts;
            # an open one is remembered (its recovery may come months later).
            gone = (
                "SELECT event_id FROM event_state s WHERE resolved = 1 AND changed_at < ?"
                " AND NOT EXISTS (SELECT 1 FROM events e WHERE e.event_id = s.event_id)"
                " LIMIT 2000"
            )
            conn.execute(f"DELETE FROM receipts WHERE event_id IN ({gone})", (before,))
            states = conn.execute(
                f"DELETE FROM event_state WHERE event_id IN ({gone})", (before,)
            ).rowcount
            return events, states

        total = 0
        while True:
            events, states = await self.run(run)
            total += events
            if not events and not states:
                return total


def _states(conn: sqlite3.Connection, event_ids: Sequence[str]) -> dict[str, EventState]:
    """The stored state of each of ``event_ids`` that has one."""
    out: dict[str, EventState] = {}
    for i in range(0, len(event_ids), _ROWS_PER_STATEMENT):
        chunk = event_ids[i : i + _ROWS_PER_STATEMENT]
        for row in conn.execute(_STATE_OF.format(",".join("?" * len(chunk))), chunk):
            out[row[0]] = state_from_row(row[1:])
    return out


def _after_state(
    conn: sqlite3.Connection,
    event_id: str,
    problem_targets: Sequence[str],
    old: EventState,
    new: EventState,
    now: float,
) -> None:
    """What an accepted event does beyond its own rows, once its state went ``old`` → ``new``:
    a problem that arrives after follow-ups of its event gives them its channels too
    (``problem_targets``), and the event's open-problem rows on every channel are closed or
    brought up to date (:func:`~.core.open_problem_change`)."""
    if problem_targets and old.seen:
        conn.executemany(_BACKFILL, [(c, now, now, event_id) for c in problem_targets])
    change = open_problem_change(old, new)
    if change == "close":
        conn.execute("DELETE FROM open_problems WHERE event_id=?", (event_id,))
    elif change == "update":
        conn.execute(
            "UPDATE open_problems SET severity=?, acknowledged=?, changed_at=? WHERE event_id=?",
            (new.severity, new.acknowledged, now, event_id),
        )


# Rows per multi-row statement: far below SQLite's variable limit (32,766 since 3.32; 999
# before) whatever the number of columns.
_ROWS_PER_STATEMENT = 100


def _insert_rows(
    conn: sqlite3.Connection, head: str, rows: list[tuple[Any, ...]], tail: str = ""
) -> None:
    """``head VALUES (...), (...) tail`` for ``rows``, a bounded number of rows per statement."""
    if not rows:
        return
    marks = "(" + ",".join("?" * len(rows[0])) + ")"
    for i in range(0, len(rows), _ROWS_PER_STATEMENT):
        chunk = rows[i : i + _ROWS_PER_STATEMENT]
        conn.execute(
            f"{head} VALUES {','.join([marks] * len(chunk))} {tail}",
            [v for row in chunk for v in row],
        )


def _insert_problems(conn: sqlite3.Connection, jobs: list[_Job]) -> None:
    """Accept several new problems with one statement per table (see the module docstring).

    Same effect as each job's own ``fn``: a dedup key already stored (or seen earlier in
    ``jobs``) is a duplicate; otherwise the event, a delivery per channel and an open problem
    per channel. ``seq`` is assigned here, above both the largest stored one and
    AUTOINCREMENT's high-water mark, so the numbers stay ascending in arrival order. Runs
    inside the caller's transaction, which holds the write lock: nothing can interleave.
    """
    problems = [job.problem for job in jobs if job.problem is not None]
    keys = [p.event.dedup_key for p in problems]
    stored: set[str] = set()
    for i in range(0, len(keys), _ROWS_PER_STATEMENT):
        chunk = keys[i : i + _ROWS_PER_STATEMENT]
        stored.update(
            k
            for (k,) in conn.execute(
                f"SELECT dedup_key FROM events WHERE dedup_key IN ({','.join('?' * len(chunk))})",
                chunk,
            )
        )
    (top,) = conn.execute(
        "SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'events'), 0),"
        " coalesce((SELECT max(seq) FROM events), 0))"
    ).fetchone()
    states = _states(conn, [p.event.event_id for p in problems])
    events: list[tuple[Any, ...]] = []
    deliveries: list[tuple[Any, ...]] = []
    opens: list[tuple[Any, ...]] = []
    state_rows: list[tuple[Any, ...]] = []

    def flush() -> None:
        _insert_rows(
            conn, "INSERT INTO events (seq, dedup_key, event_id, kind, body, accepted_at)", events
        )
        _insert_rows(
            conn,
            "INSERT INTO deliveries (seq, channel, event_id, next_at, created_at)",
            deliveries,
        )
        _insert_rows(
            conn,
            f"INSERT INTO event_state ({STATE_COLUMNS})",
            state_rows,
            _UPSERT_STATE[_UPSERT_STATE.index("ON CONFLICT") :],
        )
        _insert_rows(
            conn, "INSERT INTO open_problems", opens, "ON CONFLICT (channel, event_id) DO NOTHING"
        )
        for rows in (events, deliveries, state_rows, opens):
            rows.clear()

    for job in jobs:
        p = job.problem
        assert p is not None
        e = p.event
        if e.dedup_key in stored:
            job.result = Accepted(False, ())
            continue
        stored.add(e.dedup_key)
        top += 1
        events.append((top, e.dedup_key, e.event_id, Kind.PROBLEM.value, p.body, p.now))
        deliveries.extend(delivery_rows(top, e.event_id, p.channels, p.now))
        old = states.get(e.event_id, EventState())
        new = states[e.event_id] = fold(old, e)
        state_rows.append(new.row(e.event_id, p.now))
        opens.extend(open_problem_rows(e, p.channels, new, p.now))
        if old.seen:  # follow-ups came first: the one-event path's extra steps, in its order
            flush()
            _after_state(conn, e.event_id, p.channels, old, new, p.now)
        job.result = Accepted(True, p.channels)
    flush()


def _settle(batch: list[_Job]) -> None:
    for job in batch:
        if job.future.done():  # the awaiting request was cancelled
            continue
        if job.error is not None:
            job.future.set_exception(job.error)
        else:
            job.future.set_result(job.result)
