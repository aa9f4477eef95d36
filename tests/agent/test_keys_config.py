"""Pure parsing: item keys and kyoten.toml validation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from kyoten.agent.collector import Collector
from kyoten.agent.config import load_config, parse_config
from kyoten.agent.errors import ConfigError, KeyError_, UnknownTarget
from kyoten.agent.keys import parse_key


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("kyoten.cross", ("kyoten.cross", [])),
        ("kyoten.cross[]", ("kyoten.cross", [""])),
        ("kyoten.pg[site-a]", ("kyoten.pg", ["site-a"])),
        ('kyoten.pg["a,b",c]', ("kyoten.pg", ["a,b", "c"])),
        ('k[ "x\\"y" , z ]', ("k", ['x"y', "z"])),
        ("k[a,,b]", ("k", ["a", "", "b"])),
    ],
)
def test_parse_key(text: str, expected: tuple[str, list[str]]) -> None:
    assert parse_key(text) == expected


@pytest.mark.parametrize("text", ["", "[x]", "k[a", "k[a]x", 'k["a]', "k[a[b]]", 'k["a"b]'])
def test_malformed_keys_say_what_is_wrong(text: str) -> None:
    with pytest.raises(KeyError_, match="malformed item key"):
        parse_key(text)


@given(
    st.lists(
        st.text(alphabet=st.characters(blacklist_characters='"\\'), max_size=8),
        min_size=1,
        max_size=4,
    )
)
def test_quoted_parameters_round_trip(params: list[str]) -> None:
    text = "k[" + ",".join(f'"{p}"' for p in params) + "]"
    assert parse_key(text) == ("k", params)


GOOD = {
    "deadline": 2,
    "postgres": {
        "a": {"host": "10.0.0.1", "site": "dc1", "expected_standbys": ["b"]},
        "b": {"host": "10.0.0.2", "port": 5433},
    },
    "pgpool": {"pool-a": {"host": "127.0.0.1", "pcp_port": 9898, "pcp_password": "s3cret"}},
    "zabbix": {"zbx": {"host": "127.0.0.1", "password": "zpw"}},
}


def test_good_config_with_defaults() -> None:
    cfg = parse_config(GOOD)
    assert cfg.deadline == 2 and cfg.postgres["a"].expected_standbys == ("b",)
    assert cfg.postgres["b"].endpoint.port == 5433 and cfg.postgres["a"].endpoint.port == 5432
    assert cfg.pgpool["pool-a"].endpoint.port == 9999 and cfg.pgpool["pool-a"].pcp is not None
    assert cfg.zabbix["zbx"].endpoint.dbname == "zabbix"
    assert cfg.pgpool["pool-a"].backends == () and cfg.pgpool["pool-a"].replication_refresh == 10
    assert "s3cret" not in repr(cfg) and "zpw" not in repr(cfg)


def test_every_problem_is_reported_with_its_path_and_no_secret() -> None:
    bad = {
        "deadline": 60,
        "colour": "red",
        "postgres": {"a": {"port": True, "sslmode": "maybe"}, "b c": {"host": "x"}},
        "pgpool": {
            "p": {"host": "h", "pcp_user": "u", "watchdog": True, "password": 12345},
            "q": {"host": "h", "backends": ["a", "nowhere"], "replication_refresh": 0},
        },
    }
    with pytest.raises(ConfigError) as exc:
        parse_config(bad, "test.toml")
    msg = str(exc.value)
    for fragment in (
        "colour: unknown setting",
        "deadline: 60.0 s is outside",
        "postgres.a.host: missing",
        "postgres.a.port: expected an integer",
        "postgres.a.sslmode: 'maybe' is not one of",
        "postgres.b c: target names",
        "pgpool.p.pcp_port: pcp settings given without pcp_port",
        "pgpool.p.watchdog: the watchdog is read through PCP",
        "pgpool.p.password: expected a string",
        "pgpool.q.backends: 'nowhere' is not a postgres target",
        "pgpool.q.replication_refresh: 0.0 s is outside",
    ):
        assert fragment in msg, msg
    assert "12345" not in msg


def test_password_file(tmp_path: Path) -> None:
    f = tmp_path / "pw"
    f.write_text("from-file\n")
    cfg = parse_config({"postgres": {"a": {"host": "h", "password_file": str(f)}}})
    assert cfg.postgres["a"].endpoint.password == "from-file"
    with pytest.raises(ConfigError, match="cannot read"):
        parse_config({"postgres": {"a": {"host": "h", "password_file": str(tmp_path / "no")}}})


def test_missing_and_broken_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(str(tmp_path / "none.toml"))
    (tmp_path / "bad.toml").write_text("deadline = = 1")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(str(tmp_path / "bad.toml"))


def test_keys_and_targets_are_checked_before_any_connection() -> None:
    c = Collector(parse_config(GOOD))
    with pytest.raises(KeyError_, match=r"kyoten knows: .*kyoten\.pg"):
        c.get("kyoten.nope", ["a"])
    with pytest.raises(KeyError_, match=r"use kyoten.pg\[target\]"):
        c.get("kyoten.pg", [])
    with pytest.raises(UnknownTarget, match=r"unknown postgres target .zz.*: a, b"):
        c.get("kyoten.pg", ["zz"])
    with pytest.raises(UnknownTarget, match="no target name given"):
        c.get("kyoten.pg", [""])
    assert c.target_name("zabbix", "") == "zbx"  # the only one of its kind


def test_unreachable_target_names_host_port(tmp_path: Path) -> None:
    cfg = parse_config({"postgres": {"x": {"host": "127.0.0.1", "port": 1}}})
    with pytest.raises(Exception, match=r"PostgreSQL x \(127.0.0.1:1\): .*refused"):
        Collector(cfg).get("kyoten.pg", ["x"])
    out = json.loads(Collector(cfg).get("kyoten.cross", []))
    assert out["pg_reachable"] == 0 and out["unreachable"].startswith("x: PostgreSQL x")


def test_every_kind_of_invalid_value_is_listed_with_its_field_and_fix(tmp_path: Path) -> None:
    """kyoten.toml with a wrong value of each kind of field it has: one run lists them all,
    each with its path and what to do, and never a secret's value."""
    bad = {
        "deadline": "2.5",  # number
        "connect_timeout": 1,  # integer
        "postgres": {
            "a": {"host": "h", "port": 70000, "sslmode": "always",  # integer, enum
                  "expected_standbys": "b"},  # string list (a list, not one string)
            "b": "not a table",  # nested section
        },
        "pgpool": {"p": {"host": "h", "pcp_port": 9898,
                         "pcp_password_file": str(tmp_path / "nope")}},  # secret file
    }  # fmt: skip
    with pytest.raises(ConfigError) as exc:
        parse_config(bad, "k.toml")
    lines = str(exc.value).splitlines()[1:]
    expected = {
        "deadline: expected a number, got str '2.5'": "keep it below the agent's Timeout",
        "connect_timeout: 1 is below 2": "libpq's minimum is 2 s",
        "postgres.a.port: 70000 is outside 1-65535": "a TCP port (1-65535)",
        "postgres.a.sslmode: 'always' is not one of disable": "use one of disable, allow",
        "postgres.a.expected_standbys: expected a list of strings": "the application_name",
        "postgres.b: expected a table of settings, got str": "write it as a table",
        "pgpool.p.pcp_password_file: cannot read": "check the path",
    }
    for head, fix in expected.items():
        found = [line.strip() for line in lines if line.strip().startswith(head)]
        assert found, (head, lines)
        assert fix in found[0].partition("; ")[2], (fix, found[0])
    assert len(lines) == len(expected), lines
    assert "k.toml: 7 problem(s)" in str(exc.value)
