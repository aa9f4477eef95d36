"""The Debian package, built by packaging/build-deb.sh, installed with dpkg on this machine.

CI runs on a throw-away Debian 12 machine as root: the package is really installed, checked
where it landed (files, commands, the agent's user reading the config, units verified by
systemd), then purged, and the machine is checked to be as it was. The build takes about a
minute with a warm pip cache (the wheels of the dependencies come from PyPI).
"""

from __future__ import annotations

import grp
import json
import os
import pwd
import re
import shutil
import stat
import subprocess
import time
import tomllib
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from kyoten.shell.lab.procs import free_port

REPO = Path(__file__).resolve().parents[2]
VERSION = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
SNIPPETS = (
    "zabbix_agentd.d/kyoten.conf",
    "zabbix_agent2.d/kyoten.conf",
    "zabbix_agent2.d/plugins.d/kyoten.conf",
)
UNITS = ("kyoten-bridge.service", "kyoten-health@.service")

pytestmark = [
    pytest.mark.deb,
    pytest.mark.skipif(os.geteuid() != 0, reason="installs a package: needs root (CI runs so)"),
    pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="not a Debian system (no dpkg)"),
]


def run(
    *argv: str, timeout: float = 60, user: str | None = None
) -> subprocess.CompletedProcess[str]:
    cmd = ["runuser", "-u", user, "--", *argv] if user else list(argv)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def dpkg(*args: str) -> subprocess.CompletedProcess[str]:
    """dpkg, waiting (bounded) while apt or another dpkg holds the lock."""
    end = time.monotonic() + 120
    while True:
        proc = run("dpkg", *args, timeout=300)
        if "lock" not in proc.stderr or time.monotonic() > end:
            return proc
        time.sleep(2)


def installed() -> bool:
    proc = run("dpkg-query", "-W", "-f", "${db:Status-Status}", "kyoten")
    return proc.returncode == 0 and proc.stdout.strip() not in ("", "not-installed")


def account_exists() -> bool:
    try:
        pwd.getpwnam("kyoten")
        return True
    except KeyError:
        return False


