"""Pgpool-II, per instance: its view of every backend, health checks, children, watchdog."""

from __future__ import annotations

from kyoten.agent.catalogue.common import (
    CHANGE_HOLD,
    NODATA,
    SITE_FIELD,
    TARGET_FIELD,
    duration,
)
from kyoten.agent.catalogue.model import (
    Discovery,
    Family,
    Macro,
    Metric,
    Param,
    Severity,
    Trigger,
    ValueMap,
    ValueType,
)

A = "Pgpool-II"
TARGET = Macro(
    "{$KYOTEN.PGPOOL.TARGET}",
    "pgpool",
    "Name of the Pgpool-II target in kyoten.toml that this host's agent collects.",
)
T = f"{A} {TARGET.name}"
"""How trigger names start: the Pgpool by its name in kyoten.toml ("Pgpool-II pool-a: ...")."""
DELAY = Macro(
    "{$PGPOOL.DELAY.BYTES.MAX.WARN}",
    "67108864",
    "Replication delay (bytes) Pgpool reports for a standby above which it is late.",
)
BUSY_WARN = Macro(
    "{$PGPOOL.CHILDREN.BUSY.MAX.WARN}",
    "80",
    "Percentage of Pgpool child processes in use above which clients may soon "
    "queue; an exhausted Pgpool makes new clients (the Zabbix server) hang.",
)
BUSY_HIGH = Macro(
    "{$PGPOOL.CHILDREN.BUSY.MAX.HIGH}",
    "95",
    "Percentage of Pgpool child processes in use that is an emergency.",
)
BUSY_WINDOW = Macro("{$PGPOOL.CHILDREN.WINDOW}", "5m", "Window for the children triggers.")
RESERVED = Macro(
    "{$PGPOOL.CHILDREN.RESERVED}",
    "0",
    "Pgpool's reserved_connections (default 0): that many children only refuse clients, so "
    "every child is busy when all but these serve a client.",
)
DRIFT_WINDOW = Macro(
    "{$PGPOOL.DRIFT.WINDOW}",
    "2m",
    "A live backend held down this long is drift (not the moment of a failover).",
)

REMOVED = "6"
"""The status a backend's item reads once Pgpool no longer reports the backend (removed from
pgpool.conf): set by the template, never by the collector. Every trigger of the backend is
false on it, so a problem open on a backend that goes away resolves."""
STATUS_MAP = ValueMap(
    "kyoten Pgpool backend status",
    (
        ("0", "Unused"),
        ("1", "Up (waiting)"),
        ("2", "Up"),
        ("3", "Down"),
        ("4", "Quarantine"),
        ("5", "Unknown"),
        (REMOVED, "Removed"),
    ),
    # the status column of SHOW POOL_NODES ('Status Name' of pcp_node_info), lower-cased
    words=(("unused", "0"), ("waiting", "1"), ("up", "2"), ("down", "3"), ("quarantine", "4")),
    other="5",
)
PG_STATUS_MAP = ValueMap(
    "kyoten Pgpool pg_status",
    (("0", "Down"), ("1", "Up"), ("2", "Unknown")),
    # the pg_status column (Pgpool 4.3+, or kyoten's live check), lower-cased
    words=(("down", "0"), ("up", "1")),
    other="2",
)
QUORUM_MAP = ValueMap(
    "kyoten Pgpool quorum",
    (
        ("1", "Quorum exists"),
        ("0", "Quorum on the edge"),
        ("-1", "Quorum absent"),
        ("-2", "No leader node"),
        ("-3", "Watchdog not used"),
    ),
    # phrases of pcp_watchdog_info's 'Quorum state', upper-cased: the first one it contains
    # counts (older Pgpool says 'NO MASTER'); '' is no state at all
    words=(
        ("QUORUM EXIST", "1"),
        ("ON THE EDGE", "0"),
        ("ABSENT", "-1"),
        ("NO LEADER", "-2"),
        ("NO MASTER", "-2"),
        ("", "-3"),
    ),
    other="-2",
)
BOOL_MAP = ValueMap("kyoten yes/no", (("0", "No"), ("1", "Yes")))

_NODATA = "pgpool.nodata"
_DOWN = "pgpool.backend_down"
_REFUSED = "pgpool.sql_refused"
_EXHAUSTED = "pgpool.children_exhausted"
_WHERE = "Node {#NODE} at {#BACKEND}"
_REPORTED = f"last(ITEM(status))<>{REMOVED}"
"""The guard of every backend trigger that does not read the status itself: false once the
backend's row is gone, so its problem resolves instead of keeping its last values forever."""

