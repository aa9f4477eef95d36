"""``kyoten export``: every file generated from the metric catalogue, in one place.

It spans parts: the templates come from the collector's catalogue
(:mod:`kyoten.agent.export.templates`), and each template directory also carries the bridge's
webhook media type (:mod:`kyoten.alerting.mediatype`) and the alert-path canary's template
(:mod:`kyoten.alerting.canary_template`), which is why this command lives in the shell and not
in the agent.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path


def rendered_templates() -> dict[str, str]:
    """Every file under ``templates/`` (relative name → text): the templates of each export
    format and, beside them, the bridge's media type and the alert-path canary's template
    for that format."""
    from kyoten.agent.export.templates import VERSIONS, render_all, to_yaml
    from kyoten.alerting import canary_template
    from kyoten.alerting.mediatype import media_type_export

    files = render_all({version: media_type_export(version) for version in VERSIONS})
    for version in VERSIONS:
        files[f"{version}/{canary_template.FILE}"] = to_yaml(
            canary_template.template_export(version)
        )
    return files


def artefacts() -> dict[str, Callable[[], dict[str, str]]]:
    """Generated files by group: relative path (from the repository root) → content."""
    from kyoten.agent.export.docs import render_metrics_doc
    from kyoten.agent.export.userparameters import render_userparameters

    def templates() -> dict[str, str]:
        return {f"templates/{name}": text for name, text in rendered_templates().items()}

    def userparameters() -> dict[str, str]:
        text = render_userparameters()
        return {
            "packaging/zabbix/zabbix_agentd.d/kyoten.conf": text,
            "packaging/zabbix/zabbix_agent2.d/kyoten.conf": text,
        }

    def agent2_plugin() -> dict[str, str]:
        from kyoten.agent.plugin.config import render_plugin_conf

        return {
            "packaging/zabbix/zabbix_agent2.d/plugins.d/kyoten.conf": render_plugin_conf(
                "/usr/bin/kyoten-agent2-plugin", None
            )
        }

    def keytable() -> dict[str, str]:
        from kyoten.agent.export.keytable import render_keytable

        return {"agent/keytable.py": render_keytable()}

    return {
        "templates": templates,
        "userparameters": userparameters,
        "agent2-plugin": agent2_plugin,
        "docs": lambda: {"templates/METRICS.md": render_metrics_doc()},
        "keytable": keytable,
    }


def cmd_export_map(argv: list[str]) -> int:
    """``kyoten export map``: the topology map of a kyoten.toml, as import YAML on stdout."""
    from kyoten.agent.config import load_config
    from kyoten.agent.errors import ConfigError
    from kyoten.agent.export.templates import VERSIONS
    from kyoten.agent.export.topology import MAP_NAME, map_yaml, plan

    p = argparse.ArgumentParser(
        prog="kyoten export map",
        description="Print the live topology map of the targets in kyoten.toml (Zabbix import "
        "YAML): per site its Zabbix server node, Pgpool-II and PostgreSQL server, replication "
        "and Pgpool-to-backend links coloured by their triggers. 'kyoten import --config' "
        "imports it (with the hosts it refers to).",
    )
    p.add_argument("--config", help="kyoten.toml (default: $KYOTEN_CONFIG or /etc/kyoten)")
    p.add_argument("--format", choices=VERSIONS, default="6.0", help="export format (6.0)")
    p.add_argument("--host-prefix", default="", help="prefix of the host names (default none)")
    p.add_argument(
        "--zabbix-node",
        action="append",
        default=[],
        metavar="SITE=NODE",
        help="HANodeName of the Zabbix server at SITE (default: the site's name)",
    )
    p.add_argument("--name", default=MAP_NAME, help=f"map name (default {MAP_NAME!r})")
    args = p.parse_args(argv)
    nodes = dict(_pair(p, v, "--zabbix-node") for v in args.zabbix_node)
    try:
        topo = plan(load_config(args.config), args.host_prefix, nodes=nodes)
    except (ConfigError, ValueError) as exc:
        print(f"kyoten export map: {exc}", file=sys.stderr)
        return 2
    sys.stdout.write(map_yaml(topo, args.format, args.name))
    return 0


def _pair(p: argparse.ArgumentParser, text: str, option: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key or not value:
        p.error(f"{option} takes NAME=VALUE, got {text!r}")
    return key, value


def cmd_export_launcher(argv: list[str]) -> int:
    """``kyoten export launcher``: the ``kyoten-get`` launcher for a virtual environment."""
    from kyoten.agent.export.userparameters import render_launcher

    p = argparse.ArgumentParser(
        prog="kyoten export launcher",
        description="Print bin/kyoten-get for the virtual environment kyoten is installed in: "
        "'kyoten get' for the agent's UserParameters, run with python -IS (no site start-up, "
        "about a third of a poll's CPU). The Debian package installs it; after a pip install, "
        "write it to the environment's bin/ and make it executable.",
    )
    p.add_argument(
        "--python",
        default=sys.executable,
        help="the environment's interpreter, as it will be run (default: this one)",
    )
    args = p.parse_args(argv)
    sys.stdout.write(render_launcher(args.python))
    return 0


def cmd_export(argv: list[str]) -> int:
    if argv[:1] == ["map"]:
        return cmd_export_map(argv[1:])
    if argv[:1] == ["launcher"]:
        return cmd_export_launcher(argv[1:])
    groups = artefacts()
    p = argparse.ArgumentParser(
        prog="kyoten export",
        description="Write the files generated from the metric catalogue (templates, agent "
        "config snippets, METRICS.md, the collector's key table), or with --check fail if the "
        "committed ones differ.",
    )
    p.add_argument(
        "what",
        choices=["all", *groups],
        help="which artefacts ('kyoten export map --help': the topology map of a kyoten.toml; "
        "'kyoten export launcher --help': the UserParameters' kyoten-get)",
    )
    p.add_argument("--root", default=".", help="repository root to write under (default .)")
    p.add_argument("--check", action="store_true", help="compare instead of writing")
    p.add_argument("--stdout", action="store_true", help="print instead of writing")
    p.add_argument(
        "--binary",
        help="kyoten-get launcher or kyoten executable for UserParameters (default "
        "/opt/kyoten/venv/bin/kyoten-get), with --stdout",
    )
    p.add_argument("--config", help="kyoten.toml path for UserParameters, with --stdout")
    args = p.parse_args(argv)
    if args.what == "userparameters" and (args.binary or args.config):
        from kyoten.agent.export.userparameters import DEFAULT_BINARY, render_userparameters

        if not args.stdout:
            p.error(
                "--binary/--config only make sense with --stdout (the committed files "
                "use the packaged paths)"
            )
        sys.stdout.write(render_userparameters(args.binary or DEFAULT_BINARY, args.config))
        return 0
    files: dict[str, str] = {}
    for name in groups if args.what == "all" else [args.what]:
        files.update(groups[name]())
    root = Path(args.root)
    stale = []
    for rel, text in sorted(files.items()):
        path = root / rel
        if args.stdout:
            sys.stdout.write(text)
        elif args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(rel)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
            print(f"wrote {rel}")
    if stale:
        print(
            "kyoten: generated files differ from the catalogue (run 'kyoten export all'):\n  "
            + "\n  ".join(stale),
            file=sys.stderr,
        )
        return 1
    return 0


def main(argv: list[str]) -> int:
    """Dispatch from :mod:`kyoten.shell.cli`: argv[0] is ``export``."""
    return cmd_export(argv[1:])
