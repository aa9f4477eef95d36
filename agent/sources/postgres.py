"""One query pass against a PostgreSQL server: a single statement, one round trip.

The statement is chosen by server version (from the connection handshake, no extra round
trip): PostgreSQL 13 renamed pg_stat_wal_receiver.received_lsn to flushed_lsn and added
written_lsn, and gave pg_replication_slots wal_status and safe_wal_size. LSNs come back as
absolute byte positions; all differences are computed later, in pure code.
"""

from __future__ import annotations

import json
from typing import Any

import psycopg
from kyoten.agent.errors import TargetError
from kyoten.agent.snapshot import PgRaw

SUPPORTED = (120000, 189999)


def snapshot_sql(version: int) -> str:
    """The snapshot statement for a server_version_num (12-18)."""
    if not SUPPORTED[0] <= version <= SUPPORTED[1]:
        raise TargetError(f"PostgreSQL {version // 10000} is not supported (12-18 are)")
    flushed = "flushed_lsn" if version >= 130000 else "received_lsn"
    slot_extra = (
        "wal_status, safe_wal_size"
        if version >= 130000
        else "NULL::text AS wal_status, NULL::bigint AS safe_wal_size"
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
      'wal_status', wal_status, 'safe_wal_size', safe_wal_size) ORDER BY slot_name), '[]')
   FROM (SELECT slot_name, slot_type, active, restart_lsn, {slot_extra}
         FROM pg_replication_slots) s) AS slots,
  (SELECT timeline_id FROM pg_control_checkpoint()) AS checkpoint_tli
FROM r"""


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def query_postgres(conn: psycopg.Connection[Any]) -> PgRaw:
    """Run the snapshot statement on an open connection."""
    row = conn.execute(snapshot_sql(conn.info.server_version)).fetchone()
    assert row is not None  # a SELECT without FROM-filter always returns one row
    (
        version,
        rec,
        now,
        ref_lsn,
        primary_tli,
        receive_lsn,
        last_replay_ts,
        paused,
        standbys,
        receiver,
        slots,
        checkpoint_tli,
    ) = row
    return PgRaw(
        version=int(version),
        in_recovery=bool(rec),
        now=float(now),
        ref_lsn=float(ref_lsn),
        primary_tli=primary_tli,
        checkpoint_tli=checkpoint_tli,
        receive_lsn=receive_lsn,
        last_replay_ts=last_replay_ts,
        replay_paused=bool(paused),
        standbys=tuple(_json(standbys) or ()),
        receiver=_json(receiver),
        slots=tuple(_json(slots) or ()),
    )
