"""Pgpool-II: SHOW commands over SQL, with PCP as the fallback when SQL is refused.

Columns are read by name, never by position: SHOW POOL_NODES has 10 columns in 4.0, 12 in
4.1/4.2 and 14 in 4.3+ (pg_monz broke on exactly this). Pgpool answers some SHOW commands
with an empty result set followed by the real one; libpq's PQexec keeps the last result set,
which is the real one. Commands go over the simple query protocol, as psql sends them.

What each version can tell (from the sources of each release branch, V4_1_STABLE to
V4_6_STABLE): SHOW POOL_PROCESSES has a per-child ``status`` from 4.3 only, so 4.1/4.2 busy
children come from SHOW POOL_POOLS' ``pool_connected`` (one row per child, pool slot and
backend); SHOW POOL_HEALTH_CHECK_STATS and pcp_health_check_stats exist from 4.2;
pcp_node_info takes ``-a`` from 4.3 but ``-n`` everywhere. A figure a version cannot give
is left out of the snapshot (None), never made up as 0.

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
import time
import weakref
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, NamedTuple

from kyoten.agent.config import PcpSettings
from kyoten.agent.errors import QueryError, TargetError
from kyoten.agent.snapshot import PgpoolRaw, Rows

if TYPE_CHECKING:
    import subprocess

    from kyoten.agent.sources.session import Session


class LiveCheck(NamedTuple):
    """kyoten's own check of one backend, with Pgpool 4.3's pg_status/pg_role meaning."""

    pg_status: str  # up, down, unknown (connected, but no answer in time)
    pg_role: str  # primary, standby, unknown


HEALTH = "SHOW POOL_HEALTH_CHECK_STATS"
PROCESSES = "SHOW POOL_PROCESSES"
BUSY_COLUMNS = ("status",)  # of SHOW POOL_PROCESSES: all that counting busy children needs
POOLS = "SHOW POOL_POOLS"
POOLS_COLUMNS = ("pool_pid", "backend_id", "pool_connected")  # likewise, before 4.3
REPLICATION_COLUMNS = ("replication_delay", "replication_state", "replication_sync_state")
_VIEW_COLUMNS = ("node_id", "hostname", "port", "status", "role", "last_status_change")


def show(session: Session, command: str, columns: Sequence[str] | None = None) -> Rows:
    """One SHOW command (simple query protocol, last result set, as psql sends it)."""
    return session.query(command, columns)


_FIXED: weakref.WeakKeyDictionary[object, tuple[str, int | None]] = weakref.WeakKeyDictionary()


def fixed_facts(session: Session) -> tuple[str, int | None]:
    """Version and num_init_children, read once per connection.

    Both change only with a Pgpool restart, which ends every client connection, so a kept
    connection never needs to ask twice.
    """
    known = _FIXED.get(session.raw)
    if known is None:
        version = show(session, "SHOW POOL_VERSION")
        children = show(session, "PGPOOL SHOW num_init_children")
        n = children[0].get("num_init_children", "") if children else ""
        known = (
            version[0].get("pool_version", "") if version else "",
            int(n) if n.isdigit() else None,
        )
        _FIXED[session.raw] = known
    return known


def release(version: str) -> tuple[int, int] | None:
    """(major, minor) of SHOW POOL_VERSION's '4.2.15 (chichiriboshi)'; None if unreadable."""
    parts = version.split(" ", 1)[0].split(".")
    if len(parts) < 2 or not parts[0].isdigit() or not parts[1].isdigit():
        return None
    return int(parts[0]), int(parts[1])


def has_health_stats(version: str) -> bool | None:
    """SHOW POOL_HEALTH_CHECK_STATS exists (4.2+); None: the version is unreadable."""
    known = release(version)
    return None if known is None else known >= (4, 2)


