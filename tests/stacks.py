"""The real stacks the collector and plugin integration tests run against, as fixtures.

``kyoten.shell.lab.cluster.STACKS``: Debian 12's PostgreSQL 15 and Pgpool-II 4.3 (the shared
cluster of ``tests/conftest.py``), and trixie's PostgreSQL 17 and Pgpool-II 4.6 from the trixie
root. A folder's conftest imports ``cluster`` and ``cluster_factory`` from here to override the
session's: every test of that folder that uses a real cluster (and every fixture built on one,
such as ``kyoten_config``) then runs once per stack, unchanged, its id saying which
([bookworm], [trixie]).
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from kyoten.shell.lab.cluster import STACKS, Cluster, build_cluster


@pytest.fixture(scope="session", params=STACKS)
def cluster(request: pytest.FixtureRequest, cluster: Cluster) -> Cluster:
    """The shared cluster of the stack: the session's own (``cluster`` and ``trixie_cluster``
    of tests/conftest.py, so that every folder shares the same two)."""
    if request.param == "bookworm":
        return cluster
    trixie: Cluster = request.getfixturevalue("trixie_cluster")
    return trixie


@pytest.fixture(params=STACKS)
def cluster_factory(
    request: pytest.FixtureRequest, lab_root: Path
) -> Iterator[Callable[[], Cluster]]:
    """Throw-away clusters of the stack, stopped and removed afterwards."""
    made: list[tuple[Cluster, Path]] = []

    def make() -> Cluster:
        root = Path(tempfile.mkdtemp(prefix="c-", dir=lab_root))
        root.chmod(0o755)
        c = build_cluster(root, stack=request.param)
        made.append((c, root))
        return c

    yield make
    for c, root in made:
        c.stop()
        shutil.rmtree(root, ignore_errors=True)
