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
    "pcp_watchdog_info",
)


def pcp_tools(root: Path, directory: Path) -> Path:
    """Wrappers in ``directory`` that run trixie's pcp tools (4.6) inside ``root``.

    Put first on PATH (as root: chroot), they stand in for the host's 4.3 tools. The password
    file kyoten hands over (``PCPPASSFILE``, in the host's /tmp) is copied into the root's /tmp
    for the call and removed after it.
    """
    directory.mkdir(parents=True, exist_ok=True)
    for name in PCP_TOOLS:
        wrapper = directory / name
        wrapper.write_text(
            "#!/bin/sh\n"
            f"# trixie's {name}, run inside {root} (kyoten.shell.lab.stack17)\n"
            'if [ -n "$PCPPASSFILE" ]; then\n'
            f'  f=$(mktemp -p "{root}/tmp" kyoten-pcppass.XXXXXX) || exit 1\n'
            "  trap 'rm -f \"$f\"' EXIT\n"
            '  cat "$PCPPASSFILE" > "$f"\n'
            '  PCPPASSFILE="/tmp/${f##*/}"; export PCPPASSFILE\n'
            "fi\n"
            f'chroot {root} /usr/sbin/{name} "$@"\n'
        )
        wrapper.chmod(0o755)
    return directory
