"""``kyoten health``: one site's health for a GSLB, from the checks that decide whether the site
can serve Zabbix, not from whether a TCP port is open.

A site is healthy when, all three from that site's own point of view:

* ``zabbix_api`` — the local Zabbix frontend answers ``apiinfo.version`` (it runs PHP and reaches
  its database; an API that answers with an error is not healthy);
* ``pgpool`` — a local Pgpool-II answers on its SQL port and has a primary backend up (what
  the frontend and the server connect through; an answer obtained only through PCP means
  clients are refused, so it does not count);
* ``postgres`` — the local PostgreSQL is reachable and, if it is a primary, no other PostgreSQL
  target of the config is a primary too. Both primaries fail (both sites report 503): which one
  holds the data to keep is an operator's decision, and a GSLB that sends users to either one
  lets them write into a split brain.

``serve`` runs the checks in the background every ``--interval`` seconds, each round bounded by
``--check-timeout``, and answers every request from the latest round at once. A GSLB's probe
therefore never waits on a database (Route 53 allows two seconds for the answer), any number of
probers cost one round per interval, and a round older than ``--max-age`` is itself a failure
(the checker is stuck). ``check`` runs one round and exits 0 (healthy) or 1.

Local means the targets of ``kyoten.toml`` whose ``site`` is the ``--site`` given. This module
is imported only for ``kyoten health``, so ``kyoten get`` never pays for aiohttp.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import sys
import time
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

import aiohttp
from aiohttp import web
from kyoten.agent.collector import Collector
from kyoten.agent.config import DEFAULT_PATH, ENV_VAR, Config, PgpoolTarget, PgTarget, load_config
from kyoten.agent.errors import KyotenError
from kyoten.common.cli import EXIT_FAILED, EXIT_OK, EXIT_USAGE, add_log_level, epilog, setup_logging
from kyoten.common.redact import redact_url

log = logging.getLogger("kyoten.health")
T = TypeVar("T")

CHECKS = ("zabbix_api", "pgpool", "postgres")
DEFAULT_API = "http://127.0.0.1/zabbix/api_jsonrpc.php"  # Debian's zabbix-frontend-php (Apache)
DEFAULT_LISTEN = "127.0.0.1:8090"
MAX_DETAIL = 300  # characters of one check's detail: enough to act on, not a dump


# ----------------------------------------------------------------------------- results
@dataclass(frozen=True)
class Check:
    """The outcome of one check: ``detail`` says what was seen, or why it failed."""

    name: str
    ok: bool
    detail: str
    duration: float = 0.0


@dataclass(frozen=True)
class Report:
    """One round of checks for a site."""

    site: str
    checks: tuple[Check, ...]
    at: float = field(default_factory=time.time)

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.checks if not c.ok]

    @property
    def healthy(self) -> bool:
        return bool(self.checks) and not self.failed

    def line(self) -> str:
        """One line for a GSLB receive string or a log: starts with ``OK`` or ``FAIL``."""
        if self.healthy:
            return f"OK {self.site}: " + ", ".join(f"{c.name} ok" for c in self.checks)
        return f"FAIL {self.site}: " + "; ".join(f"{c.name}: {c.detail}" for c in self.failed)

    def as_json(self, now: float | None = None) -> dict[str, Any]:
        now = time.time() if now is None else now
        return {
            "site": self.site,
            "status": "ok" if self.healthy else "fail",
            "failed": [c.name for c in self.failed],
            "checked_at": round(self.at, 3),
            "age": round(max(now - self.at, 0.0), 3),
            "checks": {
                c.name: {"ok": c.ok, "detail": c.detail, "duration": round(c.duration, 3)}
                for c in self.checks
            },
            "summary": self.line(),
        }


def _short(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_DETAIL else text[: MAX_DETAIL - 1] + "…"


# ----------------------------------------------------------------------------- pure judgements
Snapshot = dict[str, Any]
#: (target name, its kyoten.pg / kyoten.pgpool snapshot, or the error that prevented one)
Outcome = tuple[str, Snapshot | None, str]


def judge_api(status: int, body: bytes) -> tuple[bool, str]:
    """An ``apiinfo.version`` answer: healthy only with a version string as the result."""
    try:
        doc = json.loads(body)
    except ValueError:
        return False, f"HTTP {status}, not a JSON-RPC answer"
    if not isinstance(doc, dict):
        return False, f"HTTP {status}, not a JSON-RPC answer"
    if "result" in doc and isinstance(doc["result"], str) and status == 200:
        return True, f"Zabbix API {doc['result']}"
    err = doc.get("error")
    if isinstance(err, dict):
        # the frontend's message (e.g. its database is down); 'data' may hold SQL: left out
        return False, f"API error: {err.get('message', '')}".rstrip()
    return False, f"HTTP {status}, no version in the answer"


def judge_pgpool(outcomes: Sequence[Outcome]) -> tuple[bool, str]:
    """Healthy when at least one local Pgpool answers over SQL with a primary backend up."""
    notes: list[str] = []
    good = False
    for name, snap, error in outcomes:
        if snap is None:
            notes.append(f"{name}: {error}")
        elif snap.get("via_pcp"):
            notes.append(
                f"{name}: SQL port refuses clients (read through PCP); "
                f"primary {snap.get('primary_backend') or 'none'}"
            )
        elif not snap.get("primary_backend"):
            notes.append(
                f"{name}: no primary backend up "
                f"({snap.get('backends_up', 0)}/{snap.get('backends_total', 0)} backends up)"
            )
        else:
            good = True
            notes.append(
                f"{name}: primary {snap['primary_backend']}, "
                f"{snap.get('backends_up', 0)}/{snap.get('backends_total', 0)} backends up"
            )
    return good, "; ".join(notes) or "no Pgpool-II target for this site"


def _role(snap: Snapshot) -> str:
    return "standby" if snap.get("in_recovery") else "primary"


def judge_postgres(local: Sequence[Outcome], others: Sequence[Outcome]) -> tuple[bool, str]:
    """Healthy when a local server answers and no local primary has a second primary beside it.

    Other sites' servers that cannot be reached are not held against this site: from here a
    partition and a dead remote look the same, and the remote site's own check speaks for it.
    """
    reachable = [(n, s) for n, s, _ in local if s is not None]
    if not reachable:
        return False, "; ".join(f"{n}: {e}" for n, _, e in local) or "no PostgreSQL target"
    primaries = sorted(
        ((n, s) for n, s, _ in (*local, *others) if s is not None and not s["in_recovery"]),
        key=lambda pair: pair[0],
    )
    local_primaries = [n for n, s in reachable if not s["in_recovery"]]
    if local_primaries and len(primaries) > 1:
        shown = ", ".join(f"{n} (timeline {s.get('timeline', '?')})" for n, s in primaries)
        return False, f"two primaries: {shown}; split brain, this site must not take traffic"
    notes = []
    for n, s in reachable:
        extra = (
            f", {s.get('standbys_connected', 0)} standby(s) connected"
            if not s["in_recovery"]
            else f", receiver state {s.get('receiver_state', '?')}"
        )
        notes.append(f"{n} {_role(s)} (timeline {s.get('timeline', '?')}){extra}")
    notes += [f"{n}: {e}" for n, s, e in local if s is None]
    unknown = [n for n, s, _ in others if s is None]
    if unknown:
        notes.append(f"not compared with unreachable {', '.join(unknown)}")
    return True, "; ".join(notes)


# ----------------------------------------------------------------------------- the checker
@dataclass(frozen=True)
class SiteTargets:
    """The targets one site's checks read, chosen from the config by ``site``."""

    site: str
    postgres: tuple[PgTarget, ...]
    others: tuple[PgTarget, ...]
    pgpool: tuple[PgpoolTarget, ...]


