"""The rendered templates obey the importer's rules and carry the whole catalogue.

No server here: these are the checks that fail in milliseconds. The real imports are in
test_zabbix60.py and test_zabbix70.py.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kyoten.agent.catalogue import FAMILIES, pgpool, zabbix
from kyoten.agent.catalogue.model import Family
from kyoten.agent.export import templates as tpl
from kyoten.shell.export import rendered_templates

REPO = Path(__file__).resolve().parents[2]
RENDERED = rendered_templates()
DOCS = {name: yaml.safe_load(text) for name, text in RENDERED.items()}


def walk(node: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    """Every (path, leaf) of a parsed document."""
    if isinstance(node, dict):
        for k, v in node.items():
            yield from walk(v, f"{path}/{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from walk(v, f"{path}[{i}]")
    else:
        yield path, node


def dicts(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for v in node.values():
            yield from dicts(v)
    elif isinstance(node, list):
        for v in node:
            yield from dicts(v)


def template_doc(family: Family, version: str) -> dict[str, Any]:
    doc: dict[str, Any] = DOCS[f"{version}/{tpl.file_name(family)}"]["zabbix_export"]
    return doc


def test_committed_files_are_what_the_catalogue_renders() -> None:
    """Fails when someone edits the catalogue (or the renderer) without `kyoten export`."""
    on_disk = {
        str(p.relative_to(REPO / "templates")): p.read_text()
        for p in (REPO / "templates").rglob("*.yaml")
    }
    assert sorted(on_disk) == sorted(RENDERED), "run: kyoten export templates"
    stale = [name for name, text in RENDERED.items() if on_disk[name] != text]
    assert stale == [], f"stale generated files {stale}: run `kyoten export templates`"


def test_rendering_is_deterministic() -> None:
    assert rendered_templates() == RENDERED


@pytest.mark.parametrize("name", sorted(RENDERED))
def test_every_scalar_is_a_string(name: str) -> None:
    """The importer checks is_string on each leaf: an unquoted 0, 6.0 or YES fails."""
    bad = [(p, v) for p, v in walk(DOCS[name]) if not isinstance(v, str)]
    assert bad == []


def test_non_string_values_are_refused_by_the_serialiser() -> None:
    with pytest.raises(TypeError, match="must be a string"):
        tpl.to_yaml({"zabbix_export": {"version": 6.0}})


@pytest.mark.parametrize("version", tpl.VERSIONS)
def test_uuids_are_v4_and_unique(version: str) -> None:
    uuids = [
        d["uuid"]
        for name, doc in DOCS.items()
        if name.startswith(f"{version}/")
        for d in dicts(doc)
        if "uuid" in d and d.get("name") != tpl.GROUP  # the one shared group is one object
    ]
    assert len(uuids) > 100
    assert len(uuids) == len(set(uuids)), "a UUID must be unique in the whole database"
    for u in uuids:
        assert re.fullmatch(r"[0-9a-f]{12}4[0-9a-f]{3}[89ab][0-9a-f]{15}", u), u


def test_uuids_are_stable_across_releases() -> None:
    """A re-import must update, not duplicate: the derivation may never change silently."""
    assert (
        tpl.stable_uuid("kyoten PostgreSQL replication", "template")
        == (template_doc(FAMILIES[0], "6.0")["templates"][0]["uuid"])
    )
    assert tpl.stable_uuid("a", "b") == "747b9d729f5c4efaa5853fac4835eaa5"


@pytest.mark.parametrize("family", FAMILIES, ids=lambda f: f.key)
@pytest.mark.parametrize("version", tpl.VERSIONS)
def test_catalogue_is_complete_in_the_template(family: Family, version: str) -> None:
    doc = template_doc(family, version)
    (t,) = doc["templates"]
    keys = {i["key"] for i in t["items"]}
    expected = {family.master_key()} | {tpl.item_key(family, m) for m in family.metrics if m.item}
    assert keys == expected
    rules = {r["key"]: r for r in t.get("discovery_rules", [])}
    assert set(rules) == {d.key for d in family.discoveries}
    for d in family.discoveries:
        rule = rules[d.key]
        assert rule["type"] == "DEPENDENT"
        assert rule["master_item"] == {"key": family.master_key()}
        assert [p["lld_macro"] for p in rule["lld_macro_paths"]] == sorted(m for m, _ in d.macros)
        assert {p["key"] for p in rule["item_prototypes"]} == {
            tpl.item_key(family, m, d) for m in d.metrics if m.item
        }
    names = {tr["name"] for tr in dicts(doc) if "expression" in tr and "uuid" in tr}
    declared = {tr.name for m in family.metrics for tr in m.triggers}
    declared |= {tr.name for d in family.discoveries for m in d.metrics for tr in m.triggers}
    assert names == declared


@pytest.mark.parametrize("family", FAMILIES, ids=lambda f: f.key)
def test_master_item_reports_collector_errors(family: Family) -> None:
    """CHECK_JSON_ERROR first: {"error": ...} makes the master 'not supported' with the reason."""
    (t,) = template_doc(family, "6.0")["templates"]
    master = next(i for i in t["items"] if i["key"] == family.master_key())
    assert master["value_type"] == "TEXT" and master["history"] == "0"
    assert master["preprocessing"][0] == {"type": "CHECK_JSON_ERROR", "parameters": ["$.error"]}
    assert master["delay"] == family.interval.name
    for item in t["items"]:
        if item is not master:
            assert item["type"] == "DEPENDENT"
            assert item["master_item"] == {"key": family.master_key()}
            assert item["preprocessing"][0]["type"] == "JSONPATH"


@pytest.mark.parametrize("family", FAMILIES, ids=lambda f: f.key)
def test_trigger_expressions_and_dependencies_resolve(family: Family) -> None:
    doc = template_doc(family, "6.0")
    (t,) = doc["templates"]
    triggers = [d for d in dicts(doc) if "expression" in d and "uuid" in d]
    known = {(tr["name"], tr["expression"]) for tr in triggers}
    item_refs = {i["key"] for i in dicts(doc) if "key" in i and "uuid" in i}
    for tr in triggers:
        text = tr["expression"] + tr.get("recovery_expression", "")
        assert "ITEM(" not in text
        for key in re.findall(rf"/{re.escape(t['template'])}/([^,)]+(?:\[[^\]]*\])?)", text):
            assert key in item_refs, (tr["name"], key)
        for dep in tr.get("dependencies", []):
            assert (dep["name"], dep["expression"]) in known, (tr["name"], dep)


@pytest.mark.parametrize("version", tpl.VERSIONS)
def test_each_dependency_is_also_a_tag_the_bridge_groups_by(version: str) -> None:
    """Zabbix suppresses a dependent problem only when its master fired first; for the other
    order the bridge needs the master's problem name on the event, as a tag it knows."""
    from kyoten.alerting.grouping import DEPENDS_TAG

    assert tpl.DEPENDS_TAG == DEPENDS_TAG
    triggers = [
        tr
        for name, doc in DOCS.items()
        if name.startswith(version)
        for tr in dicts(doc)
        if "expression" in tr and "uuid" in tr
    ]
    dependent = [tr for tr in triggers if tr.get("dependencies")]
    assert len(dependent) >= 5
    for tr in triggers:
        tagged = [t["value"] for t in tr["tags"] if t["tag"] == DEPENDS_TAG]
        assert sorted(tagged) == sorted(d["name"] for d in tr.get("dependencies", [])), tr["name"]
        assert all("{?" not in v and "{ITEM." not in v for v in tagged)  # resolvable in tags


