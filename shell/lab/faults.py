"""The cross-site faults of the decision table, and the repair that brings a lab back to calm.

Shared by ``kyoten demo fault``/``kyoten demo up`` and the integration tests
(``tests/templates/test_zabbix60_decisions.py``), so the tests check exactly what the demo
does. A :class:`Faults` works on two PostgreSQL nodes (site A and site B, either may be
primary after a fault) and one standalone Pgpool-II per site in front of both.

:meth:`Faults.plan` gives a fault's injection and its repair; :meth:`Faults.heal` repairs
whatever a fault (or an interrupted run) left: a split brain (the primary the site-A Pgpool
uses is kept, the other is rebuilt as its standby), a stopped node, a standby that streams
from nowhere, paused replay, backends a Pgpool holds down, a Pgpool routing writes to the
wrong node, and children stuck on connections to a server that went away.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from kyoten.shell.lab.pgpool import PCP_USER, Pgpool
from kyoten.shell.lab.postgres import REPL_PASSWORD, REPL_USER, PgNode
from kyoten.shell.lab.procs import LabError, read_pid, run, wait_for

#: every fault :meth:`Faults.plan` knows (the demo adds zabbix-failover, which needs its HA nodes)
FAULTS = (
    "primary-down",
    "primary-stop",
    "standby-stop",
    "receiver-stop",
    "replay-paused",
    "two-primaries",
    "double-failover",
    "pgpool-drift",
    "children-exhausted",
)
#: busy children above this share, after a repair, are stuck on a server that went away
STUCK_SHARE = 0.8
#: WAL written while replay is paused: above any sane {$PG.REPL_LAG.BYTES.MAX.WARN} in a test
LAG_ROWS = 200_000


def name_pattern(name: str) -> re.Pattern[str]:
    """A trigger or event name as Zabbix expands it into a problem name: every macro
    ({#LLD}, {$USER}, {$USER:"{#CONTEXT}"}, {ITEM.VALUE1}) matches some text."""
    parts = re.split(r"\{\$[^{}]*(?:\{[^{}]*\}[^{}]*)*\}|\{[^{}]*\}", name)
    return re.compile(".+?".join(re.escape(p) for p in parts) + r"\Z")


def lead_pattern(fault: str) -> re.Pattern[str]:
    """The problem name the decision table's row for ``fault`` leads with."""
    from kyoten.agent.catalogue.decisions import STATES, triggers_by_uid

    (state,) = [s for s in STATES if s.fault == fault]
    lead = triggers_by_uid()[state.lead].trigger
    return name_pattern(lead.event_name or lead.name)


@dataclass(frozen=True)
class Fault:
    """One fault: how to inject it, how to repair it, and what it hit (for the messages)."""

    inject: Callable[[], None]
    repair: Callable[[], None]
    hit: str


def pool_nodes(pool: Pgpool) -> list[dict[str, str]]:
    """SHOW POOL_NODES through the Pgpool, by column name."""
    with psycopg.connect(pool.conninfo(), autocommit=True) as conn:
        cur = psycopg.ClientCursor(conn)
        cur.execute("SHOW POOL_NODES")
        names = [c.name for c in cur.description or ()]
        return [dict(zip(names, map(str, row), strict=True)) for row in cur.fetchall()]


def busy_children(pool: Pgpool) -> tuple[int, int]:
    """(children serving a client, children) of a Pgpool (4.3's SHOW POOL_PROCESSES)."""
    with psycopg.connect(pool.conninfo(), autocommit=True) as conn:
        cur = conn.execute(b"SHOW POOL_PROCESSES", prepare=False)
        names = [c.name for c in cur.description or ()]
        rows = cur.fetchall()
    status = names.index("status")
    pids = {r[0]: r[status] for r in rows}  # one row per child in 4.3
    return sum(1 for s in pids.values() if s not in ("Wait for connection", "")), len(pids)


@dataclass
class Faults:
    """The faults of one lab: its two nodes, its two Pgpools, and a .pcppass for both."""

    nodes: Sequence[PgNode]
    pools: Sequence[Pgpool]
    pcppass: Path
    #: connections held by children-exhausted until its repair
    held: list[psycopg.Connection[Any]] = field(default_factory=list)

    # ------------------------------------------------------------------ state
    def is_primary(self, node: PgNode) -> bool:
        if not node.running():
            return False
        try:
            return node.value("SELECT pg_is_in_recovery()") is False
        except psycopg.Error:
            return False

    def roles(self) -> tuple[PgNode, PgNode]:
        """(primary, standby) now: of two primaries, the one the site-A Pgpool uses, else
        the one on the newer timeline (the promoted one)."""
        primaries = [n for n in self.nodes if self.is_primary(n)]
        if len(primaries) > 1:
            keep = self.pool_primary(self.pools[0])
            if keep not in primaries:
                keep = max(primaries, key=self.timeline)
            primaries = [keep]
        primary = primaries[0] if primaries else self.nodes[0]
        standby = next(n for n in self.nodes if n is not primary)
        return primary, standby

    @staticmethod
    def timeline(node: PgNode) -> int:
        return int(node.value("SELECT timeline_id FROM pg_control_checkpoint()") or 0)

    @staticmethod
    def former_primary(node: PgNode) -> bool:
        """A stopped node that would start as a primary (no standby.signal)."""
        return not node.running() and not (node.datadir / "standby.signal").exists()

    def node_id(self, pool: Pgpool, node: PgNode) -> int:
        return [b.name for b in pool.backends].index(node.name)

    def pool_primary(self, pool: Pgpool) -> PgNode | None:
        """The backend a Pgpool sends writes to, or None."""
        with contextlib.suppress(psycopg.Error):
            for row in pool_nodes(pool):
                if row.get("role") == "primary" and row.get("status") in ("up", "waiting"):
                    return pool.backends[int(row["node_id"])]
        return None

    def pcp(self, command: str, pool: Pgpool, *args: str) -> None:
        run(
            [command, "-h", pool.host, "-p", str(pool.pcp_port), "-U", PCP_USER, "-w", *args],
            env={"PCPPASSFILE": str(self.pcppass)},
            timeout=60,
        )

    # ------------------------------------------------------------------ repairs
    def rebuild(self, node: PgNode, primary: PgNode) -> None:
        """Rebuild ``node`` as a streaming standby of ``primary`` (pg_basebackup, a slot)."""
        node.stop("immediate")
        node.init_standby(primary, slot=f"site_{node.name[-1]}")

    def follow(self, standby: PgNode, primary: PgNode) -> None:
        """Point a standby at ``primary``; rebuild it if it cannot stream from there."""
        standby.set_primary_conninfo(
            f"host={primary.host} port={primary.port} user={REPL_USER} "
            f"password={REPL_PASSWORD} application_name={standby.name}"
        )
        try:
            wait_for(lambda: self.streams(standby, primary), f"{standby.name} to stream", 20)
        except LabError:
            self.rebuild(standby, primary)

    @staticmethod
    def streams(standby: PgNode, primary: PgNode) -> bool:
        state = primary.value(
            "SELECT state FROM pg_stat_replication WHERE application_name = %s", (standby.name,)
        )
        return bool(state == "streaming")

    @staticmethod
    def node_status(pool: Pgpool, within: float = 10) -> list[str] | None:
        """Pgpool's status of each backend; None if it refuses SQL for ``within`` seconds
        (it pauses for a moment while it fails a backend over)."""
        end = time.monotonic() + within
        while True:
            try:
                return pool.node_status()
            except psycopg.Error:
                if time.monotonic() > end:
                    return None
                time.sleep(0.5)

    def heal_pools(self, primary: PgNode) -> None:
        """Every Pgpool running, using every live backend, writing to ``primary``, and with
        no children stuck on connections to a server that went away."""
        for pool in self.pools:
            if read_pid(pool.pidfile) is None:
                pool.start()
            statuses = self.node_status(pool)
            if statuses is None:  # it refuses SQL: every backend is detached in its view
                pool.stop()
                pool.start(discard_status=True)
                continue
            for node_id, status in enumerate(statuses):
                if status in ("down", "quarantine") and pool.backends[node_id].running():
                    self.pcp("pcp_attach_node", pool, "-n", str(node_id))
            try:
                wait_for(
                    lambda pool=pool: self.pool_primary(pool) is primary,
                    f"{pool.name} to write to {primary.name}",
                    15,
                )
                busy, total = busy_children(pool)
                stuck = total > 0 and busy >= STUCK_SHARE * total
            except LabError:
                stuck = True
            if stuck:  # a restart ends every child; clients (Zabbix) reconnect
                pool.stop()
                pool.start(discard_status=True)

    def release(self) -> None:
        for conn in self.held:
            with contextlib.suppress(Exception):
                conn.close()
        self.held.clear()

    def heal(self, keep: PgNode | None = None) -> None:
        """Back to one primary with a streaming standby behind both Pgpools (idempotent).

        ``keep`` is the primary to keep when the caller knows it. A stopped former primary
        is never started while another primary runs (that would be a split brain): it is
        rebuilt as a standby of it instead.
        """
        self.release()
        running = [n for n in self.nodes if self.is_primary(n)]
        for node in self.nodes:
            if node.running():
                continue
            if running and self.former_primary(node):
                self.rebuild(node, keep if keep in running else running[0])
            else:
                node.start()
        if keep is not None:
            for node in self.nodes:
                if node is not keep and self.is_primary(node):
                    self.rebuild(node, keep)
        primary, standby = self.roles()
        if not self.is_primary(primary):
            primary.promote()  # nothing is primary (a lab stopped mid-failover)
        if self.is_primary(standby):  # split brain: the site-A Pgpool's choice stays
            self.rebuild(standby, primary)
        elif not self.streams(standby, primary):
            self.follow(standby, primary)
        if standby.value("SELECT pg_is_wal_replay_paused()") is True:
            standby.sql("SELECT pg_wal_replay_resume()")
        self.heal_pools(primary)

    # ------------------------------------------------------------------ faults
    def plan(self, name: str) -> Fault:
        """A fault's injection and repair, for the roles the lab has now."""
        primary, standby = self.roles()
        if name == "primary-down":

            def fail_over() -> None:
                primary.stop("immediate")
                standby.promote()  # what Pgpool's failover_command does in production

            return Fault(fail_over, lambda: self.heal_after(standby), primary.name)
        if name == "primary-stop":
            return Fault(
                lambda: primary.stop("immediate"), lambda: self.heal_after(primary), primary.name
            )
        if name == "standby-stop":
            return Fault(
                lambda: standby.stop("immediate"), lambda: self.heal_after(primary), standby.name
            )
        if name == "receiver-stop":
            conninfo = standby.primary_conninfo()

            def restore() -> None:
                standby.set_primary_conninfo(conninfo)
                self.heal_after(primary)

            return Fault(lambda: standby.set_primary_conninfo(""), restore, standby.name)
        if name == "replay-paused":

            def pause() -> None:
                standby.sql("SELECT pg_wal_replay_pause()")
                wait_for(
                    lambda: standby.value("SELECT pg_get_wal_replay_pause_state()") == "paused",
                    "replay to pause",
                    10,
                )
                primary.sql("DROP TABLE IF EXISTS kyoten_lag")
                primary.sql(f"CREATE TABLE kyoten_lag AS SELECT generate_series(1, {LAG_ROWS}) i")

            def resume() -> None:
                standby.sql("SELECT pg_wal_replay_resume()")
                primary.sql("DROP TABLE IF EXISTS kyoten_lag")
                self.heal_after(primary)

            return Fault(pause, resume, standby.name)
        if name == "two-primaries":
            return Fault(standby.promote, lambda: self.heal_after(primary), standby.name)
        if name == "double-failover":
            # site B's Pgpool loses sight of the primary and fails over on its own: it
            # detaches it and the standby is promoted; site A's Pgpool keeps the old primary
            pool = next(p for p in self.pools if p.site == f"site-{standby.name[-1]}")

            def split() -> None:
                self.pcp("pcp_detach_node", pool, "-n", str(self.node_id(pool, primary)))
                standby.promote()
                try:
                    wait_for(lambda: self.pool_primary(pool) is standby, "the new primary", 10)
                except LabError:  # Pgpool searched before the promotion: tell it
                    self.pcp("pcp_promote_node", pool, "-n", str(self.node_id(pool, standby)))
                    wait_for(lambda: self.pool_primary(pool) is standby, "the new primary", 20)

            return Fault(split, lambda: self.heal_after(primary), f"{pool.name}/{standby.name}")
        if name == "pgpool-drift":
            pool = self.pools[-1]

            def restart_clean() -> None:
                pool.stop()
                pool.start(discard_status=True)
                self.heal_after(primary)

            return Fault(
                lambda: pool.hold_down([self.node_id(pool, standby)]),
                restart_clean,
                f"{pool.name}/{standby.name}",
            )
        if name == "children-exhausted":
            pool = self.pools[0]
            return Fault(lambda: self.exhaust(pool), self.release, pool.name)
        raise LabError(f"unknown fault {name!r}; choose one of {', '.join(FAULTS)}")

    def heal_after(self, primary: PgNode) -> None:
        """The repair of a fault that left ``primary`` as the one to keep."""
        self.heal(keep=primary)

    def exhaust(self, pool: Pgpool, limit: int = 1000) -> None:
        """Take every child of ``pool`` that a client can get (until it refuses or hangs)."""
        for _ in range(limit):
            try:
                conn = psycopg.connect(pool.conninfo() + " connect_timeout=2", autocommit=True)
            except psycopg.OperationalError:
                return  # refused (reserved_connections) or no child within the timeout
            conn.execute("SELECT 1")
            self.held.append(conn)
        raise LabError(f"{pool.name} still accepted clients after {limit} connections")
