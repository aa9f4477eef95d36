"""The NOC view in the real frontends: ``kyoten import --config`` wires Zabbix 6.0 and 7.0 for
a kyoten.toml (hosts, the bridge's macros, the action, the topology map, the NOC dashboard),
re-running it is a no-op and ``--check`` sees drift; then headless Chromium logs in, opens the
dashboard and the map, finds both sites and no error banner, and sees the replication link
turn red when the standby's WAL receiver stops.

Screenshots go to build/artefacts/noc/ (look at them: they are what the NOC sees). The
servers are the session's (zabbix60, zabbix70); only an agent of its own is started here,
because its kyoten.toml needs the Zabbix database target the shared one lacks.
"""

from __future__ import annotations

import contextlib
import io
import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kyoten.agent.config import load_config
from kyoten.agent.export import topology
from kyoten.agent.export.userparameters import render_userparameters
from kyoten.shell.lab.agent2 import Agent2
from kyoten.shell.lab.browser import CHROMEDRIVER, CHROMIUM
from kyoten.shell.lab.browser import Browser as LabBrowser
from kyoten.shell.lab.config import ZabbixDb as ZabbixTarget
from kyoten.shell.lab.procs import write_file
from kyoten.shell.lab.zabbix import ADMIN_PASSWORD, ADMIN_USER, Zabbix60
from kyoten.shell.lab.zabbix70 import Zabbix70
from kyoten.shell.zabbix_wiring import ACTION, TOKEN_MACRO, URL_MACRO, discovered_triggers

from .conftest import kyoten_import, wait_until

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
ARTEFACTS = REPO / "build" / "artefacts" / "noc"
PREFIX = "noc-"
HOST_GROUP = "kyoten NOC test"
USERGROUP = "kyoten NOC test (no users)"  # an action to nobody: no test's sink sees it
BRIDGE_TOKEN = "noc-test-bridge-token-" + "x" * 16
FAST = (
    "{$KYOTEN.INTERVAL}=5s",
    "{$PG.RECEIVER.WINDOW}=20s",
    "{$PG.STANDBY.MISSING.WINDOW}=20s",
)
RECEIVER_DOWN = "WAL receiver is not streaming"


# ---------------------------------------------------------------------------------- lab
@pytest.fixture(scope="module")
def noc_config(cluster: Any, lab_root: Path, zabbix60: Zabbix60) -> Path:
    """The shared cluster's kyoten.toml plus the Zabbix database of the 6.0 server."""
    db = zabbix60.db
    target = ZabbixTarget(db.node.host, db.node.port, db.name, db.user, db.password)
    path: Path = cluster.write_config(lab_root / "noc-kyoten", target)
    return path


@pytest.fixture(scope="module")
def noc_agent(noc_config: Path, lab_root: Path) -> Iterator[Agent2]:
    agent = Agent2(
        lab_root / "noc-agent2",
        render_userparameters(
            str(Path(sys.executable).with_name("kyoten")), str(noc_config)
        ).splitlines(),
        timeout=10,
    )
    agent.start()
    yield agent
    agent.stop()


@pytest.fixture(scope="module")
def secret_files(lab_root: Path) -> Path:
    return write_file(lab_root / "noc-bridge.token", BRIDGE_TOKEN + "\n", "root", 0o600)


def wiring_args(config: Path, agent: Agent2, token_file: Path) -> list[str]:
    args = ["--config", str(config), "--host-prefix", PREFIX, "--host-group", HOST_GROUP]
    args += ["--agent", f"127.0.0.1:{agent.port}"]
    for macro in FAST:
        args += ["--host-macro", macro]
    args += ["--bridge-url", "http://127.0.0.1:9/v1/events"]
    args += ["--bridge-token-file", str(token_file), "--usergroup", USERGROUP]
    return args


class Wired:
    """One server wired by ``kyoten import``, with what each run printed."""

    def __init__(self, version: str, server: Zabbix60 | Zabbix70, args: list[str]) -> None:
        self.version, self.server, self.args = version, server, args
        self.outputs: list[str] = []

    @property
    def web(self) -> str:
        return f"http://127.0.0.1:{self.server.web_port}"

    def api(self) -> Any:
        return self.server.api()

    def run(self, capsys: Any, pw: Path, *extra: str) -> tuple[int, str]:
        """``kyoten import`` with the wiring options; the templates are not compared here
        (``--media-type`` alone: importcompare skips media types), test_zabbix*_import does."""
        rc = kyoten_import(self.server.url, pw, *self.args, "--media-type", *extra)
        out = capsys.readouterr()
        text = out.out + out.err
        self.outputs.append(text)
        return rc, text

    def dashboard_id(self) -> str:
        (d,) = self.api().dashboard.get(
            filter={"name": topology.DASHBOARD_NAME}, output=["dashboardid"]
        )
        return str(d["dashboardid"])

    def map_id(self) -> str:
        (m,) = self.api().map.get(filter={"name": topology.MAP_NAME}, output=["sysmapid"])
        return str(m["sysmapid"])


