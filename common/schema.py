"""Declarative settings validation, one mechanism for ``kyoten.toml`` and ``bridge.yaml``.

A settings file is described as data — a :class:`Section` of fields, each field a kind
(:class:`Number`, :class:`Integer`, :class:`Boolean`, :class:`String`, :class:`Strings`,
:class:`Choice`, :class:`Time`, :class:`Url`, :class:`Secret`, a nested :class:`Section`, a
:class:`Table` of sections by name, a :class:`ListOf` items) — and read in **one pass**: every
field is read and checked, an invalid one is recorded and replaced by its default so the pass
goes on, and only then are the problems reported, all of them. Each problem names the field by
its path and says what is wrong and how to fix it::

    retry.max_attempts: 0 is below 1; set a whole number of attempts, e.g. 25
    postgres.site-a.port: expected an integer, got str '5432'; write it without quotes

Why a module of our own rather than a schema library: ``kyoten get`` starts a Python process on
every poll and reads ``kyoten.toml`` each time, so the validator must cost next to nothing to
import (this module imports only the standard library, lazily where it can); pydantic would add
a compiled dependency and tens of milliseconds to every poll, and msgspec stops at the first
error, which is the opposite of "all problems in one run". The messages also need the project's
own fixes ("keep it below the agent's Timeout"), never the value of a secret, and the quirks of
both formats (TOML's ``true`` is not a port number; YAML 1.1 reads a bare ``OFF`` as false).

The collector (``kyoten.agent.config``) and the bridge (``kyoten.alerting.config``) each wrap
the problems in their own ``ConfigError``; this module imports no part of kyoten.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

__all__ = [
    "Boolean",
    "Choice",
    "Custom",
    "Field",
    "Integer",
    "ListOf",
    "Number",
    "Reader",
    "Secret",
    "Section",
    "String",
    "Strings",
    "Table",
    "Time",
    "Url",
    "join",
    "validate",
]


class _Invalid:
    """Returned by :meth:`Field.parse` after recording a problem."""

    def __repr__(self) -> str:
        return "INVALID"


INVALID: Any = _Invalid()


def join(path: str, key: str | int) -> str:
    """``path.key`` (``path[i]`` for an index; ``key`` alone at the top)."""
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


class Reader:
    """One validation pass: the problems found so far and where relative files live.

    :param base: directory relative ``*_file`` paths are read from (None: as given, i.e. from
        the working directory).
    """

    def __init__(self, base: str | None = None) -> None:
        self.base = base
        self.problems: list[str] = []
        #: every file read (``*_file`` secrets): what the values depend on besides the data
        self.files: list[str] = []

    def problem(self, path: str, what: str, fix: str = "") -> None:
        """Record ``path: what; fix``."""
        self.problems.append(f"{path or '(top)'}: {what}" + (f"; {fix}" if fix else ""))

    def read_file(self, name: str) -> str:
        """The text of the file ``name`` (relative to :attr:`base`); OSError if unreadable."""
        path = name if self.base is None else os.path.join(self.base, name)
        self.files.append(path)
        with open(path, encoding="utf-8") as fh:
            return fh.read()


def _kind_of(value: Any) -> str:
    return type(value).__name__


class Field:
    """One setting: how to check it, its default, and the fix to suggest when it is wrong.

    :param default: the value when the setting is absent, and the stand-in after a problem
        (so that the pass goes on).
    :param required: absence is a problem ("missing").
    :param fix: what to tell the operator after the problem; each kind has a default.
    :param nullable: an explicit null (YAML ``~``) is a value (None), not "absent".
    :param check: extra rule on a well-typed value: returns a problem text, or None.
    """

    kind = "a value"

    def __init__(
        self,
        default: Any = None,
        *,
        required: bool = False,
        fix: str = "",
        nullable: bool = False,
        check: Callable[[Any], str | None] | None = None,
    ) -> None:
        self.default = default
        self.required = required
        self.fix = fix
        self.nullable = nullable
        self.check = check
        self.secret = False

    # -- what a subclass provides ------------------------------------------------------------

    def convert(self, r: Reader, path: str, value: Any) -> Any:
        """The typed value of ``value``, or :data:`INVALID` after recording a problem."""
        return value

    def default_fix(self) -> str:
        """The fix when the field gives none."""
        return f"give {self.kind}"

    # -- shared ------------------------------------------------------------------------------

    def keys(self, key: str) -> tuple[str, ...]:
        """The keys of a section this field reads (a secret also reads ``key_file``)."""
        return (key,)

    @property
    def advice(self) -> str:
        return self.fix or self.default_fix()

    def wrong_type(self, r: Reader, path: str, value: Any) -> Any:
        shown = "" if self.secret else f" {value!r}"
        key = path.rpartition(".")[2]
        fix = self.advice.replace("<name>", key)
        r.problem(path, f"expected {self.kind}, got {_kind_of(value)}{shown}", fix)
        return INVALID

    def parse(self, r: Reader, path: str, value: Any) -> Any:
        """``value`` checked (present): the typed value, or the default after a problem."""
        if value is None and self.nullable:
            return None
        out = self.convert(r, path, value)
        if out is not INVALID and self.check is not None:
            why = self.check(out)
            if why is not None:
                r.problem(path, why, self.advice)
                out = INVALID
        return self.default if out is INVALID else out

    def read(self, r: Reader, node: Mapping[str, Any], key: str, path: str) -> Any:
        """The value of ``key`` in ``node``, checked; the default when absent or invalid."""
        here = join(path, key)
        if key not in node or (node[key] is None and not self.nullable):
            if self.required:
                r.problem(here, "missing", self.fix or f"add it ({self.kind})")
            return self.default
        return self.parse(r, here, node[key])


def _range(value: float, minimum: float | None, maximum: float | None, unit: str) -> str | None:
    shown = f"{value}{unit}"
    if minimum is not None and maximum is not None and not minimum <= value <= maximum:
        return f"{shown} is outside {minimum:g}-{maximum:g}{unit}"
    if minimum is not None and value < minimum:
        return f"{shown} is below {minimum:g}{unit}"
    if maximum is not None and value > maximum:
        return f"{shown} is above {maximum:g}{unit}"
    return None


class Number(Field):
    """A number (int or float; never true/false), optionally within ``minimum``..``maximum``.

    ``above``: a lower bound the value must exceed (e.g. 0 for "positive seconds").
    """

    kind = "a number"

    def __init__(
        self,
        default: float | None = None,
        *,
        minimum: float | None = None,
        maximum: float | None = None,
        above: float | None = None,
        unit: str = "",
        **kw: Any,
    ) -> None:
        super().__init__(default, **kw)
        self.minimum, self.maximum, self.above, self.unit = minimum, maximum, above, unit

    def default_fix(self) -> str:
        if self.above is not None:
            return f"give a number above {self.above:g}{self.unit}"
        if self.minimum is not None and self.maximum is not None:
            return f"give a number from {self.minimum:g} to {self.maximum:g}{self.unit}"
        if self.minimum is not None:
            return f"give a number of at least {self.minimum:g}{self.unit}"
        return "give a number, e.g. 2.5"

    def convert(self, r: Reader, path: str, value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, int | float):
            return self.wrong_type(r, path, value)
        number = float(value)
        why = _range(number, self.minimum, self.maximum, self.unit)
        if why is None and self.above is not None and not number > self.above:
            why = f"{number}{self.unit} must be above {self.above:g}{self.unit}"
        if why is not None:
            r.problem(path, why, self.advice)
            return INVALID
        return number


class Integer(Field):
    """A whole number (never true/false), optionally within ``minimum``..``maximum``."""

    kind = "an integer"

    def __init__(
        self,
        default: int | None = None,
        *,
        minimum: int | None = None,
        maximum: int | None = None,
        **kw: Any,
    ) -> None:
        super().__init__(default, **kw)
        self.minimum, self.maximum = minimum, maximum

    def default_fix(self) -> str:
        if self.minimum is not None and self.maximum is not None:
            return f"give a whole number from {self.minimum} to {self.maximum}"
        if self.minimum is not None:
            return f"give a whole number of at least {self.minimum}"
        return "give a whole number"

    def convert(self, r: Reader, path: str, value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, int):
            return self.wrong_type(r, path, value)
        why = _range(value, self.minimum, self.maximum, "")
        if why is not None:
            r.problem(path, why, self.advice)
            return INVALID
        return value


class Boolean(Field):
    """true or false."""

    kind = "true/false"

    def default_fix(self) -> str:
        return "write true or false (without quotes)"

    def convert(self, r: Reader, path: str, value: Any) -> Any:
        return value if isinstance(value, bool) else self.wrong_type(r, path, value)


class String(Field):
    """A string; ``nonempty``: "" is a problem; ``pattern``: a compiled regex it must match in
    full (``pattern_text`` says what that means to a person)."""

    kind = "a string"

    def __init__(
        self,
        default: str | None = "",
        *,
        nonempty: bool = False,
        pattern: Any = None,
        pattern_text: str = "",
        **kw: Any,
    ) -> None:
        super().__init__(default, **kw)
        self.nonempty, self.pattern, self.pattern_text = nonempty, pattern, pattern_text

    def default_fix(self) -> str:
        return self.pattern_text or "give a string in quotes"

    def convert(self, r: Reader, path: str, value: Any) -> Any:
        if not isinstance(value, str):
            return self.wrong_type(r, path, value)
        if self.nonempty and not value.strip():
            r.problem(path, "empty", self.advice)
            return INVALID
        if self.pattern is not None and not self.pattern.fullmatch(value):
            r.problem(path, f"{value!r} is not {self.pattern_text or 'valid'}", self.advice)
            return INVALID
        return value


class Strings(Field):
    """A list of strings (a single string counts as a list of one when ``single``);
    ``item``: a rule each string must pass (returns a problem text, or None)."""

    kind = "a list of strings"

    def __init__(
        self,
        default: Sequence[str] = (),
        *,
        single: bool = True,
        nonempty: bool = False,
        item: Callable[[str], str | None] | None = None,
        **kw: Any,
    ) -> None:
        super().__init__(tuple(default), **kw)
        self.single, self.nonempty, self.item = single, nonempty, item
        if single:
            self.kind = "a string or a list of strings"

    def default_fix(self) -> str:
        return 'write a list, e.g. ["a", "b"]'

    def convert(self, r: Reader, path: str, value: Any) -> Any:
        if isinstance(value, str) and self.single:
            value = [value]
        if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
            return self.wrong_type(r, path, value)
        if self.nonempty and not value:
            r.problem(path, "empty", self.advice)
            return INVALID
        ok = True
        for i, v in enumerate(value):
            why = self.item(v) if self.item is not None else None
            if why is not None:
                r.problem(join(path, i), why, self.advice)
                ok = False
        return tuple(value) if ok else INVALID


class Choice(Field):
    """One of a fixed set (an enum). ``choices`` maps each accepted spelling to its value;
    strings are compared trimmed and case-insensitively; ``names`` is how the choices are
    listed to a person (default: the string spellings)."""

    kind = "one of the choices"

    def __init__(
        self, default: Any, choices: Mapping[Any, Any], *, names: str = "", **kw: Any
    ) -> None:
        super().__init__(default, **kw)
        self.choices = {(k.lower() if isinstance(k, str) else k): v for k, v in choices.items()}
        self.names = names or ", ".join(k for k in choices if isinstance(k, str))
        self.kind = f"one of {self.names}"

    def default_fix(self) -> str:
        return f"use one of {self.names}"

    def convert(self, r: Reader, path: str, value: Any) -> Any:
        spelled = value.strip().lower() if isinstance(value, str) else value
        if isinstance(spelled, bool) or not isinstance(spelled, str | int | float):
            return self.wrong_type(r, path, value)
        if spelled not in self.choices:
            r.problem(path, f"{value!r} is not one of {self.names}", self.advice)
            return INVALID
        return self.choices[spelled]


class Time(Field):
    """A time of day, ``"HH:MM"`` (24 h), as :class:`datetime.time`."""

    kind = 'a time "HH:MM"'

    def default_fix(self) -> str:
        return 'write a time of day as "HH:MM", e.g. "22:00"'

    def convert(self, r: Reader, path: str, value: Any) -> Any:
        import datetime as dt

        try:
            hh, mm = str(value).split(":")
            return dt.time(int(hh), int(mm))
        except ValueError:
            r.problem(path, f"must be HH:MM, got {value!r}", self.advice)
            return INVALID


class Url(Field):
    """A URL with one of ``schemes`` and a host."""

    kind = "a URL"

    def __init__(self, default: str = "", *, schemes: Sequence[str] = ("http", "https"), **kw: Any):
        super().__init__(default, **kw)
        self.schemes = tuple(schemes)

    def default_fix(self) -> str:
        return f"give a {'/'.join(self.schemes)} URL, e.g. {self.schemes[0]}://host:port/path"

    def convert(self, r: Reader, path: str, value: Any) -> Any:
        if not isinstance(value, str):
            return self.wrong_type(r, path, value)
        from urllib.parse import urlsplit

        try:
            parts = urlsplit(value)
            ok = parts.scheme in self.schemes and bool(parts.hostname)
        except ValueError:
            ok = False
        if not ok:
            shown = "" if self.secret else f" {value!r}"
            r.problem(path, f"not a {'/'.join(self.schemes)} URL{shown}", self.advice)
            return INVALID
        return value


class Secret(String):
    """A secret given inline (``key``) or, better, in a file (``key_file``): the file's first
    line (``first_line``) or its whole content, stripped. Never shown in a message."""

    kind = "a string"

    def __init__(self, default: str | None = None, *, first_line: bool = False, **kw: Any):
        super().__init__(default, **kw)
        self.first_line = first_line
        self.secret = True

    def keys(self, key: str) -> tuple[str, ...]:
        return (key, f"{key}_file")

    def default_fix(self) -> str:
        return "better, put it in a file only the service may read and give <name>_file"

    def read(self, r: Reader, node: Mapping[str, Any], key: str, path: str) -> Any:
        file_key = f"{key}_file"
        if key in node and file_key in node:
            r.problem(join(path, key), f"give {key} or {file_key}, not both", f"drop {key}")
            return self.default
        if file_key not in node:
            return super().read(r, node, key, path)
        name = node[file_key]
        here = join(path, file_key)
        if not isinstance(name, str) or not name:
            r.problem(here, f"expected a file name, got {_kind_of(name)}", "give the path")
            return self.default
        try:
            text = r.read_file(name)
        except OSError as exc:
            r.problem(here, f"cannot read {name}: {exc.strerror}", "check the path and that "
                      "the service's user may read it")  # fmt: skip
            return self.default
        lines = text.splitlines()
        return (lines[0] if lines else "") if self.first_line else text.strip()


class Custom(Field):
    """A kind written as a function: ``convert(reader, path, value)`` returns the value or
    :data:`INVALID` after recording a problem (use when no other kind fits)."""

    def __init__(
        self,
        convert: Callable[[Reader, str, Any], Any],
        default: Any = None,
        *,
        kind: str = "a value",
        **kw: Any,
    ) -> None:
        super().__init__(default, **kw)
        self._convert = convert
        self.kind = kind

    def convert(self, r: Reader, path: str, value: Any) -> Any:
        return self._convert(r, path, value)


class Section(Field):
    """A mapping of named fields (a TOML table, a YAML mapping); unknown keys are problems.

    :param fields: name → field, in the order they are read and listed.
    :param check: rules across fields, run with the section's values (a dict) after every
        field was read: ``check(reader, values, path)`` records problems and may fill in values
        (a default that depends on another field).
    :param extra: keys allowed besides ``fields`` (read by someone else).
    :param optional: an absent section is None (not a section of defaults).
    """

    kind = "a table of settings"

    def __init__(
        self,
        fields: Mapping[str, Field],
        *,
        check: Callable[[Reader, dict[str, Any], str], None] | None = None,
        extra: Iterable[str] = (),
        optional: bool = False,
        **kw: Any,
    ) -> None:
        super().__init__(None, **kw)
        self.optional = optional
        self.fields = dict(fields)
        self.section_check = check
        self.allowed = {k for name, f in self.fields.items() for k in f.keys(name)} | set(extra)

    def default_fix(self) -> str:
        return "write it as a table/mapping of settings"

    def values(self, r: Reader, node: Mapping[str, Any], path: str) -> dict[str, Any]:
        """Read every field of ``node`` (a mapping), then the cross-field check."""
        for key in node:
            if key not in self.allowed:
                r.problem(
                    join(path, str(key)),
                    "unknown setting",
                    "expected one of " + ", ".join(sorted(self.fields)),
                )
        out = {name: f.read(r, node, name, path) for name, f in self.fields.items()}
        if self.section_check is not None:
            self.section_check(r, out, path)
        return out

    def defaults(self) -> dict[str, Any]:
        """The values of an absent section (nothing recorded)."""
        return self.values(Reader(), {}, "")

    def read(self, r: Reader, node: Mapping[str, Any], key: str, path: str) -> Any:
        if key not in node or node[key] is None:
            return None if self.optional else self.values(r, {}, join(path, key))
        return self.parse(r, join(path, key), node[key])

    def convert(self, r: Reader, path: str, value: Any) -> Any:
        if not isinstance(value, Mapping):
            self.wrong_type(r, path, value)
            return self.defaults()
        return self.values(r, value, path)


class Table(Field):
    """Sections by name (``[postgres.site-a]``, ``channels: {ops-mail: {...}}``); ``name``: a
    compiled regex every name must match in full, ``name_text`` says which names are valid."""

    kind = "a table of named sections"

    def __init__(
        self,
        section: Section | Callable[[Reader, str, Any], Any],
        *,
        name: Any = None,
        name_text: str = "",
        **kw: Any,
    ) -> None:
        super().__init__({}, **kw)
        self.section = section
        self.name, self.name_text = name, name_text

    def default_fix(self) -> str:
        return "write one table per name"

    def convert(self, r: Reader, path: str, value: Any) -> Any:
        if not isinstance(value, Mapping):
            return self.wrong_type(r, path, value)
        out: dict[str, Any] = {}
        for name, body in value.items():
            here = join(path, str(name))
            if self.name is not None and not self.name.fullmatch(str(name)):
                r.problem(here, self.name_text or "not a valid name", "rename it")
                continue
            if isinstance(self.section, Section):
                out[str(name)] = self.section.parse(r, here, {} if body is None else body)
            else:
                out[str(name)] = self.section(r, here, body)
        return out


class ListOf(Field):
    """A list of items, each read with ``item`` (``path[i]`` in messages)."""

    kind = "a list"

    def __init__(self, item: Field, *, nonempty: bool = False, **kw: Any) -> None:
        super().__init__((), **kw)
        self.item, self.nonempty = item, nonempty

    def default_fix(self) -> str:
        return "write a list (- item per line in YAML, [a, b] in TOML)"

    def convert(self, r: Reader, path: str, value: Any) -> Any:
        if not isinstance(value, list):
            return self.wrong_type(r, path, value)
        if self.nonempty and not value:
            r.problem(path, "empty", self.advice)
            return INVALID
        return tuple(self.item.parse(r, join(path, i), v) for i, v in enumerate(value))


def validate(
    section: Section,
    data: Any,
    *,
    path: str = "",
    base: str | None = None,
    reader: Reader | None = None,
) -> tuple[dict[str, Any], list[str]]:
    """Read ``data`` with ``section`` in one pass: (values, every problem found).

    ``reader``: the pass's Reader (``base`` is then its own), to see what files it read.
    """
    r = Reader(base) if reader is None else reader
    values = section.parse(r, path, {} if data is None else data)
    return values, r.problems
