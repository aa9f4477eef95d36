"""Pure shaping: raw snapshots → the JSON objects the catalogue declares, and LLD rows.

Nothing here does I/O; every derived state (lags, receiver state, drift, agreement between
Pgpools) is a function of immutable snapshots (``kyoten.agent.snapshot``), so it is tested
with plain data. Every code it emits comes from the catalogue's value maps, which also label
the codes in the templates, so the two cannot disagree; it reads them from their rendering in
``kyoten.agent.keytable``, which ``kyoten get`` loads instead of the whole catalogue.
"""

from __future__ import annotations

import math

from kyoten.agent.keytable import VALUE_MAPS
from kyoten.agent.records import NamedTuple

# kyoten get imports no typing (see kyoten.agent.records); mypy reads TYPE_CHECKING as true
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence
    from typing import Any

    from kyoten.agent.snapshot import PgpoolRaw, PgRaw, Rows, ZabbixRaw

    Json = dict[str, Any]


class Codes:
    """One of the catalogue's value maps (``ValueMap``) as the shaping step reads it."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.words, self.other = VALUE_MAPS[name]
        self._codes = dict(self.words)  # looked up on every poll

    def code(self, word: str) -> int:
        """The code of ``word`` (matched exactly), or ``other`` when it is not listed."""
        found = self._codes.get(word)
        if found is not None:
            return found
        if self.other is None:
            raise KeyError(f"value map {self.name!r} has no code for {word!r}")
        return self.other


ROLE_MAP = Codes("kyoten PostgreSQL role")
RECEIVER_MAP = Codes("kyoten WAL receiver state")
STATUS_MAP = Codes("kyoten Pgpool backend status")
PG_STATUS_MAP = Codes("kyoten Pgpool pg_status")
QUORUM_MAP = Codes("kyoten Pgpool quorum")
NODE_STATUS = Codes("kyoten Zabbix HA node status")


def _lag(ref: float, pos: Any) -> int:
    """Bytes from ``pos`` to ``ref``; a missing position (NULL) counts as fully behind 0."""
    if pos is None:
        return 0
    return max(int(ref - float(pos)), 0)


def _secs(value: Any) -> float:
    """An interval in seconds; NULL (caught up and idle) is 0."""
    return round(float(value), 6) if value is not None else 0.0


PRIMARY, STANDBY = ROLE_MAP.code("primary"), ROLE_MAP.code("standby")
RECEIVER_STOPPED, RECEIVER_PRIMARY = RECEIVER_MAP.code("stopped"), RECEIVER_MAP.code("primary")


def receiver_state(raw: PgRaw) -> int:
    """RECEIVER_MAP's code: stopped (also without a receiver row), streaming, primary, or
    starting/waiting/restarting/stopping."""
    if not raw.in_recovery:
        return RECEIVER_PRIMARY
    status = None if raw.receiver is None else raw.receiver.get("status")
    return RECEIVER_STOPPED if status is None else RECEIVER_MAP.code(status)


def replay_delay(raw: PgRaw) -> float:
    """Seconds the standby's replay is behind what it received; 0 when it has replayed all.

    The usual now() - pg_last_xact_replay_timestamp() grows on an idle primary although
    nothing is pending; comparing receive and replay positions first avoids that. A dead
    receiver also reads 0 here — that is what ``receiver_state`` is for.
    """
    if not raw.in_recovery or raw.receive_lsn is None or raw.receive_lsn <= raw.ref_lsn:
        return 0.0
    if raw.last_replay_ts is None:  # nothing replayed since start-up: age unknown
        return 0.0
    return round(max(raw.now - raw.last_replay_ts, 0.0), 3)


def _inactive_seconds(raw: PgRaw, since: Any) -> float | None:
    """Seconds since a slot stopped being streamed: PostgreSQL 17's inactive_since (NULL while
    streamed: 0). Before 17 no server says, so it is unknown (None), not 0."""
    if raw.version < 170000:
        return None
    return 0.0 if since is None else round(max(raw.now - float(since), 0.0), 3)


def shape_pg(
    raw: PgRaw, *, target: str, site: str, expected_standbys: Sequence[str], duration: float
) -> Json:
    """The ``kyoten.pg`` object of one server.

    Every standby in ``expected_standbys`` has a row whatever this server's role, with
    ``expected`` 1 only while it is primary: a row that vanished when the server turned
    standby would leave its triggers with nothing to resolve them.
    """
    ref = raw.ref_lsn
    must_stream = set() if raw.in_recovery else set(expected_standbys)
    standbys: list[Json] = []
    for s in raw.standbys:
        name = s.get("application_name") or ""
        standbys.append(
            {
                "application_name": name,
                "client_addr": s.get("client_addr") or "",
                "connected": 1,
                "expected": 1 if name in must_stream else 0,
                "state": s.get("state") or "",
                "sync_state": s.get("sync_state") or "",
                "sent_lag_bytes": _lag(ref, s.get("sent")),
                "write_lag_bytes": _lag(ref, s.get("write")),
                "flush_lag_bytes": _lag(ref, s.get("flush")),
                "replay_lag_bytes": _lag(ref, s.get("replay")),
                "write_lag": _secs(s.get("write_lag")),
                "flush_lag": _secs(s.get("flush_lag")),
                "replay_lag": _secs(s.get("replay_lag")),
            }
        )
    present = {s["application_name"] for s in standbys}
    for name in expected_standbys:
        if name not in present:
            standbys.append(
                {
                    "application_name": name,
                    "client_addr": "",
                    "connected": 0,
                    "expected": 1 if name in must_stream else 0,
                    "state": "missing" if name in must_stream else "",
                    "sync_state": "",
                    "sent_lag_bytes": 0,
                    "write_lag_bytes": 0,
                    "flush_lag_bytes": 0,
                    "replay_lag_bytes": 0,
                    "write_lag": 0.0,
                    "flush_lag": 0.0,
                    "replay_lag": 0.0,
                }
            )
    rcv = raw.receiver or {}
    flushed = rcv.get("flushed")
    latest_end = rcv.get("latest_end")
    sender = f"{rcv['sender_host']}:{rcv['sender_port']}" if rcv.get("sender_host") else ""
    slots = [
        {
            "slot_name": s.get("slot_name") or "",
            "present": 1,
            "slot_type": s.get("slot_type") or "",
            "active": 1 if s.get("active") else 0,
            "wal_status": s.get("wal_status") or "",
            "retained_bytes": _lag(ref, s.get("restart")) if s.get("restart") is not None else 0,
            "safe_wal_size": float(s["safe_wal_size"])
            if s.get("safe_wal_size") is not None
            else -1.0,
            "inactive_seconds": _inactive_seconds(raw, s.get("inactive_since")),
        }
        for s in raw.slots
    ]
    timeline = (
        raw.primary_tli
        if raw.primary_tli is not None
        else (rcv.get("received_tli") or raw.checkpoint_tli or 0)
    )
    return {
        "target": target,
        "site": site,
        "duration": round(duration, 6),
        "server_version": raw.version,
        "in_recovery": STANDBY if raw.in_recovery else PRIMARY,
        "timeline": int(timeline),
        "wal_lsn": int(ref),
        "standbys_connected": sum(1 for s in standbys if s["connected"]),
        "receiver_state": receiver_state(raw),
        "receiver_sender": sender,
        "receiver_last_msg_age": round(max(raw.now - rcv["last_msg"], 0.0), 3)
        if rcv.get("last_msg") is not None
        else -1.0,
        "receive_lag_bytes": _lag(float(latest_end), flushed)
        if raw.in_recovery and latest_end is not None
        else 0,
        "replay_lag_bytes": _lag(raw.receive_lsn, ref)
        if raw.in_recovery and raw.receive_lsn is not None
        else 0,
        "replay_delay": replay_delay(raw),
        "replay_paused": 1 if raw.replay_paused else 0,
        "standbys": standbys,
        "slots": slots,
    }


# ----------------------------------------------------------------------------- Pgpool-II
UP_STATES = (STATUS_MAP.code("waiting"), STATUS_MAP.code("up"))
HELD_DOWN = (STATUS_MAP.code("down"), STATUS_MAP.code("quarantine"))  # detached by Pgpool
PG_UP = PG_STATUS_MAP.code("up")
WATCHDOG_NOT_USED = float(QUORUM_MAP.code(""))


def status_code(text: str) -> int:
    """Pgpool's status of a backend as STATUS_MAP's code."""
    return STATUS_MAP.code(text.strip().lower())


def pg_status_code(text: str) -> int:
    """The live pg_status of a backend as PG_STATUS_MAP's code."""
    return PG_STATUS_MAP.code(text.strip().lower())