def test_the_issue_s_root_cause_dependencies_exist() -> None:
    """Lag pages once: it depends on the receiver being down; backend down on Pgpool nodata."""
    by_name = {
        tr["name"]: tr
        for doc in DOCS.values()
        if doc["zabbix_export"]["version"] == "6.0"
        for tr in dicts(doc)
        if "expression" in tr and "uuid" in tr
    }
    pg, pool = "PostgreSQL {$KYOTEN.PG.TARGET}", "Pgpool-II {$KYOTEN.PGPOOL.TARGET}"
    lag = by_name[f"{pg}: replay lag over {{$PG.REPL_LAG.BYTES.MAX.WARN}} B"]
    assert [d["name"] for d in lag["dependencies"]] == [f"{pg}: WAL receiver is not streaming"]
    down = by_name[f"{pool}: backend {{#NAME}} is detached"]
    assert [d["name"] for d in down["dependencies"]] == [
        f"{pool}: no data from the collector for {{$KYOTEN.NODATA.TIMEOUT}}"
    ]


def test_item_tags_are_literal_and_events_still_name_the_target() -> None:
    """Latest data shows item tags unresolved, so none takes its value from a user macro; the
    target's name is a trigger tag instead, which the server resolves on every event."""
    for name, doc in DOCS.items():
        for template in doc["zabbix_export"].get("templates", []):
            items = list(template.get("items", []))
            for rule in template.get("discovery_rules", []):
                items += rule["item_prototypes"]
            for item in items:
                for tag in item.get("tags", []):
                    assert "{$" not in tag["value"], (name, item["key"], tag)
    for family in FAMILIES:
        if not family.params:
            continue
        want = {"tag": "target", "value": family.params[0].macro.name}
        doc = tpl.template_export(family, "6.0")["zabbix_export"]
        triggers = [tr for tr in dicts(doc) if "expression" in tr and "uuid" in tr]
        assert triggers, family.template
        for tr in triggers:
            assert want in tr["tags"], (family.template, tr["name"])


