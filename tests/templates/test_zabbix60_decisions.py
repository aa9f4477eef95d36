"""Every row of the decision table, injected into a real two-site lab and watched in Zabbix 6.0.

One throw-away cluster (two PostgreSQL, two Pgpool-II) for the module, one agent 2 running
kyoten's *plugin* over it (as the demo does), one host per template on the session's Zabbix
6.0 server. For each row of :data:`kyoten.agent.catalogue.decisions.STATES` the lab fault of
:mod:`kyoten.shell.lab.faults` (the demo's) is injected; the test then checks, in Zabbix:

* the leading problem opens, on a host of its template, with the catalogue's severity;
* nothing else is open beyond the row's declared symptoms (any severity), so no High or
  Disaster the table does not list;
* after the repair (the same code as ``kyoten demo up``) the hosts return to calm: nothing of
  Warning or above is open; change events (Information) resolve {$KYOTEN.CHANGE.HOLD} later.

The rows share the lab: each one starts from the calm the previous one's repair left, which is
itself checked. Zabbix HA is the template's view of an ``ha_node`` the test writes (the real
failover of two servers is ``kyoten demo fault zabbix-failover``). Intervals are shortened
through the templates' macros (FAST below); ``KYOTEN_DECISIONS_DEFAULTS=1`` runs with the
shipped 1-minute polls and windows instead, and ``KYOTEN_DECISIONS_TIMES=FILE`` appends the
measured detection and recovery times to FILE (README, *Detection and recovery times*).

Two tests before the rows check that nothing stays open when a discovered row vanishes: a
backend removed from a Pgpool's configuration, a node removed from ha_node.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from kyoten.agent.catalogue import FAMILIES, cross, pgpool, postgres, zabbix
from kyoten.agent.catalogue.decisions import STATES, Placed, triggers_by_uid
from kyoten.agent.catalogue.model import Family, Severity, State
from kyoten.agent.plugin.config import render_plugin_conf
from kyoten.alerting.tower_policy import DEFAULT_COLOURS, DISASTER, TowerPolicy, decide
from kyoten.alerting.tower_policy import Problem as TowerProblem
from kyoten.hardware.model import Light, TowerState
from kyoten.shell.lab.agent2 import ZABBIX_USER, Agent2, console_script
from kyoten.shell.lab.cluster import Cluster, build_cluster
from kyoten.shell.lab.config import ZabbixDb, lab_config
from kyoten.shell.lab.faults import Faults, name_pattern
from kyoten.shell.lab.postgres import PgNode
from kyoten.shell.lab.procs import make_dir, write_file
from kyoten.shell.lab.zabbix import Zabbix60

from .conftest import wait_until
from .test_zabbix60_e2e import create_host, item, value_of

pytestmark = pytest.mark.integration

DEFAULTS = os.environ.get("KYOTEN_DECISIONS_DEFAULTS") == "1"
POLL = 60 if DEFAULTS else 3
#: change events resolve this long after the last change; the cross-site host's must outlast
#: the two failovers of test_two_failovers_are_two_events
HOLD = "2m" if DEFAULTS else "20s"
CROSS_HOLD = "2m" if DEFAULTS else "45s"
#: the lab's Pgpools keep one child for refusals (reserved_connections = 1)
LAB = {"{$PGPOOL.CHILDREN.RESERVED}": "1", "{$KYOTEN.CHANGE.HOLD}": HOLD}
#: WAL the replay-paused fault writes is a few MB: the lag threshold is lowered to see it
LAG = {"{$PG.REPL_LAG.BYTES.MAX.WARN}": "1048576"}
FAST = {
    "{$KYOTEN.INTERVAL}": f"{POLL}s",
    "{$PG.RECEIVER.WINDOW}": "10s",
    "{$PG.STANDBY.MISSING.WINDOW}": "10s",
    "{$PG.REPL_LAG.WINDOW}": "10s",
    "{$PGPOOL.DRIFT.WINDOW}": "10s",
    "{$KYOTEN.CROSS.WINDOW}": "6s",
}
MACROS = {**LAB, **LAG, **({} if DEFAULTS else FAST)}
SEVERITY = {s: str(i) for i, s in enumerate(Severity, start=1)}  # INFO 1 … DISASTER 5
WARNING = 2
#: seconds for a row's lead to open, and for the calm after its repair
TIMEOUT = 600 if DEFAULTS else 120
HA_DB = "kyoten_ha_fake"


@dataclass(frozen=True, order=True)
class Problem:
    host: str
    name: str
    severity: int
    eventid: str


@dataclass
class Lab:
    """The module's lab: cluster, faults, agent, and the Zabbix hosts of each template."""

    api: Any
    zabbix: Zabbix60
    cluster: Cluster
    faults: Faults
    ha: PgNode
    hosts: dict[str, str] = field(default_factory=dict)  # host name -> hostid
    templates: dict[str, list[str]] = field(default_factory=dict)  # template -> host names

    def diagnose(self, placed: Placed) -> list[Any]:
        """The items and triggers of the lead's hosts that are not plainly fine."""
        hostids = [self.hosts[h] for h in self.templates[placed.family.template]]
        items = self.api.item.get(
            hostids=hostids, output=["key_", "lastvalue", "state", "error"], webitems=False
        )
        triggers = self.api.trigger.get(
            hostids=hostids, output=["description", "value", "state", "error"]
        )
        return [i for i in items if i["state"] != "0"] + [
            t for t in triggers if t["state"] != "0" or "down" in t["description"]
        ]

    def problems(self, min_severity: int = 0) -> list[Problem]:
        """Open problems on the lab's hosts."""
        out = []
        for host, hostid in self.hosts.items():
            found = self.api.problem.get(hostids=[hostid], output=["eventid", "name", "severity"])
            for p in found:
                if int(p["severity"]) >= min_severity:
                    out.append(Problem(host, p["name"], int(p["severity"]), p["eventid"]))
        return out


