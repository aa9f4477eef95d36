"""The two-site cluster of the design: site A primary, site B standby, one Pgpool per site."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from kyoten.shell.lab.agent2 import ZABBIX_USER
from kyoten.shell.lab.config import ZabbixDb, lab_config
from kyoten.shell.lab.pgpool import Pgpool
from kyoten.shell.lab.postgres import PgNode
from kyoten.shell.lab.procs import free_port, make_dir, write_file


@dataclass
class Cluster:
    """Site A primary + site B standby, and one standalone Pgpool per site in front of both."""

    primary: PgNode
    standby: PgNode
    pool_a: Pgpool
    pool_b: Pgpool

    def stop(self) -> None:
        for pool in (self.pool_b, self.pool_a):
            pool.stop()
        for node in (self.standby, self.primary):
            node.stop("immediate")

    def write_config(self, directory: Path, zabbix: ZabbixDb | None = None) -> Path:
        """kyoten.toml naming site-a, site-b, pool-a, pool-b, readable by the agent's account."""
        make_dir(directory, ZABBIX_USER, 0o755)
        text = lab_config(self.primary, [self.standby], [self.pool_a, self.pool_b], zabbix)
        return write_file(directory / "kyoten.toml", text, ZABBIX_USER, 0o640)


def build_cluster(root: Path, slot: str = "site_b") -> Cluster:
    """Create and start a two-site cluster under ``root`` (≈ 3 s here)."""
    primary = PgNode("site-a", root / "pg" / "site-a", free_port())
    standby = PgNode("site-b", root / "pg" / "site-b", free_port())
    primary.init_primary()
    standby.init_standby(primary, slot=slot)
    pools = [
        Pgpool(
            f"pool-{s}",
            root / f"pgpool-{s}",
            free_port(),
            free_port(),
            [primary, standby],
            site=f"site-{s}",
        )
        for s in ("a", "b")
    ]
    for pool in pools:
        pool.start()
    return Cluster(primary, standby, *pools)
