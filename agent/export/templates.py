"""Zabbix templates rendered from the metric catalogue: catalogue → dicts → YAML, nothing else.

Every template object is built as a Python dict from :data:`kyoten.agent.catalogue.FAMILIES`
and serialised with PyYAML; no YAML is ever assembled from strings. The module is pure (no
file or network access), so ``kyoten export templates`` writes what :func:`render_all` returns,
``--check`` compares with it, and a test compares the committed files with it.

Two formats are rendered:

* ``6.0/``: Zabbix 6.0 export format. It imports into 6.0 *and* into every later server (the
  importer converts forward), so it is the one operators should use.
* ``7.0/``: native 7.0 format (``template_groups``, ``vendor``, 72-column dashboards), for
  sites that compare exports or only run 7.0. A 7.0 file does not import into 6.0.

Rules the importer enforces and this module follows (see the tests for each):

* every scalar is a YAML string (the importer checks ``is_string`` on each leaf);
* UUIDs are version-4 shaped and derived from stable names, so a re-import updates objects in
  place instead of duplicating them, and two renders are byte-identical;
* a master item per family (TEXT, history 0) whose first step is CHECK_JSON_ERROR, so a
  collector error (``{"error": "..."}``) turns the master "not supported" with that reason;
  every value is a DEPENDENT item with a JSONPATH step, every LLD rule a dependent rule with
  ``lld_macro_paths``;
* the documents are written in the canonical form of ``configuration.export`` (defaults left
  out; tags, macros, LLD macro paths, widgets and widget fields in the exporter's order),
  because ``configuration.importcompare`` compares the file with an export literally: only
  then does a second import show no change;
* single-item triggers nest under their item, triggers over several items go to the
  template-level (or discovery-rule-level) list, and dependencies name their target by
  name and expression, as the importer resolves them.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import yaml
from kyoten.agent.catalogue import FAMILIES
from kyoten.agent.catalogue.model import TIMEOUT, Discovery, Family, Metric, Trigger, ValueType

Node = dict[str, Any]

VERSIONS = ("6.0", "7.0")
"""Export formats rendered; the first is the one that imports everywhere."""

GROUP = "Templates/kyoten"
"""The template group of every kyoten template (a host group in 6.0)."""

VENDOR = {"name": "kyoten", "version": "7.0-1"}
"""``vendor`` block of native 7.0 templates (not part of the 6.0 schema)."""

MEDIA_TYPE_FILE = "mediatype_kyoten_bridge.yaml"
#: A dependent trigger's tag naming its master's problem; the bridge groups by it
#: (kyoten.alerting.grouping.DEPENDS_TAG, the same word: tests/templates check both).
DEPENDS_TAG = "depends_on"

_ITEM_REF = re.compile(r"ITEM\(([a-z0-9_]+)\)")
_PALETTE = ("1A7C11", "F63100", "2774A4", "A54F10", "FC6EA3", "6C59DC", "AC8C14", "611F27")
_NUMERIC = (ValueType.FLOAT, ValueType.UNSIGNED)


# ---------------------------------------------------------------------------------- naming
def stable_uuid(*parts: str) -> str:
    """A UUIDv4-shaped hex string derived from ``parts``.

    The API accepts only 32 hex digits with ``4`` at index 12 and one of ``89ab`` at index 16,
    and UUIDs must stay the same between releases so that a re-import updates objects. So: hash
    the stable name and force those two digits.
    """
    digest = hashlib.sha256("\x1f".join(("kyoten", *parts)).encode()).hexdigest()[:32]
    return digest[:12] + "4" + digest[13:16] + "89ab"[int(digest[16], 16) & 3] + digest[17:]


def item_key(family: Family, metric: Metric, discovery: Discovery | None = None) -> str:
    """Key of a dependent item (or item prototype) in the templates.

    Dependent items need unique keys on a host but no agent knows them, so they are names:
    ``kyoten.pg.in_recovery``, and ``kyoten.pg.standbys.replay_lag["{#APP}"]`` per element.
    """
    if discovery is None:
        return f"{family.key}.{metric.field}"
    return f'{discovery.key}.{metric.field}["{discovery.id_macro}"]'


def file_name(family: Family) -> str:
    """File of a family's template: its technical name, lower-case, words joined by ``_``."""
    return re.sub(r"[^a-z0-9]+", "_", family.template.lower()).strip("_") + ".yaml"


