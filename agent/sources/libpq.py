"""Simple-protocol queries straight through libpq, one at a time or several at once.

The collector's queries return text it reads by column name, so psycopg's cursor (column
descriptions, loaders, row makers) is bookkeeping it does not need; at plugin rates that
bookkeeping was a third of a Pgpool poll. These helpers use the libpq calls psycopg itself
wraps, on connections psycopg opened and the Connector manages (locks, deadlines).
"""

from __future__ import annotations

import hashlib
import select
import time
import weakref
from collections.abc import Callable, Sequence
from typing import Any

import psycopg
from kyoten.agent.errors import QueryError
from kyoten.agent.snapshot import Rows
from psycopg import pq

Query = tuple[psycopg.Connection[Any], str, Sequence[str] | None]  # conn, SQL, columns


def rows_of(res: pq.abc.PGresult, columns: Sequence[str] | None = None) -> Rows:
    """A result as {column: text} rows, or the server's error raised as psycopg's class.

    ``columns`` limits the decoding to the ones used (SHOW POOL_PROCESSES has a row per
    Pgpool child and only its status is needed).
    """
    if res.status == pq.ExecStatus.TUPLES_OK:
        names = [(res.fname(i) or b"").decode() for i in range(res.nfields)]
        wanted = [(c, n) for c, n in enumerate(names) if columns is None or n in columns]
        return tuple(
            {
                n: "" if (v := res.get_value(r, c)) is None else v.decode("utf-8", "replace")
                for c, n in wanted
            }
            for r in range(res.ntuples)
        )
    if res.status == pq.ExecStatus.COMMAND_OK:
        return ()
    message = (res.error_message or b"").decode("utf-8", "replace").strip()
    sqlstate = (res.error_field(pq.DiagnosticField.SQLSTATE) or b"").decode()
    cls: type[psycopg.Error] = psycopg.OperationalError
    if sqlstate:
        try:
            cls = psycopg.errors.lookup(sqlstate)
        except KeyError:
            cls = psycopg.DatabaseError
    raise cls(message or f"query failed ({pq.ExecStatus(res.status).name})")


class PsycopgSession:
    """A :class:`~kyoten.agent.sources.session.Session` over a psycopg connection: psycopg's
    errors come out as QueryError, as from the ctypes driver."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn

    @property
    def server_version(self) -> int:
        return self.conn.info.server_version

    @property
    def raw(self) -> object:
        return self.conn

    def query(
        self, command: str, columns: Sequence[str] | None = None, *, prepare: bool = False
    ) -> Rows:
        try:
            if prepare:
                return prepared_query(self.conn, command, columns)
            return simple_query(self.conn, command, columns)
        except psycopg.Error as exc:
            sqlstate = "57014" if isinstance(exc, psycopg.errors.QueryCanceled) else ""
            raise QueryError(str(exc), exc.sqlstate or sqlstate) from exc


_PREPARED: weakref.WeakKeyDictionary[psycopg.Connection[Any], set[bytes]] = (
    weakref.WeakKeyDictionary()
)


def prepared_query(
    conn: psycopg.Connection[Any], command: str, columns: Sequence[str] | None = None
) -> Rows:
    """``command`` as a named prepared statement of this connection (prepared on first use,
    then only executed: PQexecPrepared, text results, as ``simple_query`` gives them)."""
    name = b"kyoten_" + hashlib.sha1(command.encode()).hexdigest()[:16].encode()
    with conn.lock:
        known = _PREPARED.setdefault(conn, set())
        if name not in known:
            rows_of(conn.pgconn.prepare(name, command.encode()))
            known.add(name)
        res = conn.pgconn.exec_prepared(name, [])
    return rows_of(res, columns)


def simple_query(
    conn: psycopg.Connection[Any], command: str, columns: Sequence[str] | None = None
) -> Rows:
    """One query through PQexec, which returns the last result set: the one Pgpool fills
    when it sends an empty set first (SHOW POOL_PROCESSES, SHOW POOL_VERSION in 4.3).

    PQexec releases the GIL while it waits, and the Connector's deadline (cancel request,
    then socket shutdown) ends the wait as it does for a cursor.
    """
    with conn.lock:
        res = conn.pgconn.exec_(command.encode())
    return rows_of(res, columns)


class Batch:
    """Queries on several connections at once, each sent as soon as its connection is held.

    A pass that must take several connections (locks, maybe a reconnect) sends the first
    query while it takes the next connection, so the servers' work overlaps the taking;
    :meth:`wait` then collects every answer. The waits overlap too: a poll that needs
    Pgpool's view and a live check of every backend costs the slowest round trip instead of
    their sum. One connection failing does not disturb the others. Each connection is read
    to the end (last result kept, as PQexec does), so it is left idle and reusable.
    """

    def __init__(self) -> None:
        self._queries: list[Query] = []
        self._out: list[Rows | psycopg.Error | None] = []
        self._by_fd: dict[int, int] = {}

    def send(
        self, conn: psycopg.Connection[Any], command: str, columns: Sequence[str] | None = None
    ) -> None:
        """Send ``command`` on ``conn`` without waiting; its answer is item n of :meth:`wait`
        for the n-th call (a failed send is that item's error)."""
        i = len(self._queries)
        self._queries.append((conn, command, columns))
        self._out.append(None)
        try:
            conn.pgconn.send_query(command.encode())
            self._by_fd[conn.pgconn.socket] = i
        except psycopg.Error as exc:
            self._out[i] = exc

    def wait(
        self, deadline: float, done: Callable[[int], None] | None = None
    ) -> list[Rows | psycopg.Error]:
        """A result or error for every query sent, in sending order.

        The Connector's deadline shuts the sockets of late servers, which wakes the wait
        here; ``deadline`` is only the last resort. ``done(i)`` is called as soon as query
        ``i`` has its answer (to stop its deadline).
        """
        queries, out, by_fd = self._queries, self._out, self._by_fd
        last: list[pq.abc.PGresult | None] = [None] * len(queries)
        while by_fd:
            left = deadline + 0.5 - time.monotonic()
            ready = select.select(list(by_fd), [], [], max(left, 0))[0] if left > 0 else []
            if not ready:
                for i in by_fd.values():
                    out[i] = psycopg.errors.QueryCanceled("no answer within the deadline")
                break
            for fd in ready:
                i = by_fd[fd]
                pgconn = queries[i][0].pgconn
                try:
                    pgconn.consume_input()
                    while not pgconn.is_busy():
                        res = pgconn.get_result()
                        if res is None:
                            del by_fd[fd]
                            if done is not None:
                                done(i)
                            got = last[i]
                            out[i] = rows_of(got, queries[i][2]) if got is not None else ()
                            break
                        last[i] = res
                except psycopg.Error as exc:
                    by_fd.pop(fd, None)
                    out[i] = exc
        return [r if r is not None else psycopg.OperationalError("no result") for r in out]
