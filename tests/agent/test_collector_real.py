"""The collector against real PostgreSQL 15, Pgpool-II 4.3 and zabbix_agent2 on loopback."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kyoten.agent.collector import Collector
from kyoten.agent.config import load_config
from zabbix_utils import Getter

from .helpers import assert_catalogue_shape, family, kyoten_get, wait_until

pytestmark = pytest.mark.integration


def pg(config: Path, target: str) -> dict[str, Any]:
    obj, _, rc = kyoten_get(config, f"kyoten.pg[{target}]")
    assert rc == 0, obj
    return obj  # type: ignore[no-any-return]


def pool(config: Path, target: str) -> dict[str, Any]:
    obj, _, rc = kyoten_get(config, f"kyoten.pgpool[{target}]")
    assert rc == 0, obj
    return obj  # type: ignore[no-any-return]


def standby_row(obj: dict[str, Any], name: str = "site-b") -> dict[str, Any]:
    return next(s for s in obj["standbys"] if s["application_name"] == name)


def make_wal(node: Any, rows: int = 20000) -> None:
    node.sql("CREATE TABLE IF NOT EXISTS kyoten_wal (i int, pad text)")
    node.sql(
        "INSERT INTO kyoten_wal SELECT g, repeat('x', 100) FROM generate_series(1, %s) g", (rows,)
    )


# ----------------------------------------------------------------------------- shape


def test_every_family_matches_the_catalogue_on_real_servers(
    cluster: Any, kyoten_config: Path
) -> None:
    for target in ("site-a", "site-b"):
        assert_catalogue_shape(pg(kyoten_config, target), family("kyoten.pg"))
    for target in ("pool-a", "pool-b"):
        assert_catalogue_shape(pool(kyoten_config, target), family("kyoten.pgpool"))
    obj, _, rc = kyoten_get(kyoten_config, "kyoten.cross")
    assert rc == 0
    assert_catalogue_shape(obj, family("kyoten.cross"))


def test_each_stack_is_the_releases_it_stands_for(cluster: Any, kyoten_config: Path) -> None:
    major, pgpool = {"bookworm": (15, "4.3."), "trixie": (17, "4.6.")}[cluster.stack]
    assert pg(kyoten_config, "site-b")["server_version"] // 10000 == major
    assert pool(kyoten_config, "pool-a")["version"].startswith(pgpool)
    if cluster.pcp_bin is not None:  # the stack's own pcp tools, not the host's
        import subprocess

        out = subprocess.run(
            [str(cluster.pcp_bin / "pcp_node_info"), "--version"], capture_output=True, text=True
        )
        assert f"pgpool-II) {pgpool}" in out.stdout + out.stderr, out


def test_roles_standbys_slots_and_pgpool_view(cluster: Any, kyoten_config: Path) -> None:
    a, b = pg(kyoten_config, "site-a"), pg(kyoten_config, "site-b")
    assert (a["in_recovery"], b["in_recovery"]) == (0, 1)
    assert a["receiver_state"] == 2 and b["receiver_state"] == 1
    assert b["receiver_sender"] == f"127.0.0.1:{cluster.primary.port}"
    row = standby_row(a)
    assert row["connected"] == 1 and row["state"] == "streaming"
    assert [s["slot_name"] for s in a["slots"]] == ["site_b"] and a["slots"][0]["active"] == 1
    p = pool(kyoten_config, "pool-a")
    assert [x["backend"] for x in p["backends"]] == [
        f"127.0.0.1:{cluster.primary.port}",
        f"127.0.0.1:{cluster.standby.port}",
    ]
    assert p["primary_backend"] == f"127.0.0.1:{cluster.primary.port}"
    assert p["children_total"] == cluster.pool_a.num_init_children
    assert 1 <= p["children_busy"] < p["children_total"]
    assert p["backends"][1]["replication_state"] == "streaming"
    lld, _, _ = kyoten_get(kyoten_config, "kyoten.pgpool.backends[pool-b]")
    assert [r["{#NODE}"] for r in lld] == ["0", "1"]
    lld, _, _ = kyoten_get(kyoten_config, "kyoten.pg.standbys[site-a]")
    assert lld == [{"{#APP}": "site-b", "{#CLIENT}": "127.0.0.1"}]


# ----------------------------------------------------------------------------- lag


@contextlib.contextmanager
def replay_paused(node: Any) -> Iterator[None]:
    node.sql("SELECT pg_wal_replay_pause()")
    try:
        yield
    finally:
        node.sql("SELECT pg_wal_replay_resume()")


#: What the standby itself says, for a failure message when the collector's view surprises.
REPLAY_FACTS = (
    "SELECT pg_last_xact_replay_timestamp(), clock_timestamp(), pg_last_wal_receive_lsn(), "
    "pg_last_wal_replay_lsn(), pg_get_wal_replay_pause_state()"
)


def test_lag_grows_while_replay_is_paused_and_returns_to_zero(
    cluster: Any, kyoten_config: Path
) -> None:
    make_wal(cluster.primary, 10)  # a replayed commit gives the standby a replay timestamp
    # replayed up to the commit: neither lag proves it (the standby's reads 0 before the
    # commit has even arrived, the primary's while the standby has not reported a replay
    # position yet, as PostgreSQL 17 right after start-up)
    commit = pg(kyoten_config, "site-a")["wal_lsn"]
    wait_until(lambda: pg(kyoten_config, "site-b")["wal_lsn"] >= commit, "standby caught up")
    # (the lab's synchronous_commit = off: wal_lsn, the write position, can still be short of
    # the commit; the standby's own replay time says the commit was replayed)
    wait_until(
        lambda: cluster.standby.value("SELECT pg_last_xact_replay_timestamp() IS NOT NULL"),
        "the standby to report the replayed commit's time",
    )
    with replay_paused(cluster.standby):
        make_wal(cluster.primary)
        a = wait_until(
            lambda: (
                (o := pg(kyoten_config, "site-a"))
                and standby_row(o)["replay_lag_bytes"] > 1_000_000
                and o
            ),
            "primary-side replay lag to grow",
        )
        row = standby_row(a)
        assert row["sent_lag_bytes"] < row["replay_lag_bytes"]  # sent, not applied
        b = wait_until(
            lambda: (o := pg(kyoten_config, "site-b")) and o["replay_lag_bytes"] > 1_000_000 and o,
            "standby-side replay lag to grow",
        )
        assert b["replay_paused"] == 1
        assert b["receiver_state"] == 1  # still streaming: this is replay, not the link
        # the delay is measured from the last replayed commit: it grows from the next sample on
        wait_until(
            lambda: pg(kyoten_config, "site-b")["replay_delay"] > 0,
            "replay delay",
            on_timeout=lambda: cluster.standby.sql(REPLAY_FACTS),
        )
    wait_until(
        lambda: standby_row(pg(kyoten_config, "site-a"))["replay_lag_bytes"] == 0,
        "primary-side lag back to 0",
    )
    b = wait_until(
        lambda: (o := pg(kyoten_config, "site-b")) and o["replay_lag_bytes"] == 0 and o,
        "standby-side lag back to 0",
    )
    assert b["replay_delay"] == 0.0 and b["replay_paused"] == 0


# ----------------------------------------------------------------------------- receiver


def test_stopped_wal_receiver_is_reported_although_lag_reads_zero(
    cluster: Any, kyoten_config: Path
) -> None:
    conninfo = cluster.standby.primary_conninfo()
    cluster.standby.set_primary_conninfo("")
    try:
        wait_until(
            lambda: pg(kyoten_config, "site-b")["receiver_state"] == 0, "the receiver to stop"
        )
        # both ends gone before the primary moves on: a receiver restarting from the old
        # setting (a reload not yet seen) would otherwise stream what follows
        a = wait_until(
            lambda: (o := pg(kyoten_config, "site-a")) and standby_row(o)["connected"] == 0 and o,
            "the primary to lose its walsender",
        )
        make_wal(cluster.primary, 2000)  # the primary moves on; the standby cannot know
        b = pg(kyoten_config, "site-b")
        assert b["receiver_state"] == 0
        # lag alone is blind: it does not see the WAL the primary wrote since (≈ 300 kB). It
        # reads 0, or on PostgreSQL 17 at most the tail of a record the stream was cut in
        assert b["replay_lag_bytes"] < 8192
        assert b["receiver_last_msg_age"] == -1.0 and b["receiver_sender"] == ""
        # the lab runs synchronous_commit = off: the write position (wal_lsn) follows the
        # commit within wal_writer_delay, and with it what the slot retains
        a = wait_until(
            lambda: (
                (o := pg(kyoten_config, "site-a")) and o["slots"][0]["retained_bytes"] > 0 and o
            ),
            "the slot to retain the WAL written since",
        )
        assert standby_row(a)["state"] == "missing"  # expected_standbys keeps it visible
        (slot,) = a["slots"]
        assert slot["active"] == 0
    finally:
        cluster.standby.set_primary_conninfo(conninfo)
    wait_until(lambda: pg(kyoten_config, "site-b")["receiver_state"] == 1, "receiver back")


# ----------------------------------------------------------------------------- pgpool


def test_pgpool_holding_a_live_backend_down_is_drift(cluster: Any, kyoten_config: Path) -> None:
    cluster.pool_b.hold_down([1])
    try:
        p = pool(kyoten_config, "pool-b")
        node = p["backends"][1]
        assert (node["status"], node["pg_status"], node["drift"]) == (3, 1, 1)
        assert p["drift_count"] == 1
        cross, _, _ = kyoten_get(kyoten_config, "kyoten.cross")
        assert cross["pgpool_drift"] == 1 and cross["pgpool_status_mismatches"] == 1
        assert cross["pgpools_agree"] == 1  # both still route writes to site-a
    finally:
        cluster.pool_b.stop()
        cluster.pool_b.start()
    assert pool(kyoten_config, "pool-b")["drift_count"] == 0


def test_watchdog_true_on_a_pgpool_without_watchdog_is_an_error_with_pcps_reason(
    cluster: Any, kyoten_config: Path, tmp_path: Path
) -> None:
    """pcp_watchdog_info exits 0 with the refusal on stderr: never "watchdog not used"."""
    text = kyoten_config.read_text().replace(
        "[pgpool.pool-a]\n", "[pgpool.pool-a]\nwatchdog = true\n"
    )
    config = tmp_path / "kyoten.toml"
    config.write_text(text)
    obj, _, rc = kyoten_get(config, "kyoten.pgpool[pool-a]", path=cluster.pcp_bin)
    assert rc == 1 and "pcp_watchdog_info" in obj["error"], obj
    assert "watchdog is not enabled" in obj["error"]


# ----------------------------------------------------------------------------- errors


def test_stopped_servers_give_readable_errors_within_the_deadline(
    cluster_factory: Callable[[], Any], tmp_path: Path
) -> None:
    from tests.conftest import write_lab_config

    c = cluster_factory()
    config = write_lab_config(c, c.primary.datadir.parent.parent / "cfg")
    deadline = load_config(str(config)).deadline
    c.pool_a.stop()
    obj, took, rc = kyoten_get(config, "kyoten.pgpool[pool-a]", path=c.pcp_bin)
    assert rc == 1 and took < deadline + 1.5
    assert f"127.0.0.1:{c.pool_a.port}" in obj["error"] and "refused" in obj["error"]
    assert "pcp" in obj["error"].lower()  # the PCP fallback was tried and failed too
    assert "pcpadmin" not in obj["error"].replace("-U pcpadmin", "")  # no password
    c.standby.stop("immediate")
    obj, took, rc = kyoten_get(config, "kyoten.pg[site-b]")
    assert rc == 1 and took < deadline + 1.5
    assert obj["error"].startswith(f"PostgreSQL site-b (127.0.0.1:{c.standby.port}): ")
    # both Pgpools notice the standby is gone (health check every second)
    wait_until(lambda: c.pool_b.node_status()[1] == "down", "pool-b to mark site-b down")
    cross, _, rc = kyoten_get(config, "kyoten.cross")
    assert rc == 0 and cross["pg_reachable"] == 1 and "site-b" in cross["unreachable"]


def test_pgpool_refusing_sql_falls_back_to_pcp(
    cluster_factory: Callable[[], Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    from tests.conftest import write_lab_config

    c = cluster_factory()
    config = write_lab_config(c, c.primary.datadir.parent.parent / "cfg")
    c.standby.stop("immediate")
    c.primary.stop("immediate")
    p = wait_until(
        lambda: (
            (o := kyoten_get(config, "kyoten.pgpool[pool-a]", path=c.pcp_bin)[0])
            and o.get("via_pcp") == 1
            and o["backends_up"] == 0
            and o
        ),
        "pool-a to refuse SQL and hold both backends down",
    )
    assert_catalogue_shape(p, family("kyoten.pgpool"))
    assert [b["status"] for b in p["backends"]] == [3, 3]
    assert [b["pg_status"] for b in p["backends"]] == [0, 0]  # and PostgreSQL agrees
    assert p["primary_node_id"] == -1
    # the children as pcp_proc_info reports them (4.3+ status), never unknown on these stacks
    assert 0 <= p["children_busy"] <= p["children_total"] == c.pool_a.num_init_children
    # health-check stats over PCP too (pcp_health_check_stats, 4.2+): failing, not blank
    assert all(b["hc_total"] >= 1 and b["hc_last_ok_age"] != 0 for b in p["backends"])
    # plugin mode (backends listed, live checks of its own) falls back to PCP just the same,
    # with the same pcp tools
    if c.pcp_bin is not None:
        monkeypatch.setenv("PATH", f"{c.pcp_bin}{os.pathsep}{os.environ['PATH']}")
    plugin = Collector(load_config(str(config)), persistent=True)
    try:  # polls: a PCP call right after a failover can be refused while Pgpool restarts its
        # PCP process (4.6: "unable to read data from socket"); that is one failed poll
        q = wait_until(
            lambda: json.loads(plugin.get("kyoten.pgpool", ["pool-a"])),
            "plugin mode to read pool-a through PCP",
        )
    finally:
        plugin.close()
    assert (q["via_pcp"], q["backends_up"], q["live_checks"]) == (1, 0, "pgpool")


def test_exhausted_pgpool_reads_busy_children_through_pcp(
    cluster: Any, kyoten_config: Path
) -> None:
    """Every child a client can get is taken: a fresh ``kyoten get`` (UserParameter mode) is
    refused SQL too, and reads the busy children through pcp_proc_info, so *every child
    process is busy* fires there as well."""
    from kyoten.shell.lab.faults import Faults

    c = cluster
    faults = Faults([c.primary, c.standby], [c.pool_a, c.pool_b], Path("/nonexistent"))
    try:
        faults.exhaust(c.pool_a)  # refused at num_init_children - reserved_connections
        p, took, rc = kyoten_get(kyoten_config, "kyoten.pgpool[pool-a]", path=c.pcp_bin)
        assert rc == 0 and p["via_pcp"] == 1, p
        assert p["children_total"] == c.pool_a.num_init_children
        # every child a client can get is busy (reserved_connections = 1 keeps one back)
        assert p["children_total"] >= p["children_busy"] >= len(faults.held)
        assert len(faults.held) >= p["children_total"] - 1
        assert took < 10, took
    finally:
        faults.release()
    calm = wait_until(
        lambda: (o := pool(kyoten_config, "pool-a"))["children_busy"] <= 2 and o,
        "pool-a to free its children",
        timeout=10,
    )
    assert calm["via_pcp"] == 0 and calm["children_total"] == c.pool_a.num_init_children


def test_promotion_gives_two_primaries_and_disagreeing_pgpools(
    cluster_factory: Callable[[], Any],
) -> None:
    from tests.conftest import write_lab_config

    c = cluster_factory()
    config = write_lab_config(c, c.primary.datadir.parent.parent / "cfg")
    c.standby.promote()
    cross = wait_until(
        lambda: (o := kyoten_get(config, "kyoten.cross")[0]) and o["primaries"] == 2 and o,
        "two primaries",
    )
    assert cross["primary_targets"] == "site-a,site-b"
    b = kyoten_get(config, "kyoten.pg[site-b]")[0]
    assert b["timeline"] == 2 and b["receiver_state"] == 2
    # site B's Pgpool fails over on its own (old primary held down): the double failover
    c.pool_b.hold_down([0])
    cross = wait_until(
        lambda: (o := kyoten_get(config, "kyoten.cross")[0]) and o["pgpools_agree"] == 0 and o,
        "the Pgpools to disagree",
    )
    assert cross["pgpool_primary_views"] == (
        f"pool-a=127.0.0.1:{c.primary.port}; pool-b=127.0.0.1:{c.standby.port}"
    )
    assert kyoten_get(config, "kyoten.pgpool[pool-a]")[0]["pg_primaries"] == 2


# ----------------------------------------------------------------------------- agent 2


def test_values_through_the_real_agent2(cluster: Any, kyoten_config: Path, agent2: Any) -> None:
    getter = Getter(host="127.0.0.1", port=agent2.port, timeout=10)
    via_agent = json.loads(getter.get("kyoten.pg[site-a]").value)
    direct = pg(kyoten_config, "site-a")
    for volatile in ("duration", "wal_lsn"):
        via_agent.pop(volatile), direct.pop(volatile)
    for s in (*via_agent["standbys"], *direct["standbys"]):
        for k in (
            "sent_lag_bytes",
            "write_lag_bytes",
            "flush_lag_bytes",
            "replay_lag_bytes",
            "write_lag",
            "flush_lag",
            "replay_lag",
        ):
            s.pop(k)
    for s in (*via_agent["slots"], *direct["slots"]):
        s.pop("retained_bytes")
    assert via_agent == direct
    lld = json.loads(getter.get("kyoten.pgpool.backends[pool-b]").value)
    assert len(lld) == 2
    bad = json.loads(getter.get("kyoten.pg[nope]").value)
    assert "unknown postgres target 'nope'" in bad["error"] and "site-a" in bad["error"]


def test_collector_persistent_mode_reconnects(cluster_factory: Callable[[], Any]) -> None:
    from tests.conftest import write_lab_config

    c = cluster_factory()
    collector = Collector(
        load_config(str(write_lab_config(c, c.primary.datadir.parent.parent / "cfg"))),
        persistent=True,
    )
    try:
        first = json.loads(collector.get("kyoten.pg", ["site-a"]))
        c.primary.stop("fast")
        with pytest.raises(Exception, match="site-a"):
            collector.get("kyoten.pg", ["site-a"])
        c.primary.start()
        again = json.loads(collector.get("kyoten.pg", ["site-a"]))
        assert again["in_recovery"] == first["in_recovery"] == 0
    finally:
        collector.close()


def test_a_query_past_the_deadline_is_cancelled_and_the_target_freed(cluster: Any) -> None:
    """A hung server must not hold the worker (plugin mode) or the target's lock."""
    import time

    from kyoten.agent.config import Endpoint
    from kyoten.agent.errors import TargetError
    from kyoten.agent.sources.connect import Connector

    ep = Endpoint("127.0.0.1", cluster.primary.port, "postgres", "kyoten")
    conn = Connector(persistent=True, connect_timeout=2)
    start = time.monotonic()
    with (
        pytest.raises(TargetError, match=r"within the deadline \(query cancelled\)"),
        conn.connection("t", ep, "PostgreSQL t", None, time.monotonic() + 0.5) as c,
    ):
        c.execute("SELECT pg_sleep(20)")
    assert time.monotonic() - start < 2
    with conn.connection("t", ep, "PostgreSQL t", None, time.monotonic() + 2) as c:
        assert c.execute("SELECT 1").fetchone() == (1,)  # a fresh connection, lock free
    conn.close()


