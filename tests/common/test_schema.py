"""The shared settings validator: every kind of field reports an invalid value with the field's
path and the fix, secrets are never shown, and one pass reports every problem."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

import pytest
from kyoten.common import schema as s

SEVERITY = s.Choice(4, {"high": 4, "disaster": 5, 4: 4, 5: 5}, names="4-5 or high, disaster")

# kind -> (field, a bad value, the problem, the fix)
KINDS: dict[str, tuple[s.Field, Any, str, str]] = {
    "number": (
        s.Number(2.5, minimum=0.2, maximum=29, unit=" s", fix="keep it below the Timeout"),
        60,
        "60.0 s is outside 0.2-29 s",
        "keep it below the Timeout",
    ),
    "number, wrong type": (s.Number(1.0), "fast", "expected a number, got str 'fast'",
                           "give a number"),
    "integer": (s.Integer(25, minimum=1), 0, "0 is below 1", "give a whole number of at least 1"),
    "integer, not true": (s.Integer(5432), True, "expected an integer, got bool True",
                          "give a whole number"),
    "string list": (s.Strings(item=lambda v: None if "@" in v else f"{v!r} is no address"),
                    ["a@b", "nobody"], "'nobody' is no address", 'write a list, e.g. ["a", "b"]'),
    "string list, wrong type": (s.Strings(), [1, 2], "expected a string or a list of strings",
                                'write a list'),
    "severity": (SEVERITY, "fatal", "'fatal' is not one of 4-5 or high, disaster",
                 "use one of 4-5 or high, disaster"),
    "time": (s.Time(dt.time(0, 0)), "25:00", "must be HH:MM, got '25:00'",
             'write a time of day as "HH:MM"'),
    "enum": (s.Choice("prefer", {"disable": 1, "prefer": 2}), "maybe",
             "'maybe' is not one of disable, prefer", "use one of disable, prefer"),
    "URL": (s.Url(""), "ftp://x", "not a http/https URL 'ftp://x'", "give a http/https URL"),
    "boolean": (s.Boolean(False), "yes", "expected true/false, got str 'yes'",
                "write true or false"),
    "string pattern": (s.String("", pattern=re.compile(r"[a-z]+"), pattern_text="lower case"),
                       "ABC", "'ABC' is not lower case", "lower case"),
}  # fmt: skip


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_an_invalid_value_names_the_field_the_problem_and_the_fix(kind: str) -> None:
    field, bad, problem, fix = KINDS[kind]
    section = s.Section({"outer": s.Section({"value": field})})
    values, problems = s.validate(section, {"outer": {"value": bad}})
    assert len(problems) == 1, problems
    head, _, advice = problems[0].partition("; ")
    assert head.startswith("outer.value") and problem in head, problems
    assert advice.startswith(fix), problems
    assert values["outer"]["value"] == field.default  # the pass went on with the default


def test_nested_section_reports_unknown_and_missing_keys_with_the_valid_ones() -> None:
    section = s.Section({"outbox": s.Section({"path": s.String(required=True)})})
    _, problems = s.validate(section, {"outbox": {"pth": "x"}, "other": 1})
    assert problems == [
        "other: unknown setting; expected one of outbox",
        "outbox.pth: unknown setting; expected one of path",
        "outbox.path: missing; add it (a string)",
    ]
    _, problems = s.validate(section, {"outbox": "x"})
    assert problems == [
        "outbox: expected a table of settings, got str 'x'; write it as a table/mapping of settings"
    ]


def test_secret_file_is_read_and_never_shown(tmp_path: Path) -> None:
    (tmp_path / "pw").write_text("s3cret-value\nsecond line\n")
    inline = s.Section({"password": s.Secret(None)})
    first = s.Section({"password": s.Secret(None, first_line=True)})
    assert s.validate(first, {"password_file": "pw"}, base=str(tmp_path))[0] == {
        "password": "s3cret-value"
    }
    assert s.validate(inline, {"password_file": "pw"}, base=str(tmp_path))[0] == {
        "password": "s3cret-value\nsecond line"
    }
    _, problems = s.validate(inline, {"password_file": "nope"}, base=str(tmp_path))
    assert problems == [
        "password_file: cannot read nope: No such file or directory; check the path and that "
        "the service's user may read it"
    ]
    _, problems = s.validate(inline, {"password": 12345})
    assert problems == [
        "password: expected a string, got int; better, put it in a file only the service may "
        "read and give password_file"
    ]
    _, problems = s.validate(inline, {"password": "x", "password_file": "pw"})
    assert problems == ["password: give password or password_file, not both; drop password"]


def test_one_pass_reports_every_problem_and_cross_field_rules() -> None:
    def check(r: s.Reader, v: dict[str, Any], path: str) -> None:
        if v["low"] > v["high"]:
            r.problem(path, "low is above high", "swap them")

    section = s.Section(
        {
            "low": s.Integer(0),
            "high": s.Integer(10),
            "items": s.ListOf(s.Section({"at": s.Time(None, required=True)})),
            "named": s.Table(s.Section({"port": s.Integer(1)}), name=re.compile("[a-z]+"),
                             name_text="lower-case names"),
        },
        check=check,
    )  # fmt: skip
    _, problems = s.validate(
        section,
        {
            "low": 20,
            "high": 5,
            "items": [{"at": "7:00"}, {}],
            "named": {"A": {}, "b": {"port": "1"}},
        },
    )
    assert problems == [
        'items[1].at: missing; add it (a time "HH:MM")',
        "named.A: lower-case names; rename it",
        "named.b.port: expected an integer, got str '1'; give a whole number",
        "(top): low is above high; swap them",
    ]
