"""Connections to PostgreSQL-protocol endpoints, one-shot or kept open between polls.

UserParameter mode pays one connection per poll; the agent 2 plugin keeps one per target and
re-opens it after any failure. Both honour libpq's connect_timeout and, for PostgreSQL proper,
a server-side statement_timeout, so a dead or stuck host cannot hold a poll for long.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import psycopg
from kyoten.agent.config import Endpoint
from kyoten.agent.errors import ConnectError, QueryError, TargetError
from kyoten.agent.sources.libpq import PsycopgSession
from kyoten.agent.sources.session import LABELS, describe_error
from kyoten.agent.timer import shared_timer

if TYPE_CHECKING:
    from kyoten.agent.sources.session import Session

__all__ = ["LABELS", "Connector", "Lease", "Target", "describe_error", "open_connection"]


def open_connection(
    ep: Endpoint, *, connect_timeout: int, statement_timeout: float | None, label: str
) -> psycopg.Connection[tuple[object, ...]]:
    """Open an autocommit connection; failures become TargetError naming host:port."""
    params = ep.conninfo_kwargs()
    if statement_timeout is not None:
        params["options"] = f"-c statement_timeout={int(statement_timeout * 1000)}"
    params |= {"connect_timeout": str(connect_timeout), "application_name": "kyoten"}
    try:
        return psycopg.connect(psycopg.conninfo.make_conninfo(**params), autocommit=True)
    except psycopg.Error as exc:
        raise ConnectError(f"{label} ({ep.address()}): {describe_error(exc)}") from None


class Target(Protocol):
    """What the connector needs of a configured target (PostgreSQL, Pgpool-II, Zabbix DB)."""

    @property
    def name(self) -> str: ...

    @property
    def endpoint(self) -> Endpoint: ...


class Connector:
    """Hands out connections per target name; ``persistent`` keeps them between calls.

    A per-target lock serialises users of one connection (the plugin answers concurrently);
    any error closes the connection so the next call starts afresh.
    """

    def __init__(self, *, persistent: bool, connect_timeout: int) -> None:
        self.persistent = persistent
        self.connect_timeout = connect_timeout
        self._conns: dict[str, psycopg.Connection[tuple[object, ...]]] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    def _lock(self, name: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(name, threading.Lock())

    def acquire(
        self,
        name: str,
        ep: Endpoint,
        label: str,
        statement_timeout: float | None,
        deadline: float,
        *,
        wait: bool = True,
    ) -> Lease | None:
        """The connection ``name`` for one query pass that must end by ``deadline``.

        Past the deadline the running query is cancelled (a cancel request, which Pgpool and
        PostgreSQL both honour), so a hung server cannot hold a worker, or the target's lock,
        beyond one poll; waiting for the lock is bounded by the same deadline. With
        ``wait=False`` a connection in use by someone else gives None at once. The caller
        must ``release`` the lease, saying whether the pass went well.
        """
        lock = self._lock(name)
        if wait:
            got = lock.acquire(timeout=max(deadline - time.monotonic(), 0.0))
        else:
            got = lock.acquire(blocking=False)
        if not got:
            if not wait:
                return None
            raise TargetError(
                f"{label} ({ep.address()}): no answer within the deadline "
                "(an earlier request to it is still running)"
            )
        try:
            conn = self._conns.pop(name, None) if self.persistent else None
            if conn is not None and conn.closed:
                conn = None
            if conn is None:
                conn = open_connection(
                    ep,
                    connect_timeout=self.connect_timeout,
                    statement_timeout=statement_timeout,
                    label=label,
                )
        except BaseException:
            lock.release()
            raise
        return Lease(name, f"{label} ({ep.address()})", conn, lock, _Expiry(conn, deadline))

    def release(self, lease: Lease, ok: bool) -> None:
        """End a pass: keep the connection for the next one only if all went well in time."""
        lease.expiry.stop()
        try:
            if ok and self.persistent and not lease.expiry.fired:
                self._conns[lease.name] = lease.conn
            else:
                lease.conn.close()
        finally:
            lease.lock.release()

    @contextmanager
    def connection(
        self,
        name: str,
        ep: Endpoint,
        label: str,
        statement_timeout: float | None,
        deadline: float,
    ) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
        """``acquire`` and ``release`` around a block; query errors become TargetError."""
        lease = self.acquire(name, ep, label, statement_timeout, deadline)
        assert lease is not None  # waiting acquire: a lease or an exception
        ok = False
        try:
            yield lease.conn
            ok = True
        except (psycopg.Error, QueryError) as exc:
            raise lease.error(exc) from None
        finally:
            self.release(lease, ok)

    def acquire_target(
        self,
        kind: str,
        t: Target,
        statement_timeout: float | None,
        deadline: float,
        *,
        wait: bool = True,
    ) -> Lease | None:
        """``acquire`` for a configured target: connection ``kind/name``, labelled by kind."""
        return self.acquire(
            f"{kind}/{t.name}",
            t.endpoint,
            f"{LABELS[kind]} {t.name}",
            statement_timeout,
            deadline,
            wait=wait,
        )

    @contextmanager
    def target(
        self, kind: str, t: Target, statement_timeout: float | None, deadline: float
    ) -> Iterator[Session]:
        """``connection`` for a configured target (see ``acquire_target``), as a Session."""
        with self.connection(
            f"{kind}/{t.name}",
            t.endpoint,
            f"{LABELS[kind]} {t.name}",
            statement_timeout,
            deadline,
        ) as conn:
            yield PsycopgSession(conn)

    def close(self) -> None:
        with self._guard:
            for conn in self._conns.values():
                conn.close()
            self._conns.clear()


@dataclass(frozen=True)
class Lease:
    """One connection held for one query pass (see ``Connector.acquire``)."""

    name: str
    label: str  # "PostgreSQL site-a (10.1.0.11:5432)": what every error starts with
    conn: psycopg.Connection[tuple[object, ...]]
    lock: threading.Lock
    expiry: _Expiry

    def error(self, exc: BaseException) -> TargetError:
        """A failure on this connection as an operator reads it."""
        canceled = isinstance(exc, QueryError) and exc.canceled
        if self.expiry.fired or canceled or isinstance(exc, psycopg.errors.QueryCanceled):
            return TargetError(f"{self.label}: no answer within the deadline (query cancelled)")
        return TargetError(f"{self.label}: {describe_error(exc)}")


class _Expiry:
    """The deadline of one query pass: cancel the query, then cut the connection.

    A cancel request is the polite way out, but a Pgpool child waiting on a dead backend may
    not act on it; shutting the socket down is what finally wakes the blocked reader, so
    the worker and the target's lock are free again whatever the server does. The work runs
    in a thread of its own so that a slow cancel never delays another deadline on the
    shared timer.
    """

    def __init__(self, conn: psycopg.Connection[tuple[object, ...]], deadline: float) -> None:
        self.conn = conn
        self.fired = False
        self.stopped = False
        self._lock = threading.Lock()  # stop() and firing decide once which of them won
        self.timer = shared_timer()
        self.entry = self.timer.call_at(deadline, self._start)

    def _start(self) -> None:
        with self._lock:
            if self.stopped:
                return
            self.fired = True
        threading.Thread(target=self._expire, name="kyoten-expiry", daemon=True).start()

    def _expire(self) -> None:
        with contextlib.suppress(Exception):  # finished or closed meanwhile: nothing to do
            self.conn.cancel_safe(timeout=0.5)
        with contextlib.suppress(Exception):
            fd = self.conn.pgconn.socket
            socket.socket(fileno=os.dup(fd)).shutdown(socket.SHUT_RDWR)

    def stop(self) -> None:
        with self._lock:
            self.stopped = True
        self.timer.cancel(self.entry)
