"""The top-level command line: version, help, and lazy dispatch."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from kyoten.agent import config_cache
from kyoten.agent.plugin import protocol as p
from kyoten.shell import cli

#: What the agent host's code paths (``kyoten get``, the agent 2 plugin) must never load:
#: the bridge, the tower drivers, the demo lab and their libraries.
FORBIDDEN = (
    "kyoten.alerting",
    "kyoten.hardware",
    "kyoten.shell.lab",
    "aiohttp",
    "slack_sdk",
    "serial",
    "aiosmtplib",
)
#: What ``kyoten get`` in particular leaves out, each for the CPU a poll would pay to import
#: it: the catalogue's declarations (it reads kyoten.agent.keytable), dataclasses (the config
#: and snapshots are named tuples), psycopg (libpq through ctypes), argparse (the agent's
#: forms of the command line are read without it) and orjson (the standard encoder).
GET_NEVER = ("kyoten.agent.catalogue", "dataclasses", "psycopg", "argparse", "orjson")
#: What the ``kyoten-get`` launcher (the packaged UserParameters' command) leaves out as well,
#: once kyoten.toml is cached: Python's site start-up (``python -IS``), and the modules the
#: collector no longer needs at run time (typing, re, json, tomllib, threading).
LAUNCHER_NEVER = ("site", "typing", "re", "json", "tomllib", "threading")
BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parents[1]


def test_version_matches_distribution(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"kyoten {cli.package_version()}"


def test_unknown_subcommand_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["frobnicate"])
    assert exc.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


# ----------------------------------------------------------------------------- lean imports

#: Installed in the child through PYTHONPATH: at exit (``os._exit`` included, which both
#: ``kyoten get`` and the plugin leave by) it writes every module in ``sys.modules``, however it
#: was imported (``import``, ``importlib.import_module``, ``__import__``).
PROBE = """
import atexit, os, sys

_path = os.environ.get("KYOTEN_TEST_MODULES")
if _path:
    _real_exit = os._exit

    def _dump():
        with open(_path, "w") as fh:
            fh.write("\\n".join(sorted(list(sys.modules))) + "\\n")

    def _exit(code):
        _dump()
        _real_exit(code)

    os._exit = _exit
    atexit.register(_dump)
"""


def closed_port() -> int:
    """A 127.0.0.1 port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def unreachable_config(tmp_path: Path) -> tuple[Path, int]:
    """kyoten.toml with one PostgreSQL target, site-a, on a closed 127.0.0.1 port."""
    port = closed_port()
    path = tmp_path / "kyoten.toml"
    path.write_text(
        "deadline = 2.5\nconnect_timeout = 2\n\n"
        "[postgres.site-a]\n"
        f'host = "127.0.0.1"\nport = {port}\ndbname = "postgres"\nuser = "kyoten"\n'
        'site = "site-a"\n'
    )
    return path, port


@pytest.fixture
def probe(tmp_path: Path) -> tuple[dict[str, str], Path]:
    """(environment for a child that reports its modules, where the report lands)."""
    where = tmp_path / "probe"
    where.mkdir()
    (where / "sitecustomize.py").write_text(PROBE)
    report = tmp_path / "modules.txt"
    path = os.pathsep.join(filter(None, [str(where), os.environ.get("PYTHONPATH")]))
    return {"PYTHONPATH": path, "KYOTEN_TEST_MODULES": str(report)}, report


def importtime_modules(importtime: str) -> set[str]:
    """Every module named in ``-X importtime`` output (imports by ``importlib.import_module``
    itself are not reported there, but everything they import in turn is)."""
    names = set()
    for line in importtime.splitlines():
        if line.startswith("import time:") and line.count("|") == 2:
            name = line.rsplit("|", 1)[1].strip()
            if name != "imported package":  # the header line
                names.add(name)
    return names


def loaded_modules(report: Path, importtime: str) -> set[str]:
    """What the child loaded: its ``sys.modules`` at exit and its import-time report."""
    assert report.exists(), "the child left without reporting its modules"
    return set(report.read_text().split()) | importtime_modules(importtime)


def forbidden_in(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if any(m == f or m.startswith(f + ".") for f in FORBIDDEN))


def assert_lean(modules: set[str], *must_have: str) -> None:
    # the report really covers the code path: the modules doing the work are in it
    missing = [m for m in must_have if m not in modules]
    assert not missing, f"{missing} not loaded; the code path did not run as expected"
    assert forbidden_in(modules) == []


