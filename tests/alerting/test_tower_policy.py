"""The tower policy (:mod:`kyoten.alerting.tower_policy`), as a table of situations and what
the tower must show."""

from __future__ import annotations

import pytest
from kyoten.alerting.tower_policy import Problem, TowerPolicy, decide, next_change
from kyoten.hardware.errors import TowerConfigError
from kyoten.hardware.model import Colour, Light, TowerState

NOW = 1_800_000_000.0
POLICY = TowerPolicy()  # defaults: Disaster/High red, Average/Warning amber, lower blue


def problem(severity: int, *, acked: bool = False, age: float = 10.0, eid: str = "") -> Problem:
    return Problem(
        event_id=eid or f"e{severity}", severity=severity, acknowledged=acked, since=NOW - age
    )


def test_nothing_open_is_steady_green_only() -> None:
    assert decide([], NOW, POLICY) == TowerState(green=Light.ON)
    assert decide([], NOW, TowerPolicy(idle=None)) == TowerState()


def test_unacknowledged_disaster_blinks_red_with_buzzer() -> None:
    assert decide([problem(5)], NOW, POLICY) == TowerState(red=Light.BLINK, buzzer=1)


def test_acknowledge_makes_red_steady_and_silences_the_buzzer() -> None:
    assert decide([problem(5, acked=True)], NOW, POLICY) == TowerState(red=Light.ON)


def test_buzzer_silences_itself_after_the_configured_time() -> None:
    policy = TowerPolicy(silence_after=60)
    assert decide([problem(5, age=59)], NOW, policy).buzzer == 1
    silenced = decide([problem(5, age=61)], NOW, policy)
    assert silenced == TowerState(red=Light.BLINK)  # still blinking: still unacknowledged
    assert next_change([problem(5, age=59)], NOW, policy) == pytest.approx(NOW + 1)
    assert next_change([problem(5, age=61)], NOW, policy) is None
    assert next_change([problem(5, age=1e6)], NOW, TowerPolicy(silence_after=None)) is None


def test_buzzer_only_for_disaster() -> None:
    assert decide([problem(4)], NOW, POLICY) == TowerState(red=Light.BLINK)


def test_only_the_top_severity_blinks_and_each_colour_shows() -> None:
    shown = decide([problem(4), problem(2), problem(1)], NOW, POLICY)
    assert shown == TowerState(red=Light.BLINK, amber=Light.ON, blue=Light.ON)


def test_blink_stops_only_when_every_top_problem_is_acknowledged() -> None:
    two = [problem(4, acked=True, eid="a"), problem(4, eid="b")]
    assert decide(two, NOW, POLICY).red is Light.BLINK
    acked = [problem(4, acked=True, eid="a"), problem(4, acked=True, eid="b"), problem(3)]
    assert decide(acked, NOW, POLICY) == TowerState(red=Light.ON, amber=Light.ON)


def test_mute_silences_but_keeps_the_lamps() -> None:
    assert decide([problem(5)], NOW, POLICY, muted=True) == TowerState(red=Light.BLINK)


def test_settings_merge_colours_and_collect_every_error() -> None:
    policy = TowerPolicy.from_settings(
        {
            "colours": {"information": "white", "not_classified": "white"},
            "buzzer": 4,
            "silence_after": 120,
            "idle": None,
        }
    )
    assert policy.colours[1] is Colour.WHITE and policy.colours[5] is Colour.RED
    assert decide([problem(5, age=119)], NOW, policy) == TowerState(red=Light.BLINK, buzzer=4)
    assert decide([], NOW, policy) == TowerState()
    with pytest.raises(TowerConfigError) as caught:
        TowerPolicy.from_settings(
            {"colours": {"fatal": "red", "high": "pink"}, "buzzer": 0, "silence_after": -1}
        )
    text = str(caught.value)
    assert "unknown severity 'fatal'; valid: not_classified, information" in text
    assert "colours.high: unknown colour 'pink'; valid colours: red, amber" in text
    assert "buzzer must be a pattern number 1..11" in text
    assert "silence_after must be positive" in text


def test_problem_rejects_impossible_severity() -> None:
    with pytest.raises(ValueError, match=r"0\.\.5"):
        problem(6)
