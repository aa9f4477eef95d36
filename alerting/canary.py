"""The alert-path canary, pure part: is Zabbix's whole alert path alive, and if not, why.

Every alert the bridge delivers is raised by Zabbix, so when Zabbix itself stops (both server
nodes down, its database unreachable or read-only behind both Pgpools, no active HA node, an
action or the media type disabled) nothing reaches anyone and the tower stays calm. The bridge
therefore proves the path end to end, all the time, the way Alertmanager's always-firing
Watchdog does, and alerts on its own when that proof fails:

1. every ``interval`` it sends a fresh token to the trapper item ``kyoten.canary`` of the canary
   host (:mod:`.canary_loop` does the I/O);
2. the trigger of the canary template opens one problem per token and the canary action sends it
   through the kyoten media type back to the bridge, like any other alert;
3. the intake recognises the canary's tag and hands the event here instead of to the outbox, so
   canary events never reach people;
4. no token back within ``deadline`` (default three intervals) means the path is broken; direct
   checks that do not need Zabbix to work (``ha_node`` read through the collector, the frontend
   API's ``apiinfo.version``, the trapper connection itself) say *why*.

Nothing here does I/O or reads a clock: :class:`CanaryMonitor` is fed what happened, with its
time, and :func:`verdict` and :func:`own_alert` are functions of that, which is what lets the
tests walk through hours of canary history in microseconds.
"""

from __future__ import annotations

import collections
import enum
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kyoten.agent.catalogue.zabbix import NODE_STATUS

from .events import Event, Kind, Severity, Tag, Update, UpdateAction

#: Technical name of the canary host, created by ``kyoten import --canary``.
HOST = "kyoten-canary"
#: The trapper item the bridge sends tokens to.
KEY = "kyoten.canary"
#: Name of the canary template and of the action that sends its problems to the bridge.
TEMPLATE = "kyoten alert-path canary"
ACTION = "kyoten: alert-path canary to the bridge"
#: The trigger's tags: ``kyoten: canary`` marks the event, ``kyoten.canary.token`` carries the
#: token (the item's value, ``{ITEM.VALUE}``), so the bridge can match it to what it sent.
MARK_TAG, MARK_VALUE = "kyoten", "canary"
TOKEN_TAG = "kyoten.canary.token"
#: Every own alert's event id starts so: what a bridge looks for to join another's alert.
OWN_ID_PREFIX = "kyoten-path-"
#: Tags on the bridge's own alert, for routing rules (``tags: {scope: [alert-path]}``).
OWN_TAGS = (Tag("scope", "alert-path"), Tag("kyoten", "bridge"))

HISTORY_S = 3600.0
"""Round trips kept for the p50/p99 of ``/health`` and ``/metrics``: the last hour."""


def canary_token(event: Event) -> str | None:
    """The token of a canary event, or None when ``event`` is not one.

    The mark tag alone decides: an event that carries it but no token (a hand-edited trigger)
    is still the canary's and must not reach people, so it yields ``""``.
    """
    if MARK_VALUE not in event.tag_values(MARK_TAG):
        return None
    values = event.tag_values(TOKEN_TAG)
    return values[0] if values else ""


class PathState(enum.StrEnum):
    """What the NOC is told about Zabbix's alert path."""

    STARTING = "starting"  # no verdict yet: the first deadline has not passed
    OK = "ok"
    BROKEN = "broken"


@dataclass(frozen=True, slots=True)
class HaNode:
    """One row of Zabbix's ``ha_node`` as the collector reads it."""

    name: str
    status: str  # "active", "standby", "stopped", "unavailable" (the catalogue's words)
    lastaccess_age: float = 0.0  # seconds since the node last wrote its row


#: A running node writes ``ha_node.lastaccess`` every 5 s; an active row older than this means
#: the node cannot write to its database (read-only after a failover, or hung).
STALE_NODE_S = 30.0


@dataclass(frozen=True, slots=True)
class Checks:
    """The direct checks of one round; each is None when it was not configured.

    ``sender``: "" when a server node took the token, else why none did. ``ha``: the nodes of
    ``ha_node``, or the collector's error text (database unreachable, read-only). ``api``: ""
    when the frontend API answered ``apiinfo.version``, else why not.
    """

    sender: str | None = None
    ha: tuple[HaNode, ...] | str | None = None
    ha_read_only: bool = False
    api: str | None = None


