"""Pure routing: which channels an event goes to (Alertmanager's ``Route.Match``, flattened).

Rules are tried in order; every condition a rule gives must hold; the first matching rule stops
the walk unless it says ``continue: true``. No I/O, no clock: trivially unit-tested.

Follow-ups (updates, recovery) also go wherever their problem went, so a thread is never split
because, say, a severity change moved the event out of a rule's range. :func:`fan_out` decides
that, once for every outbox backend: the backend reads where the problem went (from its own
delivery rows, in the transaction that accepts the follow-up) and stores what it returns.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING

from .events import Event, Kind

if TYPE_CHECKING:  # the type only: reading the config validates towers' URLs with their drivers
    from .config import Route


def matches(route: Route, event: Event) -> bool:
    """Whether every condition of ``route`` holds for ``event``."""
    if not route.min_severity <= event.severity <= route.max_severity:
        return False
    for tag, wanted in route.tags.items():
        values = event.tag_values(tag)
        if not values or (wanted and not set(values) & set(wanted)):
            return False
    if route.host_groups and not set(route.host_groups) & set(event.host_groups):
        return False
    return not (route.send_to and event.send_to not in route.send_to)


def route(routes: Iterable[Route], event: Event) -> tuple[str, ...]:
    """The channels for ``event``, in rule order, without repeats."""
    out: list[str] = []
    for r in routes:
        if matches(r, event):
            out.extend(c for c in r.channels if c not in out)
            if not r.cont:
                break
    return tuple(out)


def fan_out(
    event: Event, routed: Sequence[str], problem_went_to: Iterable[str] = ()
) -> tuple[str, ...]:
    """Every channel ``event`` is delivered to.

    ``routed`` is what the rules gave (:func:`route`). A problem goes there only. A follow-up
    (update, recovery) goes there and, after those, to each channel of ``problem_went_to`` —
    the channels its problem was delivered to, in the order the outbox read them — not already
    listed. A problem routed nowhere leaves its follow-ups only what the rules give them.
    """
    if event.kind is Kind.PROBLEM:
        return tuple(routed)
    targets = list(routed)
    for c in problem_went_to:
        if c not in targets:
            targets.append(c)
    return tuple(targets)
