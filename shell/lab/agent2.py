"""A real zabbix_agent2 on 127.0.0.1, for the tests, the benchmarks and ``kyoten demo``.

Debian's agent 2 runs as user ``zabbix``, in a session of its own, with every file it needs
(config, pid, log, both sockets) in one directory it owns. kyoten is added to it as
production does it, through config lines: UserParameters (``kyoten export userparameters``)
or the loadable plugin (``kyoten export agent2-plugin``), which the agent itself starts, so
what is measured or asserted is exactly what a production agent would do. The console
scripts of this environment must therefore be executable by ``zabbix``
(:func:`agent2_available` checks it).
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import pwd
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from kyoten.shell.lab.procs import LabError, chown_to, free_port, read_pid, stop_pid
from zabbix_utils.exceptions import ProcessingError

AGENT2 = "/usr/sbin/zabbix_agent2"
HOST = "127.0.0.1"
ZABBIX_USER = "zabbix"
AS_ZABBIX = ("setpriv", "--reuid=zabbix", "--regid=zabbix", "--init-groups", "--")


#: Debian's 6.0.14 panics with this when the registration run's exit (SIGCHLD) reaches the
#: agent after its main loop has started: two goroutines then race to reap the same child
#: (``listenOnPluginFail`` and ``checkExternalExits``), and the loser panics on ECHILD. The
#: plugin exits within about a millisecond of Terminate, which makes this rare (1 start in
#: 60 on an idle machine, about 1 in 15 while the test suite loads it), not impossible; a
#: plugin exiting through interpreter teardown (about 3 ms) lost every second start. The
#: panic exits with status 2, which Debian's unit (Restart=on-abnormal) does not restart.
REGISTRATION_RACE = "failed to obtain PID of dead child process"


class AgentLabError(LabError):
    """The agent did not start or stop as expected; the message quotes its log."""


@functools.cache
def agent2_available() -> bool:
    """Whether the real-agent tests can run here: root (to switch to zabbix), the agent
    binary, and an interpreter the zabbix account may execute (a virtualenv made from a
    Python under /root is not)."""
    try:
        pwd.getpwnam("zabbix")
    except KeyError:
        return False
    if os.geteuid() != 0 or not os.access(AGENT2, os.X_OK):
        return False
    probe = subprocess.run(
        [*AS_ZABBIX, sys.executable, "-c", "import kyoten.agent.plugin"],
        capture_output=True,
        timeout=30,
    )
    return probe.returncode == 0


def console_script(name: str) -> Path:
    """A console script of this environment (``kyoten``, ``kyoten-agent2-plugin``)."""
    return Path(sys.executable).with_name(name)


def trixie_agent2(root: str) -> tuple[str, ...] | None:
    """The command running Debian trixie's agent 2 (7.0) from an unpacked trixie tree
    ``root`` with trixie's own loader and libraries, or None when it is not there."""
    loader = Path(root, "usr/lib64/ld-linux-x86-64.so.2")
    binary = Path(root, "usr/sbin/zabbix_agent2")
    if not (loader.exists() and binary.exists()):
        return None
    libs = ":".join(
        str(Path(root, d)) for d in ("usr/lib/x86_64-linux-gnu", "lib/x86_64-linux-gnu")
    )
    return (str(loader), "--library-path", libs, str(binary))


def chown_to_zabbix(path: Path) -> None:
    """Hand ``path`` to the agent's account."""
    chown_to(path, ZABBIX_USER)


def make_root(prefix: str = "kyoten-agent2-") -> Path:
    """A fresh directory under /tmp the zabbix account owns (pytest's are 0700 root)."""
    root = Path(tempfile.mkdtemp(prefix=prefix))
    root.chmod(0o755)
    chown_to_zabbix(root)
    return root


def write_launcher(path: Path, body: str, extra_paths: Sequence[str] = ()) -> Path:
    """An executable script for this environment's interpreter; ``body`` is the code to run
    (it gets ``sys.argv`` from the agent), ``extra_paths`` go to the front of ``sys.path``."""
    lines = [
        f"#!{sys.executable}",
        "import sys",
        *[f"sys.path.insert(0, {p!r})" for p in extra_paths],
        body,
    ]
    path.write_text("\n".join(lines) + "\n")
    path.chmod(0o755)
    return path


