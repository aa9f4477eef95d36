"""PostgreSQL 15 primary and streaming standbys made with initdb and pg_basebackup."""

from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from kyoten.shell.lab.procs import LabError, chown_to, make_dir, read_pid, run, wait_for, write_file

PG_USER = "postgres"
REPL_USER = "replicator"
REPL_PASSWORD = "replicator"
MONITOR_USER = "kyoten"


def pg_bindir() -> Path:
    """Debian's PostgreSQL 15 server binaries (override with KYOTEN_PGBIN)."""
    import os

    path = Path(os.environ.get("KYOTEN_PGBIN", "/usr/lib/postgresql/15/bin"))
    if not (path / "postgres").exists():
        raise LabError(f"no PostgreSQL server binaries in {path}: apt-get install postgresql-15")
    return path


@dataclass
class PgNode:
    """One PostgreSQL instance: its data directory, port and the name it streams under."""

    name: str
    datadir: Path
    port: int
    host: str = "127.0.0.1"
    bindir: Path = field(default_factory=pg_bindir)
    # run the programs (``bindir`` is then inside it) with chroot, e.g. trixie's PostgreSQL 17
    root: Path | None = None

    # ------------------------------------------------------------------ connection
    def conninfo(self, dbname: str = "postgres", user: str = PG_USER) -> str:
        """A libpq conninfo for the superuser (trust auth on loopback in the lab)."""
        return f"host={self.host} port={self.port} dbname={dbname} user={user} connect_timeout=5"

    def sql(
        self,
        query: str,
        params: tuple[Any, ...] = (),
        dbname: str = "postgres",
        autocommit: bool = True,
    ) -> list[tuple[Any, ...]]:
        """Run one statement and return its rows (empty for statements without results)."""
        with psycopg.connect(self.conninfo(dbname), autocommit=autocommit) as conn:
            cur = conn.execute(query.encode(), params)
            return cur.fetchall() if cur.description else []

    def value(self, query: str, params: tuple[Any, ...] = (), dbname: str = "postgres") -> Any:
        """The first column of the first row."""
        rows = self.sql(query, params, dbname)
        return rows[0][0] if rows else None

    # ------------------------------------------------------------------ lifecycle
    @property
    def log(self) -> Path:
        return self.datadir.parent / f"{self.name}.log"

    def tool(self, name: str, *args: str, timeout: float = 60) -> str:
        """Run one of the server's programs as the postgres account (inside ``root`` if set)."""
        exe = [str(self.bindir / name), *args]
        if self.root is None:
            return run(exe, user=PG_USER, timeout=timeout)
        chroot = ["chroot", f"--userspec={PG_USER}:{PG_USER}", str(self.root)]
        return run([*chroot, *exe], timeout=timeout)

    def pg_ctl(self, *args: str, timeout: float = 60) -> str:
        return self.tool("pg_ctl", "-D", str(self.datadir), *args, timeout=timeout)

    def running(self) -> bool:
        return read_pid(self.datadir / "postmaster.pid") is not None

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        if not self.running():
            self.pg_ctl("-l", str(self.log), "-w", "-t", "60", "start")
        wait_for(lambda: self.value("SELECT 1") == 1, f"{self.name} on :{self.port}")

    def stop(self, mode: str = "fast") -> None:
        if self.running():
            self.pg_ctl("-m", mode, "-w", "stop")

    def promote(self) -> None:
        """Promote a standby and wait until it accepts writes."""
        self.pg_ctl("-w", "promote")
        wait_for(
            lambda: self.value("SELECT pg_is_in_recovery()") is False,
            f"{self.name} to leave recovery",
        )

    def destroy(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.datadir, ignore_errors=True)

    # ------------------------------------------------------------------ creation
    def _write_conf(self, extra: str = "") -> None:
        sock = make_dir(self.datadir.parent / "sock", PG_USER, 0o755)
        write_file(
            self.datadir / "kyoten_lab.conf",
            (
                "# written by kyoten.shell.lab\n"
                f"listen_addresses = '{self.host}'\nport = {self.port}\n"
                f"unix_socket_directories = '{sock}'\ncluster_name = '{self.name}'\n"
                "wal_level = replica\nhot_standby = on\nmax_wal_senders = 40\n"
                "max_replication_slots = 40\nwal_keep_size = 64MB\nhot_standby_feedback = on\n"
                "max_connections = 300\nshared_buffers = 32MB\nfsync = off\n"
                "synchronous_commit = off\nfull_page_writes = off\n"
                "wal_receiver_status_interval = 1s\n"
                "log_line_prefix = '%m [%p] %q%a '\n" + extra
            ),
            PG_USER,
            0o600,
        )
        conf = self.datadir / "postgresql.conf"
        text = conf.read_text()
        if "include_if_exists = 'kyoten_lab.conf'" not in text:
            conf.write_text(text + "\ninclude_if_exists = 'kyoten_lab.conf'\n")

    def init_primary(self) -> None:
        """initdb a fresh primary (loopback trust auth) with a replication role."""
        make_dir(self.datadir.parent, PG_USER, 0o755)
        if self.datadir.exists():
            shutil.rmtree(self.datadir)
        make_dir(self.datadir, PG_USER)
        self.tool(
            "initdb",
            *("-D", str(self.datadir), "-U", PG_USER, "-A", "trust", "-E", "UTF8"),
            *("--locale=C", "--no-sync"),
            timeout=120,
        )
        self._write_conf()
        write_file(
            self.datadir / "pg_hba.conf",
            "local all all trust\nhost all all 127.0.0.1/32 trust\n"
            "host replication all 127.0.0.1/32 trust\n",
            PG_USER,
        )
        self.start()
        self.sql(f"CREATE ROLE {REPL_USER} LOGIN REPLICATION PASSWORD '{REPL_PASSWORD}'")
        # what an operator grants kyoten: pg_monitor, nothing more
        self.sql(f"CREATE ROLE {MONITOR_USER} LOGIN IN ROLE pg_monitor")

    def init_standby(self, primary: PgNode, slot: str | None = None) -> None:
        """pg_basebackup from ``primary`` and stream from it under application_name = name."""
        if (
            slot
            and primary.value("SELECT 1 FROM pg_replication_slots WHERE slot_name = %s", (slot,))
            is None
        ):
            primary.sql("SELECT pg_create_physical_replication_slot(%s)", (slot,))
        make_dir(self.datadir.parent, PG_USER, 0o755)
        if self.datadir.exists():
            shutil.rmtree(self.datadir)
        make_dir(self.datadir, PG_USER)
        self.tool(
            "pg_basebackup",
            *("-h", primary.host, "-p", str(primary.port), "-U", REPL_USER),
            *("-D", str(self.datadir), "-X", "stream", "-c", "fast", "--no-sync"),
            timeout=120,
        )
        self._write_conf()
        conninfo = (
            f"host={primary.host} port={primary.port} user={REPL_USER} "
            f"password={REPL_PASSWORD} application_name={self.name}"
        )
        auto = self.datadir / "postgresql.auto.conf"
        auto.write_text(
            auto.read_text()
            + f"primary_conninfo = '{conninfo}'\n"
            + (f"primary_slot_name = '{slot}'\n" if slot else "")
        )
        (self.datadir / "standby.signal").touch()
        chown_to(self.datadir / "standby.signal", PG_USER)
        self.start()
        wait_for(
            lambda: (
                primary.value(
                    "SELECT state FROM pg_stat_replication WHERE application_name = %s",
                    (self.name,),
                )
                == "streaming"
            ),
            f"{self.name} to stream from {primary.name}",
        )

    # ------------------------------------------------------------------ faults
    def set_primary_conninfo(self, conninfo: str) -> None:
        """Change primary_conninfo and reload: '' stops the WAL receiver of a running standby."""
        quoted = conninfo.replace("'", "''")
        self.sql(f"ALTER SYSTEM SET primary_conninfo = '{quoted}'")
        self.sql("SELECT pg_reload_conf()")

    def primary_conninfo(self) -> str:
        return str(self.value("SHOW primary_conninfo"))
