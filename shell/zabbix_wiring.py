"""``kyoten import --config``: wire a Zabbix server for the targets of kyoten.toml in one go.

What :mod:`kyoten.agent.export.topology` declares, made true through the API, each object
read first and created or corrected only where it differs (so a second run changes nothing,
and ``--check`` lists what would change without changing anything):

* the host group and one host per target (and the cross-site aggregate host), each linked to
  its template with the target macro and any extra macros, tagged with its target's and
  site's names, polled through one agent interface;
* the global macros ``{$KYOTEN.BRIDGE.URL}`` and ``{$KYOTEN.BRIDGE.TOKEN}`` that the bridge
  media type reads; the token is a secret macro, read from a file and never printed (Zabbix
  never returns a secret value, so its value cannot be compared: it is written on every run);
* the action :data:`ACTION` that sends every problem, update and recovery (except the
  alert-path canary's, which has its own action) through the kyoten media type to a user group;
* the topology map (imported from its generated YAML, shared with every user);
* the global dashboard "kyoten NOC" (shared with every user).

The map's links refer to discovered triggers, which exist only once the hosts have been polled:
those not discovered yet are left out of the import and listed, and ``--check`` keeps
reporting them until a later run finds them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from kyoten.agent.export import topology
from kyoten.agent.export.templates import to_yaml
from kyoten.agent.export.topology import Ref, Topology
from kyoten.shell.zabbix_import import ImportFailed

ACTION = "kyoten: problems to the bridge"
URL_MACRO = "{$KYOTEN.BRIDGE.URL}"
TOKEN_MACRO = "{$KYOTEN.BRIDGE.TOKEN}"
DEFAULT_HOST_GROUP = "kyoten"
_MAP_RULES = {"maps": {"createMissing": True, "updateExisting": True}}


@dataclass(frozen=True)
class Wiring:
    """What to wire besides the hosts: each part is skipped when its option is None/False."""

    host_group: str = DEFAULT_HOST_GROUP
    agent: tuple[str, int] = ("127.0.0.1", 10050)
    bridge_url: str | None = None
    bridge_token: str | None = None
    usergroup: str | None = None
    map: bool = True
    dashboard: bool = True


def _new(api: Any) -> bool:
    from kyoten.shell.zabbix_import import server_version

    return bool(server_version(api) >= (6, 2))


# ---------------------------------------------------------------------------------- hosts
def reconcile_hosts(api: Any, topo: Topology, wiring: Wiring, *, apply: bool) -> list[str]:
    """Host group, then every planned host: created, or corrected in group, template link,
    macros and tags (extra ones on the host are left alone), agent interface and status."""
    out: list[str] = []
    new = _new(api)
    found = api.hostgroup.get(filter={"name": wiring.host_group}, output=["groupid"])
    groupid = str(found[0]["groupid"]) if found else None
    if groupid is None:
        if apply:
            groupid = str(api.hostgroup.create(name=wiring.host_group)["groupids"][0])
            out.append(f"created host group {wiring.host_group!r}")
        else:
            out.append(f"host group {wiring.host_group!r} is missing")
    names = sorted({h.template for h in topo.hosts})
    templates = {
        t["host"]: str(t["templateid"])
        for t in api.template.get(filter={"host": names}, output=["host", "templateid"])
    }
    missing = [n for n in names if n not in templates]
    if missing:
        if apply:
            raise ImportFailed(
                f"template(s) {', '.join(missing)} are not in Zabbix: import them first "
                "(kyoten import --templates)",
                1,
            )
        out.append(f"template(s) {', '.join(missing)} are missing")
    ip, port = wiring.agent
    groups_key = "hostgroups" if new else "groups"
    existing = {
        h["host"]: h
        for h in api.host.get(
            filter={"host": [h.name for h in topo.hosts]},
            output=["hostid", "host", "status"],
            selectParentTemplates=["templateid"],
            selectMacros=["hostmacroid", "macro", "value", "type"],
            selectTags=["tag", "value"],
            selectInterfaces=["interfaceid", "type", "main", "useip", "ip", "dns", "port"],
            **{"selectHostGroups" if new else "selectGroups": ["groupid"]},
        )
    }
    for planned in topo.hosts:
        templateid = templates.get(planned.template)
        host = existing.get(planned.name)
        if host is None:
            if apply:
                api.host.create(
                    host=planned.name,
                    groups=[{"groupid": groupid}],
                    templates=[{"templateid": templateid}],
                    interfaces=[
                        {"type": 1, "main": 1, "useip": 1, "ip": ip, "dns": "", "port": str(port)}
                    ],
                    macros=[{"macro": m, "value": v} for m, v in planned.macros],
                    tags=[{"tag": t, "value": v} for t, v in planned.tags],
                )
                out.append(f"created host {planned.name!r} ({planned.template})")
            else:
                out.append(f"host {planned.name!r} is missing")
            continue
        hostid = host["hostid"]
        ref = [{"hostid": hostid}]
        wrong: list[str] = []
        if groupid is not None and groupid not in {str(g["groupid"]) for g in host[groups_key]}:
            wrong.append(f"not in host group {wiring.host_group!r}")
            if apply:
                api.host.massadd(hosts=ref, groups=[{"groupid": groupid}])
        if templateid and templateid not in {str(t["templateid"]) for t in host["parentTemplates"]}:
            wrong.append(f"not linked to {planned.template!r}")
            if apply:
                api.host.massadd(hosts=ref, templates=[{"templateid": templateid}])
        macros = {m["macro"]: m for m in host["macros"]}
        for macro, value in planned.macros:
            have = macros.get(macro)
            if have is None:
                wrong.append(f"macro {macro} is missing")
                if apply:
                    api.usermacro.create(hostid=hostid, macro=macro, value=value)
            elif have.get("value") != value or str(have.get("type", "0")) != "0":
                wrong.append(f"macro {macro} is {have.get('value')!r}, want {value!r}")
                if apply:
                    api.usermacro.update(hostmacroid=have["hostmacroid"], value=value, type=0)
        wrong += _reconcile_tags(api, hostid, host["tags"], planned.tags, apply=apply)
        agents = [i for i in host["interfaces"] if str(i["type"]) == "1" and str(i["main"]) == "1"]
        if not agents:
            wrong.append("has no agent interface")
            if apply:
                api.hostinterface.create(
                    hostid=hostid, type=1, main=1, useip=1, ip=ip, dns="", port=str(port)
                )
        elif (agents[0]["ip"], str(agents[0]["port"]), str(agents[0]["useip"])) != (
            ip,
            str(port),
            "1",
        ):
            wrong.append(
                f"agent interface is {agents[0]['ip']}:{agents[0]['port']}, want {ip}:{port}"
            )
            if apply:
                api.hostinterface.update(
                    interfaceid=agents[0]["interfaceid"], useip=1, ip=ip, port=str(port)
                )
        if str(host["status"]) != "0":
            wrong.append("disabled")
            if apply:
                api.host.update(hostid=hostid, status=0)
        if wrong:
            out.append(f"{'fixed host' if apply else 'host'} {planned.name!r}: {', '.join(wrong)}")
    return out


def _reconcile_tags(
    api: Any,
    hostid: str,
    have: Sequence[Mapping[str, str]],
    want: Sequence[tuple[str, str]],
    *,
    apply: bool,
) -> list[str]:
    """The host's tags named in ``want`` hold exactly the wanted value; other tags are left
    alone (host.update replaces the whole list, so they are sent back as they are)."""
    current = [(str(t["tag"]), str(t["value"])) for t in have]
    owned = {name for name, _ in want}
    wrong: list[str] = []
    for name, value in want:
        values = [v for n, v in current if n == name]
        if values != [value]:
            shown = ", ".join(repr(v) for v in values)
            wrong.append(
                f"tag {name} is {shown}, want {value!r}" if values else f"tag {name} is missing"
            )
    if wrong and apply:
        kept = [(n, v) for n, v in current if n not in owned]
        tags = [{"tag": n, "value": v} for n, v in (*kept, *want)]
        api.host.update(hostid=hostid, tags=tags)
    return wrong


# ---------------------------------------------------------------------------------- macros
def reconcile_global_macros(
    api: Any, url: str | None, token: str | None, *, apply: bool
) -> list[str]:
    """``{$KYOTEN.BRIDGE.URL}`` (text) and ``{$KYOTEN.BRIDGE.TOKEN}`` (secret text).

    A secret macro's value never comes back from the API, so it cannot be compared: with
    ``apply`` it is written every time (not reported unless it was missing or not secret);
    ``--check`` only sees whether it exists and is secret. Neither value is ever printed.
    """
    out: list[str] = []
    wanted: list[tuple[str, str, int]] = []
    if url is not None:
        wanted.append((URL_MACRO, url, 0))
    if token is not None:
        wanted.append((TOKEN_MACRO, token, 1))
    for macro, value, kind in wanted:
        found = api.usermacro.get(
            globalmacro=True, filter={"macro": macro}, output=["globalmacroid", "value", "type"]
        )
        if not found:
            if apply:
                api.usermacro.createglobal(macro=macro, value=value, type=kind)
                out.append(f"created global macro {macro}")
            else:
                out.append(f"global macro {macro} is missing")
            continue
        have = found[0]
        problems: list[str] = []
        if str(have.get("type", "0")) != str(kind):
            problems.append("is not a secret macro" if kind == 1 else "is a secret macro")
        if kind == 0 and have.get("value") != value:
            problems.append(f"is {have.get('value')!r}, want {value!r}")
        if apply and (problems or kind == 1):
            api.usermacro.updateglobal(globalmacroid=have["globalmacroid"], value=value, type=kind)
        if problems:
            verb = "fixed global macro" if apply else "global macro"
            out.append(f"{verb} {macro}: {', '.join(problems)}")
    return out


# ---------------------------------------------------------------------------------- action
def action(mediatypeid: str, usrgrpid: str) -> dict[str, Any]:
    """``action.create`` parameters of :data:`ACTION` (strings, as ``action.get`` returns).

    Every trigger event except the alert-path canary's (which its own action delivers): the
    problem, every update and the recovery, through the kyoten media type to ``usrgrpid``.
    """
    from kyoten.alerting.canary_template import EXCLUDE_CONDITION

    return {
        "name": ACTION,
        "eventsource": "0",
        "status": "0",
        "esc_period": "1h",
        "pause_suppressed": "1",
        "filter": {"evaltype": "0", "conditions": [dict(EXCLUDE_CONDITION)]},
        "operations": [
            {
                "operationtype": "0",
                "esc_step_from": "1",
                "esc_step_to": "1",
                "opmessage": {"default_msg": "1", "mediatypeid": mediatypeid},
                "opmessage_grp": [{"usrgrpid": usrgrpid}],
            }
        ],
        "recovery_operations": [{"operationtype": "11", "opmessage": {"default_msg": "1"}}],
        "update_operations": [{"operationtype": "12", "opmessage": {"default_msg": "1"}}],
    }


def reconcile_action(api: Any, usergroup: str, *, apply: bool) -> list[str]:
    """The action :data:`ACTION` to ``usergroup`` through the kyoten media type."""
    from kyoten.alerting.mediatype import NAME as MEDIA_TYPE
    from kyoten.shell.zabbix_import import canary_usergroup, reconcile_named_action

    group = canary_usergroup(api, usergroup)  # the same "group must exist" error
    media = api.mediatype.get(filter={"name": MEDIA_TYPE}, output=["mediatypeid"])
    if not media:
        if apply:
            raise ImportFailed(
                f"media type {MEDIA_TYPE!r} is not in Zabbix: import it first "
                "(kyoten import --media-type)",
                1,
            )
        return [f"media type {MEDIA_TYPE!r} is missing", f"action {ACTION!r} is missing"]
    wanted = action(str(media[0]["mediatypeid"]), str(group["usrgrpid"]))
    return reconcile_named_action(api, wanted, usergroup, apply=apply)


# ---------------------------------------------------------------------------------- map
def _hosts_of(expression: str) -> set[str]:
    return set(re.findall(r"\(/([^/]+)/", expression))


def discovered_triggers(api: Any, wanted: Sequence[Mapping[str, str]]) -> list[Mapping[str, str]]:
    """Which of the ``wanted`` triggers (as a map file names them) are not in Zabbix as the
    map names them: discovered triggers before the first poll, and discovered triggers whose
    prototype changed (an upgrade of the templates) until the next discovery updates them.

    The importer looks a map's triggers up by name, expression and recovery expression, with
    the expressions' user macros as written; so does this (:func:`_trigger_expression`, since
    ``expandExpression`` would resolve the macros).
    """
    hosts = set().union(*(_hosts_of(t["expression"]) for t in wanted)) if wanted else set()
    rows = api.host.get(filter={"host": sorted(hosts)}, output=["hostid"]) if hosts else []
    existing: set[tuple[str, str, str]] = set()
    if rows:
        for t in api.trigger.get(
            hostids=[r["hostid"] for r in rows],
            output=["description", "expression", "recovery_expression"],
            selectFunctions="extend",  # the stored name is "name", returned as "function"
            selectItems=["itemid", "hostid", "key_"],
            selectHosts=["hostid", "host"],
        ):
            existing.add(
                (
                    str(t["description"]),
                    _trigger_expression(str(t["expression"]), t),
                    _trigger_expression(str(t["recovery_expression"]), t),
                )
            )
    return [
        t
        for t in wanted
        if (t["description"], t["expression"], t.get("recovery_expression", "")) not in existing
    ]


def _trigger_expression(text: str, trigger: Mapping[str, Any]) -> str:
    """A ``trigger.get`` expression (``{functionid}`` tokens) written as an export writes it:
    each function as ``name(/host/key,parameters)``, the ``$`` of its stored parameters
    standing for ``/host/key``, user macros left as they are."""
    hosts = {str(h["hostid"]): str(h["host"]) for h in trigger["hosts"]}
    items = {str(i["itemid"]): i for i in trigger["items"]}
    functions = {str(f["functionid"]): f for f in trigger["functions"]}

    def function(match: re.Match[str]) -> str:
        f = functions.get(match.group(1))
        if f is None:
            return match.group()
        item = items[str(f["itemid"])]
        query = f"/{hosts.get(str(item['hostid']), '?')}/{item['key_']}"
        return f"{f['function']}({str(f['parameter']).replace('$', query, 1)})"

    return re.sub(r"\{(\d+)\}", function, text)


def _canonical_map(m: Mapping[str, Any]) -> dict[str, Any]:
    """A map (rendered or exported) in a form where two equal maps compare equal: elements,
    shapes and links sorted by position, links pointing at element positions, no ids."""

    def empty(v: Any) -> Any:
        return {} if v in ({}, [], {"name": ""}, None, "") else v

    pos = {str(s["selementid"]): (int(s["x"]), int(s["y"])) for s in m["selements"]}
    selements = sorted(
        ({k: v for k, v in s.items() if k != "selementid"} for s in m["selements"]),
        key=lambda s: (int(s["x"]), int(s["y"])),
    )
    for s in selements:
        for icon in ("icon_on", "icon_disabled", "icon_maintenance"):
            s[icon] = empty(s.get(icon))
        s.pop("evaltype", None)
        s.pop("tags", None)
    links = []
    for link in m["links"]:
        ends = sorted([pos[str(link["selementid1"])], pos[str(link["selementid2"])]])
        triggers = sorted(
            (
                lt["drawtype"],
                lt["color"].upper(),
                lt["trigger"]["description"],
                lt["trigger"]["expression"],
                lt["trigger"]["recovery_expression"],
            )
            for lt in link["linktriggers"]
        )
        links.append(
            {
                "ends": ends,
                "drawtype": link["drawtype"],
                "color": link["color"].upper(),
                "label": link["label"],
                "triggers": triggers,
            }
        )
    links.sort(key=lambda x: (x["ends"], x["label"]))
    shapes = sorted(
        ({k: v for k, v in s.items() if k != "sysmap_shapeid"} for s in m["shapes"]),
        key=lambda s: (int(s["x"]), int(s["y"])),
    )
    out = {k: v for k, v in m.items() if k not in ("selements", "links", "shapes")}
    out["background"] = empty(out.get("background"))
    out["iconmap"] = empty(out.get("iconmap"))
    return {**out, "selements": selements, "links": links, "shapes": shapes}


def map_differences(want: Mapping[str, Any], have: Mapping[str, Any]) -> list[str]:
    """What differs between a rendered map and an exported one, as readable paths."""
    a, b = _canonical_map(want), _canonical_map(have)
    out: list[str] = []

    def walk(x: Any, y: Any, path: str) -> None:
        if isinstance(x, dict) and isinstance(y, dict):
            for k in x:
                walk(x[k], y.get(k), f"{path}/{k}")
        elif isinstance(x, list) and isinstance(y, list):
            if len(x) != len(y):
                out.append(f"{path}: {len(y)} entries, want {len(x)}")
            else:
                for i, (xi, yi) in enumerate(zip(x, y, strict=True)):
                    walk(xi, yi, f"{path}[{i}]")
        elif isinstance(x, tuple) and isinstance(y, tuple | list):
            if list(x) != list(y):
                out.append(f"{path}: {y!r} -> {x!r}")
        elif x != y:
            out.append(f"{path}: {y!r} -> {x!r}")

    walk(a, b, "")
    return out


def reconcile_map(api: Any, topo: Topology, fmt: str, *, apply: bool) -> list[str]:
    """Import the topology map when it differs from the rendered one; make it public.

    Link triggers that are not in Zabbix as the map names them yet (:func:`discovered_triggers`:
    before the first poll, or after an upgrade changed their prototype) are left out and
    reported; each later run adds the ones found by then.
    """
    from zabbix_utils import APIRequestError

    doc = topology.map_export(topo, fmt)
    missing = discovered_triggers(api, topology.map_triggers(doc))
    doc = topology.without_triggers(doc, missing)
    want = doc["zabbix_export"]["maps"][0]
    out = [
        f"map {want['name']!r}: trigger not in Zabbix yet (discovered at the next poll): "
        f"{t['description']} on {', '.join(sorted(_hosts_of(t['expression'])))}"
        for t in missing
    ]
    found = api.map.get(filter={"name": want["name"]}, output=["sysmapid", "private"])
    changes: list[str]
    if found:
        exported = json.loads(
            api.configuration.export(format="json", options={"maps": [found[0]["sysmapid"]]})
        )
        changes = map_differences(want, exported["zabbix_export"]["maps"][0])
    else:
        changes = ["missing"]
    if changes:
        if apply:
            try:
                api.configuration.import_(format="yaml", source=to_yaml(doc), rules=_MAP_RULES)
            except APIRequestError as exc:
                raise ImportFailed(f"Zabbix rejected the map {want['name']!r}: {exc}", 1) from None
            out.append(f"imported map {want['name']!r}" + ("" if found else " (new)"))
            found = api.map.get(filter={"name": want["name"]}, output=["sysmapid", "private"])
        else:
            out.append(f"map {want['name']!r}: " + "; ".join(changes[:20]))
    if found and str(found[0]["private"]) != "0":
        if apply:
            api.map.update(sysmapid=found[0]["sysmapid"], private=0)
        out.append(f"{'shared' if apply else 'not shared:'} map {want['name']!r} with every user")
    return out


# ---------------------------------------------------------------------------------- dashboard
def _resolve(api: Any, ref: Ref, cache: dict[Ref, str | None]) -> str | None:
    if ref in cache:
        return cache[ref]
    found: list[Any] = []
    if ref.kind == "item":
        found = api.item.get(
            host=ref.host, filter={"key_": ref.name}, output=["itemid"], webitems=True
        )
        value = str(found[0]["itemid"]) if found else None
    elif ref.kind == "host":
        found = api.host.get(filter={"host": ref.name}, output=["hostid"])
        value = str(found[0]["hostid"]) if found else None
    elif ref.kind == "map":
        found = api.map.get(filter={"name": ref.name}, output=["sysmapid"])
        value = str(found[0]["sysmapid"]) if found else None
    elif ref.kind in ("graph", "graph_prototype"):
        method = api.graph if ref.kind == "graph" else api.graphprototype
        found = method.get(filter={"name": ref.name}, host=ref.host, output=["graphid"])
        value = str(found[0]["graphid"]) if found else None
    else:
        raise ValueError(f"unknown reference kind {ref.kind!r}")
    cache[ref] = value
    return value


def dashboard_pages(api: Any, topo: Topology, fmt: str) -> tuple[list[dict[str, Any]], list[str]]:
    """The NOC dashboard's ``pages`` for ``dashboard.create``, and the widgets left out
    because what they show does not exist yet (an item not discovered, no map)."""
    scale = 3 if fmt >= "7.0" else 1
    cache: dict[Ref, str | None] = {}
    widgets: list[dict[str, Any]] = []
    skipped: list[str] = []
    from kyoten.alerting.canary import MARK_TAG, MARK_VALUE

    for w in topology.noc_widgets(topo, fmt, hide_tags=[(MARK_TAG, MARK_VALUE)]):
        fields: list[dict[str, Any]] = []
        for kind, name, value in w.fields:
            if isinstance(value, Ref):
                resolved = _resolve(api, value, cache)
                if resolved is None:
                    break
                value = resolved
            fields.append({"type": kind, "name": name, "value": value})
        else:
            widgets.append(
                {
                    "type": w.type,
                    "name": w.name,
                    "x": w.x * scale,
                    "y": w.y,
                    "width": w.width * scale,
                    "height": w.height,
                    "view_mode": 0,
                    "fields": fields,
                }
            )
            continue
        skipped.append(w.name)
    return [{"name": "", "widgets": widgets}], skipped


def _widget_shape(w: Mapping[str, Any]) -> tuple[Any, ...]:
    fields = sorted((str(f["type"]), str(f["name"]), str(f["value"])) for f in w["fields"])
    return (
        str(w["type"]),
        str(w["name"]),
        *(str(w.get(k, "0")) for k in ("x", "y", "width", "height", "view_mode")),
        tuple(fields),
    )


def reconcile_dashboard(api: Any, topo: Topology, fmt: str, *, apply: bool) -> list[str]:
    """The global dashboard "kyoten NOC", shared with every user; its id via
    :func:`dashboard_id` afterwards."""
    pages, skipped = dashboard_pages(api, topo, fmt)
    name = topology.DASHBOARD_NAME
    out = [
        f"dashboard {name!r}: widget {w!r} left out (its item does not exist yet)" for w in skipped
    ]
    found = api.dashboard.get(
        filter={"name": name}, output=["dashboardid", "private"], selectPages="extend"
    )
    if not found:
        if apply:
            api.dashboard.create(name=name, private=0, display_period=30, auto_start=1, pages=pages)
            out.append(f"created dashboard {name!r}")
        else:
            out.append(f"dashboard {name!r} is missing")
        return out
    have = found[0]
    current = sorted(_widget_shape(w) for p in have["pages"] for w in p["widgets"])
    wanted = sorted(_widget_shape(w) for p in pages for w in p["widgets"])
    problems: list[str] = []
    if current != wanted:
        names = {s[1] for s in set(current) ^ set(wanted)}
        problems.append(f"widgets differ: {', '.join(sorted(names))}")
    if str(have["private"]) != "0":
        problems.append("not shared with every user")
    if problems:
        if apply:
            api.dashboard.update(dashboardid=have["dashboardid"], private=0, pages=pages)
        out.append(
            f"{'updated dashboard' if apply else 'dashboard'} {name!r}: " + "; ".join(problems)
        )
    return out


def dashboard_id(api: Any) -> str | None:
    found = api.dashboard.get(filter={"name": topology.DASHBOARD_NAME}, output=["dashboardid"])
    return str(found[0]["dashboardid"]) if found else None


def home_page(api: Any, username: str, *, apply: bool) -> list[str]:
    """Make the NOC dashboard the page ``username`` lands on after logging in."""
    dashboardid = dashboard_id(api)
    if dashboardid is None:
        return [f"user {username!r}: no dashboard {topology.DASHBOARD_NAME!r} to land on"]
    url = f"zabbix.php?action=dashboard.view&dashboardid={dashboardid}"
    users = api.user.get(filter={"username": username}, output=["userid", "url"])
    if not users:
        raise ImportFailed(f"user {username!r} does not exist", 2)
    if users[0]["url"] == url:
        return []
    if apply:
        api.user.update(userid=users[0]["userid"], url=url)
    return [f"{'set' if apply else 'user'} {username!r} home page {url}"]


# ---------------------------------------------------------------------------------- all
def wire(api: Any, topo: Topology | None, wiring: Wiring, fmt: str, *, apply: bool) -> list[str]:
    """Every part of :class:`Wiring`, in dependency order; one line per change (made, or
    that would be made). The templates and the media type must be imported first. Without
    a topology (no kyoten.toml) only the global macros and the action are wired."""
    from zabbix_utils import APIRequestError

    out: list[str] = []
    try:
        if topo is not None:
            out += reconcile_hosts(api, topo, wiring, apply=apply)
        if wiring.bridge_url is not None or wiring.bridge_token is not None:
            out += reconcile_global_macros(api, wiring.bridge_url, wiring.bridge_token, apply=apply)
        if wiring.usergroup is not None:
            out += reconcile_action(api, wiring.usergroup, apply=apply)
        if wiring.map and topo is not None:
            out += reconcile_map(api, topo, fmt, apply=apply)
        if wiring.dashboard and topo is not None:
            out += reconcile_dashboard(api, topo, fmt, apply=apply)
    except APIRequestError as exc:
        raise ImportFailed(f"Zabbix rejected a change: {exc}", 1) from None
    return out
