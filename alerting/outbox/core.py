"""What every outbox backend shares: the interface, its value types and the pure row building.

The pipeline talks to :class:`Outbox` only; :mod:`.sqlite` and :mod:`.postgres` implement it.
Both backends import this module and nothing of each other, so the logic they must agree on —
what a stored row holds, what an event does to its open-problem rows and to a channel's receipt
— is written once here, and a backend keeps only its SQL, its transactions and its engine
(group commit, row locks). Which channels an event is delivered to is decided by
:func:`kyoten.alerting.routing.fan_out`; a backend only reads what that function needs.

Nothing here does I/O (no database driver is imported: an import-linter contract in
``pyproject.toml`` keeps it so). The delivery guarantees are described in
:mod:`kyoten.alerting.outbox`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from ..channels.base import OpenProblem, Receipt
from ..events import Event, Kind, Severity, Tag, UpdateAction

# -- value types ---------------------------------------------------------------------------


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


# -- the interface -------------------------------------------------------------------------


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
    """Durable store of the bridge; see :mod:`kyoten.alerting.outbox` for the guarantees."""

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


# -- rows, built the same way by every backend ---------------------------------------------


def delivery_rows(
    seq: int, event_id: str, channels: Sequence[str], now: float
) -> list[tuple[Any, ...]]:
    """``deliveries`` rows ``(seq, channel, event_id, next_at, created_at)``, one per channel,
    due at once."""
    return [(seq, c, event_id, now, now) for c in channels]


def tags_json(event: Event) -> str:
    """Tags as stored in the ``open_problems`` rows."""
    return json.dumps([[t.tag, t.value] for t in event.tags])


def open_problem_change(event: Event) -> tuple[Literal["open", "close", "update"], bool | None]:
    """What ``event`` does to its open-problem rows: ("open"|"close"|"update", the
    acknowledged flag it sets, or None to keep the stored one)."""
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


def open_problem_rows(
    event: Event, channels: Sequence[str], acknowledged: bool, now: float
) -> list[tuple[Any, ...]]:
    """``open_problems`` rows opening (or refreshing) ``event`` on each of ``channels``:
    ``(channel, event_id, severity, name, host, acknowledged, opened_at, changed_at, tags)``."""
    if not channels:
        return []
    tags = tags_json(event)
    return [
        (c, event.event_id, int(event.severity), event.name, event.host, acknowledged, now,
         now, tags)
        for c in channels
    ]  # fmt: skip


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


def dead_letter_from_row(row: Sequence[Any]) -> DeadLetter:
    """``(id, channel, event_id, kind, body, attempts, error, created_at)``; ``body`` is the
    stored event's JSON, of which only the name is kept."""
    return DeadLetter(
        row[0], row[1], row[2], row[3], json.loads(row[4])["name"], row[5], row[6], row[7]
    )


def receipt_change(outcome: Done | Muted, event: Event) -> Literal["store", "drop"] | None:
    """What a finished delivery of ``event`` does to its channel's receipt for the event:
    "store" ``outcome.receipt`` (a problem delivered with one: its follow-ups thread under it),
    "drop" it (the problem ended), or nothing."""
    if isinstance(outcome, Done) and outcome.receipt and event.kind is Kind.PROBLEM:
        return "store"
    if event.closes:
        return "drop"
    return None