def matches(lab: Lab, placed: Placed, problem: Problem) -> bool:
    name = placed.trigger.event_name or placed.trigger.name  # what Zabbix names the problem
    return problem.host in lab.templates[placed.family.template] and bool(
        name_pattern(name).match(problem.name)
    )


def ha_rows(active: str, stopped: str = "", unavailable: str = "", removed: str = "") -> str:
    """The fake ha_node: both nodes (but ``removed``, as after ha_remove_node) with a fresh
    lastaccess, as live nodes have."""

    def status(node: str) -> int:
        return 3 if node == active else 1 if node == stopped else 2 if node == unavailable else 0

    rows = [
        f"('ha-{site[-1]}', '{site}', '127.0.0.1', {port}, {status(site)})"
        for site, port in (("site-a", 10051), ("site-b", 10052))
        if site != removed
    ]
    return (
        f"CREATE OR REPLACE VIEW ha_node AS SELECT * FROM (VALUES {', '.join(rows)}) "
        "AS n(ha_nodeid, name, address, port, status) "
        "CROSS JOIN (SELECT extract(epoch FROM now())::int AS lastaccess) t"
    )


@pytest.fixture(scope="module")
def lab(imported60: Any, zabbix60: Zabbix60, cluster: Cluster, lab_root: Path) -> Iterator[Lab]:
    root = Path(tempfile.mkdtemp(prefix="decisions-", dir=lab_root))
    root.chmod(0o755)
    c = build_cluster(root)
    ha = cluster.primary  # the fake ha_node lives outside the cluster that gets the faults
    if ha.value("SELECT 1 FROM pg_database WHERE datname = %s", (HA_DB,)) is None:
        ha.sql(f"CREATE DATABASE {HA_DB}")
    ha.sql(ha_rows("site-a"), dbname=HA_DB)
    pcppass = write_file(
        root / "pcppass", c.pool_a.pcppass_line() + c.pool_b.pcppass_line(), "root", 0o600
    )
    faults = Faults([c.primary, c.standby], [c.pool_a, c.pool_b], pcppass)
    conf_dir = make_dir(root / "kyoten", ZABBIX_USER, 0o755)
    text = lab_config(
        c.primary,
        [c.standby],
        [c.pool_a, c.pool_b],
        ZabbixDb(ha.host, ha.port, HA_DB, "postgres", "unused"),
    )
    # as in the demo: a standby promoted by a fault must miss its old primary too
    text = text.replace("[postgres.site-b]", '[postgres.site-b]\nexpected_standbys = ["site-a"]')
    config = write_file(conf_dir / "kyoten.toml", text, ZABBIX_USER, 0o640)
    plugin = render_plugin_conf(str(console_script("kyoten-agent2-plugin")), str(config))
    agent = Agent2(root / "agent2", plugin.splitlines(), timeout=10)
    agent.start()
    lab = Lab(imported60, zabbix60, c, faults, ha)
    try:
        setup_hosts(lab, agent.port)
        yield lab
    finally:
        faults.release()
        agent.stop()
        for host in lab.hosts.values():
            imported60.host.delete(host)
        c.stop()


