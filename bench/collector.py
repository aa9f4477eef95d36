#!/usr/bin/env python3
"""Collector cost on the real harness: figures, not a pass/fail test.

Prints, in one run:
  * cold start, what UserParameter mode costs per poll: the CPU time (user + system, of the
    ``sh -c`` the agent runs and everything it starts) of ``kyoten get kyoten.pg[site-a]``
    beside one psql item on the same server, median and p90, with their ratio (goals: <= 50 ms
    and <= 1x psql), and where a call's import time goes (``python -X importtime``); as
    installed, that is the ``kyoten-get`` launcher the Debian package's UserParameters run;
  * p50/p90 of the full PostgreSQL snapshot and the Pgpool-II snapshot through the real
    zabbix_agent2 in UserParameter mode (``kyoten-get`` as installed), next to one psql-based
    UserParameter item (how the official "PostgreSQL by Zabbix agent" template and pg_monz
    collect; that template runs five such items per poll for replication alone);
  * the PostgreSQL snapshot with 1 and with 17 walsenders (16 extra ``pg_receivewal`` clients
    on slots), in-process on a kept connection, and through the agent.

kyoten's modules are byte-compiled first, as the Debian package does at install: the agent
runs ``kyoten get`` as user zabbix, which cannot write ``__pycache__`` in a source tree, and a
call that compiles every module from source measures the compiler, not kyoten.

Run as root on a machine with the Debian packages installed:  .venv/bin/python bench/collector.py
"""

from __future__ import annotations

import argparse
import compileall
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from kyoten.agent.collector import Collector
from kyoten.agent.config import load_config
from kyoten.agent.export.userparameters import render_launcher, render_userparameters
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
    ap.add_argument("--cold", type=int, default=60, help="samples per cold-start CPU figure")
    args = ap.parse_args()
    compile_kyoten()
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
        installed = installed_layout(root)
        agent = Agent2(
            root / "agent2",
            [*render_userparameters(installed, str(config)).splitlines(), ref],
            timeout=10,
        )
        agent.start()
        getter = Getter(host="127.0.0.1", port=agent.port, timeout=15)
        print(
            f"kyoten collector benchmark ({time.strftime('%Y-%m-%d %H:%M')}, "
            f"{subprocess.run(['nproc'], capture_output=True, text=True).stdout.strip()} CPUs)"
        )
        cold_start(kyoten, installed, str(config), ref.split(",", 1)[1], args.cold)
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


def compile_kyoten() -> None:
    """Byte-compile kyoten's own modules (in place; ``__pycache__`` is ignored by git)."""
    top = Path(__file__).resolve().parent.parent
    for part in ("agent", "shell", "common"):
        compileall.compile_dir(str(top / part), quiet=1)


def cpu_ms(command: str, n: int) -> list[float]:
    """CPU time (user + system, ms) of ``sh -c command`` and all it starts, ``n`` times."""
    out = []
    for _ in range(n + 1):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        done = subprocess.run(["sh", "-c", command], capture_output=True, text=True)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if done.returncode != 0 or done.stderr or done.stdout.startswith('{"error"'):
            raise RuntimeError(f"{command}: {done.stdout or done.stderr}")
        spent = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        out.append(spent * 1000)
    return out[1:]  # the first one warms the page cache


def installed_layout(root: Path) -> str:
    """The ``kyoten-get`` launcher of a regular (non-editable) install, as the .deb has it.

    The development venv's editable install adds an import hook that site loads in every
    process (pathlib, importlib.util, ...); a packaged install has none, and its
    UserParameters run ``bin/kyoten-get`` (``python -IS``: no site at all), which
    packaging/build-deb.sh writes with ``kyoten export launcher``. Here: a venv whose
    site-packages holds kyoten under its import name (symbolic links to the folders), the
    development venv's packages in a .pth file (which only the usual start-up reads), the
    console script pip writes and the launcher as the package's build writes it.
    """
    top = Path(__file__).resolve().parent.parent
    venv = root / "installed"
    subprocess.run(["/usr/bin/python3", "-m", "venv", "--without-pip", str(venv)], check=True)
    pkg = root / "installed-pkg" / "kyoten"
    pkg.mkdir(parents=True)
    for part in ("agent", "alerting", "hardware", "shell", "common"):
        (pkg / part).symlink_to(top / part)

    def purelib(python: str) -> str:
        code = "import sysconfig; print(sysconfig.get_path('purelib'))"
        return subprocess.run(
            [python, "-c", code], check=True, capture_output=True, text=True
        ).stdout.strip()

    deps = purelib(sys.executable)
    site_packages = Path(purelib(str(venv / "bin/python")))
    (site_packages / "kyoten").symlink_to(pkg)
    (site_packages / "kyoten-bench.pth").write_text(f"{deps}\n")
    script = venv / "bin/kyoten"
    script.write_text(
        f"#!{venv / 'bin/python3'}\nimport re\nimport sys\nfrom kyoten.shell.cli import main\n"
        "if __name__ == '__main__':\n    sys.exit(main())\n"
    )
    script.chmod(0o755)
    launcher = venv / "bin/kyoten-get"
    launcher.write_text(render_launcher(str(venv / "bin/python")))
    launcher.chmod(0o755)
    return str(launcher)


