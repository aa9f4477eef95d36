"""A real Zabbix 7.0 server and frontend/API, run from a debootstrapped Debian trixie root.

Debian 12 ships Zabbix 6.0 only; trixie ships 7.0. Rather than mixing suites on the host, a
minimal trixie is debootstrapped once into :func:`default_root` (``/var/cache/kyoten/trixie``,
kept between runs, so only the first run pays the ≈ 45 s install) and trixie's
``zabbix_server`` and PHP frontend are run from it with ``chroot``. Nothing is mounted into the
root: the server and ``php -S`` need no ``/proc``, and the run directory is made visible at the
same path inside and outside (a real directory inside the root, a symlink to it outside), so
every path in the configuration files is valid on both sides.

The database is an ordinary lab PostgreSQL node on the host (7.0 supports PostgreSQL 15), so no
second PostgreSQL is needed. The server runs standalone (no HA node name) and the frontend is
told where it is. Gotchas handled here: no maintainer script may start a daemon inside the root
(policy-rc.d), the stock host "Zabbix server" that polls 127.0.0.1:10050 is disabled when the
schema is loaded, and data.sql's own transaction lines are dropped so the load is one
transaction.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kyoten.shell.lab.procs import LabError, port_open, read_pid, run, spawn, stop_pid, wait_for
from kyoten.shell.lab.zabbix import (
    PHP_SETTINGS,
    ZabbixDb,
    api_url,
    frontend_conf,
    login,
    private_mount,
    schema_files,
    server_conf,
    wait_api,
)

SUITE = "trixie"
CHROOT_PACKAGES = (
    # php-cgi/php-cli first: php8.4 depends on "libapache2-mod-php | php-fpm | php-cgi", and with
    # php-cgi named apt does not pull in apache2
    "php-cgi",
    "php-cli",
    "zabbix-server-pgsql",
    "zabbix-frontend-php",
    "php-pgsql",
    "php-gd",
    "php-mbstring",
    "php-bcmath",
    "php-xml",
    "php-ldap",
    # agent 2 7.0, for the loadable-plugin tests (run from the host with the root's loader)
    "zabbix-agent2",
    # the frontend's default language en_US needs that locale, else every page carries the
    # banner 'Locale for language "en_US" is not found on the web server'
    "locales",
)
LOCALE = "en_US.UTF-8 UTF-8"
"""The locale the frontend needs (its default language), generated inside the root."""
CLEAN_ENV = ("/usr/bin/env", "-i", "PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8")
DEBOOTSTRAP_MARK = ".kyoten-debootstrap-ok"
READY_MARK = ".kyoten-zabbix70-ok"


def default_root() -> Path:
    """Where the trixie root is cached (``KYOTEN_TRIXIE_ROOT`` overrides)."""
    return Path(os.environ.get("KYOTEN_TRIXIE_ROOT", "/var/cache/kyoten/trixie"))


def host_mirror() -> str:
    """The Debian mirror the host uses (deb822 ``URIs:``), so the root installs from the same."""
    if env := os.environ.get("KYOTEN_DEBIAN_MIRROR"):
        return env.rstrip("/")
    sources = Path("/etc/apt/sources.list.d/debian.sources")
    with contextlib.suppress(OSError):
        for line in sources.read_text().splitlines():
            if line.startswith("URIs:") and "security" not in line:
                return line.split()[1].rstrip("/")
    return "http://deb.debian.org/debian"


def in_root(root: Path, *argv: str, timeout: float = 600) -> str:
    """Run a command inside the root with a clean environment (the host's locale stays out)."""
    return run(
        ["chroot", str(root), *CLEAN_ENV, "DEBIAN_FRONTEND=noninteractive", *argv], timeout=timeout
    )


def root_ids(root: Path, account: str) -> tuple[int, int]:
    """uid, gid of an account of the root (they may differ from the host's)."""
    for line in (root / "etc/passwd").read_text().splitlines():
        parts = line.split(":")
        if parts[0] == account:
            return int(parts[2]), int(parts[3])
    raise LabError(f"no account {account} in {root}/etc/passwd")


def ensure_root(root: Path | None = None) -> float:
    """Debootstrap trixie and install Zabbix 7.0 into ``root`` unless done; seconds spent.

    Each stage leaves a mark, so an interrupted run resumes where it stopped, and a finished
    root costs nothing.
    """
    root = root or default_root()
    ready = all((root / f"usr/sbin/{b}").exists() for b in ("zabbix_server", "zabbix_agent2"))
    if (root / READY_MARK).exists() and ready:
        return ensure_locale(root)
    if os.geteuid() != 0:
        raise LabError("building the Zabbix 7.0 root needs root (debootstrap, chroot)")
    start = time.monotonic()
    mirror = host_mirror()
    if not (root / DEBOOTSTRAP_MARK).exists():
        if root.exists():
            shutil.rmtree(root)  # an interrupted debootstrap of ours: start again
        root.mkdir(parents=True)
        run(
            [
                "debootstrap",
                "--variant=minbase",
                "--keyring=/usr/share/keyrings/debian-archive-keyring.gpg",
                SUITE,
                str(root),
                mirror,
            ],
            timeout=900,
        )
        (root / DEBOOTSTRAP_MARK).touch()
    # maintainer scripts must never start a daemon: the root shares the host's network
    policy = root / "usr/sbin/policy-rc.d"
    policy.write_text(
        "#!/bin/sh\n# kyoten.shell.lab.zabbix70: no services in this root\nexit 101\n"
    )
    policy.chmod(0o755)
    security = (
        mirror.replace("/debian", "/debian-security") if mirror.endswith("/debian") else mirror
    )
    (root / "etc/apt/sources.list.d/debian.sources").write_text(
        f"Types: deb\nURIs: {mirror}\nSuites: {SUITE} {SUITE}-updates\nComponents: main\n"
        "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\n"
        f"Types: deb\nURIs: {security}\nSuites: {SUITE}-security\nComponents: main\n"
        "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"
    )
    (root / "etc/apt/sources.list").write_text("")
    (root / "etc/apt/apt.conf.d/99kyoten").write_text(
        'APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\n'
    )
    with contextlib.suppress(OSError):
        shutil.copyfile("/etc/resolv.conf", root / "etc/resolv.conf")
    _align_zabbix_ids(root)
    in_root(root, "apt-get", "update", "-q")
    in_root(root, "apt-get", "upgrade", "-y", "-q")
    in_root(root, "apt-get", "install", "-y", "-q", "--no-install-recommends", *CHROOT_PACKAGES)
    ensure_locale(root)
    in_root(root, "apt-get", "clean")
    (root / READY_MARK).touch()
    return time.monotonic() - start


def ensure_locale(root: Path) -> float:
    """Generate :data:`LOCALE` in the root unless it is there; seconds spent.

    Also for a root built before the frontend's locale was part of it (the cached root is
    kept between runs): then the ``locales`` package is installed first.
    """
    archive = root / "usr/lib/locale/locale-archive"
    name = LOCALE.split()[0].lower().replace("-", "")  # en_us.utf8, as locale -a lists it
    if archive.exists() and name in in_root(root, "locale", "-a").lower().replace("-", ""):
        return 0.0
    start = time.monotonic()
    if not (root / "usr/sbin/locale-gen").exists():
        in_root(root, "apt-get", "update", "-q")
        in_root(root, "apt-get", "install", "-y", "-q", "--no-install-recommends", "locales")
    gen = root / "etc/locale.gen"
    lines = gen.read_text().splitlines() if gen.exists() else []
    if LOCALE not in lines:
        gen.write_text("\n".join([*lines, LOCALE]) + "\n")
    in_root(root, "locale-gen", timeout=300)
    return time.monotonic() - start


def _align_zabbix_ids(root: Path) -> None:
    """Give the root's zabbix account the host's ids, so host tools show its files as zabbix."""
    with contextlib.suppress(LabError):
        root_ids(root, "zabbix")
        return
    import grp
    import pwd

    try:
        uid, gid = pwd.getpwnam("zabbix").pw_uid, grp.getgrnam("zabbix").gr_gid
    except KeyError:
        return
    taken_u = any(
        line.split(":")[2] == str(uid) for line in (root / "etc/passwd").read_text().splitlines()
    )
    taken_g = any(
        line.split(":")[2] == str(gid) for line in (root / "etc/group").read_text().splitlines()
    )
    if taken_u or taken_g:
        return  # the package picks its own ids
    in_root(root, "groupadd", "--system", "--gid", str(gid), "zabbix")
    in_root(
        root,
        *("useradd", "--system", "--uid", str(uid), "--gid", str(gid)),
        *(
            "--home-dir",
            "/nonexistent",
            "--no-create-home",
            "--shell",
            "/usr/sbin/nologin",
            "zabbix",
        ),
    )


@dataclass
class Zabbix70:
    """trixie's Zabbix 7.0 server (standalone) and frontend on ``web_port``, DB on the host."""

    workdir: Path
    db: ZabbixDb
    port: int
    web_port: int
    root: Path = field(default_factory=default_root)
    cache_update_frequency: int = 2
    php: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    install_seconds: float = 0.0

    @property
    def inner(self) -> Path:
        """The real run directory inside the root (``workdir`` is a symlink to it)."""
        return self.root / self.workdir.relative_to("/")

    @property
    def conf(self) -> Path:
        return self.workdir / "zabbix_server.conf"

    @property
    def url(self) -> str:
        return api_url(self.web_port)

    def start(self) -> None:
        self.install_seconds = ensure_root(self.root)
        self.db.create(schema_files(self.root / "usr/share/zabbix-server-pgsql"))
        self._make_dirs()
        self._start_server()
        self._start_frontend()

    def _make_dirs(self) -> None:
        uid, gid = root_ids(self.root, "zabbix")
        for d in (self.inner, self.inner / "sock"):
            d.mkdir(parents=True, exist_ok=True)
            d.chmod(0o755)
            os.chown(d, uid, gid)
        (self.inner / "web").mkdir(exist_ok=True)
        (self.inner / "web").chmod(0o755)
        if self.workdir.is_symlink():
            self.workdir.unlink()
        elif self.workdir.exists():
            raise LabError(f"{self.workdir} exists and is not our symlink into {self.root}")
        self.workdir.parent.mkdir(parents=True, exist_ok=True)
        self.workdir.symlink_to(self.inner)

    def _start_server(self) -> None:
        uid, gid = root_ids(self.root, "zabbix")
        self.conf.write_text(
            server_conf(
                workdir=self.workdir,
                port=self.port,
                db=self.db,
                ha_node_name=None,
                cache_update_frequency=self.cache_update_frequency,
            )
        )
        os.chown(self.conf, uid, gid)
        self.conf.chmod(0o640)
        if read_pid(self.workdir / "zabbix_server.pid") is None:
            # root inside the root: it daemonizes and drops to the root's User=zabbix
            in_root(self.root, "/usr/sbin/zabbix_server", "-c", str(self.conf), timeout=30)
        log = self.workdir / "zabbix_server.log"
        try:
            wait_for(lambda: port_open(self.port), f"zabbix_server 7.0 on :{self.port}", timeout=60)
        except LabError as exc:
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise LabError(f"{exc}; log tail:\n{tail}") from exc

    def _frontend_config_path(self) -> Path:
        """Where trixie's frontend reads its config (Debian patches CConfigFile)."""
        php = self.root / "usr/share/zabbix/include/classes/core/CConfigFile.php"
        for line in php.read_text().splitlines():
            if "const CONFIG_FILE_PATH" in line:
                path = line.split("'")[1]
                return Path(path if path.startswith("/") else f"/usr/share/zabbix/{path}")
        raise LabError(f"no CONFIG_FILE_PATH in {php}")

    def _start_frontend(self) -> None:
        """trixie's ``php -S`` in the root, with our config bind-mounted over the path Debian's
        frontend reads, in a private mount namespace: the cached root stays untouched and
        several 7.0 labs can share it."""
        web = self.workdir / "web"
        conf = web / "zabbix.conf.php"
        conf.write_text(frontend_conf(self.db, ("127.0.0.1", self.port), "kyoten lab 7.0"))
        conf.chmod(0o644)
        target = self.root / self._frontend_config_path().relative_to("/")
        if target.is_symlink():
            target.unlink()  # left by an older lab that repointed the path
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            target.touch()  # the mount point
        if self.php is None:
            self.php = spawn(
                private_mount(
                    conf,
                    target,
                    [
                        *("chroot", "--userspec=www-data:www-data", str(self.root), *CLEAN_ENV),
                        *("PHP_CLI_SERVER_WORKERS=4", "php", *PHP_SETTINGS),
                        *("-S", f"127.0.0.1:{self.web_port}", "-t", "/usr/share/zabbix"),
                    ],
                ),
                user=None,
                log=web / "php.log",
            )
        version = wait_api(self.web_port)
        if not version.startswith("7.0."):
            raise LabError(f"the API on :{self.web_port} reports {version}, not 7.0.x")

    def api(self) -> Any:
        return login(self.web_port)

    def stop(self) -> None:
        if self.php is not None:
            stop_pid(self.php.pid, "php -S (7.0 frontend)", group=True)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.php.wait(timeout=5)
            self.php = None
        if self.workdir.exists():
            stop_pid(read_pid(self.workdir / "zabbix_server.pid"), "zabbix_server 7.0", timeout=60)
        if self.workdir.is_symlink():
            self.workdir.unlink()
        shutil.rmtree(self.inner, ignore_errors=True)
        # the empty parents we made inside the root's /tmp
        parent = self.inner.parent
        while parent != self.root and parent != self.root / "tmp":
            with contextlib.suppress(OSError):
                parent.rmdir()
            parent = parent.parent
