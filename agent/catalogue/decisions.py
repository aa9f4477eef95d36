"""The decision table: each cross-site state, the one problem that leads, what else it raises.

Every row names triggers by their catalogue ``uid``, so the table cannot name a problem the
templates do not have; METRICS.md renders it with each trigger's name, severity, host template
and fix (its description), and the integration tests inject each row's ``fault`` into the real
lab and check the lead, its severity, that nothing else High or Disaster is open beyond the
listed symptoms, and the return to calm after the repair.

How the table stays true, and what a new trigger must respect:

* a symptom of severity High or above either depends (in its template) on the lead, or is
  raised on another host and listed here, so it is *expected*, never a surprise. Where both
  follow from one poll, the symptom's expression also excludes the lead's condition: Zabbix
  may evaluate the two in either order (one history syncer each), and a dependency only
  suppresses a symptom whose lead is already open;
* a change event (failover, role, timeline, HA node) is an event per change
  (``Trigger.per_change``) and resolves by itself ``{$KYOTEN.CHANGE.HOLD}`` later;
* no trigger of a discovered entity can be left open when the entity changes role or goes
  away: its items read a value that resolves it (``Metric.missing``), or it is guarded by an
  item that does (``expected``, ``present``, the ``status`` of a Pgpool backend or a Zabbix
  HA node, which reads *Removed* once Pgpool or ha_node no longer reports it). The LLD rules
  keep a lost entity enabled until their lifetime deletes it, so that value arrives.
"""

from __future__ import annotations

from dataclasses import dataclass

from kyoten.agent.catalogue.model import Discovery, Family, Metric, State, Trigger

HOLD = "{$KYOTEN.CHANGE.HOLD}"