@pytest.fixture(scope="module")
def wired(
    zabbix60: Zabbix60,
    zabbix70: Zabbix70,
    noc_config: Path,
    noc_agent: Agent2,
    secret_files: Path,
    admin_password_file: Path,
) -> dict[str, Wired]:
    """Both servers wired: the first run (hosts not polled yet), then, once discovery has
    made the triggers the map's links show, a second run that adds them."""
    args = wiring_args(noc_config, noc_agent, secret_files)
    out = {"6.0": Wired("6.0", zabbix60, args), "7.0": Wired("7.0", zabbix70, args)}
    topo = topology.plan(load_config(str(noc_config)), PREFIX)

    def run(w: Wired) -> None:
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(printed):
            rc = kyoten_import(w.server.url, admin_password_file, *args)
        w.outputs.append(printed.getvalue())
        assert rc == 0, printed.getvalue()

    for w in out.values():
        api = w.api()
        if not api.usergroup.get(filter={"name": USERGROUP}, output=["usrgrpid"]):
            api.usergroup.create(name=USERGROUP)
        run(w)
        assert "created host 'noc-site-a'" in w.outputs[-1]
    zabbix60.reload_config()
    for w in out.values():
        wanted = topology.map_triggers(topology.map_export(topo, w.version))
        api = w.api()
        wait_until(
            lambda api=api, wanted=wanted: not discovered_triggers(api, wanted),
            f"the map's triggers discovered in Zabbix {w.version}",
            180,
        )
        run(w)
    return out


# ---------------------------------------------------------------------------------- browser
class Browser(LabBrowser):
    """Headless Chromium (kyoten.shell.lab.browser) logged in to one frontend as the admin,
    with what these tests read off the map."""

    def __init__(self, base: str, name: str) -> None:
        super().__init__(base, name, ADMIN_USER, ADMIN_PASSWORD)

    def links(self) -> list[tuple[str, int, int, int, int]]:
        """Every link of the map on the page: (stroke colour, x1, y1, x2, y2)."""
        found = self.driver.execute_script(
            "return Array.from(document.querySelectorAll('g.map-links line')).map(l => ["
            "l.parentNode.getAttribute('stroke'), +l.getAttribute('x1'), +l.getAttribute('y1'),"
            "+l.getAttribute('x2'), +l.getAttribute('y2')]);"
        )
        return [(str(c).upper().lstrip("#"), x1, y1, x2, y2) for c, x1, y1, x2, y2 in found]

    def replication_link(self) -> str:
        """Colour of the streaming replication link: the one between the two PostgreSQL
        servers, the lowest row of the map, drawn across the sites."""
        links = self.links()
        bottom = max(max(y1, y2) for _, _, y1, _, y2 in links)
        (colour,) = [c for c, x1, y1, x2, y2 in links if y1 == y2 == bottom and x1 != x2]
        return colour

    def artefact(self, name: str) -> Path:
        path = self.shot(ARTEFACTS, f"{self.name}-{name}")
        print(f"screenshot: {path}")
        return path


@pytest.fixture(scope="module")
def browsers(wired: dict[str, Wired]) -> Iterator[dict[str, Browser]]:
    if not (CHROMEDRIVER.exists() and CHROMIUM.exists()):  # CI installs them: never skip
        pytest.fail("chromium and chromium-driver are missing: bash packaging/bootstrap.sh install")
    made: dict[str, Browser] = {}
    try:
        for version, w in wired.items():
            made[version] = Browser(w.web, f"zabbix{version.replace('.', '')}")
        yield made
    finally:
        for b in made.values():
            b.quit()


SITE_TEXTS = (
    "site site-a",
    "site site-b",
    "PostgreSQL site-a",
    "PostgreSQL site-b",
    "Pgpool-II pool-a",
    "Pgpool-II pool-b",
    "Zabbix server site-a",
    "Zabbix server site-b",
)


def missing_texts(texts: list[str]) -> list[str]:
    joined = "\n".join(texts)
    return [t for t in SITE_TEXTS if t not in joined]


def wait_for_map(b: Browser, *needles: str, timeout: float = 60) -> list[str]:
    """The map's texts, once every site element and each of ``needles`` is drawn."""

    def drawn(_: Any) -> list[str] | bool:
        texts = b.map_texts()
        joined = "\n".join(texts)
        return texts if not missing_texts(texts) and all(n in joined for n in needles) else False

    result: list[str] = b.wait(drawn, f"map with both sites and {needles}", timeout)
    return result


