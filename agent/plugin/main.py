"""The ``kyoten-agent2-plugin`` executable: process concerns around one :class:`Session`.

Agent 2 execs ``<path> <socket> <true|false>`` and expects a connection within its
PluginTimeout. Once connected, this process must not die on its own: the agent treats any
plugin exit it did not ask for as fatal (6.0 stops, 7.0 panics). So SIGTERM and SIGINT,
which systemd and Ctrl-C send to the agent's whole process group, are ignored (as the Go
SDK does) and the process leaves only when the agent sends Terminate or closes the socket.

It leaves with ``os._exit``: right away, without waiting for export threads that may be
blocked on an unreachable target. Speed matters on 6.0.14, whose startup races its own
SIGCHLD handling against the registration run's exit and panics with "failed to obtain PID
of dead child process" when the plugin exits late: about every second start for a plugin
leaving through interpreter teardown (~3 ms), rarely for an immediate exit (~1 ms; see
``lab.REGISTRATION_RACE``).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sys
import time
from collections.abc import Callable, Sequence

from .session import TERMINATED, PluginSpec, Session

USAGE = (
    "usage: kyoten-agent2-plugin SOCKET true|false\n"
    "Started by zabbix_agent2 (Plugins.Kyoten.System.Path in its configuration, written by\n"
    "'kyoten export agent2-plugin'); not meant to be run by hand.\n"
)
#: How long to keep trying the agent's socket (the Go SDK's value).
CONNECT_WITHIN_S = 3.0


def connect(path: str, within_s: float = CONNECT_WITHIN_S) -> socket.socket:
    """Connect to the agent's plugin socket, retrying while it is not there yet."""
    give_up = time.monotonic() + within_s
    while True:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(path)
            return sock
        except OSError:
            sock.close()
            if time.monotonic() >= give_up:
                raise
            time.sleep(0.05)


def ignore_stop_signals() -> None:
    """Survive the agent's own shutdown signal until its Terminate frame arrives."""
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, signal.SIG_IGN)


def run(argv: Sequence[str], spec_factory: Callable[[], PluginSpec]) -> int:
    """Parse ``argv`` (without the program name), connect and serve; returns the exit code."""
    if len(argv) != 2 or argv[1] not in ("true", "false"):
        sys.stderr.write(USAGE)
        return 2
    ignore_stop_signals()
    try:
        sock = connect(argv[0])
    except OSError as exc:
        sys.stderr.write(f"kyoten-agent2-plugin: cannot connect to {argv[0]}: {exc}\n")
        return 1
    reason = Session(sock, spec_factory(), initial=argv[1] == "true").run()
    if reason != TERMINATED:  # 6.0 discards stderr; 7.0 logs it at trace level on exit
        sys.stderr.write(f"kyoten-agent2-plugin: {reason}\n")
    return 0


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point; never returns."""
    from .bindings import kyoten_spec

    code = 1
    try:
        code = run(list(sys.argv[1:] if argv is None else argv), kyoten_spec)
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(code)
