"""The real stacks the collector and plugin integration tests run against, as fixtures.

``kyoten.shell.lab.cluster.STACKS``: Debian 12's PostgreSQL 15, Pgpool-II 4.3 and
zabbix_agent2 6.0.14 (the shared cluster of ``tests/conftest.py``), and trixie's PostgreSQL
17, Pgpool-II 4.6 and zabbix_agent2 7.0 from the trixie root. A folder's conftest imports
``stack``, ``cluster`` and ``cluster_factory`` from here to override the session's: every test
of that folder that uses a real cluster or agent of the stack (and every fixture built on one,
such as ``kyoten_config``) then runs once per stack, unchanged, its id saying which
([bookworm], [trixie]). What differs between the stacks' agents is said once, here
(:data:`RELEASES`, :func:`agent_error`).
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple

import pytest
from kyoten.shell.lab.agent2 import AS_ZABBIX, Agent2
from kyoten.shell.lab.cluster import STACKS, Cluster, build_cluster


class Releases(NamedTuple):
    """What a stack's programs report: ``agent.version`` of its zabbix_agent2, and the
    version of the pcp tools its collector runs (``pcp_node_info --version``)."""

    agent2: str
    pgpool: str


RELEASES = {"bookworm": Releases("6.0.", "4.3."), "trixie": Releases("7.0.", "4.6.")}


def agent_error(stack: str, reason: str) -> str:
    """What the stack's agent reports for a check that failed with kyoten's ``reason``: 6.0
    passes it on; 7.0 capitalises it and ends it with a full stop."""
    if RELEASES[stack].agent2 == "6.0.":
        return reason
    text = reason[:1].upper() + reason[1:]
    return text if text.endswith(".") else f"{text}."


def pcp_release_of(pid: int) -> str:
    """``pcp_node_info --version`` as process ``pid`` (an agent, its plugin) would run it: the
    first one on its PATH, run as the agent's account."""
    env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    path = next((e[5:].decode() for e in env if e.startswith(b"PATH=")), None)
    exe = shutil.which("pcp_node_info", path=path)
    assert exe is not None, f"no pcp_node_info on the PATH of process {pid}: {path}"
    out = subprocess.run([*AS_ZABBIX, exe, "--version"], capture_output=True, text=True, timeout=30)
    return (out.stdout + out.stderr).strip()


def assert_stack_agent(agent: Agent2, stack: str) -> None:
    """``agent`` is the stack's own: the release its ``agent.version`` answers (if it did not
    start: the release of the program it ran), and the release of the pcp tools it and its
    children (the plugin) would run. A test whose agent fell back to the host's 6.0 or pcp
    4.3 fails here."""
    want = RELEASES[stack]
    if not agent.alive():
        out = subprocess.run([*agent.command, "-V"], capture_output=True, text=True, timeout=30)
        assert out.stdout.startswith(f"zabbix_agent2 (Zabbix) {want.agent2}"), (stack, out)
        return
    version, error = agent.get("agent.version")
    assert error is None and version is not None and version.startswith(want.agent2), (
        stack,
        version,
        error,
    )
    assert agent.proc is not None
    for pid in (agent.proc.pid, *agent.children()):
        assert f"(pgpool-II) {want.pgpool}" in pcp_release_of(pid), (stack, pid)


@pytest.fixture(scope="session", params=STACKS)
def stack(request: pytest.FixtureRequest) -> str:
    """The real stack a test runs against; ``cluster``, ``cluster_factory`` and the agents of
    the stack all follow it, so a test using several of them runs once per stack."""
    name: str = request.param
    return name


@pytest.fixture(scope="session")
def cluster(request: pytest.FixtureRequest, stack: str, cluster: Cluster) -> Cluster:
    """The shared cluster of the stack: the session's own (``cluster`` and ``trixie_cluster``
    of tests/conftest.py, so that every folder shares the same two)."""
    if stack == "bookworm":
        return cluster
    trixie: Cluster = request.getfixturevalue("trixie_cluster")
    return trixie


@pytest.fixture
def cluster_factory(stack: str, lab_root: Path) -> Iterator[Callable[[], Cluster]]:
    """Throw-away clusters of the stack, stopped and removed afterwards."""
    made: list[tuple[Cluster, Path]] = []

    def make() -> Cluster:
        root = Path(tempfile.mkdtemp(prefix="c-", dir=lab_root))
        root.chmod(0o755)
        c = build_cluster(root, stack=stack)
        made.append((c, root))
        return c

    yield make
    for c, root in made:
        c.stop()
        shutil.rmtree(root, ignore_errors=True)
