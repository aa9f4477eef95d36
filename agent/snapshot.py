"""What one query pass read from a target, as immutable values: where I/O ends.

The sources (``kyoten.agent.sources``) build these snapshots and ``kyoten.agent.shape`` turns
them into JSON. They live in a module of their own, which imports no driver, so that the
shaping step and its tests load no I/O code: the contract "the catalogue and the shaping step
are pure" in pyproject.toml ([tool.importlinter]) holds this module to that as well. Named
tuples rather than dataclasses, for the CPU of ``kyoten get`` (see ``kyoten.agent.config``).
"""

from __future__ import annotations

from kyoten.agent.records import NamedTuple

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

Rows = tuple[dict[str, str], ...]
"""A result set as text by column name, as the simple query protocol and PCP give it."""


class PgRaw(NamedTuple):
    """What one PostgreSQL server said in one query pass (absolute LSNs, epoch seconds)."""

    version: int
    in_recovery: bool
    now: float
    ref_lsn: float
    primary_tli: int | None
    checkpoint_tli: int | None
    receive_lsn: float | None
    last_replay_ts: float | None
    replay_paused: bool
    standbys: tuple[dict[str, Any], ...]
    receiver: dict[str, Any] | None
    slots: tuple[dict[str, Any], ...]


class PgpoolRaw(NamedTuple):
    """What one Pgpool-II said in one pass: SQL answers, or PCP answers as a fallback."""

    via_pcp: bool
    version: str
    nodes: Rows
    # SHOW POOL_HEALTH_CHECK_STATS rows (or pcp_health_check_stats); None: this Pgpool
    # cannot say (4.1), so every health-check figure is unknown
    health: Rows | None
    # rows busy children are counted from: SHOW POOL_PROCESSES (``status``, 4.3+) or SHOW
    # POOL_POOLS (``pool_connected``, before 4.3); None: not read (PCP)
    processes: Rows | None
    num_init_children: int | None
    watchdog: dict[str, str] | None
    now: float
    # who made the pg_status/pg_role checks: "pgpool" (SHOW POOL_NODES, PCP) or "kyoten"
    live_by: str = "pgpool"
    # seconds since the sr-check columns (replication_delay/state) were read; -1 unknown
    replication_age: float = 0.0


class ZabbixRaw(NamedTuple):
    """ha_node rows and the database's clock (lastaccess is written with the DB clock)."""

    nodes: tuple[dict[str, Any], ...]
    now: float
