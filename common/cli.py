"""One convention for every kyoten command line: exit codes and ``--log-level``.

=========  ==================================================================================
exit 0     done, and what was checked is fine
exit 1     it ran, and what it checked failed: a target or the bridge unreachable, a site
           unhealthy, an event not stored (Zabbix retries a script media type on it)
exit 2     a usage or configuration error: nothing was done (argparse's own code for a bad
           command line; the configuration file's problems are all listed on stderr)
=========  ==================================================================================

``--log-level debug|info|warning|error`` (to stderr) on every command; the default is ``info``
for a server (``serve``) and ``warning`` for a one-shot command. ``kyoten get`` is the one
exception: the Zabbix agent stores whatever it prints, so it prints only the value.

Imported by the commands' argument parsers only, never by ``kyoten get``.
"""

from __future__ import annotations

import argparse
import logging

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2

LOG_LEVELS = ("debug", "info", "warning", "error")

EXIT_CODES = (
    "exit status: 0 done and fine; 1 ran, but what it checked failed (unreachable, unhealthy, "
    "not stored); 2 usage or configuration error, nothing done (every problem on stderr)"
)


def add_log_level(parser: argparse.ArgumentParser, default: str = "warning") -> None:
    """``--log-level`` with the choices every kyoten command takes."""
    parser.add_argument(
        "--log-level",
        default=default,
        choices=LOG_LEVELS,
        help=f"log to stderr from this level on (default {default})",
    )


def epilog(parser: argparse.ArgumentParser) -> None:
    """Write the exit codes into ``--help``."""
    parser.epilog = EXIT_CODES if not parser.epilog else f"{parser.epilog}  {EXIT_CODES}"


def setup_logging(level: str) -> None:
    """Log to stderr from ``level`` on, one format for every command."""
    logging.basicConfig(
        level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
