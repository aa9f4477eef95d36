"""Process plumbing shared by the lab components: run as an account, wait for ports, stop."""

from __future__ import annotations

import contextlib
import os
import pwd
import random
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path


class LabError(RuntimeError):
    """A lab component failed to start or stop; the message names it and where to look."""


def is_root() -> bool:
    """Whether we may (and must) switch accounts for daemons that refuse root."""
    return os.geteuid() == 0


def as_user(user: str, argv: Sequence[str]) -> list[str]:
    """Prefix ``argv`` so it runs as ``user`` when we are root (setpriv execs: no wrapper pid)."""
    if not is_root():
        return list(argv)
    return ["setpriv", f"--reuid={user}", f"--regid={user}", "--init-groups", "--", *argv]


def chown_to(path: Path, user: str) -> None:
    """Give ``path`` to ``user`` (when root) so the daemon running as that user can write it."""
    if is_root():
        pw = pwd.getpwnam(user)
        os.chown(path, pw.pw_uid, pw.pw_gid)


def make_dir(path: Path, user: str, mode: int = 0o700) -> Path:
    """Create a directory owned by ``user``; daemons like PostgreSQL insist on 0700 data dirs."""
    path.mkdir(parents=True, exist_ok=True)
    path.chmod(mode)
    chown_to(path, user)
    return path


def write_file(path: Path, text: str, user: str, mode: int = 0o600) -> Path:
    """Write a config file readable by the daemon's account and nobody else."""
    path.write_text(text)
    path.chmod(mode)
    chown_to(path, user)
    return path


def run(
    argv: Sequence[str],
    *,
    user: str | None = None,
    timeout: float = 60,
    env: dict[str, str] | None = None,
) -> str:
    """Run a command to completion; a failure raises LabError with its output."""
    cmd = as_user(user, argv) if user else list(argv)
    try:
        proc = subprocess.run(
            cmd,
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, **(env or {})},
            cwd="/",
        )
    except subprocess.TimeoutExpired as exc:
        raise LabError(f"{argv[0]} did not finish within {timeout:.0f} s") from exc
    if proc.returncode != 0:
        raise LabError(
            f"{' '.join(argv[:3])} failed ({proc.returncode}): "
            f"{(proc.stderr or proc.stdout).strip()[-2000:]}"
        )
    return proc.stdout


def spawn(
    argv: Sequence[str], *, user: str | None, log: Path, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Start a foreground daemon detached in its own session, output appended to ``log``."""
    cmd = as_user(user, argv) if user else list(argv)
    with open(log, "ab") as out:
        return subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            start_new_session=True,
            cwd="/",
            env={**os.environ, **(env or {})},
        )


def free_port(low: int = 20000, high: int = 32000) -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now.

    Chosen below the kernel's ephemeral range (32768+), where outgoing connections would
    otherwise collide with it, and inside zabbix_agent2's ListenPort range (1024-32767).
    """
    for _ in range(200):
        port = random.randint(low, high)
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise LabError(f"no free TCP port in {low}-{high}")


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    """Whether something accepts TCP connections on host:port."""
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
        return True
    return False


def wait_for(
    check: object,
    what: str,
    timeout: float = 30,
    interval: float = 0.1,
    proc: subprocess.Popen[bytes] | None = None,
) -> None:
    """Poll ``check()`` until it is truthy, or raise LabError naming ``what``.

    With ``proc``, give up at once if that process has exited (a daemon that rejected its
    config should not cost the whole timeout).
    """
    assert callable(check)
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc is not None and proc.poll() is not None:
            raise LabError(f"{what}: the process exited with status {proc.returncode}")
        with contextlib.suppress(Exception):
            if check():
                return
        time.sleep(interval)
    raise LabError(f"timed out after {timeout:.0f} s waiting for {what}")


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists (zombies of our own children count as gone)."""
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False


def read_pid(path: Path) -> int | None:
    """The pid in a pid file (first line), if the file exists and the process is alive."""
    try:
        # Pgpool-II ends its pid file with a NUL byte
        pid = int(path.read_text().replace("\0", " ").split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return pid if pid_alive(pid) else None


def stop_pid(
    pid: int | None, name: str, sig: int = signal.SIGTERM, timeout: float = 30, group: bool = False
) -> None:
    """Signal a daemon, wait for it, SIGKILL it (and its session) if it will not go."""
    if pid is None or not pid_alive(pid):
        return
    with contextlib.suppress(ProcessLookupError):
        if group:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if not pid_alive(pid):
            return
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        time.sleep(0.05)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(os.getpgid(pid), signal.SIGKILL)
    raise LabError(f"{name} (pid {pid}) ignored signal {sig} for {timeout:.0f} s; killed")
