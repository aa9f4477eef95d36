"""End to end on a real Zabbix 6.0: hosts on the imported templates, polled through the real
agent 2 running kyoten's UserParameters against the real cluster; discovery, values, problems.

Intervals are shortened through the templates' own macros on the hosts ({$KYOTEN.INTERVAL},
{$PG.RECEIVER.WINDOW}), exactly as an operator would tune them.
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from kyoten.agent.catalogue import pgpool, postgres
from kyoten.agent.export.userparameters import render_userparameters
from kyoten.shell.lab.agent2 import ZABBIX_USER, Agent2
from kyoten.shell.lab.config import ZabbixDb as LabZabbixDb
from kyoten.shell.lab.config import lab_config
from kyoten.shell.lab.procs import make_dir, write_file
from kyoten.shell.lab.zabbix import Zabbix60

from .conftest import wait_until

pytestmark = pytest.mark.integration

RECEIVER_DOWN = "PostgreSQL site-b: WAL receiver is not streaming"
FAST = [
    {"macro": "{$KYOTEN.INTERVAL}", "value": "5s"},
    {"macro": "{$PG.RECEIVER.WINDOW}", "value": "20s"},
]


def create_host(api: Any, name: str, template: str, port: int, macros: list[dict[str, str]]) -> str:
    (tpl,) = api.template.get(filter={"host": template}, output=["templateid"])
    result = api.host.create(
        host=name,
        groups=[{"groupid": "2"}],  # "Linux servers" of the stock data.sql
        interfaces=[
            {"type": 1, "main": 1, "useip": 1, "ip": "127.0.0.1", "dns": "", "port": str(port)}
        ],
        templates=[{"templateid": tpl["templateid"]}],
        macros=macros,
    )
    return str(result["hostids"][0])


def item(api: Any, hostid: str, key: str) -> dict[str, Any] | None:
    rows = api.item.get(
        hostids=[hostid], filter={"key_": key}, output=["lastvalue", "lastclock", "state", "error"]
    )
    return rows[0] if rows else None


def value_of(api: Any, hostid: str, key: str) -> Callable[[], str | None]:
    def check() -> str | None:
        row = item(api, hostid, key)
        return row["lastvalue"] if row and row["lastclock"] != "0" else None

    return check


def problems(api: Any, hostid: str) -> set[str]:
    return {p["name"] for p in api.problem.get(hostids=[hostid], output=["name"])}


def test_discovery_values_and_receiver_down(
    imported60: Any, zabbix60: Zabbix60, cluster: Any, agent2: Agent2
) -> None:
    api = imported60
    pg = postgres.FAMILY.template
    site_a = create_host(api, "site-a", pg, agent2.port, [*FAST, _target("PG", "site-a")])
    site_b = create_host(api, "site-b", pg, agent2.port, [*FAST, _target("PG", "site-b")])
    pool_a = create_host(
        api, "pool-a", pgpool.FAMILY.template, agent2.port, [*FAST, _target("PGPOOL", "pool-a")]
    )
    zabbix60.reload_config()

    # values arrive through agent 2 -> kyoten get -> master item -> dependent items
    assert wait_until(value_of(api, site_b, "kyoten.pg.in_recovery"), "standby role", 90) == "1"
    assert wait_until(value_of(api, site_a, "kyoten.pg.in_recovery"), "primary role", 30) == "0"

    # dependent LLD: the primary discovers the standby, the Pgpool both backends
    connected = 'kyoten.pg.standbys.connected["site-b"]'
    wait_until(lambda: item(api, site_a, connected), "standby discovered on site-a", 60)
    for node in ("0", "1"):
        wait_until(
            lambda n=node: item(api, pool_a, f'kyoten.pgpool.backends.status["{n}"]'),
            f"backend {node} discovered on pool-a",
            60,
        )
    zabbix60.reload_config()
    assert wait_until(value_of(api, site_a, connected), "standby connected value", 60) == "1"
    status = wait_until(
        value_of(api, pool_a, 'kyoten.pgpool.backends.status["1"]'), "backend status", 60
    )
    assert status in ("1", "2")  # up (waiting) or up
    assert RECEIVER_DOWN not in problems(api, site_b)

    # stop the standby's WAL receiver: the receiver-down problem must appear, then resolve
    saved = cluster.standby.primary_conninfo()
    cluster.standby.set_primary_conninfo("")
    try:
        start = time.monotonic()
        wait_until(lambda: RECEIVER_DOWN in problems(api, site_b), "receiver-down problem", 120)
        raised = time.monotonic() - start
    finally:
        cluster.standby.set_primary_conninfo(saved)
    start = time.monotonic()
    wait_until(lambda: RECEIVER_DOWN not in problems(api, site_b), "receiver-down resolved", 120)
    resolved = time.monotonic() - start
    print(f"receiver-down problem after {raised:.0f} s, resolved {resolved:.0f} s after repair")
    wait_until(
        lambda: (
            cluster.primary.value(
                "SELECT state FROM pg_stat_replication WHERE application_name = 'site-b'"
            )
            == "streaming"
        ),
        "site-b streaming again",
        60,
    )


def _target(kind: str, name: str) -> dict[str, str]:
    return {"macro": f"{{$KYOTEN.{kind}.TARGET}}", "value": name}


def own_agent(c: Any, lab_root: Path, zabbix: LabZabbixDb | None = None) -> Agent2:
    """A started agent 2 whose kyoten.toml names cluster ``c`` (and a Zabbix DB target)."""
    workdir = Path(tempfile.mkdtemp(prefix="agent-", dir=lab_root))
    workdir.chmod(0o755)
    conf_dir = make_dir(workdir / "kyoten", ZABBIX_USER, 0o755)
    config = write_file(
        conf_dir / "kyoten.toml",
        lab_config(c.primary, [c.standby], [c.pool_a, c.pool_b], zabbix=zabbix),
        ZABBIX_USER,
        0o640,
    )
    kyoten = str(Path(sys.executable).with_name("kyoten"))
    agent = Agent2(workdir / "agent2", render_userparameters(kyoten, str(config)).splitlines())
    agent.start()
    return agent


def test_zabbix_ha_template_sees_the_lab_server(
    imported60: Any, zabbix60: Zabbix60, cluster: Any, lab_root: Path
) -> None:
    """The HA template, fed from the 6.0 server's own ha_node: one active node, discovered."""
    db = zabbix60.db
    target = LabZabbixDb(db.node.host, db.node.port, db.name, db.user, db.password)
    agent = own_agent(cluster, lab_root, zabbix=target)
    try:
        api = imported60
        macros = [*FAST, {"macro": "{$KYOTEN.ZBX.TARGET}", "value": "zabbix"}]
        host = create_host(api, "zabbix-ha", "kyoten Zabbix HA cluster", agent.port, macros)
        zabbix60.reload_config()
        active = value_of(api, host, "kyoten.zabbix.ha.nodes_active")
        assert wait_until(active, "active node count", 90) == "1"
        key = 'kyoten.zabbix.ha.nodes.status["site-a"]'  # per node, by its HANodeName
        wait_until(lambda: item(api, host, key), "HA node site-a discovered", 60)
        zabbix60.reload_config()
        assert wait_until(value_of(api, host, key), "site-a node status", 60) == "3"  # active
        assert not problems(api, host)
    finally:
        agent.stop()


