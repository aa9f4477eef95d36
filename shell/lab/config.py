"""kyoten.toml for a lab: the two-site targets of a cluster, in the documented schema."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from kyoten.shell.lab.pgpool import PCP_PASSWORD, PCP_USER, Pgpool
from kyoten.shell.lab.postgres import MONITOR_USER, PgNode


@dataclass(frozen=True)
class ZabbixDb:
    """Where a Zabbix database lives (for the ha_node target)."""

    host: str
    port: int
    dbname: str
    user: str
    password: str


def lab_config(
    primary: PgNode,
    standbys: Sequence[PgNode],
    pools: Sequence[Pgpool],
    zabbix: ZabbixDb | None = None,
    deadline: float = 2.5,
    secrets: Path | None = None,
) -> str:
    """TOML naming PostgreSQL targets by node name, Pgpool targets by pool name.

    ``secrets``: a folder holding the files of :func:`lab_secrets`, named by ``*_file`` as
    README advises (a config with inline passwords is parsed on every ``kyoten get``, see
    ``agent/config_cache.py``); None: the passwords inline."""

    def secret(key: str, file: str, value: str) -> str:
        if secrets is None:
            return f'{key} = "{value}"'
        return f'{key}_file = "{secrets / file}"'

    out = [f"deadline = {deadline}", ""]
    for node in (primary, *standbys):
        out += [
            f"[postgres.{node.name}]",
            f'host = "{node.host}"',
            f"port = {node.port}",
            f'user = "{MONITOR_USER}"',
            f'site = "{node.name}"',
        ]
        if node is primary:
            names = ", ".join(f'"{s.name}"' for s in standbys)
            out.append(f"expected_standbys = [{names}]")
        out.append("")
    for pool in pools:
        out += [
            f"[pgpool.{pool.name}]",
            f'host = "{pool.host}"',
            f"port = {pool.port}",
            f'user = "{MONITOR_USER}"',
            f'site = "{pool.site or pool.name}"',
            f"pcp_port = {pool.pcp_port}",
            f'pcp_user = "{PCP_USER}"',
            secret("pcp_password", "pcp.password", PCP_PASSWORD),
            "backends = [" + ", ".join(f'"{b.name}"' for b in pool.backends) + "]",
            "",
        ]
    if zabbix is not None:
        out += [
            "[zabbix.zabbix]",
            f'host = "{zabbix.host}"',
            f"port = {zabbix.port}",
            f'dbname = "{zabbix.dbname}"',
            f'user = "{zabbix.user}"',
            secret("password", "zabbix.password", zabbix.password),
            "",
        ]
    return "\n".join(out)


def lab_secrets(zabbix: ZabbixDb | None = None) -> dict[str, str]:
    """The secret files :func:`lab_config` names with ``secrets``: file name -> content."""
    files = {"pcp.password": f"{PCP_PASSWORD}\n"}
    if zabbix is not None:
        files["zabbix.password"] = f"{zabbix.password}\n"
    return files
