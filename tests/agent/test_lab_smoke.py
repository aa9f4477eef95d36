"""The harness itself: both Pgpools see both backends up, the standby streams."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.integration


def test_cluster_is_up(cluster) -> None:  # type: ignore[no-untyped-def]
    assert cluster.primary.value("SELECT pg_is_in_recovery()") is False
    assert cluster.standby.value("SELECT pg_is_in_recovery()") is True
    for pool in (cluster.pool_a, cluster.pool_b):
        assert pool.node_status() == ["up", "up"] or set(pool.node_status()) <= {"up", "waiting"}
