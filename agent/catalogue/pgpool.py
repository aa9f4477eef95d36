"""Pgpool-II, per instance: its view of every backend, health checks, children, watchdog."""

from __future__ import annotations

from kyoten.agent.catalogue.common import NODATA, SITE_FIELD, TARGET_FIELD, duration
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
DRIFT_WINDOW = Macro(
    "{$PGPOOL.DRIFT.WINDOW}",
    "2m",
    "A live backend held down this long is drift (not the moment of a failover).",
)

STATUS_MAP = ValueMap(
    "kyoten Pgpool backend status",
    (
        ("0", "Unused"),
        ("1", "Up (waiting)"),
        ("2", "Up"),
        ("3", "Down"),
        ("4", "Quarantine"),
        ("5", "Unknown"),
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

BACKENDS = Discovery(
    "backends",
    "Backend discovery",
    "kyoten.pgpool.backends",
    "Backends configured in this Pgpool-II (SHOW POOL_NODES, or pcp_node_info when Pgpool "
    "refuses SQL).",
    (("{#NODE}", "node_id"), ("{#BACKEND}", "backend")),
    metrics=(
        Metric(
            "node_id", "Backend {#NODE}: Node id", ValueType.UNSIGNED, "Pgpool node id.", item=False
        ),
        Metric(
            "backend", "Backend {#NODE}: Address", ValueType.CHAR, "hostname:port.", heartbeat="1d"
        ),
        Metric(
            "status",
            "Backend {#NODE} ({#BACKEND}): Pgpool status",
            ValueType.UNSIGNED,
            "Pgpool's own belief: 2 up, 1 up without clients yet (waiting, normal), "
            "3 down, 4 quarantine, 0 unused, 5 unknown.",
            valuemap=STATUS_MAP.name,
            heartbeat="1h",
            triggers=(
                Trigger(
                    _DOWN,
                    "Pgpool-II: backend {#NODE} ({#BACKEND}) is {ITEM.LASTVALUE1}",
                    "last(ITEM(status))=3 or last(ITEM(status))=4",
                    Severity.AVERAGE,
                    "Pgpool detached this backend: it sends no queries there until it is "
                    "re-attached (pcp_attach_node or auto_failback).",
                    depends_on=(_NODATA,),
                ),
            ),
        ),
        Metric(
            "pg_status",
            "Backend {#NODE} ({#BACKEND}): PostgreSQL status",
            ValueType.UNSIGNED,
            "Live check of PostgreSQL itself: 1 up, 0 down, 2 unknown. Made by Pgpool when "
            "asked (4.3+ pg_status), or by kyoten over its own connection when the target "
            "lists its backends (plugin mode, see live_checks).",
            valuemap=PG_STATUS_MAP.name,
            heartbeat="1h",
        ),
        Metric(
            "drift",
            "Backend {#NODE} ({#BACKEND}): Held down while PostgreSQL is up",
            ValueType.UNSIGNED,
            "1 when Pgpool holds the backend down or in quarantine although PostgreSQL "
            "answers (status drift, e.g. a stale pgpool_status file after a restart).",
            valuemap=BOOL_MAP.name,
            triggers=(
                Trigger(
                    "pgpool.drift",
                    "Pgpool-II holds live backend {#NODE} ({#BACKEND}) down",
                    "min(ITEM(drift),{$PGPOOL.DRIFT.WINDOW})=1",
                    Severity.HIGH,
                    "PostgreSQL answers but Pgpool will not use it. If it is the primary, writes "
                    "through this Pgpool fail. Re-attach with pcp_attach_node after checking it "
                    "is not a stale former primary.",
                    depends_on=(_NODATA,),
                ),
            ),
        ),
        Metric(
            "role",
            "Backend {#NODE} ({#BACKEND}): Pgpool role",
            ValueType.CHAR,
            "Pgpool's belief: primary/standby (streaming), main/replica otherwise.",
            heartbeat="1h",
        ),
        Metric(
            "pg_role",
            "Backend {#NODE} ({#BACKEND}): PostgreSQL role",
            ValueType.CHAR,
            "Live pg_is_in_recovery(), asked by Pgpool (4.3+) or by kyoten (see "
            "live_checks); 'unknown' when PostgreSQL is not up or not asked.",
            heartbeat="1h",
        ),
        Metric(
            "is_primary",
            "Backend {#NODE} ({#BACKEND}): Primary in Pgpool's view",
            ValueType.UNSIGNED,
            "1 when Pgpool routes writes to this backend.",
            valuemap=BOOL_MAP.name,
            heartbeat="1h",
        ),
        Metric(
            "delay_bytes",
            "Backend {#NODE} ({#BACKEND}): Replication delay",
            ValueType.FLOAT,
            "replication_delay in bytes as Pgpool measures it; -1 when Pgpool reports it in "
            "seconds (delay_threshold_by_time, 4.4+).",
            units="B",
            graph="delay",
            triggers=(
                Trigger(
                    "pgpool.delay",
                    "Pgpool-II: backend {#NODE} ({#BACKEND}) delay over "
                    "{$PGPOOL.DELAY.BYTES.MAX.WARN}",
                    "min(ITEM(delay_bytes),5m)>{$PGPOOL.DELAY.BYTES.MAX.WARN}",
                    Severity.WARNING,
                    "Pgpool sees this standby behind; past delay_threshold it stops load "
                    "balancing to it.",
                    recovery="max(ITEM(delay_bytes),5m)<={$PGPOOL.DELAY.BYTES.MAX.WARN}",
                    depends_on=(_DOWN,),
                    scope="performance",
                ),
            ),
        ),
        Metric(
            "delay_seconds",
            "Backend {#NODE} ({#BACKEND}): Replication delay time",
            ValueType.FLOAT,
            "replication_delay in seconds (4.4+ by time); -1 otherwise.",
            units="s",
        ),
        Metric(
            "replication_state",
            "Backend {#NODE} ({#BACKEND}): Replication state",
            ValueType.CHAR,
            "state from the primary's pg_stat_replication matched by "
            "backend_application_name ('' for the primary or when unmatched).",
            heartbeat="1h",
        ),
        Metric(
            "replication_sync_state",
            "Backend {#NODE} ({#BACKEND}): Sync state",
            ValueType.CHAR,
            "sync_state likewise.",
            heartbeat="1h",
        ),
        Metric(
            "last_status_change",
            "Backend {#NODE} ({#BACKEND}): Last status change",
            ValueType.UNSIGNED,
            "When Pgpool last changed this backend's status.",
            units="unixtime",
            heartbeat="1h",
        ),
        Metric(
            "hc_total",
            "Backend {#NODE} ({#BACKEND}): Health checks",
            ValueType.UNSIGNED,
            "Health checks run (SHOW POOL_HEALTH_CHECK_STATS, 4.2+; 0 before).",
        ),
        Metric(
            "hc_fail",
            "Backend {#NODE} ({#BACKEND}): Health checks failed",
            ValueType.UNSIGNED,
            "Failed health checks since Pgpool started.",
            triggers=(
                Trigger(
                    "pgpool.hc_failing",
                    "Pgpool-II: health checks of backend {#NODE} ({#BACKEND}) are failing",
                    "change(ITEM(hc_fail))>0",
                    Severity.AVERAGE,
                    "Health checks failed since the previous poll; repeated failures make "
                    "Pgpool detach the backend.",
                    depends_on=(_DOWN,),
                ),
            ),
        ),
        Metric(
            "hc_retry",
            "Backend {#NODE} ({#BACKEND}): Health check retries",
            ValueType.UNSIGNED,
            "Health check retries since Pgpool started.",
        ),
        Metric(
            "hc_skip",
            "Backend {#NODE} ({#BACKEND}): Health checks skipped",
            ValueType.UNSIGNED,
            "Skipped checks (a down backend is not checked).",
        ),
        Metric(
            "hc_avg_duration",
            "Backend {#NODE} ({#BACKEND}): Health check duration",
            ValueType.FLOAT,
            "Average health check duration.",
            units="s",
        ),
        Metric(
            "hc_last_ok_age",
            "Backend {#NODE} ({#BACKEND}): Since last good health check",
            ValueType.FLOAT,
            "Seconds since the last successful health check; -1 never.",
            units="s",
        ),
    ),
)

FAMILY = Family(
    key="kyoten.pgpool",
    description="Pgpool-II snapshot of a target from kyoten.toml, as JSON.",
    template="kyoten Pgpool-II",
    template_description=(
        "One standalone Pgpool-II (4.1+; column sets of 4.3+ used when present): its view of "
        "each backend side by side with PostgreSQL's own (status vs pg_status, role vs "
        "pg_role), health-check statistics, child-process slots, watchdog quorum. Falls back "
        "to PCP when Pgpool refuses SQL. Set {$KYOTEN.PGPOOL.TARGET}."
    ),
    params=(Param("target", TARGET),),
    component="pgpool",
    tags=(("class", "software"), ("target", "pgpool")),
    macros=(NODATA, DELAY, BUSY_WARN, BUSY_HIGH, BUSY_WINDOW, DRIFT_WINDOW),
    valuemaps=(STATUS_MAP, PG_STATUS_MAP, QUORUM_MAP, BOOL_MAP),
    metrics=(
        TARGET_FIELD,
        SITE_FIELD,
        duration(A, "pgpool", "this Pgpool-II"),
        Metric("version", f"{A}: Version", ValueType.CHAR, "SHOW POOL_VERSION.", heartbeat="1d"),
        Metric(
            "via_pcp",
            f"{A}: SQL refused, read through PCP",
            ValueType.UNSIGNED,
            "1 when Pgpool refused SQL (typically: all backends down) and the snapshot "
            "came from pcp_node_info.",
            valuemap=BOOL_MAP.name,
            triggers=(
                Trigger(
                    "pgpool.sql_refused",
                    f"{A}: refuses SQL clients",
                    'count(ITEM(via_pcp),#2,"eq",1)=2',
                    Severity.DISASTER,
                    "Pgpool has accepted no new connections for two polls in a row (all "
                    "backends down in its view): the local Zabbix server cannot reach its "
                    "database. One refused poll alone is Pgpool's brief pause during a "
                    "failover of any backend, and does not fire.",
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
                    "pgpool.no_primary",
                    f"{A}: no primary backend",
                    "last(ITEM(primary_node_id))=-1",
                    Severity.HIGH,
                    "Pgpool has no primary: writes through it fail.",
                    depends_on=("pgpool.sql_refused",),
                ),
                Trigger(
                    "pgpool.primary_changed",
                    f"{A}: primary changed to node {{ITEM.LASTVALUE1}}",
                    "last(ITEM(primary_node_id),#1)<>last(ITEM(primary_node_id),#2)",
                    Severity.INFO,
                    "Pgpool switched its primary (failover or follow).",
                    manual_close=True,
                    scope="notice",
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
            "pg_primaries",
            f"{A}: Backends that are primary",
            ValueType.UNSIGNED,
            "Backends whose live pg_role is primary (4.3+): more than one is split brain.",
            triggers=(
                Trigger(
                    "pgpool.two_primaries",
                    f"{A}: {{ITEM.LASTVALUE1}} backends claim to be primary",
                    "last(ITEM(pg_primaries))>1",
                    Severity.DISASTER,
                    "More than one backend is out of recovery: split brain.",
                ),
            ),
        ),
        Metric(
            "drift_count",
            f"{A}: Live backends held down",
            ValueType.UNSIGNED,
            "Backends down/quarantine in Pgpool while PostgreSQL answers.",
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
            "Children serving a client (SHOW POOL_PROCESSES, not 'Wait for connection'); "
            "includes kyoten's own connection. null (no value) when read through PCP.",
            graph="children",
            optional=True,
        ),
        Metric(
            "children_busy_pct",
            f"{A}: Child processes in use, %",
            ValueType.FLOAT,
            "children_busy / children_total; null (no value) when read through PCP.",
            units="%",
            optional=True,
            triggers=(
                Trigger(
                    "pgpool.children_high",
                    f"{A}: child processes nearly exhausted "
                    "(over {$PGPOOL.CHILDREN.BUSY.MAX.HIGH}%)",
                    "min(ITEM(children_busy_pct),{$PGPOOL.CHILDREN.WINDOW})>"
                    "{$PGPOOL.CHILDREN.BUSY.MAX.HIGH}",
                    Severity.HIGH,
                    "New clients will queue and hang (the Zabbix server too). Raise "
                    "num_init_children or find who holds the connections.",
                    scope="capacity",
                ),
                Trigger(
                    "pgpool.children_warn",
                    f"{A}: child processes over {{$PGPOOL.CHILDREN.BUSY.MAX.WARN}}% in use",
                    "min(ITEM(children_busy_pct),{$PGPOOL.CHILDREN.WINDOW})>"
                    "{$PGPOOL.CHILDREN.BUSY.MAX.WARN}",
                    Severity.WARNING,
                    "Connection slots are running out.",
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
                    f"{A}: watchdog quorum lost ({{ITEM.LASTVALUE1}})",
                    "last(ITEM(watchdog_quorum))=-1 or last(ITEM(watchdog_quorum))=-2",
                    Severity.HIGH,
                    "Without quorum the watchdog cannot fail over safely; failover requests "
                    "may put backends in quarantine.",
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
