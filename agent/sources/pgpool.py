"""Pgpool-II: SHOW commands over SQL, with PCP as the fallback when SQL is refused.

Columns are read by name, never by position: SHOW POOL_NODES has 10 columns in 4.0, 12 in
4.1/4.2 and 14 in 4.3+ (pg_monz broke on exactly this). Pgpool answers some SHOW commands
with an empty result set followed by the real one; libpq's PQexec keeps the last result set,
which is the real one. Commands go over the simple query protocol, as psql sends them.

SHOW POOL_NODES is slow by design: for pg_status and pg_role Pgpool 4.3+ pings every backend
and opens a fresh connection to each to ask pg_is_in_recovery() (about 11 ms for two local
backends, up to Pgpool's connect_timeout per unreachable one). Everything else comes from
Pgpool's shared memory in about 0.1 ms per command. So the plugin reads Pgpool's view from
SHOW POOL_HEALTH_CHECK_STATS, makes the live checks itself over its kept connections
(``LiveCheck``), and reads the sr-check columns of SHOW POOL_NODES in the background
(``compose_nodes`` joins the three).
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from kyoten.agent.config import PcpSettings
from kyoten.agent.errors import TargetError
from kyoten.agent.snapshot import PgpoolRaw, Rows
from kyoten.agent.sources.libpq import simple_query


@dataclass(frozen=True)
class LiveCheck:
    """kyoten's own check of one backend, with Pgpool 4.3's pg_status/pg_role meaning."""

    pg_status: str  # up, down, unknown (connected, but no answer in time)
    pg_role: str  # primary, standby, unknown


HEALTH = "SHOW POOL_HEALTH_CHECK_STATS"
PROCESSES = "SHOW POOL_PROCESSES"
BUSY_COLUMNS = ("status",)  # of SHOW POOL_PROCESSES: all that counting busy children needs
REPLICATION_COLUMNS = ("replication_delay", "replication_state", "replication_sync_state")
_VIEW_COLUMNS = ("node_id", "hostname", "port", "status", "role", "last_status_change")


show = simple_query  # the name the SHOW commands read best with


_FIXED: weakref.WeakKeyDictionary[psycopg.Connection[Any], tuple[str, int | None]] = (
    weakref.WeakKeyDictionary()
)


def fixed_facts(conn: psycopg.Connection[Any]) -> tuple[str, int | None]:
    """Version and num_init_children, read once per connection.

    Both change only with a Pgpool restart, which ends every client connection, so a kept
    connection never needs to ask twice.
    """
    known = _FIXED.get(conn)
    if known is None:
        version = show(conn, "SHOW POOL_VERSION")
        children = show(conn, "PGPOOL SHOW num_init_children")
        n = children[0].get("num_init_children", "") if children else ""
        known = (
            version[0].get("pool_version", "") if version else "",
            int(n) if n.isdigit() else None,
        )
        _FIXED[conn] = known
    return known


def query_pgpool_sql(conn: psycopg.Connection[Any], now: float) -> PgpoolRaw:
    """The full SQL pass: version, nodes, health-check stats (4.2+), processes, children."""
    version, children = fixed_facts(conn)
    nodes = show(conn, "SHOW POOL_NODES")
    try:
        health = show(conn, HEALTH)
    except psycopg.Error:  # Pgpool < 4.2 has no such command
        health = ()
    return PgpoolRaw(
        via_pcp=False,
        version=version,
        nodes=nodes,
        health=health,
        processes=show(conn, PROCESSES, BUSY_COLUMNS),
        num_init_children=children,
        watchdog=None,
        now=now,
    )


def view_raw(health: Rows, processes: Rows, fixed: tuple[str, int | None], now: float) -> PgpoolRaw:
    """Pgpool's view only, from shared memory: no backend contacted.

    ``nodes`` holds the view columns of SHOW POOL_NODES taken from SHOW
    POOL_HEALTH_CHECK_STATS (same shared memory, same formatting); the live and sr-check
    columns are added by ``compose_nodes``.
    """
    return PgpoolRaw(
        via_pcp=False,
        version=fixed[0],
        nodes=tuple({c: h.get(c, "") for c in _VIEW_COLUMNS} for h in health),
        health=health,
        processes=processes,
        num_init_children=fixed[1],
        watchdog=None,
        now=now,
    )


def order_problem(
    view: Rows, backends: Sequence[str], addresses: Mapping[str, tuple[str, str]]
) -> str | None:
    """Why ``backends`` (target names in node order) cannot be right for this Pgpool, if so.

    Pgpool's backend_hostname may be a name where kyoten.toml has an address, so only a
    node whose host and port are exactly those of *another* listed target proves a wrong
    order; that one mistake would swap two backends' pg_status and pg_role unnoticed.
    """
    owner = {addr: name for name, addr in addresses.items() if name in backends}
    for row in view:
        node = int(row.get("node_id", "0") or 0)
        if node >= len(backends):
            continue  # not listed: nothing claimed about it (the caller falls back)
        mapped = backends[node]
        seen = owner.get((row.get("hostname", ""), row.get("port", "")))
        if seen is not None and seen != mapped:
            return (
                f"node {row.get('node_id')} is {row.get('hostname')}:{row.get('port')}, "
                f"postgres target {seen!r}, but backends names {mapped!r} there; "
                "list them in node order"
            )
    return None


def compose_nodes(view: Rows, live: Mapping[str, LiveCheck], replication: Rows) -> Rows:
    """SHOW POOL_NODES rows from Pgpool's view, kyoten's live checks and earlier sr-check data.

    Sr-check columns are taken from an earlier SHOW POOL_NODES row only when it describes
    the same backend (node id, host and port), so a reload that re-numbers backends cannot
    lend one backend's delay to another. A backend without a live check reads 'unknown'.
    """
    earlier = {(r.get("node_id"), r.get("hostname"), r.get("port")): r for r in replication}
    rows = []
    for v in view:
        check = live.get(v.get("node_id", ""), LiveCheck("unknown", "unknown"))
        old = earlier.get((v.get("node_id"), v.get("hostname"), v.get("port")), {})
        rows.append(
            {
                **v,
                "pg_status": check.pg_status,
                "pg_role": check.pg_role if check.pg_status == "up" else "unknown",
                **{c: old.get(c, "") for c in REPLICATION_COLUMNS},
            }
        )
    return tuple(rows)


def parse_verbose(text: str) -> list[dict[str, str]]:
    """Parse ``pcp_* -v`` output: 'Key : value' lines, records separated by blank lines."""
    records: list[dict[str, str]] = []
    current: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            if current:
                records.append(current)
                current = {}
            continue
        key, sep, value = line.partition(":")
        if sep:
            current[key.strip()] = value.strip()
    if current:
        records.append(current)
    return records


class Pcp:
    """Runs pcp_* commands with the password handed over in a private PCPPASSFILE."""

    def __init__(self, host: str, settings: PcpSettings, label: str) -> None:
        self.host = host
        self.settings = settings
        self.label = label

    def run(self, command: str, args: Sequence[str], timeout: float) -> str:
        s = self.settings
        argv = [command, "-h", self.host, "-p", str(s.port), "-U", s.user, "-w", *args]
        with tempfile.TemporaryDirectory(prefix="kyoten-pcp-") as tmp:
            env = dict(os.environ)
            if s.password is not None:
                passfile = os.path.join(tmp, "pcppass")
                fd = os.open(passfile, os.O_WRONLY | os.O_CREAT, 0o600)
                with os.fdopen(fd, "w") as fh:
                    fh.write(f"*:*:{s.user}:{s.password}\n")
                env["PCPPASSFILE"] = passfile
            elif s.pcppass:
                env["PCPPASSFILE"] = s.pcppass
            try:
                proc = subprocess.run(
                    argv,
                    capture_output=True,
                    text=True,
                    env=env,
                    timeout=max(timeout, 0.1),
                    stdin=subprocess.DEVNULL,
                )
            except FileNotFoundError:
                raise TargetError(
                    f"{self.label}: {command} not found (install pgpool2's PCP client tools)"
                ) from None
            except subprocess.TimeoutExpired:
                raise TargetError(
                    f"{self.label} (pcp {self.host}:{s.port}): {command} did "
                    f"not answer within {timeout:.1f} s"
                ) from None
        if proc.returncode != 0:
            msg = " ".join((proc.stderr or proc.stdout).split())[:300]
            raise TargetError(f"{self.label} (pcp {self.host}:{s.port}): {command}: {msg}")
        return proc.stdout


_PCP_TO_SQL = {
    "Hostname": "hostname",
    "Port": "port",
    "Status Name": "status",
    "Backend Status Name": "pg_status",
    "Role": "role",
    "Backend Role": "pg_role",
    "Replication Delay": "replication_delay",
    "Replication State": "replication_state",
    "Replication Sync State": "replication_sync_state",
    "Last Status Change": "last_status_change",
}


def nodes_from_pcp(text: str) -> Rows:
    """pcp_node_info -a -v records, renamed to the SHOW POOL_NODES column names."""
    rows = []
    for i, rec in enumerate(parse_verbose(text)):
        row = {"node_id": str(i)}
        for k, v in rec.items():
            if k in _PCP_TO_SQL:
                row[_PCP_TO_SQL[k]] = "" if v == "none" else v
        rows.append(row)
    return tuple(rows)


def query_pgpool_pcp(pcp: Pcp, now: float, timeout: float) -> PgpoolRaw:
    """The PCP pass, for when Pgpool refuses SQL (e.g. every backend down in its view)."""
    nodes = nodes_from_pcp(pcp.run("pcp_node_info", ["-a", "-v"], timeout))
    count = pcp.run("pcp_proc_count", [], timeout).split()
    return PgpoolRaw(
        via_pcp=True,
        version="",
        nodes=nodes,
        health=(),
        processes=None,
        num_init_children=len(count) or None,
        watchdog=None,
        now=now,
    )


def query_watchdog(pcp: Pcp, timeout: float) -> dict[str, str]:
    """Cluster summary from ``pcp_watchdog_info -v`` plus the local node's state.

    The first record is the cluster summary (quorum, leader); the next one is the local node
    (pcp_watchdog_info lists it first), whose 'Status Name' is its watchdog state.
    """
    records = parse_verbose(pcp.run("pcp_watchdog_info", ["-v"], timeout))
    summary = dict(records[0]) if records else {}
    if len(records) > 1:
        summary["Local node state"] = records[1].get("Status Name", "")
    return summary
