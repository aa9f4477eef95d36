"""The NOC's picture of a two-site installation, from kyoten.toml: hosts, the live map, the
NOC dashboard.

Pure, like the template renderer: it takes a parsed :class:`~kyoten.agent.config.Config` and
the catalogue and returns plain data; ``kyoten export map`` prints the map and ``kyoten
import`` sends all of it to Zabbix (:mod:`kyoten.shell.zabbix_wiring`).

* :func:`plan` — the Zabbix hosts for the targets: one per ``[postgres.*]``, ``[pgpool.*]``
  and ``[zabbix.*]`` table (named after the target, optionally prefixed), each linked to its
  template with the target macro set, plus one aggregate host for the cross-site invariants.
* :func:`map_export` — the ``zabbix_export`` document of the topology map: a rectangle per
  site holding that site's Zabbix server node, Pgpool-II and PostgreSQL server; a link for
  streaming replication between the PostgreSQL servers and one from each Pgpool to each of
  its backends (in the order of ``backends``), each coloured by the triggers that concern it
  (a WAL receiver that stopped turns the replication link red, a Pgpool holding a live
  backend down turns its link amber); element labels read role, receiver, lag, each Pgpool's
  view of every backend and each Zabbix node's own HA state from the items' latest values.
* :func:`noc_widgets` — the widgets of the global "kyoten NOC" dashboard for Zabbix 6.0 or
  7.0, with references (host and item key, host and graph name, map name) that the importer
  resolves to ids.

Links refer to discovered triggers (per standby, per backend), which exist only after the
first poll of the hosts: the importer leaves out the ones not discovered yet and says so, and
``kyoten import --check`` reports them until a later run adds them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kyoten.agent.catalogue import cross, pgpool, postgres, zabbix
from kyoten.agent.catalogue.model import Discovery, Family, Trigger
from kyoten.agent.config import Config
from kyoten.agent.export import templates as tpl

Node = dict[str, Any]

MAP_NAME = "kyoten topology"
DASHBOARD_NAME = "kyoten NOC"
CROSS_HOST = "cross-site"
"""The aggregate host of the cross-site invariants (before ``prefix``)."""

RED = "DD0000"
AMBER = "FF8800"
GREEN = "1A7C11"
GREY = "888888"

ICONS = {
    "zabbix": "Zabbix_server_3D_(96)",
    "pgpool": "Router_symbol_(96)",
    "postgres": "Disk_array_3D_(96)",
    "cross": "Cloud_(96)",
}
"""Stock images of Zabbix (images.sql), so the map imports without images of its own."""

_KIND_FAMILY: dict[str, Family] = {
    "postgres": postgres.FAMILY,
    "pgpool": pgpool.FAMILY,
    "zabbix": zabbix.FAMILY,
    "cross": cross.FAMILY,
}


# ---------------------------------------------------------------------------------- hosts
@dataclass(frozen=True)
class PlannedHost:
    """One Zabbix host: what ``kyoten import`` creates or corrects."""

    name: str
    kind: str  # postgres, pgpool, zabbix or cross
    target: str  # the target's name in kyoten.toml ('' for the aggregate host)
    site: str
    template: str
    macros: tuple[tuple[str, str], ...]

    @property
    def tags(self) -> tuple[tuple[str, str], ...]:
        """Host tags naming the target and its site, literally.

        An item tag cannot: a template's item tag could only name the target through the
        target macro, and the frontends show item tags unresolved (Latest data would read
        ``{$KYOTEN.PG.TARGET}``). Host tags also reach every event of the host, so rules
        may route on ``site``. The aggregate host belongs to no target and no site.
        """
        return tuple((k, v) for k, v in (("site", self.site), ("target", self.target)) if v)


@dataclass(frozen=True)
class Topology:
    """Hosts by kind and target, the sites in order, and the Zabbix server node of each site."""

    hosts: tuple[PlannedHost, ...]
    sites: tuple[str, ...]
    nodes: tuple[tuple[str, str], ...]  # (site, HA node name)
    config: Config = field(repr=False)

    def host(self, kind: str, target: str = "") -> PlannedHost:
        for h in self.hosts:
            if h.kind == kind and h.target == target:
                return h
        raise KeyError(f"no {kind} host for target {target!r}")

    def of_kind(self, kind: str, site: str | None = None) -> list[PlannedHost]:
        return [h for h in self.hosts if h.kind == kind and (site is None or h.site == site)]

    def zabbix_host(self, site: str) -> PlannedHost | None:
        """The Zabbix HA host that reads ha_node through ``site`` (else the first one)."""
        found = self.of_kind("zabbix", site) or self.of_kind("zabbix")
        return found[0] if found else None


def plan(
    config: Config,
    prefix: str = "",
    macros: Mapping[str, str] | None = None,
    nodes: Mapping[str, str] | None = None,
) -> Topology:
    """The hosts for every target of ``config``, their sites and Zabbix server nodes.

    ``macros`` are set on every host besides the target macro (e.g. a shorter
    ``{$KYOTEN.INTERVAL}``). ``nodes`` maps a site to the HANodeName of its Zabbix server;
    by default each site's node is named like the site, as in the two-site design.
    Raises ValueError when two targets of different kinds would get the same host name.
    """
    extra = dict(macros or {})
    hosts: list[PlannedHost] = []
    for kind, table in (
        ("postgres", config.postgres),
        ("pgpool", config.pgpool),
        ("zabbix", config.zabbix),
    ):
        family = _KIND_FAMILY[kind]
        target_macro = family.params[0].macro.name
        for name, target in table.items():
            hosts.append(
                PlannedHost(
                    f"{prefix}{name}",
                    kind,
                    name,
                    target.site,
                    family.template,
                    tuple(sorted({**extra, target_macro: name}.items())),
                )
            )
    hosts.append(
        PlannedHost(
            f"{prefix}{CROSS_HOST}",
            "cross",
            "",
            "",
            cross.FAMILY.template,
            tuple(sorted(extra.items())),
        )
    )
    seen: dict[str, PlannedHost] = {}
    for h in hosts:
        if h.name in seen:
            other = seen[h.name]
            raise ValueError(
                f"host name {h.name!r} would be used by [{other.kind}.{other.target}] and "
                f"[{h.kind}.{h.target}]: target names must differ across kinds (rename one)"
            )
        seen[h.name] = h
    sites: list[str] = []
    for h in hosts:
        if h.kind in ("postgres", "pgpool") and h.site not in sites:
            sites.append(h.site)
    node_names = dict(nodes or {})
    unknown = sorted(set(node_names) - set(sites))
    if unknown:
        raise ValueError(f"Zabbix node given for unknown site(s) {', '.join(unknown)}")
    site_nodes = (
        tuple((s, node_names.get(s, s or "zabbix")) for s in sites) if config.zabbix else ()
    )
    return Topology(tuple(hosts), tuple(sites), site_nodes, config)


# ---------------------------------------------------------------------------------- items
def _metric_key(family: Family, field_name: str, discovery: Discovery | None = None) -> str:
    metrics = family.metrics if discovery is None else discovery.metrics
    for m in metrics:
        if m.field == field_name and m.item:
            return tpl.item_key(family, m, discovery)
    raise KeyError(f"{family.template} has no item for field {field_name!r}")


def item_key(kind: str, field_name: str, element: str | None = None) -> str:
    """Key of the item of ``field_name`` on a host of ``kind``; ``element`` picks the item of
    a discovered entity (the LLD id: a standby's application_name, a backend's node id, a
    Zabbix HA node's name)."""
    family = _KIND_FAMILY[kind]
    if element is None:
        return _metric_key(family, field_name)
    for d in family.discoveries:
        if any(m.field == field_name for m in d.metrics):
            return _metric_key(family, field_name, d).replace(d.id_macro, element)
    raise KeyError(f"{family.template} discovers no item for field {field_name!r}")


def _last(host: str, key: str) -> str:
    return f"{{?last(/{host}/{key})}}"


# ---------------------------------------------------------------------------------- triggers
def _find_trigger(family: Family, uid: str) -> tuple[Trigger, Discovery | None]:
    scopes: list[tuple[Discovery | None, Sequence[Any]]] = [(None, family.metrics)]
    scopes += [(d, d.metrics) for d in family.discoveries]
    for discovery, metrics in scopes:
        for m in metrics:
            for t in m.triggers:
                if t.uid == uid:
                    return t, discovery
    raise KeyError(f"{family.template} has no trigger {uid!r}")


def host_trigger(kind: str, uid: str, host: str, lld: Mapping[str, str] | None = None) -> Node:
    """The trigger ``uid`` as it exists on ``host`` (discovered with the LLD macro values
    ``lld``): name, expression and recovery expression, how map files refer to a trigger."""
    family = _KIND_FAMILY[kind]
    trigger, discovery = _find_trigger(family, uid)
    scope = tpl._scope(family, discovery)
    values = dict(lld or {})
    if discovery is not None and discovery.id_macro not in values:
        raise ValueError(f"trigger {uid} is a prototype: give {discovery.id_macro}")

    def on_host(text: str) -> str:
        text = text.replace(f"/{family.template}/", f"/{host}/")
        for macro, value in values.items():
            text = text.replace(macro, value)
        return text

    recovery = scope.expand(trigger.recovery, uid) if trigger.recovery else ""
    name = trigger.name
    for macro, value in values.items():
        name = name.replace(macro, value)
    return {
        "description": name,
        "expression": on_host(scope.expand(trigger.expression, uid)),
        "recovery_expression": on_host(recovery),
    }


def _link_trigger(color: str, trigger: Node, drawtype: str = "2") -> Node:
    return {"drawtype": drawtype, "color": color, "trigger": trigger}


# ---------------------------------------------------------------------------------- map
_COLUMN = 400
_GAP = 40
_ROW = {"zabbix": 195, "pgpool": 345, "postgres": 505}  # below the sites' titles
_TOP = 130
_ICON = 96


def _blank_icon() -> Node:
    return {"name": ""}


def _selement(
    selementid: str, kind: str, host: str, label: str, x: int, y: int, where: str = "-1"
) -> Node:
    return {
        "elementtype": "0",
        "elements": [{"host": host}],
        "label": label,
        "label_location": where,
        "x": str(x),
        "y": str(y),
        "elementsubtype": "0",
        "areatype": "0",
        "width": "200",
        "height": "200",
        "viewtype": "0",
        "use_iconmap": "0",
        "selementid": selementid,
        "icon_off": {"name": ICONS[kind]},
        "icon_on": _blank_icon(),
        "icon_disabled": _blank_icon(),
        "icon_maintenance": _blank_icon(),
        "urls": [],
        "evaltype": "0",
    }


def _shape(x: int, y: int, width: int, height: int, text: str) -> Node:
    return {
        "type": "0",
        "x": str(x),
        "y": str(y),
        "width": str(width),
        "height": str(height),
        "text": text,
        "font": "9",
        "font_size": "14",
        "font_color": "000000",
        "text_halign": "0",
        "text_valign": "1",
        "border_type": "1",
        "border_width": "2",
        "border_color": "7F7F7F",
        "background_color": "F5F5F5",
        "zindex": "0",
    }


def _link(a: str, b: str, color: str, label: str, triggers: list[Node], drawtype: str) -> Node:
    return {
        "drawtype": drawtype,
        "color": color,
        "label": label,
        "selementid1": a,
        "selementid2": b,
        "linktriggers": triggers,
    }


def _pg_label(host: str, target: str, cross_host: str) -> str:
    def k(f: str) -> str:
        return _last(host, item_key("postgres", f))

    # from the aggregate host, which still answers when this server is gone
    up = _last(cross_host, item_key("cross", "up", target))
    return "\n".join(
        (
            f"PostgreSQL {target}",
            f"{k('in_recovery')}, accepts connections: {up}",
            f"WAL receiver: {k('receiver_state')}",
            f"replay lag: {k('replay_lag_bytes')}, delay: {k('replay_delay')}",
        )
    )


def _pgpool_label(topo: Topology, h: PlannedHost) -> str:
    lines = [
        f"Pgpool-II {h.target}",
        f"writes to: {_last(h.name, item_key('pgpool', 'primary_name'))}",
    ]
    for node_id, backend in enumerate(topo.config.pgpool[h.target].backends):
        status = _last(h.name, item_key("pgpool", "status", str(node_id)))
        live = _last(h.name, item_key("pgpool", "pg_status", str(node_id)))
        lines.append(f"{backend}: {status}, PostgreSQL {live}")
    lines.append(f"children in use: {_last(h.name, item_key('pgpool', 'children_busy_pct'))}")
    return "\n".join(lines)


def _zabbix_label(node: str, host: str) -> str:
    """The node's own HA state (Active, Standby, Stopped …), from its discovered item: which
    node is active shows as one element reading Active, not as a name repeated on both."""
    return "\n".join(
        (
            f"Zabbix server {node}",
            f"HA state: {_last(host, item_key('zabbix', 'status', node))}",
        )
    )


def _cross_label(host: str) -> str:
    def k(f: str) -> str:
        return _last(host, item_key("cross", f))

    return "\n".join(
        (
            "Cross-site",
            f"primary: {k('primary_targets')}",
            f"Pgpools agree on the primary: {k('pgpools_agree')}",
            f"backend status mismatches: {k('pgpool_status_mismatches')}",
            f"active Zabbix nodes: {k('zabbix_active_nodes')}",
        )
    )


def replication_pairs(config: Config) -> list[tuple[str, str]]:
    """PostgreSQL target pairs joined by streaming replication: each target with the ones in
    its ``expected_standbys``, once per pair; every pair when no target lists any."""
    names = list(config.postgres)
    pairs: list[tuple[str, str]] = []
    for name, target in config.postgres.items():
        for other in target.expected_standbys:
            if other in config.postgres and other != name:
                pair = (name, other) if names.index(name) < names.index(other) else (other, name)
                if pair not in pairs:
                    pairs.append(pair)
    if not pairs:
        pairs = [(a, b) for i, a in enumerate(names) for b in names[i + 1 :]]
    return pairs


def _replication_triggers(topo: Topology, a: str, b: str) -> list[Node]:
    """Red: a WAL receiver that does not stream, or a standby missing from its primary;
    amber: replay lag or delay over the threshold."""
    out: list[Node] = []
    for target in (a, b):
        host = topo.host("postgres", target).name
        out.append(_link_trigger(RED, host_trigger("postgres", "pg.receiver_down", host)))
    for target, other in ((a, b), (b, a)):
        if other in topo.config.postgres[target].expected_standbys:
            host = topo.host("postgres", target).name
            out.append(
                _link_trigger(
                    RED, host_trigger("postgres", "pg.standby_missing", host, {"{#APP}": other})
                )
            )
    for target in (a, b):
        host = topo.host("postgres", target).name
        for uid in ("pg.replay_lag_bytes", "pg.replay_delay"):
            out.append(_link_trigger(AMBER, host_trigger("postgres", uid, host)))
    return out


def _backend_triggers(pool_host: str, node_id: int, backend: str) -> list[Node]:
    """Amber: the Pgpool holds the live backend down; red: it detached the backend."""
    lld = {"{#NODE}": str(node_id), "{#NAME}": backend}
    return [
        _link_trigger(AMBER, host_trigger("pgpool", "pgpool.drift", pool_host, lld)),
        _link_trigger(RED, host_trigger("pgpool", "pgpool.backend_down", pool_host, lld)),
    ]


def _pool_triggers(pool_host: str) -> list[Node]:
    """Red on the Zabbix server → Pgpool link: the Pgpool refuses SQL or has no free child."""
    return [
        _link_trigger(RED, host_trigger("pgpool", uid, pool_host), drawtype="4")
        for uid in ("pgpool.sql_refused", "pgpool.children_exhausted")
    ]


def map_node(topo: Topology, name: str = MAP_NAME) -> Node:
    """The ``maps[]`` entry of the topology map (the same structure in 6.0 and 7.0)."""
    n = max(len(topo.sites), 1)
    width = n * _COLUMN + (n + 1) * _GAP
    height = _ROW["postgres"] + 190
    selements: list[Node] = []
    shapes: list[Node] = []
    links: list[Node] = []
    ids: dict[tuple[str, str], str] = {}

    def add(kind: str, key: str, host: str, label: str, x: int, y: int, where: str = "-1") -> str:
        selementid = str(len(selements) + 1)
        selements.append(_selement(selementid, kind, host, label, x, y, where))
        ids[(kind, key)] = selementid
        return selementid

    cross_host = topo.host("cross").name
    # above the sites, its label to the right (2) so that it stays clear of them
    add("cross", "", cross_host, _cross_label(cross_host), width // 2 - _ICON, 20, "2")
    nodes = dict(topo.nodes)
    for i, site in enumerate(topo.sites):
        x0 = _GAP + i * (_COLUMN + _GAP)
        shapes.append(
            _shape(x0, _TOP, _COLUMN, height - _TOP - 20, f"site {site}" if site else "no site")
        )
        rows: dict[str, list[tuple[str, str, str]]] = {"zabbix": [], "pgpool": [], "postgres": []}
        zhost = topo.zabbix_host(site)
        if site in nodes and zhost is not None:
            rows["zabbix"].append((nodes[site], zhost.name, _zabbix_label(nodes[site], zhost.name)))
        for h in topo.of_kind("pgpool", site):
            rows["pgpool"].append((h.target, h.name, _pgpool_label(topo, h)))
        for h in topo.of_kind("postgres", site):
            rows["postgres"].append((h.target, h.name, _pg_label(h.name, h.target, cross_host)))
        for kind, row in rows.items():
            for j, (key, host, label) in enumerate(row):
                x = x0 + (2 * j + 1) * _COLUMN // (2 * len(row)) - _ICON // 2 - 60
                add(kind, key if kind != "zabbix" else site, host, label, x, _ROW[kind])
    for a, b in replication_pairs(topo.config):
        links.append(
            _link(
                ids[("postgres", a)],
                ids[("postgres", b)],
                GREEN,
                "streaming replication",
                _replication_triggers(topo, a, b),
                "2",
            )
        )
    for h in topo.of_kind("pgpool"):
        pool_id = ids[("pgpool", h.target)]
        if ("zabbix", h.site) in ids:
            links.append(
                _link(ids[("zabbix", h.site)], pool_id, GREY, "", _pool_triggers(h.name), "4")
            )
        backends = topo.config.pgpool[h.target].backends
        for node_id, backend in enumerate(backends):
            if ("postgres", backend) in ids:
                links.append(
                    _link(
                        pool_id,
                        ids[("postgres", backend)],
                        GREEN,
                        "",
                        _backend_triggers(h.name, node_id, backend),
                        "0",
                    )
                )
    return {
        "name": name,
        "width": str(width),
        "height": str(height),
        "label_type": "0",
        "label_location": "0",
        "highlight": "1",
        "expandproblem": "1",
        "markelements": "1",
        "show_unack": "0",
        "severity_min": "0",
        "show_suppressed": "0",
        "grid_size": "50",
        "grid_show": "0",
        "grid_align": "0",
        "label_format": "0",
        "label_type_host": "2",
        "label_type_hostgroup": "2",
        "label_type_trigger": "2",
        "label_type_map": "2",
        "label_type_image": "2",
        "label_string_host": "",
        "label_string_hostgroup": "",
        "label_string_trigger": "",
        "label_string_map": "",
        "label_string_image": "",
        "expand_macros": "1",
        "background": {},
        "iconmap": {},
        "urls": [],
        "selements": selements,
        "shapes": shapes,
        "lines": [],
        "links": links,
    }


def map_export(topo: Topology, version: str = "6.0", name: str = MAP_NAME) -> Node:
    """The whole ``zabbix_export`` document of the map, for Zabbix ``version`` (6.0 or 7.0).

    The importer resolves element icons only among the document's ``images``, so the stock
    icons the map uses are listed there by name, without their pictures (``encodedImage``
    empty): imported without the ``images`` rule, as ``kyoten import`` does, they only name
    the server's own stock images.
    """
    if version not in tpl.VERSIONS:
        raise ValueError(f"unsupported Zabbix export version {version!r}")
    images = [
        {"name": icon, "imagetype": "1", "encodedImage": ""} for icon in sorted(set(ICONS.values()))
    ]
    return {"zabbix_export": {"version": version, "images": images, "maps": [map_node(topo, name)]}}


def map_triggers(doc: Mapping[str, Any]) -> list[Node]:
    """Every trigger a map document refers to (link triggers), in order, without repeats."""
    out: list[Node] = []
    for m in doc["zabbix_export"]["maps"]:
        for link in m["links"]:
            for lt in link["linktriggers"]:
                if lt["trigger"] not in out:
                    out.append(lt["trigger"])
    return out


def without_triggers(doc: Mapping[str, Any], missing: Sequence[Mapping[str, str]]) -> Node:
    """A copy of the map document without the link triggers in ``missing``."""
    import copy

    out: Node = copy.deepcopy(dict(doc))
    for m in out["zabbix_export"]["maps"]:
        for link in m["links"]:
            link["linktriggers"] = [
                lt for lt in link["linktriggers"] if lt["trigger"] not in missing
            ]
    return out


# ---------------------------------------------------------------------------------- dashboard
@dataclass(frozen=True)
class Ref:
    """What a widget field names, resolved to an id by the importer: ``kind`` host, item,
    graph, graph_prototype or map; ``host`` and ``name`` (the host's own name, an item key,
    a graph's or map's name)."""

    kind: str
    host: str
    name: str


@dataclass(frozen=True)
class Widget:
    """A dashboard widget in API terms: fields are (type, name, value) with a :class:`Ref`
    where an id belongs; x and width on 6.0's 24-column grid (the importer triples them for
    7.0's 72 columns)."""

    type: str
    name: str
    x: int
    y: int
    width: int
    height: int
    fields: tuple[tuple[int, str, str | Ref], ...]


def noc_widgets(
    topo: Topology,
    version: str,
    map_name: str = MAP_NAME,
    hide_tags: Sequence[tuple[str, str]] = (),
) -> list[Widget]:
    """The NOC dashboard: the map, the four questions as item values, problems, graphs.

    Top: the map (every answer in one picture) beside the problems. Then one row of item values
    per question: which site is primary (the cross-site host's primary targets, each server's
    role and whether it accepts connections), whether the Pgpools agree with PostgreSQL
    (agreement on the primary, backend status mismatches, live backends held down), which Zabbix
    node is active, and how far behind each standby is (replay lag in bytes and seconds, the WAL
    receiver). Last, graphs over time: lag per standby, Pgpool children in use, backend delay,
    collector duration. The problems widget lists open problems only, without those tagged with
    one of ``hide_tags`` (the alert-path canary's, which are for the bridge, not for people).
    """
    v7 = version >= "7.0"

    def idx(name: str) -> str:
        return f"{name}.0" if v7 else name

    widgets: list[Widget] = [
        Widget("map", "Topology", 0, 0, 16, 10, ((8, idx("sysmapid"), Ref("map", "", map_name)),)),
        Widget(
            "problems",
            "Problems",
            16,
            0,
            8,
            10,
            (
                (0, "show", "3"),  # problems that are open now
                (0, "show_tags", "1"),
                (0, "show_opdata", "1"),
                (0, "show_lines", "12"),
                *_tag_filter(hide_tags, v7),
            ),
        ),
    ]
    values: list[tuple[str, str, str]] = []  # (title, host, key)
    cross_host = topo.host("cross").name
    values.append(("Primary", cross_host, item_key("cross", "primary_targets")))
    for h in topo.of_kind("postgres"):
        # a server's own role item keeps its last value while the server is down: beside it,
        # whether it answers, from the aggregate host (which still polls when it is gone)
        values.append((f"{h.target}: role", h.name, item_key("postgres", "in_recovery")))
        values.append((f"{h.target}: up", cross_host, item_key("cross", "up", h.target)))
    values.append(("Pgpools agree on the primary", cross_host, item_key("cross", "pgpools_agree")))
    values.append(
        (
            "Backend status mismatches",
            cross_host,
            item_key("cross", "pgpool_status_mismatches"),
        )
    )
    values.append(("Live backends held down", cross_host, item_key("cross", "pgpool_drift")))
    for h in topo.of_kind("pgpool"):
        values.append((f"{h.target}: writes to", h.name, item_key("pgpool", "primary_name")))
    zhost = topo.of_kind("zabbix")
    if zhost:
        values.append(("Active Zabbix node", zhost[0].name, item_key("zabbix", "active_node")))
    for h in topo.of_kind("postgres"):
        values.append((f"{h.target}: WAL receiver", h.name, item_key("postgres", "receiver_state")))
        values.append((f"{h.target}: replay lag", h.name, item_key("postgres", "replay_lag_bytes")))
        values.append((f"{h.target}: replay delay", h.name, item_key("postgres", "replay_delay")))
    per_row = 6
    for i, (title, host, key) in enumerate(values):
        widgets.append(
            Widget(
                "item",
                title,
                (i % per_row) * 4,
                10 + (i // per_row) * 3,
                4,
                3,
                (
                    (4, idx("itemid"), Ref("item", host, key)),
                    (0, idx("show"), "2"),  # the value only: the widget's name says what
                    (0, "adv_conf", "1"),
                    (0, "value_size", "20"),
                    (0, "units_size", "20"),
                    (0, "decimal_places", "0"),
                ),
            )
        )
    y = 10 + ((len(values) + per_row - 1) // per_row) * 3
    if v7:  # a native 7.0 widget: one cell per server, red while its WAL receiver is stopped
        pg_hosts = topo.of_kind("postgres")
        cells: list[tuple[int, str, str | Ref]] = [
            (3, f"hostids.{i}", Ref("host", h.name, h.name)) for i, h in enumerate(pg_hosts)
        ]
        cells += [
            (1, "items.0", _item_name("postgres", "receiver_state")),
            (1, "bg_color", RED),  # below the first threshold: 0, stopped
            (1, "thresholds.0.color", GREEN),
            (1, "thresholds.0.threshold", "1"),  # 1 streaming, 2 a primary
            (1, "thresholds.1.color", AMBER),
            (1, "thresholds.1.threshold", "3"),  # 3 starting or waiting
        ]
        widgets.append(Widget("honeycomb", "Is each standby receiving?", 0, y, 24, 3, tuple(cells)))
        y += 3
    graphs: list[tuple[str, list[tuple[str, str]]]] = [
        (
            "Replay lag per standby (bytes)",
            [
                (h.name, _item_name("postgres", "replay_lag_bytes"))
                for h in topo.of_kind("postgres")
            ],
        ),
        (
            "Replay delay per standby (seconds)",
            [(h.name, _item_name("postgres", "replay_delay")) for h in topo.of_kind("postgres")],
        ),
        (
            "Pgpool-II children in use",
            [(h.name, _item_name("pgpool", "children_busy")) for h in topo.of_kind("pgpool")],
        ),
        (
            "Backend replication delay (Pgpool-II)",
            [(h.name, "Backend [*]: Replication delay") for h in topo.of_kind("pgpool")],
        ),
        (
            "Collector duration",
            [(h.name, "*: Collector duration") for h in topo.hosts],
        ),
    ]
    for i, (title, series) in enumerate(graphs):
        fields: list[tuple[int, str, str | Ref]] = []
        for n, (host, item) in enumerate(series):
            if v7:
                fields += [
                    (1, f"ds.{n}.hosts.0", host),
                    (1, f"ds.{n}.items.0", item),
                    (1, f"ds.{n}.color", tpl._PALETTE[n % len(tpl._PALETTE)]),
                ]
            else:
                fields += [
                    (1, f"ds.hosts.{n}.0", host),
                    (1, f"ds.items.{n}.0", item),
                    (1, f"ds.color.{n}", tpl._PALETTE[n % len(tpl._PALETTE)]),
                ]
        fields.append((0, "legend_lines", "2"))
        widgets.append(
            Widget("svggraph", title, (i % 2) * 12, y + (i // 2) * 5, 12, 5, tuple(fields))
        )
    return widgets


def _tag_filter(hide: Sequence[tuple[str, str]], v7: bool) -> list[tuple[int, str, str]]:
    """Problems widget fields: tag NAME does not equal VALUE (operator 3), for each pair."""
    out: list[tuple[int, str, str]] = []
    for i, (tag, value) in enumerate(hide):
        for part, kind, content in (("tag", 1, tag), ("operator", 0, "3"), ("value", 1, value)):
            out.append((kind, f"tags.{i}.{part}" if v7 else f"tags.{part}.{i}", content))
    return out


def _item_name(kind: str, field_name: str) -> str:
    family = _KIND_FAMILY[kind]
    for m in family.metrics:
        if m.field == field_name:
            return m.name
    raise KeyError(f"{family.template} has no field {field_name!r}")


def map_yaml(topo: Topology, version: str = "6.0", name: str = MAP_NAME) -> str:
    """:func:`map_export` as the YAML text ``kyoten export map`` prints."""
    return tpl.to_yaml(map_export(topo, version, name))


__all__ = [
    "CROSS_HOST",
    "DASHBOARD_NAME",
    "MAP_NAME",
    "PlannedHost",
    "Ref",
    "Topology",
    "Widget",
    "host_trigger",
    "item_key",
    "map_export",
    "map_triggers",
    "map_yaml",
    "noc_widgets",
    "plan",
    "replication_pairs",
    "without_triggers",
]
