"""Each Pgpool-II release's exact output, replayed: SQL (SHOW …) and PCP (pcp_* tools).

The fixtures come from the Pgpool-II sources of each release branch (``fixtures/pgpool/
ORIGIN.md`` says which file and line); the real 4.3 binaries are exercised by
``test_collector_real.py``. What each release cannot give must come out as unknown (None),
never as 0.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import pytest
from kyoten.agent.collector import Collector
from kyoten.agent.config import PcpSettings, parse_config
from kyoten.agent.errors import TargetError
from kyoten.agent.shape import children_in_use, shape_pgpool
from kyoten.agent.sources.pgpool import (
    Pcp,
    processes_from_pcp,
    query_pgpool_pcp,
    query_pgpool_sql,
    query_watchdog,
)

from tests.agent.helpers import assert_catalogue_shape, family
from tests.agent.pgpool_fixtures import FakePgpool, fake_pcp_bin, pcp_calls, psql_rows, text

HC = ("hc_total", "hc_fail", "hc_retry", "hc_skip", "hc_avg_duration", "hc_last_ok_age")


def sql_answers(release: str) -> dict[str, str]:
    """What a Pgpool of this release answers, by command (absent: it does not know it)."""
    files = {
        "SHOW POOL_VERSION": "show_pool_version.txt",
        "PGPOOL SHOW num_init_children": "pgpool_show_num_init_children.txt",
        "SHOW POOL_NODES": "show_pool_nodes.txt",
        "SHOW POOL_PROCESSES": "show_pool_processes.txt",
        "SHOW POOL_POOLS": "show_pool_pools.txt",
        "SHOW POOL_HEALTH_CHECK_STATS": "show_pool_health_check_stats.txt",
    }
    from tests.agent.pgpool_fixtures import FIXTURES

    return {cmd: text(release, f) for cmd, f in files.items() if (FIXTURES / release / f).exists()}


def sql_snapshot(release: str) -> tuple[dict[str, Any], list[str]]:
    pool = FakePgpool(sql_answers(release))
    raw = query_pgpool_sql(pool, 0.0)
    obj = shape_pgpool(raw, target="p", site="", watchdog_enabled=False, duration=0)
    assert_catalogue_shape(obj, family("kyoten.pgpool"))
    return obj, pool.sent


# ----------------------------------------------------------------------------- SQL
def test_pgpool_41_sql_busy_children_from_pool_pools_and_no_health_stats() -> None:
    obj, sent = sql_snapshot("4.1")
    # SHOW POOL_POOLS: children 19696 and 20024 hold a client (pool_connected 1)
    assert (obj["children_busy"], obj["children_total"], obj["children_busy_pct"]) == (2, 32, 6.25)
    assert "SHOW POOL_HEALTH_CHECK_STATS" not in sent and "SHOW POOL_PROCESSES" not in sent
    assert obj["version"] == "4.1.23 (karasukiboshi)"
    for b in obj["backends"]:
        assert all(b[f] is None for f in HC), b  # 4.1 keeps no health-check statistics
        assert b["drift"] is None and b["pg_status"] == 2  # no live check: unknown
    assert obj["pg_primaries"] is None and obj["drift_count"] is None
    assert [(b["role"], b["replication_state"]) for b in obj["backends"]] == [
        ("primary", ""),
        ("standby", "streaming"),
    ]


def test_pgpool_42_sql_health_stats_and_busy_children() -> None:
    obj, sent = sql_snapshot("4.2")
    assert "SHOW POOL_POOLS" in sent and "SHOW POOL_PROCESSES" not in sent
    assert (obj["children_busy"], obj["children_total"]) == (2, 32)
    b0, b1 = obj["backends"]
    assert (b0["hc_total"], b0["hc_fail"], b0["hc_avg_duration"]) == (27, 0, 0.006296)
    assert (b1["hc_total"], b1["hc_fail"], b1["hc_retry"], b1["hc_skip"]) == (19, 1, 3, 6)
    assert b0["hc_last_ok_age"] == 0.0  # now=0 is before 2020: no negative age
    assert obj["drift_count"] is None and obj["pg_primaries"] is None


@pytest.mark.parametrize("release", ["4.3", "4.6"])
def test_pgpool_43_and_later_sql_status_column(release: str) -> None:
    obj, sent = sql_snapshot(release)
    assert "SHOW POOL_PROCESSES" in sent and "SHOW POOL_POOLS" not in sent
    # 'Idle' and 'Execute command' of 8 children
    assert (obj["children_busy"], obj["children_total"], obj["children_busy_pct"]) == (2, 8, 25.0)
    assert [b["drift"] for b in obj["backends"]] == [0, 0] and obj["drift_count"] == 0
    assert obj["pg_primaries"] == 1
    # the documented example has no health-check stats: unknown per backend, not 0
    assert all(b["hc_total"] is None for b in obj["backends"])


def test_unreadable_version_without_status_column_is_unknown_not_zero() -> None:
    answers = sql_answers("4.2")
    answers["SHOW POOL_VERSION"] = " pool_version\n--------------\n devel\n(1 row)\n"
    pool = FakePgpool(answers)
    obj = shape_pgpool(
        query_pgpool_sql(pool, 0.0), target="p", site="", watchdog_enabled=False, duration=0
    )
    assert "SHOW POOL_PROCESSES" in pool.sent
    assert obj["children_busy"] is None and obj["children_busy_pct"] is None


def test_pool_pools_counts_a_child_once_and_only_on_backends_that_are_up() -> None:
    rows = psql_rows(text("4.2", "show_pool_pools.txt"))
    assert children_in_use(rows, [0, 1]) == 2  # two slots (backend 0 and 1) per child
    # Pgpool clears pool_connected only on valid backends: a slot of a backend that went
    # down keeps reading 1, so it must not count
    stale = tuple(
        {**r, "pool_connected": "1"} if r["pool_pid"] == "19697" and r["backend_id"] == "0" else r
        for r in rows
    )
    assert children_in_use(stale, [1]) == 2 and children_in_use(stale, [0, 1]) == 3
    assert children_in_use(None, [0]) is None and children_in_use((), [0]) is None
    assert children_in_use(({"pool_pid": "1"},), [0]) is None  # neither column: unknown


# ----------------------------------------------------------------------------- PCP
@pytest.fixture
def fake_pcp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """fake_pcp(release, fixture_dir) puts that release's pcp tools first on PATH."""

    def install(release: str, fixtures: str) -> Path:
        log = tmp_path / f"pcp-{release}.log"
        env = fake_pcp_bin(tmp_path / f"bin-{release}", release, fixtures, log)
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        monkeypatch.setenv("PATH", f"{tmp_path / f'bin-{release}'}:/usr/bin:/bin")
        return log

    return install


