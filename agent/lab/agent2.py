"""zabbix_agent2 run by hand on loopback, with kyoten's UserParameters and config."""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from kyoten.agent.lab.procs import (
    LabError,
    make_dir,
    port_open,
    read_pid,
    spawn,
    stop_pid,
    wait_for,
    write_file,
)

ZABBIX_USER = "zabbix"
#: Debian's agent 2 6.0.14 sometimes panics at start when the plugin's registration run exits:
#: two goroutines race to reap the same child and the loser panics on ECHILD.
REGISTRATION_RACE = "failed to obtain PID of dead child process"


def agent2_binary() -> str:
    path = shutil.which("zabbix_agent2") or "/usr/sbin/zabbix_agent2"
    if not Path(path).exists():
        raise LabError("zabbix_agent2 not found: apt-get install zabbix-agent2")
    return path


@dataclass
class Agent2:
    """One agent 2 process; ``includes`` are drop-in files (name → text) for its Include dir."""

    workdir: Path
    port: int
    includes: dict[str, str] = field(default_factory=dict)
    hostname: str = "kyoten-lab"
    timeout: int = 4
    server: str = "127.0.0.1"
    server_active: str | None = None
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def pidfile(self) -> Path:
        return self.workdir / "zabbix_agent2.pid"

    @property
    def logfile(self) -> Path:
        return self.workdir / "zabbix_agent2.log"

    @property
    def plugin_socket(self) -> Path:
        return self.workdir / "agent.plugin.sock"

    def config(self) -> str:
        d = self.workdir
        lines = [
            "# zabbix_agent2, written by kyoten.agent.lab",
            f"PidFile={self.pidfile}",
            "LogType=file",
            f"LogFile={self.logfile}",
            "LogFileSize=0",
            "DebugLevel=3",
            f"Server={self.server}",
            "ListenIP=127.0.0.1",
            f"ListenPort={self.port}",
            f"Hostname={self.hostname}",
            f"Timeout={self.timeout}",
            f"ControlSocket={d / 'agent.sock'}",
            f"PluginSocket={self.plugin_socket}",
            f"Include={d / 'conf.d'}/*.conf",
        ]
        if self.server_active:
            lines.append(f"ServerActive={self.server_active}")
        return "\n".join(lines) + "\n"

    def start(self) -> None:
        """Write the config and drop-ins, start the agent, wait for its port."""
        if read_pid(self.pidfile) is not None:
            return
        make_dir(self.workdir, ZABBIX_USER, 0o755)
        confd = make_dir(self.workdir / "conf.d", ZABBIX_USER, 0o755)
        for old in confd.glob("*.conf"):
            old.unlink()
        for name, text in self.includes.items():
            write_file(confd / name, text, ZABBIX_USER, 0o640)
        write_file(self.workdir / "zabbix_agent2.conf", self.config(), ZABBIX_USER, 0o640)
        for attempt in range(3):
            out = self.workdir / "zabbix_agent2.out"
            out.unlink(missing_ok=True)
            self.pidfile.unlink(missing_ok=True)
            self.proc = spawn(
                [agent2_binary(), "-c", str(self.workdir / "zabbix_agent2.conf")],
                user=ZABBIX_USER,
                log=out,
            )
            try:
                wait_for(
                    lambda: port_open(self.port),
                    f"zabbix_agent2 on :{self.port}",
                    timeout=30,
                    proc=self.proc,
                )
                return
            except LabError as exc:
                tail = "".join(
                    f.read_text(errors="replace")[-1500:] for f in (self.logfile, out) if f.exists()
                )
                if REGISTRATION_RACE in tail and attempt < 2:
                    continue  # Debian 6.0.14's own race, not ours: start it again
                raise LabError(f"{exc}; output:\n{tail}") from exc

    def stop(self) -> None:
        pid = read_pid(self.pidfile) or (self.proc.pid if self.proc else None)
        stop_pid(pid, "zabbix_agent2")
        if self.proc is not None:
            self.proc.wait(timeout=10)
            self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()