def setup_hosts(lab: Lab, port: int) -> None:
    plan: list[tuple[str, Family, dict[str, str]]] = [
        ("dt-site-a", postgres.FAMILY, {"{$KYOTEN.PG.TARGET}": "site-a"}),
        ("dt-site-b", postgres.FAMILY, {"{$KYOTEN.PG.TARGET}": "site-b"}),
        ("dt-pool-a", pgpool.FAMILY, {"{$KYOTEN.PGPOOL.TARGET}": "pool-a"}),
        ("dt-pool-b", pgpool.FAMILY, {"{$KYOTEN.PGPOOL.TARGET}": "pool-b"}),
        ("dt-cross", cross.FAMILY, {"{$KYOTEN.CHANGE.HOLD}": CROSS_HOLD}),
        ("dt-zabbix-ha", zabbix.FAMILY, {"{$KYOTEN.ZBX.TARGET}": "zabbix"}),
    ]
    for name, fam, own in plan:
        macros = [{"macro": k, "value": v} for k, v in {**MACROS, **own}.items()]
        lab.hosts[name] = create_host(lab.api, name, fam.template, port, macros)
        lab.templates.setdefault(fam.template, []).append(name)
    for fam in FAMILIES:
        lab.templates.setdefault(fam.template, [])
    lab.zabbix.reload_config()
    api, hosts = lab.api, lab.hosts
    primaries = value_of(api, hosts["dt-cross"], "kyoten.cross.primaries")
    assert wait_until(primaries, "the cross-site host's first value", 180) == "1"
    discovered = [
        ("dt-site-a", 'kyoten.pg.standbys.connected["site-b"]'),
        ("dt-site-b", 'kyoten.pg.standbys.expected["site-a"]'),
        ("dt-pool-a", 'kyoten.pgpool.backends.status["1"]'),
        ("dt-pool-b", 'kyoten.pgpool.backends.status["0"]'),
        ("dt-cross", 'kyoten.cross.servers.up["site-a"]'),
        ("dt-zabbix-ha", 'kyoten.zabbix.ha.nodes.status["site-b"]'),
    ]
    for host, key in discovered:
        wait_until(lambda h=host, k=key: item(api, hosts[h], k), f"{key} on {host}", 120)
    lab.zabbix.reload_config()
    for host, key in discovered:
        wait_until(value_of(api, hosts[host], key), f"a value of {key} on {host}", 120)


def wait_calm(lab: Lab, timeout: float = TIMEOUT) -> float:
    """Until nothing of Warning or above is open on the lab's hosts; seconds it took."""
    start = time.monotonic()
    wait_until(
        lambda: not lab.problems(WARNING) or None,
        "calm (nothing >= Warning open)",
        timeout,
        1,
        show=lambda: lab.problems(WARNING),
    )
    return time.monotonic() - start


def record(row: str, detected: float, recovered: float) -> None:
    print(f"{row}: lead after {detected:.0f} s, calm {recovered:.0f} s after the repair")
    out = os.environ.get("KYOTEN_DECISIONS_TIMES")
    if out:
        with open(out, "a") as fh:
            poll = f"{POLL}s"
            fh.write(json.dumps({"row": row, "poll": poll, "lead": detected, "calm": recovered}))
            fh.write("\n")


def inject_ha_failover(lab: Lab) -> Callable[[], None]:
    lab.ha.sql(ha_rows("site-b", stopped="site-a"), dbname=HA_DB)
    return lambda: lab.ha.sql(ha_rows("site-b"), dbname=HA_DB)  # site-a back, as standby


