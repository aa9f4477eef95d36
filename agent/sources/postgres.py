"""One query pass against a PostgreSQL server: a single statement, one round trip.

The statement is chosen by server version (from the connection handshake, no extra round
trip). What differs between the releases it reads (each release's system_views.sql and
pg_proc; tests/agent/fixtures/postgres holds those of 13, 14, 16 and 17):

* PostgreSQL 13 renamed pg_stat_wal_receiver.received_lsn to flushed_lsn (adding
  written_lsn) and gave pg_replication_slots wal_status and safe_wal_size;
* 14 added pg_get_wal_replay_pause_state() (pause *requested* is not yet paused) and
  pg_replication_slots.two_phase; 16 added conflicting;
* 17 added pg_replication_slots.inactive_since (when the slot stopped being streamed),
  invalidation_reason, failover and synced.

pg_stat_replication is the same from 12 to 17. LSNs come back as absolute byte positions;
all differences are computed later, in pure code.
"""

from __future__ import annotations

from kyoten.agent.errors import TargetError
from kyoten.agent.jsontext import loads
from kyoten.agent.snapshot import PgRaw

TYPE_CHECKING = False
if TYPE_CHECKING:
    from kyoten.agent.sources.session import Session

SUPPORTED = (120000, 189999)


def snapshot_sql(version: int) -> str:
    """The snapshot statement for a server_version_num (12-18; 13-17 tested)."""
    if not SUPPORTED[0] <= version <= SUPPORTED[1]:
        raise TargetError(f"PostgreSQL {version // 10000} is not supported (12-18 are)")
    flushed = "flushed_lsn" if version >= 130000 else "received_lsn"
    slot_extra = (
        "wal_status, safe_wal_size"
        if version >= 130000
        else "NULL::text AS wal_status, NULL::bigint AS safe_wal_size"
    )
    slot_extra += (
        ", inactive_since" if version >= 170000 else ", NULL::timestamptz AS inactive_since"
    )
    paused = (
        "pg_get_wal_replay_pause_state() <> 'not paused'"
        if version >= 140000
        else "pg_is_wal_replay_paused()"
    )
    return f"""
WITH r AS (SELECT pg_is_in_recovery() AS rec)
SELECT
  current_setting('server_version_num')::int AS version,
  r.rec AS in_recovery,
  extract(epoch FROM clock_timestamp())::float8 AS now,
  CASE WHEN r.rec THEN pg_wal_lsn_diff(pg_last_wal_replay_lsn(), '0/0')
       ELSE pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0') END::float8 AS ref_lsn,
  CASE WHEN r.rec THEN NULL
       ELSE ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::bigint
  END AS primary_tli,
  pg_wal_lsn_diff(pg_last_wal_receive_lsn(), '0/0')::float8 AS receive_lsn,
  extract(epoch FROM pg_last_xact_replay_timestamp())::float8 AS last_replay_ts,
  CASE WHEN r.rec THEN {paused} ELSE false END AS replay_paused,
  (SELECT coalesce(json_agg(json_build_object(
      'application_name', application_name, 'client_addr', host(client_addr),
      'state', state, 'sync_state', sync_state,
      'sent', pg_wal_lsn_diff(sent_lsn, '0/0'), 'write', pg_wal_lsn_diff(write_lsn, '0/0'),
      'flush', pg_wal_lsn_diff(flush_lsn, '0/0'), 'replay', pg_wal_lsn_diff(replay_lsn, '0/0'),
      'write_lag', extract(epoch FROM write_lag), 'flush_lag', extract(epoch FROM flush_lag),
      'replay_lag', extract(epoch FROM replay_lag)) ORDER BY application_name), '[]')
   FROM pg_stat_replication) AS standbys,
  (SELECT json_build_object(
      'status', status, 'received_tli', received_tli,
      'flushed', pg_wal_lsn_diff({flushed}, '0/0'),
      'latest_end', pg_wal_lsn_diff(latest_end_lsn, '0/0'),
      'last_msg', extract(epoch FROM last_msg_receipt_time),
      'sender_host', sender_host, 'sender_port', sender_port)
   FROM pg_stat_wal_receiver WHERE pid IS NOT NULL) AS receiver,
  (SELECT coalesce(json_agg(json_build_object(
      'slot_name', slot_name, 'slot_type', slot_type, 'active', active,
      'restart', pg_wal_lsn_diff(restart_lsn, '0/0'),
      'wal_status', wal_status, 'safe_wal_size', safe_wal_size,
      'inactive_since', extract(epoch FROM inactive_since)) ORDER BY slot_name), '[]')
   FROM (SELECT slot_name, slot_type, active, restart_lsn, {slot_extra}
         FROM pg_replication_slots) s) AS slots,
  (SELECT timeline_id FROM pg_control_checkpoint()) AS checkpoint_tli
FROM r"""


def _float(text: str) -> float | None:
    return float(text) if text else None


def _int(text: str) -> int | None:
    return int(text) if text else None


def query_postgres(session: Session) -> PgRaw:
    """Run the snapshot statement on an open connection (text results: NULL reads '')."""
    rows = session.query(snapshot_sql(session.server_version), prepare=True)
    assert len(rows) == 1  # a SELECT without FROM-filter always returns one row
    row = rows[0]
    return PgRaw(
        version=int(row["version"]),
        in_recovery=row["in_recovery"] == "t",
        now=float(row["now"]),
        ref_lsn=float(row["ref_lsn"]),
        primary_tli=_int(row["primary_tli"]),
        checkpoint_tli=_int(row["checkpoint_tli"]),
        receive_lsn=_float(row["receive_lsn"]),
        last_replay_ts=_float(row["last_replay_ts"]),
        replay_paused=row["replay_paused"] == "t",
        standbys=tuple(loads(row["standbys"] or "[]")),
        receiver=loads(row["receiver"]) if row["receiver"] else None,
        slots=tuple(loads(row["slots"] or "[]")),
    )
