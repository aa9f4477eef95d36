"""The durable outbox: accepted events, one delivery row per channel, receipts, open problems.

Two backends implement :class:`Outbox`: SQLite (default, no server) and PostgreSQL (two bridges,
one per site, sharing the work). The pipeline is written against this protocol only.

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

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Protocol

from ..channels.base import OpenProblem, Receipt
from ..events import Event


@dataclass(frozen=True, slots=True)
class Accepted:
    """Result of :meth:`Outbox.accept`; ``new`` is False for a retry of a stored event."""

    new: bool
    channels: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Claimed:
    """A pending delivery handed to the pipeline, with the problem's receipt if any."""

    id: int
    event: Event
    attempts: int
    created_at: float
    thread: Receipt | None


@dataclass(frozen=True, slots=True)
class Done:
    """Delivered; ``receipt`` (for a problem) is kept for its follow-ups."""

    id: int
    receipt: Receipt | None = None


@dataclass(frozen=True, slots=True)
class Retry:
    """Failed, try again at ``next_at``."""

    id: int
    next_at: float
    error: str


@dataclass(frozen=True, slots=True)
class Dead:
    """Failed for good: kept as a dead letter for ``kyoten bridge replay``."""

    id: int
    error: str


@dataclass(frozen=True, slots=True)
class Muted:
    """Not sent because the channel was in a mute window."""

    id: int


Outcome = Done | Retry | Dead | Muted


@dataclass(frozen=True, slots=True)
class Backlog:
    """Per-channel queue figures for ``/health`` and metrics."""

    pending: int = 0
    oldest: float | None = None  # created_at of the oldest pending delivery
    dead: int = 0
    open_problems: int = 0


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One delivery that gave up."""

    id: int
    channel: str
    event_id: str
    kind: str
    name: str
    attempts: int
    error: str
    created_at: float


class Claim(Protocol):
    """Deliveries claimed for one channel; ``finish`` records their outcomes durably."""

    @property
    def items(self) -> Sequence[Claimed]:
        """The claimed deliveries, oldest first."""
        ...

    async def finish(self, outcomes: Sequence[Outcome]) -> None:
        """Record ``outcomes`` (items not mentioned stay pending, untouched)."""
        ...


class Outbox(Protocol):
    """Durable store of the bridge; see the module docstring for the guarantees."""

    async def open(self) -> None:
        """Connect and create the schema if needed."""
        ...

    async def close(self) -> None:
        """Flush and disconnect."""
        ...

    async def accept(self, event: Event, channels: Sequence[str], now: float) -> Accepted:
        """Store ``event`` with one delivery per channel (plus the channels its problem went
        to, for a follow-up), update the open problems; commit before returning."""
        ...

    def claim(self, channel: str, limit: int, now: float) -> AbstractAsyncContextManager[Claim]:
        """Due deliveries of ``channel`` whose earlier deliveries for the same event are
        finished (per-event order), oldest first, locked against other bridges."""
        ...

    async def due(self, channel: str, now: float, limit: int) -> int:
        """How many of ``channel``'s pending deliveries are due at ``now``, counted up to
        ``limit`` (the pipeline only asks whether a storm's worth is waiting). Locks nothing."""
        ...

    async def pace(self, channel: str, rate: float, burst: int) -> float | None:
        """Take a send slot from ``channel``'s rate limit shared by every bridge on this
        outbox; seconds to wait before using it. None: the outbox serves one bridge only,
        whose own bucket decides."""
        ...

    async def open_problems(self, channel: str) -> tuple[OpenProblem, ...]:
        """The problems routed to ``channel`` that are neither recovered nor closed."""
        ...

    async def backlog(self) -> dict[str, Backlog]:
        """Pending/dead counts per channel."""
        ...

    async def dead_letters(self, channel: str | None = None, limit: int = 100) -> list[DeadLetter]:
        """Dead deliveries, newest first."""
        ...

    async def replay(self, now: float, channel: str | None = None, ids: Sequence[int] = ()) -> int:
        """Make dead deliveries pending again (all, one channel's, or the given ids)."""
        ...

    async def purge(self, before: float) -> int:
        """Forget finished events accepted before ``before``; returns events removed."""
        ...


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
