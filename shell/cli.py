"""The ``kyoten`` command line.

Each part of kyoten owns its own subcommands: this module only knows their names and where
they live, and imports a part when its subcommand runs. That keeps ``kyoten get`` (run by the
Zabbix agent on every poll in UserParameter mode) from paying for aiohttp, slack-sdk or
pyserial imports it never uses; argparse too is only loaded for the top-level help.
"""

from __future__ import annotations

import importlib
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable, Sequence

# subcommand -> (module with ``main(argv) -> int``, one-line help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "get": ("kyoten.agent.commands", "print one item's value as Zabbix should store it"),
    "check-config": ("kyoten.agent.commands", "validate the TOML config and list the targets"),
    "export": (
        "kyoten.shell.export",
        "write generated artefacts (templates, agent config, docs)",
    ),
    "import": ("kyoten.shell.zabbix_import", "import templates and the media type through the API"),
    "bridge": ("kyoten.alerting.cli", "run and operate the alert bridge"),
    "tower": ("kyoten.hardware.cli", "drive, query or emulate PATLITE signal towers"),
    "health": ("kyoten.agent.health", "serve the GSLB site health endpoint"),
    "demo": ("kyoten.shell.lab.demo", "bring up the local demo lab and inject faults"),
}


def package_version() -> str:
    """The installed distribution's version (one source: pyproject.toml)."""
    from importlib.metadata import PackageNotFoundError, version  # costly: only for --version

    try:
        return version("kyoten")
    except PackageNotFoundError:  # running from a source tree without an install
        return "0+unknown"


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser: subcommand names only; each part parses its own arguments."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="kyoten",
        description="Monitoring and alerting for cross-site Zabbix deployments "
        "(PostgreSQL streaming replication, Pgpool-II, Zabbix HA).",
        epilog="Run 'kyoten COMMAND --help' for the options of one command.",
    )
    parser.add_argument("--version", action="version", version=f"kyoten {package_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, help_text) in SUBCOMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``kyoten`` console script."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] not in SUBCOMMANDS:
        parser = build_parser()
        if not args:
            parser.print_help()
            return 2
        parser.parse_args(args)  # prints --version/--help or a usage error and exits
        return 2
    module = importlib.import_module(SUBCOMMANDS[args[0]][0])
    run: Callable[[list[str]], int] = module.main
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
