"""PostgreSQL outbox: the backend of :class:`~kyoten.alerting.outbox.core.Outbox` for two
bridges, one per site, sharing the work in the database the sites already replicate. No
clustering of our own: the database's row locks are the coordination.

* **Intake** commits before answering, like SQLite, with a group commit: requests arriving while
  a commit is in flight are stored together in the next transaction. ``ON CONFLICT (dedup_key)
  DO NOTHING`` makes a Zabbix retry that lands on the *other* bridge a no-op as well.
* **Claims** run ``SELECT … FOR UPDATE OF d SKIP LOCKED`` in a transaction held open for the
  send, on a connection of the channel's own. The other bridge skips locked rows, so a delivery
  is done once; the outcome is written and committed in that same transaction. If a bridge dies
  mid-send its connection drops, PostgreSQL releases the lock and the other bridge takes the row
  at its next poll — the documented at-least-once window (see :mod:`kyoten.alerting.outbox`).
* **Order** per event and channel holds across bridges: a follow-up is claimable only when no
  earlier delivery of its event on that channel is pending in committed state, and a problem
  being sent by the other bridge is still pending until that bridge commits.
* **Site loss**: each bridge reconnects on its own; with a multi-host conninfo
  (``host=a,b target_session_attrs=read-write``) it follows the promoted primary, answering 503
  (not stored) while there is no writable primary. Either bridge alone drains everything. The
  deliveries a dead bridge had claimed are released when the server sees its connection go:
  at once for a killed process (``tests/alerting/test_site_loss.py`` measures the survivor's
  pick-up), within about 25 s for a lost host (the session's TCP keepalives, set here).
* **Rate limits** are shared: a channel's token bucket is a row of ``kyoten_pace``, taken with
  one atomic upsert on the database's clock, so two bridges sending to one Slack channel keep
  to its configured rate together instead of twice it.

Tables are prefixed ``kyoten_`` because the database is shared with other tenants. What both
backends share (value types, row building, the open-problem and receipt changes) is in
:mod:`.core`; which channels an event goes to is :func:`kyoten.alerting.routing.fan_out`'s.
"""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager, suppress
from dataclasses import dataclass, field
from typing import Any, TypeVar

import psycopg

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
Conn = psycopg.AsyncConnection[Any]

#: Server-side keepalives of each session (user-settable, no privilege needed).
_KEEPALIVES = (
    "SELECT set_config('tcp_keepalives_idle', '10', false),"
    " set_config('tcp_keepalives_interval', '5', false),"
    " set_config('tcp_keepalives_count', '3', false)"
)

_SCHEMA_LOCK = 0x6B796F74  # "kyot": serialises schema creation by two bridges starting at once

SCHEMA = """
CREATE TABLE IF NOT EXISTS kyoten_events (
    seq bigserial PRIMARY KEY,
    dedup_key text NOT NULL UNIQUE,
    event_id text NOT NULL,
    kind text NOT NULL,
    body text NOT NULL,
    accepted_at double precision NOT NULL
);
CREATE INDEX IF NOT EXISTS kyoten_events_event_id ON kyoten_events (event_id);
CREATE TABLE IF NOT EXISTS kyoten_deliveries (
    id bigserial PRIMARY KEY,
    seq bigint NOT NULL,
    channel text NOT NULL,
    event_id text NOT NULL,
    status text NOT NULL DEFAULT 'pending',
    attempts integer NOT NULL DEFAULT 0,
    next_at double precision NOT NULL,
    created_at double precision NOT NULL,
    finished_at double precision,
    finished_by text,
    last_error text,
    UNIQUE (seq, channel)
);
CREATE INDEX IF NOT EXISTS kyoten_deliveries_pending ON kyoten_deliveries (channel, id)
    WHERE status = 'pending';
CREATE INDEX IF NOT EXISTS kyoten_deliveries_event ON kyoten_deliveries (channel, event_id, id);
CREATE TABLE IF NOT EXISTS kyoten_receipts (
    channel text NOT NULL,
    event_id text NOT NULL,
    receipt text NOT NULL,
    PRIMARY KEY (channel, event_id)
);
CREATE TABLE IF NOT EXISTS kyoten_pace (
    channel text PRIMARY KEY,
    tokens double precision NOT NULL,
    stamp double precision NOT NULL
);
CREATE TABLE IF NOT EXISTS kyoten_open_problems (
    channel text NOT NULL,
    event_id text NOT NULL,
    severity integer NOT NULL,
    name text NOT NULL,
    host text NOT NULL,
    acknowledged boolean NOT NULL,
    opened_at double precision NOT NULL,
    changed_at double precision NOT NULL,
    tags text NOT NULL,
    PRIMARY KEY (channel, event_id)
);
CREATE TABLE IF NOT EXISTS kyoten_event_state (
    event_id text PRIMARY KEY,
    problem boolean NOT NULL DEFAULT false,
    resolved boolean NOT NULL DEFAULT false,
    acknowledged boolean NOT NULL DEFAULT false,
    ack_stamp text NOT NULL DEFAULT '',
    severity integer NOT NULL DEFAULT 0,
    sev_stamp text NOT NULL DEFAULT '',
    changed_at double precision NOT NULL
);
CREATE TABLE IF NOT EXISTS kyoten_canary_receipts (
    token text PRIMARY KEY,
    received_at double precision NOT NULL,
    node text NOT NULL
);
CREATE TABLE IF NOT EXISTS kyoten_canary_alert (
    slot integer PRIMARY KEY,
    event_id text NOT NULL,
    open boolean NOT NULL,
    changed_at double precision NOT NULL
);
"""

