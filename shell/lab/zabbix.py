"""A real Zabbix 6.0 server (native HA node) and frontend/API on loopback, from Debian's packages.

The database lives on a lab PostgreSQL node (normally the cluster's primary, as in the
cross-site design); the schema comes from ``/usr/share/zabbix-server-pgsql``. The frontend is
``php -S`` over ``/usr/share/zabbix``: Debian patches it to read ``/etc/zabbix/zabbix.conf.php``,
so PHP runs in a private mount namespace with our file bind-mounted over that path (any number
of lab frontends can run side by side). The server runs as a named HA node, so the frontend finds
it through ``ha_node`` exactly as in production.

The pieces that do not depend on the Zabbix version (database load, configuration texts,
waiting for the API) are shared with :mod:`kyoten.shell.lab.zabbix70`.
"""

from __future__ import annotations

import contextlib
import gzip
import subprocess
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kyoten.shell.lab.postgres import PG_USER, PgNode
from kyoten.shell.lab.procs import (
    LabError,
    free_port,
    make_dir,
    port_open,
    read_pid,
    run,
    spawn,
    stop_pid,
    wait_for,
    write_file,
)

ZBX_USER = "zabbix"
WEB_USER = "www-data"
ADMIN_USER = "Admin"
ADMIN_PASSWORD = "zabbix"  # the stock account of data.sql; the lab never changes it
DEBIAN_SQL = Path("/usr/share/zabbix-server-pgsql")
DEBIAN_FRONTEND = Path("/usr/share/zabbix")
FRONTEND_CONFIG = Path("/etc/zabbix/zabbix.conf.php")

_TRANSACTION_LINES = {b"START TRANSACTION;\n", b"BEGIN;\n", b"COMMIT;\n"}


def zabbix_port() -> int:
    """A free port Zabbix accepts (its daemons refuse ListenPort above 32767)."""
    return free_port()


# ---------------------------------------------------------------------------------- database
def schema_files(sql_dir: Path) -> list[Path]:
    """Debian's three schema files, in load order."""
    files = [sql_dir / f"{name}.sql.gz" for name in ("schema", "images", "data")]
    missing = [str(f) for f in files if not f.exists()]
    if missing:
        raise LabError(
            f"missing Zabbix schema files {missing}: apt-get install zabbix-server-pgsql"
        )
    return files


def _schema_stream(files: Iterable[Path]) -> Iterator[bytes]:
    """The files' SQL, without their own transaction lines (we load in one transaction)."""
    for path in files:
        with gzip.open(path, "rb") as fh:
            for line in fh:
                if line not in _TRANSACTION_LINES:
                    yield line
    # the stock host "Zabbix server" polls an agent on 127.0.0.1:10050: not ours, keep quiet
    yield b"UPDATE hosts SET status = 1 WHERE host = 'Zabbix server' AND status = 0;\n"


@dataclass(frozen=True)
class ZabbixDb:
    """The Zabbix database on a lab PostgreSQL node (trust auth on loopback)."""

    node: PgNode
    name: str = "zabbix"
    user: str = "zabbix"
    password: str = "zabbix"

    def loaded(self) -> bool:
        exists = self.node.value("SELECT 1 FROM pg_database WHERE datname = %s", (self.name,))
        return bool(
            exists
            and self.node.value(
                "SELECT 1 FROM pg_tables WHERE schemaname = 'public' AND tablename = 'dbversion'",
                dbname=self.name,
            )
        )

    def create(self, files: Sequence[Path]) -> float:
        """Create role and database and load ``files`` in one transaction; seconds taken.

        One transaction, so an interrupted load leaves an empty database that the next run
        simply loads again. Skipped when the schema is there already.
        """
        if self.loaded():
            return 0.0
        start = time.monotonic()
        if self.node.value("SELECT 1 FROM pg_roles WHERE rolname = %s", (self.user,)) is None:
            self.node.sql(f"CREATE ROLE {self.user} LOGIN PASSWORD '{self.password}'")
        if self.node.value("SELECT 1 FROM pg_database WHERE datname = %s", (self.name,)) is None:
            self.node.sql(
                f"CREATE DATABASE {self.name} OWNER {self.user} ENCODING 'UTF8' TEMPLATE template0"
            )
        argv = [
            str(self.node.bindir / "psql"),
            "-X",
            "-q",
            "-1",
            "-v",
            "ON_ERROR_STOP=1",
            "-o",
            "/dev/null",
            "-h",
            self.node.host,
            "-p",
            str(self.node.port),
            "-U",
            self.user,
            "-d",
            self.name,
        ]
        with subprocess.Popen(
            argv, stdin=subprocess.PIPE, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL
        ) as proc:
            assert proc.stdin is not None and proc.stderr is not None
            try:
                for chunk in _schema_stream(files):
                    proc.stdin.write(chunk)
                proc.stdin.close()
            except BrokenPipeError:
                pass
            err = proc.stderr.read().decode(errors="replace")
            if proc.wait(timeout=300) != 0:
                raise LabError(f"loading the Zabbix schema into {self.name} failed: {err[-1500:]}")
        self.analyze()
        return time.monotonic() - start

    def analyze(self) -> None:
        """Refresh the planner's statistics. Right after a bulk load (or a large template
        import) they are missing, and the frontend's trigger-dependency query in host.create
        then takes over a minute instead of a fraction of a second, until autovacuum runs."""
        self.node.sql("ANALYZE", dbname=self.name)

    def ha_nodes(self) -> list[tuple[str, int]]:
        """(name, status) of every row in ha_node: 0 standby, 1 stopped, 2 unavailable, 3 active."""
        rows = self.node.sql("SELECT name, status FROM ha_node ORDER BY name", dbname=self.name)
        return [(str(r[0]), int(r[1])) for r in rows]


