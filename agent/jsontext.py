"""JSON text in and out with the standard library's own C codec, without importing ``json``.

``kyoten get`` reads three JSON columns of the PostgreSQL snapshot and writes one document per
process. The ``json`` package's modules import ``re`` for their whitespace patterns, which
costs a poll more CPU than all its JSON work; the C scanner and encoder that ``json.loads``
and ``json.dumps`` use underneath (``_json``, built into CPython) do not need it. This module
calls them with the settings ``json`` gives them, so the text is the same (the tests compare
the two on generated documents), and hands every case it does not finish itself (invalid
input, an error to raise) to ``json``, which raises exactly what it always raised.
"""

from __future__ import annotations

import _json

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

_WHITESPACE = " \t\n\r"  # JSON's (RFC 8259), as json.decoder.WHITESPACE


class _Settings:
    """What the C scanner reads of a decoder: json.JSONDecoder()'s defaults."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = {
        "-Infinity": float("-inf"),
        "Infinity": float("inf"),
        "NaN": float("nan"),
    }.__getitem__


# a duck-typed decoder, as json.decoder passes its JSONDecoder
_scan = _json.make_scanner(_Settings())  # type: ignore[arg-type]


def loads(text: str) -> Any:
    """``json.loads(text)`` for a str: the same value, or the same exception."""
    start = len(text) - len(text.lstrip(_WHITESPACE))
    try:
        value, end = _scan(text, start)
    except StopIteration:  # no value where one must start: json says where and why
        end = -1
    if end >= 0 and not text[end:].strip(_WHITESPACE):
        return value
    import json

    return json.loads(text)


def _unserializable(value: object) -> object:
    raise TypeError(f"Object of type {value.__class__.__name__} is not JSON serializable")


def dumps(value: Any) -> str:
    """``json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)``:
    compact, UTF-8 kept readable, ValueError for a NaN or an infinity."""
    # a new encoder per call, as json makes one: its circular-reference markers must start
    # empty, and an error part-way through may leave some behind
    encode = _json.make_encoder(
        {}, _unserializable, _json.encode_basestring, None, ":", ",", False, False, False
    )
    return "".join(encode(value, 0))