def parse_delay(text: str) -> tuple[float, float]:
    """replication_delay → (bytes, seconds); the other one is -1.

    4.4+ with delay_threshold_by_time prints '0.000568 second(s)'; pcp prints seconds
    without the suffix, which cannot be told from bytes: it is read as bytes, as before 4.4.
    """
    t = text.strip()
    if not t:
        return 0.0, -1.0
    if t.endswith(("second", "seconds")):
        return -1.0, float(t.split()[0])
    try:
        return float(t), -1.0
    except ValueError:
        return 0.0, -1.0


_LOCAL_TIMES: dict[str, int] = {}


def parse_local_time(text: str) -> int:
    """Pgpool's '%F %T' local timestamps → epoch seconds (0 when empty/unparsable).

    Cached: the same few timestamps (last status change, last health check) come back on
    every poll, and strptime is the dearest step of shaping a Pgpool snapshot. A dict
    rather than functools.lru_cache, which would load functools into every ``kyoten get``.
    """
    found = _LOCAL_TIMES.get(text)
    if found is None:
        if len(_LOCAL_TIMES) >= 256:
            _LOCAL_TIMES.clear()
        found = _LOCAL_TIMES[text] = _parse_local_time(text)
    return found


def _parse_local_time(text: str) -> int:
    import datetime as dt  # a Pgpool's figures only

    try:
        return int(dt.datetime.strptime(text.strip(), "%Y-%m-%d %H:%M:%S").timestamp())
    except ValueError:
        return 0


