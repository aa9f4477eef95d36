"""Pgpool-II output of each release, as stored under ``fixtures/pgpool`` (origin of every
file in ``fixtures/pgpool/ORIGIN.md``), and the fakes that replay it."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path

from kyoten.agent.errors import QueryError
from kyoten.agent.snapshot import Rows

FIXTURES = Path(__file__).with_name("fixtures") / "pgpool"
FAKE_PCP = Path(__file__).with_name("fake_pcp.py")
PCP_COMMANDS = (
    "pcp_node_count",
    "pcp_node_info",
    "pcp_health_check_stats",
    "pcp_proc_count",
    "pcp_proc_info",
    "pcp_watchdog_info",
)


def text(release: str, name: str) -> str:
    return (FIXTURES / release / name).read_text()


def psql_rows(output: str) -> Rows:
    """psql's aligned or expanded (``-[ RECORD n ]``) output back into {column: text} rows,
    as the simple query protocol gives them (Pgpool sends empty strings, never NULL)."""
    lines = [line for line in output.splitlines() if line.strip()]
    if lines and lines[0].startswith("-[ RECORD"):
        rows: list[dict[str, str]] = []
        for line in lines:
            if line.startswith("-[ RECORD"):
                rows.append({})
            else:
                key, _, value = line.partition("|")
                rows[-1][key.strip()] = value.strip()
        return tuple(rows)
    head = [h.strip() for h in lines[0].split("|")]
    out = []
    for line in lines[2:]:
        if line.startswith("("):  # "(2 rows)"
            break
        cells = [c.strip() for c in line.split("|")]
        assert len(cells) == len(head), line
        out.append(dict(zip(head, cells, strict=True)))
    return tuple(out)


class FakePgpool:
    """A Session answering SHOW commands from a release's psql output, recording them.

    A command this release does not know is refused as Pgpool does: it passes it to the
    backend, whose error (an unknown parameter) comes back.
    """

    server_version = 0

    def __init__(self, answers: dict[str, str]) -> None:
        self.answers = answers
        self.sent: list[str] = []

    @property
    def raw(self) -> object:
        return self

    def query(
        self, command: str, columns: Sequence[str] | None = None, *, prepare: bool = False
    ) -> Rows:
        self.sent.append(command)
        if command not in self.answers:
            name = command.split()[-1].lower()
            raise QueryError(f'unrecognized configuration parameter "{name}"', "42704")
        rows = psql_rows(self.answers[command])
        if columns is None:
            return rows
        return tuple({c: v for c, v in row.items() if c in columns} for row in rows)


def fake_pcp_bin(directory: Path, release: str, fixtures: str, log: Path) -> dict[str, str]:
    """Wrappers named like the release's pcp tools in ``directory``; the environment to add.

    4.1 has no pcp_health_check_stats: no wrapper is made for it, as no binary is installed.
    """
    directory.mkdir(parents=True, exist_ok=True)
    from tests.agent.fake_pcp import OPTIONS

    for command in PCP_COMMANDS:
        if command not in OPTIONS[release]:
            continue
        wrapper = directory / command
        wrapper.write_text(f'#!/bin/sh\nexec {sys.executable} {FAKE_PCP} {command} "$@"\n')
        wrapper.chmod(0o755)
    return {
        "FAKE_PCP_RELEASE": release,
        "FAKE_PCP_DIR": str(FIXTURES / fixtures),
        "FAKE_PCP_LOG": str(log),
    }


def pcp_calls(log: Path) -> list[list[str]]:
    """Every argv the fake pcp tools were run with, in order."""
    if not log.exists():
        return []
    return [json.loads(line) for line in log.read_text().splitlines()]
