"""The README's first command: ``kyoten demo`` brings the chain up, a fault arrives, recovers.

It runs the real console script, as an operator would after ``bootstrap.sh demo``: every
server on its fixed loopback port, state in a throw-away directory, then ``down --purge``.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kyoten.shell.lab import inbox
from kyoten.shell.lab.demo import GROUP_WINDOW, Ports
from kyoten.shell.lab.postgres import PgNode
from kyoten.shell.lab.procs import port_open

pytestmark = pytest.mark.integration
KYOTEN = str(Path(sys.executable).with_name("kyoten"))


def demo(root: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [KYOTEN, "demo", "--dir", str(root), *args], capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(scope="module")
def lab() -> Iterator[Path]:
    busy = [f"{name}:{port}" for name, port in vars(Ports()).items() if port_open(port)]
    if busy:
        pytest.skip(f"a demo (or something else) already uses its ports: {', '.join(busy)}")
    # Not under pytest's basetemp: every pytest session resets /tmp/pytest-of-root to 0700,
    # which would lock the daemons' accounts out of a demo still running.
    root = Path(tempfile.mkdtemp(prefix="kyoten-demo-test-"))
    root.chmod(0o755)
    up = demo(root, "up")
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        yield root
    finally:
        down = demo(root, "down", "--purge", timeout=300)
        shutil.rmtree(root, ignore_errors=True)
        assert down.returncode == 0, down.stdout + down.stderr


def test_up_reports_every_step_and_where_to_look(lab: Path) -> None:
    status = demo(lab, "status")
    assert status.returncode == 0
    for component in (
        "postgres site-a",
        "pgpool pool-b",
        "zabbix_server site-a",
        "frontend",
        "tower",
        "bridge",
        "zabbix_agent2",
    ):
        assert f"{component}" in status.stdout
    assert " down" not in status.stdout, status.stdout
    again = demo(lab, "up")  # idempotent: everything is running already
    assert again.returncode == 0, again.stderr
    assert "[ 9/10] First values from the agent reach Zabbix" in again.stdout
    assert "[10/10] NOC view" in again.stdout
    assert "Zabbix frontend   http://127.0.0.1:" in again.stdout


def canary_health() -> dict[str, Any]:
    with urllib.request.urlopen(f"http://127.0.0.1:{Ports().bridge}/health", timeout=5) as r:
        body: dict[str, Any] = json.loads(r.read())
    return body["canary"]


def test_calm_lab_proves_its_alert_path_and_raises_nothing(lab: Path) -> None:
    """Canaries come back through the real Zabbix HA pair; none of them reaches a person."""
    deadline = time.monotonic() + 60
    while (c := canary_health())["round_trips_last_hour"] < 2 and time.monotonic() < deadline:
        time.sleep(2)
    assert c["state"] == "ok", c
    assert c["round_trips_last_hour"] >= 2 and 0 < c["last_round_trip_s"] < c["interval_s"]
    assert c["own_alert"] is None
    mailbox = lab / "mail" / "Maildir" / "new"
    texts = [f.read_text(errors="replace") for f in mailbox.glob("*")]
    calls = lab / "slack-calls.jsonl"
    texts += calls.read_text().splitlines() if calls.exists() else []
    assert not [t for t in texts if "canary" in t or "alert path" in t]


@pytest.mark.parametrize(
    ("fault", "cause"),
    [
        ("zabbix-down", "no active Zabbix server node"),
        ("database-down", "Zabbix database unreachable"),
        ("alert-path-broken", "Zabbix does not deliver alerts"),
    ],
)
def test_zabbix_silent_raises_the_bridges_own_alert_and_resolves(
    lab: Path, fault: str, cause: str
) -> None:
    """Zabbix cannot say it is dead: the bridge's canary does, within three intervals, on the
    tower, in Slack and in the mailbox, and calls the all-clear after the repair."""
    out = demo(lab, "fault", fault, "--timeout", "180")
    assert out.returncode == 0, out.stdout + out.stderr
    text = out.stdout
    took = re.search(r"alert path broken after (\d+) s \(([\d.]+) canary intervals\)", text)
    assert took is not None, text
    interval = canary_health()["interval_s"]
    assert int(took[1]) <= 3 * interval + 2, text  # the deadline, plus the one-second judge tick
    assert f"Zabbix alert path broken: {cause}" in text or cause in text, text
    before, after = text.split("repairing")
    assert "own alert delivered" in before and "red=blink" in before and "buzzer=1" in before
    assert "alert path ok again" in after and "red=off" in after and "green=on" in after
    assert canary_health()["state"] == "ok"


def test_a_fault_reaches_zabbix_the_tower_and_the_channels_then_recovers(lab: Path) -> None:
    out = demo(lab, "fault", "receiver-stop", "--timeout", "180")
    assert out.returncode == 0, out.stdout + out.stderr
    text = out.stdout
    assert "PostgreSQL site-b: WAL receiver is not streaming" in text
    before, after = text.split("repairing")
    assert "tower: red=" in before and "green=off" in before  # a High problem is open
    assert "resolved in Zabbix" in after
    mails = [int(line.split()[1]) for line in text.splitlines() if "mail(s)" in line]
    assert len(mails) == 2 and mails[1] > mails[0] > 0  # problem, then recovery mails


def test_exhausted_pgpool_reaches_the_noc_though_it_locks_site_a_frontend_out(lab: Path) -> None:
    """Every child of pool-a taken: the active server (site A, through pool-a) still raises the
    lead over the connections it keeps, the bridge delivers it, and the fault sees it although
    site A's frontend, which connects afresh through pool-a, shows only its database error."""
    quiet(lab)  # a fault of its own, not a late member of the previous test's incident
    out = demo(lab, "fault", "children-exhausted", "--timeout", "180")
    assert out.returncode == 0, out.stdout + out.stderr
    text = out.stdout
    before, after = text.split("repairing")
    assert "Pgpool-II pool-a: every child process is busy" in before, text
    assert "site A's frontend reads its database through pool-a and cannot reach it" in before
    assert "read from site B's frontend (through pool-b)" in before, text
    assert "tower: red=" in before and "green=off" in before, text  # a High problem is open
    assert "resolved in Zabbix" in after and "green=on" in after, text
    # delivered, in one thread each (counted after the all-clear: the problem may still be in
    # its group wait when Zabbix shows it)
    sent = r"notifications for this fault: mail [1-9]\d* in 1 thread\(s\), Slack [1-9]\d* "
    assert re.search(sent + r"message\(s\) in 1 thread\(s\)", after), text


