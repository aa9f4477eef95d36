"""Pure shaping of raw snapshots (no servers)."""

from __future__ import annotations

from typing import Any

import pytest
from kyoten.agent.catalogue import FAMILIES
from kyoten.agent.collector import render
from kyoten.agent.shape import (
    Outcome,
    parse_delay,
    pg_status_code,
    quorum_code,
    receiver_state,
    replay_delay,
    shape_cross,
    shape_pg,
    shape_pgpool,
    shape_zabbix,
    status_code,
)
from kyoten.agent.snapshot import PgpoolRaw, PgRaw, ZabbixRaw
from kyoten.agent.sources.pgpool import (
    LiveCheck,
    compose_nodes,
    nodes_from_pcp,
    order_problem,
)
from kyoten.agent.sources.refresh import Refresher

STANDBY = PgRaw(
    version=150000,
    in_recovery=True,
    now=1000.0,
    ref_lsn=5000.0,
    primary_tli=None,
    checkpoint_tli=3,
    receive_lsn=5000.0,
    last_replay_ts=400.0,
    replay_paused=False,
    standbys=(),
    slots=(),
    receiver={
        "status": "streaming",
        "received_tli": 3,
        "flushed": 5000,
        "latest_end": 6000,
        "last_msg": 990.0,
        "sender_host": "10.0.0.1",
        "sender_port": 5432,
    },
)


def test_idle_primary_does_not_inflate_replay_delay() -> None:
    # everything received is replayed; the last commit was 600 s ago because nothing happened
    assert replay_delay(STANDBY) == 0.0
    assert replay_delay(STANDBY._replace(receive_lsn=7000.0)) == 600.0


def test_receiver_states() -> None:
    assert receiver_state(STANDBY) == 1
    assert receiver_state(STANDBY._replace(receiver=None)) == 0
    assert receiver_state(STANDBY._replace(receiver={"status": "waiting"})) == 3
    assert receiver_state(STANDBY._replace(in_recovery=False)) == 2


def test_dead_receiver_reads_zero_lag_but_state_zero() -> None:
    dead = shape_pg(
        STANDBY._replace(receiver=None), target="b", site="", expected_standbys=(), duration=0.01
    )
    assert (dead["receiver_state"], dead["replay_lag_bytes"], dead["replay_delay"]) == (0, 0, 0.0)
    assert dead["timeline"] == 3 and dead["receiver_last_msg_age"] == -1.0


def test_standby_side_figures() -> None:
    obj = shape_pg(
        STANDBY, target="b", site="dc2", expected_standbys=("ignored-on-standby",), duration=0.01
    )
    assert obj["receive_lag_bytes"] == 1000 and obj["receiver_sender"] == "10.0.0.1:5432"
    assert obj["receiver_last_msg_age"] == 10.0
    # an expected standby keeps its row on a standby, but is not expected to stream here, so
    # its triggers resolve when the server turns standby instead of losing their item
    (row,) = obj["standbys"]
    assert (row["application_name"], row["connected"], row["expected"]) == (
        "ignored-on-standby",
        0,
        0,
    )
    assert row["state"] == ""