def _area(names: Iterable[str]) -> str:
    """``Standby [{#APP}]`` from ``Standby [{#APP}]: Replay lag``: the part before ``: ``."""
    return next(iter(names)).split(": ", 1)[0]


def _graph_title(graph: str) -> str:
    return graph.replace("_", " ").capitalize()


# ---------------------------------------------------------------------------------- scopes
@dataclass(frozen=True)
class _Scope:
    """The items one ``ITEM(field)`` may name: a family's, or one discovery rule's."""

    template: str
    keys: Mapping[str, str]
    discovery: Discovery | None

    def expand(self, expression: str, where: str) -> str:
        def item(match: re.Match[str]) -> str:
            field = match.group(1)
            if field not in self.keys:
                raise ValueError(f"{where}: ITEM({field}) names no item in its scope")
            return f"/{self.template}/{self.keys[field]}"

        return _ITEM_REF.sub(item, expression)


def _scope(family: Family, discovery: Discovery | None = None) -> _Scope:
    metrics = family.metrics if discovery is None else discovery.metrics
    keys = {m.field: item_key(family, m, discovery) for m in metrics if m.item}
    return _Scope(family.template, keys, discovery)


def _fields_of(trigger: Trigger) -> set[str]:
    return set(_ITEM_REF.findall(trigger.expression + (trigger.recovery or "")))


@dataclass(frozen=True)
class _RenderedTrigger:
    """A trigger rendered once; the dict is reused when another trigger depends on it."""

    node: Node
    discovery: Discovery | None


def _trigger_node(trigger: Trigger, scope: _Scope, target: str | None = None) -> Node:
    """A trigger (prototype); ``target`` is the family's target macro, tagged on the trigger.

    The target's name is a trigger tag, not an item tag: the server resolves user macros in
    both when it makes an event's tags, but the frontends show an item's tags as stored
    (Latest data would read the macro itself), while the NOC meets trigger tags on events
    only, resolved.
    """
    where = f"trigger {trigger.uid}"
    node: Node = {
        "uuid": stable_uuid(scope.template, "trigger", trigger.uid),
        "expression": scope.expand(trigger.expression, where),
    }
    if trigger.recovery:
        node["recovery_mode"] = "RECOVERY_EXPRESSION"
        node["recovery_expression"] = scope.expand(trigger.recovery, where)
    node["name"] = trigger.name
    if trigger.event_name:
        node["event_name"] = trigger.event_name
    if trigger.opdata:
        node["opdata"] = trigger.opdata
    node["priority"] = trigger.severity.value
    node["description"] = trigger.description
    if trigger.per_change:  # one event per change, also while an earlier one is open
        node["type"] = "MULTIPLE"
    if trigger.manual_close:
        node["manual_close"] = "YES"
    tags: list[Node] = [{"tag": "scope", "value": trigger.scope}]
    if trigger.manual_close:
        # Zabbix has no macro for "Allow manual close": the bridge's media type passes this
        # tag (kyoten.alerting.mediatype.MANUAL_CLOSE_TAG), and Slack then offers "Close".
        tags.append({"tag": "manual_close", "value": "yes"})
    if target is not None:
        tags.append({"tag": "target", "value": target})
    node["tags"] = _sorted_tags(tags)  # the exporter's order
    return node


def _all_triggers(family: Family) -> dict[str, _RenderedTrigger]:
    """Every trigger of a family by uid, dependencies not yet attached."""
    out: dict[str, _RenderedTrigger] = {}
    target = family.params[0].macro.name if family.params else None
    scopes: list[tuple[Discovery | None, tuple[Metric, ...]]] = [(None, family.metrics)]
    scopes += [(d, d.metrics) for d in family.discoveries]
    for discovery, metrics in scopes:
        scope = _scope(family, discovery)
        for metric in metrics:
            for trigger in metric.triggers:
                if trigger.uid in out:
                    raise ValueError(f"{family.template}: trigger uid {trigger.uid} is repeated")
                node = _trigger_node(trigger, scope, target)
                out[trigger.uid] = _RenderedTrigger(node, discovery)
    return out