# ---------------------------------------------------------------------------------- tests
@pytest.mark.parametrize("version", ["6.0", "7.0"])
def test_import_wires_zabbix_and_a_second_run_is_a_no_op(
    wired: dict[str, Wired], version: str, admin_password_file: Path, capsys: Any
) -> None:
    w = wired[version]
    rc, text = w.run(capsys, admin_password_file)
    assert rc == 0, text
    assert "wiring: everything in place" in text
    rc, text = w.run(capsys, admin_password_file, "--check")
    assert rc == 0, text
    api = w.api()
    hosts = api.host.get(
        filter={"host": [f"{PREFIX}{n}" for n in ("site-a", "site-b", "pool-a", "cross-site")]},
        output=["host"],
        selectMacros=["macro", "value"],
    )
    assert len(hosts) == 4
    site_b = next(h for h in hosts if h["host"] == f"{PREFIX}site-b")
    assert {"macro": "{$KYOTEN.PG.TARGET}", "value": "site-b"} in [
        {"macro": m["macro"], "value": m["value"]} for m in site_b["macros"]
    ]
    (token,) = api.usermacro.get(globalmacro=True, filter={"macro": TOKEN_MACRO}, output="extend")
    assert str(token["type"]) == "1"  # secret text: Zabbix never shows it again
    assert api.usermacro.get(globalmacro=True, filter={"macro": URL_MACRO}, output=["value"])
    assert api.action.get(filter={"name": ACTION}, output=["actionid"])
    (m,) = api.map.get(filter={"name": topology.MAP_NAME}, output=["private"], selectLinks="extend")
    assert str(m["private"]) == "0"
    assert sum(len(link["linktriggers"]) for link in m["links"]) >= 10
    # no run printed a secret
    for out in w.outputs:
        assert BRIDGE_TOKEN not in out  # (the lab's admin password is the word "zabbix")


@pytest.mark.parametrize("version", ["6.0", "7.0"])
def test_item_tags_of_wired_hosts_hold_names_not_macros(
    wired: dict[str, Wired], noc_config: Path, version: str
) -> None:
    """Latest data shows an item's tags as item.get returns them: neither frontend resolves a
    user macro there (the server does only when it copies item tags onto an event), while LLD
    macros are replaced when an item is discovered. So every tag value of every item of the
    wired hosts, plain and discovered, must already be the name an operator reads."""
    api = wired[version].api()
    topo = topology.plan(load_config(str(noc_config)), PREFIX)
    hosts = api.host.get(
        filter={"host": [h.name for h in topo.hosts]}, output=["host"], selectTags=["tag", "value"]
    )
    assert len(hosts) == len(topo.hosts)
    items = api.item.get(
        hostids=[h["hostid"] for h in hosts],
        output=["key_", "flags"],
        selectHosts=["host"],
        selectTags=["tag", "value"],
    )
    discovered = [i for i in items if str(i["flags"]) == "4"]
    assert len(items) > 100 and len(discovered) > 10
    unresolved = sorted(
        f"{i['hosts'][0]['host']} {i['key_']}: {t['tag']}={t['value']}"
        for i in items
        for t in i["tags"]
        if "{$" in t["value"] or "{#" in t["value"]
    )
    assert not unresolved, unresolved[:5]
    tags = {(i["hosts"][0]["host"], i["key_"]): i["tags"] for i in items}
    standby = tags[(f"{PREFIX}site-a", 'kyoten.pg.standbys.connected["site-b"]')]
    assert {"tag": "standby", "value": "site-b"} in standby
    # the target and its site are the host's own tags, literal, set by the wiring
    site_b = next(h for h in hosts if h["host"] == f"{PREFIX}site-b")
    assert {("target", "site-b"), ("site", "site-b")} <= {
        (t["tag"], t["value"]) for t in site_b["tags"]
    }


def test_check_reports_drift_and_the_next_run_repairs_it(
    wired: dict[str, Wired], admin_password_file: Path, capsys: Any
) -> None:
    w = wired["6.0"]
    api = w.api()
    (host,) = api.host.get(
        filter={"host": f"{PREFIX}site-b"}, output=["hostid"], selectMacros="extend"
    )
    (macro,) = [m for m in host["macros"] if m["macro"] == "{$KYOTEN.PG.TARGET}"]
    api.usermacro.update(hostmacroid=macro["hostmacroid"], value="wrong")
    # the host's tags replaced by someone: theirs stay, the target's and site's come back
    api.host.update(
        hostid=host["hostid"],
        tags=[{"tag": "site", "value": "wrong"}, {"tag": "rack", "value": "7"}],
    )
    api.map.update(sysmapid=w.map_id(), width=300)
    rc, text = w.run(capsys, admin_password_file, "--check")
    assert rc == 6, text
    assert "{$KYOTEN.PG.TARGET} is 'wrong', want 'site-b'" in text
    assert "tag site is 'wrong', want 'site-b'" in text and "tag target is missing" in text
    assert f"map '{topology.MAP_NAME}'" in text and "width" in text
    rc, text = w.run(capsys, admin_password_file)
    assert rc == 0 and "fixed host 'noc-site-b'" in text and "imported map" in text, text
    rc, text = w.run(capsys, admin_password_file, "--check")
    assert rc == 0, text
    (host,) = api.host.get(hostids=[host["hostid"]], output=["hostid"], selectTags=["tag", "value"])
    assert sorted((t["tag"], t["value"]) for t in host["tags"]) == [
        ("rack", "7"),
        ("site", "site-b"),
        ("target", "site-b"),
    ]