def _num(row: Mapping[str, str], key: str) -> float:
    """A numeric column; empty, garbage and non-finite values are 0.

    Pgpool prints 'nan' for the average health-check duration of a backend it never
    checked; JSON has no NaN, and Zabbix rejects the whole document if one slips through.
    """
    try:
        value = float(row.get(key, "") or 0)
    except ValueError:
        return 0.0
    return value if math.isfinite(value) else 0.0


def _health_figures(h: Mapping[str, str] | None, now: float) -> Json:
    """A backend's health-check figures; all None when this Pgpool cannot give them (4.1,
    or no row for the node): unknown, not 0."""
    if h is None:
        return dict.fromkeys(HEALTH_FIELDS)
    last_ok = parse_local_time(h.get("last_successful_health_check", ""))
    return {
        "hc_total": int(_num(h, "total_count")),
        "hc_fail": int(_num(h, "fail_count")),
        "hc_retry": int(_num(h, "retry_count")),
        "hc_skip": int(_num(h, "skip_count")),
        "hc_avg_duration": round(_num(h, "average_duration") / 1000.0, 6),
        "hc_last_ok_age": round(max(now - last_ok, 0.0), 3) if last_ok else -1.0,
    }


HEALTH_FIELDS = (
    "hc_total",
    "hc_fail",
    "hc_retry",
    "hc_skip",
    "hc_avg_duration",
    "hc_last_ok_age",
)
IDLE_CHILD = ("Wait for connection", "")  # SHOW POOL_PROCESSES status of a free child (4.3+)


def children_in_use(processes: Rows | None, up_nodes: Iterable[int]) -> int | None:
    """Children serving a client, from what this Pgpool version reports; None if it cannot.

    4.3+: SHOW POOL_PROCESSES rows whose ``status`` is not 'Wait for connection'. Before
    4.3 there is no ``status``: SHOW POOL_POOLS rows with ``pool_connected`` 1 (a client
    holds that slot), counted once per child and only on backends Pgpool has up, because
    Pgpool clears the flag only on backends that are still valid (a slot of a backend
    that went down while in use keeps reading 1).
    """
    if not processes:
        return None
    first = processes[0]
    if "status" in first:
        return sum(1 for p in processes if p.get("status", "") not in IDLE_CHILD)
    if "pool_connected" in first:
        up = {str(n) for n in up_nodes}
        return len(
            {
                p.get("pool_pid")
                for p in processes
                if p.get("pool_connected") == "1" and p.get("backend_id") in up
            }
        )
    return None


def _children_total(raw: PgpoolRaw) -> int:
    if raw.num_init_children:
        return raw.num_init_children
    rows = raw.processes or ()
    return len({p.get("pool_pid") for p in rows}) if rows and "pool_pid" in rows[0] else len(rows)


def backend_name(
    node_id: int, host: str, port: str, listed: Sequence[str], known: Mapping[tuple[str, str], str]
) -> str:
    """A backend's name in kyoten.toml: the target listed at its node id in the Pgpool
    target's ``backends``, else the [postgres.*] target with its host and port, else its
    address; operators read it in trigger names instead of host:port."""
    if 0 <= node_id < len(listed):
        return listed[node_id]
    return known.get((host, port)) or f"{host}:{port}"