def test_primary_lags_and_missing_expected_standby() -> None:
    raw = STANDBY._replace(
        in_recovery=False,
        primary_tli=4,
        receiver=None,
        standbys=(
            {
                "application_name": "b",
                "client_addr": "10.0.0.2",
                "state": "streaming",
                "sync_state": "async",
                "sent": 4900,
                "write": 4800,
                "flush": 4700,
                "replay": None,
                "write_lag": 0.5,
                "flush_lag": None,
                "replay_lag": 1.25,
            },
        ),
        slots=(
            {
                "slot_name": "b",
                "slot_type": "physical",
                "active": False,
                "restart": 1000,
                "wal_status": "extended",
                "safe_wal_size": None,
            },
        ),
    )
    obj = shape_pg(raw, target="a", site="", expected_standbys=("b", "c"), duration=0)
    b, c = obj["standbys"]
    assert (b["sent_lag_bytes"], b["write_lag_bytes"], b["flush_lag_bytes"]) == (100, 200, 300)
    assert b["replay_lag_bytes"] == 0 and b["replay_lag"] == 1.25 and b["flush_lag"] == 0.0
    assert (c["application_name"], c["connected"], c["state"]) == ("c", 0, "missing")
    assert (b["expected"], c["expected"]) == (1, 1)  # a primary must feed both
    assert obj["standbys_connected"] == 1 and obj["timeline"] == 4
    assert obj["slots"][0] == {
        "slot_name": "b",
        "present": 1,
        "slot_type": "physical",
        "active": 0,
        "wal_status": "extended",
        "retained_bytes": 4000,
        "safe_wal_size": -1.0,
        "inactive_seconds": None,  # before PostgreSQL 17: unknown
    }


def node(i: int, status: str, pg_status: str, role: str, pg_role: str) -> dict[str, str]:
    return {
        "node_id": str(i),
        "hostname": "h",
        "port": str(5432 + i),
        "status": status,
        "pg_status": pg_status,
        "role": role,
        "pg_role": pg_role,
        "replication_delay": "0",
        "last_status_change": "2024-01-01 00:00:00",
    }


def pool_raw(*nodes: dict[str, str]) -> PgpoolRaw:
    return PgpoolRaw(
        via_pcp=False,
        version="4.3.5",
        nodes=nodes,
        health=(),
        processes=tuple(
            {"status": s} for s in ["Wait for connection"] * 6 + ["Idle", "Execute command"]
        ),
        num_init_children=8,
        watchdog=None,
        now=0,
    )


def test_pgpool_drift_primary_and_children() -> None:
    obj = shape_pgpool(
        pool_raw(
            node(0, "up", "up", "primary", "primary"), node(1, "down", "up", "standby", "standby")
        ),
        target="p",
        site="",
        watchdog_enabled=False,
        duration=0,
    )
    assert [b["drift"] for b in obj["backends"]] == [0, 1] and obj["drift_count"] == 1
    assert obj["primary_backend"] == "h:5432" and obj["primary_node_id"] == 0.0
    assert (obj["children_busy"], obj["children_busy_pct"]) == (2, 25.0)
    assert obj["watchdog_quorum"] == -3.0


def test_pgpool_primary_down_is_no_primary_and_two_live_primaries_are_counted() -> None:
    obj = shape_pgpool(
        pool_raw(
            node(0, "down", "up", "primary", "primary"), node(1, "up", "up", "standby", "primary")
        ),
        target="p",
        site="",
        watchdog_enabled=False,
        duration=0,
    )
    assert obj["primary_node_id"] == -1.0 and obj["pg_primaries"] == 2


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1024", (1024.0, -1.0)),
        ("", (0.0, -1.0)),
        ("0.000568 second", (-1.0, 0.000568)),
        ("2.5 seconds", (-1.0, 2.5)),
        ("garbage", (0.0, -1.0)),
    ],
)
def test_replication_delay_formats(text: str, expected: tuple[float, float]) -> None:
    assert parse_delay(text) == expected


def test_quorum_codes() -> None:
    assert [
        quorum_code(t)
        for t in ("QUORUM EXIST", "QUORUM IS ON THE EDGE", "QUORUM ABSENT", "NO LEADER NODE", "")
    ] == [1.0, 0.0, -1.0, -2.0, -3.0]
    assert [quorum_code(t) for t in ("no master node", "Quorum exist", "SOMETHING NEW")] == [
        -2.0,
        1.0,
        -2.0,
    ]


def test_pgpool_status_codes_are_the_value_maps() -> None:
    words = ("unused", "waiting", " Up ", "DOWN", "quarantine", "", "unknown", "garbage")
    assert [status_code(w) for w in words] == [0, 1, 2, 3, 4, 5, 5, 5]
    assert [pg_status_code(w) for w in ("down", "Up", "unknown", "")] == [0, 1, 2, 2]


