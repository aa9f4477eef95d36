"""What every outbox backend shares: the interface, its value types and the pure row building.

The pipeline talks to :class:`Outbox` only; :mod:`.sqlite` and :mod:`.postgres` implement it.
Both backends import this module and nothing of each other, so the logic they must agree on —
what a stored row holds, how one event's messages fold into its state whatever order they
arrive in (:func:`fold`), what that does to its open-problem rows and to a channel's receipt —
is written once here, and a backend keeps only its SQL, its transactions and its engine (group
commit, row locks). Which channels an event is delivered to is decided by
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

from ..canary import OWN_ID_PREFIX
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
    """A pending delivery handed to the pipeline, with the receipt its follow-ups thread
    under (the problem's message, or the one a recovery sent before its problem arrived) and
    whether the event is already resolved (a recovery or a close was accepted, in any order)."""

    id: int
    event: Event
    attempts: int
    created_at: float
    thread: Receipt | None
    resolved: bool = False


@dataclass(frozen=True, slots=True)
class Done:
    """Delivered; ``receipt`` (a message later deliveries of the event thread under or edit)
    is kept for the event's other deliveries on the channel."""

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
        to, for a follow-up; for a problem that came after follow-ups, those follow-ups go to its
        channels too), fold it into its event's state and bring the open problems in line with
        that state; commit before returning."""
        ...

    def claim(
        self,
        channel: str,
        limit: int,
        now: float,
        *,
        ordered: bool = True,
        follow_up_wait: float = 0.0,
    ) -> AbstractAsyncContextManager[Claim]:
        """Due deliveries of ``channel``, oldest first, locked against other bridges.

        ``ordered`` (event channels): only a delivery whose event has no pending delivery on
        the channel that comes before it in the event's own order — problem, then updates,
        then recovery, whatever order they arrived in — and a follow-up only once its problem
        is accepted, or has a receipt here, or has waited ``follow_up_wait`` seconds (Zabbix
        retries each alert on its own, so a recovery can overtake its problem). Unordered
        (state channels, which show a snapshot): every due delivery."""
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


# -- one event's state, whatever order its messages arrive in -------------------------------


@dataclass(frozen=True, slots=True)
class EventState:
    """What the outbox knows of one Zabbix event, folded from every message accepted for it.

    Zabbix retries each alert on its own (``alert-path.md`` §d), so a recovery can arrive
    before its problem and an acknowledgement after the recovery, each possibly twice.
    :func:`fold` is commutative, associative and idempotent, so the state after a set of
    messages is the same in every arrival order, duplicates included:

    * ``problem`` and ``resolved`` only ever become true. A recovery or a close resolves the
      event for good: Zabbix opens a new event id for a new problem, so nothing re-opens one.
    * ``acknowledged`` and ``severity`` are last-writer-wins registers, ordered by their
      ``*_stamp``: the problem is below every update, updates are ordered by the time Zabbix
      gives them (``{EVENT.UPDATE.DATE} {EVENT.UPDATE.TIME}``), then by dedup key.
    """

    problem: bool = False
    resolved: bool = False
    acknowledged: bool = False
    ack_stamp: str = ""
    severity: int = 0
    sev_stamp: str = ""

    @property
    def seen(self) -> bool:
        """Whether any message of the event was accepted (every message sets something)."""
        return self.problem or self.resolved or bool(self.sev_stamp)

    def row(self, event_id: str, now: float) -> tuple[Any, ...]:
        """``event_state`` row: ``(event_id, problem, resolved, acknowledged, ack_stamp,
        severity, sev_stamp, changed_at)``."""
        return (event_id, self.problem, self.resolved, self.acknowledged, self.ack_stamp,
                self.severity, self.sev_stamp, now)  # fmt: skip


#: Columns of an ``event_state`` row as :meth:`EventState.row` builds it.
STATE_COLUMNS = (
    "event_id, problem, resolved, acknowledged, ack_stamp, severity, sev_stamp, changed_at"
)


def state_from_row(row: Sequence[Any]) -> EventState:
    """``(problem, resolved, acknowledged, ack_stamp, severity, sev_stamp)``."""
    return EventState(bool(row[0]), bool(row[1]), bool(row[2]), row[3], int(row[4]), row[5])


def _stamp(event: Event) -> str:
    """Where ``event`` stands among the writers of the registers ("" writes nothing)."""
    if event.kind is Kind.PROBLEM:
        return "0"
    if event.kind is Kind.UPDATE:
        assert event.update is not None
        return f"1 {event.update.at}\x1f{event.dedup_key}"
    return ""  # a recovery ends the event; it changes neither register


def _ack(event: Event) -> bool | None:
    """The acknowledged flag ``event`` sets, or None."""
    if event.kind is Kind.PROBLEM:
        return event.acknowledged
    if event.update is None:
        return None
    acts = event.update.actions
    if UpdateAction.UNACKNOWLEDGE in acts:
        return False
    return True if UpdateAction.ACKNOWLEDGE in acts else None


def fold(state: EventState, event: Event) -> EventState:
    """``state`` after ``event`` (see :class:`EventState`; pure, order-independent)."""
    ack, ack_stamp = state.acknowledged, state.ack_stamp
    severity, sev_stamp = state.severity, state.sev_stamp
    stamp = _stamp(event)
    if stamp > sev_stamp:
        severity, sev_stamp = int(event.severity), stamp
    new_ack = _ack(event)
    if new_ack is not None and stamp > ack_stamp:
        ack, ack_stamp = new_ack, stamp
    return EventState(
        problem=state.problem or event.kind is Kind.PROBLEM,
        resolved=state.resolved or event.closes,
        acknowledged=ack,
        ack_stamp=ack_stamp,
        severity=severity,
        sev_stamp=sev_stamp,
    )


# -- rows, built the same way by every backend ---------------------------------------------


def delivery_rows(
    seq: int, event_id: str, channels: Sequence[str], now: float
) -> list[tuple[Any, ...]]:
    """``deliveries`` rows ``(seq, channel, event_id, next_at, created_at)``, one per channel,
    due at once.

    The bridge's own alert-path alert (ids :data:`~kyoten.alerting.canary.OWN_ID_PREFIX`) is
    due from the epoch, so that a grouped lane, which claims what is due ``group_wait`` ago,
    sends it without waiting: the wait collects the symptoms Zabbix raises with a root cause,
    and this alert fires exactly when Zabbix raises nothing (its deadline is three canary
    intervals; a wait on top would pass it)."""
    due = 0.0 if event_id.startswith(OWN_ID_PREFIX) else now
    return [(seq, c, event_id, due, now) for c in channels]


def tags_json(event: Event) -> str:
    """Tags as stored in the ``open_problems`` rows."""
    return json.dumps([[t.tag, t.value] for t in event.tags])


def open_problem_rows(
    event: Event, channels: Sequence[str], state: EventState, now: float
) -> list[tuple[Any, ...]]:
    """``open_problems`` rows opening ``event`` on each of ``channels`` with the event's folded
    ``state`` (none once it is resolved): ``(channel, event_id, severity, name, host,
    acknowledged, opened_at, changed_at, tags)``."""
    if not channels or state.resolved:
        return []
    tags = tags_json(event)
    return [
        (c, event.event_id, state.severity, event.name, event.host, state.acknowledged, now,
         now, tags)
        for c in channels
    ]  # fmt: skip


def open_problem_change(old: EventState, new: EventState) -> Literal["close", "update"] | None:
    """What the event's existing ``open_problems`` rows need after its state went from ``old``
    to ``new``: "close" (delete them all, on every channel), "update" (write the new severity
    and acknowledged flag, and the time of the change, into all of them), or nothing. Rows for
    the channels of the event being accepted are inserted first (:func:`open_problem_rows`,
    keeping rows that exist)."""
    if new.resolved:
        return "close" if not old.resolved else None
    if old.seen and (old.severity, old.acknowledged) != (new.severity, new.acknowledged):
        return "update"
    return None


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


def receipt_change(outcome: Done | Muted) -> Literal["store"] | None:
    """What a finished delivery does to its channel's receipt for the event: "store" the
    receipt the channel returned (a problem's message, or a recovery sent before its problem
    arrived, which the late problem then edits). Receipts are kept while the event is
    remembered — a late update still threads under the problem — and purged with it."""
    if isinstance(outcome, Done) and outcome.receipt:
        return "store"
    return None
