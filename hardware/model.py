"""The lamp vector every protocol encodes: what a tower shows, independent of any wire format.

Colours are named, not tiers: the NH family, LR5, PHN, the serial converters and the HTTP API
all address lamps by colour (PHN and the serial converters only have red, amber and green), and
LA6 maps its tiers to colours in its configuration, so a colour vector is the one shape all of
them can be checked against. A state is always complete: there is no "no change" value on this
side, because PHN has none and a full state is what makes re-asserting a tower idempotent.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from kyoten.hardware.errors import TowerConfigError


class Colour(StrEnum):
    """Lamp colours, in the order of the NH/LR5 ``S`` data bytes."""

    RED = "red"
    AMBER = "amber"
    GREEN = "green"
    BLUE = "blue"
    WHITE = "white"


class Light(StrEnum):
    """What one lamp does. ``BLINK2`` is the second flash pattern of the NH family."""

    OFF = "off"
    ON = "on"
    BLINK = "blink"
    BLINK2 = "blink2"


COLOURS: tuple[Colour, ...] = tuple(Colour)
MAX_BUZZER = 11  # the largest pattern number any model takes (LA6 ``D``/HTTP buzzer 0-11)


def parse_colour(name: str) -> Colour:
    """``"red"`` → :class:`Colour`; anything else is an error that lists the valid names."""
    try:
        return Colour(name.strip().lower())
    except ValueError:
        raise TowerConfigError(
            f"unknown colour {name!r}; valid colours: {', '.join(COLOURS)}"
        ) from None


def parse_light(name: str) -> Light:
    """``"blink"`` → :class:`Light`; anything else is an error that lists the valid names."""
    try:
        return Light(name.strip().lower())
    except ValueError:
        raise TowerConfigError(
            f"unknown lamp state {name!r}; valid states: {', '.join(Light)}"
        ) from None


@dataclass(frozen=True, slots=True)
class TowerState:
    """One complete lamp vector plus the buzzer pattern (0 = silent)."""

    red: Light = Light.OFF
    amber: Light = Light.OFF
    green: Light = Light.OFF
    blue: Light = Light.OFF
    white: Light = Light.OFF
    buzzer: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.buzzer <= MAX_BUZZER:
            raise TowerConfigError(f"buzzer pattern {self.buzzer} is not in 0..{MAX_BUZZER}")

    def light(self, colour: Colour) -> Light:
        """The state of one lamp."""
        value: Light = getattr(self, colour.value)
        return value

    def lights(self) -> tuple[Light, ...]:
        """All five lamps in :data:`COLOURS` order."""
        return tuple(self.light(c) for c in COLOURS)

    def with_light(self, colour: Colour, light: Light) -> TowerState:
        """A copy with one lamp changed."""
        lights = dict(zip(COLOURS, self.lights(), strict=True))
        lights[colour] = light
        return TowerState.from_lights(lights, self.buzzer)

    @classmethod
    def from_lights(cls, lights: dict[Colour, Light], buzzer: int = 0) -> TowerState:
        """Build from a partial mapping; unnamed lamps are off."""
        return cls(**{c.value: lights.get(c, Light.OFF) for c in COLOURS}, buzzer=buzzer)

    def describe(self) -> str:
        """One human line, e.g. ``red=blink amber=off green=off blue=off white=off buzzer=1``."""
        lamps = " ".join(f"{c.value}={self.light(c).value}" for c in COLOURS)
        return f"{lamps} buzzer={self.buzzer}"


ALL_OFF = TowerState()
