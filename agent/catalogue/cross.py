"""Cross-site invariants computed from every configured target in one call."""

from __future__ import annotations

from kyoten.agent.catalogue.common import CHANGE_HOLD, NODATA, duration
from kyoten.agent.catalogue.model import (
    Discovery,
    Family,
    Macro,
    Metric,
    Severity,
    Trigger,
    ValueMap,
    ValueType,
)

A = "Cross-site"
WINDOW = Macro(
    "{$KYOTEN.CROSS.WINDOW}",
    "1m",
    "How long Pgpools must disagree before it is a problem (a failover makes them differ "
    "for a moment).",
)
BOOL_MAP = ValueMap("kyoten yes/no", (("0", "No"), ("1", "Yes")))

_NO_PRIMARY = "cross.no_primary"
_TWO_PRIMARIES = "cross.two_primaries"
_SPLIT_WRITES = "cross.pgpool_split"

SERVERS = Discovery(
    "servers",
    "PostgreSQL server discovery",
    "kyoten.cross.servers",
    "Every [postgres.*] target of kyoten.toml, answering or not: the aggregate host is where a "
    "server's loss is seen, with the role it had when it last answered.",
    (("{#TARGET}", "target"), ("{#SITE}", "site"), ("{#ADDRESS}", "address")),
    metrics=(
        Metric("target", "Server {#TARGET}: Name", ValueType.CHAR, "Target name.", item=False),
        Metric("site", "Server {#TARGET}: Site", ValueType.CHAR, "Its site.", item=False),
        Metric("address", "Server {#TARGET}: Address", ValueType.CHAR, "host:port.", item=False),
        Metric(
            "up",
            "Server {#TARGET}: Accepts connections",
            ValueType.UNSIGNED,
            "0 when kyoten could not connect to it in this poll (refused, unreachable, or no "
            "connection within connect_timeout); 1 when it connected, even if the query was "
            "late. 1 (set by the template) once the target leaves kyoten.toml.",
            valuemap=BOOL_MAP.name,
            missing="1",
            triggers=(
                Trigger(
                    "cross.primary_down",
                    f"{A}: PostgreSQL primary {{#TARGET}} is down",
                    "last(ITEM(up))=0 and last(ITEM(is_primary))=1 and "
                    "last(ITEM(other_primaries))>0",
                    Severity.HIGH,
                    "The server that was primary when it last answered accepts no connection, "
                    "and another server was promoted (Pgpool's failover_command, or by hand): "
                    "the service runs on without a standby. (While nothing is promoted, 'no "
                    "PostgreSQL primary' leads instead.) Fix: find why {#TARGET} died (its "
                    "log, the host); do not start it as a primary while another is primary "
                    "(split brain): rebuild it "
                    "as a standby of the new primary (pg_rewind or pg_basebackup), then "
                    "pcp_attach_node its node on every Pgpool. Resolves when {#TARGET} accepts "
                    "connections again.",
                    opdata="{#ADDRESS} (site {#SITE})",
                    depends_on=(_NO_PRIMARY,),
                ),
                Trigger(
                    "cross.standby_down",
                    f"{A}: PostgreSQL standby {{#TARGET}} is down",
                    "last(ITEM(up))=0 and last(ITEM(is_primary))=0",
                    Severity.HIGH,
                    "The server that was a standby when it last answered accepts no "
                    "connection: nothing could take over if the primary failed now. Fix: start "
                    "it (its log says why it stopped); if its WAL is gone from the primary, "
                    "rebuild it (pg_basebackup); then pcp_attach_node its node on every "
                    "Pgpool. Resolves when {#TARGET} accepts connections again.",
                    opdata="{#ADDRESS} (site {#SITE})",
                ),
            ),
        ),
        Metric(
            "is_primary",
            "Server {#TARGET}: Primary",
            ValueType.UNSIGNED,
            "1 primary, 0 standby; null (no value: the item keeps the role it had when it "
            "last answered) while it does not answer.",
            valuemap=BOOL_MAP.name,
            optional=True,
        ),
        Metric(
            "other_primaries",
            "Server {#TARGET}: Other primaries",
            ValueType.UNSIGNED,
            "How many of the other servers answer as primary in this poll.",
            missing="1",
        ),
    ),
)

