"""The collector's integration tests run against each real stack (see ``tests/stacks.py``)."""

from tests.stacks import cluster, cluster_factory, stack

__all__ = ["cluster", "cluster_factory", "stack"]