BACKENDS = Discovery(
    "backends",
    "Backend discovery",
    "kyoten.pgpool.backends",
    "Backends configured in this Pgpool-II (SHOW POOL_NODES, or pcp_node_info when Pgpool "
    "refuses SQL). A backend Pgpool no longer reports (removed from pgpool.conf) stays until "
    "the rule's lifetime deletes it, with the status Removed: every trigger of the backend "
    "resolves on it.",
    (("{#NODE}", "node_id"), ("{#BACKEND}", "backend"), ("{#NAME}", "name")),
    metrics=(
        Metric(
            "node_id", "Backend {#NODE}: Node id", ValueType.UNSIGNED, "Pgpool node id.", item=False
        ),
        Metric(
            "name",
            "Backend {#NODE}: Name",
            ValueType.CHAR,
            "The backend's name in kyoten.toml: the [postgres.*] target listed at its position "
            "in the target's backends, else the one with its host and port; its address when "
            "none matches.",
            item=False,
        ),
        Metric(
            "backend",
            "Backend [{#NAME}]: Address",
            ValueType.CHAR,
            "hostname:port.",
            heartbeat="1d",
        ),
        Metric(
            "status",
            "Backend [{#NAME}]: Pgpool status",
            ValueType.UNSIGNED,
            "Pgpool's own belief: 2 up, 1 up without clients yet (waiting, normal), "
            f"3 down, 4 quarantine, 0 unused, 5 unknown; {REMOVED} removed (set by the template "
            "once Pgpool no longer reports the backend, e.g. removed from pgpool.conf).",
            valuemap=STATUS_MAP.name,
            heartbeat="1h",
            missing=REMOVED,
            triggers=(
                Trigger(
                    _DOWN,
                    f"{T}: backend {{#NAME}} is detached",
                    "last(ITEM(status))=3 or last(ITEM(status))=4",
                    Severity.AVERAGE,
                    "Pgpool detached this backend (down or quarantine): it sends no queries "
                    "there until it is re-attached (pcp_attach_node or auto_failback). A "
                    "symptom when the server itself is down (the cross-site host leads) or held "
                    "down while alive (the 'holds live backend' problem leads). Resolves when "
                    "it is attached again, or when Pgpool no longer reports it (status Removed).",
                    opdata=f"{{ITEM.LASTVALUE1}}; {_WHERE}",
                    depends_on=(_NODATA,),
                ),
            ),
        ),
        Metric(
            "pg_status",
            "Backend [{#NAME}]: PostgreSQL status",
            ValueType.UNSIGNED,
            "Live check of PostgreSQL itself: 1 up, 0 down, 2 unknown. Made by Pgpool when "
            "asked (4.3+ pg_status), or by kyoten over its own connection when the target "
            "lists its backends (plugin mode, see live_checks).",
            valuemap=PG_STATUS_MAP.name,
            heartbeat="1h",
        ),
        Metric(
            "drift",
            "Backend [{#NAME}]: Held down while PostgreSQL is up",
            ValueType.UNSIGNED,
            "1 when Pgpool holds the backend down or in quarantine although PostgreSQL "
            "answers (status drift, e.g. a stale pgpool_status file after a restart). null "
            "(no value) without any live check: Pgpool 4.1/4.2 read by SQL or PCP, unless "
            "the plugin checks the listed backends itself.",
            valuemap=BOOL_MAP.name,
            optional=True,
            triggers=(
                Trigger(
                    "pgpool.drift",
                    f"{T}: holds live backend {{#NAME}} down",
                    f"min(ITEM(drift),{{$PGPOOL.DRIFT.WINDOW}})=1 and {_REPORTED}",
                    Severity.HIGH,
                    "PostgreSQL answers but Pgpool will not use it (a stale pgpool_status after "
                    "a restart, or a failover never reverted). If it is the primary, writes "
                    "through this Pgpool fail. Fix: check that it is not a stale former primary "
                    "(that one must be rebuilt as a standby first), then pcp_attach_node -n "
                    "{#NODE}. Resolves when Pgpool uses the backend again, or no longer "
                    "reports it (removed from pgpool.conf: status Removed).",
                    opdata=_WHERE,
                    depends_on=(_NODATA,),
                ),
            ),
        ),
        Metric(
            "role",
            "Backend [{#NAME}]: Pgpool role",
            ValueType.CHAR,
            "Pgpool's belief: primary/standby (streaming), main/replica otherwise.",
            heartbeat="1h",
        ),
        Metric(
            "pg_role",
            "Backend [{#NAME}]: PostgreSQL role",
            ValueType.CHAR,
            "Live pg_is_in_recovery(), asked by Pgpool (4.3+) or by kyoten (see "
            "live_checks); 'unknown' when PostgreSQL is not up or not asked.",
            heartbeat="1h",
        ),
        Metric(
            "is_primary",
            "Backend [{#NAME}]: Primary in Pgpool's view",
            ValueType.UNSIGNED,
            "1 when Pgpool routes writes to this backend.",
            valuemap=BOOL_MAP.name,
            heartbeat="1h",
        ),
        Metric(
            "delay_bytes",
            "Backend [{#NAME}]: Replication delay",
            ValueType.FLOAT,
            "replication_delay in bytes as Pgpool measures it; -1 when Pgpool reports it in "
            "seconds (delay_threshold_by_time, 4.4+).",
            units="B",
            graph="delay",
            triggers=(
                Trigger(
                    "pgpool.delay",
                    f"{T}: backend {{#NAME}} delay over {{$PGPOOL.DELAY.BYTES.MAX.WARN}}",
                    f"min(ITEM(delay_bytes),5m)>{{$PGPOOL.DELAY.BYTES.MAX.WARN}} and {_REPORTED}",
                    Severity.WARNING,
                    "Pgpool sees this standby behind; past delay_threshold it stops load "
                    "balancing to it. Resolves when the delay stays under the threshold for 5m, "
                    "or at once when Pgpool no longer reports the backend.",
                    recovery="max(ITEM(delay_bytes),5m)<={$PGPOOL.DELAY.BYTES.MAX.WARN} or "
                    f"last(ITEM(status))={REMOVED}",
                    depends_on=(_DOWN,),
                    scope="performance",
                ),
            ),
        ),
        Metric(
            "delay_seconds",
            "Backend [{#NAME}]: Replication delay time",
            ValueType.FLOAT,
            "replication_delay in seconds (4.4+ by time); -1 otherwise.",
            units="s",
        ),
        Metric(
            "replication_state",
            "Backend [{#NAME}]: Replication state",
            ValueType.CHAR,
            "state from the primary's pg_stat_replication matched by "
            "backend_application_name ('' for the primary or when unmatched).",
            heartbeat="1h",
        ),
        Metric(
            "replication_sync_state",
            "Backend [{#NAME}]: Sync state",
            ValueType.CHAR,
            "sync_state likewise.",
            heartbeat="1h",
        ),
        Metric(
            "last_status_change",
            "Backend [{#NAME}]: Last status change",
            ValueType.UNSIGNED,
            "When Pgpool last changed this backend's status.",
            units="unixtime",
            heartbeat="1h",
        ),
        Metric(
            "hc_total",
            "Backend [{#NAME}]: Health checks",
            ValueType.UNSIGNED,
            "Health checks run (SHOW POOL_HEALTH_CHECK_STATS, or pcp_health_check_stats "
            "through PCP). Every health-check figure is null (no value) on Pgpool 4.1, which "
            "keeps no such statistics.",
            optional=True,
        ),
        Metric(
            "hc_fail",
            "Backend [{#NAME}]: Health checks failed",
            ValueType.UNSIGNED,
            "Failed health checks since Pgpool started.",
            optional=True,
            triggers=(
                Trigger(
                    "pgpool.hc_failing",
                    f"{T}: health checks of backend {{#NAME}} are failing",
                    f"change(ITEM(hc_fail))>0 and {_REPORTED}",
                    Severity.AVERAGE,
                    "Health checks failed since the previous poll; repeated failures make "
                    "Pgpool detach the backend. Resolves at the first poll without a new "
                    "failure, or when Pgpool no longer reports the backend.",
                    depends_on=(_DOWN,),
                ),
            ),
        ),
        Metric(
            "hc_retry",
            "Backend [{#NAME}]: Health check retries",
            ValueType.UNSIGNED,
            "Health check retries since Pgpool started.",
            optional=True,
        ),
        Metric(
            "hc_skip",
            "Backend [{#NAME}]: Health checks skipped",
            ValueType.UNSIGNED,
            "Skipped checks (a down backend is not checked).",
            optional=True,
        ),
        Metric(
            "hc_avg_duration",
            "Backend [{#NAME}]: Health check duration",
            ValueType.FLOAT,
            "Average health check duration.",
            units="s",
            optional=True,
        ),
        Metric(
            "hc_last_ok_age",
            "Backend [{#NAME}]: Since last good health check",
            ValueType.FLOAT,
            "Seconds since the last successful health check; -1 never.",
            units="s",
            optional=True,
        ),
    ),
)