def _with_dependencies(
    trigger: Trigger, owner: Discovery | None, rendered: Mapping[str, _RenderedTrigger]
) -> Node:
    """The trigger's node plus ``dependencies`` resolved by name and expression.

    A trigger may depend on a regular trigger; a trigger prototype also on prototypes of its
    own rule. Anything else cannot be expressed in a template and is a catalogue error.
    """
    node = dict(rendered[trigger.uid].node)
    deps: list[Node] = []
    masters: list[str] = []
    for uid in trigger.depends_on:
        if uid not in rendered:
            raise ValueError(f"trigger {trigger.uid} depends on unknown trigger {uid}")
        target = rendered[uid]
        if target.discovery is not None and target.discovery is not owner:
            raise ValueError(
                f"trigger {trigger.uid} depends on {uid}, a prototype of another discovery rule"
            )
        dep: Node = {"name": target.node["name"], "expression": target.node["expression"]}
        if "recovery_expression" in target.node:
            dep["recovery_expression"] = target.node["recovery_expression"]
        deps.append(dep)
        masters.append(str(target.node.get("event_name") or target.node["name"]))
    if deps:
        tags = node.pop("tags")
        node["dependencies"] = deps
        # Zabbix holds a dependent's problem back while its master is open, but not when the
        # symptom fired first: the tag tells the bridge which incident it belongs to
        # (kyoten.alerting.grouping.DEPENDS_TAG). Masters' names use user and LLD macros only,
        # which Zabbix resolves in event tags as in event names, so the two compare equal.
        tags += [{"tag": DEPENDS_TAG, "value": name} for name in masters]
        node["tags"] = _sorted_tags(tags)
    return node


# ---------------------------------------------------------------------------------- items
def _master_item(family: Family, version: str) -> Node:
    node: Node = {
        "uuid": stable_uuid(family.template, "item", family.key),
        "name": f"{_area(m.name for m in family.metrics if m.item)}: Collector snapshot",
        "key": family.master_key(),
        "delay": family.interval.name,
        "history": "0",
        "trends": "0",
        "value_type": "TEXT",
        "description": (
            f"{family.description} Every other item of the template is a dependent item of "
            'this one. When the collector fails it prints {"error": ...}: the CHECK_JSON_ERROR '
            "step then makes this item 'not supported' with that reason."
        ),
        "preprocessing": [{"type": "CHECK_JSON_ERROR", "parameters": ["$.error"]}],
    }
    if version != "6.0":  # 7.0's per-item timeout, so the agent's Timeout need not be raised
        node["timeout"] = TIMEOUT.name
    node["tags"] = [{"tag": "component", "value": "raw"}]
    return node


def _json_path(metric: Metric, discovery: Discovery | None) -> str:
    if discovery is None:
        return f"$.{metric.field}"
    id_metric = next(m for m in discovery.metrics if m.field == discovery.id_field)
    literal = discovery.id_macro if id_metric.value_type in _NUMERIC else f'"{discovery.id_macro}"'
    return f"$.{discovery.field}[?(@.{discovery.id_field}=={literal})].{metric.field}.first()"


def _sorted_tags(tags: Iterable[Node]) -> list[Node]:
    """Tags in the exporter's order: by name, then value, each by ``strnatcasecmp`` (two
    ``depends_on`` tags of one trigger: "more than one …" before "Pgpool-II …")."""
    return sorted(tags, key=lambda t: (_natural(str(t["tag"])), _natural(str(t["value"]))))


def _entity_tag(discovery: Discovery) -> Node:
    return {"tag": discovery.field.removesuffix("s"), "value": discovery.id_macro}