# An outbox written before kyoten_event_state existed: each event's state from the other tables.
_MIGRATE = """
INSERT INTO kyoten_event_state
SELECT e.event_id, bool_or(e.kind = 'problem'), bool_or(e.kind = 'recovery'),
       coalesce((SELECT bool_or(o.acknowledged) FROM kyoten_open_problems o
                 WHERE o.event_id = e.event_id), false), '0',
       coalesce((SELECT max(o.severity) FROM kyoten_open_problems o
                 WHERE o.event_id = e.event_id), 0), '0', max(e.accepted_at)
FROM kyoten_events e GROUP BY e.event_id
ON CONFLICT (event_id) DO NOTHING
"""

# A delivery's place in its event's order: problem, updates, recovery (then arrival).
_RANK = "(CASE {0}.kind WHEN 'problem' THEN 0 WHEN 'update' THEN 1 ELSE 2 END)"

_CLAIM = f"""
SELECT d.id, d.attempts, d.created_at, e.body, r.receipt, coalesce(s.resolved, false)
FROM kyoten_deliveries d
JOIN kyoten_events e ON e.seq = d.seq
LEFT JOIN kyoten_receipts r ON r.channel = d.channel AND r.event_id = d.event_id
LEFT JOIN kyoten_event_state s ON s.event_id = d.event_id
WHERE d.channel = %s AND d.status = 'pending' AND d.next_at <= %s
  AND (e.kind = 'problem' OR s.problem OR r.receipt IS NOT NULL OR d.created_at <= %s)
  AND (e.kind = 'problem' OR NOT EXISTS (  -- nothing comes before a problem
    SELECT 1 FROM kyoten_deliveries p JOIN kyoten_events pe ON pe.seq = p.seq
    WHERE p.channel = d.channel AND p.event_id = d.event_id AND p.status = 'pending'
      AND ({_RANK.format("pe")} < {_RANK.format("e")}
           OR {_RANK.format("pe")} = {_RANK.format("e")} AND p.id < d.id)))
ORDER BY d.id
LIMIT %s
FOR UPDATE OF d SKIP LOCKED
"""

# State channels show a snapshot of the open problems: every due delivery, in no event order.
_CLAIM_ANY = """
SELECT d.id, d.attempts, d.created_at, e.body, NULL, false
FROM kyoten_deliveries d JOIN kyoten_events e ON e.seq = d.seq
WHERE d.channel = %s AND d.status = 'pending' AND d.next_at <= %s
ORDER BY d.id
LIMIT %s
FOR UPDATE OF d SKIP LOCKED
"""

_DUE = """
SELECT count(*) FROM (
  SELECT 1 FROM kyoten_deliveries
  WHERE channel = %s AND status = 'pending' AND next_at <= %s LIMIT %s) AS due
"""

# What routing.fan_out needs for a follow-up: the channels its problem was delivered to.
_PROBLEM_WENT_TO = """
SELECT DISTINCT d.channel FROM kyoten_events e JOIN kyoten_deliveries d ON d.seq = e.seq
WHERE e.event_id = %s AND e.kind = 'problem'
"""

# A problem accepted after follow-ups of its event: they go where the problem goes too.
_BACKFILL = """
INSERT INTO kyoten_deliveries (seq, channel, event_id, next_at, created_at)
SELECT seq, %s, event_id, %s, %s FROM kyoten_events WHERE event_id = %s AND kind <> 'problem'
ON CONFLICT (seq, channel) DO NOTHING
"""

