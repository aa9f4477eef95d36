"""kyoten.toml: the targets item keys may name, with connection details kept out of keys.

Item keys carry only a target's name (``kyoten.pg[site-a]``); host, port, user and secrets
live here, so they never reach Zabbix, its database or its logs. Validation collects every
problem with the field's path and the fix, rather than stopping at the first.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kyoten.agent.errors import ConfigError

DEFAULT_PATH = "/etc/kyoten/kyoten.toml"
ENV_VAR = "KYOTEN_CONFIG"
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


@dataclass(frozen=True)
class Endpoint:
    """How to reach one PostgreSQL-protocol server (PostgreSQL itself or Pgpool-II)."""

    host: str
    port: int
    dbname: str
    user: str
    password: str | None = field(default=None, repr=False)
    passfile: str | None = None
    sslmode: str | None = None

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


@dataclass(frozen=True)
class PgTarget:
    name: str
    site: str
    endpoint: Endpoint
    expected_standbys: tuple[str, ...] = ()


@dataclass(frozen=True)
class PcpSettings:
    port: int
    user: str
    password: str | None = field(default=None, repr=False)
    pcppass: str | None = None


@dataclass(frozen=True)
class PgpoolTarget:
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


@dataclass(frozen=True)
class ZabbixTarget:
    name: str
    site: str
    endpoint: Endpoint


@dataclass(frozen=True)
class Config:
    """The whole config. Timeouts are seconds; ``deadline`` bounds one ``kyoten get``."""

    deadline: float = 2.5
    connect_timeout: int = 2
    statement_timeout: float = 2.0
    postgres: dict[str, PgTarget] = field(default_factory=dict)
    pgpool: dict[str, PgpoolTarget] = field(default_factory=dict)
    zabbix: dict[str, ZabbixTarget] = field(default_factory=dict)
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
    p = Path(config_path(path))
    try:
        raw = tomllib.loads(p.read_text())
    except FileNotFoundError:
        raise ConfigError(f"config file {p} not found (set --config or {ENV_VAR})") from None
    except PermissionError:
        raise ConfigError(
            f"config file {p} is not readable by this user "
            f"(uid {os.geteuid()}); the agent runs as 'zabbix'"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: not valid TOML: {exc}") from None
    return parse_config(raw, str(p))


class _Errors:
    """Collects validation problems as 'path: problem; fix'."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, path: str, msg: str) -> None:
        self.items.append(f"{path}: {msg}")


def _get(
    d: dict[str, Any],
    key: str,
    kind: type | tuple[type, ...],
    path: str,
    errs: _Errors,
    default: Any = None,
    required: bool = False,
) -> Any:
    """Fetch ``key`` of the expected type, or record why not and return ``default``."""
    if key not in d:
        if required:
            errs.add(f"{path}.{key}", "missing; add it")
        return default
    value = d[key]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    # bool is an int in Python; TOML's true must not pass for a port number
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
        shown = "" if "pass" in key else f" {value!r}"  # never echo a secret
        errs.add(
            f"{path}.{key}" if path else key,
            f"expected {_kind_name(kind)}, got {type(value).__name__}{shown}",
        )
        return default
    return value


