"""The two-site cluster of the design: site A primary, site B standby, one Pgpool per site."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kyoten.shell.lab.agent2 import ZABBIX_USER, trixie_agent2
from kyoten.shell.lab.config import ZabbixDb, lab_config, lab_secrets
from kyoten.shell.lab.pgpool import Pgpool
from kyoten.shell.lab.postgres import PgNode
from kyoten.shell.lab.procs import LabError, free_port, make_dir, write_file


@dataclass
class Cluster:
    """Site A primary + site B standby, and one standalone Pgpool per site in front of both."""

    primary: PgNode
    standby: PgNode
    pool_a: Pgpool
    pool_b: Pgpool
    stack: str = "bookworm"
    chroot: Path | None = None  # the trixie root the stack runs in
    # put first on PATH for the stack's own pcp tools (trixie: 4.6 in the root); None: the host's
    pcp_bin: Path | None = None

    def stop(self) -> None:
        for pool in (self.pool_b, self.pool_a):
            pool.stop()
        for node in (self.standby, self.primary):
            node.stop("immediate")
        if self.chroot is not None:  # the stack's real directory lives in the kept root
            shutil.rmtree(self.chroot / self.primary.datadir.parent.parent.relative_to("/"))

    def write_config(self, directory: Path, zabbix: ZabbixDb | None = None) -> Path:
        """kyoten.toml naming site-a, site-b, pool-a, pool-b, readable by the agent's account."""
        make_dir(directory, ZABBIX_USER, 0o755)
        for name, secret in lab_secrets(zabbix).items():
            write_file(directory / name, secret, ZABBIX_USER, 0o600)
        pools = [self.pool_a, self.pool_b]
        text = lab_config(self.primary, [self.standby], pools, zabbix, secrets=directory)
        return write_file(directory / "kyoten.toml", text, ZABBIX_USER, 0o640)

    def agent2_options(self) -> dict[str, Any]:
        """How this cluster's stack runs zabbix_agent2 (see :func:`stack_agent2`)."""
        return stack_agent2(self.stack, self.pcp_bin, self.chroot)


STACKS = ("bookworm", "trixie")
"""The real stacks: Debian 12's PostgreSQL 15 and Pgpool-II 4.3 on the host, and trixie's
PostgreSQL 17 and Pgpool-II 4.6 from the trixie root (:mod:`kyoten.shell.lab.stack17`)."""


def stack_agent2(stack: str, pcp_bin: Path | None, root: Path | None = None) -> dict[str, Any]:
    """How the stack runs zabbix_agent2, as keyword arguments of
    :class:`~kyoten.shell.lab.agent2.Agent2` (``command``, ``env``).

    bookworm: Debian 12's 6.0.14 and the host's pcp tools (4.3), Agent2's defaults. trixie:
    7.0 from the trixie root ``root`` (default: the cached one) with trixie's loader, asked the
    way a 7.0 server asks (with the item timeout), and with 4.6's pcp tools first on its PATH,
    which the collector it runs (UserParameters, the plugin) inherits: the wrappers in
    ``pcp_bin`` (``Cluster.pcp_bin``), written there by
    :func:`~kyoten.shell.lab.stack17.pcp_tools` if missing.
    """
    if stack not in STACKS:
        raise ValueError(f"unknown stack {stack!r}; stacks: {', '.join(STACKS)}")
    if stack == "bookworm":
        return {}
    from kyoten.shell.lab import stack17

    root = root or stack17.ensure_stack()
    command = trixie_agent2(str(root))
    if command is None:
        raise LabError(f"no zabbix_agent2 or loader in the trixie root {root}")
    if pcp_bin is None:  # else its collector would run the host's 4.3 tools against 4.6
        raise LabError("the trixie agent needs a directory for 4.6's pcp tools (pcp_bin)")
    if not all((pcp_bin / name).exists() for name in stack17.PCP_TOOLS):
        stack17.pcp_tools(root, pcp_bin)
    path = os.environ.get("PATH", os.defpath)
    env = {"PATH": f"{pcp_bin}{os.pathsep}{path}"}
    return {"command": command, "env": env, "json_checks": True}


def build_cluster(root: Path, slot: str = "site_b", stack: str = "bookworm") -> Cluster:
    """Create and start a two-site cluster under ``root`` (≈ 3 s here)."""
    if stack not in STACKS:
        raise ValueError(f"unknown stack {stack!r}; stacks: {', '.join(STACKS)}")
    chroot: Path | None = None
    extra: dict[str, Any] = {}
    pgpool: dict[str, Any] = {}
    if stack == "trixie":
        from kyoten.shell.lab import stack17

        chroot = stack17.ensure_stack()
        root = stack17.shared_dir(chroot, root / "trixie")
        extra = {"bindir": stack17.BINDIR, "root": chroot}
        pgpool = {"root": chroot, "exe": str(stack17.PGPOOL)}
    primary = PgNode("site-a", root / "pg" / "site-a", free_port(), **extra)
    standby = PgNode("site-b", root / "pg" / "site-b", free_port(), **extra)
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
            **pgpool,
        )
        for s in ("a", "b")
    ]
    for pool in pools:
        pool.start()
    pcp_bin = None
    if chroot is not None:
        from kyoten.shell.lab import stack17

        pcp_bin = stack17.pcp_tools(chroot, root / "pcp-bin")
    pool_a, pool_b = pools
    return Cluster(primary, standby, pool_a, pool_b, stack=stack, chroot=chroot, pcp_bin=pcp_bin)