def test_receiver_word_codes_and_zabbix_counts() -> None:
    for status, code in [("stopped", 0), ("streaming", 1), ("", 3), ("stopping", 3)]:
        assert receiver_state(STANDBY._replace(receiver={"status": status})) == code
    assert receiver_state(STANDBY._replace(receiver={})) == 0
    assert (
        shape_pg(STANDBY, target="b", site="", expected_standbys=(), duration=0)["in_recovery"] == 1
    )
    nodes = tuple(
        {"ha_nodeid": i, "name": f"n{i}", "address": "h", "port": 1, "status": s, "lastaccess": 0}
        for i, s in enumerate((0, 1, 2, 3, 3))
    )
    obj = shape_zabbix(ZabbixRaw(nodes=nodes, now=0.0), target="z", site="", duration=0)
    assert (obj["nodes_active"], obj["nodes_standby"], obj["nodes_unavailable"]) == (2, 1, 1)
    assert obj["active_node"] == "n3,n4"


PCP_VERBOSE = """Hostname               : 127.0.0.1
Port                   : 5432
Status                 : 3
Weight                 : 0.500000
Status Name            : down
Backend Status Name    : down
Role                   : standby
Backend Role           : unknown
Replication Delay      : 0
Replication State      : none
Replication Sync State : none
Last Status Change     : 2026-11-28 19:11:01

Hostname               : 127.0.0.1
Port                   : 5433
Status                 : 2
Weight                 : 0.500000
Status Name            : up
Backend Status Name    : up
Role                   : primary
Backend Role           : primary
Replication Delay      : 0
Replication State      : none
Replication Sync State : none
Last Status Change     : 2026-11-28 19:11:01
"""


def test_pcp_node_info_verbose_is_read_by_title() -> None:
    rows = nodes_from_pcp(PCP_VERBOSE)
    assert [(r["node_id"], r["status"], r["pg_role"], r["replication_state"]) for r in rows] == [
        ("0", "down", "unknown", ""),
        ("1", "up", "primary", ""),
    ]


def pg_obj(in_recovery: int) -> dict[str, Any]:
    return {"in_recovery": in_recovery}


def pool_obj(primary: str, statuses: list[int]) -> dict[str, Any]:
    return {
        "primary_backend": primary,
        "backends": [
            {"backend": f"h:{i}", "status": s, "drift": 0} for i, s in enumerate(statuses)
        ],
    }


def test_cross_site_invariants() -> None:
    out = shape_cross(
        [Outcome("a", pg_obj(0)), Outcome("b", pg_obj(0)), Outcome("c", None, "refused")],
        [Outcome("pa", pool_obj("h:0", [2, 1])), Outcome("pb", pool_obj("h:1", [3, 2]))],
        [
            Outcome("z1", {"nodes": [{"name": "n1", "status": 3}]}),
            Outcome("z2", {"nodes": [{"name": "n2", "status": 3}, {"name": "n1", "status": 0}]}),
        ],
        duration=0.5,
    )
    assert out["primaries"] == 2 and out["primary_targets"] == "a,b"
    assert out["pg_reachable"] == 2 and out["unreachable"] == "c: refused"
    assert out["pgpools_agree"] == 0 and out["pgpool_primary_views"] == "pa=h:0; pb=h:1"
    assert out["pgpool_status_mismatches"] == 1  # h:0 up in pa, down in pb; h:1 up in both
    assert out["zabbix_active_nodes"] == 2
    assert set(out) == FAMILIES[3].fields()


def test_cross_site_all_healthy() -> None:
    out = shape_cross(
        [Outcome("a", pg_obj(0)), Outcome("b", pg_obj(1))],
        [Outcome("pa", pool_obj("h:0", [2, 2])), Outcome("pb", pool_obj("h:0", [1, 2]))],
        [],
        duration=0,
    )
    assert (out["primaries"], out["pgpools_agree"], out["pgpool_status_mismatches"]) == (1, 1, 0)
    assert out["unreachable"] == ""