def test_format_specific_keys() -> None:
    """A 7.0 key in a 6.0 file (or the reverse) is an 'unexpected tag' import error."""
    for name, doc in DOCS.items():
        export = doc["zabbix_export"]
        assert "date" not in export
        if "templates" not in export:
            continue
        if name.startswith("6.0/"):
            assert export["version"] == "6.0" and "groups" in export
            assert "template_groups" not in export and "vendor" not in export["templates"][0]
        else:
            assert export["version"] == "7.0" and "template_groups" in export
            assert "groups" not in export and export["templates"][0]["vendor"]["name"] == "kyoten"


@pytest.mark.parametrize("version", tpl.VERSIONS)
def test_lost_entities_stay_enabled_and_read_their_missing_values(version: str) -> None:
    """A vanished backend or HA node resolves its triggers through the status its item then
    reads (CUSTOM_VALUE), which only an enabled item can read: 7.0 disables a lost entity at
    once unless the rule says otherwise; 6.0 has no such field (it never disables one)."""
    for family in FAMILIES:
        for rule in template_doc(family, version)["templates"][0].get("discovery_rules", []):
            if version == "6.0":
                assert "enabled_lifetime_type" not in rule
            else:
                assert rule["enabled_lifetime_type"] == "DISABLE_NEVER", rule["key"]
    for family, removed in ((pgpool.FAMILY, pgpool.REMOVED), (zabbix.FAMILY, zabbix.REMOVED)):
        template = template_doc(family, version)["templates"][0]
        (rule,) = template["discovery_rules"]
        key = f"{rule['key']}.status["
        (status,) = [i for i in rule["item_prototypes"] if i["key"].startswith(key)]
        first = status["preprocessing"][0]
        assert (first["error_handler"], first["error_handler_params"]) == ("CUSTOM_VALUE", removed)
        (vm,) = [v for v in template["valuemaps"] if v["name"] == status["valuemap"]["name"]]
        assert {"value": removed, "newvalue": "Removed"} in vm["mappings"]


def test_graph_prototypes_for_lag_per_standby_and_per_backend() -> None:
    pg, pool = (template_doc(f, "6.0")["templates"][0] for f in FAMILIES[:2])
    standby = next(r for r in pg["discovery_rules"] if r["key"] == "kyoten.pg.standbys")
    backend = next(r for r in pool["discovery_rules"] if r["key"] == "kyoten.pgpool.backends")
    assert any("{#APP}" in g["name"] for g in standby["graph_prototypes"])
    assert any("{#NAME}" in g["name"] for g in backend["graph_prototypes"])
    widgets = pg["dashboards"][0]["pages"][0]["widgets"]
    assert {w["type"] for w in widgets} >= {"GRAPH_PROTOTYPE", "ITEM", "GRAPH_CLASSIC"}


