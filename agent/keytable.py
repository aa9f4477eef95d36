"""The metric catalogue as the collector reads it on every call. Generated, do not edit.

Written by 'kyoten export keytable' from kyoten.agent.catalogue (see
kyoten.agent.export.keytable): ``kyoten get`` looks its key and value-map codes up here instead
of building every declaration of the catalogue in each new process.
"""

from __future__ import annotations

from kyoten.agent.keys import KeySpec

DEADLINE = 2.5
"""kyoten.toml's default ``deadline`` (the catalogue's DEADLINE)."""

KEYS: dict[str, KeySpec] = {
    "kyoten.pg": KeySpec(
        "kyoten.pg",
        ("target",),
    ),
    "kyoten.pg.standbys": KeySpec(
        "kyoten.pg",
        ("target",),
        "standbys",
        (
            ("{#APP}", "application_name"),
            ("{#CLIENT}", "client_addr"),
        ),
    ),
    "kyoten.pg.slots": KeySpec(
        "kyoten.pg",
        ("target",),
        "slots",
        (("{#SLOT}", "slot_name"),),
    ),
    "kyoten.pgpool": KeySpec(
        "kyoten.pgpool",
        ("target",),
    ),
    "kyoten.pgpool.backends": KeySpec(
        "kyoten.pgpool",
        ("target",),
        "backends",
        (
            ("{#NODE}", "node_id"),
            ("{#BACKEND}", "backend"),
            ("{#NAME}", "name"),
        ),
    ),
    "kyoten.zabbix.ha": KeySpec(
        "kyoten.zabbix.ha",
        ("target",),
    ),
    "kyoten.zabbix.ha.nodes": KeySpec(
        "kyoten.zabbix.ha",
        ("target",),
        "nodes",
        (
            ("{#NODE.NAME}", "name"),
            ("{#NODE.ID}", "id"),
        ),
    ),
    "kyoten.cross": KeySpec(
        "kyoten.cross",
        (),
    ),
    "kyoten.cross.servers": KeySpec(
        "kyoten.cross",
        (),
        "servers",
        (
            ("{#TARGET}", "target"),
            ("{#SITE}", "site"),
            ("{#ADDRESS}", "address"),
        ),
    ),
}
"""Every key the agent registers (UserParameter lines, plugin metrics)."""

VALUE_MAPS: dict[str, tuple[tuple[tuple[str, int], ...], int | None]] = {
    # name: ((word, code), ...), the code of any other word (None: none)
    "kyoten Pgpool backend status": (
        (
            ("unused", 0),
            ("waiting", 1),
            ("up", 2),
            ("down", 3),
            ("quarantine", 4),
        ),
        5,
    ),
    "kyoten Pgpool pg_status": (
        (
            ("down", 0),
            ("up", 1),
        ),
        2,
    ),
    "kyoten Pgpool quorum": (
        (
            ("QUORUM EXIST", 1),
            ("ON THE EDGE", 0),
            ("ABSENT", -1),
            ("NO LEADER", -2),
            ("NO MASTER", -2),
            ("", -3),
        ),
        -2,
    ),
    "kyoten PostgreSQL role": (
        (
            ("primary", 0),
            ("standby", 1),
        ),
        None,
    ),
    "kyoten WAL receiver state": (
        (
            ("stopped", 0),
            ("streaming", 1),
            ("primary", 2),
        ),
        3,
    ),
    "kyoten Zabbix HA node status": (
        (
            ("standby", 0),
            ("stopped", 1),
            ("unavailable", 2),
            ("active", 3),
        ),
        None,
    ),
}
"""The value maps whose codes the collector emits (ValueMap.words, .other)."""
