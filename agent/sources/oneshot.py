"""Connections for one call, through libpq's ctypes binding: ``kyoten get``'s connector.

The same contract as :class:`kyoten.agent.sources.connect.Connector` in its non-persistent
mode (a fresh connection per pass, libpq's connect_timeout, a server-side statement_timeout
for PostgreSQL, every failure a TargetError naming host:port, a query past the deadline
cancelled), without importing psycopg. :func:`make_connector` picks this one when libpq can
be loaded, and psycopg's otherwise.
"""

from __future__ import annotations

import time

from kyoten.agent.errors import ConnectError, QueryError, TargetError
from kyoten.agent.sources import pq
from kyoten.agent.sources.session import LABELS, describe_error

TYPE_CHECKING = False  # kyoten get imports no typing (see kyoten.agent.records)
if TYPE_CHECKING:
    from types import TracebackType

    from kyoten.agent.sources.connect import Connector, Target
    from kyoten.agent.sources.session import Session


class OneShot:
    """Hands out one fresh libpq connection per ``target`` block; nothing is kept."""

    persistent = False

    def __init__(self, *, connect_timeout: int) -> None:
        self.connect_timeout = connect_timeout

    def target(
        self, kind: str, t: Target, statement_timeout: float | None, deadline: float
    ) -> _Pass:
        """A context manager giving a Session on a new connection to ``t`` (see Connector)."""
        return _Pass(self, kind, t, statement_timeout, deadline)

    def close(self) -> None:
        """Nothing is kept between calls."""


class _Pass:
    def __init__(
        self,
        owner: OneShot,
        kind: str,
        t: Target,
        statement_timeout: float | None,
        deadline: float,
    ) -> None:
        self.label = f"{LABELS[kind]} {t.name} ({t.endpoint.address()})"
        self.params = t.endpoint.conninfo_kwargs()
        if statement_timeout is not None:
            self.params["options"] = f"-c statement_timeout={int(statement_timeout * 1000)}"
        self.params |= {"application_name": "kyoten", "client_encoding": "UTF8"}
        self.connect_by = min(deadline, time.monotonic() + owner.connect_timeout)
        self.deadline = deadline
        self.conn: pq.PqConnection | None = None

    def __enter__(self) -> Session:
        try:
            self.conn = pq.PqConnection.connect(self.params, self.connect_by)
        except QueryError as exc:
            raise ConnectError(f"{self.label}: {describe_error(exc)}") from None
        return pq.PqSession(self.conn, self.deadline)

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.conn is not None:
            self.conn.close()
        if isinstance(exc, QueryError):
            if exc.canceled:
                raise TargetError(f"{self.label}: no answer within the deadline (query cancelled)")
            raise TargetError(f"{self.label}: {describe_error(exc)}") from None


def make_connector(*, persistent: bool, connect_timeout: int) -> OneShot | Connector:
    """The one-shot libpq connector when nothing is to be kept and libpq loads; psycopg's
    Connector otherwise (the agent 2 plugin, ``check-config --connect``)."""
    if not persistent and pq.library() is not None:
        return OneShot(connect_timeout=connect_timeout)
    from kyoten.agent.sources.connect import Connector

    return Connector(persistent=persistent, connect_timeout=connect_timeout)
