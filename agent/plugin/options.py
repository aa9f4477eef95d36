"""The plugin's own settings, read from the ``Plugins.Kyoten.*`` lines of the agent config.

The agent hands them over as its serialised ``conf.Node`` tree: inner nodes
``{"Name", "Nodes", "Line"}`` and leaves ``{"Value": <base64>, "Line"}``. 6.0 includes the
``System.*`` subtree, 7.0 strips it; both are flattened here to dotted names, and unknown
names are rejected so a typo fails at agent start (in Validate) instead of being ignored.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass

#: Options kyoten understands under ``Plugins.Kyoten.``; ``System.*`` belongs to the agent.
KNOWN = {
    "Config": "path of kyoten's TOML config (default: KYOTEN_CONFIG, then /etc/kyoten/kyoten.toml)",
    "Timeout": "seconds an export may take on agents that send no per-item timeout (6.0); "
    "set it to the agent's PluginTimeout when that is lower than Timeout",
    "Workers": "threads answering exports concurrently (1-64, default 8)",
}
TIMEOUT_RANGE = (1, 30)
WORKERS_RANGE = (1, 64)
DEFAULT_WORKERS = 8


class OptionsError(ValueError):
    """The ``Plugins.Kyoten.*`` lines are not usable; the text goes to the agent verbatim."""


@dataclass(frozen=True)
class PluginOptions:
    """What the plugin was configured with; every field has a usable default."""

    config_path: str | None = None
    timeout_s: int | None = None
    workers: int = DEFAULT_WORKERS


def _leaf(node: Mapping[str, object], where: str) -> str:
    raw = node.get("Value")
    if not isinstance(raw, str):
        raise OptionsError(f"option {where}: value is not a string")
    try:
        return base64.b64decode(raw, validate=True).decode()
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise OptionsError(f"option {where}: value is not base64 text") from exc


def flatten(tree: object) -> dict[str, list[str]]:
    """``{"System.Path": [...], "Config": [...]}`` from the plugin's node tree.

    The root node is the plugin itself (``Name`` = the plugin name), so names are relative to
    ``Plugins.<Name>``. A name given twice keeps both values, in file order.
    """
    out: dict[str, list[str]] = {}
    if tree is None:
        return out
    if not isinstance(tree, Mapping):
        raise OptionsError("private options are not a configuration tree")

    def walk(node: Mapping[str, object], path: str) -> None:
        children = node.get("Nodes")
        if children is None:
            return
        if not isinstance(children, list):
            raise OptionsError(f"option {path or '<root>'}: Nodes is not a list")
        for child in children:
            if not isinstance(child, Mapping):
                raise OptionsError(f"option {path or '<root>'}: malformed node")
            if "Value" in child:
                out.setdefault(path, []).append(_leaf(child, path))
                continue
            name = child.get("Name")
            if not isinstance(name, str) or not name:
                raise OptionsError(f"option {path or '<root>'}: node without a name")
            walk(child, f"{path}.{name}" if path else name)

    walk(tree, "")
    return out


def _int_in(name: str, text: str, lo: int, hi: int) -> int:
    try:
        value = int(text.strip())
    except ValueError:
        raise OptionsError(f"Plugins.Kyoten.{name}: {text!r} is not an integer") from None
    if not lo <= value <= hi:
        raise OptionsError(f"Plugins.Kyoten.{name}: {value} is outside {lo}-{hi}")
    return value


def parse_options(tree: object) -> PluginOptions:
    """Validate and convert the tree; :class:`OptionsError` names the first bad line."""
    flat = flatten(tree)
    for name, values in flat.items():
        if name.split(".", 1)[0] == "System":
            continue
        if name not in KNOWN:
            raise OptionsError(
                f"unknown option Plugins.Kyoten.{name}; known: {', '.join(sorted(KNOWN))}"
            )
        if len(values) > 1:
            raise OptionsError(f"Plugins.Kyoten.{name} is given {len(values)} times")
    config = flat.get("Config", [None])[0]
    if config is not None and not config.strip():
        raise OptionsError("Plugins.Kyoten.Config is empty")
    timeout = flat.get("Timeout")
    workers = flat.get("Workers")
    return PluginOptions(
        config_path=config.strip() if config else None,
        timeout_s=_int_in("Timeout", timeout[0], *TIMEOUT_RANGE) if timeout else None,
        workers=_int_in("Workers", workers[0], *WORKERS_RANGE) if workers else DEFAULT_WORKERS,
    )
