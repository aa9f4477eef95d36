"""kyoten.toml declared with the shared validator (:mod:`kyoten.common.schema`).

Apart from :mod:`kyoten.agent.config` because ``kyoten get`` usually needs none of it: it
reuses the checked config of its previous calls while the file is unchanged
(:mod:`kyoten.agent.config_cache`), and the validator's import (``typing``, ``re`` for the
target names) was a share of every poll's CPU.
"""

from __future__ import annotations

import re
from typing import Any

from kyoten.agent.keytable import DEADLINE
from kyoten.common import schema as s

NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")

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