def test_backend_held_down_then_promotion_raises_two_primaries(
    imported60: Any, zabbix60: Zabbix60, cluster_factory: Callable[[], Any], lab_root: Path
) -> None:
    """On a throw-away cluster: a Pgpool holding a backend down pages per backend; promoting
    the standby makes the cross-site host see two primaries (split brain)."""
    c = cluster_factory()
    agent = own_agent(c, lab_root)
    try:
        api = imported60
        host = create_host(api, "cross-site", "kyoten Cross-site invariants", agent.port, FAST)
        pool = create_host(
            api,
            "pool-a-x",
            pgpool.FAMILY.template,
            agent.port,
            [*FAST, _target("PGPOOL", "pool-a")],
        )
        zabbix60.reload_config()
        primaries = value_of(api, host, "kyoten.cross.primaries")
        assert wait_until(primaries, "one primary before the promotion", 90) == "1"
        status = 'kyoten.pgpool.backends.status["1"]'
        wait_until(lambda: item(api, pool, status), "backend 1 discovered", 60)
        zabbix60.reload_config()
        wait_until(value_of(api, pool, status), "backend 1 status", 60)

        c.pool_a.hold_down([1])  # restarted with the standby marked down in pgpool_status
        start = time.monotonic()
        down = wait_until(
            lambda: [p for p in problems(api, pool) if p.startswith("Pgpool-II pool-a: backend ")],
            "backend-down problem",
            60,
        )
        assert down == ["Pgpool-II pool-a: backend site-b is detached"]  # named as in kyoten.toml
        print(f"backend-down problem {time.monotonic() - start:.0f} s after the hold-down")

        c.standby.promote()
        start = time.monotonic()
        wait_until(
            lambda: any("(split brain)" in p for p in problems(api, host)),
            "two-primaries problem",
            90,
        )
        print(f"two-primaries problem {time.monotonic() - start:.0f} s after the promotion")
        assert primaries() == "2"
    finally:
        agent.stop()