@pytest.mark.parametrize("launch", ["console-script", "python-importtime"])
def test_get_runs_without_the_bridge_stack(
    launch: str, unreachable_config: tuple[Path, int], probe: tuple[dict[str, str], Path]
) -> None:
    """UserParameter mode pays Python start-up on every poll: ``kyoten get`` itself, run to
    its answer, loads nothing of the bridge, the towers or the lab."""
    config, port = unreachable_config
    extra, report = probe
    args = ["get", "kyoten.pg[site-a]", "--config", str(config)]
    if launch == "console-script":
        argv = [str(BIN / "kyoten"), *args]
    else:
        argv = [sys.executable, "-X", "importtime", "-m", "kyoten.shell.cli", *args]
    env = {**os.environ, **extra}
    out = subprocess.run(argv, capture_output=True, text=True, timeout=30, env=env)
    assert out.returncode == 1, out
    answer = json.loads(out.stdout)
    assert list(answer) == ["error"]
    assert answer["error"].startswith(f"PostgreSQL site-a (127.0.0.1:{port}): "), answer
    if launch == "console-script":
        assert out.stderr == "", "kyoten get wrote to stderr (the agent would store it)"
    else:
        assert "kyoten.agent.collector" in importtime_modules(out.stderr)
    modules = loaded_modules(report, out.stderr)
    assert_lean(
        modules, "kyoten.agent.commands", "kyoten.agent.sources.pq", "kyoten.agent.keytable"
    )
    assert (
        sorted(m for m in modules if any(m == n or m.startswith(n + ".") for n in GET_NEVER)) == []
    )


