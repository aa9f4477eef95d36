"""Notifications per incident: what each demo fault sends people, without and with grouping.

"One incident, one conversation" (``group:`` on a channel, kyoten.alerting.grouping) is measured
here on the real lab: every ``kyoten demo fault`` is injected, detected by the real Zabbix 6.0,
delivered by the bridge to the SMTP sink and the Slack fake, repaired, and the mails and Slack
messages it caused from injection to the all-clear are counted with the threads they form
(kyoten.shell.lab.inbox). The reference is the same fault with grouping switched off on both
channels — a message per event, as before grouping existed.

Run as root on a running demo (``kyoten demo up``; it uses the demo's fixed ports):
``.venv/bin/python bench/notifications.py [--faults a,b] [--only grouped|ungrouped]
[--screenshots DIR]``. Takes
about two minutes per fault and mode. Prints one row per fault: mails and Slack messages with
their threads, ungrouped then grouped. The bridge is restarted with grouping off for the
reference and restored to the demo's own configuration (grouping on) at the end.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from pathlib import Path

from kyoten.alerting.canary_template import TRIGGER
from kyoten.shell.lab import inbox
from kyoten.shell.lab.demo import BRIDGE_FAULTS, DEFAULT_DIR, FAULTS, GROUP_WINDOW, Demo

KYOTEN = str(Path(sys.executable).with_name("kyoten"))
CANARY = TRIGGER  # the canary's problem opens and closes every canary interval
QUIET = GROUP_WINDOW + 10.0  # seconds without a message before a fault
LINE = re.compile(
    r"notifications for this fault: mail (\d+) in (\d+) thread\(s\), "
    r"Slack (\d+) message\(s\) in (\d+) thread\(s\)"
)


def restart_bridge(demo: Demo, grouped: bool) -> None:
    """The demo's bridge, with its own configuration or with ``group`` removed."""
    demo.stop_daemon("bridge")
    conf = demo.root / "bridge" / "bridge.yaml"
    doc = json.loads(demo.bridge_config())  # the demo writes JSON, which is YAML
    if not grouped:
        for channel in doc["channels"].values():
            channel.pop("group", None)
    conf.write_text(json.dumps(doc, indent=2))
    demo.daemon("bridge", [KYOTEN, "bridge", "serve", "--config", str(conf)], demo.p.bridge)
    time.sleep(5)  # Socket Mode connects, the canary proves the path again


def calm(demo: Demo, timeout: float = 300) -> None:
    """``kyoten demo up`` (it repairs what a fault left behind), then wait until no problem is
    open, and past the demo's group window since the last message."""
    subprocess.run(
        [KYOTEN, "demo", "--dir", str(demo.root), "up"], capture_output=True, timeout=900
    )
    end = time.monotonic() + timeout
    # every problem closed, change events (Information, closed after the demo's 2-minute
    # hold) too: an incident with an open member takes the next fault's events as its own
    while [p for p in demo.problems() if p != CANARY] and time.monotonic() < end:
        time.sleep(5)
    time.sleep(20)
    # the demo's incidents take members for 60 s after their last message: past that, the
    # next fault starts its own conversation (what a fault after a quiet spell does)
    while time.time() - last_message(demo) < QUIET and time.monotonic() < end:
        time.sleep(5)


def last_message(demo: Demo) -> float:
    """When the bridge last sent people anything (0 if never)."""
    mails = inbox.read_mails(demo.root / "mail" / "Maildir")
    calls = inbox.read_slack(demo.root / "slack-calls.jsonl")
    return max([m.at for m in mails] + [c.at for c in calls if c.method in inbox.POSTS] + [0.0])


def run_fault(
    root: Path, name: str, screenshots: Path | None = None
) -> tuple[int, int, int, int] | str:
    """(mails, mail threads, Slack messages, Slack threads) of one fault, or why not."""
    shots = ["--screenshots", str(screenshots)] if screenshots is not None else []
    out = subprocess.run(
        [KYOTEN, "demo", "--dir", str(root), "fault", name, "--timeout", "240", *shots],
        capture_output=True,
        text=True,
        timeout=900,
    )
    if screenshots is not None:  # what the fault printed (tower, problems), beside its pictures
        screenshots.mkdir(parents=True, exist_ok=True)
        (screenshots / f"{name}.txt").write_text(out.stdout + out.stderr)
    found = LINE.search(out.stdout)
    if out.returncode != 0 or found is None:
        return (out.stderr or out.stdout).strip().splitlines()[-1][:80]
    a, b, c, d = (int(g) for g in found.groups())
    return a, b, c, d


def cell(result: tuple[int, int, int, int] | str | None) -> str:
    if result is None:
        return "not run"
    if isinstance(result, str):
        return f"failed: {result}"
    mails, mt, slack, st = result
    return f"{mails} ({mt}) / {slack} ({st})"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dir", type=Path, default=DEFAULT_DIR, help="the demo's directory")
    p.add_argument("--faults", default=",".join(FAULTS + BRIDGE_FAULTS))
    p.add_argument("--only", choices=("grouped", "ungrouped"))
    p.add_argument(
        "--screenshots", type=Path, metavar="DIR", help="NOC dashboard and map per grouped fault"
    )
    args = p.parse_args()
    demo = Demo(args.dir)
    faults = [f for f in args.faults.split(",") if f]
    modes = [m for m in ("ungrouped", "grouped") if args.only in (None, m)]
    results: dict[tuple[str, str], tuple[int, int, int, int] | str] = {}
    try:
        for mode in modes:
            restart_bridge(demo, grouped=mode == "grouped")
            for name in faults:
                calm(demo)
                print(f"{mode:9} {name} ...", end="", flush=True)
                shots = args.screenshots if mode == "grouped" else None
                results[mode, name] = run_fault(args.dir, name, shots)
                print(f" {cell(results[mode, name])}", flush=True)
    finally:
        restart_bridge(demo, grouped=True)
    print()
    print("mails (threads) / Slack messages (threads), from injection to the all-clear")
    print(f"| {'demo fault':20} | {'reference: ungrouped':26} | {'grouped':26} |")
    print(f"|{'-' * 22}|{'-' * 28}|{'-' * 28}|")
    for name in faults:
        before, after = results.get(("ungrouped", name)), results.get(("grouped", name))
        print(f"| {name:20} | {cell(before):26} | {cell(after):26} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
