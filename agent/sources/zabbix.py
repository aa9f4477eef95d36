"""Zabbix HA state straight from the ``ha_node`` table (works with no active node at all)."""

from __future__ import annotations

from typing import Any

import psycopg
from kyoten.agent.snapshot import ZabbixRaw

HA_SQL = """
SELECT ha_nodeid, name, address, port, lastaccess, status,
       extract(epoch FROM clock_timestamp())::float8 AS now
FROM ha_node ORDER BY name"""


def query_zabbix(conn: psycopg.Connection[Any], fallback_now: float) -> ZabbixRaw:
    cur = conn.execute(HA_SQL)
    names = [c.name for c in cur.description or ()]
    rows = [dict(zip(names, r, strict=True)) for r in cur.fetchall()]
    now = float(rows[0]["now"]) if rows else fallback_now
    return ZabbixRaw(nodes=tuple(rows), now=now)
