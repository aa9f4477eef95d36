"""``kyoten get`` and ``kyoten check-config``: what the agent host runs."""

from __future__ import annotations

import argparse
import os
import sys
import threading

from kyoten.agent.collector import Collector, render
from kyoten.agent.config import DEFAULT_PATH, ENV_VAR, load_config
from kyoten.agent.errors import KyotenError
from kyoten.agent.keys import parse_key

# ----------------------------------------------------------------------------- get


def get_value(key_text: str, config_path: str | None) -> tuple[str, bool]:
    """(text to print, ok). Every failure becomes {"error": ...}: the agent ignores exit codes
    and stores whatever is printed, and the templates' CHECK_JSON_ERROR turns it into
    'not supported' with this reason."""
    try:
        key, params = parse_key(key_text)
        config = load_config(config_path)
        collector = Collector(config)
        collector.resolve(key, params)
    except KyotenError as exc:
        return render({"error": str(exc)}), False
    result: list[tuple[str, bool]] = []

    def work() -> None:
        try:
            result.append((collector.get(key, params), True))
        except KyotenError as exc:
            result.append((render({"error": str(exc)}), False))
        except Exception as exc:  # a bug must still answer, readably, within the deadline
            result.append(
                (render({"error": f"internal error: {type(exc).__name__}: {exc}"}), False)
            )

    worker = threading.Thread(target=work, daemon=True, name="kyoten-get")
    worker.start()
    worker.join(config.deadline + 0.1)
    if not result:
        return render(
            {
                "error": f"{key_text}: no answer within the {config.deadline:g} s "
                f"deadline (kyoten.toml 'deadline'; the agent's Timeout must be "
                f"larger)"
            }
        ), False
    return result[0]


def cmd_get(argv: list[str]) -> int:
    p = argparse.ArgumentParser(
        prog="kyoten get",
        description="Print one item's value as Zabbix should store it: a JSON document for "
        'master items, a JSON array for discovery keys, {"error": ...} on failure. Nothing '
        "is written to stderr (the agent would store it as the value).",
    )
    p.add_argument("key", help="item key, e.g. 'kyoten.pg[site-a]'")
    p.add_argument("--config", help=f"config file (default ${ENV_VAR} or {DEFAULT_PATH})")
    args = p.parse_args(argv)
    text, ok = get_value(args.key, args.config)
    sys.stdout.write(text + "\n")
    sys.stdout.flush()
    # a worker stuck in a dead connection must not keep the process alive past the deadline
    os._exit(0 if ok else 1)


# ----------------------------------------------------------------------------- check-config


def cmd_check_config(argv: list[str]) -> int:
    p = argparse.ArgumentParser(
        prog="kyoten check-config",
        description="Validate kyoten.toml and list its targets; "
        "with --connect, take one snapshot of each target.",
    )
    p.add_argument("--config", help=f"config file (default ${ENV_VAR} or {DEFAULT_PATH})")
    p.add_argument("--connect", action="store_true", help="also reach every target")
    args = p.parse_args(argv)
    try:
        config = load_config(args.config)
    except KyotenError as exc:
        print(f"kyoten: {exc}", file=sys.stderr)
        return 1
    print(f"{config.source}: OK (deadline {config.deadline:g} s)")
    failed = 0
    # persistent: the agent 2 plugin's code paths, e.g. a Pgpool's backends order check
    collector = Collector(config, persistent=True) if args.connect else None
    try:
        for kind in ("postgres", "pgpool", "zabbix"):
            for name, t in config.targets(kind).items():
                line = f"  {kind:8} {name:20} {t.endpoint.address():22} site={t.site or '-'}"
                if collector is not None:
                    key = {
                        "postgres": "kyoten.pg",
                        "pgpool": "kyoten.pgpool",
                        "zabbix": "kyoten.zabbix.ha",
                    }[kind]
                    try:
                        collector.get(key, [name])
                        line += "  reachable"
                    except KyotenError as exc:
                        failed += 1
                        line += f"  FAILED: {exc}"
                print(line)
    finally:
        if collector is not None:
            collector.close()
    return 1 if failed else 0


def main(argv: list[str]) -> int:
    """Dispatch from ``kyoten.shell.cli``: argv[0] is the subcommand."""
    commands = {"get": cmd_get, "check-config": cmd_check_config}
    return commands[argv[0]](argv[1:])
