"""The NOC picture from kyoten.toml (hosts, map, NOC dashboard) and the templates' dashboards,
checked without a server: what they refer to exists in the catalogue, links carry the triggers
that concern them, and the 6.0 widget order is the exporter's. The real imports and the
browser are in test_noc_browser.py.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from kyoten.agent.catalogue import FAMILIES, pgpool, postgres
from kyoten.agent.config import Config, parse_config
from kyoten.agent.export import templates as tpl
from kyoten.agent.export import topology as topo_mod
from kyoten.agent.export.topology import AMBER, RED, Ref, host_trigger, map_export, plan

KYOTEN = str(Path(sys.executable).with_name("kyoten"))

TOML: dict[str, Any] = {
    "postgres": {
        "site-a": {"host": "10.1.0.11", "site": "site-a", "expected_standbys": ["site-b"]},
        "site-b": {"host": "10.2.0.11", "site": "site-b", "expected_standbys": ["site-a"]},
    },
    "pgpool": {
        "pool-a": {"host": "10.1.0.21", "site": "site-a", "backends": ["site-a", "site-b"]},
        # the other order on purpose: node ids follow each Pgpool's own backends list
        "pool-b": {"host": "10.2.0.21", "site": "site-b", "backends": ["site-b", "site-a"]},
    },
    "zabbix": {
        "zabbix-a": {"host": "10.1.0.21", "port": 9999, "site": "site-a"},
        "zabbix-b": {"host": "10.2.0.21", "port": 9999, "site": "site-b"},
    },
}


def config(raw: dict[str, Any] | None = None) -> Config:
    return parse_config(raw or TOML, "test")


def the_map(prefix: str = "") -> dict[str, Any]:
    doc = map_export(plan(config(), prefix), "6.0")["zabbix_export"]
    assert isinstance(doc["maps"][0], dict)
    return doc["maps"][0]  # type: ignore[no-any-return]


def element_ids(m: dict[str, Any]) -> dict[str, str]:
    """host → selementid."""
    return {s["elements"][0]["host"]: s["selementid"] for s in m["selements"]}


def links_between(m: dict[str, Any], a: str, b: str) -> list[dict[str, Any]]:
    ids = element_ids(m)
    ends = {ids[a], ids[b]}
    return [x for x in m["links"] if {x["selementid1"], x["selementid2"]} == ends]


def test_one_host_per_target_with_its_template_and_macro() -> None:
    topo = plan(config(), "noc-", {"{$KYOTEN.INTERVAL}": "30s"})
    hosts = {h.name: h for h in topo.hosts}
    assert set(hosts) == {
        "noc-site-a",
        "noc-site-b",
        "noc-pool-a",
        "noc-pool-b",
        "noc-zabbix-a",
        "noc-zabbix-b",
        "noc-cross-site",
    }
    assert hosts["noc-site-b"].template == postgres.FAMILY.template
    assert dict(hosts["noc-pool-a"].macros) == {
        "{$KYOTEN.PGPOOL.TARGET}": "pool-a",
        "{$KYOTEN.INTERVAL}": "30s",
    }
    assert dict(hosts["noc-cross-site"].macros) == {"{$KYOTEN.INTERVAL}": "30s"}
    assert topo.sites == ("site-a", "site-b")
    assert topo.nodes == (("site-a", "site-a"), ("site-b", "site-b"))
    renamed = plan(config(), nodes={"site-b": "zbx-b"})
    assert renamed.nodes == (("site-a", "site-a"), ("site-b", "zbx-b"))


def test_a_name_used_by_two_kinds_is_refused() -> None:
    raw = {**TOML, "zabbix": {"pool-a": {"host": "10.1.0.21", "site": "site-a"}}}
    with pytest.raises(ValueError, match="pool-a"):
        plan(config(raw))


def test_map_groups_each_site_s_elements_inside_its_rectangle() -> None:
    m = the_map()
    hosts = element_ids(m)
    # every PostgreSQL server, Pgpool and Zabbix node of both sites, plus the cross-site host
    assert sorted(hosts) == sorted(
        ["cross-site", "site-a", "site-b", "pool-a", "pool-b", "zabbix-a", "zabbix-b"]
    )
    shapes = {s["text"]: s for s in m["shapes"]}
    assert set(shapes) == {"site site-a", "site site-b"}
    for s in m["selements"]:
        host = s["elements"][0]["host"]
        if host == "cross-site":
            continue
        site = "site-a" if host.endswith("-a") else "site-b"
        box = shapes[f"site {site}"]
        assert int(box["x"]) <= int(s["x"]) < int(box["x"]) + int(box["width"]), host
        assert int(box["y"]) <= int(s["y"]) < int(box["y"]) + int(box["height"]), host


def test_replication_link_turns_red_when_a_receiver_stops() -> None:
    m = the_map()
    (link,) = links_between(m, "site-a", "site-b")
    red = {t["trigger"]["description"] for t in link["linktriggers"] if t["color"] == RED}
    receiver = host_trigger("postgres", "pg.receiver_down", "site-b")
    assert receiver["description"] in red
    # the very trigger the template puts on the host: same expression, host substituted
    assert receiver["expression"].startswith("count(/site-b/kyoten.pg.receiver_state,")
    assert {t["trigger"]["expression"] for t in link["linktriggers"]} >= {
        host_trigger("postgres", "pg.receiver_down", h)["expression"] for h in ("site-a", "site-b")
    }
    amber = [t for t in link["linktriggers"] if t["color"] == AMBER]
    assert amber, "lag over the threshold must show on the link too"


def test_pgpool_links_follow_each_pgpool_s_backend_order() -> None:
    """pool-b lists site-b first: its node 0 is site-b, so its link to site-b carries the
    drift trigger of backend node 0."""
    m = the_map()
    (link,) = links_between(m, "pool-b", "site-b")
    drift = [t for t in link["linktriggers"] if t["color"] == AMBER]
    assert [t["trigger"] for t in drift] == [
        host_trigger("pgpool", "pgpool.drift", "pool-b", {"{#NODE}": "0", "{#NAME}": "site-b"})
    ]
    assert 'drift["0"]' in drift[0]["trigger"]["expression"]
    assert "site-b" in drift[0]["trigger"]["description"]
    (link,) = links_between(m, "pool-a", "site-b")
    assert any('drift["1"]' in t["trigger"]["expression"] for t in link["linktriggers"])


def test_discovered_trigger_is_the_prototype_with_the_lld_values() -> None:
    """Compare with the rendered template itself, so a catalogue change cannot leave the map
    pointing at triggers the hosts will never have."""
    doc = tpl.template_export(pgpool.FAMILY, "6.0")["zabbix_export"]
    (rule,) = doc["templates"][0]["discovery_rules"]
    protos = [t for i in rule["item_prototypes"] for t in i.get("trigger_prototypes", [])]
    protos += rule.get("trigger_prototypes", [])  # those over several items of the rule
    (proto,) = [t for t in protos if "holds live backend" in t["name"]]
    ours = host_trigger("pgpool", "pgpool.drift", "pool-a", {"{#NODE}": "1", "{#NAME}": "site-b"})
    expected = (
        proto["expression"]
        .replace(f"/{pgpool.FAMILY.template}/", "/pool-a/")
        .replace("{#NODE}", "1")
    )
    assert ours["expression"] == expected
    assert ours["description"] == proto["name"].replace("{#NAME}", "site-b")
    with pytest.raises(ValueError, match="prototype"):
        host_trigger("pgpool", "pgpool.drift", "pool-a")


def test_labels_read_items_the_templates_have() -> None:
    """Every {?last(/host/key)} of a label names an item (or item prototype) of that host's
    template, once discovered."""
    import re

    m = the_map("noc-")
    keys: set[str] = set()
    for family in FAMILIES:
        export = tpl.template_export(family, "6.0")["zabbix_export"]["templates"][0]
        keys |= {i["key"] for i in export["items"]}
        for rule in export.get("discovery_rules", []):
            keys |= {i["key"] for i in rule["item_prototypes"]}
    labels = [s["label"] for s in m["selements"]] + [x["label"] for x in m["links"]]
    found = re.findall(r"\{\?last\(/([^/]+)/(.+?)\)\}", "\n".join(labels))
    assert len(found) > 15
    for host, key in found:
        assert host.startswith("noc-")
        generic = re.sub(r'\["[^"]*"\]', lambda _: "", key)
        assert any(re.sub(r'\["[^"]*"\]', "", k) == generic for k in keys), key
    text = "\n".join(labels)
    # the four questions on the map: role, lag, each Pgpool's view of each backend, HA node
    for needle in ("in_recovery", "replay_lag_bytes", "backends.status", "ha.nodes.status"):
        assert needle in text


def test_each_zabbix_node_element_reads_its_own_node_s_state() -> None:
    """Both sites read the one ha_node table: a label with the cluster's active node would say
    the same on both elements. Each reads the status item discovered for its own node, also
    when a node is not named like its site."""
    m = map_export(plan(config(), "noc-", nodes={"site-b": "zbx-b"}), "6.0")
    (m,) = m["zabbix_export"]["maps"]
    labels = {
        s["elements"][0]["host"]: s["label"]
        for s in m["selements"]
        if s["elements"][0]["host"].startswith("noc-zabbix-")
    }
    assert set(labels) == {"noc-zabbix-a", "noc-zabbix-b"}
    for host, node, other in (
        ("noc-zabbix-a", "site-a", "zbx-b"),
        ("noc-zabbix-b", "zbx-b", "site-a"),
    ):
        label = labels[host]
        assert label.startswith(f"Zabbix server {node}\n")
        status = topo_mod.item_key("zabbix", "status", node)
        assert status == f'kyoten.zabbix.ha.nodes.status["{node}"]'
        assert f"{{?last(/{host}/{status})}}" in label
        assert other not in label and "active_node" not in label


def test_map_imports_stock_icons_by_name_and_every_scalar_is_a_string() -> None:
    doc = map_export(plan(config()), "7.0")
    text = tpl.to_yaml(doc)  # raises on any non-string scalar
    parsed = yaml.safe_load(text)["zabbix_export"]
    assert parsed["version"] == "7.0"
    used = {s["icon_off"]["name"] for s in parsed["maps"][0]["selements"]}
    assert used <= {i["name"] for i in parsed["images"]}
    assert parsed["maps"][0]["expand_macros"] == "1"  # else the labels show the macros


@pytest.mark.parametrize("version", ["6.0", "7.0"])
def test_noc_dashboard_answers_the_four_questions(version: str) -> None:
    topo = plan(config(), "noc-")
    widgets = topo_mod.noc_widgets(topo, version)
    names = {w.name for w in widgets}
    assert {"Topology", "Problems", "Primary", "Active Zabbix node"} <= names
    assert {"noc-site-b: replay lag", "noc-site-b: replay delay", "noc-site-b: WAL receiver"} <= {
        n.replace("site-b", "noc-site-b") for n in names
    }
    assert "Backend status mismatches" in names and "Pgpool-II children in use" in names
    # a dead server's own role item keeps its last value: beside each role, whether it
    # answers, read from the aggregate host that still polls while it is gone
    cross = topo.host("cross").name
    for h in topo.of_kind("postgres"):
        (answers,) = [w for w in widgets if w.name == f"{h.target}: up"]
        (ref,) = [v for _, _, v in answers.fields if isinstance(v, Ref)]
        assert (ref.host, ref.name) == (cross, topo_mod.item_key("cross", "up", h.target))
    refs = [v for w in widgets for _, _, v in w.fields if isinstance(v, Ref)]
    hosts = {h.name for h in topo.hosts}
    assert all(r.host in hosts for r in refs if r.kind == "item")
    field_names = {n for w in widgets for _, n, _ in w.fields}
    if version == "6.0":
        assert "itemid" in field_names and "ds.hosts.0.0" in field_names
    else:
        assert "itemid.0" in field_names and "ds.0.hosts.0" in field_names
    # 7.0's native honeycomb: one cell per server, red while its WAL receiver is stopped
    assert ("honeycomb" in {w.type for w in widgets}) == (version == "7.0")
    problems = next(w for w in widgets if w.type == "problems")
    assert (0, "show", "3") in problems.fields  # open problems only
    for w in widgets:
        assert w.x >= 0 and w.x + w.width <= 24 and w.height <= 32, w


def test_template_dashboards_open_with_the_answers_then_the_graphs() -> None:
    for family in FAMILIES:
        for version in tpl.VERSIONS:
            (dashboard,) = tpl.template_export(family, version)["zabbix_export"]["templates"][0][
                "dashboards"
            ]
            widgets = dashboard["pages"][0]["widgets"]
            kinds = {w["type"].lower() for w in widgets}
            assert {"item", "graph_classic" if version == "6.0" else "graph"} <= kinds
            items = [
                f["value"]["key"]
                for w in widgets
                for f in w["fields"]
                if f["type"] == "ITEM" and w["type"].lower() == "item"
            ]
            assert len(items) >= 5, family.template
            # the collector's duration over time, as a simple graph of its item
            assert f"{family.key}.duration" in {
                f["value"]["key"] for w in widgets for f in w["fields"] if f["type"] == "ITEM"
            }


def test_6_0_widgets_are_in_the_exporter_s_natural_order() -> None:
    """6.0's exporter sorts widgets with PHP's strnatcasecmp: upper-cased, spaces skipped,
    numbers by value. Another order makes importcompare report every template as changed."""
    names = ["Backend [{#NAME}]: Delay", "Backends up", "Backends", "Item 10", "item 9"]
    assert sorted(names, key=tpl._natural) == [
        "Backends",
        "Backends up",
        "Backend [{#NAME}]: Delay",
        "item 9",
        "Item 10",
    ]


def test_export_map_prints_the_map_of_a_config_file(tmp_path: Path) -> None:
    path = tmp_path / "kyoten.toml"
    path.write_text(
        "\n".join(
            [
                "[postgres.site-a]",
                'host = "10.1.0.11"',
                'site = "site-a"',
                'expected_standbys = ["site-b"]',
                "[postgres.site-b]",
                'host = "10.2.0.11"',
                'site = "site-b"',
                "[pgpool.pool-a]",
                'host = "10.1.0.21"',
                'site = "site-a"',
                'backends = ["site-a", "site-b"]',
            ]
        )
        + "\n"
    )
    out = subprocess.run(
        [KYOTEN, "export", "map", "--config", str(path), "--format", "7.0", "--host-prefix", "x-"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    doc = yaml.safe_load(out.stdout)["zabbix_export"]
    assert doc["version"] == "7.0"
    assert {s["elements"][0]["host"] for s in doc["maps"][0]["selements"]} == {
        "x-site-a",
        "x-site-b",
        "x-pool-a",
        "x-cross-site",
    }
    bad = subprocess.run(
        [KYOTEN, "export", "map", "--config", str(tmp_path / "missing.toml")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 2 and "not found" in bad.stderr


def test_import_wiring_options_are_checked_before_any_connection(tmp_path: Path) -> None:
    token = tmp_path / "bridge.token"
    token.write_text("")
    base = [KYOTEN, "import", "--url", "http://127.0.0.1:1", "--token", "t"]
    out = subprocess.run(
        [*base, "--bridge-token-file", str(token)], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 2 and "--bridge-token-file is empty" in out.stderr
    out = subprocess.run(
        [*base, "--host-macro", "{$X}=1"], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 2 and "--host-macro goes with --config" in out.stderr
    out = subprocess.run(
        [KYOTEN, "import", "--url", "http://127.0.0.1:1", "--token-file", str(token)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2 and "--token-file is empty" in out.stderr