@pytest.fixture(scope="module")
def deb(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("deb")
    start = time.monotonic()
    proc = subprocess.run(
        ["bash", str(REPO / "packaging" / "build-deb.sh"), str(out)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    path = Path(proc.stdout.strip().splitlines()[-1])
    print(
        f"built {path.name}: {path.stat().st_size / 1e6:.1f} MB in {time.monotonic() - start:.0f} s"
    )
    return path


@pytest.fixture(scope="module")
def package(deb: Path) -> Iterator[Path]:
    """The package installed; purged afterwards (and the account it created removed)."""
    if installed():
        pytest.skip("a kyoten package is already installed here; run `dpkg --purge kyoten` first")
    had_account = account_exists()
    proc = dpkg("-i", str(deb))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    yield deb
    if installed():
        dpkg("--purge", "kyoten")
    if not had_account and account_exists():
        run("userdel", "kyoten")
    if not had_account:
        with_group = run("getent", "group", "kyoten")
        if with_group.returncode == 0:
            run("groupdel", "kyoten")


def field(deb: Path, name: str) -> str:
    return run("dpkg-deb", "-f", str(deb), name).stdout.strip()


def test_package_metadata_and_contents(deb: Path) -> None:
    assert field(deb, "Package") == "kyoten"
    assert field(deb, "Version") == f"{VERSION}-1"
    assert field(deb, "Architecture") == run("dpkg", "--print-architecture").stdout.strip()
    assert "python3.11" in field(deb, "Depends")
    listing = run("dpkg-deb", "-c", str(deb)).stdout
    for path in (
        "./usr/bin/kyoten -> /opt/kyoten/venv/bin/kyoten",
        "./usr/bin/kyoten-agent2-plugin -> /opt/kyoten/venv/bin/kyoten-agent2-plugin",
        "./opt/kyoten/venv/bin/kyoten-get",
        *(f"./lib/systemd/system/{u}" for u in UNITS),
        "./usr/lib/sysusers.d/kyoten.conf",
        "./usr/lib/tmpfiles.d/kyoten.conf",
        "./usr/share/kyoten/udev/99-kyoten-patlite.rules",
        "./usr/share/kyoten/examples/kyoten.toml.example",
        "./usr/share/kyoten/examples/bridge.yaml.example",
        *(f"./usr/share/kyoten/zabbix/{s}" for s in SNIPPETS),
    ):
        assert path in listing, path
    # byte-code is shipped (a Zabbix poll starts a new `kyoten get`), no build tools are
    assert re.search(r"/kyoten/agent/__pycache__/collector\.cpython-311\.pyc", listing)
    assert "/site-packages/pip/" not in listing
    assert deb.stat().st_size < 30_000_000


def test_installed_commands_and_files(package: Path) -> None:
    assert os.readlink("/usr/bin/kyoten") == "/opt/kyoten/venv/bin/kyoten"
    assert run("/usr/bin/kyoten", "--version").stdout.strip() == f"kyoten {VERSION}"
    plugin = run("/usr/bin/kyoten-agent2-plugin")  # no socket given: prints its usage
    assert plugin.returncode != 0 and "usage: kyoten-agent2-plugin" in plugin.stderr
    for snippet in SNIPPETS:
        shipped = Path("/usr/share/kyoten/zabbix", snippet).read_text()
        assert shipped == (REPO / "packaging" / "zabbix" / snippet).read_text(), snippet
    # nothing the package installed was changed by installing or running it
    assert run("dpkg", "--verify", "kyoten").stdout == ""


def test_account_and_configuration(package: Path, tmp_path: Path) -> None:
    user = pwd.getpwnam("kyoten")
    assert user.pw_dir == "/var/lib/kyoten" and user.pw_shell == "/usr/sbin/nologin"
    kyoten_gid = grp.getgrnam("kyoten").gr_gid
    for path, mode, uid in (
        ("/etc/kyoten", 0o750, 0),
        ("/etc/kyoten/kyoten.toml", 0o640, 0),
        ("/etc/kyoten/bridge.yaml", 0o640, 0),
        ("/etc/kyoten/bridge.token", 0o640, 0),
        ("/var/lib/kyoten", 0o750, user.pw_uid),
    ):
        st = os.stat(path)
        assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (mode, uid, kyoten_gid), path
    assert re.fullmatch(r"[0-9a-f]{48}", Path("/etc/kyoten/bridge.token").read_text())
    check = run("/usr/bin/kyoten", "check-config", "--config", "/etc/kyoten/kyoten.toml")
    assert check.returncode == 0, check.stderr
    assert "pgpool   pool-b" in check.stdout and "site=site-b" in check.stdout
    # the example bridge config is valid once the secrets it names exist
    shutil.copy("/usr/share/kyoten/examples/bridge.yaml.example", tmp_path / "bridge.yaml")
    for name, secret in (
        ("bridge.token", "0123456789abcdef0123"),
        ("smtp.password", "pw"),
        ("slack.token", "xoxb-1"),
    ):
        (tmp_path / name).write_text(secret + "\n")
    bridge = run(
        "/usr/bin/kyoten", "bridge", "check-config", "--config", str(tmp_path / "bridge.yaml")
    )
    assert bridge.returncode == 0, bridge.stderr
    assert "outbox sqlite" in bridge.stdout


def test_agent_user_runs_the_userparameter_command(package: Path) -> None:
    """What the agent runs, as the agent's user: it can read /etc/kyoten through group kyoten."""
    try:
        pwd.getpwnam("zabbix")
    except KeyError:
        pytest.skip("no zabbix user on this machine (zabbix-agent2 not installed)")
    assert "kyoten" in run("id", "-nG", "zabbix").stdout.split()
    # A config beside the package's, readable the same way (root:kyoten 0640), whose target
    # is a closed port on loopback: the example's own hosts (10.x) must never be contacted.
    conf = Path("/etc/kyoten/test-get.toml")
    port = free_port()
    conf.write_text(f'[postgres.site-a]\nhost = "127.0.0.1"\nport = {port}\n')
    shutil.chown(conf, "root", "kyoten")
    conf.chmod(0o640)
    # the snippets run the lean launcher (python -IS, kyoten.agent.launcher), which answers as
    # `kyoten get` does; twice, as the second call reads the config the first one cached
    snippet = Path("/usr/share/kyoten/zabbix/zabbix_agent2.d/kyoten.conf").read_text()
    assert "UserParameter=kyoten.pg[*],/opt/kyoten/venv/bin/kyoten-get 'kyoten.pg[$1]'" in snippet
    launcher = Path("/opt/kyoten/venv/bin/kyoten-get")
    assert launcher.read_text().splitlines()[0] == "#!/opt/kyoten/venv/bin/python -IS"
    args = ("--config", str(conf), "kyoten.pg[site-a]")
    try:
        got = run("/usr/bin/kyoten", "get", *args, user="zabbix", timeout=20)
        lean = [run(str(launcher), *args, user="zabbix", timeout=20) for _ in range(2)]
    finally:
        conf.unlink()
    value = json.loads(got.stdout)
    # the target is not there: an error naming it, not a permission problem
    assert f"PostgreSQL site-a (127.0.0.1:{port})" in value["error"], value
    for out in lean:
        assert (out.stdout, out.stderr, out.returncode) == (got.stdout, "", got.returncode)


def test_services_run_as_kyoten_from_the_package(package: Path, tmp_path: Path) -> None:
    """The bridge and the health check start from the packaged venv as the kyoten account (what
    the units run); the bridge keeps its outbox in the state directory."""
    port = free_port()
    conf = Path("/etc/kyoten/test-bridge.yaml")
    conf.write_text(
        f"listen: {{host: 127.0.0.1, port: {port}}}\n"
        "token_file: bridge.token\n"
        "outbox: {backend: sqlite, path: /var/lib/kyoten/test-bridge.db}\n"
        "channels:\n"
        "  ops: {type: mail, host: 127.0.0.1, port: 1, security: none,\n"
        "        from: kyoten@example.com, to: [ops@example.com]}\n"
        "routes: [{channels: [ops]}]\n"
    )
    os.chown(conf, 0, grp.getgrnam("kyoten").gr_gid)
    conf.chmod(0o640)
    log = (tmp_path / "bridge.log").open("wb")
    bridge = subprocess.Popen(
        [
            "runuser",
            "-u",
            "kyoten",
            "--",
            "/usr/bin/kyoten",
            "bridge",
            "serve",
            "--config",
            str(conf),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        status = 0
        end = time.monotonic() + 20
        while time.monotonic() < end and bridge.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                    status = r.status
                    break
            except OSError:
                time.sleep(0.3)
        assert status == 200, (tmp_path / "bridge.log").read_text()
        db = os.stat("/var/lib/kyoten/test-bridge.db")
        assert db.st_uid == pwd.getpwnam("kyoten").pw_uid
    finally:
        bridge.terminate()
        bridge.wait(timeout=15)
        conf.unlink()
    # the health check: the example's hosts are not there, so it fails fast, naming them
    health = run(
        *("/usr/bin/kyoten", "health", "check", "--site", "site-a", "--check-timeout", "1"),
        user="kyoten",
        timeout=30,
    )
    assert health.returncode == 1, health.stderr
    assert health.stdout.startswith("FAIL site-a: zabbix_api: "), health.stdout


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze absent")
@pytest.mark.parametrize("unit", ["kyoten-bridge.service", "kyoten-health@site-a.service"])
def test_units_verify_and_are_hardened(package: Path, unit: str) -> None:
    verify = run("systemd-analyze", "verify", unit)
    ours = [line for line in (verify.stdout + verify.stderr).splitlines() if "kyoten" in line]
    assert verify.returncode == 0 and not ours, verify.stdout + verify.stderr
    security = run("systemd-analyze", "security", "--offline=yes", unit)
    level = re.search(rf"Overall exposure level for {re.escape(unit)}: ([0-9.]+)", security.stdout)
    assert level, security.stdout + security.stderr
    assert float(level.group(1)) <= 2.0, security.stdout


def test_reinstall_keeps_the_operators_configuration(package: Path) -> None:
    toml = Path("/etc/kyoten/kyoten.toml")
    toml.write_text(toml.read_text() + "\n# edited by the operator\n")
    token = Path("/etc/kyoten/bridge.token").read_text()
    Path("/etc/kyoten/bridge.yaml").unlink()  # deliberately removed: must stay removed
    proc = dpkg("-i", str(package))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert toml.read_text().endswith("# edited by the operator\n")
    assert Path("/etc/kyoten/bridge.token").read_text() == token
    assert not Path("/etc/kyoten/bridge.yaml").exists()
    assert run("/usr/bin/kyoten", "--version").returncode == 0


def test_purge_leaves_no_trace(package: Path) -> None:
    proc = dpkg("--purge", "kyoten")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert not installed()
    for path in (
        "/opt/kyoten",
        "/usr/bin/kyoten",
        "/etc/kyoten",
        "/var/lib/kyoten",
        "/etc/default/kyoten-health",
        "/lib/systemd/system/kyoten-bridge.service",
    ):
        assert not os.path.lexists(path), path
