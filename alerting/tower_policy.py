"""What a signal tower shows for the open problems routed to it: a pure function.

The NOC reads the tower from across the room, so the vector has to say three things at a
glance: how bad the worst open problem is (colour per severity), whether someone has taken it
(blinking until every problem of the top severity is acknowledged), and whether a Disaster is
being ignored (the buzzer, only for an unacknowledged Disaster, and silenced automatically after
a while so a forgotten alarm cannot wail all night). Steady green means "nothing open" and, since
the bridge re-asserts it regularly, doubles as a "bridge alive" light.

The functions here take plain data and a clock value and return a
:class:`~kyoten.hardware.model.TowerState`; they do no I/O and keep no state, so the bridge can
recompute the vector from its durable store at any time (after a restart, on every re-assert)
and get the same answer. :func:`next_change` says when the vector will change by itself (the
buzzer's silence deadline): the tower channel returns it from ``apply``, and the pipeline's state
lane (:mod:`kyoten.alerting.pipeline`) applies a fresh snapshot at that time instead of polling.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from kyoten.hardware.errors import TowerConfigError
from kyoten.hardware.model import Colour, Light, TowerState, parse_colour

#: Zabbix severity names as used in config, index = ``{EVENT.NSEVERITY}``
SEVERITY_NAMES = ("not_classified", "information", "warning", "average", "high", "disaster")
DISASTER = 5

DEFAULT_COLOURS: Mapping[int, Colour] = MappingProxyType(
    {
        5: Colour.RED,  # Disaster
        4: Colour.RED,  # High
        3: Colour.AMBER,  # Average
        2: Colour.AMBER,  # Warning
        1: Colour.BLUE,  # Information
        0: Colour.BLUE,  # Not classified
    }
)


@dataclass(frozen=True, slots=True)
class Problem:
    """One open problem routed to a tower.

    :ivar since: epoch seconds from which the buzzer's silence timer runs — when the problem
        opened or last became unacknowledged / escalated, whichever is latest.
    """

    event_id: str
    severity: int
    acknowledged: bool
    since: float

    def __post_init__(self) -> None:
        if not 0 <= self.severity <= DISASTER:
            raise ValueError(f"severity must be 0..5, got {self.severity}")


@dataclass(frozen=True, slots=True)
class TowerPolicy:
    """Per-tower settings of the mapping; the defaults are the mapping of the module docstring
    (:data:`DEFAULT_COLOURS`, steady green when idle, buzzer pattern 1 silenced after 5 min).

    :ivar colours: severity (0-5) → lamp colour.
    :ivar idle: the lamp lit steadily when nothing is open (None: all dark).
    :ivar buzzer: pattern sounded for an unacknowledged Disaster (1 exists on every model).
    :ivar silence_after: seconds after which that buzzer stops by itself (None: never).
    """

    colours: Mapping[int, Colour] = field(default_factory=lambda: DEFAULT_COLOURS)
    idle: Colour | None = Colour.GREEN
    buzzer: int = 1
    silence_after: float | None = 300.0

    def __post_init__(self) -> None:
        missing = [SEVERITY_NAMES[s] for s in range(DISASTER + 1) if s not in self.colours]
        if missing:
            raise TowerConfigError(f"tower colours: no colour for {', '.join(missing)}")
        if not 1 <= self.buzzer <= 11:
            raise TowerConfigError(f"tower buzzer pattern must be 1..11, got {self.buzzer}")
        if self.silence_after is not None and self.silence_after <= 0:
            raise TowerConfigError("tower silence_after must be positive seconds (or null)")

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> TowerPolicy:
        """Build from a config section, collecting every problem into one error::

        colours: {disaster: red, high: red, average: amber, warning: amber,
                  information: white, not_classified: white}   # partial maps merge
        idle: green            # or null for a dark tower
        buzzer: 1
        silence_after: 300     # seconds, or null
        """
        errors: list[str] = []
        colours = dict(DEFAULT_COLOURS)
        raw_colours = settings.get("colours", {}) or {}
        if not isinstance(raw_colours, Mapping):
            errors.append("colours must be a mapping of severity name to colour")
            raw_colours = {}
        for name, colour in raw_colours.items():
            if name not in SEVERITY_NAMES:
                errors.append(
                    f"colours: unknown severity {name!r}; valid: {', '.join(SEVERITY_NAMES)}"
                )
                continue
            try:
                colours[SEVERITY_NAMES.index(name)] = parse_colour(str(colour))
            except TowerConfigError as exc:
                errors.append(f"colours.{name}: {exc}")
        idle: Colour | None = Colour.GREEN
        if "idle" in settings:
            try:
                idle = None if settings["idle"] is None else parse_colour(str(settings["idle"]))
            except TowerConfigError as exc:
                errors.append(f"idle: {exc}")
        buzzer = settings.get("buzzer", 1)
        if not isinstance(buzzer, int) or isinstance(buzzer, bool) or not 1 <= buzzer <= 11:
            errors.append(f"buzzer must be a pattern number 1..11, got {buzzer!r}")
            buzzer = 1
        silence = settings.get("silence_after", 300.0)
        if silence is not None and (
            not isinstance(silence, int | float) or isinstance(silence, bool) or silence <= 0
        ):
            errors.append(f"silence_after must be positive seconds or null, got {silence!r}")
            silence = 300.0
        if errors:
            raise TowerConfigError("; ".join(errors))
        return cls(
            colours=MappingProxyType(colours),
            idle=idle,
            buzzer=buzzer,
            silence_after=None if silence is None else float(silence),
        )


def _buzzing(problem: Problem, now: float, policy: TowerPolicy) -> bool:
    if problem.severity != DISASTER or problem.acknowledged:
        return False
    # the same sum next_change returns, so applying at that very time is silent (no rounding)
    return policy.silence_after is None or now < problem.since + policy.silence_after


def decide(
    problems: Iterable[Problem], now: float, policy: TowerPolicy, *, muted: bool = False
) -> TowerState:
    """The lamp vector for ``problems`` at ``now``.

    Every colour that has an open problem is lit; the colour of the highest open severity blinks
    while any problem of that severity is unacknowledged; the buzzer sounds while an
    unacknowledged Disaster is younger than ``silence_after`` (never when ``muted``: a mute
    window silences the tower but leaves its lamps telling the truth). With nothing open only
    the ``idle`` lamp is lit.
    """
    problems = tuple(problems)
    if not problems:
        lights = {} if policy.idle is None else {policy.idle: Light.ON}
        return TowerState.from_lights(lights)
    lights = {policy.colours[p.severity]: Light.ON for p in problems}
    top = max(p.severity for p in problems)
    if any(p.severity == top and not p.acknowledged for p in problems):
        lights[policy.colours[top]] = Light.BLINK
    buzzing = not muted and any(_buzzing(p, now, policy) for p in problems)
    return TowerState.from_lights(lights, policy.buzzer if buzzing else 0)


def next_change(problems: Iterable[Problem], now: float, policy: TowerPolicy) -> float | None:
    """The earliest time after ``now`` at which :func:`decide` changes without any new event
    (a Disaster's buzzer falling silent), or None if the vector is stable until the next event."""
    if policy.silence_after is None:
        return None
    deadlines = [p.since + policy.silence_after for p in problems if _buzzing(p, now, policy)]
    return min(deadlines, default=None)
