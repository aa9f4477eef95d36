"""``kyoten tower``: the emulator as a real process, driven by set/status/clear in-process."""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest
from kyoten.hardware import cli

EMULATOR = [sys.executable, "-m", "kyoten.hardware.cli", "emulate"]


class Emulator:
    """A running ``kyoten tower emulate`` whose stdout lines can be awaited (bounded)."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [*EMULATOR, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for text in self.proc.stdout:
            self.lines.put(text.strip())

    def line(self, timeout: float = 5.0) -> str:
        try:
            return self.lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"emulator printed nothing within {timeout}s") from None

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(5)
        finally:
            self.proc.kill()


@pytest.fixture
def pns_emulator() -> Iterator[tuple[Emulator, int]]:
    emu = Emulator("--protocol", "pns-nh", "--listen", "127.0.0.1:0")
    try:
        banner = emu.line()
        assert banner.startswith("kyoten tower emulator: pns-nh listening on 127.0.0.1:")
        port = int(banner.rpartition(":")[2])
        assert emu.line().endswith("red=off amber=off green=off blue=off white=off buzzer=0")
        yield emu, port
    finally:
        assert emu.stop() == 0


def test_set_status_clear_against_the_emulator_process(
    pns_emulator: tuple[Emulator, int], capsys: pytest.CaptureFixture[str]
) -> None:
    emu, port = pns_emulator
    url = f"pns://127.0.0.1:{port}"
    assert cli.main(["tower", "set", url, "--red", "blink", "--amber", "on", "--buzzer", "2"]) == 0
    assert emu.line().endswith("red=blink amber=on green=off blue=off white=off buzzer=2")
    assert cli.main(["tower", "status", url]) == 0
    assert (
        capsys.readouterr().out.strip()
        == "red=blink amber=on green=off blue=off white=off buzzer=2"
    )
    assert cli.main(["tower", "clear", url]) == 0
    assert emu.line().endswith("red=off amber=off green=off blue=off white=off buzzer=0")


def test_pty_emulator_prints_its_device_and_answers_on_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    emu = Emulator("--pty")
    try:
        banner = emu.line()
        path = banner.rpartition(" on ")[2]
        assert os.path.exists(path), banner
        emu.line()  # initial state
        assert cli.main(["tower", "set", f"serial://{path}", "--green", "on"]) == 0
        assert emu.line().endswith("red=off amber=off green=on blue=off white=off buzzer=0")
        assert cli.main(["tower", "status", f"serial://{path}"]) == 0
        assert "green=on" in capsys.readouterr().out
    finally:
        assert emu.stop() == 0


def test_http_emulator_serves_the_api_and_a_status_page() -> None:
    import urllib.request

    emu = Emulator("--protocol", "http", "--listen", "127.0.0.1:0")
    try:
        port = int(emu.line().rpartition(":")[2])
        emu.line()
        assert cli.main(["tower", "set", f"http://127.0.0.1:{port}/", "--white", "blink2"]) == 0
        assert emu.line().endswith("white=blink2 buzzer=0")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/state", timeout=5) as reply:
            assert b'"white": "blink2"' in reply.read()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as reply:
            assert b'class="lamp white blink2"' in reply.read()
    finally:
        assert emu.stop() == 0


def test_errors_name_the_tower_and_the_choices(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["tower", "status", "modbus://10.0.0.1"]) == 2
    assert "valid schemes: pns, phn" in capsys.readouterr().err
    started = time.monotonic()
    code = cli.main(["tower", "clear", "pns://127.0.0.1:9", "--timeout", "0.5", "--retries", "0"])
    assert code == 1 and time.monotonic() - started < 5
    assert capsys.readouterr().err.startswith("kyoten tower: pns://127.0.0.1:9: connect failed")
    with pytest.raises(SystemExit) as caught:
        cli.main(["tower", "set", "pns://h", "--red", "purple"])
    assert caught.value.code == 2
    assert "choose from 'off', 'on', 'blink', 'blink2'" in capsys.readouterr().err
    assert cli.main(["tower", "set", "phn://127.0.0.1:9", "--blue", "on"]) == 2
    assert "phn has no blue lamp; it has red, amber, green" in capsys.readouterr().err


def test_cli_retries_an_unreachable_tower_for_a_person_at_a_terminal(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Unlike the bridge (one attempt, its pipeline retries), ``kyoten tower`` tries 1 + 2 times
    by default before giving up."""
    accepted: list[socket.socket] = []
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]

        def hang_up() -> None:  # accept and close at once, like a tower half-way through booting
            server.settimeout(5)
            with contextlib.suppress(OSError):
                while len(accepted) < 4:
                    conn, _ = server.accept()
                    accepted.append(conn)
                    conn.close()

        threading.Thread(target=hang_up, daemon=True).start()
        assert cli.main(["tower", "status", f"pns://127.0.0.1:{port}", "--timeout", "0.5"]) == 1
    assert capsys.readouterr().err.startswith(f"kyoten tower: pns://127.0.0.1:{port}: connection")
    assert len(accepted) == 3


def test_status_page_next_to_a_pns_emulator() -> None:
    import urllib.request

    emu = Emulator("--protocol", "pns-la6", "--tiers", "red,amber,green",
                   "--listen", "127.0.0.1:0", "--web", "127.0.0.1:0")  # fmt: skip
    try:
        port = int(emu.line().rpartition(":")[2])
        page = emu.line().rpartition(" on ")[2]
        assert page.startswith("http://127.0.0.1:")
        emu.line()
        assert cli.main(["tower", "set", f"pns://127.0.0.1:{port}?model=la6&tiers=red,amber,green",
                         "--amber", "blink", "--buzzer", "3"]) == 0  # fmt: skip
        assert emu.line().endswith("amber=blink green=off blue=off white=off buzzer=3")
        with urllib.request.urlopen(page + "state", timeout=5) as reply:
            assert b'"amber": "blink"' in reply.read()
    finally:
        assert emu.stop() == 0
