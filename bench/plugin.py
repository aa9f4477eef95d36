#!/usr/bin/env python3
"""Benchmark of kyoten as an agent 2 loadable plugin, through the real zabbix_agent2.

Prints, in one run, p50/p90 of (each sample = one passive check via zabbix_utils.Getter, so the
agent's own work and the TCP round trip are included):
  * the full PostgreSQL snapshot (kyoten.pg[site-a]: primary with a streaming standby and a
    slot) and the Pgpool-II snapshot (kyoten.pgpool[pool-a]) in plugin mode;
  * the same two keys in UserParameter mode (``kyoten get`` started per poll);
  * one psql UserParameter item as the reference: for the Pgpool snapshot the cheapest psql
    item on the same Pgpool (SHOW POOL_VERSION, which Pgpool answers itself), the item such a
    snapshot replaces; printed beside it, the cheapest psql item of all (SELECT
    pg_is_in_recovery() on PostgreSQL, no Pgpool in the way) and the item pg_monz users run for
    Pgpool (psql SHOW POOL_NODES through Pgpool);
and the plugin process's RSS along 10,000 mixed requests. The lab's kyoten.toml lists each
Pgpool's backends, so in plugin mode the Pgpool snapshot is Pgpool's own view plus the plugin's
live checks over its kept connections (no SHOW POOL_NODES on the poll path); the agent's own
round trip (agent.ping) is printed as the floor.

Goals: PostgreSQL snapshot p50 <= 2 ms, Pgpool snapshot p50 <= 5 ms (and >= 10x
faster than one psql item: the verdict compares it with one psql item on the same Pgpool), RSS
<= 60 MB and flat.

Run as root with the Debian packages installed:  .venv/bin/python bench/plugin.py
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

from kyoten.agent.export.userparameters import render_userparameters
from kyoten.shell.lab import agent2 as lab
from kyoten.shell.lab.cluster import build_cluster
from kyoten.shell.lab.postgres import MONITOR_USER, pg_bindir
from measure import agent_check, row, timed
from zabbix_utils import Getter

PG_KEY = "kyoten.pg[site-a]"
POOL_KEY = "kyoten.pgpool[pool-a]"
RSS_MIX = [PG_KEY, POOL_KEY, "kyoten.pg[site-b]", "kyoten.pg.standbys[site-a]", "kyoten.cross"]


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("-n", type=int, default=1000, help="samples per plugin-mode figure")
    ap.add_argument("--n-classic", type=int, default=100, help="samples per UserParameter figure")
    ap.add_argument("--rss-requests", type=int, default=10_000)
    args = ap.parse_args()
    if not lab.agent2_available():
        print("needs root, user zabbix, zabbix_agent2 and a zabbix-executable interpreter")
        return 2
    root = lab.make_root("kyoten-bench-plugin-")
    cluster = build_cluster(root / "cluster")
    agents: list[lab.Agent2] = []
    try:
        config = cluster.write_config(root / "cfg")
        plugin_dir = root / "agent-plugin"
        classic_dir = root / "agent-userparameter"
        for d in (plugin_dir, classic_dir):
            d.mkdir(mode=0o755)
            lab.chown_to_zabbix(d)
        plugin = lab.Agent2(
            plugin_dir,
            [
                f"Plugins.Kyoten.System.Path={lab.console_script('kyoten-agent2-plugin')}",
                f"Plugins.Kyoten.Config={config}",
            ],
        )
        psql = pg_bindir() / "psql"
        ref = (
            f"UserParameter=ref.psql.recovery,{psql} -X -qtA -h 127.0.0.1 "
            f"-p {cluster.primary.port} -U {MONITOR_USER} -d postgres "
            "-c 'SELECT pg_is_in_recovery()'"
        )
        # the cheapest psql item on a Pgpool: a statement Pgpool answers without a backend
        pool_ref = (
            f"UserParameter=ref.psql.pool_version,{psql} -X -qtA -h 127.0.0.1 "
            f"-p {cluster.pool_a.port} -U {MONITOR_USER} -d postgres -c 'SHOW POOL_VERSION'"
        )
        # what pg_monz's Pgpool items do: psql through Pgpool, SHOW POOL_NODES
        monz = (
            f"UserParameter=ref.psql.pool_nodes,{psql} -X -qtA -h 127.0.0.1 "
            f"-p {cluster.pool_a.port} -U {MONITOR_USER} -d postgres -c 'SHOW POOL_NODES'"
        )
        userparams = render_userparameters(str(lab.console_script("kyoten")), str(config))
        classic = lab.Agent2(
            classic_dir, [*userparams.splitlines(), ref, pool_ref, monz], timeout=10
        )
        agents += [plugin.start(), classic.start()]
        getp = Getter(host=lab.HOST, port=plugin.port, timeout=15)
        getc = Getter(host=lab.HOST, port=classic.port, timeout=15)
        cpus = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
        print(f"kyoten agent 2 plugin benchmark ({time.strftime('%Y-%m-%d %H:%M')}, {cpus} CPUs)")
        print("Through zabbix_agent2 6.0.14, one Getter passive check per sample:")

        def p50(label: str, key: str, n: int, warmup: int) -> float:
            getter = getp if label.startswith("plugin") else getc
            return row(f"{label} {key}", timed(agent_check(getter, key), n, warmup), 52)[0]

        floor = p50("plugin agent ", "agent.ping", args.n, 5)  # the agent's own round trip
        pg_plugin = p50("plugin       ", PG_KEY, args.n, 5)
        pool_plugin = p50("plugin       ", POOL_KEY, args.n, 5)
        pg_classic = p50("UserParameter", PG_KEY, args.n_classic, 2)
        pool_classic = p50("UserParameter", POOL_KEY, args.n_classic, 2)
        psql_ref = p50("UserParameter", "ref.psql.recovery", args.n_classic, 2)  # psql
        pool_ref_ms = p50("UserParameter", "ref.psql.pool_version", args.n_classic, 2)
        monz_ref = p50("UserParameter", "ref.psql.pool_nodes", args.n_classic, 2)
        print(
            f"  -> PostgreSQL snapshot p50 {pg_plugin:.2f} ms "
            f"(goal <= 2: {verdict(pg_plugin <= 2)}), "
            f"{pg_classic / pg_plugin:.0f}x faster than UserParameter mode"
        )
        print(
            f"  -> Pgpool snapshot p50 {pool_plugin:.2f} ms (goal <= 5: "
            f"{verdict(pool_plugin <= 5)}), {pool_ref_ms / pool_plugin:.1f}x faster than one "
            f"psql item on the same Pgpool (goal >= 10: "
            f"{verdict(pool_ref_ms / pool_plugin >= 10)}), "
            f"{pool_classic / pool_plugin:.0f}x faster than UserParameter mode"
        )
        print(
            f"     beside it: {psql_ref / pool_plugin:.1f}x faster than the cheapest psql item "
            f"of all (SELECT pg_is_in_recovery() on PostgreSQL), "
            f"{monz_ref / pool_plugin:.0f}x faster than pg_monz's psql SHOW POOL_NODES item"
        )
        print(
            f"  -> of which the agent's own round trip (agent.ping) is {floor:.2f} ms: the "
            f"plugin adds {pg_plugin - floor:.2f} ms (PostgreSQL), "
            f"{pool_plugin - floor:.2f} ms (Pgpool)"
        )

        (pid,) = plugin.children()
        calls = [agent_check(getp, key) for key in RSS_MIX]
        samples = [(0, rss_kib(pid))]
        step = max(args.rss_requests // 10, 1)
        t0 = time.perf_counter()
        for i in range(1, args.rss_requests + 1):
            calls[i % len(calls)]()
            if i % step == 0:
                samples.append((i, rss_kib(pid)))
        took = time.perf_counter() - t0
        if plugin.children() != [pid]:
            raise RuntimeError("the plugin process changed during the run")
        mib = [kib / 1024 for _, kib in samples]
        print(
            f"Plugin RSS over {args.rss_requests} requests ({', '.join(RSS_MIX)}; "
            f"{took:.1f} s): " + " ".join(f"{m:.1f}" for m in mib) + " MiB"
        )
        growth = mib[-1] - mib[1] if len(mib) > 2 else 0.0
        print(
            f"  -> final {mib[-1]:.1f} MiB (goal <= 60: {verdict(mib[-1] <= 60)}), "
            f"growth after the first {step} requests {growth:+.2f} MiB "
            f"(flat: {verdict(abs(growth) <= 2)})"
        )
        if "panic" in plugin.log():
            raise RuntimeError(f"the plugin agent panicked: {plugin.tail()}")
    finally:
        for agent in agents:
            agent.stop()
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
