"""The agent 2 plugin's Pgpool pass: Pgpool's view, busy children and kyoten's own live
checks of every backend, all in flight at once; Pgpool's sr-check columns read aside.

SHOW POOL_NODES costs a fresh connection per backend per call inside Pgpool (about 11 ms
for two local backends, Pgpool's connect_timeout per unreachable one). With the backends
listed in kyoten.toml the plugin instead asks Pgpool only what it keeps in shared memory
(SHOW POOL_HEALTH_CHECK_STATS, 4.2+, and SHOW POOL_PROCESSES, or SHOW POOL_POOLS before
4.3), checks each backend over the connection it already keeps to it, and reads SHOW
POOL_NODES for the sr-check columns in the background (``Refresher``). The decisions
(joining, order check) are pure functions in ``pgpool``; this module only holds the
connections and waits.
"""

from __future__ import annotations

import time
from functools import partial

import psycopg
from kyoten.agent.config import Config, PgpoolTarget, PgTarget
from kyoten.agent.errors import ConfigError, ConnectError, QueryError, TargetError
from kyoten.agent.snapshot import PgpoolRaw, Rows
from kyoten.agent.sources.connect import Connector, Lease
from kyoten.agent.sources.libpq import Batch, PsycopgSession, simple_query
from kyoten.agent.sources.pgpool import (
    HEALTH,
    LiveCheck,
    busy_query,
    compose_nodes,
    fixed_facts,
    has_health_stats,
    order_problem,
    view_raw,
)
from kyoten.agent.sources.refresh import Refresher

IN_RECOVERY = "SELECT pg_catalog.pg_is_in_recovery() AS r"


def live_check_of(rows: Rows) -> LiveCheck:
    return LiveCheck("up", "standby" if rows and rows[0].get("r") == "t" else "primary")


