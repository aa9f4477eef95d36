"""agent/keytable.py: what the collector reads of the catalogue on every call, as plain data.

``kyoten get`` runs in a new process on every poll. Importing the catalogue builds every
declaration (metrics, triggers, macros, templates' texts), about a fifth of the call's CPU,
to look up one key and a few value-map codes. The collector reads this rendering of it
instead: each key's family, parameters and LLD macros, every value map's codes, the default
deadline. It is a generated file like the templates, so ``kyoten export all --check`` fails
when it no longer says what the catalogue says.
"""

from __future__ import annotations

from kyoten.agent.catalogue import FAMILIES, agent_keys
from kyoten.agent.catalogue.model import DEADLINE, ValueMap

HEADER = '''"""The metric catalogue as the collector reads it on every call. Generated, do not edit.

Written by 'kyoten export keytable' from kyoten.agent.catalogue (see
kyoten.agent.export.keytable): ``kyoten get`` looks its key and value-map codes up here instead
of building every declaration of the catalogue in each new process.
"""

from __future__ import annotations

from kyoten.agent.keys import KeySpec
'''


def value_maps() -> dict[str, ValueMap]:
    """Every value map of the catalogue by name (a map shared by families is declared alike)."""
    maps: dict[str, ValueMap] = {}
    for fam in FAMILIES:
        for vm in fam.valuemaps:
            if maps.setdefault(vm.name, vm) != vm:
                raise ValueError(f"value map {vm.name!r} is declared twice, differently")
    return maps


def _literal(value: object, indent: str) -> str:
    """``value`` as Python source in the layout ``ruff format`` keeps: a pair of plain values
    on one line, an empty or one-element tuple as Python writes it, any other tuple one
    element per line with a trailing comma (which keeps it that way), strings in double
    quotes."""
    inner = indent + "    "
    if (
        isinstance(value, tuple)
        and len(value) == 2
        and not any(isinstance(v, tuple) for v in value)
    ):
        return f"({_literal(value[0], indent)}, {_literal(value[1], indent)})"
    if isinstance(value, tuple) and len(value) <= 1:
        return f"({_literal(value[0], indent)},)" if value else "()"
    if isinstance(value, tuple):
        items = [f"{inner}{_literal(v, inner)},\n" for v in value]
        return "(\n" + "".join(items) + indent + ")"
    if isinstance(value, str) and not any(c in value for c in '"\\\n'):
        return f'"{value}"'  # ruff's quotes
    return repr(value)


def render_keytable() -> str:
    """The text of agent/keytable.py."""
    lines = [HEADER, f"DEADLINE = {DEADLINE!r}"]
    lines.append('"""kyoten.toml\'s default ``deadline`` (the catalogue\'s DEADLINE)."""\n')
    lines.append("KEYS: dict[str, KeySpec] = {")
    for k in agent_keys():
        args: tuple[object, ...] = (k.family.key, k.params)
        if k.discovery is not None:
            args += (k.discovery.field, k.discovery.macros)
        body = ",\n".join(f"        {_literal(a, '        ')}" for a in args)
        lines.append(f"    {_literal(k.key, '')}: KeySpec(\n{body},\n    ),")
    lines.append("}")
    lines.append('"""Every key the agent registers (UserParameter lines, plugin metrics)."""\n')
    lines.append("VALUE_MAPS: dict[str, tuple[tuple[tuple[str, int], ...], int | None]] = {")
    lines.append("    # name: ((word, code), ...), the code of any other word (None: none)")
    for name, vm in sorted(value_maps().items()):
        if not vm.words and vm.other is None:
            continue  # the collector emits no code by a word of it
        words = tuple((word, int(code)) for word, code in vm.words)
        other = None if vm.other is None else int(vm.other)
        lines.append(f"    {_literal(name, '')}: (")
        lines.append(f"        {_literal(words, '        ')},")
        lines.append(f"        {other!r},")
        lines.append("    ),")
    lines.append("}")
    lines.append('"""The value maps whose codes the collector emits (ValueMap.words, .other)."""')
    return "\n".join(lines) + "\n"
