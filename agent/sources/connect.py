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

import psycopg
from kyoten.agent.config import Endpoint
from kyoten.agent.errors import TargetError


def describe_error(exc: BaseException) -> str:
    """libpq's message, one line, without the conninfo libpq sometimes echoes."""
    text = str(exc).strip().replace("\n", " ")
    for noise in ("connection failed: ", "connection is bad: "):
        text = text.replace(noise, "")
    return " ".join(text.split()) or type(exc).__name__


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
        raise TargetError(f"{label} ({ep.address()}): {describe_error(exc)}") from None


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

    @contextmanager
    def connection(
        self,
        name: str,
        ep: Endpoint,
        label: str,
        statement_timeout: float | None,
        deadline: float,
    ) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
        """A connection for one query pass that must end by ``deadline`` (monotonic time).

        Past the deadline the running query is cancelled (a cancel request, which Pgpool and
        PostgreSQL both honour), so a hung server cannot hold a worker, or the target's lock,
        beyond one poll; waiting for the lock is bounded by the same deadline.
        """
        lock = self._lock(name)
        if not lock.acquire(timeout=max(deadline - time.monotonic(), 0.0)):
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
            expiry = _Expiry(conn, deadline - time.monotonic())
            ok = False
            try:
                yield conn
                ok = True
            except psycopg.Error as exc:
                if expiry.fired or isinstance(exc, psycopg.errors.QueryCanceled):
                    raise TargetError(
                        f"{label} ({ep.address()}): no answer within the deadline (query cancelled)"
                    ) from None
                raise TargetError(f"{label} ({ep.address()}): {describe_error(exc)}") from None
            finally:
                expiry.stop()
                if ok and self.persistent and not expiry.fired:
                    self._conns[name] = conn
                else:
                    conn.close()
        finally:
            lock.release()

    def close(self) -> None:
        with self._guard:
            for conn in self._conns.values():
                conn.close()
            self._conns.clear()


class _Expiry:
    """The deadline timer of one query pass: cancel the query, then cut the connection.

    A cancel request is the polite way out, but a Pgpool child waiting on a dead backend may
    not act on it; shutting the socket down is what finally wakes the blocked reader, so
    the worker and the target's lock are free again whatever the server does.
    """

    def __init__(self, conn: psycopg.Connection[tuple[object, ...]], seconds: float) -> None:
        self.conn = conn
        self.fired = False
        self.timer = threading.Timer(max(seconds, 0.001), self._expire)
        self.timer.daemon = True
        self.timer.start()

    def _expire(self) -> None:
        self.fired = True
        with contextlib.suppress(Exception):  # finished or closed meanwhile: nothing to do
            self.conn.cancel_safe(timeout=0.5)
        with contextlib.suppress(Exception):
            fd = self.conn.pgconn.socket
            socket.socket(fileno=os.dup(fd)).shutdown(socket.SHUT_RDWR)

    def stop(self) -> None:
        self.timer.cancel()