# The event's state row, created if missing and locked until the transaction ends: every
# message of one event takes this lock first, so two bridges accepting messages of the same
# event (a recovery here, its problem there) fold them one after the other, never both from
# the same old state. Returns the state as it was.
_LOCK_STATE = """
INSERT INTO kyoten_event_state (event_id, changed_at) VALUES (%s, %s)
ON CONFLICT (event_id) DO UPDATE SET event_id = EXCLUDED.event_id
RETURNING problem, resolved, acknowledged, ack_stamp, severity, sev_stamp
"""

_WRITE_STATE = f"""
UPDATE kyoten_event_state SET ({STATE_COLUMNS}) = (%s, %s, %s, %s, %s, %s, %s, %s)
WHERE event_id = %s
"""

# One token taken from a channel's bucket shared by every bridge: refill by the time passed
# on the database's clock (one clock for both sites), capped at the burst, minus this send.
# A negative balance is a queue of reserved sends; the caller waits -tokens/rate seconds.
_PACE = """
INSERT INTO kyoten_pace AS p (channel, tokens, stamp)
VALUES (%s, %s - 1, extract(epoch FROM clock_timestamp()))
ON CONFLICT (channel) DO UPDATE SET
    tokens = LEAST(
        %s::double precision,
        p.tokens + GREATEST(0, extract(epoch FROM clock_timestamp()) - p.stamp) * %s
    ) - 1,
    stamp = GREATEST(p.stamp, extract(epoch FROM clock_timestamp()))
RETURNING tokens
"""


@dataclass
class _PgClaim:
    conn: Conn
    channel: str
    node: str
    clock: Callable[[], float]
    items: list[Claimed] = field(default_factory=list)

    async def finish(self, outcomes: Sequence[Outcome]) -> None:
        by_id = {c.id: c for c in self.items}
        now = self.clock()
        for o in outcomes:
            if isinstance(o, Done | Muted):
                await self.conn.execute(
                    "UPDATE kyoten_deliveries SET status=%s, finished_at=%s, finished_by=%s,"
                    " attempts=attempts+1 WHERE id=%s",
                    ("done" if isinstance(o, Done) else "muted", now, self.node, o.id),
                )
                if receipt_change(o) == "store":
                    assert isinstance(o, Done) and o.receipt is not None
                    await self.conn.execute(
                        "INSERT INTO kyoten_receipts VALUES (%s, %s, %s) ON CONFLICT"
                        " (channel, event_id) DO UPDATE SET receipt = EXCLUDED.receipt",
                        (self.channel, by_id[o.id].event.event_id, json.dumps(dict(o.receipt))),
                    )
            elif isinstance(o, Retry):
                await self.conn.execute(
                    "UPDATE kyoten_deliveries SET attempts=attempts+1, next_at=%s,"
                    " last_error=%s WHERE id=%s",
                    (o.next_at, o.error, o.id),
                )
            elif isinstance(o, Dead):
                await self.conn.execute(
                    "UPDATE kyoten_deliveries SET status='dead', attempts=attempts+1,"
                    " last_error=%s, finished_at=%s, finished_by=%s WHERE id=%s",
                    (o.error, now, self.node, o.id),
                )


@dataclass
class _Pending:
    fn: Callable[[Conn], Awaitable[Any]]
    future: asyncio.Future[Any]