@dataclass(frozen=True, slots=True)
class Verdict:
    """The path's state and, when broken, one sentence an operator can act on."""

    state: PathState
    reason: str = ""  # the cause: a short sentence, stable while the fault lasts
    detail: str = ""  # what the checks said, for the operational data


@dataclass
class CanaryMonitor:
    """What was sent and what came back. Times are the caller's clock, in seconds."""

    interval: float
    deadline: float
    started: float
    sent: dict[str, float] = field(default_factory=dict)
    last_sent: float | None = None
    last_ok: float | None = None
    last_rtt: float | None = None
    rtts: collections.deque[tuple[float, float]] = field(default_factory=collections.deque)
    received: int = 0
    unmatched: int = 0

    def note_sent(self, token: str, at: float) -> None:
        """A token went to the trapper (whether or not a node took it)."""
        self.sent[token] = at
        self.last_sent = at
        horizon = at - max(self.deadline * 4, HISTORY_S)
        for old in [t for t, when in self.sent.items() if when < horizon]:
            del self.sent[old]

    def note_received(self, token: str, kind: Kind, at: float) -> float | None:
        """A canary event came back; its round trip in seconds, or None if not ours.

        Only the problem proves the path: Zabbix made a problem from our value and the action
        delivered it. Its recovery and updates are consumed without changing the verdict, and
        a token this bridge did not send (the other site's bridge, or one from before a
        restart) counts as ``unmatched`` and proves nothing about *this* bridge's path.
        """
        self.received += 1
        if kind is not Kind.PROBLEM:
            return None
        sent_at = self.sent.pop(token, None)
        if sent_at is None:
            self.unmatched += 1
            return None
        rtt = max(at - sent_at, 0.0)
        self.last_ok, self.last_rtt = at, rtt
        self.rtts.append((at, rtt))
        while self.rtts and self.rtts[0][0] < at - HISTORY_S:
            self.rtts.popleft()
        return rtt

    def percentiles(self, now: float) -> tuple[float | None, float | None]:
        """p50 and p99 of the round trips of the last hour (None without any)."""
        values = sorted(r for at, r in self.rtts if at >= now - HISTORY_S)
        return _quantile(values, 0.5), _quantile(values, 0.99)


def _quantile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank quantile: a value that really occurred, not an interpolation."""
    if not values:
        return None
    return values[min(len(values) - 1, max(0, math.ceil(q * len(values)) - 1))]


def explain(checks: Checks, deadline: float) -> tuple[str, str]:
    """Why the path is broken, most fundamental cause first: (cause, detail).

    The cause is a short sentence that stays the same while the fault does, so it names the
    problem (a changed cause is an update of the same problem); the detail (the error text, the
    seconds since a node wrote) changes freely and goes into the operational data.
    """
    ha = checks.ha
    if isinstance(ha, str):
        return "Zabbix database unreachable", ha
    if checks.ha_read_only:
        return "Zabbix database is read-only", "in recovery: a standby behind the Pgpools?"
    if ha is not None:
        active = [n.name for n in ha if n.status == "active"]
        states = ", ".join(f"{n.name} {n.status}" for n in ha) or "no node registered"
        if not active:
            return "no active Zabbix server node", states
        if len(active) > 1:
            return f"{len(active)} active Zabbix server nodes", states
        stale = [n for n in ha if n.status == "active" and n.lastaccess_age > STALE_NODE_S]
        if stale:
            n = stale[0]
            return (
                f"Zabbix server {n.name} cannot write to its database",
                f"ha_node not updated for {n.lastaccess_age:.0f} s: database read-only or "
                "unreachable from the server",
            )
    if checks.sender:
        return "no Zabbix server node accepts the canary", checks.sender
    if checks.api:
        return "Zabbix frontend API does not answer", checks.api
    return (
        "Zabbix does not deliver alerts",
        f"no canary alert came back within {deadline:g} s while the servers run: check the "
        f"action '{ACTION}', the kyoten media type and the alerter",
    )


def verdict(monitor: CanaryMonitor, checks: Checks, now: float) -> Verdict:
    """OK while a canary came back within the deadline; STARTING until the first deadline."""
    if monitor.last_ok is not None and now - monitor.last_ok <= monitor.deadline:
        return Verdict(PathState.OK)
    if monitor.last_ok is None and now - monitor.started <= monitor.deadline:
        return Verdict(PathState.STARTING)
    cause, detail = explain(checks, monitor.deadline)
    return Verdict(PathState.BROKEN, cause, detail)


@dataclass(frozen=True, slots=True)
class OwnAlert:
    """The bridge's own problem while the path is broken: its id and when it opened."""

    event_id: str
    opened: float
    reason: str
    detail: str = ""


