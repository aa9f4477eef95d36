"""The one-statement snapshot on PostgreSQL 13-17: each release's own catalogs.

``fixtures/postgres/<major>/system_views.sql`` are the definitions of pg_stat_replication,
pg_stat_wal_receiver and pg_replication_slots of that release, and ``pg_functions.txt`` its
``pg_*`` functions (origin in ``fixtures/postgres/ORIGIN.md``). Each release's statement
must call only functions that release has, and must run against views with exactly that
release's columns: a real server of the lab (per stack), its three views shadowed by views of
the other release's shape (missing columns absent, newer ones present) through search_path.
The real servers themselves (15 and 17, one per stack) are what every other integration test
runs.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import psycopg
import pytest
from kyoten.agent.shape import shape_pg
from kyoten.agent.sources.libpq import PsycopgSession
from kyoten.agent.sources.postgres import query_postgres, snapshot_sql

FIXTURES = Path(__file__).with_name("fixtures") / "postgres"
RELEASES = (13, 14, 16, 17)
VIEWS = ("pg_stat_replication", "pg_stat_wal_receiver", "pg_replication_slots")
# types of the columns later releases added that 15 lacks (for NULL stand-ins)
NEWER = {
    "conflicting": "boolean",
    "inactive_since": "timestamptz",
    "invalidation_reason": "text",
    "failover": "boolean",
    "synced": "boolean",
}


def columns(release: int) -> dict[str, list[str]]:
    """Output columns of each view as that release's system_views.sql defines it."""
    text = (FIXTURES / str(release) / "system_views.sql").read_text()
    out = {}
    for view in VIEWS:
        body = text.split(f"CREATE VIEW {view} AS", 1)[1].split("FROM", 1)[0]
        select = body.replace("SELECT", "", 1)
        out[view] = [re.split(r"[\s.]", item.strip())[-1] for item in select.split(",")]
    return out


def functions(release: int) -> set[str]:
    return set((FIXTURES / str(release) / "pg_functions.txt").read_text().split())


def test_fixtures_show_the_differences_the_statement_handles() -> None:
    slots = {r: columns(r)["pg_replication_slots"] for r in RELEASES}
    assert {"wal_status", "safe_wal_size"} <= set(slots[13])
    assert "inactive_since" in slots[17] and "inactive_since" not in slots[16]
    assert "pg_get_wal_replay_pause_state" not in functions(13)
    assert "pg_get_wal_replay_pause_state" in functions(14)
    assert "flushed_lsn" in columns(13)["pg_stat_wal_receiver"]


@pytest.mark.parametrize("release", RELEASES)
def test_each_release_statement_calls_only_that_releases_functions(release: int) -> None:
    sql = snapshot_sql(release * 10000)
    called = set(re.findall(r"\b(pg_\w+)\s*\(", sql))
    assert called, sql
    assert called <= functions(release), called - functions(release)


KEYWORDS = {
    "coalesce",
    "json_agg",
    "json_build_object",
    "extract",
    "epoch",
    "from",
    "host",
    "order",
    "by",
    "null",
    "pg_wal_lsn_diff",
}


@pytest.mark.parametrize("release", RELEASES)
def test_each_release_statement_names_only_columns_that_release_has(release: int) -> None:
    """Every column the statement reads from a view exists in that release's view (what it
    defines itself, ``NULL::type AS name`` for an older release, is not a read)."""
    sql = snapshot_sql(release * 10000)
    have = columns(release)
    for view in VIEWS:
        part = sql.split(f"FROM {view}", 1)[0].rsplit("SELECT", 1)[1]
        part = re.sub(r"'[^']*'", "", part)  # JSON keys, LSN literals
        part = re.sub(r"NULL::\w+ AS \w+|::\w+", "", part)  # stand-ins and casts
        used = set(re.findall(r"\b([a-z_]+)\b", part)) - KEYWORDS
        assert used, (view, part)
        assert used <= set(have[view]), (view, used - set(have[view]))


def shadow(conn: psycopg.Connection[Any], release: int) -> None:
    """Views of ``release``'s shape in schema kyoten_pg<release>, first on search_path."""
    schema = f"kyoten_pg{release}"
    conn.execute(f"CREATE SCHEMA {schema}")
    for view, cols in columns(release).items():
        real = {
            r[0]
            for r in conn.execute(
                "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0",
                (f"pg_catalog.{view}",),
            )
        }
        select = ", ".join(c if c in real else f"NULL::{NEWER[c]} AS {c}" for c in cols)
        conn.execute(f"CREATE VIEW {schema}.{view} AS SELECT {select} FROM pg_catalog.{view}")
    conn.execute(f"SET LOCAL search_path = {schema}, pg_catalog")


@pytest.mark.integration
@pytest.mark.parametrize("release", RELEASES)
def test_each_release_statement_runs_against_that_releases_views(
    cluster: Any, release: int
) -> None:
    with psycopg.connect(cluster.primary.conninfo()) as conn:  # one transaction, rolled back
        shadow(conn, release)
        session = PsycopgSession(conn)
        raw = query_postgres(_AsRelease(session, release))
        conn.rollback()
    obj = shape_pg(
        raw._replace(version=release * 10000),
        target="a",
        site="",
        expected_standbys=(),
        duration=0,
    )
    assert obj["in_recovery"] == 0 and obj["standbys"][0]["state"] == "streaming"
    (slot,) = obj["slots"]
    assert slot["wal_status"] == "reserved" and slot["active"] == 1
    # 17 says how long a slot was idle (0: streamed now); earlier releases cannot
    assert slot["inactive_seconds"] == (0.0 if release >= 17 else None)


class _AsRelease:
    """A session that answers as ``release`` would in the handshake (the statement chosen
    for it), on the real server with that release's views shadowed in."""

    def __init__(self, session: PsycopgSession, release: int) -> None:
        self.session = session
        self.server_version = release * 10000
        self.raw = session.raw

    def query(
        self, command: str, columns: Any = None, *, prepare: bool = False
    ) -> Any:  # prepared statements would outlive the rolled-back views
        return self.session.query(command, columns)