def _dependent_item(
    family: Family,
    metric: Metric,
    discovery: Discovery | None,
    rendered: Mapping[str, _RenderedTrigger],
) -> Node:
    step: Node = {"type": "JSONPATH", "parameters": [_json_path(metric, discovery)]}
    if metric.missing is not None:  # the entity left: a value that resolves its triggers
        step["error_handler"] = "CUSTOM_VALUE"
        step["error_handler_params"] = metric.missing
    elif metric.optional or discovery is not None:
        step["error_handler"] = "DISCARD_VALUE"
    steps = [step]
    if metric.optional:  # JSONPath gives a JSON null as the text 'null', not as an error
        steps.append(
            {
                "type": "NOT_MATCHES_REGEX",
                "parameters": ["^null$"],
                "error_handler": "DISCARD_VALUE",
            }
        )
    if metric.heartbeat:
        steps.append({"type": "DISCARD_UNCHANGED_HEARTBEAT", "parameters": [metric.heartbeat]})
    kind = "prototype" if discovery else "item"
    node: Node = {
        "uuid": stable_uuid(family.template, kind, item_key(family, metric, discovery)),
        "name": metric.name,
        "type": "DEPENDENT",
        "key": item_key(family, metric, discovery),
        "delay": "0",
        "history": "7d",
    }
    if metric.value_type not in _NUMERIC:
        node["trends"] = "0"
    if metric.value_type is not ValueType.UNSIGNED:
        node["value_type"] = metric.value_type.value
    if metric.units:
        node["units"] = metric.units
    node["description"] = metric.description
    if metric.valuemap:
        node["valuemap"] = {"name": metric.valuemap}
    node["preprocessing"] = steps
    node["master_item"] = {"key": family.master_key()}
    tags: list[Node] = [{"tag": "component", "value": family.component}]
    if discovery:
        tags.append(_entity_tag(discovery))
    # no tag from a user macro (the target's): Latest data would show the macro, unresolved
    node["tags"] = _sorted_tags(tags)
    own = [t for t in metric.triggers if _fields_of(t) <= {metric.field}]
    if own:
        node["trigger_prototypes" if discovery else "triggers"] = [
            _with_dependencies(t, discovery, rendered) for t in own
        ]
    return node


def _multi_item_triggers(
    metrics: Iterable[Metric], discovery: Discovery | None, rendered: Mapping[str, _RenderedTrigger]
) -> list[Node]:
    """Triggers over several items: not nestable under one item."""
    return [
        _with_dependencies(t, discovery, rendered)
        for m in metrics
        for t in m.triggers
        if not _fields_of(t) <= {m.field}
    ]


def _graphs(family: Family, metrics: tuple[Metric, ...], discovery: Discovery | None) -> list[Node]:
    """One graph (prototype) per ``Metric.graph`` name, items in catalogue order."""
    groups: dict[str, list[Metric]] = {}
    for m in metrics:
        if m.graph and m.item:
            groups.setdefault(m.graph, []).append(m)
    out: list[Node] = []
    for graph, members in groups.items():
        name = f"{_area(m.name for m in members)}: {_graph_title(graph)}"
        out.append(
            {
                "uuid": stable_uuid(
                    family.template, "graph", discovery.key if discovery else "", graph
                ),
                "name": name,
                "graph_items": [
                    {
                        **({"sortorder": str(i)} if i else {}),
                        "color": _PALETTE[i % len(_PALETTE)],
                        "item": {"host": family.template, "key": item_key(family, m, discovery)},
                    }
                    for i, m in enumerate(members)
                ],
            }
        )
    return out


def _discovery_rule(
    family: Family, discovery: Discovery, rendered: Mapping[str, _RenderedTrigger], version: str
) -> Node:
    """An LLD rule; its lost entities stay enabled until the rule's lifetime deletes them.

    A row that leaves the JSON resolves its triggers through the ``missing`` values its items
    then read, which only an enabled item can read. 6.0 never disables a lost entity, nor
    does a 6.0 file imported into 7.0; a native 7.0 rule would disable it at once (the 7.0
    default), leaving its problems open, so it says ``DISABLE_NEVER``.
    """
    node: Node = {
        "uuid": stable_uuid(family.template, "discovery", discovery.key),
        "name": discovery.name,
        "type": "DEPENDENT",
        "key": discovery.key,
        "delay": "0",
        "description": discovery.description,
    }
    if discovery.filter_macro:
        node["filter"] = {
            "conditions": [
                {
                    "macro": discovery.id_macro,
                    "value": discovery.filter_macro.name,
                    "formulaid": "A",
                }
            ],
        }
    if version != "6.0":  # the exporter's place for it: after the filter
        node["enabled_lifetime_type"] = "DISABLE_NEVER"
    node["item_prototypes"] = [
        _dependent_item(family, m, discovery, rendered) for m in discovery.metrics if m.item
    ]
    multi = _multi_item_triggers(discovery.metrics, discovery, rendered)
    if multi:
        node["trigger_prototypes"] = multi
    graphs = _graphs(family, discovery.metrics, discovery)
    if graphs:
        node["graph_prototypes"] = graphs
    node["master_item"] = {"key": family.master_key()}
    node["lld_macro_paths"] = [
        {"lld_macro": m, "path": f"$.{f}"} for m, f in sorted(discovery.macros)
    ]
    node["preprocessing"] = [{"type": "JSONPATH", "parameters": [f"$.{discovery.field}"]}]
    return node


