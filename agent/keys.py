"""Item keys: the Zabbix syntax ``name[param,"quoted, param",...]`` parsed without I/O, and
what the collector needs of each key the catalogue declares (:class:`KeySpec`)."""

from __future__ import annotations

from kyoten.agent.errors import KeyError_
from kyoten.agent.records import NamedTuple

#: the characters of a key's name, as the agent allows them ([A-Za-z0-9._-]); checked without
#: ``re``, which ``kyoten get`` would import for this one pattern
_NAME_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-")


class KeySpec(NamedTuple):
    """One catalogue key as the collector answers it (:data:`kyoten.agent.keytable.KEYS`).

    ``family`` is the master key whose snapshot answers it; a standalone discovery key lists
    the array ``lld_field`` of that snapshot, each row as ``lld_macros`` ((macro, field)
    pairs) say; a master key has ``lld_field`` "".
    """

    family: str
    params: tuple[str, ...]
    lld_field: str = ""
    lld_macros: tuple[tuple[str, str], ...] = ()


def parse_key(text: str) -> tuple[str, list[str]]:
    """Split an item key into its name and parameters, as the Zabbix agent does.

    Quoted parameters may contain commas and ``\\"``; unquoted ones end at ``,`` or ``]``.
    ``key`` and ``key[]`` differ: the latter has one empty parameter.
    """
    end = 0
    while end < len(text) and text[end] in _NAME_CHARS:
        end += 1
    if not end:
        raise KeyError_(f"malformed item key {text!r}: expected name[param,...]")
    name, rest = text[:end], text[end:]
    if not rest:
        return name, []
    if not rest.startswith("[") or not rest.endswith("]"):
        raise KeyError_(f"malformed item key {text!r}: parameters go in one [...] at the end")
    body, params, i = rest[1:-1], [], 0
    while True:
        while i < len(body) and body[i] == " ":
            i += 1
        if i < len(body) and body[i] == '"':
            j, buf = i + 1, []
            while j < len(body) and body[j] != '"':
                if body[j] == "\\" and j + 1 < len(body) and body[j + 1] == '"':
                    j += 1
                buf.append(body[j])
                j += 1
            if j >= len(body):
                raise KeyError_(f"malformed item key {text!r}: unterminated quoted parameter")
            params.append("".join(buf))
            i = j + 1
            while i < len(body) and body[i] == " ":
                i += 1
            if i < len(body) and body[i] != ",":
                raise KeyError_(f"malformed item key {text!r}: text after a quoted parameter")
        else:
            j = body.find(",", i)
            j = len(body) if j < 0 else j
            if "]" in body[i:j] or "[" in body[i:j]:
                raise KeyError_(
                    f"malformed item key {text!r}: brackets inside a parameter must be quoted"
                )
            params.append(body[i:j].strip())
            i = j
        if i >= len(body):
            return name, params
        i += 1  # the comma