def check_row(lab: Lab, state: State, index: dict[str, Placed], before: set[str]) -> None:
    """The lead is open with its severity; nothing opened that the row does not declare
    (``before``: events open before the fault, e.g. the previous repair's change events)."""
    lead = index[state.lead]
    allowed = [index[u] for u in (state.lead, *state.symptoms)]
    new = [p for p in lab.problems() if p.eventid not in before]
    print(f"{state.key}: opened {[(p.host, p.name, p.severity) for p in sorted(new)]}")
    leads = [p for p in new if matches(lab, lead, p)]
    assert leads, (state.key, new)
    assert {p.severity for p in leads} == {int(SEVERITY[lead.trigger.severity])}, leads
    strangers = [p for p in new if not any(matches(lab, a, p) for a in allowed)]
    assert strangers == [], f"{state.key}: problems the decision table does not list"
    # the tower, as the bridge's policy lights it for every open problem: the lead's colour is
    # lit, the worst open severity's colour blinks (the lead's, but for a transient symptom the
    # table declares worse), the buzzer sounds for a Disaster only
    open_now = lab.problems()
    tower, top = tower_for(open_now), max(p.severity for p in open_now)
    lit = getattr(tower, DEFAULT_COLOURS[int(SEVERITY[lead.trigger.severity])].value)
    assert lit in (Light.ON, Light.BLINK), (state.key, tower.describe())
    assert getattr(tower, DEFAULT_COLOURS[top].value) is Light.BLINK, (state.key, tower.describe())
    assert tower.buzzer == (1 if top == DISASTER else 0), (state.key, tower.describe())
    print(f"{state.key}: tower {tower.describe()}")


def tower_for(problems: list[Problem]) -> TowerState:
    """The lamps the bridge's tower policy (kyoten.alerting.tower_policy) shows for these
    problems, none acknowledged, all fresh."""
    now = time.time()
    open_ = [TowerProblem(p.eventid, p.severity, False, now) for p in problems]
    return decide(open_, now, TowerPolicy())


def problems_of(lab: Lab, placed: Placed, host: str) -> list[Problem]:
    return [p for p in lab.problems() if p.host == host and matches(lab, placed, p)]


def wait_resolved(lab: Lab, opened: list[Problem], what: str) -> None:
    """Until each of these events has its recovery event: resolved, not merely gone (a
    deleted trigger's problem also leaves problem.get, but sends no OK to the bridge)."""

    def resolved() -> bool:
        found = lab.api.event.get(eventids=[p.eventid for p in opened], output=["r_eventid"])
        return len(found) == len(opened) and all(e["r_eventid"] != "0" for e in found)

    wait_until(resolved, what, TIMEOUT, 1, show=lambda: (opened, lab.problems()))


# The two vanished-row tests run first, on the lab's first roles (node 1 is the standby):
# removing the last backend of a Pgpool keeps the other one's node id.
def test_a_backend_removed_from_pgpool_resolves_its_problems(lab: Lab) -> None:
    """Pgpool holds the standby down (drift, High, and detached); the standby is then removed
    from pgpool.conf and Pgpool restarted: its row leaves SHOW POOL_NODES, its status reads
    Removed, and both problems resolve instead of staying open on items that get no value."""
    index = triggers_by_uid()
    wait_calm(lab)
    pool, host = lab.cluster.pool_b, "dt-pool-b"
    _, standby = lab.faults.roles()
    node = lab.faults.node_id(pool, standby)
    assert node == len(pool.backends) - 1, "the standby must be the Pgpool's last node"
    fault = lab.faults.plan("pgpool-drift")  # holds the standby down on the last Pgpool
    assert lab.faults.pools[-1] is pool
    backends = list(pool.backends)
    fault.inject()
    placed = [index["pgpool.drift"], index["pgpool.backend_down"]]

    def both_open() -> list[Problem]:
        found = [problems_of(lab, p, host) for p in placed]
        return [x for f in found for x in f] if all(found) else []

    try:
        opened = wait_until(
            both_open,
            "drift and detached on the held-down backend",
            TIMEOUT,
            1,
            show=lab.problems,
        )
        pool.stop()
        pool.backends = backends[:node]
        pool.start()
        wait_resolved(lab, opened, "the removed backend's problems to resolve")
    finally:
        pool.backends = backends
        fault.repair()  # restarts the Pgpool with every backend, none held down
    wait_calm(lab)