def site_targets(config: Config, site: str) -> SiteTargets:
    """This site's PostgreSQL and Pgpool-II targets, and every other site's PostgreSQL."""
    pg = tuple(t for t in config.postgres.values() if t.site == site)
    pools = tuple(t for t in config.pgpool.values() if t.site == site)
    if not pg or not pools:
        sites = sorted(
            {t.site for t in config.postgres.values()} | {t.site for t in config.pgpool.values()}
        )
        missing = " and ".join(
            kind for kind, found in (("[postgres.*]", pg), ("[pgpool.*]", pools)) if not found
        )
        raise KyotenError(
            f"{config.source}: no {missing} target with site = {site!r}; "
            f"sites in the config: {', '.join(s or '(none)' for s in sites) or 'none'}"
        )
    others = tuple(t for t in config.postgres.values() if t.site != site)
    return SiteTargets(site, pg, others, pools)


class Checker:
    """Runs the three checks of one site, each bounded by ``timeout`` seconds.

    The collector is synchronous (psycopg, pcp_* commands); its calls run on a private thread
    pool so that a check that overstays its time is abandoned, not waited for, and the pool is
    dropped without waiting when the checker closes.
    """

    def __init__(
        self,
        config: Config,
        site: str,
        api_url: str,
        *,
        timeout: float = 3.0,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        self.targets = site_targets(config, site)
        self.site = site
        self.api_url = api_url
        self.timeout = timeout
        self.collector = Collector(config)
        self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="kyoten-health")
        self._session = session
        self._own_session = session is None

    async def close(self) -> None:
        self.collector.close()
        self._pool.shutdown(wait=False, cancel_futures=True)
        if self._own_session and self._session is not None:
            await self._session.close()

    async def run(self) -> Report:
        """One round: the three checks concurrently."""
        checks = await asyncio.gather(
            self._timed("zabbix_api", self._api()),
            self._timed("pgpool", self._pgpool()),
            self._timed("postgres", self._postgres()),
        )
        return Report(self.site, tuple(checks))

    async def _timed(self, name: str, job: Any) -> Check:
        start = time.monotonic()
        try:
            ok, detail = await asyncio.wait_for(job, self.timeout)
        except TimeoutError:
            ok, detail = False, f"no answer within {self.timeout:g} s"
        except Exception as exc:  # a check must report, never take the server down
            log.exception("check %s failed unexpectedly", name)
            ok, detail = False, f"internal error: {type(exc).__name__}"
        return Check(name, ok, _short(detail), time.monotonic() - start)

    async def _api(self) -> tuple[bool, str]:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        body = {"jsonrpc": "2.0", "method": "apiinfo.version", "params": {}, "id": 1}
        try:
            async with self._session.post(
                self.api_url,
                json=body,
                headers={"Content-Type": "application/json-rpc"},
                timeout=aiohttp.ClientTimeout(total=self.timeout),
                allow_redirects=False,
            ) as resp:
                raw = await resp.content.read(64 * 1024)
                ok, detail = judge_api(resp.status, raw)
        except TimeoutError:
            ok, detail = False, f"no answer within {self.timeout:g} s"
        except (aiohttp.ClientError, OSError) as exc:
            ok, detail = (
                False,
                f"{type(exc).__name__}: {exc}".replace(self.api_url, redact_url(self.api_url)),
            )
        return ok, detail if ok else f"{redact_url(self.api_url)}: {detail}"

    async def _collect(self, fn: Callable[[T, float], Snapshot], target: T) -> Snapshot:
        deadline = time.monotonic() + self.timeout
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, fn, target, deadline)

    async def _outcomes(
        self, fn: Callable[[Any, float], Snapshot], targets: Sequence[PgTarget | PgpoolTarget]
    ) -> list[Outcome]:
        results = await asyncio.gather(
            *(self._collect(fn, t) for t in targets), return_exceptions=True
        )
        out: list[Outcome] = []
        for t, r in zip(targets, results, strict=True):
            if isinstance(r, BaseException):
                msg = str(r) if isinstance(r, KyotenError) else f"{type(r).__name__}: {r}"
                out.append((t.name, None, msg))
            else:
                out.append((t.name, r, ""))
        return out

    async def _pgpool(self) -> tuple[bool, str]:
        return judge_pgpool(await self._outcomes(self.collector.pgpool, self.targets.pgpool))

    async def _postgres(self) -> tuple[bool, str]:
        local, others = await asyncio.gather(
            self._outcomes(self.collector.postgres, self.targets.postgres),
            self._outcomes(self.collector.postgres, self.targets.others),
        )
        return judge_postgres(local, others)