STATES: tuple[State, ...] = (
    State(
        "primary-lost-promoted",
        "The primary's server dies and the standby is promoted (Pgpool's failover_command, "
        "or by hand): the service runs on, without a standby.",
        "cross.primary_down",
        (
            "cross.no_primary",  # only if a poll falls between the death and the promotion
            "cross.primary_changed",
            "cross.unreachable",
            "cross.pgpool_status_mismatch",
            "pg.nodata",
            "pg.role_changed",
            "pg.timeline_changed",
            "pg.standby_missing",
            "pgpool.backend_down",
            "pgpool.hc_failing",
            "pgpool.no_primary",
            "pgpool.primary_changed",
        ),
        "Rebuild the old primary as a standby of the new one (pg_rewind or pg_basebackup) and "
        "re-attach it on every Pgpool (pcp_attach_node): the lead resolves when it accepts "
        f"connections again, the change events {HOLD} after the failover.",
        fault="primary-down",
    ),
    State(
        "primary-lost",
        "The primary's server dies and nothing is promoted: no server accepts writes. (In "
        "the demo lab the Zabbix database lives on this cluster, so no Zabbix server can raise "
        "it there: the alert bridge's canary does.)",
        "cross.no_primary",
        (
            "cross.unreachable",
            "cross.pgpool_status_mismatch",
            "pg.nodata",
            "pg.receiver_down",  # the standby's host: its primary is gone
            "pg.receiver_silent",
            "pgpool.backend_down",
            "pgpool.hc_failing",
            "pgpool.no_primary",
        ),
        "Promote the standby (pcp_promote_node, or pg_ctl promote) or bring the primary back: "
        "the lead resolves when a primary answers; then the row above applies until the old "
        "primary is rebuilt.",
        fault="primary-stop",
    ),
    State(
        "standby-lost",
        "The standby's server dies: nothing could take over if the primary failed now.",
        "cross.standby_down",
        (
            "cross.unreachable",
            "cross.pgpool_status_mismatch",
            "pg.nodata",
            "pg.standby_missing",
            "pg.slot_inactive",
            "pgpool.backend_down",
            "pgpool.hc_failing",
        ),
        "Start the standby (rebuild it if the primary no longer has its WAL) and re-attach it "
        "on every Pgpool: the lead resolves when it accepts connections again.",
        fault="standby-stop",
    ),
    State(
        "receiver-stopped",
        "The standby runs but its WAL receiver stopped (primary_conninfo, network, "
        "authentication): its data ages while its lag reads 0.",
        "pg.receiver_down",
        ("pg.standby_missing", "pg.slot_inactive", "pg.receiver_silent"),
        "Fix primary_conninfo or the path to the primary: the lead resolves when the "
        "receiver streams again.",
        fault="receiver-stop",
    ),
    State(
        "lag",
        "The standby receives WAL but applies it late (replay paused, conflicts, slow I/O).",
        "pg.standby_lag_bytes",
        ("pg.standby_lag_sec", "pg.replay_lag_bytes", "pg.replay_delay", "pgpool.delay"),
        "Resume replay (pg_wal_replay_resume) or remove the cause: the lead resolves once the "
        "lag stays below the threshold for {$PG.REPL_LAG.WINDOW}.",
        fault="replay-paused",
    ),
    State(
        "two-primaries",
        "Split brain: the standby was promoted while the primary lives; both Pgpools still "
        "send writes to the old primary.",
        "cross.two_primaries",
        (
            "cross.primary_changed",
            "cross.zabbix_two_active",  # depends on the lead
            "pg.role_changed",
            "pg.timeline_changed",
            "pg.standby_missing",
            "pg.slot_inactive",
            "pgpool.two_primaries",
        ),
        "Fence the promoted server, rebuild it as a standby, re-attach it: the lead resolves "
        "when one primary is left.",
        fault="two-primaries",
    ),
    State(
        "double-failover",
        "The two Pgpools failed over on their own and disagree on the primary: each site's "
        "Pgpool sends writes to a different primary (each promoted its own).",
        "cross.pgpool_split",
        (
            "cross.two_primaries",  # depends on the lead
            "cross.pgpool_disagree",  # depends on the lead
            "cross.zabbix_two_active",  # depends on the lead
            "cross.pgpool_status_mismatch",
            "cross.primary_changed",
            "pg.role_changed",
            "pg.timeline_changed",
            "pg.standby_missing",
            "pg.slot_inactive",
            "pgpool.two_primaries",
            "pgpool.backend_down",
            "pgpool.drift",  # the Pgpool that failed over holds the old, live primary down
            "pgpool.primary_changed",
        ),
        "Keep the primary with the newer data, fence and rebuild the other, re-attach it on "
        "the Pgpool that detached it: the lead resolves when the Pgpools agree or one primary "
        "is left.",
        fault="double-failover",
    ),
    State(
        "pgpool-drift",
        "A Pgpool holds a live backend down (a stale pgpool_status after a restart, or a "
        "failover never reverted).",
        "pgpool.drift",
        ("pgpool.backend_down", "cross.pgpool_status_mismatch"),
        "Check it is not a stale former primary, then pcp_attach_node it: the lead resolves "
        "when Pgpool uses the backend again.",
        fault="pgpool-drift",
    ),
    State(
        "children-exhausted",
        "Every child process of a Pgpool is taken: the Zabbix server behind it hangs on its "
        "next database connection.",
        "pgpool.children_exhausted",
        ("pgpool.children_high", "pgpool.children_warn", "zbx.failover", "zbx.node_changed"),
        "Release the connections (find their holders with SHOW POOL_PROCESSES) and raise "
        "num_init_children: the lead resolves at the first poll with a free child.",
        fault="children-exhausted",
    ),
    State(
        "zabbix-failover",
        "The active Zabbix server stops and the standby node takes over.",
        "zbx.failover",
        ("zbx.node_changed", "zbx.node_unavailable", "zbx.node_stale"),
        "Find why the node stopped and start it again (it joins as standby): the failover "
        f"event resolves {HOLD} after the failover, or when closed by hand.",
        fault="zabbix-failover",
    ),
)
"""Every state of the table, in the order METRICS.md and the README show them."""


@dataclass(frozen=True)
class Placed:
    """A trigger with where it lives: its family (template) and LLD rule, if any."""

    trigger: Trigger
    family: Family
    discovery: Discovery | None


def triggers_by_uid() -> dict[str, Placed]:
    """Every trigger of the catalogue by ``uid``."""
    from kyoten.agent.catalogue import FAMILIES

    out: dict[str, Placed] = {}
    for fam in FAMILIES:
        scopes: list[tuple[Discovery | None, tuple[Metric, ...]]] = [(None, fam.metrics)]
        scopes += [(d, d.metrics) for d in fam.discoveries]
        for disc, metrics in scopes:
            for m in metrics:
                for t in m.triggers:
                    out[t.uid] = Placed(t, fam, disc)
    return out


def depends_on(uid: str, lead: str, index: dict[str, Placed]) -> bool:
    """Whether trigger ``uid`` is suppressed by ``lead`` (directly or through others)."""
    seen: set[str] = set()
    todo = list(index[uid].trigger.depends_on)
    while todo:
        dep = todo.pop()
        if dep == lead:
            return True
        if dep not in seen and dep in index:
            seen.add(dep)
            todo.extend(index[dep].trigger.depends_on)
    return False
