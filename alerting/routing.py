"""Pure routing: which channels an event goes to (Alertmanager's ``Route.Match``, flattened).

Rules are tried in order; every condition a rule gives must hold; the first matching rule stops
the walk unless it says ``continue: true``. No I/O, no clock: trivially unit-tested.

Follow-ups (updates, recovery) also go wherever their problem went — the pipeline adds those
channels from the store — so a thread is never split because, say, a severity change moved the
event out of a rule's range.
"""

from __future__ import annotations

from collections.abc import Iterable

from .config import Route
from .events import Event


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