def test_media_type_is_the_bridge_s_declaration() -> None:
    from kyoten.alerting.mediatype import media_type_export

    for version in tpl.VERSIONS:
        assert DOCS[f"{version}/{tpl.MEDIA_TYPE_FILE}"] == media_type_export(version)


@pytest.mark.parametrize("version", tpl.VERSIONS)
def test_canary_template_is_the_bridge_s_contract(version: str) -> None:
    """The trapper item the bridge sends to, one problem per token, tagged as the bridge reads
    it (:func:`kyoten.alerting.canary.canary_token`)."""
    from kyoten.alerting import canary
    from kyoten.alerting import canary_template as ct

    doc = DOCS[f"{version}/{ct.FILE}"]
    assert doc == ct.template_export(version)
    (t,) = doc["zabbix_export"]["templates"]
    assert t["template"] == t["name"] == canary.TEMPLATE
    assert [g["name"] for g in t["groups"]] == [tpl.GROUP]
    (item,) = t["items"]
    assert (item["type"], item["key"]) == ("TRAP", canary.KEY)
    assert item.get("value_type", "UNSIGNED") == "UNSIGNED"  # the exporter omits its default
    assert item["history"] != "0"  # {ITEM.VALUE} in the tag is read from the history
    assert item["allowed_hosts"] == ct.ALLOWED_HOSTS_MACRO
    (trigger,) = item["triggers"]
    assert trigger["name"] == ct.TRIGGER
    assert trigger["expression"] == f"last(/{canary.TEMPLATE}/{canary.KEY})>0"
    assert trigger["recovery_mode"] == "RECOVERY_EXPRESSION"
    assert trigger["recovery_expression"] == f"last(/{canary.TEMPLATE}/{canary.KEY})=0"
    assert trigger["type"] == "MULTIPLE"  # a new event for every token
    assert (trigger["priority"], trigger["manual_close"]) == ("INFO", "YES")
    assert trigger["tags"] == [
        {"tag": canary.MARK_TAG, "value": canary.MARK_VALUE},
        {"tag": canary.TOKEN_TAG, "value": "{ITEM.VALUE}"},
    ]
    assert "bridge" in trigger["description"] and "never shown to people" in trigger["description"]
    assert "consumes" in trigger["description"]


def test_canary_template_tags_are_what_the_bridge_recognises() -> None:
    """An event with the trigger's tags, {ITEM.VALUE} resolved, is a canary event to the bridge."""
    from kyoten.alerting import canary_template as ct
    from kyoten.alerting.canary import canary_token
    from kyoten.alerting.events import Event, Kind, Severity, Tag

    (t,) = ct.template_export("6.0")["zabbix_export"]["templates"]
    (trigger,) = t["items"][0]["triggers"]
    tags = tuple(Tag(x["tag"], x["value"].replace("{ITEM.VALUE}", "4711")) for x in trigger["tags"])
    event = Event("1", Kind.PROBLEM, Severity.INFORMATION, ct.TRIGGER, ct.HOST, tags=tags)
    assert canary_token(event) == "4711"


def test_canary_template_declares_every_macro_it_uses() -> None:
    """Every user macro of the canary template is in its macros, with a description and a
    default that works: a macro that resolves to empty in 'Allowed hosts' rejects everyone."""
    from kyoten.alerting import canary_template as ct

    for version in tpl.VERSIONS:
        text = RENDERED[f"{version}/{ct.FILE}"]
        (t,) = DOCS[f"{version}/{ct.FILE}"]["zabbix_export"]["templates"]
        declared = {m["macro"]: m for m in t["macros"]}
        assert set(re.findall(r"\{\$[A-Z0-9_.]+\}", text)) == set(declared)
        for macro in declared.values():
            assert len(macro["description"]) > 40, macro["macro"]
        assert declared[ct.ALLOWED_HOSTS_MACRO]["value"] == "0.0.0.0/0,::/0"
