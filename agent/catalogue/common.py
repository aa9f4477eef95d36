"""Declarations every family shares: the target macros and the collector's own health item."""

from __future__ import annotations

from kyoten.agent.catalogue.model import Macro, Metric, Severity, Trigger, ValueType

NODATA = Macro(
    "{$KYOTEN.NODATA.TIMEOUT}",
    "5m",
    "How long without a value from the collector before 'no data' fires. The master "
    "item of a target that fails is 'not supported' with the reason.",
)

CHANGE_HOLD = Macro(
    "{$KYOTEN.CHANGE.HOLD}",
    "10m",
    "How long a change event (failover, role, timeline, HA node) stays open: the changed "
    "item stores changes only, with a heartbeat of this period, and the heartbeat's unchanged "
    "value resolves the event. Every change within the period opens an event of its own.",
)

TARGET_FIELD = Metric(
    "target",
    "Target",
    ValueType.CHAR,
    "Name of the target in kyoten.toml (meta, not an item).",
    item=False,
)
SITE_FIELD = Metric(
    "site",
    "Site",
    ValueType.CHAR,
    "Site (拠点) the target belongs to, from kyoten.toml (meta, not an item).",
    item=False,
)


def duration(
    area: str,
    uid: str,
    what: str,
    severity: Severity = Severity.HIGH,
    more: str = "",
    label: str | None = None,
) -> Metric:
    """Collector wall time, also the item whose silence means 'target unreachable'.

    ``label`` starts the trigger's name (the area with the target's name, e.g.
    ``PostgreSQL {$KYOTEN.PG.TARGET}``); ``more`` is added to its description.
    """
    return Metric(
        "duration",
        f"{area}: Collector duration",
        ValueType.FLOAT,
        "Seconds the collector took for this snapshot. It is present in every successful "
        "snapshot, so 'no data' on it means the target failed or the collector is not called.",
        units="s",
        triggers=(
            Trigger(
                f"{uid}.nodata",
                f"{label or area}: no data from the collector for {{$KYOTEN.NODATA.TIMEOUT}}",
                "nodata(ITEM(duration),{$KYOTEN.NODATA.TIMEOUT})=1",
                severity,
                f"No successful snapshot of {what} arrived for {{$KYOTEN.NODATA.TIMEOUT}}: the "
                "target is down or unreachable, or the agent cannot run kyoten. The master item's "
                "'not supported' reason says which." + more,
            ),
        ),
    )
