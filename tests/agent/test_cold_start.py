"""``kyoten get``'s own connection path: libpq through ctypes, no psycopg, same answers.

UserParameter mode starts a process per poll, and importing psycopg cost more CPU than the
rest of the call (bench/collector.py prints the figures). These tests hold the path to that:
psycopg stays out, the deadline and the error messages hold without it, and a snapshot taken
this way is the one psycopg's path takes.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from kyoten.agent.collector import Collector
from kyoten.agent.config import Endpoint, load_config, parse_config
from kyoten.agent.errors import ConnectError, TargetError
from kyoten.agent.sources import pq
from kyoten.agent.sources.connect import Connector
from kyoten.agent.sources.oneshot import OneShot, make_connector


def loaded_by_get(
    config: Path, key: str, env: dict[str, str] | None = None
) -> tuple[Any, set[str]]:
    """Run ``kyoten get`` under ``python -X importtime``: (its answer, every module it loaded)."""
    out = subprocess.run(
        [
            sys.executable,
            "-X",
            "importtime",
            "-m",
            "kyoten.shell.cli",
            "get",
            key,
            "--config",
            str(config),
        ],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, **(env or {})},
    )
    modules = {
        line.rsplit("|", 1)[1].strip()
        for line in out.stderr.splitlines()
        if line.startswith("import time:") and line.count("|") == 2
    }
    return json.loads(out.stdout), modules


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_get_does_not_import_psycopg(tmp_path: Path) -> None:
    config = tmp_path / "kyoten.toml"
    port = closed_port()
    config.write_text(f'[postgres.a]\nhost = "127.0.0.1"\nport = {port}\n')
    answer, modules = loaded_by_get(config, "kyoten.pg[a]")
    assert answer["error"].startswith(f"PostgreSQL a (127.0.0.1:{port}): "), answer
    assert "refused" in answer["error"]
    assert "kyoten.agent.sources.pq" in modules  # the path really ran
    assert not {m for m in modules if m.split(".")[0] in ("psycopg", "psycopg_binary")}
    assert "argparse" not in modules and "orjson" not in modules
    # without a loadable libpq, psycopg's path answers the same way
    answer, modules = loaded_by_get(config, "kyoten.pg[a]", {"KYOTEN_LIBPQ": "psycopg"})
    assert "psycopg" in modules and "refused" in answer["error"]


def test_make_connector_picks_libpq_for_one_shot_and_psycopg_to_keep() -> None:
    assert pq.library() is not None  # libpq5 (psql's) is installed with the lab
    assert isinstance(make_connector(persistent=False, connect_timeout=2), OneShot)
    assert isinstance(make_connector(persistent=True, connect_timeout=2), Connector)


class _Target:
    def __init__(self, port: int) -> None:
        self.name = "t"
        self.endpoint = Endpoint("127.0.0.1", port, "postgres", "kyoten")


def test_a_server_that_never_answers_times_out_at_the_deadline() -> None:
    """The connect_timeout is kyoten's to enforce with libpq's non-blocking connect."""
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)  # the kernel accepts; nobody ever speaks
        start = time.monotonic()
        with (
            pytest.raises(ConnectError, match=r"PostgreSQL t \(127.0.0.1:\d+\): timeout expired"),
            OneShot(connect_timeout=2).target(
                "pg", _Target(silent.getsockname()[1]), None, time.monotonic() + 0.5
            ),
        ):
            pass
        assert time.monotonic() - start < 1.5


@pytest.mark.integration
def test_a_query_past_the_deadline_is_cancelled(cluster: Any) -> None:
    start = time.monotonic()
    with (
        pytest.raises(TargetError, match=r"within the deadline \(query cancelled\)"),
        OneShot(connect_timeout=2).target(
            "pg", _Target(cluster.primary.port), 10.0, time.monotonic() + 0.7
        ) as session,
    ):
        session.query("SELECT pg_sleep(20)")
    assert time.monotonic() - start < 2
    # the server got the cancel request: nothing of ours is left sleeping there
    time.sleep(0.3)
    left = cluster.primary.value(
        "SELECT count(*) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(20)'"
    )
    assert left == 0


def test_a_server_error_is_a_target_error_with_the_servers_message() -> None:
    cfg = parse_config({"postgres": {"x": {"host": "127.0.0.1", "port": closed_port()}}})
    with pytest.raises(ConnectError, match=r"PostgreSQL x \(127.0.0.1:\d+\): .*refused"):
        Collector(cfg).get("kyoten.pg", ["x"])


VOLATILE = {"duration", "wal_lsn", "replay_delay", "receiver_last_msg_age", "replication_age"}


def stable(obj: Any) -> Any:
    """A snapshot without what moves between two polls (positions, ages, timings)."""
    if isinstance(obj, dict):
        return {
            k: stable(v)
            for k, v in obj.items()
            if k not in VOLATILE
            and not k.endswith(("_lag", "_lag_bytes", "_age", "hc_total"))
            and not k.startswith("hc_")
        }
    if isinstance(obj, list):
        return [stable(v) for v in obj]
    return obj


@pytest.mark.integration
def test_libpq_and_psycopg_paths_give_the_same_snapshots(
    cluster: Any, kyoten_config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = load_config(str(kyoten_config))
    keys = [
        ("kyoten.pg", ["site-a"]),
        ("kyoten.pg", ["site-b"]),
        ("kyoten.pgpool", ["pool-a"]),
        ("kyoten.pg.standbys", ["site-a"]),
    ]
    one_shot = Collector(config)
    assert isinstance(one_shot.connector, OneShot)
    ours = [json.loads(one_shot.get(k, p)) for k, p in keys]
    via_psycopg = Collector(config)
    via_psycopg.connector = Connector(persistent=False, connect_timeout=config.connect_timeout)
    theirs = [json.loads(via_psycopg.get(k, p)) for k, p in keys]
    assert stable(ours) == stable(theirs)
    a = ours[0]
    assert (a["in_recovery"], a["server_version"] >= 150000, a["standbys"][0]["connected"]) == (
        0,
        True,
        1,
    )
    assert isinstance(a["timeline"], int) and isinstance(a["slots"][0]["active"], int)
    # both paths share the text conversion: hold it to what the servers are, too
    b = ours[1]
    assert (b["in_recovery"], b["receiver_state"], b["replay_paused"]) == (1, 1, 0)
    assert b["receiver_sender"] == f"127.0.0.1:{cluster.primary.port}"
    assert a["slots"][0]["slot_name"] == "site_b" and a["slots"][0]["active"] == 1


def test_the_agents_forms_of_get_are_read_without_argparse() -> None:
    from kyoten.agent.commands import get_arguments

    assert get_arguments(["kyoten.pg[a]"]) == ("kyoten.pg[a]", None)
    assert get_arguments(["--config", "/c.toml", "kyoten.pg[a]"]) == ("kyoten.pg[a]", "/c.toml")
    assert get_arguments(["kyoten.pg[a]", "--config=/c.toml"]) == ("kyoten.pg[a]", "/c.toml")
    # anything else goes to argparse (help, usage errors)
    for other in ([], ["-h"], ["a", "b"], ["--config"], ["--confg", "x", "k"]):
        assert get_arguments(other) is None
