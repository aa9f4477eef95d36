"""The durable outbox: accepted events, one delivery row per channel, receipts, open problems.

Two backends implement :class:`Outbox`: SQLite (:mod:`.sqlite`, the default, no server) and
PostgreSQL (:mod:`.postgres`: two bridges, one per site, sharing the work). The pipeline is
written against this protocol only. The interface, its value types and the row building both
backends share live in :mod:`.core`; the backends import that and never each other (import-linter
contracts in ``pyproject.toml``). This package only re-exports :mod:`.core` and builds the
configured backend in :func:`open_outbox`, importing it there so that the driver of the other one
is never loaded. Design notes and the measurements behind the SQLite engine:
``docs/design/outbox.md``.

Delivery guarantee, precisely:

* ``accept`` commits the event, its delivery rows and the open-problem change in one
  transaction; the HTTP answer is sent only after that commit returns. An event that got a 2xx
  is on disk (``synchronous=FULL``: even across power loss; ``NORMAL``: across a process crash).
* A delivery row leaves ``pending`` only in the transaction that records its outcome, after the
  channel returned. **The one window for a duplicate** is between a channel's far end accepting
  a message and that commit: a crash (or, with PostgreSQL, the loss of the claiming bridge's
  connection) there makes the delivery run again after restart/by the other bridge. The pipeline
  claims one delivery at a time outside a storm, so that is at most one repeated message per
  channel; during a storm it is the one digest in flight (a digest lists several events). Everything
  else — Zabbix retrying the same alert, two bridges polling the same rows — collapses on the
  dedup key or is excluded by the row lock. Mail limits the harm further: a re-sent mail has the
  same deterministic Message-ID, so clients fold it.
"""

from __future__ import annotations

from .core import (
    Accepted,
    Backlog,
    Claim,
    Claimed,
    Dead,
    DeadLetter,
    Done,
    Muted,
    Outbox,
    Outcome,
    Retry,
)

__all__ = [
    "Accepted",
    "Backlog",
    "Claim",
    "Claimed",
    "Dead",
    "DeadLetter",
    "Done",
    "Muted",
    "Outbox",
    "Outcome",
    "Retry",
    "open_outbox",
]


def open_outbox(
    backend: str,
    *,
    path: str = "",
    synchronous: str = "FULL",
    conninfo: str = "",
    node: str = "bridge",
) -> Outbox:
    """Build the configured backend (not yet opened)."""
    if backend == "sqlite":
        from .sqlite import SqliteOutbox

        return SqliteOutbox(path, synchronous=synchronous)
    if backend == "postgresql":
        from .postgres import PostgresOutbox

        return PostgresOutbox(conninfo, node=node)
    raise ValueError(f"unknown outbox backend {backend!r}")
