"""kyoten.toml: the targets item keys may name, with connection details kept out of keys.

Item keys carry only a target's name (``kyoten.pg[site-a]``); host, port, user and secrets
live here, so they never reach Zabbix, its database or its logs. The file is declared with the
shared validator (:mod:`kyoten.common.schema`, the same mechanism as the bridge's
``bridge.yaml``) in :mod:`kyoten.agent.config_schema`: every field is read and checked, then
every problem is reported together with the field's path and the fix, rather than stopping at
the first. That module and ``tomllib`` are imported only to parse: ``kyoten get`` mostly reuses
a checked config (:mod:`kyoten.agent.config_cache`).

The loaded config is a tree of named tuples, not dataclasses: ``kyoten get`` reads it in a new
process on every poll, where importing ``dataclasses`` and building these classes (and the
snapshots') with it took about a fifth of the call's CPU.
"""

from __future__ import annotations

import os

from kyoten.agent.errors import ConfigError
from kyoten.agent.keytable import DEADLINE
from kyoten.agent.records import NamedTuple

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

DEFAULT_PATH = "/etc/kyoten/kyoten.toml"
ENV_VAR = "KYOTEN_CONFIG"


def _repr_without_password(obj: Endpoint | PcpSettings) -> str:
    shown = (f"{k}={v!r}" for k, v in zip(obj._fields, obj, strict=True) if k != "password")
    return f"{type(obj).__name__}({', '.join(shown)})"


class Endpoint(NamedTuple):
    """How to reach one PostgreSQL-protocol server (PostgreSQL itself or Pgpool-II)."""

    host: str
    port: int
    dbname: str
    user: str
    password: str | None = None  # never in repr()
    passfile: str | None = None
    sslmode: str | None = None

    def __repr__(self) -> str:
        return _repr_without_password(self)

    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def conninfo_kwargs(self) -> dict[str, str]:
        """Keyword arguments for psycopg.connect; the password never leaves this object."""
        kw = {"host": self.host, "port": str(self.port), "dbname": self.dbname, "user": self.user}
        if self.password is not None:
            kw["password"] = self.password
        if self.passfile:
            kw["passfile"] = self.passfile
        if self.sslmode:
            kw["sslmode"] = self.sslmode
        return kw


class PgTarget(NamedTuple):
    name: str
    site: str
    endpoint: Endpoint
    expected_standbys: tuple[str, ...] = ()


class PcpSettings(NamedTuple):
    port: int
    user: str
    password: str | None = None  # never in repr()
    pcppass: str | None = None

    def __repr__(self) -> str:
        return _repr_without_password(self)


class PgpoolTarget(NamedTuple):
    name: str
    site: str
    endpoint: Endpoint
    pcp: PcpSettings | None
    watchdog: bool = False
    # PostgreSQL target names in Pgpool's node order (backend_hostname0, 1, ...): with them
    # the agent 2 plugin makes the live checks itself instead of SHOW POOL_NODES
    backends: tuple[str, ...] = ()
    # seconds between the plugin's background reads of Pgpool's sr-check columns
    replication_refresh: float = 10.0


class ZabbixTarget(NamedTuple):
    name: str
    site: str
    endpoint: Endpoint


class Config(NamedTuple):
    """The whole config. Timeouts are seconds; ``deadline`` bounds one ``kyoten get``."""

    deadline: float = DEADLINE
    connect_timeout: int = 2
    statement_timeout: float = 2.0
    # never mutated, so one empty dict serves every Config made without targets (tests)
    postgres: dict[str, PgTarget] = {}  # noqa: RUF012
    pgpool: dict[str, PgpoolTarget] = {}  # noqa: RUF012
    zabbix: dict[str, ZabbixTarget] = {}  # noqa: RUF012
    source: str = "<defaults>"

    def targets(self, kind: str) -> dict[str, Any]:
        """The targets of one kind ('postgres', 'pgpool' or 'zabbix') by name."""
        tables: dict[str, dict[str, Any]] = {
            "postgres": self.postgres,
            "pgpool": self.pgpool,
            "zabbix": self.zabbix,
        }
        return tables[kind]


def config_path(explicit: str | None = None) -> str:
    """--config, else $KYOTEN_CONFIG, else /etc/kyoten/kyoten.toml."""
    return explicit or os.environ.get(ENV_VAR) or DEFAULT_PATH


def load_config(path: str | None = None) -> Config:
    """Read and validate the config file; every problem is reported at once."""
    return read_config(config_path(path))[0]


def read_text(path: str) -> str:
    """The config file's text; ConfigError when it is missing or not readable."""
    try:
        with open(path, encoding="utf-8") as fh:  # os, not pathlib: kyoten get imports little
            return fh.read()
    except FileNotFoundError:
        raise ConfigError(f"config file {path} not found (set --config or {ENV_VAR})") from None
    except PermissionError:
        raise ConfigError(
            f"config file {path} is not readable by this user "
            f"(uid {os.geteuid()}); the agent runs as 'zabbix'"
        ) from None


def read_config(path: str) -> tuple[Config, list[str]]:
    """The config in the file ``path``, with the files its secrets were read from
    (``*_file``), which it also depends on."""
    text = read_text(path)
    import tomllib  # here: kyoten get mostly reuses a checked config (config_cache)

    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    files: list[str] = []
    return parse_config(raw, path, files), files


def _ep(v: dict[str, Any]) -> Endpoint:
    return Endpoint(
        host=v["host"] or "",
        port=v["port"],
        dbname=v["dbname"],
        user=v["user"],
        password=v["password"],
        passfile=v["passfile"],
        sslmode=v["sslmode"],
    )


def parse_config(
    raw: dict[str, Any], source: str = "<memory>", files: list[str] | None = None
) -> Config:
    """Validate a parsed TOML document into a Config (pure: only secret files are read); every
    problem in the file is reported at once, each with its field and its fix. The secret
    files read are added to ``files`` when it is given."""
    from kyoten.agent.config_schema import FILE
    from kyoten.common import schema as s

    reader = s.Reader()
    v, problems = s.validate(FILE, raw, reader=reader)
    if files is not None:
        files += reader.files
    if problems:
        raise ConfigError(f"{source}: {len(problems)} problem(s):\n  " + "\n  ".join(problems))
    pcp = {
        name: None
        if t["pcp_port"] is None
        else PcpSettings(t["pcp_port"], t["pcp_user"] or "pgpool", t["pcp_password"],
                         t["pcppass"])
        for name, t in v["pgpool"].items()
    }  # fmt: skip
    return Config(
        deadline=v["deadline"],
        connect_timeout=v["connect_timeout"],
        statement_timeout=v["statement_timeout"],
        postgres={
            n: PgTarget(n, t["site"], _ep(t), t["expected_standbys"])
            for n, t in v["postgres"].items()
        },
        pgpool={
            n: PgpoolTarget(
                n, t["site"], _ep(t), pcp[n], t["watchdog"], t["backends"], t["replication_refresh"]
            )
            for n, t in v["pgpool"].items()
        },
        zabbix={n: ZabbixTarget(n, t["site"], _ep(t)) for n, t in v["zabbix"].items()},
        source=source,
    )