def cold_start(kyoten: str, installed: str, config: str, psql_item: str, n: int) -> None:
    """``kyoten get`` for one PostgreSQL target against one psql item, in CPU time."""
    key = "'kyoten.pg[site-a]'"
    print(f"Cold start, CPU per call (user + system of the sh -c the agent runs, n={n}):")
    figures = {}
    for label, command in (
        ("kyoten get kyoten.pg[site-a], development venv", f"{kyoten} get --config {config} {key}"),
        ("kyoten-get kyoten.pg[site-a], as installed", f"{installed} --config {config} {key}"),
        ("one psql item (reference)", psql_item),
    ):
        samples = cpu_ms(command, n)
        p50, p90 = statistics.median(samples), statistics.quantiles(samples, n=10)[8]
        figures[label.split(",")[-1].strip()] = p50
        print(f"  {label:58} p50 {p50:8.2f} ms   p90 {p90:8.2f} ms")
    psql_p50 = figures["one psql item (reference)"]
    for where in ("development venv", "as installed"):
        p50 = figures[where]
        print(
            f"  -> {where}: kyoten get p50 {p50:.1f} ms CPU (goal <= 50: "
            f"{'met' if p50 <= 50 else 'NOT met'}), {p50 / psql_p50:.2f}x one psql item "
            f"(goal <= 1: {'met' if p50 <= psql_p50 else 'NOT met'})"
        )
    import_breakdown(installed, config)


def python_of(script: str) -> list[str]:
    """The interpreter of a script and its options (its #! line)."""
    return Path(script).read_text().splitlines()[0].removeprefix("#!").split()


def import_breakdown(kyoten: str, config: str, runs: int = 5) -> None:
    """Where a ``kyoten get`` spends its import time: python -X importtime, median of runs."""
    per_run: list[dict[str, tuple[int, int]]] = []
    for _ in range(runs):
        done = subprocess.run(
            [
                *python_of(kyoten),
                "-X",
                "importtime",
                kyoten,
                "--config",
                config,
                "kyoten.pg[site-a]",
            ],
            capture_output=True,
            text=True,
        )
        seen: dict[str, tuple[int, int]] = {}
        for line in done.stderr.splitlines():
            m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)", line)
            if m:  # module -> (cumulative us, depth)
                seen[m.group(4)] = (int(m.group(2)), len(m.group(3)) // 2)
        per_run.append(seen)

    def cum(name: str) -> float:
        return statistics.median(r[name][0] for r in per_run if name in r) / 1000

    top = [n for n, (_, depth) in per_run[0].items() if depth == 0]
    total = sum(cum(n) for n in top)
    print(
        f"  import time of one call as installed (python -X importtime, median of {runs}; "
        f"the instrumentation inflates it): {total:.1f} ms"
    )
    for name in sorted(top, key=cum, reverse=True)[:8]:
        print(f"    {cum(name):6.1f} ms  {name}")
    inner = [n for n, (_, depth) in per_run[0].items() if depth == 1]
    kyoten_parts = sorted(
        (
            n
            for n in inner
            if n.startswith("kyoten.")
            or n in ("orjson", "dataclasses", "typing", "ctypes", "collections")
        ),
        key=cum,
        reverse=True,
    )
    print("    of which, inside kyoten.agent.commands:")
    for name in kyoten_parts[:10]:
        print(f"    {cum(name):6.1f} ms    {name}")
    left_out = ("site", "typing", "re", "json", "tomllib", "threading", "psycopg")
    loaded = [name for name in left_out if name in per_run[0]]
    print(
        f"    ({len(per_run[0])} modules; of {', '.join(left_out)}: "
        f"{', '.join(loaded) or 'none'} loaded)"
    )


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