def own_alert(
    current: OwnAlert | None,
    new: Verdict,
    now: float,
    *,
    node: str,
    severity: Severity,
    joined: str | None = None,
) -> tuple[OwnAlert | None, list[Event]]:
    """The bridge's own problem after ``new``: (what is open now, events to accept).

    A broken path opens one problem; a changed reason while it stays broken is an update on the
    same problem (its thread), not a new alert; the path working again resolves it. STARTING
    changes nothing. ``joined`` is the id of an own alert another bridge already opened in the
    outbox both share: this bridge then raises the same id, which the outbox keeps once, so the
    NOC gets one notification per channel per incident. Ids start with ``kyoten-path-``, never a
    decimal Zabbix event id.
    """
    if new.state is PathState.BROKEN:
        if current is None:
            event_id = joined or f"{OWN_ID_PREFIX}{node}-{int(now)}"
            opened = OwnAlert(event_id, now, new.reason, new.detail)
            return opened, [_event(opened, Kind.PROBLEM, node, severity)]
        if new.reason != current.reason:
            changed = OwnAlert(current.event_id, current.opened, new.reason, new.detail)
            return changed, [_event(changed, Kind.PROBLEM, node, severity, update=True)]
        return current, []
    if new.state is PathState.OK and current is not None:
        return None, [_event(current, Kind.RECOVERY, node, severity)]
    return current, []


def _event(
    alert: OwnAlert, kind: Kind, node: str, severity: Severity, *, update: bool = False
) -> Event:
    name = f"Zabbix alert path broken: {alert.reason}"
    upd = None
    if update:
        upd = Update(frozenset({UpdateAction.COMMENT}), "commented",
                     message=f"now: {alert.reason} ({alert.detail})",
                     user=f"kyoten bridge {node}")  # fmt: skip
        kind = Kind.UPDATE
    return Event(
        event_id=alert.event_id,
        kind=kind,
        severity=severity,
        name=name,
        host=f"kyoten bridge {node}",
        tags=OWN_TAGS,
        opdata=alert.detail,
        update=upd,
    )


def summary(monitor: CanaryMonitor, current: Verdict, now: float) -> dict[str, object]:
    """The canary's part of ``/health`` and ``kyoten bridge status``."""
    p50, p99 = monitor.percentiles(now)
    return {
        "state": current.state.value,
        "reason": current.reason,
        "detail": current.detail,
        "interval_s": monitor.interval,
        "deadline_s": monitor.deadline,
        "last_round_trip_s": monitor.last_rtt,
        "last_ok_age_s": None if monitor.last_ok is None else round(now - monitor.last_ok, 3),
        "round_trip_p50_s": p50,
        "round_trip_p99_s": p99,
        "round_trips_last_hour": sum(1 for at, _ in monitor.rtts if at >= now - HISTORY_S),
        "in_flight": len(monitor.sent),
        "unmatched": monitor.unmatched,
    }


def parse_ha(doc: Mapping[str, Any]) -> tuple[HaNode, ...]:
    """The nodes of a ``kyoten.zabbix.ha`` object (the collector's shape of ``ha_node``), with
    the status words of the catalogue's value map, lower-cased."""
    words = dict(NODE_STATUS.mappings)
    return tuple(
        HaNode(
            str(n["name"]),
            words.get(str(n["status"]), str(n["status"])).lower(),
            float(n.get("lastaccess_age", 0.0)),
        )
        for n in doc.get("nodes", ())
    )
