"""The README's first command: ``kyoten demo`` brings the chain up, a fault arrives, recovers.

It runs the real console script, as an operator would after ``bootstrap.sh demo``: every
server on its fixed loopback port, state in a throw-away directory, then ``down --purge``.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from kyoten.shell.lab.demo import Ports
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
    assert "[ 9/9] First values from the agent reach Zabbix" in again.stdout
    assert "Zabbix frontend   http://127.0.0.1:" in again.stdout


def test_a_fault_reaches_zabbix_the_tower_and_the_channels_then_recovers(lab: Path) -> None:
    out = demo(lab, "fault", "receiver-stop", "--timeout", "180")
    assert out.returncode == 0, out.stdout + out.stderr
    text = out.stdout
    assert "PostgreSQL: WAL receiver is not streaming" in text
    before, after = text.split("repairing")
    assert "tower: red=" in before and "green=off" in before  # a High problem is open
    assert "resolved in Zabbix" in after
    mails = [int(line.split()[1]) for line in text.splitlines() if "mail(s)" in line]
    assert len(mails) == 2 and mails[1] > mails[0] > 0  # problem, then recovery mails
