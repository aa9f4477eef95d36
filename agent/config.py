"""kyoten.toml: the targets item keys may name, with connection details kept out of keys.

Item keys carry only a target's name (``kyoten.pg[site-a]``); host, port, user and secrets
live here, so they never reach Zabbix, its database or its logs. The file is declared with the
shared validator (:mod:`kyoten.common.schema`, the same mechanism as the bridge's
``bridge.yaml``): every field is read and checked, then every problem is reported together with
the field's path and the fix, rather than stopping at the first.

The loaded config is a tree of named tuples, not dataclasses: ``kyoten get`` reads it in a new
process on every poll, where importing ``dataclasses`` and building these classes (and the
snapshots') with it took about a fifth of the call's CPU.
"""

from __future__ import annotations

import os
import re
import tomllib
from typing import Any, NamedTuple

from kyoten.agent.errors import ConfigError
from kyoten.agent.keytable import DEADLINE
from kyoten.common import schema as s

DEFAULT_PATH = "/etc/kyoten/kyoten.toml"
ENV_VAR = "KYOTEN_CONFIG"
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


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
    p = config_path(path)
    try:
        with open(p, encoding="utf-8") as fh:  # os, not pathlib: kyoten get imports little
            raw = tomllib.loads(fh.read())
    except FileNotFoundError:
        raise ConfigError(f"config file {p} not found (set --config or {ENV_VAR})") from None
    except PermissionError:
        raise ConfigError(
            f"config file {p} is not readable by this user "
            f"(uid {os.geteuid()}); the agent runs as 'zabbix'"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: not valid TOML: {exc}") from None
    return parse_config(raw, p)


# -- the file, declared with the shared validator (kyoten.common.schema) --------------------

_SSLMODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")


def _endpoint(default_port: int, default_db: str) -> dict[str, s.Field]:
    """The fields every target table takes."""
    return {
        "host": s.String(None, required=True, nonempty=True,
                         fix='the server\'s address, e.g. host = "10.0.1.11"'),
        "port": s.Integer(default_port, minimum=1, maximum=65535,
                          fix="a TCP port (1-65535), without quotes"),
        "dbname": s.String(default_db, nonempty=True),
        "user": s.String("kyoten", nonempty=True),
        "password": s.Secret(None, first_line=True),
        "passfile": s.String(None),
        "sslmode": s.Choice(None, {m: m for m in _SSLMODES}),
        "site": s.String(""),
    }  # fmt: skip


def _pgpool_check(r: s.Reader, v: dict[str, Any], path: str) -> None:
    pcp_given = v["pcp_user"] is not None or v["pcp_password"] is not None or v["pcppass"]
    if v["pcp_port"] is None and pcp_given:
        r.problem(s.join(path, "pcp_port"), "pcp settings given without pcp_port",
                  "add it (Pgpool's pcp_port, 9898 by default)")  # fmt: skip
    if v["watchdog"] and v["pcp_port"] is None:
        r.problem(s.join(path, "watchdog"), "the watchdog is read through PCP",
                  "add pcp_port")  # fmt: skip


_TARGET_NAME = "target names may use letters, digits, '_', '.', '-' (max 64)"

_POSTGRES = s.Section(
    {
        **_endpoint(5432, "postgres"),
        "expected_standbys": s.Strings(single=False,
                                       fix="the application_name of each standby, in a list"),
    }
)  # fmt: skip
_PGPOOL = s.Section(
    {
        **_endpoint(9999, "postgres"),
        "pcp_port": s.Integer(None, minimum=1, maximum=65535),
        "pcp_user": s.String(None, nonempty=True),
        "pcp_password": s.Secret(None, first_line=True),
        "pcppass": s.String(None),
        "watchdog": s.Boolean(False),
        "backends": s.Strings(single=False,
                              fix="the [postgres.*] names of Pgpool's backends, in node order"),
        "replication_refresh": s.Number(10.0, minimum=1, maximum=3600, unit=" s",
                                        fix="seconds, Pgpool's sr_check_period (10)"),
    },
    check=_pgpool_check,
)  # fmt: skip
_ZABBIX = s.Section(_endpoint(5432, "zabbix"))


def _whole(r: s.Reader, v: dict[str, Any], path: str) -> None:
    for name, pool in v["pgpool"].items():
        for b in pool["backends"]:
            if b not in v["postgres"]:
                r.problem(f"pgpool.{name}.backends",
                          f"{b!r} is not a postgres target",
                          "name [postgres.*] tables in Pgpool's node order")  # fmt: skip


FILE = s.Section(
    {
        "deadline": s.Number(DEADLINE, minimum=0.2, maximum=29, unit=" s",
                             fix="keep it below the agent's Timeout (default 3 s)"),
        "connect_timeout": s.Integer(2, minimum=2, fix="libpq's minimum is 2 s"),
        "statement_timeout": s.Number(2.0, above=0, unit=" s"),
        "postgres": s.Table(_POSTGRES, name=NAME_RE, name_text=_TARGET_NAME),
        "pgpool": s.Table(_PGPOOL, name=NAME_RE, name_text=_TARGET_NAME),
        "zabbix": s.Table(_ZABBIX, name=NAME_RE, name_text=_TARGET_NAME),
    },
    check=_whole,
)  # fmt: skip
"""The whole of kyoten.toml."""


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


def parse_config(raw: dict[str, Any], source: str = "<memory>") -> Config:
    """Validate a parsed TOML document into a Config (pure: only secret files are read); every
    problem in the file is reported at once, each with its field and its fix."""
    v, problems = s.validate(FILE, raw)
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