class PgpoolLive:
    """One per plugin collector: kept connections come from the shared ``Connector``."""

    def __init__(self, config: Config, connector: Connector) -> None:
        self.config = config
        self.connector = connector
        self._replication: dict[str, Refresher[Rows]] = {}

    def close(self) -> None:
        for refresher in self._replication.values():
            refresher.stop()

    def snapshot(self, t: PgpoolTarget, deadline: float) -> PgpoolRaw | None:
        """The pass; None when this Pgpool cannot serve it (< 4.2, or more backends than
        listed), and the caller makes the classic SHOW POOL_NODES pass instead."""
        label = f"Pgpool-II {t.name}"
        # no statement_timeout on Pgpool: it answers SHOW itself; the deadline cancels
        main = self.connector.acquire_target("pgpool", t, None, deadline)
        assert main is not None
        leases: list[Lease] = [main]
        ok: dict[str, bool] = {main.name: False}
        batch = Batch()  # each query leaves as soon as its connection is held
        try:
            fixed = fixed_facts(PsycopgSession(main.conn))
            if has_health_stats(fixed[0]) is False:
                ok[main.name] = True
                return None  # 4.1: no SHOW POOL_HEALTH_CHECK_STATS to take the view from
            busy = busy_query(fixed[0])
            batch.send(main.conn, HEALTH)
            # busy children over the background reader's connection when it is idle
            side = self._try(t, deadline)
            if side is not None:
                leases.append(side)
                batch.send(side.conn, *busy)
            live: dict[str, LiveCheck] = {}
            checks: list[tuple[str, Lease]] = []
            # a hung backend must not cost the whole poll: Pgpool's view still gets answered
            live_deadline = time.monotonic() + (deadline - time.monotonic()) / 2
            # locks in name order: two Pgpool passes listing backends differently never wait
            # on each other crosswise
            for name in sorted(set(t.backends)):
                try:
                    lease = self._pg(self.config.postgres[name], live_deadline)
                except ConnectError:
                    live[name] = LiveCheck("down", "unknown")
                    continue
                except TargetError:
                    live[name] = LiveCheck("unknown", "unknown")
                    continue
                checks.append((name, lease))
                leases.append(lease)
                batch.send(lease.conn, IN_RECOVERY)
            # each answer stops its own deadline: a frozen backend must not cut the others
            results = batch.wait(deadline, lambda i: leases[i].expiry.stop())
            for lease, result in zip(leases, results, strict=True):
                ok[lease.name] = not isinstance(result, Exception)
            health = results[0]
            if isinstance(health, Exception):
                if isinstance(health, psycopg.errors.QueryCanceled) or main.expiry.fired:
                    raise main.error(health)
                return None  # e.g. Pgpool < 4.2: no such SHOW command
            if side is not None:
                processes = results[1]
                if isinstance(processes, Exception):
                    raise side.error(processes)
            else:
                processes = simple_query(main.conn, *busy)
            ok[main.name] = True
            retry = []
            check_results = results[len(results) - len(checks) :]
            for (name, lease), result in zip(checks, check_results, strict=True):
                if lease.expiry.fired or isinstance(result, psycopg.errors.QueryCanceled):
                    live[name] = LiveCheck("unknown", "unknown")  # no answer in time
                elif isinstance(result, Exception):
                    retry.append(name)  # maybe only a stale kept connection
                else:
                    live[name] = live_check_of(result)
        except (psycopg.Error, QueryError) as exc:
            raise main.error(exc) from None
        finally:
            for lease in leases:
                self.connector.release(lease, ok.get(lease.name, False))
        for name in retry:
            live[name] = self._live_check(self.config.postgres[name], live_deadline)
        view = view_raw(health, processes, fixed, time.time())
        if len(view.nodes) > len(t.backends):
            return None  # a backend kyoten.toml does not list: only Pgpool can check it
        addresses = {
            n: (p.endpoint.host, str(p.endpoint.port)) for n, p in self.config.postgres.items()
        }
        problem = order_problem(view.nodes, t.backends, addresses)
        if problem is not None:
            raise ConfigError(f"{label}: {problem} (in {self.config.source})")
        by_node = {str(i): live[name] for i, name in enumerate(t.backends) if name in live}
        rows, age = self._sr_columns(t, deadline)
        return view._replace(
            nodes=compose_nodes(view.nodes, by_node, rows),
            live_by="kyoten",
            replication_age=age,
        )

    # ------------------------------------------------------------------ parts
    def _try(self, t: PgpoolTarget, deadline: float) -> Lease | None:
        try:
            return self.connector.acquire_target("pgpool-nodes", t, None, deadline, wait=False)
        except TargetError:  # e.g. no free Pgpool child for a second connection
            return None

    def _pg(self, t: PgTarget, deadline: float) -> Lease:
        lease = self.connector.acquire_target("pg", t, self.config.statement_timeout, deadline)
        assert lease is not None
        return lease

    def _live_check(self, t: PgTarget, deadline: float) -> LiveCheck:
        """One backend alone, on a fresh connection (the kept one just failed): only a
        refused or failed connection makes 'down'; a late or failed query 'unknown'."""
        try:
            with self.connector.target("pg", t, self.config.statement_timeout, deadline) as conn:
                return live_check_of(conn.query(IN_RECOVERY))
        except ConnectError:
            return LiveCheck("down", "unknown")
        except TargetError:
            return LiveCheck("unknown", "unknown")

    def _sr_columns(self, t: PgpoolTarget, deadline: float) -> tuple[Rows, float]:
        """The latest SHOW POOL_NODES rows and their age (-1: none read yet)."""
        refresher = self._replication.get(t.name)
        if refresher is None:
            refresher = Refresher(
                partial(self._pool_nodes, t), t.replication_refresh, f"kyoten-sr-{t.name}"
            )
            self._replication[t.name] = refresher
        reading = refresher.latest() or refresher.read_now(deadline)
        refresher.start()
        return (reading.value, round(reading.age(), 3)) if reading else ((), -1.0)

    def _pool_nodes(self, t: PgpoolTarget, deadline: float) -> Rows:
        """SHOW POOL_NODES on the second connection, so its live checks never hold a poll."""
        with self.connector.target("pgpool-nodes", t, None, deadline) as conn:
            return conn.query("SHOW POOL_NODES")
