"""Which open problems to close because Zabbix no longer has them open: the pure part.

The bridge learns that a problem ended only from Zabbix's recovery (or close) alert. When that
alert never comes — Zabbix lost the event (the losing side of a split brain held its database),
the bridge was down longer than the media type retries, a close whose update was not
delivered — the problem would stay open in the outbox for ever and keep a tower red after
everything is fine, which teaches a NOC to ignore the tower. So every interval the bridge asks
the Zabbix API which of its open problems are still open (:mod:`.reconcile_loop`), and closes
the others with a synthetic recovery accepted like any Zabbix event: every channel converges
the way it does for a real recovery (the tower calms down, a mail or Slack thread gets the
recovery), through the outbox's order-independent event model.

The decisions are here, free of I/O, so they are tested without a Zabbix:

* only problems open longer than ``grace`` are judged: an event Zabbix is still sending, or
  one the API has not committed yet, is not closed under the NOC's feet;
* only Zabbix's own ids (decimal) are asked about: the bridge's own alert-path alert
  (:data:`.canary.OWN_ID_PREFIX`) is the canary's to resolve, and anything else is not Zabbix's;
* a problem is closed only when the API answered for its batch and did not list it;
* and only when the API shows its host to this token: ``problem.get`` is filtered by the
  user's permissions, so a problem on a host the token cannot read (a missing permission, or
  a host deleted since) looks closed but may not be — it stays open and ``/health`` names the
  host (:func:`visible`).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence

from .canary import OWN_ID_PREFIX
from .channels.base import OpenProblem
from .events import Event, Kind, Tag

#: Tag of every synthetic recovery, for routing rules and for people reading the thread.
RECONCILED_TAG = Tag("kyoten", "reconciled")
#: What the synthetic recovery says instead of Zabbix's recovery message.
MESSAGE = "no longer open in Zabbix; its recovery never reached the bridge"
#: Event ids per ``problem.get`` call (a long ``eventids`` list makes a slow SQL IN list).
BATCH = 200


def judged(problems: Iterable[OpenProblem], now: float, grace: float) -> tuple[OpenProblem, ...]:
    """The open problems to ask Zabbix about: one per event id (a problem is open on each of
    its channels), Zabbix's ids only, open for at least ``grace`` seconds, oldest first."""
    seen: dict[str, OpenProblem] = {}
    for p in problems:
        if p.event_id.startswith(OWN_ID_PREFIX) or not p.event_id.isdigit():
            continue
        if now - p.opened_at < grace:
            continue
        first = seen.get(p.event_id)
        if first is None or p.opened_at < first.opened_at:
            seen[p.event_id] = p
    return tuple(sorted(seen.values(), key=lambda p: (p.opened_at, int(p.event_id))))


def batches(ids: Sequence[str], size: int = BATCH) -> list[list[str]]:
    """``ids`` in chunks of at most ``size``."""
    return [list(ids[i : i + size]) for i in range(0, len(ids), size)]


def to_close(asked: Iterable[OpenProblem], still_open: Iterable[str]) -> tuple[OpenProblem, ...]:
    """Of the problems ``asked`` about, those Zabbix did not list as open. Only call it with
    what the API answered for those very ids: an unanswered batch closes nothing."""
    keep = set(still_open)
    return tuple(p for p in asked if p.event_id not in keep)


def visible(
    candidates: Iterable[OpenProblem], seen_hosts: Iterable[str]
) -> tuple[tuple[OpenProblem, ...], tuple[str, ...]]:
    """Of the problems about to be closed, those whose host the API showed this token, and
    the names of the hosts it did not show (their problems stay open)."""
    seen = set(seen_hosts)
    close = tuple(p for p in candidates if p.host in seen)
    unseen = tuple(sorted({p.host for p in candidates if p.host not in seen}))
    return close, unseen


def decide(
    problems: Iterable[OpenProblem], now: float, grace: float, still_open: Iterable[str]
) -> tuple[OpenProblem, ...]:
    """The whole decision: the problems to close, given the store's rows, the time, the grace
    and the ids the API still has open (:func:`judged`, then :func:`to_close`)."""
    return to_close(judged(problems, now, grace), still_open)


def recovery(problem: OpenProblem, now: float) -> Event:
    """The synthetic recovery closing ``problem``, from what the outbox kept of it: the same
    event id (so it folds into the event's state and threads under its problem), its name,
    severity, host and tags, marked with :data:`RECONCILED_TAG` and :data:`MESSAGE`."""
    when = time.strftime("%Y.%m.%d %H:%M:%S", time.localtime(now))
    tags = problem.tags if RECONCILED_TAG in problem.tags else (*problem.tags, RECONCILED_TAG)
    return Event(
        event_id=problem.event_id,
        kind=Kind.RECOVERY,
        severity=problem.severity,
        name=problem.name,
        host=problem.host,
        tags=tags,
        recovered=when,
        acknowledged=problem.acknowledged,
        subject=f"Resolved (reconciled): {problem.name}",
        message=MESSAGE,
    )