FAMILY = Family(
    key="kyoten.pgpool",
    description="Pgpool-II snapshot of a target from kyoten.toml, as JSON.",
    template="kyoten Pgpool-II",
    template_description=(
        "One standalone Pgpool-II (4.1-4.7; column sets of 4.3+ used when present): its view of "
        "each backend side by side with PostgreSQL's own (status vs pg_status, role vs "
        "pg_role), health-check statistics, child-process slots, watchdog quorum. Falls back "
        "to PCP when Pgpool refuses SQL. Set {$KYOTEN.PGPOOL.TARGET}."
    ),
    params=(Param("target", TARGET),),
    component="pgpool",
    tags=(("class", "software"), ("target", "pgpool")),
    macros=(
        NODATA,
        CHANGE_HOLD,
        DELAY,
        BUSY_WARN,
        BUSY_HIGH,
        BUSY_WINDOW,
        RESERVED,
        DRIFT_WINDOW,
    ),
    valuemaps=(STATUS_MAP, PG_STATUS_MAP, QUORUM_MAP, BOOL_MAP),
    metrics=(
        TARGET_FIELD,
        SITE_FIELD,
        duration(A, "pgpool", "this Pgpool-II", label=T),
        Metric("version", f"{A}: Version", ValueType.CHAR, "SHOW POOL_VERSION.", heartbeat="1d"),
        Metric(
            "via_pcp",
            f"{A}: SQL refused, read through PCP",
            ValueType.UNSIGNED,
            "1 when Pgpool refused SQL (typically: all backends down) and the snapshot "
            "came from the pcp tools (pcp_node_info, pcp_proc_info).",
            valuemap=BOOL_MAP.name,
            triggers=(
                Trigger(
                    _REFUSED,
                    f"{T}: refuses SQL clients",
                    'count(ITEM(via_pcp),#2,"eq",1)=2',
                    Severity.DISASTER,
                    "Pgpool has accepted no new connection from kyoten for two polls in a row: "
                    "every backend is down in its view, or (when kyoten connects afresh each "
                    "poll, the UserParameter mode) every child process is taken. The local "
                    "Zabbix server cannot reach its database either. One refused poll alone is "
                    "Pgpool's brief pause during a failover of any backend, and does not fire. "
                    "Fix: the backends' problems (pcp_node_info), or the child processes' "
                    "holders (SHOW POOL_PROCESSES, pcp_proc_info).",
                    depends_on=(_NODATA,),
                ),
            ),
        ),
        Metric(
            "live_checks",
            f"{A}: Live checks made by",
            ValueType.CHAR,
            "Who checked each backend for pg_status/pg_role: 'pgpool' (SHOW POOL_NODES, a "
            "connection per backend per poll) or 'kyoten' (the plugin's kept connections, "
            "when the target lists its backends in kyoten.toml).",
            heartbeat="1h",
        ),
        Metric(
            "replication_age",
            f"{A}: Age of the replication columns",
            ValueType.FLOAT,
            "Seconds since replication_delay/state were read from Pgpool: 0 when read in "
            "this poll; in plugin mode they are read in the background every "
            "replication_refresh seconds; -1 when no reading succeeded yet. Pgpool itself "
            "refreshes them only every sr_check_period.",
            units="s",
        ),
        Metric("backends_total", f"{A}: Backends", ValueType.UNSIGNED, "Configured backends."),
        Metric(
            "backends_up",
            f"{A}: Backends up",
            ValueType.UNSIGNED,
            "Backends Pgpool considers up (up or waiting).",
        ),
        Metric(
            "primary_node_id",
            f"{A}: Primary node id",
            ValueType.FLOAT,
            "Node id Pgpool sends writes to; -1 when it knows no primary.",
            heartbeat="1h",
            triggers=(
                Trigger(
                    "pgpool.primary_unused",
                    f"{T}: no primary although a backend is primary",
                    "last(ITEM(primary_node_id))=-1 and last(ITEM(pg_primaries))>0",
                    Severity.HIGH,
                    "Pgpool routes writes nowhere although one of its backends is a live "
                    "primary (it detached it, or did not find it after a failover): writes "
                    "through this Pgpool fail. Fix: pcp_attach_node -n N for the primary's "
                    "node (check it is the only primary first), or restart Pgpool with -D.",
                    depends_on=(_REFUSED,),
                ),
                Trigger(
                    "pgpool.no_primary",
                    f"{T}: no primary backend",
                    "last(ITEM(primary_node_id))=-1 and last(ITEM(pg_primaries))=0",
                    Severity.AVERAGE,
                    "Pgpool has no primary because none of its backends is one: a symptom of the "
                    "primary's loss, which the cross-site host leads with (and its fix). Writes "
                    "through this Pgpool fail until a primary exists again.",
                    depends_on=(_REFUSED,),
                ),
            ),
        ),
        Metric(
            "primary_backend",
            f"{A}: Primary backend",
            ValueType.CHAR,
            "host:port of the primary in Pgpool's view ('' when none).",
            heartbeat="1h",
        ),
        Metric(
            "primary_name",
            f"{A}: Primary",
            ValueType.CHAR,
            "Name in kyoten.toml of the backend Pgpool sends writes to (its address when no "
            "target matches; '' when none).",
            heartbeat=CHANGE_HOLD.name,
            triggers=(
                Trigger(
                    "pgpool.primary_changed",
                    f"{T}: primary changed",
                    "last(ITEM(primary_name),#1)<>last(ITEM(primary_name),#2) and "
                    "length(last(ITEM(primary_name)))>0",
                    Severity.INFO,
                    "Pgpool switched its primary (failover or follow); the event's name says to "
                    "which backend. Every change opens an event of its own; each resolves "
                    "{$KYOTEN.CHANGE.HOLD} after the last change, or when closed by hand.",
                    opdata="Primary: {ITEM.LASTVALUE1}",
                    manual_close=True,
                    scope="notice",
                    per_change=True,
                    event_name=f"{T}: primary changed to {{ITEM.VALUE1}}",
                ),
            ),
        ),
        Metric(
            "pg_primaries",
            f"{A}: Backends that are primary",
            ValueType.UNSIGNED,
            "Backends whose live pg_role is primary (4.3+, or the plugin's own checks): more "
            "than one is split brain. null (no value) when no live role is known (4.1/4.2).",
            optional=True,
            triggers=(
                Trigger(
                    "pgpool.two_primaries",
                    f"{T}: more than one backend is primary",
                    "last(ITEM(pg_primaries))>1",
                    Severity.AVERAGE,
                    "More than one of its backends is out of recovery: this Pgpool's view of a "
                    "split brain, which the cross-site host leads with (and its fix).",
                    opdata="Primaries: {ITEM.LASTVALUE1}",
                ),
            ),
        ),
        Metric(
            "drift_count",
            f"{A}: Live backends held down",
            ValueType.UNSIGNED,
            "Backends down/quarantine in Pgpool while PostgreSQL answers; null (no value) "
            "without live checks (see drift).",
            optional=True,
        ),
        Metric(
            "children_total",
            f"{A}: Child processes",
            ValueType.UNSIGNED,
            "num_init_children: at most this many clients at once.",
            heartbeat="1d",
        ),
        Metric(
            "children_busy",
            f"{A}: Child processes in use",
            ValueType.UNSIGNED,
            "Children serving a client (SHOW POOL_PROCESSES, not 'Wait for connection', 4.3+; "
            "before 4.3 children holding a client in SHOW POOL_POOLS); includes kyoten's own "
            "connection. Read through PCP, the same from pcp_proc_info -a (4.3+ Status, before "
            "Connected), without kyoten's own; null (no value) if pcp_proc_info failed.",
            graph="children",
            optional=True,
            triggers=(
                Trigger(
                    _EXHAUSTED,
                    f"{T}: every child process is busy",
                    "last(ITEM(children_busy))>="
                    "last(ITEM(children_total))-{$PGPOOL.CHILDREN.RESERVED}",
                    Severity.HIGH,
                    "No child process is free for a new client: the Zabbix server's next "
                    "database connection through this Pgpool hangs (or is refused, with "
                    "reserved_connections), and soon the server itself. Seen within one poll, "
                    "through the plugin's kept connection (kyoten's own connection counts as "
                    "busy), or through pcp_proc_info when kyoten connects afresh and is locked "
                    "out too (UserParameter mode). Fix: find who holds the connections (SHOW "
                    "POOL_PROCESSES, pcp_proc_info); children stuck on a backend that went "
                    "away are freed by pcp_detach_node and pcp_attach_node of that node, or a "
                    "Pgpool restart; then raise num_init_children above what the clients need. "
                    "Resolves when a child is free again.",
                    opdata="In use: {ITEM.LASTVALUE1} of {ITEM.LASTVALUE2}",
                    depends_on=(_NODATA,),
                    scope="capacity",
                ),
            ),
        ),
        Metric(
            "children_busy_pct",
            f"{A}: Child processes in use, %",
            ValueType.FLOAT,
            "children_busy / children_total; null (no value) when children_busy is.",
            units="%",
            optional=True,
            triggers=(
                Trigger(
                    "pgpool.children_high",
                    f"{T}: child processes nearly exhausted "
                    "(over {$PGPOOL.CHILDREN.BUSY.MAX.HIGH}% for {$PGPOOL.CHILDREN.WINDOW})",
                    "min(ITEM(children_busy_pct),{$PGPOOL.CHILDREN.WINDOW})>"
                    "{$PGPOOL.CHILDREN.BUSY.MAX.HIGH}",
                    Severity.HIGH,
                    "New clients will queue and hang (the Zabbix server too). Raise "
                    "num_init_children or find who holds the connections.",
                    opdata="In use: {ITEM.LASTVALUE1}",
                    depends_on=(_EXHAUSTED,),
                    scope="capacity",
                ),
                Trigger(
                    "pgpool.children_warn",
                    f"{T}: child processes over {{$PGPOOL.CHILDREN.BUSY.MAX.WARN}}% in use "
                    "for {$PGPOOL.CHILDREN.WINDOW}",
                    "min(ITEM(children_busy_pct),{$PGPOOL.CHILDREN.WINDOW})>"
                    "{$PGPOOL.CHILDREN.BUSY.MAX.WARN}",
                    Severity.WARNING,
                    "Connection slots are running out.",
                    opdata="In use: {ITEM.LASTVALUE1}",
                    depends_on=("pgpool.children_high",),
                    scope="capacity",
                ),
            ),
        ),
        Metric(
            "watchdog_enabled",
            f"{A}: Watchdog enabled",
            ValueType.UNSIGNED,
            "1 when the target is configured with watchdog = true.",
            valuemap=BOOL_MAP.name,
            heartbeat="1d",
        ),
        Metric(
            "watchdog_quorum",
            f"{A}: Watchdog quorum",
            ValueType.FLOAT,
            "pcp_watchdog_info: 1 exists, 0 on the edge, -1 absent, -2 no leader; "
            "-3 when the watchdog is not used.",
            valuemap=QUORUM_MAP.name,
            heartbeat="1h",
            triggers=(
                Trigger(
                    "pgpool.quorum_lost",
                    f"{T}: watchdog quorum lost",
                    "last(ITEM(watchdog_quorum))=-1 or last(ITEM(watchdog_quorum))=-2",
                    Severity.HIGH,
                    "Without quorum the watchdog cannot fail over safely; failover requests "
                    "may put backends in quarantine.",
                    opdata="Quorum: {ITEM.LASTVALUE1}",
                ),
            ),
        ),
        Metric(
            "watchdog_local_state",
            f"{A}: Watchdog local state",
            ValueType.CHAR,
            "LEADER, STANDBY, ... ('' when not used).",
            heartbeat="1h",
        ),
        Metric(
            "watchdog_leader",
            f"{A}: Watchdog leader",
            ValueType.CHAR,
            "Leader node name ('' when not used).",
            heartbeat="1h",
        ),
        Metric(
            "watchdog_alive_remote",
            f"{A}: Watchdog alive remote nodes",
            ValueType.FLOAT,
            "Alive remote watchdog nodes; -1 when not used.",
        ),
    ),
    discoveries=(BACKENDS,),
)
