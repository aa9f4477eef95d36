"""Standalone Pgpool-II instances (the host's 4.3, or 4.6 from the trixie root) in
streaming-replication mode, one per site."""

from __future__ import annotations

import hashlib
import signal
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from kyoten.shell.lab.postgres import PG_USER, PgNode
from kyoten.shell.lab.procs import (
    LabError,
    make_dir,
    port_open,
    read_pid,
    spawn,
    stop_pid,
    wait_for,
    write_file,
)

PCP_USER = "pcpadmin"
PCP_PASSWORD = "pcpadmin"


@dataclass
class Pgpool:
    """One Pgpool-II in front of the given backends (node ids in list order)."""

    name: str
    workdir: Path
    port: int
    pcp_port: int
    backends: Sequence[PgNode]
    host: str = "127.0.0.1"
    num_init_children: int = 16
    site: str = ""
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    # run Pgpool-II from this root with chroot (trixie's 4.6); the host's otherwise (4.3)
    root: Path | None = None
    exe: str = "pgpool"

    def conninfo(self, dbname: str = "postgres") -> str:
        return f"host={self.host} port={self.port} dbname={dbname} user={PG_USER} connect_timeout=5"

    def sql(self, query: str) -> list[tuple[Any, ...]]:
        """Run one statement through Pgpool (simple protocol, as psql does)."""
        with psycopg.connect(self.conninfo(), autocommit=True) as conn:
            cur = psycopg.ClientCursor(conn)
            cur.execute(query)
            return cur.fetchall() if cur.description else []

    def node_status(self) -> list[str]:
        """Pgpool's own status per backend from SHOW POOL_NODES (column by name)."""
        with psycopg.connect(self.conninfo(), autocommit=True) as conn:
            cur = psycopg.ClientCursor(conn)
            cur.execute("SHOW POOL_NODES")
            names = [c.name for c in cur.description or ()]
            return [str(row[names.index("status")]) for row in cur.fetchall()]

    @property
    def pidfile(self) -> Path:
        return self.workdir / "pgpool.pid"

    @property
    def status_file(self) -> Path:
        """Where Pgpool keeps backend up/down across restarts (logdir/pgpool_status)."""
        return self.workdir / "pgpool_status"

    def config(self) -> str:
        d = self.workdir
        lines = [
            "# pgpool-II 4.3, standalone, written by kyoten.shell.lab",
            "backend_clustering_mode = 'streaming_replication'",
            f"listen_addresses = '{self.host}'",
            f"port = {self.port}",
            f"socket_dir = '{d}'",
            f"pcp_listen_addresses = '{self.host}'",
            f"pcp_port = {self.pcp_port}",
            f"pcp_socket_dir = '{d}'",
            f"wd_ipc_socket_dir = '{d}'",
            f"pid_file_name = '{self.pidfile}'",
            f"logdir = '{d}'",
            "log_destination = 'stderr'",
            f"num_init_children = {self.num_init_children}",
            "reserved_connections = 1",
            "max_pool = 2",
            "memqcache_total_size = 4MB",
            "memqcache_max_num_cache = 10000",
            "enable_pool_hba = off",
            "pool_passwd = ''",
            "load_balance_mode = off",
            "sr_check_period = 1",
            f"sr_check_user = '{PG_USER}'",
            "sr_check_password = ''",
            "sr_check_database = 'postgres'",
            "delay_threshold = 10000000",
            "health_check_period = 1",
            "health_check_timeout = 3",
            f"health_check_user = '{PG_USER}'",
            "health_check_password = ''",
            "health_check_database = 'postgres'",
            "health_check_max_retries = 0",
            "health_check_retry_delay = 1",
            "failover_command = ''",
            "failover_on_backend_error = on",
            "search_primary_node_timeout = 3",
            "use_watchdog = off",
        ]
        for i, b in enumerate(self.backends):
            lines += [
                f"backend_hostname{i} = '{b.host}'",
                f"backend_port{i} = {b.port}",
                f"backend_weight{i} = 1",
                f"backend_data_directory{i} = '{b.datadir}'",
                f"backend_flag{i} = 'ALLOW_TO_FAILOVER'",
                f"backend_application_name{i} = '{b.name}'",
            ]
        return "\n".join(lines) + "\n"

    def pcppass_line(self) -> str:
        """A .pcppass line (host:port:user:password) for this instance's PCP port."""
        return f"{self.host}:{self.pcp_port}:{PCP_USER}:{PCP_PASSWORD}\n"

    def start(self, discard_status: bool = True) -> None:
        """Start Pgpool; ``discard_status=False`` keeps backends it held down before (-D off)."""
        if read_pid(self.pidfile) is not None:
            return
        make_dir(self.workdir, PG_USER)
        write_file(self.workdir / "pgpool.conf", self.config(), PG_USER)
        md5 = hashlib.md5(PCP_PASSWORD.encode()).hexdigest()
        write_file(self.workdir / "pcp.conf", f"{PCP_USER}:{md5}\n", PG_USER)
        argv = [
            self.exe,
            "-n",
            "-f",
            str(self.workdir / "pgpool.conf"),
            "-F",
            str(self.workdir / "pcp.conf"),
        ]
        if discard_status:
            argv.insert(2, "-D")
        self.pidfile.unlink(missing_ok=True)
        if self.root is not None:
            argv = ["chroot", f"--userspec={PG_USER}:{PG_USER}", str(self.root), *argv]
        user = PG_USER if self.root is None else None
        self.proc = spawn(argv, user=user, log=self.workdir / "pgpool.log")
        try:
            wait_for(
                lambda: port_open(self.port) and port_open(self.pcp_port),
                f"pgpool {self.name} on :{self.port}/:{self.pcp_port}",
                timeout=30,
                proc=self.proc,
            )
            # right after start pgpool may still be probing the backends
            wait_for(lambda: self.node_status() != [], f"pgpool {self.name} to answer SQL")
        except LabError as exc:
            log = (self.workdir / "pgpool.log").read_text()[-1500:]
            raise LabError(f"{exc}; log tail:\n{log}") from exc

    def stop(self) -> None:
        """Fast shutdown (SIGINT), waiting for the children to go."""
        pid = read_pid(self.pidfile) or (self.proc.pid if self.proc else None)
        stop_pid(pid, f"pgpool {self.name}", signal.SIGINT)
        if self.proc is not None:
            self.proc.wait(timeout=10)
            self.proc = None

    def hold_down(self, node_ids: Sequence[int]) -> None:
        """Restart with the status file saying these backends are down (the drift case)."""
        self.stop()
        states = ["down" if i in node_ids else "up" for i in range(len(self.backends))]
        write_file(self.status_file, "\n".join(states) + "\n", PG_USER)
        self.start(discard_status=False)
