"""PostgreSQL streaming replication, per server: role, standbys, WAL receiver, slots."""

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

A = "PostgreSQL"
TARGET = Macro(
    "{$KYOTEN.PG.TARGET}",
    "pg",
    "Name of the PostgreSQL target in kyoten.toml that this host's agent collects.",
)
T = f"{A} {TARGET.name}"
"""How trigger names start: the server by its name in kyoten.toml ("PostgreSQL site-a: ...")."""
LAG_BYTES = Macro(
    "{$PG.REPL_LAG.BYTES.MAX.WARN}",
    "67108864",
    "Replay lag in bytes above which a standby is late (context: application_name).",
)
LAG_SEC = Macro(
    "{$PG.REPL_LAG.SEC.MAX.WARN}",
    "300",
    "Replay lag in seconds above which a standby is late (context: application_name).",
)
LAG_WINDOW = Macro(
    "{$PG.REPL_LAG.WINDOW}",
    "5m",
    "Lag must stay above the threshold this long to fire, and below it this long "
    "to recover (hysteresis).",
)
RECEIVER_WINDOW = Macro(
    "{$PG.RECEIVER.WINDOW}",
    "2m",
    "A standby whose WAL receiver has not streamed for this long is down.",
)
MSG_AGE = Macro(
    "{$PG.RECEIVER.MSG_AGE.MAX.WARN}",
    "120",
    "Seconds without any message (WAL or keepalive) from the primary before the "
    "link is considered silent; the primary sends keepalives even when idle.",
)
STANDBY_WINDOW = Macro(
    "{$PG.STANDBY.MISSING.WINDOW}",
    "2m",
    "A standby absent from pg_stat_replication for this long is missing.",
)
SLOT_RETAINED = Macro(
    "{$PG.SLOT.RETAINED.MAX.WARN}",
    "1073741824",
    "WAL bytes a replication slot may hold back (context: slot name).",
)
SLOT_INACTIVE = Macro(
    "{$PG.SLOT.INACTIVE.WINDOW}",
    "10m",
    "A slot with no consumer for this long is reported inactive.",
)
STANDBY_FILTER = Macro(
    "{$PG.LLD.FILTER.STANDBY}", ".*", "Regular expression of application_name values to discover."
)

ROLE_MAP = ValueMap(
    "kyoten PostgreSQL role",
    (("0", "Primary"), ("1", "Standby")),
    # kyoten's words for pg_is_in_recovery() false and true
    words=(("primary", "0"), ("standby", "1")),
)
RECEIVER_MAP = ValueMap(
    "kyoten WAL receiver state",
    (("0", "Stopped"), ("1", "Streaming"), ("2", "Not a standby"), ("3", "Starting/waiting")),
    # pg_stat_wal_receiver.status (starting, waiting, restarting, stopping are 3); 'primary' is
    # kyoten's word for a server not in recovery
    words=(("stopped", "0"), ("streaming", "1"), ("primary", "2")),
    other="3",
)
BOOL_MAP = ValueMap("kyoten yes/no", (("0", "No"), ("1", "Yes")))

_RECEIVER_DOWN = "pg.receiver_down"