# ---------------------------------------------------------------------------------- dashboard
def _widget(
    version: str,
    kind: str,
    name: str,
    x: int,
    y: int,
    width: int,
    fields: list[Node],
    height: int = 5,
) -> Node:
    """A widget in the given format: 6.0 has upper-case types on a 24-column grid; 7.0 has
    lower-case types, a 72-column grid, ``graphid.0``-style field names and a reference."""
    if version == "6.0":
        types = {
            "graph": "GRAPH_CLASSIC",
            "graphprototype": "GRAPH_PROTOTYPE",
            "plaintext": "PLAIN_TEXT",
            "item": "ITEM",
        }
        node: Node = {"type": types[kind], "name": name}
        scale = 1
    else:
        node = {"type": kind, "name": name}
        scale = 3
    if x:
        node["x"] = str(x * scale)
    if y:
        node["y"] = str(y)
    node["width"] = str(width * scale)
    node["height"] = str(height)
    node["fields"] = fields
    return node


def _indexed(version: str, name: str, index: int) -> str:
    return name if version == "6.0" else f"{name}.{index}"


_HEADLINES: dict[str, tuple[str, ...]] = {
    # which site is primary, is this standby receiving, how far behind (bytes, seconds)
    "kyoten.pg": (
        "in_recovery",
        "receiver_state",
        "replay_lag_bytes",
        "replay_delay",
        "receive_lag_bytes",
        "receiver_last_msg_age",
        "timeline",
        "standbys_connected",
        "replay_paused",
    ),
    # where this Pgpool sends writes, and whether it holds any live backend down
    "kyoten.pgpool": (
        "primary_name",
        "backends_up",
        "backends_total",
        "drift_count",
        "pg_primaries",
        "children_busy_pct",
        "via_pcp",
        "watchdog_quorum",
    ),
    # which Zabbix server node is active
    "kyoten.zabbix.ha": (
        "active_node",
        "nodes_active",
        "nodes_standby",
        "nodes_unavailable",
        "nodes_total",
    ),
    # the four questions across sites
    "kyoten.cross": (
        "primary_targets",
        "primaries",
        "pgpools_agree",
        "pgpool_primary_views",
        "pgpool_status_mismatches",
        "pgpool_drift",
        "zabbix_active_nodes",
        "pg_reachable",
        "pgpool_reachable",
        "unreachable",
    ),
}
"""Per family, the items whose latest values open its dashboard, in reading order."""

_VALUES_PER_ROW = 6


def _headlines(family: Family) -> list[Metric]:
    by_field = {m.field: m for m in family.metrics if m.item}
    fields = _HEADLINES.get(family.key, ())
    unknown = [f for f in fields if f not in by_field]
    if unknown:
        raise ValueError(f"{family.template}: dashboard names unknown field(s) {unknown}")
    return [by_field[f] for f in fields]