PCP = Pcp("127.0.0.1", PcpSettings(9898, "pcpadmin", "secret-pw"), "Pgpool-II p")


def pcp_snapshot(release: str) -> dict[str, Any]:
    raw = query_pgpool_pcp(PCP, 0.0, 10.0)
    obj = shape_pgpool(raw, target="p", site="", watchdog_enabled=False, duration=0)
    assert_catalogue_shape(obj, family("kyoten.pgpool"))
    return obj


def test_pcp_fallback_on_41_asks_each_node_and_has_no_health_stats(fake_pcp) -> None:  # type: ignore[no-untyped-def]
    log = fake_pcp("4.1", "4.1")
    obj = pcp_snapshot("4.1")
    assert obj["via_pcp"] == 1 and obj["backends_total"] == 2 and obj["backends_up"] == 2
    assert [b["backend"] for b in obj["backends"]] == ["/tmp:11002", "/tmp:11003"]
    assert obj["primary_node_id"] == 0.0 and obj["children_total"] == 32
    # pcp_proc_info -a -v: children 19696 and 20024 hold a client, as SHOW POOL_POOLS says
    assert obj["children_busy"] == 2 == sql_snapshot("4.1")[0]["children_busy"]
    assert all(b[f] is None for b in obj["backends"] for f in (*HC, "drift"))
    calls = pcp_calls(log)
    assert not any("-a" in c for c in calls if c[0] == "pcp_node_info")  # 4.1: no -a there
    assert ["pcp_proc_info", "-a", "-v"] in [[c[0], *c[-2:]] for c in calls]  # -a: 4.0+
    asked = sorted(" ".join([c[0], *c[-3:]]) for c in calls if c[0] == "pcp_node_info")
    assert asked == ["pcp_node_info -n 0 -v", "pcp_node_info -n 1 -v"]
    assert calls[0][0] == "pcp_node_count"  # first, to know how many nodes to ask