# ----------------------------------------------------------------------------- the server
@dataclass(frozen=True)
class ServeOptions:
    interval: float = 5.0
    max_age: float = 20.0


@dataclass
class Latest:
    """The last finished round; replaced whole, read by every request."""

    report: Report


def stale(report: Report, max_age: float, now: float) -> Report:
    """The report, or a failing one if the checker has not finished a round for too long."""
    age = now - report.at
    if age <= max_age:
        return report
    check = Check("checker", False, f"last round finished {age:.0f} s ago (limit {max_age:g} s)")
    return Report(report.site, (*report.checks, check), report.at)


def _verdict(report: Report) -> tuple[bool, tuple[str, ...]]:
    return report.healthy, tuple(c.name for c in report.failed)


def _log_report(report: Report) -> None:
    log.log(logging.INFO if report.healthy else logging.WARNING, "%s", report.line())


async def _checks_loop(checker: Checker, latest: Latest, interval: float) -> None:
    """A round every ``interval`` seconds; logs only when the verdict changes."""
    while True:
        await asyncio.sleep(interval)
        report = await checker.run()
        if _verdict(report) != _verdict(latest.report):
            _log_report(report)
        latest.report = report


CHECKER = web.AppKey("checker", Checker)
LATEST = web.AppKey("latest", Latest)