def quiet(lab: Path, window: float = GROUP_WINDOW, timeout: float = 180) -> None:
    """Until nothing was sent for longer than the demo's group window: an incident takes new
    members for that long after its last message."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        sent = [m.at for m in inbox.read_mails(lab / "mail" / "Maildir")]
        calls = inbox.read_slack(lab / "slack-calls.jsonl")
        sent += [c.at for c in calls if c.method in inbox.POSTS]
        if time.time() - max(sent, default=0.0) > window + 5:
            return
        time.sleep(2)


def test_up_repairs_a_split_brain_left_in_place(lab: Path) -> None:
    """A split brain left behind (--no-recover) is on the tower as a Disaster; ``up`` resolves
    it for the primary site A's Pgpool uses, and Zabbix returns to calm."""
    quiet(lab)  # a fault of its own, not a late member of the previous test's incident
    out = demo(lab, "fault", "two-primaries", "--no-recover", "--timeout", "180")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Cross-site: more than one PostgreSQL primary (split brain)" in out.stdout
    assert "red=blink" in out.stdout and "buzzer=1" in out.stdout, out.stdout  # a Disaster
    # one conversation per channel for the incident, however many problems it raised
    assert re.search(r"notifications so far: mail \d+ in 1 thread\(s\), Slack \d+ message\(s\) in "
                     r"1 thread\(s\)", out.stdout), out.stdout  # fmt: skip

    # the NOC operator presses Acknowledge in Slack: Zabbix, the thread and the tower follow
    ack = demo(lab, "ack", "--timeout", "90")
    assert ack.returncode == 0, ack.stdout + ack.stderr
    assert "split brain" in ack.stdout, ack.stdout
    assert re.search(r"\d+ event\(s\) acknowledged in Zabbix by kyoten-noc", ack.stdout), (
        ack.stdout  # as the mapped operator, not the admin
    )
    assert "replied there" in ack.stdout
    after = ack.stdout.split("tower after:")[1]
    assert "blink" not in after and "buzzer=0" in after and "red=on" in after, ack.stdout

    up = demo(lab, "up")
    assert up.returncode == 0, up.stdout + up.stderr
    p = Ports()
    a = PgNode("site-a", lab / "pg" / "site-a", p.pg_a)
    b = PgNode("site-b", lab / "pg" / "site-b", p.pg_b)
    assert [a.value("SELECT pg_is_in_recovery()"), b.value("SELECT pg_is_in_recovery()")] == [
        False,
        True,
    ]
    assert a.value("SELECT state FROM pg_stat_replication WHERE application_name = 'site-b'") == (
        "streaming"
    )
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        status = demo(lab, "status").stdout
        if "split brain" not in status and "is missing" not in status:
            break
        time.sleep(5)
    assert "split brain" not in status and "is missing" not in status, status