FAMILY = Family(
    key="kyoten.cross",
    description="Cross-site invariants over all targets in kyoten.toml, as JSON.",
    template="kyoten Cross-site invariants",
    template_description=(
        "Invariants no single server can see: how many PostgreSQL servers are primary, "
        "whether the standalone Pgpool-II of each site agree on the primary and on each "
        "backend's status, and how many Zabbix HA nodes are active across databases. Link it "
        "to one aggregate host whose agent has every target in kyoten.toml."
    ),
    params=(),
    component="cross-site",
    tags=(("class", "software"), ("target", "kyoten")),
    macros=(NODATA, CHANGE_HOLD, WINDOW),
    valuemaps=(BOOL_MAP,),
    metrics=(
        duration(A, "cross", "the cross-site targets"),
        Metric(
            "pg_targets",
            f"{A}: PostgreSQL targets",
            ValueType.UNSIGNED,
            "PostgreSQL targets in kyoten.toml.",
            heartbeat="1d",
        ),
        Metric(
            "pg_reachable",
            f"{A}: PostgreSQL targets reachable",
            ValueType.UNSIGNED,
            "Targets that answered within the deadline.",
        ),
        Metric(
            "primaries",
            f"{A}: PostgreSQL primaries",
            ValueType.UNSIGNED,
            "Reachable PostgreSQL targets not in recovery.",
            triggers=(
                Trigger(
                    _TWO_PRIMARIES,
                    f"{A}: more than one PostgreSQL primary (split brain)",
                    "last(ITEM(primaries))>1 and last(ITEM(pgpools_agree))=1",
                    Severity.DISASTER,
                    "More than one server accepts writes (a standby was promoted while the "
                    "primary lives): the sites' data diverge from now on. Both Pgpools still "
                    "send writes to the same one (when they do not, 'Pgpool-II instances write "
                    "to different primaries' leads instead). Fix: fence the one that should "
                    "not be primary (stop it, or pcp_detach_node it on every Pgpool), then "
                    "rebuild it as a "
                    "standby (pg_rewind or pg_basebackup) and re-attach it. Resolves when one "
                    "primary is left.",
                    opdata="Primaries: {ITEM.LASTVALUE1}",
                    depends_on=(_SPLIT_WRITES,),
                ),
                Trigger(
                    _NO_PRIMARY,
                    f"{A}: no PostgreSQL primary",
                    "last(ITEM(primaries))=0 and last(ITEM(pg_reachable))>0",
                    Severity.DISASTER,
                    "No answering server is out of recovery: nothing accepts writes, and each "
                    "site's Zabbix server loses its database. Usually the primary died and "
                    "nobody promoted the standby (its 'primary is down' problem waits behind "
                    "this one). Fix: promote the standby (pcp_promote_node, or pg_ctl promote "
                    "on it) unless the primary is about to come back; never run two primaries. "
                    "Resolves when a primary answers.",
                    opdata="Answering: {ITEM.LASTVALUE2}",
                ),
            ),
        ),
        Metric(
            "primary_targets",
            f"{A}: Primary targets",
            ValueType.CHAR,
            "Names of the PostgreSQL targets that are primary, comma-separated.",
            heartbeat=CHANGE_HOLD.name,
            triggers=(
                Trigger(
                    "cross.primary_changed",
                    f"{A}: PostgreSQL primary changed",
                    "last(ITEM(primary_targets),#1)<>last(ITEM(primary_targets),#2) and "
                    "length(last(ITEM(primary_targets)))>0",
                    Severity.INFO,
                    "Another server (or set of servers) is primary now: a failover or a "
                    "switchover; the event's name says which one. Every change opens "
                    "an event of its own (two failovers, two events); each resolves "
                    "{$KYOTEN.CHANGE.HOLD} after the last change, or when closed by hand.",
                    opdata="Primary: {ITEM.LASTVALUE1}",
                    manual_close=True,
                    scope="notice",
                    per_change=True,
                    event_name=f"{A}: PostgreSQL primary changed to {{ITEM.VALUE1}}",
                ),
            ),
        ),
        Metric(
            "pgpool_targets",
            f"{A}: Pgpool-II targets",
            ValueType.UNSIGNED,
            "Pgpool-II targets in kyoten.toml.",
            heartbeat="1d",
        ),
        Metric(
            "pgpool_reachable",
            f"{A}: Pgpool-II targets reachable",
            ValueType.UNSIGNED,
            "Pgpool-II targets that answered (SQL or PCP).",
        ),
        Metric(
            "pgpool_primary_views",
            f"{A}: Pgpool-II primary views",
            ValueType.CHAR,
            "target=primary backend for each reachable Pgpool, '; '-separated.",
        ),
        Metric(
            "pgpools_agree",
            f"{A}: Pgpool-II agree on the primary",
            ValueType.UNSIGNED,
            "1 when every reachable Pgpool routes writes to the same backend.",
            valuemap=BOOL_MAP.name,
            triggers=(
                Trigger(
                    _SPLIT_WRITES,
                    f"{A}: Pgpool-II instances write to different primaries",
                    "last(ITEM(pgpools_agree))=0 and last(ITEM(primaries))>1",
                    Severity.DISASTER,
                    "Double failover: the sites' Pgpools each failed over on their own and now "
                    "send writes to different primaries, so each site's Zabbix server writes "
                    "to its own database. Fix: choose the primary to keep (the one with the "
                    "newer data); fence the other (stop it, pcp_detach_node it on every "
                    "Pgpool); make every Pgpool use the kept one (pcp_attach_node / "
                    "pcp_promote_node, or restart with -D); rebuild the other as a standby. "
                    "Resolves when the Pgpools agree or one primary is left.",
                ),
                Trigger(
                    "cross.pgpool_disagree",
                    f"{A}: Pgpool-II instances disagree on the primary",
                    "max(ITEM(pgpools_agree),{$KYOTEN.CROSS.WINDOW})=0 and last(ITEM(primaries))<2",
                    Severity.HIGH,
                    "The sites' Pgpools send writes to different backends (or one has none) "
                    "although at most one server is primary: writes through one of them fail. "
                    "Fix: pcp_attach_node the primary's node on the Pgpool that lost it, or "
                    "restart that Pgpool with -D.",
                    depends_on=(_TWO_PRIMARIES, _SPLIT_WRITES),
                ),
            ),
        ),
        Metric(
            "pgpool_status_mismatches",
            f"{A}: Backend status mismatches between Pgpools",
            ValueType.UNSIGNED,
            "Backends that one Pgpool holds up and another down.",
            triggers=(
                Trigger(
                    "cross.pgpool_status_mismatch",
                    f"{A}: Pgpool-II instances disagree on backend status",
                    "min(ITEM(pgpool_status_mismatches),{$KYOTEN.CROSS.WINDOW})>0",
                    Severity.AVERAGE,
                    "One site's Pgpool detached a backend the other still uses.",
                    opdata="Backends: {ITEM.LASTVALUE1}",
                    depends_on=("cross.pgpool_disagree",),
                ),
            ),
        ),
        Metric(
            "pgpool_drift",
            f"{A}: Live backends held down by a Pgpool",
            ValueType.UNSIGNED,
            "Sum over Pgpools of backends down/quarantine whose PostgreSQL is up.",
        ),
        Metric(
            "zabbix_active_nodes",
            f"{A}: Active Zabbix HA nodes across databases",
            ValueType.UNSIGNED,
            "Distinct active node names over all reachable Zabbix database targets.",
            triggers=(
                Trigger(
                    "cross.zabbix_two_active",
                    f"{A}: more than one Zabbix server active",
                    "last(ITEM(zabbix_active_nodes))>1",
                    Severity.DISASTER,
                    "Each site's Zabbix server is active on its own database: a consequence of "
                    "PostgreSQL split brain.",
                    opdata="Active: {ITEM.LASTVALUE1}",
                    depends_on=(_TWO_PRIMARIES, _SPLIT_WRITES),
                ),
            ),
        ),
        Metric(
            "unreachable",
            f"{A}: Unreachable targets",
            ValueType.CHAR,
            "Targets that failed, with the reason ('' when none).",
            triggers=(
                Trigger(
                    "cross.unreachable",
                    f"{A}: targets unreachable from the aggregate host",
                    "length(last(ITEM(unreachable)))>0",
                    Severity.WARNING,
                    "Some targets did not answer; invariants are computed without them.",
                    opdata="{ITEM.LASTVALUE1}",
                ),
            ),
        ),
    ),
    discoveries=(SERVERS,),
)
