"""``kyoten bridge …``: run and operate the alert bridge.

* ``serve --config FILE`` — run the HTTP intake and the delivery workers.
* ``send --config FILE name=value …`` — the intake for a Zabbix *script* media type: posts the
  parameters (see :func:`kyoten.alerting.mediatype.script_media_type_argv`) to the running
  bridge; exit 0 only once the bridge has stored the event, non-zero otherwise (Zabbix retries).
* ``replay --config FILE [--channel C] [--id N …] [--list]`` — list dead letters or make them
  pending again; works while the bridge runs (it picks them up on its next poll).
* ``check-config --config FILE [--connect]`` — validate the file and every channel's settings;
  print the channels and routes; with ``--connect`` also reach what the alert-path canary uses.
* ``status --config FILE`` — ask the running bridge for its health and print it for a person:
  the alert path's state and round trip, each channel's last error.
* ``media-type --zabbix 6.0|7.0`` — print the webhook media type export (YAML).

Every subcommand follows :mod:`kyoten.common.cli`: exit 0 done and fine, 1 it ran but what it
checked failed (the event was not stored, the bridge is degraded or unreachable), 2 a usage or
configuration error (every problem of the file listed); ``--log-level`` everywhere.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence

from kyoten.common.cli import EXIT_FAILED, EXIT_OK, EXIT_USAGE, add_log_level, epilog, setup_logging
from kyoten.common.redact import redact_url

from .config import ConfigError, Settings, load_settings


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="kyoten bridge", description="The kyoten alert bridge.")
    epilog(p)
    sub = p.add_subparsers(dest="cmd", required=True, metavar="COMMAND")
    serve = sub.add_parser("serve", help="run the bridge")
    serve.add_argument("--config", required=True)
    add_log_level(serve, "info")
    serve.add_argument(
        "--no-access-log", action="store_true", help="do not log every request (high event rates)"
    )
    send = sub.add_parser("send", help="post one event (script media type)")
    send.add_argument("--config", required=True)
    send.add_argument("--timeout", type=float, default=15.0)
    send.add_argument("params", nargs="*", metavar="NAME=VALUE")
    replay = sub.add_parser("replay", help="list or replay dead letters")
    replay.add_argument("--config", required=True)
    replay.add_argument("--channel")
    replay.add_argument("--id", type=int, action="append", default=[])
    replay.add_argument("--list", action="store_true", help="only list the dead letters")
    check = sub.add_parser("check-config", help="validate the configuration")
    check.add_argument("--config", required=True)
    check.add_argument(
        "--connect",
        action="store_true",
        help="also try the alert-path canary's Zabbix servers, database targets and API",
    )
    status = sub.add_parser("status", help="print a running bridge's health for a person")
    status.add_argument("--config", required=True)
    status.add_argument("--timeout", type=float, default=5.0)
    mt = sub.add_parser("media-type", help="print the Zabbix webhook media type export")
    mt.add_argument("--zabbix", default="6.0", choices=["6.0", "7.0"])
    mt.add_argument("--format", default="yaml", choices=["yaml", "json"])
    for name, command in sub.choices.items():
        epilog(command)
        if name != "serve":
            add_log_level(command)
    return p


def _tune_gil() -> None:
    """Hand the GIL over within 0.2 ms instead of Python's default 5 ms.

    The outbox commits on a thread (SQLite releases the GIL during the fsync); the thread
    needs the GIL back for a moment to return. While the event loop is busy with requests it
    keeps the GIL for the whole switch interval, so with the default every group commit
    could wait up to 5 ms for nothing: intake topped out near 3,500 events/s with a core
    idle (bench/bridge.py).
    """
    sys.setswitchinterval(0.0002)


def _serve(settings: Settings, level: str, access_log: bool) -> int:
    from aiohttp import web

    from .app import create_app

    _tune_gil()
    setup_logging(level)
    web.run_app(
        create_app(settings),
        host=settings.listen_host,
        port=settings.listen_port,
        access_log=logging.getLogger("aiohttp.access") if access_log else None,
        print=None,
        handle_signals=True,
    )
    return 0


def _send(settings: Settings, params: Sequence[str], timeout: float) -> int:
    body: dict[str, str] = {}
    for item in params:
        name, sep, value = item.partition("=")
        if not sep or not name:
            print(f"kyoten bridge send: expected NAME=VALUE, got {item!r}", file=sys.stderr)
            return EXIT_USAGE
        body[name] = value
    req = urllib.request.Request(
        settings.intake_url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {settings.token}"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            answer = json.loads(resp.read() or b"{}")
            print(f"{answer.get('status', 'ok')}: {answer.get('dedup_key', '')}")
            return 0
    except urllib.error.HTTPError as exc:
        try:
            detail = json.loads(exc.read()).get("error", "")
        except ValueError:
            detail = ""
        print(f"kyoten bridge send: HTTP {exc.code} {detail}", file=sys.stderr)
        return EXIT_FAILED
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        print(f"kyoten bridge send: bridge unreachable ({reason})", file=sys.stderr)
        return EXIT_FAILED


async def _replay(
    settings: Settings, channel: str | None, ids: Sequence[int], list_only: bool
) -> int:
    from .outbox import open_outbox

    ob = settings.outbox
    outbox = open_outbox(
        ob.backend,
        path=ob.path,
        synchronous=ob.synchronous,
        conninfo=ob.conninfo,
        node=settings.node,
    )
    await outbox.open()
    try:
        if list_only:
            for d in await outbox.dead_letters(channel, limit=1000):
                if ids and d.id not in ids:
                    continue
                print(
                    f"{d.id}\t{d.channel}\t{d.event_id}\t{d.kind}\t{d.attempts}\t"
                    f"{d.error}\t{d.name}"
                )
            return 0
        n = await outbox.replay(time.time(), channel, ids)
        print(f"{n} dead deliveries made pending again")
        return 0
    finally:
        await outbox.close()


def _status(settings: Settings, timeout: float) -> int:
    """GET /health of the running bridge; 0 when everything is fine, 1 otherwise."""
    url = settings.intake_url.rsplit("/v1/events", 1)[0] + "/health"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            body = json.loads(resp.read())
    except urllib.error.HTTPError as exc:  # 503: degraded, the body still says why
        body = json.loads(exc.read() or b"{}")
    except (urllib.error.URLError, OSError, ValueError) as exc:
        print(f"kyoten bridge status: cannot reach {url}: {exc}", file=sys.stderr)
        return EXIT_FAILED
    print(f"bridge {body.get('node', settings.node)}: {body.get('status')}")
    canary = body.get("canary")
    if canary:
        rtt = canary.get("last_round_trip_s")
        print(
            f"alert path: {canary['state']}"
            + (f" - {canary['reason']}" if canary.get("reason") else "")
        )
        print(
            f"  canary every {canary['interval_s']:g} s, deadline {canary['deadline_s']:g} s; "
            f"last round trip {'-' if rtt is None else f'{rtt:.2f} s'}, "
            f"p50/p99 over the last hour {_secs(canary.get('round_trip_p50_s'))}/"
            f"{_secs(canary.get('round_trip_p99_s'))} ({canary['round_trips_last_hour']} rounds)"
        )
    else:
        print("alert path: not watched (no 'canary:' section in the bridge config)")
    for name, ch in sorted((body.get("channels") or {}).items()):
        state = ch.get("state", "?") if isinstance(ch, dict) else ch
        err = ch.get("last_error") if isinstance(ch, dict) else None
        pending = ch.get("pending", 0) if isinstance(ch, dict) else 0
        print(
            f"  channel {name}: {state}, {pending} pending"
            + (f" - last error: {err}" if err else "")
        )
    ok = body.get("status") == "ok" and (not canary or canary["state"] != "broken")
    return EXIT_OK if ok else EXIT_FAILED


def _secs(value: object) -> str:
    return "-" if value is None else f"{float(str(value)):.2f} s"


async def _check(settings: Settings, connect: bool = False) -> int:
    import aiohttp

    from .channels import load_builder
    from .channels.base import ChannelResources

    errors: list[str] = []
    async with aiohttp.ClientSession() as session:
        res = ChannelResources(session, logging.getLogger("kyoten.alerting.check"))
        for c in settings.channels:
            try:
                ch = load_builder(c.type)(c.name, c.settings, res)
                await ch.aclose()
            except ConfigError as exc:
                errors.extend(exc.errors)

    async def discard(_: object) -> None:  # --connect only looks: nothing is accepted
        return None

    if connect and settings.canary is not None:
        from .canary_loop import CanaryLoop

        errors.extend(await CanaryLoop(settings.canary, discard, node=settings.node).probe())
    if connect and settings.reconcile is not None:
        from .channels.base import OpenProblem
        from .reconcile_loop import ReconcileLoop

        async def nothing_open() -> list[OpenProblem]:
            return []

        errors.extend(await ReconcileLoop(settings.reconcile, discard, nothing_open).probe())
    if errors:
        print("invalid bridge configuration:\n  " + "\n  ".join(errors), file=sys.stderr)
        return EXIT_USAGE
    print(
        f"listen {settings.listen_host}:{settings.listen_port}, outbox "
        f"{settings.outbox.backend}, node {settings.node}"
    )
    for c in settings.channels:
        print(
            f"channel {c.name}: {c.type}, rate {c.rate or 'unlimited'}/s, "
            f"{len(c.mute)} mute window(s), digest above {c.digest.threshold or 'never'}"
        )
    if settings.canary is not None:
        cn = settings.canary
        print(
            f"canary: {cn.host}/{cn.key} on {', '.join(cn.servers)} every {cn.interval:g} s, "
            f"broken after {cn.deadline:g} s, own alert {cn.severity.label}"
        )
    else:
        print("canary: none (Zabbix's own alert path is not watched)")
    if settings.reconcile is not None:
        rc = settings.reconcile
        print(
            f"reconcile: open problems checked against {redact_url(rc.api_url)} every "
            f"{rc.interval:g} s (left alone for {rc.grace:g} s)"
        )
    for i, r in enumerate(settings.routes):
        print(
            f"route {i}: severity {r.min_severity.label}..{r.max_severity.label}, "
            f"tags {dict(r.tags)}, groups {list(r.host_groups)} -> {', '.join(r.channels)}"
            + (" (continue)" if r.cont else "")
        )
    return 0


def main(argv: Sequence[str]) -> int:
    """Entry point; ``argv[0]`` is ``"bridge"`` (as dispatched by ``kyoten``)."""
    args = _parser().parse_args(list(argv[1:]))
    if args.cmd != "serve":
        setup_logging(args.log_level)
    if args.cmd == "media-type":
        from .mediatype import media_type_export

        doc = media_type_export(args.zabbix)
        if args.format == "json":
            print(json.dumps(doc, indent=2, ensure_ascii=False))
        else:
            import yaml

            print(yaml.safe_dump(doc, sort_keys=False, allow_unicode=True), end="")
        return 0
    try:
        settings = load_settings(args.config)
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        return EXIT_USAGE
    if args.cmd == "serve":
        return _serve(settings, args.log_level, not args.no_access_log)
    if args.cmd == "send":
        return _send(settings, args.params, args.timeout)
    if args.cmd == "replay":
        return asyncio.run(_replay(settings, args.channel, args.id, args.list))
    if args.cmd == "status":
        return _status(settings, args.timeout)
    return asyncio.run(_check(settings, args.connect))
