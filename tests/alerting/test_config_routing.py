"""Configuration (every error at once, secrets from files) and pure routing / mute windows."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from kyoten.alerting.config import ConfigError, MuteWindow, parse_settings
from kyoten.alerting.events import parse_event
from kyoten.alerting.routing import route

from .conftest import payload

TYPES = ("mail", "slack")


def doc(**over: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "token": "t" * 20,
        "channels": {
            "ops-mail": {"type": "mail", "host": "h", "from": "a@b.c", "to": ["x@b.c"]},
            "ops-slack": {"type": "slack", "token": "xoxb-1", "channel": "#ops"},
        },
        "routes": [{"channels": ["ops-mail"]}],
    }
    base.update(over)
    return base


def test_a_channel_without_a_type_is_one_problem_naming_the_types(tmp_path: Path) -> None:
    bad = doc(channels={"x": {"host": "h"}}, routes=[{"channels": ["x"]}])
    with pytest.raises(ConfigError) as exc:
        parse_settings(bad, base=tmp_path, known_types=TYPES)
    about_type = [e for e in exc.value.errors if e.startswith("channels.x.type")]
    assert about_type == [f"channels.x.type: missing; add type: one of {', '.join(sorted(TYPES))}"]


def test_every_error_is_reported_at_once(tmp_path: Path) -> None:
    bad = doc(
        token="short",
        outbox={"backend": "mysql", "synchronous": "SOMETIMES"},
        channels={"x": {"type": "pager", "rate": -1, "mute": [{"start": "25:00", "end": "x"}]}},
        routes=[
            {
                "channels": ["nope"],
                "min_severity": "disaster",
                "max_severity": "warning",
                "colour": "red",
            }
        ],
        timezone="Mars/Olympus",
        surprise=1,
    )
    with pytest.raises(ConfigError) as exc:
        parse_settings(bad, base=tmp_path, known_types=TYPES)
    text = "\n".join(exc.value.errors)
    for needle in (
        "token:",
        "outbox.backend",
        "outbox.synchronous",
        "channels.x.type",
        "channels.x.rate",
        "mute[0].start",
        "mute[0].end",
        "unknown channel 'nope'",
        "min_severity is above max_severity",
        "routes[0].colour",
        "timezone",
        "surprise: unknown setting",
    ):
        assert needle in text, needle


def test_secrets_come_from_files_and_are_listed_for_redaction(tmp_path: Path) -> None:
    (tmp_path / "intake.token").write_text("intake-token-from-a-file\n")
    (tmp_path / "slack.token").write_text("xoxb-from-a-file\n")
    d = doc(token_file="intake.token")
    del d["token"]
    d["channels"]["ops-slack"] = {"type": "slack", "token_file": "slack.token", "channel": "#o"}
    d["outbox"] = {"synchronous": False}  # YAML's bare OFF
    s = parse_settings(d, base=tmp_path, known_types=TYPES)
    assert s.token == "intake-token-from-a-file"
    assert s.channel("ops-slack").settings["token"] == "xoxb-from-a-file"
    assert {"intake-token-from-a-file", "xoxb-from-a-file"} <= set(s.secrets())
    assert s.outbox.synchronous == "OFF"


def test_missing_secret_file_is_an_error(tmp_path: Path) -> None:
    d = doc(token_file="missing.token")
    del d["token"]
    with pytest.raises(ConfigError, match=r"token_file: cannot read"):
        parse_settings(d, base=tmp_path, known_types=TYPES)


def routes_of(rules: list[dict[str, Any]], tmp_path: Path) -> Any:
    return parse_settings(doc(routes=rules), base=tmp_path, known_types=TYPES).routes


def test_routing_conditions_and_continue(tmp_path: Path) -> None:
    rules = routes_of(
        [
            {"min_severity": "high", "channels": ["ops-slack"], "continue": True},
            {
                "tags": {"service": ["db", "pgpool"]},
                "host_groups": ["Databases"],
                "channels": ["ops-mail"],
            },
            {"channels": ["ops-slack"]},
        ],
        tmp_path,
    )
    high_db = parse_event(payload("1"))
    assert route(rules, high_db) == ("ops-slack", "ops-mail")
    warning_db = parse_event(payload("2", **{"{EVENT.NSEVERITY}": "2"}))
    assert route(rules, warning_db) == ("ops-mail",)
    warning_web = parse_event(
        payload(
            "3",
            **{"{EVENT.NSEVERITY}": "2", "{EVENT.TAGSJSON}": '[{"tag":"service","value":"web"}]'},
        )
    )
    assert route(rules, warning_web) == ("ops-slack",)


def test_tag_presence_and_send_to(tmp_path: Path) -> None:
    rules = routes_of(
        [{"tags": {"service": "*"}, "send_to": ["night"], "channels": ["ops-mail"]}], tmp_path
    )
    assert route(rules, parse_event(payload("1"))) == ()  # send_to is "ops"
    ev = parse_event(payload("1", **{"{ALERT.SENDTO}": "night"}))
    assert route(rules, ev) == ("ops-mail",)


@pytest.mark.parametrize(
    ("when", "active"),
    [
        ("2026-11-27 23:30", True),  # Friday night, inside
        ("2026-11-28 06:59", True),  # Saturday morning: the window started on Friday
        ("2026-11-28 07:00", False),
        ("2026-11-28 23:30", False),  # Saturday night: the window is for Fridays only
        ("2026-11-27 21:59", False),
    ],
)
def test_mute_window_across_midnight(when: str, active: bool) -> None:
    window = MuteWindow(frozenset({4}), dt.time(22, 0), dt.time(7, 0))
    assert window.active(dt.datetime.fromisoformat(when)) is active


def test_bridge_yaml_lists_every_invalid_value_with_its_field_and_fix_in_one_run(
    tmp_path: Path,
) -> None:
    """One file with a wrong value of every kind of field, channels' own settings included:
    one run lists them all, each with its path and a fix."""
    bad = doc(
        retry={"base": 0, "max_attempts": "many"},  # number, integer (nested section)
        max_body=10,  # integer
        poll_interval="fast",  # number
        url="ftp://bridge",  # URL
        outbox={"backend": "mysql", "conninfo_file": "missing.conninfo"},  # enum, secret file
        listen={"port": 70000, "hots": "x"},  # nested section: range, unknown key
        routes=[{"channels": ["ops-mail"], "min_severity": "fatal", "host_groups": [1]}],
        channels={
            "ops-mail": {"type": "mail", "host": "h", "from": "nobody", "to": ["x@b.c"],
                         "mute": [{"start": "7:00", "end": "25:61"}]},  # time
            "ops-slack": {"type": "slack", "token": "xoxb-1", "channel": "#ops",
                          "base_url": "nowhere"},
        },
    )  # fmt: skip
    with pytest.raises(ConfigError) as exc:
        parse_settings(bad, base=tmp_path, known_types=TYPES)
    errors = exc.value.errors
    expected = {
        "retry.base:": "seconds, e.g. 2",
        "retry.max_attempts: expected an integer": "a whole number of attempts",
        "max_body: 10 is below 1024": "bytes;",
        "poll_interval: expected a number, got str 'fast'": "give a number",
        "url: not a http/https URL": "where kyoten bridge send posts",
        "outbox.backend: 'mysql' is not one of sqlite, postgresql": "use one of",
        "outbox.conninfo_file: cannot read missing.conninfo": "check the path",
        "listen.port: 70000 is outside 0-65535": "give a whole number from 0 to 65535",
        "listen.hots: unknown setting": "expected one of host, port",
        "routes[0].min_severity: 'fatal' is not one of 0-5": "use one of 0-5 or",
        "routes[0].host_groups: expected a string or a list of strings": "write a list",
        "channels.ops-mail.from: 'nobody' is not an e-mail address": "the sender's address",
        "channels.ops-mail.mute[0].end: must be HH:MM, got '25:61'": 'as "HH:MM"',
        "channels.ops-slack.base_url: not a http/https URL 'nowhere'": "leave it out",
    }
    for head, fix in expected.items():
        found = [e for e in errors if e.startswith(head)]
        assert found, (head, errors)
        assert fix in found[0].partition("; ")[2], (fix, found[0])
    assert len(errors) == len(expected), errors