def _item_widget(family: Family, version: str, metric: Metric, x: int, y: int) -> Node:
    """An item value widget showing the value alone (its title names it), sized to fit."""
    fields: list[Node] = [
        {"type": "INTEGER", "name": _indexed(version, "show", 0), "value": "2"},
        {"type": "INTEGER", "name": "adv_conf", "value": "1"},
        {"type": "INTEGER", "name": "decimal_places", "value": "0"},
        {"type": "INTEGER", "name": "value_size", "value": "20"},
        {"type": "INTEGER", "name": "units_size", "value": "20"},
        {
            "type": "ITEM",
            "name": _indexed(version, "itemid", 0),
            "value": {"host": family.template, "key": item_key(family, metric)},
        },
    ]
    title = metric.name.split(": ", 1)[-1]
    return _widget(version, "item", title, x, y, 24 // _VALUES_PER_ROW, fields, height=3)


def _dashboard(family: Family, version: str, graphs: list[Node], prototypes: list[Node]) -> Node:
    """The page an operator opens first: the answers, then how they changed.

    First the latest values of the family's headline items (role, receiver, lag; where a
    Pgpool sends writes and what it holds down; the active HA node; the cross-site
    invariants), one item value widget each; then every graph and graph prototype of the
    family and a simple graph of the collector's duration, two per row.
    """
    tpl = family.template
    widgets: list[Node] = []
    values = _headlines(family)
    for i, metric in enumerate(values):
        x, y = (i % _VALUES_PER_ROW) * (24 // _VALUES_PER_ROW), (i // _VALUES_PER_ROW) * 3
        widgets.append(_item_widget(family, version, metric, x, y))
    top = -(-len(values) // _VALUES_PER_ROW) * 3
    cells: list[tuple[str, str]] = [("graph", g["name"]) for g in graphs]
    cells += [("graphprototype", g["name"]) for g in prototypes]
    duration = next((m for m in family.metrics if m.field == "duration" and m.item), None)
    if duration is not None:
        cells.append(("simplegraph", duration.name))
    for i, (kind, name) in enumerate(cells):
        fields: list[Node] = []
        if kind == "graphprototype":
            fields.append({"type": "INTEGER", "name": "columns", "value": "1"})
        if kind == "simplegraph":
            fields.append({"type": "INTEGER", "name": "source_type", "value": "1"})
            fields.append(
                {
                    "type": "ITEM",
                    "name": _indexed(version, "itemid", 0),
                    "value": {"host": tpl, "key": item_key(family, duration)},  # type: ignore[arg-type]
                }
            )
        else:
            fields.append(
                {
                    "type": "GRAPH" if kind == "graph" else "GRAPH_PROTOTYPE",
                    "name": _indexed(version, "graphid", 0),
                    "value": {"host": tpl, "name": name},
                }
            )
        if version != "6.0" and kind != "graphprototype":
            fields.append({"type": "STRING", "name": "reference", "value": _reference(tpl, i)})
        widget_kind = "graph" if kind == "simplegraph" else kind
        widgets.append(
            _widget(version, widget_kind, name, (i % 2) * 12, top + (i // 2) * 5, 12, fields)
        )
    if version == "6.0":  # the orders configuration.export writes (importcompare needs them)
        widgets.sort(key=lambda w: _natural(str(w["name"])))
    else:
        widgets.sort(key=lambda w: (int(w.get("x", "0")), int(w.get("y", "0"))))
        for w in widgets:
            w["fields"].sort(key=lambda f: str(f["name"]))
    return {
        "uuid": stable_uuid(tpl, "dashboard"),
        "name": f"{tpl.removeprefix('kyoten ')} overview",
        "pages": [{"name": "Overview", "widgets": widgets}],
    }


def _natural(text: str) -> str:
    """Sort key of PHP's ``strnatcasecmp``, by which the 6.0 exporter orders widgets: case
    folded to upper case, white space skipped, runs of digits compared as numbers."""
    squeezed = re.sub(r"\s+", "", text.upper())
    return re.sub(r"\d+", lambda m: m.group().lstrip("0").rjust(20, "0"), squeezed)


def _reference(template: str, index: int) -> str:
    """A 5-letter widget reference (7.0 graphs need one, unique within the dashboard)."""
    n = int(hashlib.sha256(template.encode()).hexdigest()[:6], 16) + index
    letters = []
    for _ in range(5):
        n, r = divmod(n, 26)
        letters.append(chr(ord("A") + r))
    return "".join(letters)


# ---------------------------------------------------------------------------------- templates
def template_export(family: Family, version: str) -> Node:
    """The whole ``zabbix_export`` document of one family's template."""
    if version not in VERSIONS:
        raise ValueError(f"unsupported Zabbix export version {version!r}")
    tpl = family.template
    rendered = _all_triggers(family)
    items = [_master_item(family, version)]
    items += [_dependent_item(family, m, None, rendered) for m in family.metrics if m.item]
    graphs = _graphs(family, family.metrics, None)
    rules = [_discovery_rule(family, d, rendered, version) for d in family.discoveries]
    prototypes = [g for r in rules for g in r.get("graph_prototypes", [])]
    template: Node = {
        "uuid": stable_uuid(tpl, "template"),
        "template": tpl,
        "name": tpl,
        "description": family.template_description,
    }
    if version != "6.0":
        template["vendor"] = dict(VENDOR)
    template["groups"] = [{"name": GROUP}]
    template["items"] = items
    if rules:
        template["discovery_rules"] = rules
    template["tags"] = _sorted_tags({"tag": k, "value": v} for k, v in family.tags)
    template["macros"] = [
        {"macro": m.name, "value": m.default, "description": m.description}
        for m in sorted(
            (*family.all_macros(), *((TIMEOUT,) if version != "6.0" else ())),
            key=lambda m: m.name,
        )
    ]
    template["dashboards"] = [_dashboard(family, version, graphs, prototypes)]
    template["valuemaps"] = [
        {
            "uuid": stable_uuid(tpl, "valuemap", vm.name),
            "name": vm.name,
            "mappings": [{"value": v, "newvalue": text} for v, text in vm.mappings],
        }
        for vm in family.valuemaps
    ]
    export: Node = {"version": version}
    export["groups" if version == "6.0" else "template_groups"] = [
        {"uuid": stable_uuid("group", GROUP), "name": GROUP}
    ]
    export["templates"] = [template]
    multi = _multi_item_triggers(family.metrics, None, rendered)
    if multi:
        export["triggers"] = multi
    if graphs:
        export["graphs"] = graphs
    return {"zabbix_export": export}


# ---------------------------------------------------------------------------------- YAML
_PLAIN_KEY = re.compile(r"[a-z_][a-z0-9_]*")
_YAML11_WORDS = {"y", "n", "yes", "no", "on", "off", "true", "false", "null"}


class _Dumper(yaml.SafeDumper):
    """Every value scalar is a quoted string; a non-string value is a renderer bug.

    Sequences are indented under their key, as Zabbix's own exports are, so a generated file
    reads like an exported one.
    """

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def _represent_str(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    return dumper.represent_scalar(
        "tag:yaml.org,2002:str", data, style="|" if "\n" in data else "'"
    )


def _represent_dict(dumper: yaml.SafeDumper, data: Mapping[str, Any]) -> yaml.MappingNode:
    pairs: list[tuple[yaml.Node, yaml.Node]] = []
    for key, value in data.items():
        if not isinstance(key, str):
            raise TypeError(f"mapping key {key!r} is not a string")
        # plain keys, except where YAML 1.1 would read a boolean (the widget key 'y')
        plain = bool(_PLAIN_KEY.fullmatch(key)) and key.lower() not in _YAML11_WORDS
        key_node = yaml.ScalarNode("tag:yaml.org,2002:str", key, style=None if plain else "'")
        pairs.append((key_node, dumper.represent_data(value)))
    return yaml.MappingNode("tag:yaml.org,2002:map", pairs, flow_style=False)


def _refuse(dumper: yaml.SafeDumper, data: object) -> yaml.Node:
    raise TypeError(f"{type(data).__name__} value {data!r}: every scalar must be a string")


_Dumper.add_representer(str, _represent_str)
_Dumper.add_representer(dict, _represent_dict)
for _t in (int, float, bool, type(None)):
    _Dumper.add_representer(_t, _refuse)


def to_yaml(document: Mapping[str, Any]) -> str:
    """Serialise an export document; raises TypeError on any non-string scalar."""
    return yaml.dump(
        document, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=1000, indent=2
    )


def render_all(media_types: Mapping[str, Mapping[str, Any]]) -> dict[str, str]:
    """Every generated file under ``templates/``: relative name → text.

    ``6.0/*.yaml`` import into Zabbix 6.0 and later, ``7.0/*.yaml`` into 7.0 and later; each
    directory also holds the alert bridge's webhook media type. That document is the bridge's
    contract, so the caller passes it in (``media_types``: export format → document) and the
    collector never imports the bridge.
    """
    files: dict[str, str] = {}
    for version in VERSIONS:
        for family in FAMILIES:
            files[f"{version}/{file_name(family)}"] = to_yaml(template_export(family, version))
        files[f"{version}/{MEDIA_TYPE_FILE}"] = to_yaml(media_types[version])
    return files


def template_files(version: str) -> list[str]:
    """Names (keys of :func:`render_all`) of the template files of one format, import order."""
    return [f"{version}/{file_name(f)}" for f in FAMILIES]
