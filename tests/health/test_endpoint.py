"""``kyoten health`` against real PostgreSQL, Pgpool-II and a real Zabbix 6.0 frontend.

Healthy sites answer 200; each failure a GSLB must act on answers 503 naming exactly the check
that failed. Anything destructive runs on a throw-away cluster.
"""

from __future__ import annotations

import json
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from kyoten.shell.lab.procs import free_port

from tests.conftest import Cluster

from .conftest import Frontend, kyoten_binary, serve, site_config

pytestmark = pytest.mark.integration


def check_once(config: Path, site: str, api: str) -> tuple[int, dict[str, Any]]:
    """``kyoten health check --json`` as an operator (or a cron job) would run it."""
    argv = [kyoten_binary(), "health", "check", "--config", str(config), "--site", site]
    proc = subprocess.run(
        [*argv, "--zabbix-api", api, "--check-timeout", "2.5", "--json"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    return proc.returncode, json.loads(proc.stdout)


def test_both_sites_healthy_answer_200_at_once(
    cluster: Cluster, zabbix_frontend: Frontend, tmp_path: Path
) -> None:
    config = site_config(cluster, tmp_path)
    for site, role in (("site-a", "primary"), ("site-b", "standby")):
        with serve(config, site, zabbix_frontend.url, tmp_path) as ep:
            answer = ep.get()
            body = answer.json()
            assert answer.status == 200, body
            assert body["status"] == "ok" and body["failed"] == []
            assert set(body["checks"]) == {"zabbix_api", "pgpool", "postgres"}
            assert body["checks"]["zabbix_api"]["detail"].startswith("Zabbix API 6.0")
            assert f"{role} (timeline" in body["checks"]["postgres"]["detail"]
            assert (
                f"primary {cluster.primary.host}:{cluster.primary.port}"
                in (body["checks"]["pgpool"]["detail"])
            )
            # served from the last round: a probe never waits on the databases
            assert answer.seconds < 0.5
            text = ep.get("/health.txt")
            assert text.status == 200 and text.text.startswith(f"OK {site}:")
            assert ep.get("/").text == text.text


def test_unreachable_api_fails_only_the_api_check(
    cluster: Cluster, zabbix_frontend: Frontend, tmp_path: Path
) -> None:
    config = site_config(cluster, tmp_path)
    dead = f"http://127.0.0.1:{free_port()}/api_jsonrpc.php"
    rc, body = check_once(config, "site-a", dead)
    assert rc == 1
    assert body["failed"] == ["zabbix_api"]
    assert body["summary"].startswith(f"FAIL site-a: zabbix_api: {dead}: ")
    rc, body = check_once(config, "site-a", zabbix_frontend.url)
    assert rc == 0 and body["failed"] == [], body


def test_stopped_pgpool_fails_its_site_only(
    cluster_factory: Callable[[], Cluster], zabbix_frontend: Frontend, tmp_path: Path
) -> None:
    c = cluster_factory()
    config = site_config(c, tmp_path)
    with (
        serve(config, "site-a", zabbix_frontend.url, tmp_path) as a,
        serve(config, "site-b", zabbix_frontend.url, tmp_path) as b,
    ):
        a.wait_for(200, [])
        c.pool_a.stop()
        answer = a.wait_for(503, ["pgpool"])
        detail = answer.json()["checks"]["pgpool"]["detail"]
        assert detail.startswith("pool-a: ") and str(c.pool_a.port) in detail
        assert a.get("/health.txt").text.startswith("FAIL site-a: pgpool: pool-a: ")
        assert b.get().status == 200


def test_primary_down_leaves_pgpool_without_primary(
    cluster_factory: Callable[[], Cluster], zabbix_frontend: Frontend, tmp_path: Path
) -> None:
    c = cluster_factory()
    config = site_config(c, tmp_path)
    with serve(config, "site-b", zabbix_frontend.url, tmp_path) as b:
        b.wait_for(200, [])
        c.primary.stop("immediate")
        body = b.wait_for(503, ["pgpool"]).json()
        # the standby itself is sane; the site is down because nothing can write
        assert "site-b standby" in body["checks"]["postgres"]["detail"]
        assert "not compared with unreachable site-a" in body["checks"]["postgres"]["detail"]
        pool = body["checks"]["pgpool"]["detail"]
        assert "no primary backend up" in pool or "read through PCP" in pool or "refuses" in pool


def test_promoted_standby_makes_both_sites_fail(
    cluster_factory: Callable[[], Cluster], zabbix_frontend: Frontend, tmp_path: Path
) -> None:
    c = cluster_factory()
    config = site_config(c, tmp_path)
    assert check_once(config, "site-b", zabbix_frontend.url)[0] == 0
    c.standby.promote()
    for site in ("site-a", "site-b"):
        rc, body = check_once(config, site, zabbix_frontend.url)
        assert rc == 1
        assert "postgres" in body["failed"], body
        detail = body["checks"]["postgres"]["detail"]
        assert detail.startswith("two primaries: site-a (timeline 1), site-b (timeline 2)")


def test_unknown_site_is_a_usage_error(cluster: Cluster, tmp_path: Path) -> None:
    config = site_config(cluster, tmp_path)
    proc = subprocess.run(
        [kyoten_binary(), "health", "check", "--config", str(config), "--site", "site-c"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 2
    assert "no [postgres.*] and [pgpool.*] target with site = 'site-c'" in proc.stderr
    assert "site-a, site-b" in proc.stderr


def test_a_silent_api_costs_the_check_timeout_not_more(cluster: Cluster, tmp_path: Path) -> None:
    """An API that accepts connections and never answers (a hung PHP pool) fails in time."""
    config = site_config(cluster, tmp_path)
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)  # the kernel completes handshakes; nobody ever reads or answers
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/api_jsonrpc.php"
        start = time.monotonic()
        proc = subprocess.run(
            [
                *(kyoten_binary(), "health", "check", "--config", str(config)),
                *("--site", "site-a", "--zabbix-api", url, "--check-timeout", "1"),
            ],
            capture_output=True,
            text=True,
            timeout=30,
        )
        elapsed = time.monotonic() - start
    assert proc.returncode == 1
    assert proc.stdout.strip() == f"FAIL site-a: zabbix_api: {url}: no answer within 1 s"
    assert elapsed < 5, elapsed  # interpreter start + 1 s, whatever the API does
