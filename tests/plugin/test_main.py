"""The executable as the agent starts it: argv, signals, exit codes (no agent involved)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from kyoten.agent.plugin import protocol as p
from kyoten.shell.lab.agent2 import console_script

PLUGIN = console_script("kyoten-agent2-plugin")


def recv_frame(conn: socket.socket) -> dict[str, object]:
    decoder = p.FrameDecoder()
    conn.settimeout(10)
    while True:
        data = conn.recv(1 << 16)
        assert data, "the plugin closed the connection"
        for body in decoder.feed(data):
            frame = json.loads(body)
            if frame["type"] != p.MessageType.LOG:
                return dict(frame)


@pytest.fixture
def listener(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    path = str(tmp_path / "agent.plugin.sock")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(1)
    srv.settimeout(10)
    yield srv, path
    srv.close()


def test_wrong_arguments_print_usage_and_exit_2() -> None:
    out = subprocess.run([str(PLUGIN)], capture_output=True, text=True, timeout=30)
    assert out.returncode == 2 and "usage: kyoten-agent2-plugin SOCKET true|false" in out.stderr
    out = subprocess.run([str(PLUGIN), "/x", "maybe"], capture_output=True, text=True, timeout=30)
    assert out.returncode == 2


def test_no_agent_socket_is_exit_1_after_retrying(tmp_path: Path) -> None:
    t0 = time.monotonic()
    out = subprocess.run(
        [str(PLUGIN), str(tmp_path / "none.sock"), "false"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode == 1 and "cannot connect" in out.stderr
    assert time.monotonic() - t0 >= 2.9, "gave up before the SDK's 3 s of retries"


def test_stop_signals_are_ignored_until_terminate(listener: tuple[socket.socket, str]) -> None:
    """systemd and Ctrl-C signal the agent's whole process group; dying on it would make the
    agent's own shutdown fail ("failed to send stop request ... broken pipe")."""
    srv, path = listener
    proc = subprocess.Popen([str(PLUGIN), path, "false"])
    try:
        conn, _ = srv.accept()
        for sig in (signal.SIGTERM, signal.SIGINT):
            os.kill(proc.pid, sig)
        time.sleep(0.3)
        assert proc.poll() is None, "a stop signal killed the plugin"
        conn.sendall(p.request_frame({"id": 3, "type": 6, "key": "kyoten.nope"}))
        reply = recv_frame(conn)
        assert reply["id"] == 3 and "error" in reply
        conn.sendall(p.request_frame({"id": 0, "type": 5}))
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_registration_run_exits_at_once_on_terminate(listener: tuple[socket.socket, str]) -> None:
    srv, path = listener
    proc = subprocess.Popen([str(PLUGIN), path, "true"])
    try:
        conn, _ = srv.accept()
        conn.sendall(p.request_frame({"id": 1, "type": 2, "version": "6.0.13"}))
        reply = recv_frame(conn)
        assert reply["name"] == "Kyoten" and reply["interfaces"] == 3
        conn.sendall(p.request_frame({"id": 2, "type": 9, "private_options": None}))
        assert recv_frame(conn) == {"id": 2, "type": 10}
        conn.sendall(p.request_frame({"id": 0, "type": 5}))
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_the_agent_vanishing_ends_the_plugin(listener: tuple[socket.socket, str]) -> None:
    srv, path = listener
    proc = subprocess.Popen([sys.executable, str(PLUGIN), path, "false"])
    try:
        conn, _ = srv.accept()
        conn.close()
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