STANDBY = Discovery(
    "standbys",
    "Standby discovery",
    "kyoten.pg.standbys",
    "Standbys streaming from this primary (pg_stat_replication), plus the expected_standbys of "
    "the target that are not connected, so a vanished standby stays visible.",
    (("{#APP}", "application_name"), ("{#CLIENT}", "client_addr")),
    filter_macro=STANDBY_FILTER,
    metrics=(
        Metric(
            "application_name",
            "Standby [{#APP}]: Name",
            ValueType.CHAR,
            "application_name of the walsender.",
            item=False,
        ),
        Metric(
            "client_addr",
            "Standby [{#APP}]: Client address",
            ValueType.CHAR,
            "Address the standby connects from.",
            heartbeat="1h",
        ),
        Metric(
            "connected",
            "Standby [{#APP}]: Connected",
            ValueType.UNSIGNED,
            "1 while the standby has a walsender on this server.",
            valuemap=BOOL_MAP.name,
            missing="0",
            triggers=(
                Trigger(
                    "pg.standby_missing",
                    f"{T}: standby {{#APP}} is missing from pg_stat_replication",
                    "max(ITEM(connected),{$PG.STANDBY.MISSING.WINDOW})=0 and "
                    "last(ITEM(expected))=1",
                    Severity.AVERAGE,
                    "This primary has had no walsender for an expected standby for "
                    "{$PG.STANDBY.MISSING.WINDOW}. A symptom: the cause leads on another host, "
                    "the standby's own (WAL receiver is not streaming) or the cross-site host "
                    "(standby down, split brain). Resolves when the standby streams from here "
                    "again, or at once when this server stops being primary.",
                ),
            ),
        ),
        Metric(
            "expected",
            "Standby [{#APP}]: Expected here",
            ValueType.UNSIGNED,
            "1 while this server is primary and lists the standby in expected_standbys: only "
            "then must it stream from here. 0 on a standby, so the row (and its triggers) "
            "stay and resolve when the server changes role.",
            valuemap=BOOL_MAP.name,
            heartbeat="1h",
            missing="0",
        ),
        Metric(
            "state",
            "Standby [{#APP}]: State",
            ValueType.CHAR,
            "walsender state: startup, catchup, streaming, backup, stopping; 'missing'.",
            heartbeat="1h",
        ),
        Metric(
            "sync_state",
            "Standby [{#APP}]: Sync state",
            ValueType.CHAR,
            "async, potential, sync or quorum.",
            heartbeat="1h",
        ),
        Metric(
            "sent_lag_bytes",
            "Standby [{#APP}]: Send lag",
            ValueType.UNSIGNED,
            "pg_current_wal_lsn() - sent_lsn: WAL not yet sent.",
            units="B",
            graph="lag",
        ),
        Metric(
            "write_lag_bytes",
            "Standby [{#APP}]: Write lag",
            ValueType.UNSIGNED,
            "pg_current_wal_lsn() - write_lsn.",
            units="B",
            graph="lag",
        ),
        Metric(
            "flush_lag_bytes",
            "Standby [{#APP}]: Flush lag",
            ValueType.UNSIGNED,
            "pg_current_wal_lsn() - flush_lsn.",
            units="B",
            graph="lag",
        ),
        Metric(
            "replay_lag_bytes",
            "Standby [{#APP}]: Replay lag",
            ValueType.UNSIGNED,
            "pg_current_wal_lsn() - replay_lsn: WAL the standby has not applied yet.",
            units="B",
            graph="lag",
            missing="0",
            triggers=(
                Trigger(
                    "pg.standby_lag_bytes",
                    f"{T}: standby {{#APP}} replay lag over "
                    '{$PG.REPL_LAG.BYTES.MAX.WARN:"{#APP}"} B',
                    "min(ITEM(replay_lag_bytes),{$PG.REPL_LAG.WINDOW})>"
                    '{$PG.REPL_LAG.BYTES.MAX.WARN:"{#APP}"}',
                    Severity.WARNING,
                    "The standby has been behind by more than the threshold for the whole window: "
                    "a failover to it now would lose or wait for that much WAL. Fix: on the "
                    "standby, check pg_get_wal_replay_pause_state() (pg_wal_replay_resume() if "
                    "paused), recovery conflicts and I/O; on the way, the network's bandwidth. "
                    "Resolves once the lag stays under the threshold for {$PG.REPL_LAG.WINDOW}.",
                    recovery="max(ITEM(replay_lag_bytes),{$PG.REPL_LAG.WINDOW})<="
                    '{$PG.REPL_LAG.BYTES.MAX.WARN:"{#APP}"}',
                    opdata="Lag: {ITEM.LASTVALUE1}",
                    depends_on=("pg.standby_missing",),
                    scope="performance",
                ),
            ),
        ),
        Metric(
            "write_lag",
            "Standby [{#APP}]: Write lag time",
            ValueType.FLOAT,
            "write_lag of pg_stat_replication (0 when caught up).",
            units="s",
        ),
        Metric(
            "flush_lag",
            "Standby [{#APP}]: Flush lag time",
            ValueType.FLOAT,
            "flush_lag of pg_stat_replication (0 when caught up).",
            units="s",
        ),
        Metric(
            "replay_lag",
            "Standby [{#APP}]: Replay lag time",
            ValueType.FLOAT,
            "replay_lag of pg_stat_replication (0 when caught up).",
            units="s",
            graph="lag_time",
            missing="0",
            triggers=(
                Trigger(
                    "pg.standby_lag_sec",
                    f"{T}: standby {{#APP}} replay lag over "
                    '{$PG.REPL_LAG.SEC.MAX.WARN:"{#APP}"} s',
                    "min(ITEM(replay_lag),{$PG.REPL_LAG.WINDOW})>"
                    '{$PG.REPL_LAG.SEC.MAX.WARN:"{#APP}"}',
                    Severity.WARNING,
                    "The standby has applied WAL later than the threshold for the whole window.",
                    recovery="max(ITEM(replay_lag),{$PG.REPL_LAG.WINDOW})<="
                    '{$PG.REPL_LAG.SEC.MAX.WARN:"{#APP}"}',
                    opdata="Lag: {ITEM.LASTVALUE1}",
                    depends_on=("pg.standby_missing",),
                    scope="performance",
                ),
            ),
        ),
    ),
)

