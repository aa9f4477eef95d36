"""One incident, one conversation: which events share a thread, and who leads it (pure).

Alertmanager is the model: events whose **group key** is equal belong together (its
``group_by``), and a new group waits **group_wait** seconds before its first message, so that the
root cause and its symptoms — which a fault raises within seconds of each other — arrive as one
message led by the **most severe**, not as a burst of unrelated ones. Later events of the same
incident *join* its thread (Slack: a reply, and the top message refreshed; mail: a reply in the
same thread); updates and recoveries of any member go to the thread too, and the top message
turns resolved only when every member is.

A channel opts in with ``group: {by: [...], wait: 10, window: 300}`` (a pipeline key, next to
``digest``); ``by`` is a list of what makes the key, default :data:`DEFAULT_BY`:

* ``tag:<name>`` — the values of an event tag (default ``tag:scope``, the scope every kyoten
  trigger carries: availability, performance, capacity, notice; the bridge's own alert has
  ``scope: alert-path``);
* ``host_group`` — the event's host groups (``{TRIGGER.HOSTGROUP.NAME}``; a cross-site
  deployment keeps its hosts of both sites in one group);
* ``host``, ``severity``, ``send_to``.

An incident stays open for new members while any member is open and, after that, for
``window`` seconds more since its last message (so a flapping trigger rejoins its thread).

**Trigger dependencies.** Zabbix itself raises no problem for a trigger while a trigger it
depends on is in problem, so most symptoms never arrive. When a symptom fired *first* (its master
later), both are open: kyoten's templates tag a dependent trigger ``depends_on: <master's name>``
(:data:`DEPENDS_TAG`; add it to your own), and the bridge then puts the symptom in its master's
incident whatever the group key, and never lets a symptom lead while its master is a member.

Nothing here does I/O or keeps time: the pipeline holds the incidents of each lane in memory,
calls :func:`plan` on the deliveries it claimed, sends what comes back, and calls
:meth:`Incident.record` for what went out. After a restart, follow-ups still reach their thread
(each member's delivery stored the thread's receipt), but new events start a new incident.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .events import Event, Kind, UpdateAction

#: The default group key: the scope tag and the host group.
DEFAULT_BY = ("tag:scope", "host_group")
#: A dependent trigger's tag naming its master trigger (see the module docstring).
DEPENDS_TAG = "depends_on"
#: The receipt key that marks a thread as an incident's (its group key).
RECEIPT_KEY = "group"
_SIMPLE = ("host_group", "host", "severity", "send_to")


@dataclass(frozen=True)
class GroupPolicy:
    """A channel's grouping: key parts, group_wait, and how long a quiet incident stays open."""

    by: tuple[str, ...] = DEFAULT_BY
    wait: float = 10.0
    window: float = 300.0


def check_by(by: Iterable[str]) -> list[str]:
    """Problems with a ``by`` list (an empty list means none)."""
    bad = []
    for part in by:
        if part in _SIMPLE or (part.startswith("tag:") and len(part) > 4):
            continue
        bad.append(f"unknown key part {part!r} (tag:<name>, {', '.join(_SIMPLE)})")
    return bad


def group_key(event: Event, by: Sequence[str]) -> str:
    """The group key of ``event``: its values for each part of ``by``, joined."""
    parts = []
    for part in by:
        if part.startswith("tag:"):
            values: Iterable[str] = event.tag_values(part[4:])
        elif part == "host_group":
            values = event.host_groups
        elif part == "host":
            values = (event.host,)
        elif part == "severity":
            values = (event.severity.label,)
        else:
            values = (event.send_to,)
        parts.append(f"{part}={','.join(sorted(set(values)))}")
    return ";".join(parts)


def masters(event: Event) -> tuple[str, ...]:
    """Names of the triggers ``event``'s trigger depends on (its ``depends_on`` tags)."""
    return event.tag_values(DEPENDS_TAG)


def leader(events: Iterable[Event]) -> Event:
    """Who leads: the most severe, earliest event, never a symptom of another member."""
    pool = list(events)
    names = {e.name for e in pool}
    causes = [e for e in pool if not set(masters(e)) & names] or pool
    return min(causes, key=lambda e: (-int(e.severity), _arrival(e.event_id)))


def _arrival(event_id: str) -> tuple[int, int, str]:
    """Zabbix's event ids grow with time; other ids (the bridge's own alert-path alert,
    ``kyoten-path-…``) are not numbers and sort after them, by their text."""
    return (0, int(event_id), "") if event_id.isdigit() else (1, 0, event_id)


@dataclass
class Incident:
    """One incident on one channel, as the pipeline remembers it."""

    key: str
    receipt: Mapping[str, str]
    leader: Event
    members: dict[str, Event] = field(default_factory=dict)
    resolved: set[str] = field(default_factory=set)
    acked: set[str] = field(default_factory=set)
    last: float = 0.0

    @property
    def open(self) -> bool:
        return bool(set(self.members) - self.resolved)

    def accepts(self, now: float, window: float) -> bool:
        """Whether a new event of this key joins (open, or quiet for less than ``window``)."""
        return self.open or now - self.last < window

    def record(self, events: Iterable[Event], now: float) -> None:
        """What went out: members joined, members resolved."""
        for e in events:
            if e.kind is Kind.PROBLEM:
                self.members[e.event_id] = e
                if self.leader.event_id not in self.members or (leader([self.leader, e]) is e):
                    self.leader = e
            if e.closes:
                self.resolved.add(e.event_id)
            _acked(self.acked, e)
        self.last = now


