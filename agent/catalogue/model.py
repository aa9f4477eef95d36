"""The vocabulary of the metric catalogue: frozen declarations, no behaviour beyond naming.

Every item key, LLD rule, macro, value map and trigger kyoten knows is declared once with
these types (in the sibling modules). The collector checks its JSON against them, and the
Zabbix templates, the agent config files and METRICS.md are rendered from them, so none of
those can drift from what the collector really sends.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from enum import StrEnum


class ValueType(StrEnum):
    """Zabbix item value types, by their export names."""

    FLOAT = "FLOAT"
    CHAR = "CHAR"
    UNSIGNED = "UNSIGNED"
    TEXT = "TEXT"


class Severity(StrEnum):
    """Zabbix trigger priorities, by their export names."""

    INFO = "INFO"
    WARNING = "WARNING"
    AVERAGE = "AVERAGE"
    HIGH = "HIGH"
    DISASTER = "DISASTER"


@dataclass(frozen=True)
class Macro:
    """A user macro with its default; thresholds follow ``{$AREA.METRIC.MAX.WARN}``."""

    name: str
    default: str
    description: str

    def __post_init__(self) -> None:
        if not re.fullmatch(r"\{\$[A-Z0-9_.]+\}", self.name):
            raise ValueError(f"macro name {self.name!r} is not of the form {{$UPPER.CASE}}")


@dataclass(frozen=True)
class ValueMap:
    """Numeric codes the collector emits, with the words an operator reads.

    ``words`` ties codes to the words the collector has for them, ``(word, code)`` pairs: the
    source's own where it says one (Pgpool's backend status 'waiting', pg_stat_wal_receiver's
    'streaming'), kyoten's where it says none. The shaping step gets every code it emits from
    here with :meth:`code`, so a code is written down once, next to its label. ``other`` is
    the code of a word not listed.
    """

    name: str
    mappings: tuple[tuple[str, str], ...]
    words: tuple[tuple[str, str], ...] = ()
    other: str | None = None
    # the words as a table, made once: the shaping step looks codes up on every poll
    _codes: dict[str, int] = field(init=False, repr=False, compare=False, default_factory=dict)

    def __post_init__(self) -> None:
        known = {value for value, _ in self.mappings}
        used = [code for _, code in self.words] + ([] if self.other is None else [self.other])
        if unknown := sorted(set(used) - known):
            raise ValueError(f"value map {self.name!r} has no code {', '.join(unknown)}")
        self._codes.update((word, int(code)) for word, code in self.words)
        if len(self._codes) != len(self.words):
            raise ValueError(f"value map {self.name!r} lists a word twice")

    def code(self, word: str) -> int:
        """The code of ``word`` (matched exactly), or ``other`` when it is not listed."""
        found = self._codes.get(word)
        if found is not None:
            return found
        if self.other is None:
            raise KeyError(f"value map {self.name!r} has no code for {word!r}")
        return int(self.other)


@dataclass(frozen=True)
class Trigger:
    """A trigger on the metric it is declared under.

    ``expression`` and ``recovery`` are Zabbix expressions in which ``ITEM(field)`` stands for
    the item of ``field`` in the same scope (the family, or the same LLD rule); the renderer
    turns it into ``/Template name/item.key``. ``depends_on`` names the ``uid`` of triggers
    this one is suppressed by (one root cause pages once).

    ``per_change`` makes it a change event: Zabbix's *multiple* problem event generation, so
    every change opens an event of its own even while an earlier one is open. Such a trigger
    must compare the last two stored values of an item that stores changes only (a heartbeat
    of ``{$KYOTEN.CHANGE.HOLD}``): it is then evaluated exactly once per change, and the
    heartbeat's unchanged value resolves it ``{$KYOTEN.CHANGE.HOLD}`` after the last change.
    ``event_name`` then names each event by its change (``{ITEM.VALUE1}`` is the value that
    opened it, frozen in the event), where operational data would show the latest value.
    """

    uid: str
    name: str
    expression: str
    severity: Severity
    description: str
    recovery: str | None = None
    opdata: str = ""
    manual_close: bool = False
    depends_on: tuple[str, ...] = ()
    scope: str = "availability"
    per_change: bool = False
    event_name: str = ""


@dataclass(frozen=True)
class Metric:
    """One field of a collector JSON object and, unless ``item`` is false, a dependent item.

    ``heartbeat`` adds DISCARD_UNCHANGED_HEARTBEAT (slow-changing values); ``optional`` adds a
    DISCARD_VALUE error handler for values a role does not have (JSON null). ``missing`` is
    the value an item of a discovered entity reads once its row has left the JSON (a dropped
    slot, a standby that went away): a CUSTOM_VALUE error handler, chosen so that the
    entity's triggers resolve instead of going *unknown* with a problem left open. Item
    prototypes without it discard the value instead (they keep their last one).
    """

    field: str
    name: str
    value_type: ValueType
    description: str
    units: str = ""
    valuemap: str | None = None
    heartbeat: str | None = None
    triggers: tuple[Trigger, ...] = ()
    item: bool = True
    optional: bool = False
    graph: str | None = None
    missing: str | None = None


@dataclass(frozen=True)
class Discovery:
    """An LLD rule over one array field of the family's JSON.

    ``macros`` maps LLD macros to fields of the array's objects; the first one identifies an
    element (item keys and JSONPath filters use it). ``key`` is the standalone agent key that
    prints the same rows as a plain LLD JSON array.
    """

    field: str
    name: str
    key: str
    description: str
    macros: tuple[tuple[str, str], ...]
    metrics: tuple[Metric, ...]
    filter_macro: Macro | None = None

    @property
    def id_macro(self) -> str:
        return self.macros[0][0]

    @property
    def id_field(self) -> str:
        return self.macros[0][1]


@dataclass(frozen=True)
class Param:
    """A positional item-key parameter; in templates it is filled from ``macro``."""

    name: str
    macro: Macro


INTERVAL = Macro(
    "{$KYOTEN.INTERVAL}",
    "1m",
    "How often the agent runs the collector for this template's master item. Every other "
    "item of the template is a dependent item and updates with it.",
)
"""The master items' update interval: a macro, so a host (or a test) can poll faster."""