@dataclass
class Agent2:
    """One agent 2 process. ``extra`` lines are appended to its config (plugin lines,
    UserParameters, Include)."""

    root: Path
    extra: list[str] = field(default_factory=list)
    timeout: int = 3
    plugin_timeout: int | None = None
    port: int = field(default_factory=free_port)
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None
    registration_races: int = 0
    #: How to run the agent: Debian's 6.0.14 by default; a trixie 7.0 agent is run through
    #: trixie's loader, see :func:`trixie_agent2`.
    command: tuple[str, ...] = (AGENT2,)
    hostname: str = "kyoten-lab"
    #: :meth:`get` asks in 7.0's JSON form with the item timeout :attr:`timeout`, as a 7.0
    #: server does; else in the plain form, the only one 6.0 knows (7.0 gives it 60 s).
    json_checks: bool = False

    @property
    def pidfile(self) -> Path:
        return self.root / "zabbix_agent2.pid"

    @property
    def log_path(self) -> Path:
        return self.root / "zabbix_agent2.log"

    @property
    def out_path(self) -> Path:
        return self.root / "zabbix_agent2.out"

    def conf_text(self) -> str:
        r = self.root
        lines = [
            "# kyoten plugin lab agent",
            f"PidFile={self.pidfile}",
            "LogType=file",
            f"LogFile={self.log_path}",
            "LogFileSize=0",
            "DebugLevel=3",
            f"Server={HOST}",
            f"ListenIP={HOST}",
            f"ListenPort={self.port}",
            f"Hostname={self.hostname}",
            f"ControlSocket={r}/agent.sock",
            f"PluginSocket={r}/agent.plugin.sock",
            f"Timeout={self.timeout}",
        ]
        if self.plugin_timeout is not None:
            lines.append(f"PluginTimeout={self.plugin_timeout}")
        return "\n".join([*lines, *self.extra]) + "\n"

    def start(self, within_s: float = 20, race_retries: int = 1) -> Agent2:
        """Start the agent; return once it answers ``agent.ping`` and the registration run
        of its plugins is over.

        6.0.14 has a start-up race of its own (see :data:`REGISTRATION_RACE`): a start lost
        to it is counted in :attr:`registration_races`, its logs are set aside, and the
        agent is started again, at most ``race_retries`` times.
        """
        self.root.mkdir(mode=0o755, parents=True, exist_ok=True)
        chown_to_zabbix(self.root)
        conf = self.root / "zabbix_agent2.conf"
        conf.write_text(self.conf_text())
        chown_to_zabbix(conf)
        with open(self.out_path, "ab") as out:
            self.proc = subprocess.Popen(
                [*AS_ZABBIX, *self.command, "-c", str(conf)],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                start_new_session=True,
                cwd="/",
                env={**os.environ, **self.env},
            )
        give_up = time.monotonic() + within_s
        settled = False
        while time.monotonic() < give_up:
            if self.proc.poll() is not None:
                text = self.log()
                if REGISTRATION_RACE in text and race_retries > 0:
                    self.registration_races += 1
                    for path in (self.log_path, self.out_path):
                        with contextlib.suppress(OSError):
                            path.rename(
                                path.with_name(f"{path.name}.race{self.registration_races}")
                            )
                    return self.start(within_s, race_retries - 1)
                raise AgentLabError(f"zabbix_agent2 exited at start: {self.tail()}")
            if settled:
                return self
            # ProcessingError: the agent hung up mid-answer (it died; the next round says why)
            with contextlib.suppress(OSError, ProcessingError):
                value, _ = self.get_plain("agent.ping", timeout=2)
                # Answering is not enough: the race is decided only once the registration
                # run has exited and been reaped (the operational run starts lazily later).
                settled = value == "1" and not self.children()
            time.sleep(0.05 if settled else 0.1)
        self.stop()
        raise AgentLabError(f"zabbix_agent2 did not answer within {within_s} s: {self.tail()}")

    def get(self, key: str, timeout: float = 10) -> tuple[str | None, str | None]:
        """One passive check the way zabbix_get does it, or a 7.0 server if
        :attr:`json_checks`: (value, error)."""
        if self.json_checks:
            return self.get_json(key, self.timeout)
        return self.get_plain(key, timeout)

    def get_plain(self, key: str, timeout: float = 10) -> tuple[str | None, str | None]:
        """One passive check in the plain form (zabbix_get's, 6.0's): (value, error)."""
        from zabbix_utils import Getter

        resp = Getter(host=HOST, port=self.port, timeout=timeout).get(key)
        value = None if resp.value is None else str(resp.value)
        error = None if resp.error is None else str(resp.error)
        return value, error

    def get_json(self, key: str, timeout_s: int) -> tuple[str | None, str | None]:
        """One passive check in 7.0's JSON form, which carries the item timeout (the plain
        form that Getter sends gets a fixed 60 s on 7.0)."""
        body = json.dumps(
            {"request": "passive checks", "data": [{"key": key, "timeout": timeout_s}]}
        ).encode()
        with socket.create_connection((HOST, self.port), timeout=timeout_s + 5) as conn:
            conn.sendall(struct.pack("<4sBII", b"ZBXD", 1, len(body), 0) + body)
            data = b""
            while chunk := conn.recv(65536):
                data += chunk
        if data[:4] != b"ZBXD" or data[4] & 0x06:
            raise AgentLabError(f"unexpected reply header {data[:13]!r}")
        (length,) = struct.unpack_from("<I", data, 5)
        item = json.loads(data[13 : 13 + length])["data"][0]
        return item.get("value"), item.get("error")

    def children(self) -> list[int]:
        """Pids of the agent's direct children (the operational plugin process)."""
        if self.proc is None:
            return []
        kids = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            with contextlib.suppress(OSError, ValueError, IndexError):
                fields = stat.read_text().rsplit(")", 1)[1].split()
                if int(fields[1]) == self.proc.pid:
                    kids.append(int(stat.parent.name))
        return kids

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, sig: int = signal.SIGTERM, within_s: float = 15) -> int | None:
        """Signal the agent's whole process group (as systemd and Ctrl-C do) and wait."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, sig)
            try:
                self.proc.wait(within_s)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        return self.proc.returncode

    def log(self) -> str:
        """The agent's log file and its stdout/stderr (where panics and 6.0's early plugin
        logs go)."""
        parts = []
        for path in (self.log_path, self.out_path):
            with contextlib.suppress(OSError):
                parts.append(path.read_text(errors="replace"))
        return "\n".join(parts)

    def tail(self, lines: int = 25) -> str:
        return "\n".join(self.log().splitlines()[-lines:])


def cleanup(root: Path) -> None:
    shutil.rmtree(root, ignore_errors=True)


def stop_agent_in(root: Path) -> None:
    """Stop the agent whose files live in ``root`` from another process (``kyoten demo down``):
    through its pid file, signalling its whole process group like systemd does."""
    stop_pid(read_pid(root / "zabbix_agent2.pid"), "zabbix_agent2", group=True)
