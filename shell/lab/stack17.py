"""The second real stack: PostgreSQL 17 and Pgpool-II 4.6 from the Debian trixie root.

Debian 12 ships PostgreSQL 15 and Pgpool-II 4.3; trixie ships 17 and 4.6. The trixie root the
Zabbix 7.0 lab already debootstraps (:mod:`kyoten.shell.lab.zabbix70`) gets both packages, and
the same :class:`~kyoten.shell.lab.postgres.PgNode` and :class:`~kyoten.shell.lab.pgpool.Pgpool`
run them with ``chroot`` (their ``root`` field). Nothing is mounted: a stack's directory is a
real directory inside the root and a symlink to it outside, at the same path, so every path in
a configuration file is valid on both sides; the root's ``postgres`` account gets the host's
ids, so host tools (the lab, the tests) read and write the same files. The servers listen on
127.0.0.1 like the bookworm stack's, so the collector cannot tell the two apart.
"""

from __future__ import annotations

import grp
import pwd
import shlex
from pathlib import Path

from kyoten.shell.lab.procs import LabError
from kyoten.shell.lab.zabbix70 import default_root, ensure_root, in_root

PACKAGES = ("postgresql-17", "pgpool2")
BINDIR = Path("/usr/lib/postgresql/17/bin")
"""PostgreSQL 17's programs, inside the root."""
PGPOOL = Path("/usr/sbin/pgpool")
"""Pgpool-II 4.6, inside the root."""
MARK = ".kyoten-stack17-ok"


def ensure_stack(root: Path | None = None) -> Path:
    """The trixie root with PostgreSQL 17 and Pgpool-II 4.6 installed (once; kept)."""
    root = root or default_root()
    ensure_root(root)
    if (root / MARK).exists() and (root / BINDIR.relative_to("/") / "postgres").exists():
        return root
    _host_ids_for_postgres(root)  # before the package makes the account with ids of its own
    in_root(root, "apt-get", "update", "-q")
    in_root(root, "apt-get", "install", "-y", "-q", "--no-install-recommends", *PACKAGES)
    in_root(root, "apt-get", "clean")
    (root / MARK).touch()
    return root


def _host_ids_for_postgres(root: Path) -> None:
    uid, gid = pwd.getpwnam("postgres").pw_uid, grp.getgrnam("postgres").gr_gid
    users = [line.split(":") for line in (root / "etc/passwd").read_text().splitlines()]
    groups = [line.split(":") for line in (root / "etc/group").read_text().splitlines()]
    mine = next((u for u in users if u[0] == "postgres"), None)
    if mine is not None:
        if (int(mine[2]), int(mine[3])) != (uid, gid):
            raise LabError(f"{root}: account postgres has ids {mine[2]}:{mine[3]}, not {uid}:{gid}")
        return
    if any(int(u[2]) == uid for u in users) or any(int(g[2]) == gid for g in groups):
        raise LabError(f"{root}: the host's postgres ids {uid}:{gid} are taken in the root")
    in_root(root, "groupadd", "--system", "--gid", str(gid), "postgres")
    in_root(
        root,
        *("useradd", "--system", "--uid", str(uid), "--gid", str(gid)),
        *("--home-dir", "/var/lib/postgresql", "--no-create-home", "--shell", "/bin/bash"),
        "postgres",
    )


def shared_dir(root: Path, path: Path) -> Path:
    """Make ``path`` one directory inside and outside ``root``: real inside, a symlink outside."""
    inner = root / path.relative_to("/")
    inner.mkdir(parents=True, exist_ok=True)
    inner.chmod(0o755)
    if path.is_symlink():
        path.unlink()
    elif path.exists():
        raise LabError(f"{path} exists and is not a symlink into {root}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.symlink_to(inner)
    return path


PCP_TOOLS = (
    "pcp_node_count",
    "pcp_node_info",
    "pcp_health_check_stats",
    "pcp_proc_count",
    "pcp_proc_info",
    "pcp_watchdog_info",
)


def loader(root: Path) -> tuple[str, ...]:
    """How to run a program of ``root`` from the host without ``chroot`` (so as any user, e.g.
    the agent's ``zabbix``): trixie's own loader, with trixie's libraries only. ``usr/lib`` is
    named because pgpool2 puts its ``libpcp.so.2`` there; left to the default search path, the
    loader would take the host's (4.3's) instead."""
    libs = ("usr/lib/x86_64-linux-gnu", "lib/x86_64-linux-gnu", "usr/lib")
    return (
        str(root / "usr/lib64/ld-linux-x86-64.so.2"),
        "--library-path",
        ":".join(str(root / d) for d in libs),
    )


def pcp_tools(root: Path, directory: Path) -> Path:
    """Wrappers in ``directory`` that run trixie's pcp tools (4.6) from ``root``.

    Put first on PATH, they stand in for the host's 4.3 tools, for root (the tests' own
    ``kyoten get``) and for ``zabbix`` alike (the collector in an agent's UserParameters or
    plugin), hence :func:`loader` and not ``chroot``, which only root may call. Nothing else
    is needed from the root: host names are addresses, and the password file kyoten hands
    over (``PCPPASSFILE``) is read where it is.
    """
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o755)
    for name in PCP_TOOLS:
        wrapper = directory / name
        wrapper.write_text(
            "#!/bin/sh\n"
            f"# trixie's {name}, run from {root} (kyoten.shell.lab.stack17)\n"
            f'exec {shlex.join([*loader(root), str(root / "usr/sbin" / name)])} "$@"\n'
        )
        wrapper.chmod(0o755)
    return directory
