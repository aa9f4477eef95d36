"""What ``kyoten get`` uses instead of the standard library's heavier modules, held to the
modules it replaces: the JSON codec (:mod:`kyoten.agent.jsontext` against ``json``), the record
classes (:mod:`kyoten.agent.records` against ``typing.NamedTuple``) and the checked config kept
between calls (:mod:`kyoten.agent.config_cache` against parsing the file every time).
"""

from __future__ import annotations

import json
import math
import stat
import sys
import typing
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from kyoten.agent import config_cache, jsontext
from kyoten.agent.config import load_config
from kyoten.agent.errors import ConfigError
from kyoten.agent.launcher import site_packages
from kyoten.agent.records import NamedTuple

# ----------------------------------------------------------------------------- JSON

scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text()
documents = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.tuples(inner, inner)
        | st.dictionaries(st.text() | st.integers() | st.booleans(), inner, max_size=4)
    ),
    max_leaves=12,
)


def outcome(fn: Any, *args: Any) -> tuple[str, Any]:
    """What ``fn(*args)`` gives: ("ok", value) or ("raised", the exception's type and text)."""
    try:
        value = fn(*args)
    except Exception as exc:
        return "raised", (type(exc), str(exc))
    return "ok", value


def same_value(a: Any, b: Any) -> bool:
    """Equal, with NaN equal to NaN (json.loads("NaN") != itself)."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_value(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


@given(documents)
def test_dumps_is_json_dumps_as_kyoten_get_called_it(value: Any) -> None:
    assert outcome(jsontext.dumps, value) == outcome(
        lambda v: json.dumps(v, ensure_ascii=False, separators=(",", ":"), allow_nan=False),
        value,
    )


@given(documents, st.sampled_from(["", " ", "\n\t", "\r\n "]))
def test_loads_is_json_loads_on_documents(value: Any, space: str) -> None:
    text = space + json.dumps(value) + space
    assert same_value(jsontext.loads(text), json.loads(text))


@given(st.text(alphabet='{}[]",:0123456789.eE+-truefalsnNIity \t\n\\\ufeff', max_size=20))
def test_loads_raises_what_json_loads_raises(text: str) -> None:
    mine, theirs = outcome(jsontext.loads, text), outcome(json.loads, text)
    if mine[0] == "ok" and theirs[0] == "ok":
        assert same_value(mine[1], theirs[1])
    else:
        assert mine == theirs


# ----------------------------------------------------------------------------- records


class Mine(NamedTuple):
    """A record."""

    a: int
    b: str = "x"
    c: tuple[str, ...] = ()

    def both(self) -> str:
        return f"{self.a}{self.b}"


class Theirs(typing.NamedTuple):
    """A record."""

    a: int
    b: str = "x"
    c: tuple[str, ...] = ()

    def both(self) -> str:
        return f"{self.a}{self.b}"


def test_records_are_typing_named_tuples() -> None:
    mine, theirs = Mine(1), Theirs(1)
    assert tuple(mine) == tuple(theirs) == (1, "x", ())
    assert Mine._fields == Theirs._fields and Mine._field_defaults == Theirs._field_defaults
    assert repr(mine) == repr(theirs).replace("Theirs", "Mine")
    assert mine._replace(b="y").both() == theirs._replace(b="y").both() == "1y"
    assert Mine(a=2, c=("z",))._asdict() == {"a": 2, "b": "x", "c": ("z",)}
    assert Mine.__doc__ == "A record." and Mine.__qualname__ == "Mine"
    assert Mine.__module__ == __name__ and isinstance(mine, tuple)
    with pytest.raises(TypeError, match="Non-default namedtuple field b cannot follow"):

        class Wrong(NamedTuple):
            a: int = 0
            b: int  # type: ignore[misc]


# ----------------------------------------------------------------------------- config cache


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The cache in a folder of the test's, taking files as settled at once (the tests that
    change a file change its size too, so the coarse clock cannot hide the change)."""
    where = tmp_path / "cache"
    monkeypatch.setenv(config_cache.CACHE_DIR_VAR, str(where))
    monkeypatch.setattr(config_cache, "SETTLED_NS", 0)
    return where


def write_config(tmp_path: Path, port: int = 5432) -> Path:
    (tmp_path / "pw").write_text("secret-1\n")
    path = tmp_path / "kyoten.toml"
    path.write_text(
        f'[postgres.a]\nhost = "127.0.0.1"\nport = {port}\npassword_file = "{tmp_path}/pw"\n'
    )
    return path


