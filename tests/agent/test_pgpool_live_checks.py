"""Plugin mode's Pgpool pass: Pgpool's view + kyoten's own live checks + sr-check columns read
in the background, against real PostgreSQL 15 and Pgpool-II 4.3 on loopback."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kyoten.agent.collector import Collector
from kyoten.agent.config import load_config
from kyoten.agent.errors import ConfigError

from .helpers import assert_catalogue_shape, family, wait_until

pytestmark = pytest.mark.integration

LIVE = ("node_id", "backend", "status", "pg_status", "role", "pg_role", "drift", "is_primary")


@pytest.fixture
def collectors(kyoten_config: Path) -> Iterator[tuple[Collector, Collector]]:
    """(plugin-mode collector, UserParameter-mode collector) on the shared cluster."""
    cfg = load_config(str(kyoten_config))
    plugin, oneshot = Collector(cfg, persistent=True), Collector(cfg)
    yield plugin, oneshot
    plugin.close()
    oneshot.close()


def snap(c: Collector, target: str) -> dict[str, Any]:
    return json.loads(c.get("kyoten.pgpool", [target]))  # type: ignore[no-any-return]


def view(obj: dict[str, Any]) -> list[tuple[Any, ...]]:
    return [tuple(b[k] for k in LIVE) for b in obj["backends"]]


def test_plugin_mode_checks_backends_itself_and_agrees_with_pgpool(
    cluster: Any, collectors: tuple[Collector, Collector]
) -> None:
    plugin, oneshot = collectors
    for target in ("pool-a", "pool-b"):
        fast, slow = snap(plugin, target), snap(oneshot, target)
        assert (fast["live_checks"], slow["live_checks"]) == ("kyoten", "pgpool")
        assert_catalogue_shape(fast, family("kyoten.pgpool"))
        assert view(fast) == view(slow)
        assert [b["pg_role"] for b in fast["backends"]] == ["primary", "standby"]
        # the first poll reads the sr-check columns itself, so they are there at once
        assert fast["backends"][1]["replication_state"] == "streaming"
        assert 0 <= fast["replication_age"] < 1 and slow["replication_age"] == 0


def test_plugin_mode_sees_drift(cluster: Any, collectors: tuple[Collector, Collector]) -> None:
    plugin, _ = collectors
    cluster.pool_b.hold_down([1])
    try:
        node = snap(plugin, "pool-b")["backends"][1]
        assert (node["status"], node["pg_status"], node["drift"]) == (3, 1, 1)
    finally:
        cluster.pool_b.stop()
        cluster.pool_b.start()
    assert snap(plugin, "pool-b")["drift_count"] == 0


def edited(config: Path, tmp_path: Path, old: str, new: str) -> Collector:
    """A plugin-mode collector on a copy of ``config`` with ``old`` replaced by ``new``."""
    text = config.read_text()
    assert old in text
    (tmp_path / "kyoten.toml").write_text(text.replace(old, new))
    return Collector(load_config(str(tmp_path / "kyoten.toml")), persistent=True)


def test_sr_check_columns_are_refreshed_in_the_background(
    cluster: Any, kyoten_config: Path, tmp_path: Path
) -> None:
    plugin = edited(
        kyoten_config, tmp_path, "[pgpool.pool-a]\n", "[pgpool.pool-a]\nreplication_refresh = 1\n"
    )
    try:
        snap(plugin, "pool-a")
        time.sleep(2.5)
        # without the background thread the reading would now be 2.5 s old
        assert snap(plugin, "pool-a")["replication_age"] < 1.5
    finally:
        plugin.close()


def test_a_backend_not_listed_leaves_the_live_checks_to_pgpool(
    cluster: Any, kyoten_config: Path, tmp_path: Path
) -> None:
    in_order = 'backends = ["site-a", "site-b"]'
    plugin = edited(kyoten_config, tmp_path, in_order, 'backends = ["site-a"]')
    try:
        p = snap(plugin, "pool-a")
    finally:
        plugin.close()
    assert p["live_checks"] == "pgpool" and p["replication_age"] == 0
    assert [b["pg_role"] for b in p["backends"]] == ["primary", "standby"]


def test_backends_listed_out_of_order_are_refused(
    cluster: Any, kyoten_config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    in_order = 'backends = ["site-a", "site-b"]'
    plugin = edited(kyoten_config, tmp_path, in_order, 'backends = ["site-b", "site-a"]')
    try:
        with pytest.raises(ConfigError, match="list them in node order"):
            plugin.get("kyoten.pgpool", ["pool-a"])
    finally:
        plugin.close()
    # and `kyoten check-config --connect` says so before the agent does
    from kyoten.agent.commands import cmd_check_config

    assert cmd_check_config(["--config", str(tmp_path / "kyoten.toml"), "--connect"]) == 1
    out = capsys.readouterr().out
    assert "pool-a" in out and "list them in node order" in out and "site-a" in out


def test_plugin_mode_sees_promotion_and_a_dead_standby(
    cluster_factory: Callable[[], Any],
) -> None:
    c = cluster_factory()
    plugin = Collector(
        load_config(str(c.write_config(c.primary.datadir.parent.parent / "cfg"))), persistent=True
    )
    try:
        assert snap(plugin, "pool-a")["pg_primaries"] == 1  # connections kept from here on
        c.standby.promote()
        p = wait_until(
            lambda: (o := snap(plugin, "pool-a"))["pg_primaries"] == 2 and o, "two live primaries"
        )
        assert [b["pg_role"] for b in p["backends"]] == ["primary", "primary"]
        assert [b["role"] for b in p["backends"]] == ["primary", "standby"]  # Pgpool's view
        c.standby.stop("immediate")
        # the kept connection breaks; the retry on a fresh one is refused: down, not unknown
        node = snap(plugin, "pool-a")["backends"][1]
        assert (node["pg_status"], node["pg_role"]) == (0, "unknown")
    finally:
        plugin.close()


def test_a_frozen_backend_is_unknown_and_does_not_cost_the_poll(
    cluster: Any, collectors: tuple[Collector, Collector]
) -> None:
    """SHOW POOL_NODES would wait on a frozen backend; plugin mode answers with Pgpool's view,
    the frozen backend 'unknown' (its kept connection was cut at half the deadline)."""
    plugin, _ = collectors
    snap(plugin, "pool-a")  # connections kept from here on
    site_b = plugin.config.postgres["site-b"]
    with plugin.connector.target("pg", site_b, None, time.monotonic() + 5) as conn:
        backend = int(conn.query("SELECT pg_backend_pid() AS pid")[0]["pid"])
    os.kill(backend, signal.SIGSTOP)
    try:
        start = time.monotonic()
        p = json.loads(plugin.get("kyoten.pgpool", ["pool-a"], 2.0))
        took = time.monotonic() - start
    finally:
        os.kill(backend, signal.SIGCONT)
    assert took < 1.6
    assert [b["pg_status"] for b in p["backends"]] == [1, 2]
    assert [b["status"] for b in p["backends"]] == [2, 2] and p["children_busy"] is not None
    fresh = snap(plugin, "pool-a")  # the cut connection is replaced on the next poll
    assert [b["pg_status"] for b in fresh["backends"]] == [1, 1]