def create_app(checker: Checker, options: ServeOptions) -> web.Application:
    """The endpoint: ``GET /health`` (JSON), ``GET /health.txt`` and ``GET /`` (one line)."""
    app = web.Application()
    app[CHECKER] = checker

    async def checks_ctx(app: web.Application) -> AsyncIterator[None]:
        # the first round before listening: no probe ever sees "no result yet"
        report = await checker.run()
        _log_report(report)
        app[LATEST] = latest = Latest(report)
        task = asyncio.create_task(_checks_loop(checker, latest, options.interval))
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await checker.close()

    def current() -> Report:
        return stale(app[LATEST].report, options.max_age, time.time())

    async def health_json(request: web.Request) -> web.Response:
        report = current()
        return web.json_response(
            report.as_json(),
            status=200 if report.healthy else 503,
            headers={"Cache-Control": "no-store"},
        )

    async def health_text(request: web.Request) -> web.Response:
        report = current()
        return web.Response(
            text=report.line() + "\n",
            status=200 if report.healthy else 503,
            headers={"Cache-Control": "no-store"},
        )

    app.cleanup_ctx.append(checks_ctx)
    app.router.add_get("/health", health_json)
    app.router.add_get("/health.txt", health_text)
    app.router.add_get("/", health_text)
    return app


# ----------------------------------------------------------------------------- CLI
def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[v6]:PORT`` too) → (host, port)."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host.strip("[]") or "0.0.0.0", int(port)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="kyoten health",
        description="One site's health for a GSLB: 200 when the local Zabbix API answers, the "
        "local Pgpool-II reaches a primary and the local PostgreSQL is not a second primary; "
        "503 naming the failed checks otherwise.",
    )
    epilog(p)
    sub = p.add_subparsers(dest="cmd", required=True, metavar="COMMAND")
    for name, help_text in (("serve", "run the HTTP endpoint"), ("check", "run the checks once")):
        s = sub.add_parser(name, help=help_text)
        epilog(s)
        add_log_level(s, "info" if name == "serve" else "warning")
        s.add_argument("--config", help=f"kyoten.toml (default ${ENV_VAR} or {DEFAULT_PATH})")
        s.add_argument("--site", required=True, help="the `site` of this site's targets")
        s.add_argument("--zabbix-api", default=DEFAULT_API, metavar="URL", help="local API URL")
        s.add_argument(
            "--check-timeout",
            type=float,
            default=3.0,
            metavar="S",
            help="time limit of each check (default 3)",
        )
    serve = sub.choices["serve"]
    serve.add_argument("--listen", type=parse_listen, default=DEFAULT_LISTEN, metavar="HOST:PORT")
    serve.add_argument(
        "--interval", type=float, default=5.0, metavar="S", help="seconds between rounds"
    )
    serve.add_argument(
        "--max-age",
        type=float,
        metavar="S",
        help="fail when the last round is older (default: 2 × interval + 2 × check timeout)",
    )
    check = sub.choices["check"]
    check.add_argument("--json", action="store_true", help="print the JSON body, not the line")
    return p


async def _check_once(checker: Checker, as_json: bool) -> int:
    try:
        report = await checker.run()
    finally:
        await checker.close()
    print(json.dumps(report.as_json(), indent=2) if as_json else report.line())
    return EXIT_OK if report.healthy else EXIT_FAILED


def main(argv: Sequence[str]) -> int:
    """Entry point; ``argv[0]`` is ``"health"`` (as dispatched by ``kyoten``)."""
    args = _parser().parse_args(list(argv[1:]))
    setup_logging(args.log_level)
    if args.check_timeout <= 0 or (args.cmd == "serve" and args.interval <= 0):
        print("kyoten health: timeouts and intervals must be positive", file=sys.stderr)
        return EXIT_USAGE
    try:
        config = load_config(args.config)
        site_targets(config, args.site)
    except KyotenError as exc:
        print(f"kyoten health: {exc}", file=sys.stderr)
        return EXIT_USAGE

    def checker() -> Checker:
        return Checker(config, args.site, args.zabbix_api, timeout=args.check_timeout)

    if args.cmd == "check":

        async def once() -> int:
            return await _check_once(checker(), args.json)

        return asyncio.run(once())
    max_age = args.max_age or 2 * args.interval + 2 * args.check_timeout
    host, port = args.listen

    async def build() -> web.Application:
        return create_app(checker(), ServeOptions(args.interval, max_age))

    web.run_app(build(), host=host, port=port, access_log=None, print=None, handle_signals=True)
    return 0