def parses(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every parse of a config file from now on, by path."""
    seen: list[str] = []
    real = config_cache.read_config

    def counting(path: str) -> Any:
        seen.append(path)
        return real(path)

    monkeypatch.setattr(config_cache, "read_config", counting)
    return seen


def test_the_cache_answers_with_the_config_while_its_inputs_are_unchanged(
    tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_config(tmp_path)
    seen = parses(monkeypatch)
    first = config_cache.load_config_cached(str(path))
    assert first == load_config(str(path)) and first.postgres["a"].endpoint.password == "secret-1"
    assert config_cache.load_config_cached(str(path)) == first
    assert seen == [str(path)]  # the second call did not parse
    # as private as it gets: the user's own directory and files
    assert stat.S_IMODE(cache.stat().st_mode) == 0o700
    (entry,) = cache.iterdir()
    assert stat.S_IMODE(entry.stat().st_mode) == 0o600
    # the cache holds no secret: the password is read from its file on every call
    assert b"secret-1" not in entry.read_bytes()
    # a changed secret file, a changed config: parsed again, new values
    (tmp_path / "pw").write_text("secret-22\n")
    assert config_cache.load_config_cached(str(path)).postgres["a"].endpoint.password == "secret-22"
    path.write_text(path.read_text().replace("5432", "5433"))
    assert config_cache.load_config_cached(str(path)).postgres["a"].endpoint.port == 5433
    assert len(seen) == 3
    assert config_cache.load_config_cached(str(path)) == load_config(str(path))
    assert len(seen) == 3


def test_a_config_with_an_inline_password_is_never_cached(
    tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "kyoten.toml"
    path.write_text('[postgres.a]\nhost = "127.0.0.1"\npassword = "inline-secret"\n')
    seen = parses(monkeypatch)
    for _ in range(2):
        got = config_cache.load_config_cached(str(path))
        assert got.postgres["a"].endpoint.password == "inline-secret"
    assert len(seen) == 2 and list(cache.iterdir()) == []


def test_a_file_changed_moments_ago_is_not_cached_yet(
    tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two writes within one tick of the kernel's coarse clock can leave a file with the same
    times and size: what changed that recently is parsed, and cached once it has settled."""
    monkeypatch.setattr(config_cache, "SETTLED_NS", 60_000_000_000)  # written just now
    path = write_config(tmp_path)
    seen = parses(monkeypatch)
    for _ in range(2):
        config_cache.load_config_cached(str(path))
    assert len(seen) == 2 and list(cache.iterdir()) == []
    monkeypatch.setattr(config_cache, "SETTLED_NS", 0)  # a minute later, as it were
    for _ in range(2):
        config_cache.load_config_cached(str(path))
    assert len(seen) == 3 and len(list(cache.iterdir())) == 1


def test_the_cache_keeps_the_errors_and_never_holds_an_invalid_config(
    tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_config(tmp_path)
    config_cache.load_config_cached(str(path))
    path.write_text('[postgres.a]\nport = "x"\n')
    for _ in range(2):
        with pytest.raises(ConfigError) as mine:
            config_cache.load_config_cached(str(path))
        with pytest.raises(ConfigError) as theirs:
            load_config(str(path))
        assert str(mine.value) == str(theirs.value)
    path.unlink()
    with pytest.raises(ConfigError, match="not found"):
        config_cache.load_config_cached(str(path))


def test_no_cache_where_others_could_reach_it(
    tmp_path: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_config(tmp_path)
    cache.mkdir(mode=0o755)
    cache.chmod(0o755)  # whatever the umask: open to others
    seen = parses(monkeypatch)
    for _ in range(2):
        assert config_cache.load_config_cached(str(path)) == load_config(str(path))
    assert len(seen) == 2 and list(cache.iterdir()) == []
    # an entry someone else could have written is not read either
    cache.chmod(0o700)
    config_cache.load_config_cached(str(path))
    (entry,) = cache.iterdir()
    entry.chmod(0o644)
    config_cache.load_config_cached(str(path))
    assert len(seen) == 4


def test_the_launcher_finds_the_site_packages_of_its_interpreter() -> None:
    version = f"python{sys.version_info[0]}.{sys.version_info[1]}"
    assert site_packages("/opt/kyoten/venv/bin/python") == (
        f"/opt/kyoten/venv/lib/{version}/site-packages"
    )
