"""``NamedTuple`` for the collector's records without importing :mod:`typing`.

``kyoten get`` starts a new process on every poll, and ``typing`` (which loads ``re``,
``contextlib``, ``functools`` and more) was a fifth of that process's CPU although the
collector needs nothing of it at run time but ``typing.NamedTuple``'s class syntax. Here that
syntax builds the same class from :func:`collections.namedtuple`: fields and their order from
the annotations, defaults from the values given, methods and docstrings kept. Type checkers
see ``typing.NamedTuple`` itself (``TYPE_CHECKING`` is a name mypy reads as true).
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import NamedTuple as NamedTuple
else:
    from collections import namedtuple

    #: what the class body may not set: namedtuple's own machinery (as typing refuses too)
    _PROHIBITED = frozenset(
        ("__new__", "__init__", "__slots__", "__getnewargs__", "_fields", "_field_defaults",
         "_make", "_replace", "_asdict", "_source")
    )  # fmt: skip
    _SPECIAL = frozenset(("__module__", "__name__", "__annotations__"))

    class _NamedTupleMeta(type):
        def __new__(mcs, name, bases, ns):
            if not bases:  # NamedTuple itself
                return super().__new__(mcs, name, bases, ns)
            if bases != (NamedTuple,):
                raise TypeError("a NamedTuple class may only inherit from NamedTuple")
            fields = ns.get("__annotations__", {})
            with_default = []
            for field in fields:
                if field in ns:
                    with_default.append(field)
                elif with_default:
                    raise TypeError(
                        f"Non-default namedtuple field {field} cannot follow default field"
                        f"{'s' if len(with_default) > 1 else ''} {', '.join(with_default)}"
                    )
            defaults = [ns[field] for field in with_default]
            cls = namedtuple(name, fields, defaults=defaults, module=ns["__module__"])
            cls.__annotations__ = dict(fields)
            for key, value in ns.items():
                if key in _PROHIBITED:
                    raise AttributeError("Cannot overwrite NamedTuple attribute " + key)
                if key not in _SPECIAL and key not in fields:
                    setattr(cls, key, value)
            return cls

    class NamedTuple(metaclass=_NamedTupleMeta):
        """Base of a record class: ``class Point(NamedTuple): x: int; y: int = 0``."""