def test_pcp_fallback_on_42_reads_health_check_stats(fake_pcp) -> None:  # type: ignore[no-untyped-def]
    fake_pcp("4.2", "4.2")
    obj = pcp_snapshot("4.2")
    b0, b1 = obj["backends"]
    assert (b0["hc_total"], b0["hc_fail"], b0["hc_avg_duration"]) == (5, 0, 0.0042)
    assert (b1["hc_total"], b1["hc_fail"], b1["hc_retry"], b1["hc_skip"]) == (19, 1, 3, 6)
    assert b1["replication_state"] == "streaming" and b0["replication_state"] == ""


def test_pcp_fallback_on_43_real_output(fake_pcp) -> None:  # type: ignore[no-untyped-def]
    fake_pcp("4.3", "4.3.5-deb12")
    obj = pcp_snapshot("4.3")
    assert [(b["status"], b["pg_status"], b["drift"]) for b in obj["backends"]] == [
        (2, 1, 0),
        (2, 1, 0),
    ]
    assert obj["pg_primaries"] == 1 and obj["children_total"] == 16
    assert [b["hc_total"] for b in obj["backends"]] == [259, 259]


# pcp_proc_info -a -v of each release and what SHOW says of the same children: the fixture
# directory, SHOW's rows ("show_pool_processes" 4.3+, "show_pool_pools" before), backends up
PROC_INFO = [
    ("4.1", "show_pool_pools.txt", [0, 1], 2),
    ("4.2", "show_pool_pools.txt", [0, 1], 2),
    ("4.3.5-deb12", "show_pool_processes.txt", [0, 1], 3),  # captured together
    ("4.6.1-trixie", "show_pool_processes.txt", [0, 1], 3),
]


def busy_pids(rows: Any, up: list[int]) -> set[str]:
    """The children each row set says are busy, by the rule children_in_use applies."""
    return {
        r["pool_pid"]
        for r in rows
        if r.get("status", "Wait for connection") != "Wait for connection"
        or (r.get("pool_connected") == "1" and int(r["backend_id"]) in up)
    }


@pytest.mark.parametrize(("fixtures", "show", "up", "busy"), PROC_INFO)
def test_busy_children_through_pcp_are_what_sql_says(
    fixtures: str, show: str, up: list[int], busy: int
) -> None:
    sql = psql_rows(text(fixtures, show))
    pcp = processes_from_pcp(text(fixtures, "pcp_proc_info.txt"))
    assert pcp is not None
    assert children_in_use(pcp, up) == children_in_use(sql, up) == busy
    assert busy_pids(pcp, up) == busy_pids(sql, up)  # the same children, not just as many
    assert {r["pool_pid"] for r in pcp} == {r["pool_pid"] for r in sql}  # every child, -a


@pytest.mark.parametrize("fixtures", ["4.3.5-deb12", "4.6.1-trixie"])
def test_exhausted_pgpool_through_pcp_counts_every_taken_child(fixtures: str) -> None:
    """Captured while every child a client could get was held (num_init_children 16,
    reserved_connections 1): 15 busy, the last one kept free by Pgpool."""
    pcp = processes_from_pcp(text(fixtures, "pcp_proc_info.exhausted.txt"))
    assert pcp is not None and len(pcp) == 16  # one row per child, not per slot and backend
    assert children_in_use(pcp, [0, 1]) == 15


def test_pcp_fallback_on_43_counts_busy_children(fake_pcp) -> None:  # type: ignore[no-untyped-def]
    log = fake_pcp("4.3", "4.3.5-deb12")
    obj = pcp_snapshot("4.3")
    assert (obj["children_busy"], obj["children_total"], obj["children_busy_pct"]) == (3, 16, 18.75)
    assert ["pcp_proc_info", "-a", "-v"] in [[c[0], *c[-2:]] for c in pcp_calls(log)]


def test_pcp_proc_info_telling_nothing_is_unknown_not_zero() -> None:
    assert processes_from_pcp("No process information available\n\n") is None
    assert processes_from_pcp("") is None
    # a record with neither Status (4.3+) nor Connected (4.1/4.2): nothing to count by
    assert processes_from_pcp("Database : x\nPID : 12\n\n") is None
    idle = processes_from_pcp("PID : 12\nStatus : Wait for connection\n\n")
    assert idle is not None and children_in_use(idle, [0]) == 0  # known idle: 0