def _kind_name(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    names = {
        str: "a string",
        int: "an integer",
        float: "a number",
        bool: "true/false",
        list: "a list",
        dict: "a table",
    }
    return " or ".join(names.get(k, k.__name__) for k in kinds)


def _secret(d: dict[str, Any], key: str, path: str, errs: _Errors) -> str | None:
    """A secret given inline (``key``) or by file (``key_file``, first line, must be private)."""
    inline = _get(d, key, str, path, errs)
    file_ = _get(d, f"{key}_file", str, path, errs)
    if inline is not None and file_ is not None:
        errs.add(f"{path}.{key}", f"give {key} or {key}_file, not both")
        return None
    if file_ is None:
        return inline  # type: ignore[no-any-return]
    try:
        return Path(file_).read_text().splitlines()[0] if Path(file_).stat().st_size else ""
    except OSError as exc:
        errs.add(f"{path}.{key}_file", f"cannot read {file_}: {exc.strerror}")
        return None


def _endpoint(
    d: dict[str, Any], path: str, errs: _Errors, default_port: int, default_db: str
) -> Endpoint:
    host = _get(d, "host", str, path, errs, required=True) or ""
    port = _get(d, "port", int, path, errs, default_port)
    if not 0 < port < 65536:
        errs.add(f"{path}.port", f"{port} is not a TCP port (1-65535)")
    sslmode = _get(d, "sslmode", str, path, errs)
    modes = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
    if sslmode is not None and sslmode not in modes:
        errs.add(f"{path}.sslmode", f"{sslmode!r} is not one of {', '.join(modes)}")
    return Endpoint(
        host=host,
        port=port,
        dbname=_get(d, "dbname", str, path, errs, default_db),
        user=_get(d, "user", str, path, errs, "kyoten"),
        password=_secret(d, "password", path, errs),
        passfile=_get(d, "passfile", str, path, errs),
        sslmode=sslmode,
    )


_COMMON = {
    "host",
    "port",
    "dbname",
    "user",
    "password",
    "password_file",
    "passfile",
    "sslmode",
    "site",
}
_ALLOWED = {
    "postgres": _COMMON | {"expected_standbys"},
    "pgpool": _COMMON
    | {
        "pcp_port",
        "pcp_user",
        "pcp_password",
        "pcp_password_file",
        "pcppass",
        "watchdog",
        "backends",
        "replication_refresh",
    },
    "zabbix": _COMMON,
}


def parse_config(raw: dict[str, Any], source: str = "<memory>") -> Config:
    """Validate a parsed TOML document into a Config (pure: only secret files are read)."""
    errs = _Errors()
    top = {"deadline", "connect_timeout", "statement_timeout", "postgres", "pgpool", "zabbix"}
    for key in sorted(set(raw) - top):
        errs.add(key, f"unknown setting; expected one of {', '.join(sorted(top))}")
    deadline = float(_get(raw, "deadline", (int, float), "", errs, 2.5))
    if not 0.2 <= deadline <= 29:
        errs.add(
            "deadline",
            f"{deadline} s is outside 0.2-29 s; keep it below the agent's Timeout (default 3 s)",
        )
    connect_timeout = _get(raw, "connect_timeout", int, "", errs, 2)
    if connect_timeout < 2:
        errs.add("connect_timeout", "libpq's minimum is 2 s")
    statement_timeout = float(_get(raw, "statement_timeout", (int, float), "", errs, 2.0))
    sections: dict[str, dict[str, Any]] = {"postgres": {}, "pgpool": {}, "zabbix": {}}
    for kind in sections:
        tables = _get(raw, kind, dict, "", errs, {})
        for name, body in tables.items():
            path = f"{kind}.{name}"
            if not NAME_RE.fullmatch(name):
                errs.add(path, "target names may use letters, digits, '_', '.', '-' (max 64)")
                continue
            if not isinstance(body, dict):
                errs.add(path, "expected a table ([" + path + "])")
                continue
            for key in sorted(set(body) - _ALLOWED[kind]):
                errs.add(
                    f"{path}.{key}",
                    "unknown setting; expected one of " + ", ".join(sorted(_ALLOWED[kind])),
                )
            site = _get(body, "site", str, path, errs, "")
            if kind == "postgres":
                ep = _endpoint(body, path, errs, 5432, "postgres")
                standbys = _get(body, "expected_standbys", list, path, errs, [])
                if not all(isinstance(s, str) for s in standbys):
                    errs.add(f"{path}.expected_standbys", "expected a list of application_name")
                    standbys = []
                sections[kind][name] = PgTarget(name, site, ep, tuple(standbys))
            elif kind == "pgpool":
                ep = _endpoint(body, path, errs, 9999, "postgres")
                pcp = None
                if "pcp_port" in body:
                    pcp = PcpSettings(
                        _get(body, "pcp_port", int, path, errs, 9898),
                        _get(body, "pcp_user", str, path, errs, "pgpool"),
                        _secret(body, "pcp_password", path, errs),
                        _get(body, "pcppass", str, path, errs),
                    )
                elif any(k.startswith("pcp") for k in body):
                    errs.add(f"{path}.pcp_port", "pcp settings given without pcp_port; add it")
                watchdog = _get(body, "watchdog", bool, path, errs, False)
                if watchdog and pcp is None:
                    errs.add(f"{path}.watchdog", "the watchdog is read through PCP; add pcp_port")
                backends = _get(body, "backends", list, path, errs, [])
                if not all(isinstance(b, str) for b in backends):
                    errs.add(f"{path}.backends", "expected a list of postgres target names")
                    backends = []
                refresh = float(_get(body, "replication_refresh", (int, float), path, errs, 10.0))
                if not 1 <= refresh <= 3600:
                    errs.add(f"{path}.replication_refresh", f"{refresh} s is outside 1-3600 s")
                sections[kind][name] = PgpoolTarget(
                    name, site, ep, pcp, watchdog, tuple(backends), refresh
                )
            else:
                ep = _endpoint(body, path, errs, 5432, "zabbix")
                sections[kind][name] = ZabbixTarget(name, site, ep)
    for name, pool in sections["pgpool"].items():
        for b in pool.backends:
            if b not in sections["postgres"]:
                errs.add(
                    f"pgpool.{name}.backends",
                    f"{b!r} is not a postgres target; name [postgres.*] tables in node order",
                )
    if errs.items:
        raise ConfigError(f"{source}: {len(errs.items)} problem(s):\n  " + "\n  ".join(errs.items))
    return Config(
        deadline=deadline,
        connect_timeout=connect_timeout,
        statement_timeout=statement_timeout,
        postgres=sections["postgres"],
        pgpool=sections["pgpool"],
        zabbix=sections["zabbix"],
        source=source,
    )
