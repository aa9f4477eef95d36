"""Zabbix HA state straight from the ``ha_node`` table (works with no active node at all)."""

from __future__ import annotations

from kyoten.agent.snapshot import ZabbixRaw

TYPE_CHECKING = False
if TYPE_CHECKING:
    from kyoten.agent.sources.session import Session

HA_SQL = """
SELECT ha_nodeid, name, address, port, lastaccess, status,
       extract(epoch FROM clock_timestamp())::float8 AS now
FROM ha_node ORDER BY name"""


def query_zabbix(session: Session, fallback_now: float) -> ZabbixRaw:
    """ha_node as text rows (shaping converts); the database's clock from the same pass."""
    rows = session.query(HA_SQL)  # often through Pgpool: no named statements there
    now = float(rows[0]["now"]) if rows else fallback_now
    return ZabbixRaw(nodes=rows, now=now)
