"""Alert latency as the NOC lives it: the alert-path canary's round trip through the real lab.

Each round is one token sent by the bridge with zabbix_utils' sender to the active node of the
demo's real Zabbix 6.0 HA pair → the trapper item → the canary trigger opens a problem → the
action → the alerter runs the kyoten webhook media type → ``POST /v1/events`` on the bridge,
which matches the token. That is Zabbix event → bridge, the part of every alert's latency that
kyoten cannot see from inside the bridge; the demo's intervals (canary every 15 s, Zabbix's
default alerter) are used as they are.

Run as root on a machine with the demo's packages (``bash packaging/bootstrap.sh install``):
``.venv/bin/python bench/canary.py [--rounds 12]``. A demo already running on its fixed ports
is measured as it is; otherwise one is brought up in a temporary directory and removed after.
Prints every round trip, then p50/p99/max side by side with the reference: the canary's
interval, which an alert's round trip must stay well below for the deadline (three intervals)
to mean "broken" and not "slow".
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from kyoten.shell.lab.demo import Ports
from kyoten.shell.lab.procs import port_open

KYOTEN = str(Path(sys.executable).with_name("kyoten"))


def canary() -> dict[str, Any]:
    """The bridge's ``/health`` ``canary`` part."""
    with urllib.request.urlopen(f"http://127.0.0.1:{Ports().bridge}/health", timeout=5) as r:
        body: dict[str, Any] = json.loads(r.read())
    return body["canary"]


def collect(rounds: int, timeout: float) -> list[float]:
    """Each new round trip the bridge records, until ``rounds`` of them."""
    seen = canary()["round_trips_last_hour"]
    samples: list[float] = []
    end = time.monotonic() + timeout
    while len(samples) < rounds and time.monotonic() < end:
        time.sleep(0.5)
        c = canary()
        if c["round_trips_last_hour"] > seen:
            seen = c["round_trips_last_hour"]
            samples.append(float(c["last_round_trip_s"]))
            print(f"  round {len(samples):2}: {samples[-1]:.3f} s", flush=True)
    return samples


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rounds", type=int, default=12, help="round trips to measure (default 12)")
    args = p.parse_args()
    root: Path | None = None
    if not port_open(Ports().bridge):
        root = Path(tempfile.mkdtemp(prefix="kyoten-bench-canary-"))
        root.chmod(0o755)
        print(f"bringing the demo up in {root} ...", flush=True)
        subprocess.run([KYOTEN, "demo", "--dir", str(root), "up"], check=True, timeout=600)
    try:
        c = canary()
        interval = float(c["interval_s"])
        print(f"canary every {interval:g} s; measuring {args.rounds} round trips", flush=True)
        samples = collect(args.rounds, timeout=(args.rounds + 4) * interval + 60)
    finally:
        if root is not None:
            subprocess.run([KYOTEN, "demo", "--dir", str(root), "down", "--purge"], timeout=300)
            shutil.rmtree(root, ignore_errors=True)
    if len(samples) < 2:
        print(f"only {len(samples)} round trip(s) came back: is the alert path broken?")
        return 1
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    print()
    print(f"{'':28}{'p50':>10}{'p99':>10}{'max':>10}")
    print(f"{'Zabbix event -> bridge':28}{cuts[49]:>9.2f}s{cuts[98]:>9.2f}s{max(samples):>9.2f}s")
    print(f"{'reference: canary interval':28}{interval:>9.2f}s{interval:>9.2f}s{interval:>9.2f}s")
    verdict = "well below" if cuts[98] < interval / 3 else "NOT well below"
    print(f"p99 is {verdict} a third of the interval ({len(samples)} rounds)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
