"""Pgpool-II: SHOW commands over SQL, with PCP as the fallback when SQL is refused.

Columns are read by name, never by position: SHOW POOL_NODES has 10 columns in 4.0, 12 in
4.1/4.2 and 14 in 4.3+ (pg_monz broke on exactly this). Pgpool answers some SHOW commands
with an empty result set followed by the real one, so every result set is read and the last
one that carries rows is kept. Commands go over the simple query protocol, as psql sends them.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from kyoten.agent.config import PcpSettings
from kyoten.agent.errors import TargetError

Rows = tuple[dict[str, str], ...]


@dataclass(frozen=True)
class PgpoolRaw:
    """What one Pgpool-II said in one pass: SQL answers, or PCP answers as a fallback."""

    via_pcp: bool
    version: str
    nodes: Rows
    health: Rows
    processes: Rows | None
    num_init_children: int | None
    watchdog: dict[str, str] | None
    now: float


def show(conn: psycopg.Connection[Any], command: str) -> Rows:
    """Run one Pgpool SHOW command; rows as {column: text}."""
    cur = psycopg.ClientCursor(conn)
    cur.execute(command)
    best: Rows = ()
    while True:
        if cur.description is not None:
            names = [c.name for c in cur.description]
            rows = tuple(
                {n: "" if v is None else str(v) for n, v in zip(names, r, strict=True)}
                for r in cur.fetchall()
            )
            if rows or not best:
                best = rows
        if not cur.nextset():
            return best


def query_pgpool_sql(conn: psycopg.Connection[Any], now: float) -> PgpoolRaw:
    """The SQL pass: version, nodes, health-check stats (4.2+), processes, children."""
    version = show(conn, "SHOW POOL_VERSION")
    nodes = show(conn, "SHOW POOL_NODES")
    try:
        health = show(conn, "SHOW POOL_HEALTH_CHECK_STATS")
    except psycopg.Error:  # Pgpool < 4.2 has no such command
        health = ()
    processes = show(conn, "SHOW POOL_PROCESSES")
    children = show(conn, "PGPOOL SHOW num_init_children")
    n = children[0].get("num_init_children", "") if children else ""
    return PgpoolRaw(
        via_pcp=False,
        version=version[0].get("pool_version", "") if version else "",
        nodes=nodes,
        health=health,
        processes=processes,
        num_init_children=int(n) if n.isdigit() else None,
        watchdog=None,
        now=now,
    )


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