def test_pgpool_nan_health_check_duration_becomes_zero() -> None:
    """Pgpool prints 'nan' for a backend it never checked; the JSON must stay strict."""
    raw = pool_raw(node(0, "up", "up", "primary", "primary"))._replace(
        health=({"node_id": "0", "average_duration": "nan", "total_count": "inf"},),
    )
    obj = shape_pgpool(raw, target="p", site="", watchdog_enabled=False, duration=0)
    assert obj["backends"][0]["hc_avg_duration"] == 0.0 and obj["backends"][0]["hc_total"] == 0
    assert "NaN" not in render(obj)


# ----------------------------------------------------------------------------- plugin's Pgpool pass
VIEW = (
    {"node_id": "0", "hostname": "h", "port": "1", "status": "up", "role": "primary"},
    {"node_id": "1", "hostname": "h", "port": "2", "status": "down", "role": "standby"},
    {"node_id": "2", "hostname": "h", "port": "3", "status": "up", "role": "standby"},
)
EARLIER = (
    {
        "node_id": "1",
        "hostname": "h",
        "port": "2",
        "replication_delay": "42",
        "replication_state": "streaming",
        "replication_sync_state": "async",
    },
    # node 2 was another backend when this was read (a reload re-numbered them)
    {
        "node_id": "2",
        "hostname": "other",
        "port": "3",
        "replication_delay": "7",
        "replication_state": "catchup",
        "replication_sync_state": "async",
    },
)


def test_compose_nodes_joins_view_live_checks_and_matching_sr_columns_only() -> None:
    live = {"0": LiveCheck("up", "primary"), "1": LiveCheck("up", "standby")}
    rows = compose_nodes(VIEW, live, EARLIER)
    assert [(r["pg_status"], r["pg_role"]) for r in rows] == [
        ("up", "primary"),
        ("up", "standby"),
        ("unknown", "unknown"),
    ]
    assert [r["replication_delay"] for r in rows] == ["", "42", ""]
    assert rows[1]["status"] == "down" and rows[1]["replication_state"] == "streaming"
    down = compose_nodes(VIEW[:1], {"0": LiveCheck("down", "primary")}, ())
    assert down[0]["pg_role"] == "unknown"  # as Pgpool: no role for a backend that is down
    raw = PgpoolRaw(False, "4.3.5", rows, (), None, None, None, 0.0, "kyoten", 3.0)
    obj = shape_pgpool(raw, target="p", site="s", watchdog_enabled=False, duration=0)
    assert (obj["live_checks"], obj["replication_age"], obj["drift_count"]) == ("kyoten", 3.0, 1)


def test_refresher_keeps_the_last_good_reading_and_the_error() -> None:
    results: list[Any] = [("a",), RuntimeError("pgpool gone")]

    def read(deadline: float) -> Any:
        r = results.pop(0)
        if isinstance(r, Exception):
            raise r
        return r

    ref: Refresher[Any] = Refresher(read, 60, "t")
    first = ref.read_now(0)
    assert first is not None and first.value == ("a",) and ref.last_error is None
    again = ref.read_now(0)
    assert again is first and ref.last_error == "pgpool gone"


def test_order_problem_catches_a_swap_but_accepts_names_for_addresses() -> None:
    addresses = {"a": ("10.0.0.1", "5432"), "b": ("10.0.0.2", "5432"), "x": ("h", "1")}
    view = (
        {"node_id": "0", "hostname": "10.0.0.1", "port": "5432"},
        {"node_id": "1", "hostname": "pg-b.example", "port": "5432"},  # a name: accepted
    )
    assert order_problem(view, ["a", "b"], addresses) is None
    swapped = order_problem(view, ["b", "a"], addresses)
    assert swapped is not None and "postgres target 'a'" in swapped and "node order" in swapped
    assert order_problem(view, ["a"], addresses) is None  # node 1 unlisted: no claim on it
