#!/usr/bin/env python3
"""Collector cost on the real harness: figures, not a pass/fail test.

Prints, in one run, p50/p90 of:
  * the full PostgreSQL snapshot and the Pgpool-II snapshot through the real zabbix_agent2
    in UserParameter mode (``kyoten get`` per poll), next to one psql-based UserParameter item
    (how the official "PostgreSQL by Zabbix agent" template and pg_monz collect; that template
    runs five such items per poll for replication alone);
  * the PostgreSQL snapshot with 1 and with 17 walsenders (16 extra ``pg_receivewal`` clients
    on slots), in-process on a kept connection, and through the agent.

Run as root on a machine with the Debian packages installed:  .venv/bin/python bench/collector.py
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from kyoten.agent.collector import Collector
from kyoten.agent.config import load_config
from kyoten.agent.export.userparameters import render_userparameters
from kyoten.shell.lab.agent2 import Agent2
from kyoten.shell.lab.cluster import build_cluster
from kyoten.shell.lab.postgres import PG_USER, REPL_USER, pg_bindir
from kyoten.shell.lab.procs import make_dir, spawn, stop_pid
from measure import agent_check, row, timed
from zabbix_utils import Getter


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("-n", type=int, default=40, help="samples per figure through the agent")
    ap.add_argument("--walsenders", type=int, default=16, help="extra pg_receivewal clients")
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="kyoten-bench-"))
    root.chmod(0o755)
    receivers: list[subprocess.Popen[bytes]] = []
    cluster = build_cluster(root)
    agent = None
    try:
        config = cluster.write_config(root / "cfg")
        psql = shutil.which("psql") or "/usr/bin/psql"
        ref = (
            f"UserParameter=ref.psql.recovery,{psql} -X -qtA -h 127.0.0.1 -p "
            f"{cluster.primary.port} -U kyoten -d postgres -c 'SELECT pg_is_in_recovery()'"
        )
        kyoten = str(Path(sys.executable).with_name("kyoten"))
        agent = Agent2(
            root / "agent2",
            [*render_userparameters(kyoten, str(config)).splitlines(), ref],
            timeout=10,
        )
        agent.start()
        getter = Getter(host="127.0.0.1", port=agent.port, timeout=15)
        print(
            f"kyoten collector benchmark ({time.strftime('%Y-%m-%d %H:%M')}, "
            f"{subprocess.run(['nproc'], capture_output=True, text=True).stdout.strip()} CPUs)"
        )
        print("Through zabbix_agent2 6.0 (UserParameter mode, one process per poll):")
        pg_full = row(
            "kyoten.pg[site-a]  full PostgreSQL snapshot",
            timed(agent_check(getter, "kyoten.pg[site-a]"), args.n),
        )
        row(
            "kyoten.pg[site-b]  standby snapshot",
            timed(agent_check(getter, "kyoten.pg[site-b]"), args.n),
        )
        row(
            "kyoten.pgpool[pool-a]  Pgpool-II snapshot",
            timed(agent_check(getter, "kyoten.pgpool[pool-a]"), args.n),
        )
        psql1 = row(
            "psql UserParameter, one value (reference)",
            timed(agent_check(getter, "ref.psql.recovery"), args.n),
        )
        print(
            f"  -> full snapshot / (5 x one psql item) = {pg_full[0] / (5 * psql1[0]):.2f} "
            "(goal <= 1)"
        )

        collector = Collector(load_config(str(config)), persistent=True)
        one = row(
            "in-process snapshot, kept connection, 1 walsender",
            timed(lambda: collector.get("kyoten.pg", ["site-a"]), 300),
        )
        receivers = start_receivewal(cluster.primary.port, root, args.walsenders)
        wait_walsenders(cluster.primary, 1 + args.walsenders)
        many = row(
            f"in-process snapshot, kept connection, {1 + args.walsenders} walsenders",
            timed(lambda: collector.get("kyoten.pg", ["site-a"]), 300),
        )
        via_agent = row(
            f"kyoten.pg[site-a] through the agent, {1 + args.walsenders} walsenders",
            timed(agent_check(getter, "kyoten.pg[site-a]"), args.n),
        )
        print(
            f"  -> {1 + args.walsenders} walsenders / 1, in-process: {many[0] / one[0]:.2f}; "
            f"through the agent: {via_agent[0] / pg_full[0]:.2f} (goal <= 2)"
        )
        collector.close()
    finally:
        for p in receivers:
            stop_pid(p.pid, "pg_receivewal")
        if agent is not None:
            agent.stop()
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)
    return 0


def start_receivewal(port: int, root: Path, count: int) -> list[subprocess.Popen[bytes]]:
    """Extra walsenders: pg_receivewal clients, each on its own slot."""
    exe = str(pg_bindir() / "pg_receivewal")
    procs = []
    for i in range(count):
        d = make_dir(root / f"receivewal-{i}", PG_USER)
        common = ["-h", "127.0.0.1", "-p", str(port), "-U", REPL_USER, "-S", f"bench_{i}"]
        subprocess.run(
            [
                "setpriv",
                f"--reuid={PG_USER}",
                f"--regid={PG_USER}",
                "--init-groups",
                exe,
                *common,
                "--create-slot",
                "--if-not-exists",
            ],
            check=True,
            capture_output=True,
        )
        procs.append(
            spawn(
                [exe, *common, "-D", str(d), "--no-loop"],
                user=PG_USER,
                log=root / f"receivewal-{i}.log",
            )
        )
    return procs


def wait_walsenders(node: object, count: int) -> None:
    from kyoten.shell.lab.postgres import PgNode

    assert isinstance(node, PgNode)
    for _ in range(200):
        if node.value("SELECT count(*) FROM pg_stat_replication") >= count:
            return
        time.sleep(0.1)
    raise RuntimeError(f"fewer than {count} walsenders came up")


if __name__ == "__main__":
    sys.exit(main())