def test_a_server_that_ignores_the_cancel_is_cut_off(cluster: Any) -> None:
    """A frozen backend (SIGSTOP) cannot act on a cancel request; the socket is cut instead."""
    import os
    import signal
    import time

    from kyoten.agent.config import Endpoint
    from kyoten.agent.errors import TargetError
    from kyoten.agent.sources.connect import Connector

    ep = Endpoint("127.0.0.1", cluster.primary.port, "postgres", "kyoten")
    conn = Connector(persistent=True, connect_timeout=2)
    with conn.connection("t", ep, "PostgreSQL t", None, time.monotonic() + 5) as c:
        row = c.execute("SELECT pg_backend_pid()").fetchone()
        assert row is not None
    backend = int(row[0])
    os.kill(backend, signal.SIGSTOP)
    try:
        start = time.monotonic()
        with (
            pytest.raises(TargetError, match=r"within the deadline"),
            conn.connection("t", ep, "PostgreSQL t", None, time.monotonic() + 0.5) as c,
        ):
            c.execute("SELECT 1")
        assert time.monotonic() - start < 3
    finally:
        os.kill(backend, signal.SIGCONT)
    with conn.connection("t", ep, "PostgreSQL t", None, time.monotonic() + 3) as c:
        assert c.execute("SELECT 1").fetchone() == (1,)
    conn.close()