def shape_pgpool(
    raw: PgpoolRaw,
    *,
    target: str,
    site: str,
    watchdog_enabled: bool,
    duration: float,
    listed: Sequence[str] = (),
    addresses: Mapping[tuple[str, str], str] | None = None,
) -> Json:
    """The ``kyoten.pgpool`` object of one Pgpool-II.

    ``listed`` (the target's ``backends``, in node order) and ``addresses`` ((host, port) of
    each [postgres.*] target → its name) name the backends as kyoten.toml does.
    """
    health = None if raw.health is None else {h.get("node_id", ""): h for h in raw.health}
    backends: list[Json] = []
    for n in raw.nodes:
        node_id = int(n.get("node_id", "0") or 0)
        st = status_code(n.get("status", ""))
        pgst = pg_status_code(n.get("pg_status", ""))
        delay_b, delay_s = parse_delay(n.get("replication_delay", ""))
        backends.append(
            {
                "node_id": node_id,
                "name": backend_name(
                    node_id, n.get("hostname", ""), n.get("port", ""), listed, addresses or {}
                ),
                "backend": f"{n.get('hostname', '')}:{n.get('port', '')}",
                "status": st,
                "pg_status": pgst,
                # no live check at all (4.1/4.2 SHOW POOL_NODES, their pcp_node_info):
                # whether Pgpool holds a live backend down is unknown, not "no"
                "drift": (1 if st in HELD_DOWN and pgst == PG_UP else 0)
                if "pg_status" in n
                else None,
                "role": n.get("role", ""),
                "pg_role": n.get("pg_role", "") or "unknown",
                "is_primary": 1 if n.get("role", "") == "primary" else 0,
                "delay_bytes": delay_b,
                "delay_seconds": delay_s,
                "replication_state": n.get("replication_state", ""),
                "replication_sync_state": n.get("replication_sync_state", ""),
                "last_status_change": parse_local_time(n.get("last_status_change", "")),
                **_health_figures(None if health is None else health.get(str(node_id)), raw.now),
            }
        )
    primary = next((b for b in backends if b["is_primary"] and b["status"] in UP_STATES), None)
    up_nodes = [b["node_id"] for b in backends if b["status"] in UP_STATES]
    busy = children_in_use(raw.processes, up_nodes)
    total = _children_total(raw)
    drifts = [b["drift"] for b in backends if b["drift"] is not None]
    live_roles = any("pg_role" in n for n in raw.nodes) or not raw.nodes
    wd = raw.watchdog or {}
    return {
        "target": target,
        "site": site,
        "duration": round(duration, 6),
        "version": raw.version,
        "via_pcp": 1 if raw.via_pcp else 0,
        "live_checks": raw.live_by,
        "replication_age": raw.replication_age,
        "backends_total": len(backends),
        "backends_up": sum(1 for b in backends if b["status"] in UP_STATES),
        "primary_node_id": float(primary["node_id"]) if primary else -1.0,
        "primary_backend": primary["backend"] if primary else "",
        "primary_name": primary["name"] if primary else "",
        "pg_primaries": sum(1 for b in backends if b["pg_role"] == "primary")
        if live_roles
        else None,
        "drift_count": sum(drifts) if drifts or not backends else None,
        "children_total": total,
        "children_busy": busy,
        "children_busy_pct": round(100.0 * busy / total, 2) if busy is not None and total else None,
        "watchdog_enabled": 1 if watchdog_enabled else 0,
        "watchdog_quorum": quorum_code(wd.get("Quorum state", ""))
        if watchdog_enabled
        else WATCHDOG_NOT_USED,
        "watchdog_local_state": _local_state(wd),
        "watchdog_leader": wd.get("Leader Node Name", wd.get("Master Node Name", "")),
        "watchdog_alive_remote": _num(wd, "Alive Remote Nodes") if watchdog_enabled else -1.0,
        "backends": backends,
    }


def quorum_code(text: str) -> float:
    """pcp_watchdog_info's 'Quorum state' as QUORUM_MAP's code: its first phrase the text
    contains (the empty one is no text at all, not a part of every text)."""
    t = text.upper()
    if not t:
        return WATCHDOG_NOT_USED
    for phrase, code in QUORUM_MAP.words:
        if phrase and phrase in t:
            return float(code)
    return float(QUORUM_MAP.code(t))  # no phrase in it: the map's other code


def _local_state(wd: Mapping[str, str]) -> str:
    return wd.get("Local node state", "")


# ----------------------------------------------------------------------------- Zabbix HA
# ha_node.status is passed on as it is; these name the codes it is counted by
HA_STANDBY = NODE_STATUS.code("standby")
HA_UNAVAILABLE = NODE_STATUS.code("unavailable")
HA_ACTIVE = NODE_STATUS.code("active")