def busy_query(version: str) -> tuple[str, tuple[str, ...]]:
    """The SHOW command (and its columns) busy children are counted from on this version.

    4.3 added SHOW POOL_PROCESSES' ``status`` (``Wait for connection`` while idle). Before,
    SHOW POOL_PROCESSES fills ``database`` only from backend 0's slot, which says nothing
    once node 0 is down; SHOW POOL_POOLS has ``pool_connected`` (a client holds the slot)
    for every backend. An unreadable version gets SHOW POOL_PROCESSES: without a ``status``
    column the count is then unknown, not 0.
    """
    known = release(version)
    if known is not None and known < (4, 3):
        return POOLS, POOLS_COLUMNS
    return PROCESSES, BUSY_COLUMNS


def query_pgpool_sql(session: Session, now: float) -> PgpoolRaw:
    """The full SQL pass: version, nodes, health-check stats (4.2+), children in use."""
    version, children = fixed_facts(session)
    nodes = show(session, "SHOW POOL_NODES")
    health: Rows | None = None
    if has_health_stats(version) is not False:
        try:
            health = show(session, HEALTH)
        except QueryError as exc:  # unreadable version and no such command (< 4.2): unknown
            if exc.canceled:
                raise
            health = None
    return PgpoolRaw(
        via_pcp=False,
        version=version,
        nodes=nodes,
        health=health,
        processes=show(session, *busy_query(version)),
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
    """Parse ``pcp_* -v`` output: 'Key : value' lines, records separated by blank lines, or
    by nothing (4.1/4.2's pcp_proc_info -v): a key seen again starts the next record."""
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
            key = key.strip()
            if key in current:
                records.append(current)
                current = {}
            current[key] = value.strip()
    if current:
        records.append(current)
    return records


class PcpUnsupported(TargetError):
    """This Pgpool (or its PCP client tools) has no such command: the figure is unknown."""


class Pcp:
    """Runs pcp_* commands with the password handed over in a private PCPPASSFILE.

    A pcp command that reaches Pgpool and is refused there (an unknown node, the watchdog
    not enabled, an error on Pgpool's side) prints the error on stderr and still exits 0
    (``goto DISCONNECT_AND_EXIT; ... return 0`` in pcp_frontend_client.c of every release
    branch); so a command counts as answered only if it exited 0 *and* printed something.
    """

    def __init__(self, host: str, settings: PcpSettings, label: str) -> None:
        self.host = host
        self.settings = settings
        self.label = label

    def run(self, command: str, args: Sequence[str], timeout: float) -> str:
        """One command's output; any failure raises TargetError with pcp's own message."""
        result = self.run_all([(command, args)], timeout)[0]
        if isinstance(result, TargetError):
            raise result
        return result

    def run_all(
        self, calls: Sequence[tuple[str, Sequence[str]]], timeout: float
    ) -> list[str | TargetError]:
        """Several commands at once (each is a process and a PCP connection of its own),
        all within ``timeout``: each one's output, or the error it ended with."""
        import subprocess  # only the PCP fallback and the watchdog start processes
        import tempfile

        s = self.settings
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
            started: list[subprocess.Popen[str] | TargetError] = []
            for command, args in calls:
                argv = [command, "-h", self.host, "-p", str(s.port), "-U", s.user, "-w", *args]
                try:
                    started.append(
                        subprocess.Popen(
                            argv,
                            stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE,
                            text=True,
                            env=env,
                        )
                    )
                except FileNotFoundError:
                    started.append(
                        PcpUnsupported(
                            f"{self.label}: {command} not found (install pgpool2's PCP client "
                            "tools; pcp_health_check_stats exists from Pgpool-II 4.2)"
                        )
                    )
            end = time.monotonic() + max(timeout, 0.1)
            return [
                proc if isinstance(proc, TargetError) else self._finish(proc, command, end)
                for proc, (command, _) in zip(started, calls, strict=True)
            ]

    def _finish(self, proc: subprocess.Popen[str], command: str, end: float) -> str | TargetError:
        import subprocess

        where = f"{self.label} (pcp {self.host}:{self.settings.port})"
        try:
            out, err = proc.communicate(timeout=max(end - time.monotonic(), 0.01))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
            return TargetError(f"{where}: {command} did not answer in time")
        if proc.returncode == 0 and out.strip():
            return out
        msg = " ".join((err or out).split())[:300] or f"no output (exit {proc.returncode})"
        if "unknown PCP packet type" in msg:  # a Pgpool older than the client tools
            return PcpUnsupported(f"{where}: {command}: {msg}")
        return TargetError(f"{where}: {command}: {msg}")


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

_PCP_HEALTH_TO_SQL = {
    "Node Id": "node_id",
    "Host Name": "hostname",
    "Port": "port",
    "Status": "status",
    "Role": "role",
    "Last Status Change": "last_status_change",
    "Total Count": "total_count",
    "Success Count": "success_count",
    "Fail Count": "fail_count",
    "Skip Count": "skip_count",
    "Retry Count": "retry_count",
    "Average Retry Count": "average_retry_count",
    "Max Retry Count": "max_retry_count",
    "Max Health Check Duration": "max_duration",
    "Minimum Health Check Duration": "min_duration",
    "Average Health Check Duration": "average_duration",
    "Last Health Check": "last_health_check",
    "Last Successful Health Check": "last_successful_health_check",
    "Last Skip Health Check": "last_skip_health_check",
    "Last Failed Health Check": "last_failed_health_check",
}
"""pcp_health_check_stats -v titles (4.2+) → SHOW POOL_HEALTH_CHECK_STATS columns (same
struct, same formatting, in pcp_frontend_client.c and pool_process_reporting.c)."""


def _node_row(node_id: int, rec: Mapping[str, str]) -> dict[str, str]:
    row = {"node_id": str(node_id)}
    for k, v in rec.items():
        if k in _PCP_TO_SQL:
            row[_PCP_TO_SQL[k]] = "" if v == "none" else v
    return row


def node_from_pcp(node_id: int, text: str) -> dict[str, str]:
    """One ``pcp_node_info -n N -v`` record renamed to SHOW POOL_NODES column names.

    4.1/4.2 print no 'Backend Status Name'/'Backend Role', so those columns stay absent
    (unknown), as in their SHOW POOL_NODES; 4.3+ print 'none' for an empty state.
    """
    return _node_row(node_id, next(iter(parse_verbose(text)), {}))


def nodes_from_pcp(text: str) -> Rows:
    """``pcp_node_info -a -v`` records (4.3+, one per node in node order), renamed."""
    return tuple(_node_row(i, rec) for i, rec in enumerate(parse_verbose(text)))


def health_from_pcp(text: str) -> dict[str, str]:
    """One ``pcp_health_check_stats -n N -v`` record as a SHOW POOL_HEALTH_CHECK_STATS row."""
    rec = next(iter(parse_verbose(text)), {})
    return {_PCP_HEALTH_TO_SQL[k]: v for k, v in rec.items() if k in _PCP_HEALTH_TO_SQL}


def processes_from_pcp(text: str) -> Rows | None:
    """``pcp_proc_info -a -v`` as the rows SHOW gives for counting busy children; None if
    it tells nothing (``No process information available``, or no field to count by).

    Both print one record per child, pool slot and backend (``get_pools()``, as SHOW
    POOL_POOLS). 4.3+ (``output_procinfo_result()`` titles ``PID``, ``Status``, …) carry the
    child's own status in each record (``pi->status``, as SHOW POOL_PROCESSES' ``status``):
    one row per child. 4.1/4.2 (titles ``Connected``, ``PID``, ``Backend ID``, records not
    separated) have no status but SHOW POOL_POOLS' ``pool_connected``: one row per record,
    counted per child on the backends that are up, as over SQL (``busy_query``).
    """
    records = [r for r in parse_verbose(text) if r.get("PID")]
    if not records:
        return None
    if "Status" in records[0]:
        status = {r["PID"]: r.get("Status", "") for r in records}
        return tuple({"pool_pid": pid, "status": s} for pid, s in status.items())
    if "Connected" in records[0]:
        return tuple(
            {
                "pool_pid": r["PID"],
                "backend_id": r.get("Backend ID", ""),
                "pool_connected": r.get("Connected", ""),
            }
            for r in records
        )
    return None


def node_count(text: str, where: str) -> int:
    """``pcp_node_count``: one number."""
    words = text.split()
    if len(words) != 1 or not words[0].isdigit():
        raise TargetError(f"{where}: pcp_node_count printed {text.strip()[:80]!r}")
    return int(words[0])


def query_pgpool_pcp(pcp: Pcp, now: float, timeout: float) -> PgpoolRaw:
    """The PCP pass, for when Pgpool refuses SQL (e.g. every backend down in its view).

    Only options every version accepts: ``pcp_node_info -a`` is 4.3+, so each node is asked
    by ``-n`` (4.1+), all nodes and their health-check stats (4.2+) at once, after
    pcp_node_count, with the children's state (``pcp_proc_info -a -v``, 4.0+): busy children
    are seen even when every child is taken, which is when SQL is refused in UserParameter
    mode. Health-check stats a Pgpool cannot give (4.1) are unknown (None), and so are busy
    children when pcp_proc_info fails or tells nothing countable (the snapshot stands
    without them); pcp_node_count, pcp_proc_count or pcp_node_info failing, or any command
    failing other than as unsupported, is an error with pcp's message.
    """
    end = time.monotonic() + timeout
    n = node_count(pcp.run("pcp_node_count", [], timeout), pcp.label)
    calls: list[tuple[str, Sequence[str]]] = [
        ("pcp_proc_count", []),
        ("pcp_proc_info", ["-a", "-v"]),
    ]
    calls += [("pcp_node_info", ["-n", str(i), "-v"]) for i in range(n)]
    calls += [("pcp_health_check_stats", ["-n", str(i), "-v"]) for i in range(n)]
    results = pcp.run_all(calls, max(end - time.monotonic(), 0.1))
    count, procs, infos, stats = results[0], results[1], results[2 : n + 2], results[n + 2 :]
    for result in (count, *infos, *stats):
        if isinstance(result, TargetError) and not isinstance(result, PcpUnsupported):
            raise result
    if isinstance(count, TargetError):
        raise count
    nodes = []
    for i, info in enumerate(infos):
        if isinstance(info, TargetError):
            raise info
        nodes.append(node_from_pcp(i, info))
    health: Rows | None = tuple(health_from_pcp(h) for h in stats if isinstance(h, str))
    if any(isinstance(h, TargetError) for h in stats):
        health = None  # 4.1: no pcp_health_check_stats
    return PgpoolRaw(
        via_pcp=True,
        version="",
        nodes=tuple(nodes),
        health=health,
        processes=processes_from_pcp(procs) if isinstance(procs, str) else None,
        num_init_children=len(count.split()) or None,
        watchdog=None,
        now=now,
    )


def query_watchdog(pcp: Pcp, timeout: float) -> dict[str, str]:
    """Cluster summary from ``pcp_watchdog_info -v`` plus the local node's state.

    The first record is the cluster summary (quorum, leader); the next one is the local node
    (pcp_watchdog_info lists it first), whose 'Status Name' is its watchdog state. A refusal
    (e.g. 'watchdog is not enabled') is an error, never "not used": the target says it is.
    """
    records = parse_verbose(pcp.run("pcp_watchdog_info", ["-v"], timeout))
    if not records or "Quorum state" not in records[0]:
        raise TargetError(f"{pcp.label}: pcp_watchdog_info -v printed no cluster information")
    summary = dict(records[0])
    if len(records) > 1:
        summary["Local node state"] = records[1].get("Status Name", "")
    return summary
