"""Real servers for the integration tests, started once per session on 127.0.0.1.

The lab classes live in ``kyoten.shell.lab`` so ``kyoten demo`` runs the very same code.
Tests that break things (promotion, stopped standby) build their own throw-away cluster with
``cluster_factory`` instead of damaging the shared one.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kyoten.agent.export.userparameters import render_userparameters
from kyoten.shell.lab.agent2 import Agent2
from kyoten.shell.lab.cluster import Cluster, build_cluster
from kyoten.shell.lab.postgres import PgNode

from tests.stacks import assert_stack_agent


@pytest.fixture(scope="session")
def lab_root() -> Iterator[Path]:
    """A directory the daemons' accounts can traverse (pytest's tmp dirs are 0700 root)."""
    root = Path(tempfile.mkdtemp(prefix="kyoten-lab-"))
    root.chmod(0o755)
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def cluster(lab_root: Path) -> Iterator[Cluster]:
    """The shared cluster. Tests may disturb it only if they restore it before returning."""
    c = build_cluster(lab_root / "shared")
    yield c
    c.stop()


@pytest.fixture(scope="session")
def trixie_cluster(lab_root: Path) -> Iterator[Cluster]:
    """The shared cluster of the second stack (trixie's PostgreSQL 17 and Pgpool-II 4.6),
    for the folders that run per stack (``tests/stacks.py``): one for the whole session."""
    c = build_cluster(lab_root / "shared-trixie", stack="trixie")
    yield c
    c.stop()


@pytest.fixture(scope="session")
def pg_primary(cluster: Cluster) -> PgNode:
    """The shared primary; ``conninfo(dbname)`` gives a superuser conninfo on loopback."""
    return cluster.primary


@pytest.fixture
def cluster_factory(lab_root: Path) -> Iterator[Callable[[], Cluster]]:
    """Throw-away clusters for destructive tests, stopped and removed afterwards."""
    made: list[Cluster] = []

    def make() -> Cluster:
        root = Path(tempfile.mkdtemp(prefix="c-", dir=lab_root))
        root.chmod(0o755)
        c = build_cluster(root)
        made.append(c)
        return c

    yield make
    for c in made:
        c.stop()


def kyoten_binary() -> str:
    """The kyoten console script of the interpreter running the tests."""
    return str(Path(sys.executable).with_name("kyoten"))


def write_lab_config(c: Cluster, directory: Path) -> Path:
    """kyoten.toml for a cluster, readable by the agent's account."""
    return c.write_config(directory)


@pytest.fixture(scope="session")
def per_stack() -> Iterator[dict[tuple[str, str], Any]]:
    """What :func:`kyoten_config` and :func:`agent2` made, by (what, stack). They look it up
    per test: a session fixture of their own would keep what it made for the stack a folder
    ran last (tests/stacks.py runs folders once per stack) into the next folder, whose
    ``cluster`` is bookworm's, and its agent would poll the other stack's servers."""
    made: dict[tuple[str, str], Any] = {}
    yield made
    for (what, _), value in made.items():
        if what == "agent2":
            value.stop()


@pytest.fixture
def kyoten_config(cluster: Cluster, lab_root: Path, per_stack: dict[tuple[str, str], Any]) -> Path:
    """kyoten.toml naming the stack's shared cluster: site-a, site-b, pool-a, pool-b."""
    key = ("config", cluster.stack)
    if key not in per_stack:
        per_stack[key] = write_lab_config(cluster, lab_root / f"kyoten-{cluster.stack}")
    path: Path = per_stack[key]
    return path


@pytest.fixture
def agent2(
    cluster: Cluster, kyoten_config: Path, lab_root: Path, per_stack: dict[tuple[str, str], Any]
) -> Agent2:
    """The cluster's stack's zabbix_agent2 (as user zabbix; bookworm: 6.0.14, trixie: 7.0
    with 4.6's pcp tools) with kyoten's generated UserParameters, one per stack and session."""
    key = ("agent2", cluster.stack)
    if key not in per_stack:
        agent = Agent2(
            lab_root / f"agent2-{cluster.stack}",
            render_userparameters(kyoten_binary(), str(kyoten_config)).splitlines(),
            **cluster.agent2_options(),
        )
        agent.start()
        per_stack[key] = agent
        assert_stack_agent(agent, cluster.stack)
    found: Agent2 = per_stack[key]
    return found