def shape_zabbix(raw: ZabbixRaw, *, target: str, site: str, duration: float) -> Json:
    """The ``kyoten.zabbix.ha`` object of one Zabbix database."""
    nodes = [
        {
            "id": str(n["ha_nodeid"]),
            "name": str(n["name"] or ""),
            "address": f"{n['address']}:{n['port']}",
            "status": int(n["status"]),
            "lastaccess_age": round(max(raw.now - float(n["lastaccess"] or 0), 0.0), 3),
        }
        for n in raw.nodes
    ]
    active = [str(n["name"]) for n in nodes if n["status"] == HA_ACTIVE]
    return {
        "target": target,
        "site": site,
        "duration": round(duration, 6),
        "nodes_total": len(nodes),
        "nodes_active": len(active),
        "nodes_standby": sum(1 for n in nodes if n["status"] == HA_STANDBY),
        "nodes_unavailable": sum(1 for n in nodes if n["status"] == HA_UNAVAILABLE),
        "active_node": ",".join(sorted(active)),
        "nodes": nodes,
    }


# ----------------------------------------------------------------------------- cross-site
class Outcome(NamedTuple):
    """One target's shaped object, or why it could not be had.

    ``connected`` is False when no connection could be made at all (refused, unreachable,
    no answer within connect_timeout): the server is down, not merely slow to answer.
    ``site`` and ``address`` are the target's, from kyoten.toml.
    """

    target: str
    value: Json | None
    error: str | None = None
    connected: bool = True
    site: str = ""
    address: str = ""


def _normal_status(code: int) -> str:
    return "up" if code in UP_STATES else "down" if code in HELD_DOWN else "other"


def shape_cross(
    pg: Iterable[Outcome], pools: Iterable[Outcome], zbx: Iterable[Outcome], *, duration: float
) -> Json:
    """Invariants across sites: primaries, Pgpool agreement, drift, active Zabbix nodes."""
    pg, pools, zbx = list(pg), list(pools), list(zbx)
    pg_ok = [o for o in pg if o.value is not None]
    primaries = sorted(
        str(o.target) for o in pg_ok if o.value and o.value["in_recovery"] == PRIMARY
    )
    pool_ok = [o for o in pools if o.value is not None]
    views = {o.target: (o.value or {}).get("primary_backend", "") for o in pool_ok}
    statuses: dict[str, set[str]] = {}
    drift = 0
    for o in pool_ok:
        for b in (o.value or {}).get("backends", []):
            statuses.setdefault(b["backend"], set()).add(_normal_status(b["status"]))
            drift += b["drift"] or 0  # None: that Pgpool cannot tell (4.1/4.2)
    zbx_active: set[str] = set()
    for o in zbx:
        if o.value:
            zbx_active.update(n["name"] for n in o.value["nodes"] if n["status"] == HA_ACTIVE)
    failed = [o for o in (*pg, *pools, *zbx) if o.error is not None]
    servers = [
        {
            "target": o.target,
            "site": o.site,
            "address": o.address,
            "up": 0 if o.value is None and not o.connected else 1,
            "is_primary": None if o.value is None else int(o.value["in_recovery"] == PRIMARY),
            "other_primaries": len([t for t in primaries if t != o.target]),
        }
        for o in pg
    ]
    return {
        "duration": round(duration, 6),
        "pg_targets": len(pg),
        "pg_reachable": len(pg_ok),
        "primaries": len(primaries),
        "primary_targets": ",".join(primaries),
        "pgpool_targets": len(pools),
        "pgpool_reachable": len(pool_ok),
        "pgpool_primary_views": "; ".join(f"{k}={v or '-'}" for k, v in sorted(views.items())),
        "pgpools_agree": 1 if len(set(views.values())) <= 1 else 0,
        "pgpool_status_mismatches": sum(1 for s in statuses.values() if len(s) > 1),
        "pgpool_drift": drift,
        "zabbix_active_nodes": len(zbx_active),
        "unreachable": "; ".join(f"{o.target}: {o.error}" for o in failed),
        "servers": servers,
    }


# ----------------------------------------------------------------------------- LLD
def lld_rows(
    obj: Mapping[str, Any], field: str, macros: Sequence[tuple[str, str]]
) -> list[dict[str, str]]:
    """The array ``field`` as a plain LLD JSON array ({"{#MACRO}": value, ...}); ``macros``
    are a discovery's (macro, field) pairs."""
    return [{macro: str(row.get(name, "")) for macro, name in macros} for row in obj.get(field, [])]
