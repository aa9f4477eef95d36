"""What the query passes need of a connection, whichever driver holds it.

``kyoten get`` (one connection per process) talks to libpq through ctypes
(:mod:`kyoten.agent.sources.pq`): importing psycopg would cost it more CPU than the rest of
the call. The agent 2 plugin keeps psycopg connections (:mod:`kyoten.agent.sources.connect`).
The passes in ``postgres``, ``pgpool`` and ``zabbix`` see only this: one simple-protocol
query at a time, text results by column name, the server's version.
"""

from __future__ import annotations

# The Protocol is for the type checker alone: at run time it would cost ``kyoten get`` the
# import of typing (see kyoten.agent.records), so every module names it under TYPE_CHECKING.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Protocol

    from kyoten.agent.snapshot import Rows

    class Session(Protocol):
        """One connection for one query pass."""

        @property
        def server_version(self) -> int:
            """server_version_num of the server (from the connection handshake)."""
            ...

        @property
        def raw(self) -> object:
            """The driver's connection: what per-connection caches are keyed by."""
            ...

        def query(
            self, command: str, columns: Sequence[str] | None = None, *, prepare: bool = False
        ) -> Rows:
            """Run ``command`` (simple query protocol); the last result set as {column: text}
            rows (NULL as ''), only ``columns`` when given. Raises QueryError.

            ``prepare``: a statement run again and again on a kept connection is prepared once
            and then only executed (the server plans the snapshot statement once, not per poll);
            a one-shot connection ignores it.
            """
            ...


#: connection kinds → how errors name the server; "pgpool-nodes" is a Pgpool target's
#: second connection (the plugin's background reads)
LABELS = {
    "pg": "PostgreSQL",
    "pgpool": "Pgpool-II",
    "pgpool-nodes": "Pgpool-II",
    "zabbix": "Zabbix DB",
}


def describe_error(exc: BaseException) -> str:
    """libpq's message, one line, without the conninfo libpq sometimes echoes."""
    text = str(exc).strip().replace("\n", " ")
    for noise in ("connection failed: ", "connection is bad: "):
        text = text.replace(noise, "")
    return " ".join(text.split()) or type(exc).__name__
