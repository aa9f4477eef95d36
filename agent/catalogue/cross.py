"""Cross-site invariants computed from every configured target in one call."""

from __future__ import annotations

from kyoten.agent.catalogue.common import NODATA, duration
from kyoten.agent.catalogue.model import (
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
    macros=(NODATA, WINDOW),
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
                    "cross.two_primaries",
                    f"{A}: {{ITEM.LASTVALUE1}} PostgreSQL primaries (split brain)",
                    "last(ITEM(primaries))>1",
                    Severity.DISASTER,
                    "More than one server accepts writes: the sites' data diverge from now on. "
                    "Stop writes to the one that should not be primary (fence it), then rebuild "
                    "it as a standby.",
                ),
                Trigger(
                    "cross.no_primary",
                    f"{A}: no PostgreSQL primary",
                    "last(ITEM(primaries))=0 and last(ITEM(pg_reachable))>0",
                    Severity.HIGH,
                    "Every reachable server is in recovery: nothing accepts writes.",
                ),
            ),
        ),
        Metric(
            "primary_targets",
            f"{A}: Primary targets",
            ValueType.CHAR,
            "Names of the PostgreSQL targets that are primary, comma-separated.",
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
                    "cross.pgpool_disagree",
                    f"{A}: Pgpool-II instances disagree on the primary",
                    "max(ITEM(pgpools_agree),{$KYOTEN.CROSS.WINDOW})=0",
                    Severity.HIGH,
                    "The sites' Pgpools send writes to different backends (each failed over on "
                    "its own): each site's Zabbix server may write to a different database.",
                    depends_on=("cross.two_primaries",),
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
                    f"{A}: Pgpool-II instances disagree on {{ITEM.LASTVALUE1}} backend status(es)",
                    "min(ITEM(pgpool_status_mismatches),{$KYOTEN.CROSS.WINDOW})>0",
                    Severity.AVERAGE,
                    "One site's Pgpool detached a backend the other still uses.",
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
                    f"{A}: {{ITEM.LASTVALUE1}} Zabbix servers active",
                    "last(ITEM(zabbix_active_nodes))>1",
                    Severity.DISASTER,
                    "Each site's Zabbix server is active on its own database: a consequence of "
                    "PostgreSQL split brain.",
                    depends_on=("cross.two_primaries",),
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
)