SLOTS = Discovery(
    "slots",
    "Replication slot discovery",
    "kyoten.pg.slots",
    "Replication slots of this server (pg_replication_slots).",
    (("{#SLOT}", "slot_name"),),
    metrics=(
        Metric("slot_name", "Slot [{#SLOT}]: Name", ValueType.CHAR, "Slot name.", item=False),
        Metric(
            "present",
            "Slot [{#SLOT}]: Exists",
            ValueType.UNSIGNED,
            "1 while the slot exists; 0 (set by the template) once it is dropped, e.g. when "
            "its server is rebuilt as a standby, so that the slot's triggers resolve.",
            valuemap=BOOL_MAP.name,
            missing="0",
        ),
        Metric(
            "slot_type",
            "Slot [{#SLOT}]: Type",
            ValueType.CHAR,
            "physical or logical.",
            heartbeat="1d",
        ),
        Metric(
            "active",
            "Slot [{#SLOT}]: Active",
            ValueType.UNSIGNED,
            "1 while a consumer is connected to the slot.",
            valuemap=BOOL_MAP.name,
            triggers=(
                Trigger(
                    "pg.slot_inactive",
                    f"{T}: slot {{#SLOT}} has been inactive for {{$PG.SLOT.INACTIVE.WINDOW}}",
                    "max(ITEM(active),{$PG.SLOT.INACTIVE.WINDOW})=0 and last(ITEM(present))=1",
                    Severity.WARNING,
                    "No consumer uses the slot; it keeps WAL until it is dropped or used again.",
                ),
            ),
        ),
        Metric(
            "inactive_seconds",
            "Slot [{#SLOT}]: Inactive for",
            ValueType.FLOAT,
            "Seconds since the slot was last streamed (PostgreSQL 17+ inactive_since; 0 while "
            "streamed). null (no value) before 17, which does not say.",
            units="s",
            optional=True,
        ),
        Metric(
            "wal_status",
            "Slot [{#SLOT}]: WAL status",
            ValueType.CHAR,
            "reserved, extended, unreserved or lost (PostgreSQL 13+; empty before).",
            heartbeat="1h",
            triggers=(
                Trigger(
                    "pg.slot_lost",
                    f"{T}: slot {{#SLOT}} lost required WAL",
                    'find(ITEM(wal_status),,"like","lost")=1 and last(ITEM(present))=1',
                    Severity.HIGH,
                    "WAL this slot needs was removed: its standby must be rebuilt.",
                ),
                Trigger(
                    "pg.slot_unreserved",
                    f"{T}: slot {{#SLOT}} WAL is no longer reserved",
                    'find(ITEM(wal_status),,"like","unreserved")=1 and last(ITEM(present))=1',
                    Severity.AVERAGE,
                    "The slot holds more than max_slot_wal_keep_size; the WAL will be removed at "
                    "the next checkpoint.",
                    depends_on=("pg.slot_lost",),
                ),
            ),
        ),
        Metric(
            "retained_bytes",
            "Slot [{#SLOT}]: Retained WAL",
            ValueType.UNSIGNED,
            "Bytes of WAL kept for the slot (current LSN - restart_lsn).",
            units="B",
            graph="slots",
            triggers=(
                Trigger(
                    "pg.slot_retained",
                    f"{T}: slot {{#SLOT}} retains over "
                    '{$PG.SLOT.RETAINED.MAX.WARN:"{#SLOT}"} B of WAL',
                    'min(ITEM(retained_bytes),5m)>{$PG.SLOT.RETAINED.MAX.WARN:"{#SLOT}"} and '
                    "last(ITEM(present))=1",
                    Severity.WARNING,
                    "WAL piles up on disk for this slot.",
                    recovery="max(ITEM(retained_bytes),5m)<="
                    '{$PG.SLOT.RETAINED.MAX.WARN:"{#SLOT}"} or last(ITEM(present))=0',
                    opdata="Retained: {ITEM.LASTVALUE1}",
                    scope="capacity",
                ),
            ),
        ),
        Metric(
            "safe_wal_size",
            "Slot [{#SLOT}]: Safe WAL size",
            ValueType.FLOAT,
            "Bytes that can still be written before the slot loses WAL; -1 when unlimited "
            "(max_slot_wal_keep_size = -1) or unknown (PostgreSQL 12).",
            units="B",
        ),
    ),
)

