"""``kyoten get`` and ``kyoten check-config``: what the agent host runs."""

from __future__ import annotations

import _thread  # not threading: kyoten get needs one worker and a timed wait, no more
import os
import sys

from kyoten.agent.collector import Collector
from kyoten.agent.collector import render_once as render
from kyoten.agent.config import DEFAULT_PATH, ENV_VAR, load_config
from kyoten.agent.config_cache import load_config_cached
from kyoten.agent.errors import KyotenError
from kyoten.agent.keys import parse_key

# ----------------------------------------------------------------------------- get


def get_value(key_text: str, config_path: str | None) -> tuple[str, bool]:
    """(text to print, ok). Every failure becomes {"error": ...}: the agent ignores exit codes
    and stores whatever is printed, and the templates' CHECK_JSON_ERROR turns it into
    'not supported' with this reason."""
    try:
        key, params = parse_key(key_text)
        config = load_config_cached(config_path)  # as load_config, without parsing each call
        collector = Collector(config)
        collector.resolve(key, params)
    except KyotenError as exc:
        return render({"error": str(exc)}), False
    result: list[tuple[str, bool]] = []
    # The pass runs in a worker so that the answer leaves by the deadline whatever the pass
    # is stuck in, a C call included (name resolution in libpq does not look at deadlines).
    # The bare _thread module, which the interpreter has loaded already: threading would cost
    # a poll about 3 ms of CPU for a thread and a timed wait.
    done = _thread.allocate_lock()
    done.acquire()

    def work() -> None:
        try:
            result.append((collector.get(key, params), True))
        except KyotenError as exc:
            result.append((render({"error": str(exc)}), False))
        except Exception as exc:  # a bug must still answer, readably, within the deadline
            result.append(
                (render({"error": f"internal error: {type(exc).__name__}: {exc}"}), False)
            )
        finally:
            done.release()

    _thread.start_new_thread(work, ())
    done.acquire(timeout=config.deadline + 0.1)
    if not result:
        return render(
            {
                "error": f"{key_text}: no answer within the {config.deadline:g} s "
                f"deadline (kyoten.toml 'deadline'; the agent's Timeout must be "
                f"larger)"
            }
        ), False
    return result[0]


def get_arguments(argv: list[str]) -> tuple[str, str | None] | None:
    """(key, --config) of the forms the agent runs, without argparse (a tenth of the call's
    import time); None for anything else (help, a mistake), which argparse then handles."""
    key, config, i = None, None, 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--config" and i + 1 < len(argv):
            config, i = argv[i + 1], i + 2
            continue
        if arg.startswith("--config="):
            config = arg.partition("=")[2]
        elif arg.startswith("-") or key is not None:
            return None
        else:
            key = arg
        i += 1
    return None if key is None else (key, config)


def cmd_get(argv: list[str]) -> int:
    parsed = get_arguments(argv)
    if parsed is None:
        import argparse

        p = argparse.ArgumentParser(
            prog="kyoten get",
            description="Print one item's value as Zabbix should store it: a JSON document "
            'for master items, a JSON array for discovery keys, {"error": ...} on failure. '
            "Nothing is written to stderr (the agent would store it as the value).",
        )
        p.add_argument("key", help="item key, e.g. 'kyoten.pg[site-a]'")
        p.add_argument("--config", help=f"config file (default ${ENV_VAR} or {DEFAULT_PATH})")
        args = p.parse_args(argv)
        parsed = (args.key, args.config)
    text, ok = get_value(*parsed)
    sys.stdout.write(text + "\n")
    sys.stdout.flush()
    # a worker stuck in a dead connection must not keep the process alive past the deadline
    os._exit(0 if ok else 1)


# ----------------------------------------------------------------------------- check-config


def cmd_check_config(argv: list[str]) -> int:
    import argparse

    from kyoten.common.cli import EXIT_FAILED, EXIT_USAGE, add_log_level, epilog, setup_logging

    p = argparse.ArgumentParser(
        prog="kyoten check-config",
        description="Validate kyoten.toml (every problem, each with its field and fix) and "
        "list its targets; with --connect, take one snapshot of each target.",
    )
    epilog(p)
    p.add_argument("--config", help=f"config file (default ${ENV_VAR} or {DEFAULT_PATH})")
    p.add_argument("--connect", action="store_true", help="also reach every target")
    add_log_level(p)
    args = p.parse_args(argv)
    setup_logging(args.log_level)
    try:
        config = load_config(args.config)
    except KyotenError as exc:
        print(f"kyoten: {exc}", file=sys.stderr)
        return EXIT_USAGE
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
    return EXIT_FAILED if failed else 0


def main(argv: list[str]) -> int:
    """Dispatch from ``kyoten.shell.cli``: argv[0] is the subcommand."""
    commands = {"get": cmd_get, "check-config": cmd_check_config}
    return commands[argv[0]](argv[1:])