def test_an_ha_node_removed_from_ha_node_resolves_its_problems(lab: Lab) -> None:
    """A standby node is unavailable, then removed (ha_remove_node): its 'unavailable'
    problem resolves. The removal itself is a change event ('is now Removed', Information)
    that resolves {$KYOTEN.CHANGE.HOLD} later, as every change does."""
    index = triggers_by_uid()
    wait_calm(lab)
    host = "dt-zabbix-ha"
    lab.ha.sql(ha_rows("site-a", unavailable="site-b"), dbname=HA_DB)
    try:
        opened = wait_until(
            lambda: problems_of(lab, index["zbx.node_unavailable"], host),
            "the unavailable node's problem",
            TIMEOUT,
            1,
            show=lab.problems,
        )
        lab.ha.sql(ha_rows("site-a", removed="site-b"), dbname=HA_DB)
        wait_resolved(lab, opened, "the removed node's problem to resolve")
        removed = [p for p in lab.problems() if p.host == host and "is now Removed" in p.name]
        assert removed and {p.severity for p in removed} == {int(SEVERITY[Severity.INFO])}
    finally:
        seen = {p.eventid for p in lab.problems()}
        lab.ha.sql(ha_rows("site-a"), dbname=HA_DB)
    # the node's return is a change event too: let it open here, not in the next test's row
    wait_until(
        lambda: [
            p
            for p in lab.problems()
            if p.eventid not in seen and p.host == host and "[site-b] is now Standby" in p.name
        ],
        "the returned node's change event",
        TIMEOUT,
        1,
    )
    wait_calm(lab)


@pytest.mark.parametrize("state", STATES, ids=lambda s: s.key)
def test_decision_table_row(lab: Lab, state: State) -> None:
    index = triggers_by_uid()
    lead = index[state.lead]
    wait_calm(lab)
    before = {p.eventid for p in lab.problems()}
    if state.fault == "zabbix-failover":
        repair = inject_ha_failover(lab)
    else:
        assert state.fault is not None
        fault = lab.faults.plan(state.fault)
        fault.inject()
        repair = fault.repair
    start = time.monotonic()
    try:
        wait_until(
            lambda: [p for p in lab.problems() if matches(lab, lead, p)],
            f"{state.key}: the lead {lead.trigger.name!r}",
            TIMEOUT,
            1,
            show=lambda: (lab.problems(), lab.diagnose(lead)),
        )
        detected = time.monotonic() - start
        time.sleep(POLL + 2)  # what else the state raises has had another poll to show
        check_row(lab, state, index, before)
    finally:
        repair()
    recovered = wait_calm(lab)
    assert not [p for p in lab.problems() if matches(lab, lead, p)]
    calm = tower_for(lab.problems())  # change events (Information) may still be open: blue
    assert (calm.red, calm.amber) == (Light.OFF, Light.OFF) and calm.buzzer == 0, calm.describe()
    record(state.key, detected, recovered)


def test_two_failovers_are_two_events(lab: Lab) -> None:
    """Each failover opens its own 'primary changed' event, even while the first is open."""
    index = triggers_by_uid()
    changed = index["cross.primary_changed"].trigger
    (trigger,) = lab.api.trigger.get(
        hostids=[lab.hosts["dt-cross"]], filter={"description": changed.name}, output=["triggerid"]
    )
    wait_calm(lab)
    since = int(time.time())

    def events() -> list[dict[str, Any]]:
        return list(
            lab.api.event.get(
                objectids=[trigger["triggerid"]],
                value=1,
                time_from=since,
                output=["eventid", "name", "opdata", "r_eventid"],
                sortfield="eventid",
            )
        )

    primary, standby = lab.faults.roles()
    for n, promoted in ((1, standby), (2, primary)):
        fault = lab.faults.plan("primary-down")
        fault.inject()
        wait_until(lambda n=n: len(events()) >= n, f"failover {n}'s event", TIMEOUT, 1)
        fault.repair()
        # the repair rebuilds the old primary as a standby: the promoted one stays primary
        assert lab.faults.roles()[0] is promoted
    first, second = events()
    print(f"two failovers: {first} then {second}")
    # the first one was still open when the second came: a new event, not a silent no-op
    assert first["r_eventid"] == "0" or int(first["r_eventid"]) > int(second["eventid"])
    # each names its own new primary (operational data shows the latest one in both)
    assert [e["name"] for e in (first, second)] == [
        f"Cross-site: PostgreSQL primary changed to {standby.name}",
        f"Cross-site: PostgreSQL primary changed to {primary.name}",
    ]
    wait_calm(lab)