class PostgresOutbox:
    """The shared outbox; see the module docstring."""

    def __init__(
        self, conninfo: str, *, node: str = "bridge", clock: Callable[[], float] | None = None
    ) -> None:
        import time

        self._conninfo = conninfo
        self.node = node
        self.clock = clock or time.time
        self._conns: dict[str, Conn] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._intake: list[_Pending] = []
        self._intake_wake = asyncio.Event()
        self._intake_task: asyncio.Task[None] | None = None

    def __repr__(self) -> str:  # the conninfo may hold a password
        return f"PostgresOutbox(node={self.node!r})"

    async def _conn(self, role: str) -> Conn:
        """A live autocommit connection for ``role`` (reconnects after a failure)."""
        conn = self._conns.get(role)
        if conn is None or conn.closed or conn.broken:
            try:
                conn = await psycopg.AsyncConnection.connect(
                    self._conninfo,
                    autocommit=True,
                    application_name=f"kyoten-bridge {self.node} {role}"[:63],
                )
                # A bridge whose host is lost sends no RST: the server finds out by TCP
                # keepalives (~25 s with these) and only then releases the deliveries that
                # bridge had claimed, for the other one to take.
                await conn.execute(_KEEPALIVES)
            except psycopg.OperationalError as exc:
                # libpq's message can quote the conninfo; keep only its first line's gist.
                raise ConnectionError(
                    f"outbox database unreachable ({role}): {type(exc).__name__}"
                ) from None
            self._conns[role] = conn
        return conn

    def _lock(self, role: str) -> asyncio.Lock:
        return self._locks.setdefault(role, asyncio.Lock())

    async def _run(self, role: str, fn: Callable[[Conn], Awaitable[T]]) -> T:
        async with self._lock(role):
            conn = await self._conn(role)
            async with conn.transaction():
                return await fn(conn)

    # -- lifecycle -----------------------------------------------------------------------

    async def open(self) -> None:
        async def schema(conn: Conn) -> None:
            await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
            cur = await conn.execute("SELECT to_regclass('kyoten_event_state') IS NULL")
            fresh = (await cur.fetchone()) == (True,)
            await conn.execute(SCHEMA)
            if fresh:
                await conn.execute(_MIGRATE)

        for attempt in range(3):
            try:
                await self._run("misc", schema)
                break
            except psycopg.errors.DeadlockDetected:
                # the DDL against a running bridge's writes: PostgreSQL aborts one side, and
                # the answer it documents is to run the aborted transaction again
                if attempt == 2:
                    raise
                await asyncio.sleep(0.1)
        self._intake_task = asyncio.create_task(self._intake_loop(), name="outbox-intake")

    async def close(self) -> None:
        if self._intake_task is not None:
            self._intake_task.cancel()
            with suppress(asyncio.CancelledError):
                await self._intake_task
            self._intake_task = None
        for conn in self._conns.values():
            await conn.close()
        self._conns.clear()

    # -- intake with group commit --------------------------------------------------------

    async def _intake_loop(self) -> None:
        while True:
            await self._intake_wake.wait()
            self._intake_wake.clear()
            batch, self._intake = self._intake, []
            if not batch:
                continue
            try:
                results = await self._run("intake", functools.partial(_all, batch=batch))
            except asyncio.CancelledError:
                raise
            except Exception:
                for job in batch:  # isolate the failure: one transaction each
                    try:
                        result = await self._run("intake", job.fn)
                    except asyncio.CancelledError:
                        raise
                    except Exception as exc:
                        if not job.future.done():
                            job.future.set_exception(exc)
                    else:
                        if not job.future.done():
                            job.future.set_result(result)
                continue
            for job, result in zip(batch, results, strict=True):
                if not job.future.done():
                    job.future.set_result(result)

    async def accept(self, event: Event, channels: Sequence[str], now: float) -> Accepted:
        body = json.dumps(event.to_json(), separators=(",", ":"))
        follow_up = event.kind is not Kind.PROBLEM  # only a follow-up needs where its problem went
        eid = event.event_id

        async def run(conn: Conn) -> Accepted:
            cur = await conn.execute(
                "INSERT INTO kyoten_events (dedup_key, event_id, kind, body, accepted_at)"
                " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (dedup_key) DO NOTHING RETURNING seq",
                (event.dedup_key, eid, event.kind.value, body, now),
            )
            row = await cur.fetchone()
            if row is None:
                return Accepted(False, ())
            seq = row[0]
            # First the event's lock: what follows sees the other bridge's messages of this
            # event committed (READ COMMITTED: each statement takes a fresh snapshot).
            cur = await conn.execute(_LOCK_STATE, (eid, now))
            locked = await cur.fetchone()
            assert locked is not None
            old = state_from_row(locked)
            went_to: Iterable[str] = ()
            if follow_up:
                cur = await conn.execute(_PROBLEM_WENT_TO, (eid,))
                rows = await cur.fetchall()
                went_to = (c for (c,) in rows)
            targets = fan_out(event, channels, went_to)
            new = fold(old, event)
            async with conn.cursor() as c:
                await c.executemany(
                    "INSERT INTO kyoten_deliveries (seq, channel, event_id, next_at, created_at)"
                    " VALUES (%s, %s, %s, %s, %s)",
                    delivery_rows(seq, eid, targets, now),
                )
                if not follow_up and old.seen:  # follow-ups came first: they go here too
                    await c.executemany(_BACKFILL, [(t, now, now, eid) for t in targets])
                await c.executemany(
                    "INSERT INTO kyoten_open_problems VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)"
                    " ON CONFLICT (channel, event_id) DO NOTHING",
                    open_problem_rows(event, targets, new, now),
                )
            if new != old:
                await conn.execute(_WRITE_STATE, (*new.row(eid, now), eid))
            change = open_problem_change(old, new)
            if change == "close":
                await conn.execute("DELETE FROM kyoten_open_problems WHERE event_id=%s", (eid,))
            elif change == "update":
                await conn.execute(
                    "UPDATE kyoten_open_problems SET severity=%s, acknowledged=%s, changed_at=%s"
                    " WHERE event_id=%s",
                    (new.severity, new.acknowledged, now, eid),
                )
            return Accepted(True, targets)

        future: asyncio.Future[Accepted] = asyncio.get_running_loop().create_future()
        self._intake.append(_Pending(run, future))
        self._intake_wake.set()
        return await future

    # -- delivery ------------------------------------------------------------------------

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
    ) -> AsyncIterator[_PgClaim]:
        role = f"lane:{channel}"
        async with self._lock(role):
            conn = await self._conn(role)
            async with conn.transaction():
                if ordered:
                    cur = await conn.execute(_CLAIM, (channel, now, now - follow_up_wait, limit))
                else:
                    cur = await conn.execute(_CLAIM_ANY, (channel, now, limit))
                items = [
                    Claimed(
                        id=r[0],
                        attempts=r[1],
                        created_at=r[2],
                        event=event_from_json(json.loads(r[3])),
                        thread=json.loads(r[4]) if r[4] else None,
                        resolved=bool(r[5]),
                    )
                    for r in await cur.fetchall()
                ]
                yield _PgClaim(conn, channel, self.node, self.clock, items)

    # -- queries -------------------------------------------------------------------------

    async def due(self, channel: str, now: float, limit: int) -> int:
        async def run(conn: Conn) -> int:
            cur = await conn.execute(_DUE, (channel, now, limit))
            row = await cur.fetchone()
            return int(row[0]) if row else 0

        return await self._run("misc", run)

    async def pace(self, channel: str, rate: float, burst: int) -> float | None:
        async def run(conn: Conn) -> float:
            cur = await conn.execute(_PACE, (channel, burst, burst, rate))
            row = await cur.fetchone()
            tokens = float(row[0]) if row else 0.0
            return 0.0 if tokens >= 0 else -tokens / rate

        return await self._run("pace", run)

    async def open_problems(self, channel: str) -> tuple[OpenProblem, ...]:
        async def run(conn: Conn) -> tuple[OpenProblem, ...]:
            cur = await conn.execute(
                "SELECT event_id, severity, name, host, acknowledged, opened_at, changed_at,"
                " tags FROM kyoten_open_problems WHERE channel=%s ORDER BY opened_at, event_id",
                (channel,),
            )
            return tuple(open_problem_from_row(r) for r in await cur.fetchall())

        return await self._run("misc", run)

    async def backlog(self) -> dict[str, Backlog]:
        async def run(conn: Conn) -> dict[str, Backlog]:
            out: dict[str, dict[str, Any]] = {}
            cur = await conn.execute(
                "SELECT channel, count(*), min(created_at) FROM kyoten_deliveries"
                " WHERE status='pending' GROUP BY channel"
            )
            for c, n, oldest in await cur.fetchall():
                out.setdefault(c, {}).update(pending=n, oldest=oldest)
            cur = await conn.execute(
                "SELECT channel, count(*) FROM kyoten_deliveries WHERE status='dead'"
                " GROUP BY channel"
            )
            for c, n in await cur.fetchall():
                out.setdefault(c, {})["dead"] = n
            cur = await conn.execute(
                "SELECT channel, count(*) FROM kyoten_open_problems GROUP BY channel"
            )
            for c, n in await cur.fetchall():
                out.setdefault(c, {})["open_problems"] = n
            return {c: Backlog(**v) for c, v in out.items()}

        return await self._run("misc", run)

    async def dead_letters(self, channel: str | None = None, limit: int = 100) -> list[DeadLetter]:
        async def run(conn: Conn) -> list[DeadLetter]:
            cur = await conn.execute(
                "SELECT d.id, d.channel, d.event_id, e.kind, e.body, d.attempts,"
                " coalesce(d.last_error, ''), d.created_at FROM kyoten_deliveries d"
                " JOIN kyoten_events e ON e.seq = d.seq WHERE d.status='dead'"
                " AND (%s::text IS NULL OR d.channel = %s) ORDER BY d.id DESC LIMIT %s",
                (channel, channel, limit),
            )
            return [dead_letter_from_row(r) for r in await cur.fetchall()]

        return await self._run("misc", run)

    async def replay(self, now: float, channel: str | None = None, ids: Sequence[int] = ()) -> int:
        async def run(conn: Conn) -> int:
            cur = await conn.execute(
                "UPDATE kyoten_deliveries SET status='pending', attempts=0, next_at=%s,"
                " finished_at=NULL, finished_by=NULL WHERE status='dead'"
                " AND (%s::text IS NULL OR channel=%s)"
                " AND (cardinality(%s::bigint[]) = 0 OR id = ANY(%s::bigint[]))",
                (now, channel, channel, list(ids), list(ids)),
            )
            return cur.rowcount

        return await self._run("misc", run)

    async def purge(self, before: float) -> int:
        async def run(conn: Conn) -> int:
            await conn.execute(
                "DELETE FROM kyoten_deliveries WHERE status IN ('done', 'muted') AND seq IN"
                " (SELECT seq FROM kyoten_events WHERE accepted_at < %s)",
                (before,),
            )
            cur = await conn.execute(
                "DELETE FROM kyoten_events e WHERE accepted_at < %s AND NOT EXISTS"
                " (SELECT 1 FROM kyoten_deliveries d WHERE d.seq = e.seq)",
                (before,),
            )
            # A resolved event whose messages are all purged is forgotten with its receipts.
            gone = (
                "SELECT event_id FROM kyoten_event_state s WHERE resolved AND changed_at < %s"
                " AND NOT EXISTS (SELECT 1 FROM kyoten_events e WHERE e.event_id = s.event_id)"
            )
            await conn.execute(f"DELETE FROM kyoten_receipts WHERE event_id IN ({gone})", (before,))
            await conn.execute(
                f"DELETE FROM kyoten_event_state WHERE event_id IN ({gone})", (before,)
            )
            return cur.rowcount

        return await self._run("misc", run)

    # -- the alert-path canary's shared state (kyoten.alerting.canary_loop.CanaryStore) ------

    async def record_canary(self, token: str, at: float, node: str) -> None:
        """A canary came back to this bridge: any bridge sharing the outbox may have sent it."""

        async def run(conn: Conn) -> None:
            await conn.execute(
                "INSERT INTO kyoten_canary_receipts VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
                (token, at, node),
            )
            # an hour of receipts is all any bridge's deadline can ask about
            await conn.execute(
                "DELETE FROM kyoten_canary_receipts WHERE received_at < %s", (at - 3600,)
            )

        await self._run("misc", run)

    async def canary_receipts(self, tokens: Sequence[str]) -> dict[str, float]:
        """When each of ``tokens`` reached any bridge."""

        async def run(conn: Conn) -> dict[str, float]:
            cur = await conn.execute(
                "SELECT token, received_at FROM kyoten_canary_receipts WHERE token = ANY(%s)",
                (list(tokens),),
            )
            return {str(t): float(at) for t, at in await cur.fetchall()}

        return await self._run("misc", run)

    async def claim_own_alert(self, proposed: str, at: float) -> str:
        """The id of the own alert every bridge sharing this outbox raises: the open one, or
        ``proposed`` when none is open. One row, taken under its lock, so two bridges that
        judge the path broken at the same moment still agree."""

        async def run(conn: Conn) -> str:
            cur = await conn.execute(
                "INSERT INTO kyoten_canary_alert VALUES (1, %s, true, %s) ON CONFLICT (slot)"
                " DO UPDATE SET event_id = CASE WHEN kyoten_canary_alert.open"
                " THEN kyoten_canary_alert.event_id ELSE excluded.event_id END,"
                " open = true, changed_at = excluded.changed_at RETURNING event_id",
                (proposed, at),
            )
            row = await cur.fetchone()
            return str(row[0]) if row else proposed

        return await self._run("misc", run)

    async def release_own_alert(self, event_id: str, at: float) -> None:
        """The own alert ``event_id`` is resolved: the next incident gets a new id."""

        async def run(conn: Conn) -> None:
            await conn.execute(
                "UPDATE kyoten_canary_alert SET open = false, changed_at = %s WHERE event_id = %s",
                (at, event_id),
            )

        await self._run("misc", run)


async def _all(conn: Conn, batch: Sequence[_Pending]) -> list[Any]:
    return [await job.fn(conn) for job in batch]