def _acked(acked: set[str], event: Event) -> None:
    """Keep ``acked`` up to date with what ``event`` says (a problem, or an update)."""
    if event.kind is Kind.PROBLEM and event.acknowledged:
        acked.add(event.event_id)
    if event.update is not None:
        if UpdateAction.UNACKNOWLEDGE in event.update.actions:
            acked.discard(event.event_id)
        elif UpdateAction.ACKNOWLEDGE in event.update.actions:
            acked.add(event.event_id)


@dataclass(frozen=True)
class GroupNotice:
    """What a channel is told about an incident, with :attr:`Notification.group`.

    :ivar first: the incident's first message (no thread yet): announce ``events`` led by
        ``leader``; the channel returns the receipt of that message.
    :ivar events: what this message is about, in order: new members (problems), or follow-ups
        (updates, recoveries) of members.
    :ivar members: every member so far, this message's included (for the top message).
    :ivar resolved_ids: members already resolved, this message's included.
    """

    key: str
    first: bool
    leader: Event
    events: tuple[Event, ...]
    members: tuple[Event, ...]
    resolved_ids: frozenset[str]
    acked_ids: frozenset[str] = frozenset()

    @property
    def all_resolved(self) -> bool:
        return bool(self.members) and {e.event_id for e in self.members} <= self.resolved_ids

    @property
    def open_members(self) -> tuple[Event, ...]:
        return tuple(e for e in self.members if e.event_id not in self.resolved_ids)


@dataclass(frozen=True)
class Batch:
    """Deliveries sent as one message: their ids, the notice, the thread it goes to."""

    ids: tuple[int, ...]
    notice: GroupNotice
    thread: Mapping[str, str] | None


def _notice(
    key: str, incident: Incident | None, events: Sequence[Event], first: bool
) -> GroupNotice:
    members = dict(incident.members) if incident else {}
    resolved = set(incident.resolved) if incident else set()
    acked = set(incident.acked) if incident else set()
    for e in events:
        if e.kind is Kind.PROBLEM:
            members[e.event_id] = e
        if e.closes:
            resolved.add(e.event_id)
        _acked(acked, e)
    pool = [incident.leader, *members.values()] if incident else list(members.values())
    lead = leader(pool) if pool else events[0]
    return GroupNotice(key, first, lead, tuple(events), tuple(members.values()),
                       frozenset(resolved), frozenset(acked))  # fmt: skip


def plan(
    items: Sequence[tuple[int, Event, Mapping[str, str] | None]],
    incidents: Mapping[str, Incident],
    policy: GroupPolicy,
    now: float,
) -> tuple[list[Batch], list[int]]:
    """Split claimed deliveries ``(id, event, thread)`` into grouped batches and the ids left
    to the ordinary one-message-per-event path (events of other sources, follow-ups of events
    that were not grouped).

    Problems join an open incident of their key (or of a member they depend on), else start a
    new one with the other new problems of their key; follow-ups of members go to their thread
    together, one message per incident.
    """
    batches: list[Batch] = []
    alone: list[int] = []
    fresh: dict[str, list[tuple[int, Event]]] = {}
    joins: dict[str, list[tuple[int, Event]]] = {}
    follows: dict[str, list[tuple[int, Event]]] = {}
    threads: dict[str, Mapping[str, str]] = {}
    by_name = {e.name: k for k, inc in incidents.items() for e in inc.members.values()}
    for item_id, event, thread in items:
        if event.kind is not Kind.PROBLEM:
            key = (thread or {}).get(RECEIPT_KEY)
            if key is None or thread is None:
                alone.append(item_id)
                continue
            follows.setdefault(key, []).append((item_id, event))
            threads[key] = thread
            continue
        if event.source != 0 or thread:  # not a trigger event, or already announced
            alone.append(item_id)
            continue
        key = group_key(event, policy.by)
        for master in masters(event):  # a symptom goes where its master is
            if master in by_name:
                key = by_name[master]
                break
        incident = incidents.get(key)
        if incident is not None and incident.accepts(now, policy.window):
            joins.setdefault(key, []).append((item_id, event))
        else:
            fresh.setdefault(key, []).append((item_id, event))
    # a symptom whose master starts an incident in this very batch joins that one
    names = {e.name: k for k, group in fresh.items() for _, e in group}
    for key in list(fresh):
        for entry in list(fresh[key]):
            target = next((names[m] for m in masters(entry[1]) if m in names), key)
            if target != key:
                fresh[key].remove(entry)
                fresh[target].append(entry)
        if not fresh[key]:
            del fresh[key]
    for key, group in fresh.items():
        events = [e for _, e in group]
        batches.append(Batch(tuple(i for i, _ in group), _notice(key, None, events, True), None))
    for key, group in joins.items():
        incident = incidents[key]
        events = [e for _, e in group]
        batches.append(
            Batch(
                tuple(i for i, _ in group), _notice(key, incident, events, False), incident.receipt
            )
        )
    for key, group in follows.items():
        receipt = threads[key]
        incident = incidents.get(key)
        if incident is not None and dict(incident.receipt) != dict(receipt):
            incident = None  # an older incident of the same key: its thread, not the new one's
        events = [e for _, e in group]
        batches.append(
            Batch(tuple(i for i, _ in group), _notice(key, incident, events, False), receipt)
        )
    return batches, alone


def receipt_of(key: str, sent: Mapping[str, Any] | None) -> dict[str, str] | None:
    """The thread receipt every member stores: the channel's receipt plus the group key."""
    if not sent:
        return None
    return {**{k: str(v) for k, v in sent.items()}, RECEIPT_KEY: key}