@pytest.fixture(scope="module")
def installed_launcher(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``bin/kyoten-get`` as the Debian package installs it: a venv whose site-packages holds
    kyoten under its import name (no editable-install hook), the launcher written by
    ``render_launcher`` as packaging/build-deb.sh writes it."""
    from kyoten.agent.export.userparameters import render_launcher

    venv = tmp_path_factory.mktemp("installed") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    version = f"python{sys.version_info[0]}.{sys.version_info[1]}"
    package = venv.parent / "package"
    package.mkdir()
    for part in ("agent", "common"):  # what kyoten get may import
        (package / part).symlink_to(REPO / part)
    (venv / "lib" / version / "site-packages" / "kyoten").symlink_to(package)
    launcher = venv / "bin" / "kyoten-get"
    launcher.write_text(render_launcher(str(venv / "bin" / "python")))
    launcher.chmod(0o755)
    return launcher


def test_the_launcher_answers_as_kyoten_get_without_site_and_heavy_modules(
    installed_launcher: Path, unreachable_config: tuple[Path, int], tmp_path: Path
) -> None:
    """``kyoten-get`` (what the packaged UserParameters run, ``python -IS``) prints what
    ``kyoten get`` prints, and once kyoten.toml is cached, a call loads no site, typing, re,
    json, tomllib or threading."""
    config, port = unreachable_config
    env = {**os.environ, "KYOTEN_CACHE_DIR": str(tmp_path / "cache")}
    args = ["--config", str(config), "kyoten.pg[site-a]"]

    def run(argv: list[str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(argv, capture_output=True, text=True, timeout=30, env=env)

    shebang = installed_launcher.read_text().splitlines()[0].removeprefix("#!").split()
    assert shebang[1:] == ["-IS"]
    # a config written moments ago is not cached yet (config_cache.SETTLED_NS): let it settle
    settled = config.stat().st_ctime_ns + config_cache.SETTLED_NS + 100_000_000
    time.sleep(max(0.0, (settled - time.time_ns()) / 1e9))
    runs = []
    for _ in range(2):  # the first call parses kyoten.toml, the second reuses the checked one
        runs.append(run([*shebang, "-X", "importtime", str(installed_launcher), *args]))
    expected = run([str(BIN / "kyoten"), "get", *args])
    assert expected.returncode == 1
    assert json.loads(expected.stdout)["error"].startswith(
        f"PostgreSQL site-a (127.0.0.1:{port}): "
    )
    for out in runs:
        assert (out.stdout, out.returncode) == (expected.stdout, 1)
    loaded = [importtime_modules(out.stderr) for out in runs]
    assert "tomllib" in loaded[0]  # the path really parsed, then used the cache
    modules = loaded[1]
    assert_lean(
        modules,
        "kyoten.agent.commands",
        "kyoten.agent.config_cache",
        "kyoten.agent.sources.pq",
        "kyoten.agent.keytable",
    )
    never = (*GET_NEVER, *LAUNCHER_NEVER)
    assert sorted(m for m in modules if any(m == n or m.startswith(n + ".") for n in never)) == []
    # as the agent runs it: through its #! line, nothing on stderr
    direct = run([str(installed_launcher), *args])
    assert (direct.stdout, direct.stderr, direct.returncode) == (expected.stdout, "", 1)


def test_the_launcher_falls_back_to_site_in_an_editable_install(
    tmp_path: Path, unreachable_config: tuple[Path, int]
) -> None:
    """Where kyoten is not in the interpreter's site-packages (this development venv's
    editable install), the launcher runs site after all and answers the same."""
    from kyoten.agent.export.userparameters import render_launcher

    config, _ = unreachable_config
    launcher = tmp_path / "kyoten-get"
    launcher.write_text(render_launcher(sys.executable))
    launcher.chmod(0o755)
    args = ["--config", str(config), "kyoten.pg[site-a]"]
    mine = subprocess.run([str(launcher), *args], capture_output=True, text=True, timeout=30)
    theirs = subprocess.run(
        [str(BIN / "kyoten"), "get", *args], capture_output=True, text=True, timeout=30
    )
    assert (mine.stdout, mine.stderr, mine.returncode) == (theirs.stdout, "", 1)


# ----------------------------------------------------------------------------- the plugin


def frames(conn: socket.socket, until_type: int) -> Iterator[dict[str, object]]:
    """Frames from the plugin up to and including the first of type ``until_type``."""
    decoder = p.FrameDecoder()
    conn.settimeout(15)
    while True:
        data = conn.recv(1 << 16)
        assert data, "the plugin closed the connection"
        for body in decoder.feed(data):
            frame = json.loads(body)
            yield frame
            if frame["type"] == until_type:
                return


def reply(conn: socket.socket, until_type: int) -> dict[str, object]:
    *_, last = frames(conn, until_type)
    return last


@pytest.mark.parametrize("run", ["registration", "operational"])
def test_agent2_plugin_runs_without_the_bridge_stack(
    run: str,
    tmp_path: Path,
    unreachable_config: tuple[Path, int],
    probe: tuple[dict[str, str], Path],
) -> None:
    """The plugin process, started as the agent starts it and taken through the registration
    handshake or an export, loads nothing of the bridge, the towers or the lab."""
    config, port = unreachable_config
    extra, report = probe
    path = str(tmp_path / "agent.plugin.sock")
    env = {**os.environ, **extra, "PYTHONPROFILEIMPORTTIME": "1", "KYOTEN_CONFIG": str(config)}
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as srv:
        srv.bind(path)
        srv.listen(1)
        srv.settimeout(15)
        proc = subprocess.Popen(
            [str(BIN / "kyoten-agent2-plugin"), path, "true" if run == "registration" else "false"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        try:
            conn, _ = srv.accept()
            with conn:
                if run == "registration":
                    conn.sendall(p.request_frame({"id": 1, "type": 2, "version": "6.0.13"}))
                    registered = reply(conn, p.MessageType.REGISTER_RESPONSE)
                    assert registered["name"] == "Kyoten"
                    assert "kyoten.pg" in registered["metrics"]  # type: ignore[operator]
                    conn.sendall(p.request_frame({"id": 2, "type": 9, "private_options": None}))
                    assert reply(conn, p.MessageType.VALIDATE_RESPONSE) == {"id": 2, "type": 10}
                    must_have = "kyoten.agent.catalogue"
                else:
                    conn.sendall(
                        p.request_frame(
                            {
                                "id": 1,
                                "type": 8,
                                "global_options": {"Timeout": 3, "SourceIP": ""},
                                "private_options": None,
                            }
                        )
                    )
                    conn.sendall(
                        p.request_frame(
                            {"id": 2, "type": 6, "key": "kyoten.pg", "parameters": ["site-a"]}
                        )
                    )
                    answer = reply(conn, p.MessageType.EXPORT_RESPONSE)
                    assert answer["id"] == 2 and "value" not in answer, answer
                    assert str(answer["error"]).startswith(
                        f"PostgreSQL site-a (127.0.0.1:{port}): "
                    ), answer
                    must_have = "kyoten.agent.collector"
                conn.sendall(p.request_frame({"id": 0, "type": 5}))
                assert proc.wait(15) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert proc.stderr is not None
    importtime = proc.stderr.read()
    proc.stderr.close()
    modules = loaded_modules(report, importtime)
    if run == "registration":
        # the handshake answers from the catalogue alone; the collector's driver stays out
        assert "psycopg" not in modules
        assert_lean(modules, "kyoten.agent.plugin.session", must_have)
    else:
        assert_lean(modules, "kyoten.agent.plugin.session", must_have, "psycopg")
