"""The lab harness itself (``kyoten.shell.lab``): the primary and the standby are what their
names say, the standby streams from the primary, and both Pgpools see both backends up, in
node order, with the right roles."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from kyoten.shell.lab.cluster import Cluster
from kyoten.shell.lab.pgpool import Pgpool
from kyoten.shell.lab.procs import wait_for
from psycopg.rows import dict_row

pytestmark = pytest.mark.integration


def pool_nodes(pool: Pgpool) -> list[dict[str, Any]]:
    """SHOW POOL_NODES as rows by column name."""
    with psycopg.connect(pool.conninfo(), autocommit=True) as conn:
        cur = psycopg.ClientCursor(conn, row_factory=dict_row)
        cur.execute("SHOW POOL_NODES")
        return cur.fetchall()


def test_cluster_is_up(cluster: Cluster) -> None:
    primary, standby = cluster.primary, cluster.standby
    assert primary.value("SELECT pg_is_in_recovery()") is False
    assert standby.value("SELECT pg_is_in_recovery()") is True

    streams = primary.sql("SELECT application_name, state FROM pg_stat_replication")
    assert streams == [(standby.name, "streaming")]
    assert standby.value("SELECT status FROM pg_stat_wal_receiver") == "streaming"

    for pool in (cluster.pool_a, cluster.pool_b):
        # Pgpool notices roles and replication through its 1 s sr_check: give it a moment
        def settled(pool: Pgpool = pool) -> bool:
            rows = pool_nodes(pool)
            return [r["role"] for r in rows] == ["primary", "standby"] and rows[1][
                "replication_state"
            ] == "streaming"

        wait_for(settled, f"{pool.name} to see a primary and a streaming standby", timeout=20)
        rows = pool_nodes(pool)
        assert [(r["node_id"], r["hostname"], int(r["port"])) for r in rows] == [
            ("0", primary.host, primary.port),
            ("1", standby.host, standby.port),
        ], f"{pool.name}: {rows}"
        assert [r["role"] for r in rows] == ["primary", "standby"], f"{pool.name}: {rows}"
        assert [r["pg_role"] for r in rows] == ["primary", "standby"], f"{pool.name}: {rows}"
        # "waiting": up, but no client has used the node since Pgpool started
        statuses = pool.node_status()
        assert len(statuses) == 2 and set(statuses) <= {"up", "waiting"}, statuses
        assert [r["pg_status"] for r in rows] == ["up", "up"], f"{pool.name}: {rows}"
        assert rows[1]["replication_state"] == "streaming", f"{pool.name}: {rows}"