@pytest.mark.parametrize("version", ["6.0", "7.0"])
def test_noc_dashboard_and_map_show_both_sites_without_errors(
    wired: dict[str, Wired], browsers: dict[str, Browser], version: str
) -> None:
    w, b = wired[version], browsers[version]
    b.open(f"zabbix.php?action=dashboard.view&dashboardid={w.dashboard_id()}")
    # the labels read the items' values (value map applied): "Primary (0)", "Standby (1)"
    texts = wait_for_map(b, "Primary (0)", "Standby (1)")
    time.sleep(2)  # let the other widgets finish drawing before the picture
    b.artefact("dashboard")
    assert not b.errors(), b.errors()
    heads = b.driver.execute_script(
        "return Array.from(document.querySelectorAll("
        "'.dashboard-grid-widget-head h4, .dashboard-grid-widget-header h4'))"
        ".map(h => h.textContent);"
    )
    assert {"Topology", "Problems", "Primary", "Active Zabbix node"} <= set(heads), heads
    assert any("site-b: replay lag" in h for h in heads)
    assert "Streaming (1)" in "\n".join(texts)

    b.open(f"zabbix.php?action=map.view&sysmapid={w.map_id()}")
    # each Zabbix node reads its own state: the lab's one HA node (site-a) is active, and
    # site-b's element has no node of that name to read
    texts = wait_for_map(b, "Streaming (1)", "HA state: Active (3)")
    assert "\n".join(texts).count("Active (3)") == 1, texts
    b.artefact("map-calm")
    assert not b.errors(), b.errors()
    assert b.replication_link() == topology.GREEN


def test_a_stopped_receiver_turns_the_replication_link_red(
    wired: dict[str, Wired], browsers: dict[str, Browser], cluster: Any
) -> None:
    apis = {v: w.api() for v, w in wired.items()}

    def receiver_problem(api: Any, present: bool) -> bool:
        hosts = api.host.get(filter={"host": f"{PREFIX}site-b"}, output=["hostid"])
        names = [p["name"] for p in api.problem.get(hostids=[hosts[0]["hostid"]], output=["name"])]
        return any(RECEIVER_DOWN in n for n in names) == present

    saved = cluster.standby.primary_conninfo()
    cluster.standby.set_primary_conninfo("")
    try:
        for version, api in apis.items():
            wait_until(lambda api=api: receiver_problem(api, True), f"{version}: receiver", 150)
            # the event names the target and its site: the trigger's target tag (a user
            # macro, resolved by the server) and the host's tags, which the wiring set
            (host,) = api.host.get(filter={"host": f"{PREFIX}site-b"}, output=["hostid"])
            problems = api.problem.get(
                hostids=[host["hostid"]], output=["name"], selectTags=["tag", "value"]
            )
            (tags,) = [p["tags"] for p in problems if RECEIVER_DOWN in p["name"]]
            assert {("target", "site-b"), ("site", "site-b"), ("scope", "availability")} <= {
                (t["tag"], t["value"]) for t in tags
            }, tags
        for version, b in browsers.items():
            b.open(f"zabbix.php?action=map.view&sysmapid={wired[version].map_id()}")
            texts = wait_for_map(b, "Stopped (0)")
            b.artefact("map-receiver-stopped")
            assert b.replication_link() == topology.RED
            assert re.search(r"WAL receiver: Stopped \(0\)", "\n".join(texts))
            assert not b.errors(), b.errors()
        b = browsers["6.0"]
        b.open(f"zabbix.php?action=dashboard.view&dashboardid={wired['6.0'].dashboard_id()}")
        wait_for_map(b, "Stopped (0)")
        time.sleep(2)
        b.artefact("dashboard-receiver-stopped")
    finally:
        cluster.standby.set_primary_conninfo(saved)
    # leave the shared cluster (and the servers' problems) as calm as they were
    for version, api in apis.items():
        wait_until(lambda api=api: receiver_problem(api, False), f"{version}: resolved", 150)