DEADLINE = 2.5
"""Seconds one collector call may take: kyoten.toml's ``deadline`` unless set there. Every
failure is reported within it, so Zabbix must wait a little longer for a master item."""

TIMEOUT = Macro(
    "{$KYOTEN.TIMEOUT}",
    f"{math.ceil(DEADLINE) + 1}s",
    "Per-item timeout of this template's master item (native Zabbix 7.0 templates; 6.0 uses "
    "the agent's and server's Timeout): kyoten's deadline (kyoten.toml, default "
    f"{DEADLINE:g} s) plus a second to start the process. Raise it with the deadline.",
)
"""The master items' timeout in the 7.0 format, so the agent's global Timeout can stay 3 s."""


@dataclass(frozen=True)
class Family:
    """One agent key returning one JSON object (a master item), and the template built on it."""

    key: str
    description: str
    template: str
    template_description: str
    params: tuple[Param, ...]
    metrics: tuple[Metric, ...]
    discoveries: tuple[Discovery, ...] = ()
    macros: tuple[Macro, ...] = ()
    valuemaps: tuple[ValueMap, ...] = ()
    tags: tuple[tuple[str, str], ...] = ()
    component: str = ""
    extra: dict[str, str] = field(default_factory=dict)
    interval: Macro = INTERVAL

    def fields(self) -> frozenset[str]:
        """Every top-level field the collector's JSON for this family must carry."""
        return frozenset([m.field for m in self.metrics] + [d.field for d in self.discoveries])

    def master_key(self) -> str:
        """The master item key as used in templates: parameters filled from macros."""
        if not self.params:
            return self.key
        return f"{self.key}[{','.join(p.macro.name for p in self.params)}]"

    def all_macros(self) -> tuple[Macro, ...]:
        """Parameter macros, threshold macros and LLD filter macros, without repeats."""
        seen: dict[str, Macro] = {}
        for m in (
            *[p.macro for p in self.params],
            self.interval,
            *self.macros,
            *[d.filter_macro for d in self.discoveries if d.filter_macro],
        ):
            seen.setdefault(m.name, m)
        return tuple(seen.values())


@dataclass(frozen=True)
class State:
    """One row of the decision table: a cross-site state and what the NOC sees of it.

    ``lead`` is the ``uid`` of the one problem that names the cause (its description carries
    the fix); ``symptoms`` are the uids of every other problem the state may raise, each either
    below High or suppressed by a dependency on the lead; ``recovery`` says what ends it.
    ``fault`` names the lab fault (``kyoten demo fault NAME``) that produces the state.
    """

    key: str
    state: str
    lead: str
    symptoms: tuple[str, ...]
    recovery: str
    fault: str | None = None
