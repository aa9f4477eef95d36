"""The metric list of the RegisterResponse, held to the agent's registry rules.

The agent checks every registered metric (SDK ``plugin/registry.go``): the key must match
``^[A-Za-z0-9._-]+$`` and the description must not start with a lowercase letter and must end
with a full stop. A violation does not come back as an error: the agent refuses to start or,
for some descriptions, panics. So descriptions are normalised here, and a key the agent would
reject is a programming error raised before anything is sent.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

KEY_RE = re.compile(r"[A-Za-z0-9._-]+")


class MetricError(ValueError):
    """A key the agent would refuse to register."""


def agent_description(text: str) -> str:
    """``text`` as one line with a capital first letter and a final full stop."""
    line = " ".join(text.split())
    if not line:
        raise MetricError("a metric needs a non-empty description")
    line = line[0].upper() + line[1:]
    return line if line.endswith(".") else line + "."


def register_list(metrics: Iterable[tuple[str, str]]) -> tuple[str, ...]:
    """The flat ``(key, description, key, description, ...)`` list the agent expects.

    :raises MetricError: a key is malformed or repeated (the agent would not start).
    """
    flat: list[str] = []
    seen: set[str] = set()
    for key, description in metrics:
        if not KEY_RE.fullmatch(key):
            raise MetricError(f"metric key {key!r} is not of the form [A-Za-z0-9._-]+")
        if key in seen:
            raise MetricError(f"metric key {key!r} is registered twice")
        seen.add(key)
        flat += [key, agent_description(description)]
    if not flat:
        raise MetricError("a plugin must register at least one metric")
    return tuple(flat)