FAMILY = Family(
    key="kyoten.pg",
    description="PostgreSQL replication snapshot of a target from kyoten.toml, as JSON.",
    template="kyoten PostgreSQL replication",
    template_description=(
        "PostgreSQL streaming replication seen from one server (primary or standby): role, "
        "timeline, per-standby lag in bytes and seconds, the WAL receiver, replication slots. "
        "Collected by kyoten (UserParameter or agent 2 plugin) with one query pass per poll. "
        "Set {$KYOTEN.PG.TARGET} to the target's name in /etc/kyoten/kyoten.toml."
    ),
    params=(Param("target", TARGET),),
    component="replication",
    tags=(("class", "database"), ("target", "postgresql")),
    macros=(
        NODATA,
        CHANGE_HOLD,
        LAG_BYTES,
        LAG_SEC,
        LAG_WINDOW,
        RECEIVER_WINDOW,
        MSG_AGE,
        STANDBY_WINDOW,
        SLOT_RETAINED,
        SLOT_INACTIVE,
    ),
    valuemaps=(ROLE_MAP, RECEIVER_MAP, BOOL_MAP),
    metrics=(
        TARGET_FIELD,
        SITE_FIELD,
        duration(
            A,
            "pg",
            "this PostgreSQL server",
            Severity.AVERAGE,
            " When the server itself is down, the cross-site host leads with its loss (primary "
            "or standby down) and the fix; this problem only says that this host's agent gets "
            "nothing.",
            label=T,
        ),
        Metric(
            "server_version",
            f"{A}: Server version",
            ValueType.UNSIGNED,
            "server_version_num, e.g. 150018.",
            heartbeat="1d",
        ),
        Metric(
            "in_recovery",
            f"{A}: Role",
            ValueType.UNSIGNED,
            "0 primary, 1 standby (pg_is_in_recovery()).",
            valuemap=ROLE_MAP.name,
            heartbeat=CHANGE_HOLD.name,
            triggers=(
                Trigger(
                    "pg.role_changed",
                    f"{T}: role changed",
                    "last(ITEM(in_recovery),#1)<>last(ITEM(in_recovery),#2)",
                    Severity.INFO,
                    "The server was promoted or demoted (the event's name has the new role). "
                    "Every change opens an event of its own; each resolves "
                    "{$KYOTEN.CHANGE.HOLD} after the last change, or when closed by hand.",
                    opdata="Role: {ITEM.LASTVALUE1}",
                    manual_close=True,
                    scope="notice",
                    per_change=True,
                    event_name=f"{T}: role changed to {{ITEM.VALUE1}}",
                ),
            ),
        ),
        Metric(
            "timeline",
            f"{A}: Timeline",
            ValueType.UNSIGNED,
            "Current timeline: of the WAL being written on a primary, of the last "
            "checkpoint on a standby. A new timeline means a promotion.",
            heartbeat=CHANGE_HOLD.name,
            triggers=(
                Trigger(
                    "pg.timeline_changed",
                    f"{T}: timeline changed",
                    "last(ITEM(timeline),#1)<>last(ITEM(timeline),#2)",
                    Severity.INFO,
                    "A promotion happened on this server or upstream of it (the event's name has "
                    "the new timeline). Every change opens an event of its own; each "
                    "resolves {$KYOTEN.CHANGE.HOLD} after the last change, or when closed by hand.",
                    opdata="Timeline: {ITEM.LASTVALUE1}",
                    manual_close=True,
                    scope="notice",
                    per_change=True,
                    event_name=f"{T}: timeline changed to {{ITEM.VALUE1}}",
                ),
            ),
        ),
        Metric(
            "wal_lsn",
            f"{A}: WAL position",
            ValueType.UNSIGNED,
            "pg_current_wal_lsn() on a primary, pg_last_wal_replay_lsn() on a standby, as "
            "a byte position.",
            units="B",
        ),
        Metric(
            "standbys_connected",
            f"{A}: Standbys connected",
            ValueType.UNSIGNED,
            "Walsenders in pg_stat_replication (0 on a standby without cascading).",
        ),
        Metric(
            "receiver_state",
            f"{A}: WAL receiver",
            ValueType.UNSIGNED,
            "0 stopped (no pg_stat_wal_receiver row), 1 streaming, 2 this is a primary, 3 "
            "starting/waiting/restarting. Lag alone cannot show a stopped receiver: with "
            "nothing received, received = replayed and lag reads 0.",
            valuemap=RECEIVER_MAP.name,
            triggers=(
                Trigger(
                    _RECEIVER_DOWN,
                    f"{T}: WAL receiver is not streaming",
                    'count(ITEM(receiver_state),{$PG.RECEIVER.WINDOW},"eq",1)=0 and '
                    "last(ITEM(receiver_state))<>2",
                    Severity.HIGH,
                    "This standby has not streamed from its primary for {$PG.RECEIVER.WINDOW}: "
                    "primary_conninfo, the network, or the primary is at fault. Its data is "
                    "getting older although lag may read 0. Fix: check primary_conninfo "
                    "(SHOW primary_conninfo), that the primary answers, and the standby's log; "
                    "a standby whose WAL the primary no longer has must be rebuilt "
                    "(pg_basebackup). Resolves once it streams again, or when it is promoted.",
                    opdata="Receiver: {ITEM.LASTVALUE1}",
                ),
            ),
        ),
        Metric(
            "receiver_sender",
            f"{A}: WAL receiver sender",
            ValueType.CHAR,
            "host:port the WAL receiver streams from ('' when none).",
            heartbeat="1h",
        ),
        Metric(
            "receiver_last_msg_age",
            f"{A}: Age of last message from primary",
            ValueType.FLOAT,
            "Seconds since the WAL receiver last heard from the primary (WAL or keepalive); "
            "-1 when there is no receiver.",
            units="s",
            triggers=(
                Trigger(
                    "pg.receiver_silent",
                    f"{T}: primary silent for over {{$PG.RECEIVER.MSG_AGE.MAX.WARN}} s",
                    "min(ITEM(receiver_last_msg_age),2m)>{$PG.RECEIVER.MSG_AGE.MAX.WARN}",
                    Severity.WARNING,
                    "The receiver is connected but nothing (not even a keepalive) arrives.",
                    depends_on=(_RECEIVER_DOWN,),
                ),
            ),
        ),
        Metric(
            "receive_lag_bytes",
            f"{A}: Receive lag",
            ValueType.UNSIGNED,
            "On a standby: WAL the primary reported having but not yet flushed here "
            "(latest_end_lsn - flushed_lsn); 0 on a primary.",
            units="B",
            graph="standby",
        ),
        Metric(
            "replay_lag_bytes",
            f"{A}: Replay lag",
            ValueType.UNSIGNED,
            "On a standby: WAL received but not yet replayed; 0 on a primary.",
            units="B",
            graph="standby",
            triggers=(
                Trigger(
                    "pg.replay_lag_bytes",
                    f"{T}: replay lag over {{$PG.REPL_LAG.BYTES.MAX.WARN}} B",
                    "min(ITEM(replay_lag_bytes),{$PG.REPL_LAG.WINDOW})>"
                    "{$PG.REPL_LAG.BYTES.MAX.WARN}",
                    Severity.WARNING,
                    "Received WAL is not being applied (replay paused, conflicts or I/O).",
                    recovery="max(ITEM(replay_lag_bytes),{$PG.REPL_LAG.WINDOW})<="
                    "{$PG.REPL_LAG.BYTES.MAX.WARN}",
                    depends_on=(_RECEIVER_DOWN,),
                    scope="performance",
                ),
            ),
        ),
        Metric(
            "replay_delay",
            f"{A}: Replay delay",
            ValueType.FLOAT,
            "On a standby: 0 when everything received is replayed, else seconds since the "
            "last replayed transaction. An idle primary does not inflate it.",
            units="s",
            graph="standby_time",
            triggers=(
                Trigger(
                    "pg.replay_delay",
                    f"{T}: replay delay over {{$PG.REPL_LAG.SEC.MAX.WARN}} s",
                    "min(ITEM(replay_delay),{$PG.REPL_LAG.WINDOW})>{$PG.REPL_LAG.SEC.MAX.WARN}",
                    Severity.WARNING,
                    "The standby applies WAL late.",
                    recovery="max(ITEM(replay_delay),{$PG.REPL_LAG.WINDOW})<="
                    "{$PG.REPL_LAG.SEC.MAX.WARN}",
                    depends_on=(_RECEIVER_DOWN,),
                    scope="performance",
                ),
            ),
        ),
        Metric(
            "replay_paused",
            f"{A}: Replay paused",
            ValueType.UNSIGNED,
            "1 when WAL replay is paused on this standby (pg_get_wal_replay_pause_state).",
            valuemap=BOOL_MAP.name,
        ),
    ),
    discoveries=(STANDBY, SLOTS),
)