# ---------------------------------------------------------------------------------- configs
def server_conf(
    *,
    workdir: Path,
    port: int,
    db: ZabbixDb,
    ha_node_name: str | None,
    cache_update_frequency: int,
) -> str:
    """zabbix_server.conf for a small loopback lab server.

    ``CacheUpdateFrequency`` is short so that items created by an import or by tests are polled
    within seconds (``-R config_cache_reload`` forces it at once); Timeout is long enough for a
    UserParameter that starts Python.
    """
    lines = [
        "# written by kyoten.shell.lab",
        "ListenIP=127.0.0.1",
        f"ListenPort={port}",
        "SourceIP=127.0.0.1",
        f"PidFile={workdir / 'zabbix_server.pid'}",
        "LogType=file",
        f"LogFile={workdir / 'zabbix_server.log'}",
        "LogFileSize=0",
        f"SocketDir={workdir / 'sock'}",
        f"DBHost={db.node.host}",
        f"DBPort={db.node.port}",
        f"DBName={db.name}",
        f"DBUser={db.user}",
        f"DBPassword={db.password}",
        f"NodeAddress=127.0.0.1:{port}",
        f"User={ZBX_USER}",
        "Timeout=10",
        f"CacheUpdateFrequency={cache_update_frequency}",
        "StatsAllowedIP=127.0.0.1",
        "StartPollers=2",
        "StartPollersUnreachable=1",
        "StartTrappers=2",
        "StartPingers=1",
        "StartDiscoverers=1",
        "StartHTTPPollers=1",
        "StartPreprocessors=2",
        "StartAlerters=1",
        "StartDBSyncers=2",
        "StartLLDProcessors=1",
        "StartHistoryPollers=1",
        "CacheSize=32M",
        "HousekeepingFrequency=0",
    ]
    if ha_node_name:
        lines.append(f"HANodeName={ha_node_name}")
    return "\n".join(lines) + "\n"