def test_failed_pcp_proc_info_leaves_the_rest_of_the_snapshot(
    fake_pcp,  # type: ignore[no-untyped-def]
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fake_pcp("4.2", "4.2")
    monkeypatch.setenv("FAKE_PCP_FAIL", "pcp_proc_info")
    obj = pcp_snapshot("4.2")
    assert obj["children_busy"] is None and obj["children_busy_pct"] is None
    assert obj["backends_up"] == 2 and obj["children_total"] == 32
    assert obj["backends"][1]["hc_total"] == 19
    # refused as every other call is (here: the password): an error, with pcp's message
    monkeypatch.setenv("FAKE_PCP_FAIL", "pcp_proc_info,pcp_proc_count,pcp_node_info")
    with pytest.raises(TargetError, match="authentication failed"):
        query_pgpool_pcp(PCP, 0.0, 10.0)


def test_pcp_error_after_connecting_exits_0_and_is_an_error_with_its_message(
    fake_pcp,  # type: ignore[no-untyped-def]
    tmp_path: Path,
) -> None:
    fake_pcp("4.3", "4.3.5-deb12")
    with pytest.raises(TargetError) as err:
        PCP.run("pcp_node_info", ["-n", "2", "-v"], 5.0)
    assert "invalid node ID : 2" in str(err.value) and "pcp 127.0.0.1:9898" in str(err.value)
    assert "secret-pw" not in str(err.value)


@pytest.mark.parametrize(
    ("release", "fixtures", "detail"),
    [("4.2", "4.3.5-deb12", "watcdhog is not enabled"), ("4.3", "4.3.5-deb12", "watchdog is not")],
)
def test_watchdog_refused_is_an_error_not_not_used(
    fake_pcp,  # type: ignore[no-untyped-def]
    release: str,
    fixtures: str,
    detail: str,
) -> None:
    # no pcp_watchdog_info.txt in 4.3.5-deb12: replayed as a Pgpool with use_watchdog = off
    fake_pcp(release, fixtures)
    with pytest.raises(TargetError, match=detail):
        query_watchdog(PCP, 5.0)


@pytest.mark.parametrize(("release", "leader"), [("4.1", "MASTER"), ("4.2", "LEADER")])
def test_watchdog_info_of_41_and_42(fake_pcp, release: str, leader: str) -> None:  # type: ignore[no-untyped-def]
    fake_pcp(release, release)
    wd = query_watchdog(PCP, 5.0)
    raw = query_pgpool_pcp(PCP, 0.0, 10.0)
    obj = shape_pgpool(
        raw._replace(watchdog=wd), target="p", site="", watchdog_enabled=True, duration=0
    )
    assert obj["watchdog_quorum"] == 1.0 and obj["watchdog_local_state"] == leader
    assert obj["watchdog_leader"] == "server1:9999 Linux server1.localdomain"
    assert obj["watchdog_alive_remote"] == 2.0


def refused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def collector_for(port: int, watchdog: bool) -> Collector:
    return Collector(
        parse_config(
            {
                "deadline": 5,
                "pgpool": {
                    "p": {
                        "host": "127.0.0.1",
                        "port": port,
                        "pcp_port": 9898,
                        "pcp_user": "pcpadmin",
                        "pcp_password": "secret-pw",
                        "watchdog": watchdog,
                    }
                },
            }
        )
    )


def test_collector_with_watchdog_true_reports_the_refusal(fake_pcp) -> None:  # type: ignore[no-untyped-def]
    """SQL refused, PCP fallback fine, watchdog refused: an error naming why, not -3."""
    fake_pcp("4.2", "4.2")
    collector = collector_for(refused_port(), watchdog=False)
    try:
        obj = json.loads(collector.get("kyoten.pgpool", ["p"]))
        assert obj["via_pcp"] == 1 and obj["watchdog_quorum"] == -3.0
    finally:
        collector.close()
    fake_pcp("4.3", "4.3.5-deb12")  # this one has the watchdog off
    collector = collector_for(refused_port(), watchdog=True)
    try:
        with pytest.raises(TargetError, match="watchdog is not enabled"):
            collector.get("kyoten.pgpool", ["p"])
    finally:
        collector.close()