def _php(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def frontend_conf(db: ZabbixDb, server: tuple[str, int] | None, title: str) -> str:
    """zabbix.conf.php; its existence skips the setup wizard.

    ``server`` None leaves ``$ZBX_SERVER`` unset: an HA frontend finds the active node in
    ``ha_node`` by itself.
    """
    fields: list[tuple[str, str]] = [
        ("TYPE", _php("POSTGRESQL")),
        ("SERVER", _php(db.node.host)),
        ("PORT", _php(str(db.node.port))),
        ("DATABASE", _php(db.name)),
        ("USER", _php(db.user)),
        ("PASSWORD", _php(db.password)),
        ("SCHEMA", "''"),
        ("ENCRYPTION", "false"),
        ("KEY_FILE", "''"),
        ("CERT_FILE", "''"),
        ("CA_FILE", "''"),
        ("VERIFY_HOST", "false"),
        ("CIPHER_LIST", "''"),
        ("VAULT", "''"),
        ("VAULT_URL", "''"),
        ("VAULT_PREFIX", "''"),
        ("VAULT_DB_PATH", "''"),
        ("VAULT_TOKEN", "''"),
        ("VAULT_CERT_FILE", "''"),
        ("VAULT_KEY_FILE", "''"),
        ("VAULT_CACHE", "false"),
        ("DOUBLE_IEEE754", "true"),
    ]
    lines = ["<?php", "// written by kyoten.shell.lab", "global $DB;"]
    lines += [f"$DB['{k}'] = {v};" for k, v in fields]
    if server:
        lines += [
            f"$ZBX_SERVER = {_php(server[0])};",
            f"$ZBX_SERVER_PORT = {_php(str(server[1]))};",
        ]
    lines += [f"$ZBX_SERVER_NAME = {_php(title)};", "$IMAGE_FORMAT_DEFAULT = IMAGE_FORMAT_PNG;"]
    return "\n".join(lines) + "\n"


PHP_SETTINGS = (
    "-d",
    "memory_limit=256M",
    "-d",
    "post_max_size=16M",
    "-d",
    "upload_max_filesize=2M",
    "-d",
    "max_execution_time=300",
    "-d",
    "max_input_time=300",
    "-d",
    "date.timezone=UTC",
    "-d",
    "display_errors=stderr",
)


def api_url(port: int) -> str:
    return f"http://127.0.0.1:{port}/api_jsonrpc.php"


def wait_api(port: int, timeout: float = 60) -> str:
    """Wait until ``apiinfo.version`` answers; returns the version."""
    from zabbix_utils import ZabbixAPI

    found: list[str] = []

    def answers() -> bool:
        found.append(str(ZabbixAPI(url=api_url(port), timeout=5).api_version()))
        return True

    wait_for(answers, f"the Zabbix API on :{port}", timeout=timeout, interval=0.5)
    return found[-1]


def login(port: int) -> Any:
    """A ``zabbix_utils.ZabbixAPI`` logged in as the stock super admin."""
    from zabbix_utils import ZabbixAPI

    return ZabbixAPI(url=api_url(port), user=ADMIN_USER, password=ADMIN_PASSWORD, timeout=60)


def operator(api: Any, username: str, usergroup: str, groupid: str) -> str:
    """A NOC operator as Slack clicks need one: a plain *User role* user (no admin rights of
    any kind) in ``usergroup``, read-write on the host group ``groupid``, made if missing;
    its userid. What a real installation would map Slack users to."""
    import secrets

    rights = [{"permission": 3, "id": groupid}]
    found = api.usergroup.get(filter={"name": usergroup}, output=["usrgrpid"])
    if found:
        ugid = found[0]["usrgrpid"]
        api.usergroup.update(usrgrpid=ugid, rights=rights)
    else:
        ugid = api.usergroup.create(name=usergroup, rights=rights)["usrgrpids"][0]
    users = api.user.get(filter={"username": username}, output=["userid"])
    if users:
        return str(users[0]["userid"])
    created = api.user.create(
        username=username,
        name="NOC",
        surname="operator",
        passwd=secrets.token_urlsafe(18),
        roleid="1",  # "User role"
        usrgrps=[{"usrgrpid": ugid}],
    )
    return str(created["userids"][0])


def api_token(api: Any, userid: str, name: str) -> str:
    """A fresh API token named ``name`` for ``userid`` (an older one of that name is deleted:
    Zabbix shows a token only when it is generated)."""
    for old in api.token.get(filter={"name": name, "userid": userid}, output=["tokenid"]):
        api.token.delete([old["tokenid"]])
    tokenid = api.token.create(name=name, userid=userid)["tokenids"][0]
    (generated,) = api.token.generate([tokenid])
    return str(generated["token"])


def private_mount(source: Path, target: Path, argv: Sequence[str]) -> list[str]:
    """``argv`` run in a mount namespace of its own where ``source`` is bind-mounted over
    ``target``: the process sees our file or directory, the rest of the machine does not."""
    return [
        *("unshare", "--mount", "--propagation", "private", "sh", "-c"),
        'mount --bind "$0" "$1" && shift && exec "$@"',
        *(str(source), str(target), *argv),
    ]


def serve_frontend(
    conf_dir: Path, port: int, log: Path, workers: int = 4
) -> subprocess.Popen[bytes]:
    """Debian's 6.0 frontend under ``php -S`` on 127.0.0.1:``port``, reading
    ``conf_dir/zabbix.conf.php``.

    Debian's frontend reads the fixed path /etc/zabbix/zabbix.conf.php (nothing else under
    /etc/zabbix). Instead of repointing that path for the whole machine, which would break
    any other frontend on it (a parallel test run, ``kyoten demo``), PHP runs where
    ``conf_dir`` is bind-mounted over /etc/zabbix. php -S forks its workers into its own
    process group: stop it with ``stop_pid(proc.pid, ..., group=True)``.
    """
    FRONTEND_CONFIG.parent.mkdir(parents=True, exist_ok=True)  # the mount point
    php = [
        *("setpriv", f"--reuid={WEB_USER}", f"--regid={WEB_USER}", "--init-groups", "--"),
        *("php", *PHP_SETTINGS, "-S", f"127.0.0.1:{port}", "-t", str(DEBIAN_FRONTEND)),
    ]
    return spawn(
        private_mount(conf_dir, FRONTEND_CONFIG.parent, php),
        user=None,
        log=log,
        env={"PHP_CLI_SERVER_WORKERS": str(workers)},
    )


# ---------------------------------------------------------------------------------- 6.0
@dataclass
class Zabbix60:
    """Debian's Zabbix 6.0 server as HA node ``ha_node_name`` plus its frontend on ``web_port``."""

    workdir: Path
    db: ZabbixDb
    port: int
    web_port: int
    ha_node_name: str = "site-a"
    cache_update_frequency: int = 2
    php: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def conf(self) -> Path:
        return self.workdir / "zabbix_server.conf"

    @property
    def log(self) -> Path:
        return self.workdir / "zabbix_server.log"

    @property
    def url(self) -> str:
        return api_url(self.web_port)

    def start(self) -> None:
        """Load the schema if needed, start server and frontend, wait for both."""
        self.db.create(schema_files(DEBIAN_SQL))
        self.start_server()
        self.start_frontend()

    def write_config(self) -> None:
        """The server's directory and zabbix_server.conf, owned by the zabbix account."""
        make_dir(self.workdir, ZBX_USER, 0o755)
        make_dir(self.workdir / "sock", ZBX_USER, 0o755)
        write_file(
            self.conf,
            server_conf(
                workdir=self.workdir,
                port=self.port,
                db=self.db,
                ha_node_name=self.ha_node_name,
                cache_update_frequency=self.cache_update_frequency,
            ),
            ZBX_USER,
            0o640,
        )

    def start_server(self) -> None:
        self.write_config()
        if read_pid(self.workdir / "zabbix_server.pid") is None:
            # started as root it daemonizes and drops to User=zabbix
            run(["zabbix_server", "-c", str(self.conf)], timeout=30)
        try:
            wait_for(lambda: port_open(self.port), f"zabbix_server on :{self.port}", timeout=60)
        except LabError as exc:
            tail = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise LabError(f"{exc}; log tail:\n{tail}") from exc

    def start_frontend(self) -> None:
        """``php -S`` over Debian's frontend, reading our config (see :func:`serve_frontend`)."""
        web = make_dir(self.workdir / "web", "root", 0o755)
        write_file(
            web / "zabbix.conf.php", frontend_conf(self.db, None, "kyoten lab 6.0"), "root", 0o644
        )
        if self.php is None:
            self.php = serve_frontend(web, self.web_port, web / "php.log")
        wait_api(self.web_port)

    def api(self) -> Any:
        return login(self.web_port)

    def reload_config(self) -> None:
        """Make the server read new hosts/items now instead of at the next cache update."""
        run(["zabbix_server", "-c", str(self.conf), "-R", "config_cache_reload"], timeout=30)

    def stop(self) -> None:
        if self.php is not None:
            stop_pid(self.php.pid, "php -S (6.0 frontend)", group=True)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.php.wait(timeout=5)
            self.php = None
        stop_pid(read_pid(self.workdir / "zabbix_server.pid"), "zabbix_server 6.0", timeout=60)


__all__ = [
    "ADMIN_PASSWORD",
    "ADMIN_USER",
    "PG_USER",
    "Zabbix60",
    "ZabbixDb",
    "api_url",
    "frontend_conf",
    "login",
    "private_mount",
    "schema_files",
    "serve_frontend",
    "server_conf",
    "wait_api",
    "zabbix_port",
]
