"""The alert-path canary, I/O part: send tokens, run the direct checks, raise the own alert.

All judgement is in :mod:`.canary` (pure); this module only does what needs the network, a
database or the clock, once per ``interval``:

* sends a fresh token with ``zabbix_utils``' ``AsyncSender`` to every listed server node as one
  HA cluster (a standby node refuses the connection and the next is tried; the node that took
  it is tried first next time);
* reads ``ha_node`` (and, if named, whether the Zabbix database is in recovery) through the
  collector's own code (:class:`kyoten.agent.collector.Collector`) on the targets of a
  ``kyoten.toml``, in a worker thread because psycopg blocks;
* asks the frontend API for ``apiinfo.version``;
* hands the verdict to :func:`.canary.own_alert` and accepts the resulting events through the
  pipeline like any Zabbix event, so the bridge's own alert is routed, retried, threaded and
  shown on towers like every other.

The intake calls :meth:`CanaryLoop.received` for each canary event; once a token came back it
sends ``0`` so the canary's problem in Zabbix closes again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol, runtime_checkable

import aiohttp
import orjson
from kyoten.common.redact import Redactor, redact_url
from prometheus_client import CollectorRegistry, Gauge, Histogram

from .canary import (
    OWN_ID_PREFIX,
    CanaryMonitor,
    Checks,
    OwnAlert,
    PathState,
    Verdict,
    own_alert,
    parse_ha,
    summary,
    verdict,
)
from .config import CanaryConfig
from .events import Event, Kind

log = logging.getLogger("kyoten.alerting.canary")
# the sender logs every unreachable cluster at ERROR; the verdict reports it once, with its cause
logging.getLogger("zabbix_utils.aiosender").setLevel(logging.CRITICAL)

Accept = Callable[[Event], Awaitable[Any]]


@runtime_checkable
class CanaryStore(Protocol):
    """What bridges that share one outbox share about the canary.

    Zabbix posts every canary to the one bridge URL it knows, so with two bridges a token often
    comes back to the *other* bridge: receipts go through the shared store, and each bridge
    collects its own from there. The own alert is shared the same way: a bridge that finds one
    already open joins it instead of raising a second.
    """

    async def record_canary(self, token: str, at: float, node: str) -> None:
        """A canary event with ``token`` reached this bridge at ``at``."""

    async def canary_receipts(self, tokens: Sequence[str]) -> dict[str, float]:
        """When each of ``tokens`` reached any bridge (tokens not yet seen are left out)."""

    async def claim_own_alert(self, proposed: str, at: float) -> str:
        """The own alert's id for every bridge: the one already open, or ``proposed``."""

    async def release_own_alert(self, event_id: str, at: float) -> None:
        """The own alert ``event_id`` is resolved."""


class CanaryLoop:
    """One bridge's canary: its monitor, its verdict and its own open alert."""

    def __init__(
        self,
        cfg: CanaryConfig,
        accept: Accept,
        *,
        node: str,
        clock: Callable[[], float] = time.time,
        registry: CollectorRegistry | None = None,
        store: CanaryStore | None = None,
        redact: Callable[[str], str] | None = None,
        spool: Callable[[], Awaitable[Accept]] | None = None,
    ) -> None:
        self.cfg = cfg
        self.accept = accept
        self.store = store
        self.redact = redact or Redactor(())  # at least password-looking fragments
        self.not_stored = ""  # why the last own-alert event could not be stored (retried)
        self.spool = spool  # opens the local spool (a SQLite outbox and its own pipeline)
        self.spooled = ""  # why the current own alert lives in the spool ("" = it does not)
        self._spool_accept: Accept | None = None
        self.node = node
        self.clock = clock
        self.monitor = CanaryMonitor(cfg.interval, cfg.deadline, started=clock())
        self.verdict = Verdict(PathState.STARTING)
        self.checks = Checks()
        self.alert: OwnAlert | None = None
        self._task: asyncio.Task[None] | None = None
        self._sender: Any = None
        self._collector: Any = None
        self._session: aiohttp.ClientSession | None = None
        self._last_token = 0
        self._lock = asyncio.Lock()
        reg = registry or CollectorRegistry()
        self._g_state = Gauge(
            "kyoten_alert_path_ok",
            "1 while canaries come back through Zabbix, 0 when the path is broken, -1 starting",
            registry=reg,
        )
        self._g_state.set(-1)
        self._g_rtt = Gauge(
            "kyoten_canary_round_trip_seconds", "last canary round trip (send to intake)",
            registry=reg,
        )  # fmt: skip
        self._h_rtt = Histogram(
            "kyoten_canary_round_trip_duration_seconds",
            "canary round trips: token sent to the trapper until its problem reached the intake",
            buckets=(0.5, 1, 2, 3, 5, 10, 20, 30, 60, 120, 300),
            registry=reg,
        )

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        """Start the rounds (the first one at once)."""
        from zabbix_utils import AsyncSender

        self._sender = AsyncSender(clusters=[list(self.cfg.servers)], timeout=self.cfg.timeout)
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.cfg.timeout))
        self._task = asyncio.create_task(self._run(), name="kyoten-canary")

    async def stop(self) -> None:
        """Stop the rounds; the own alert stays as it is in the outbox."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._session is not None:
            await self._session.close()
        if self._collector is not None:
            self._collector.close()

    async def probe(self) -> list[str]:
        """One pass of every check, for ``kyoten bridge check-config --connect``: each problem
        found, with its fix, so a wrong address or a missing host shows before 3 a.m."""
        from zabbix_utils import AsyncSender

        self._sender = AsyncSender(clusters=[list(self.cfg.servers)], timeout=self.cfg.timeout)
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.cfg.timeout))
        problems: list[str] = []
        try:
            sent = await self._send(0)  # 0 keeps the canary's trigger calm
            if sent:
                problems.append(f"canary.servers: {sent}")
            ha, read_only = await self._ha()
            if isinstance(ha, str):
                problems.append(
                    f"canary.zabbix_target/postgres_target: {ha} (check the target in "
                    f"{self.cfg.kyoten_config} with 'kyoten check-config --connect')"
                )
            elif ha is not None and not ha:
                problems.append(
                    f"canary.zabbix_target: ha_node is empty: is {self.cfg.zabbix_target} the "
                    "Zabbix database, and do the servers run with HANodeName set?"
                )
            if read_only:
                problems.append("canary.postgres_target: the Zabbix database is in recovery")
            api = await self._api()
            if api:
                problems.append(f"canary.api_url: {api} (the frontend's api_jsonrpc.php URL)")
        finally:
            await self.stop()
        return problems

    # ------------------------------------------------------------------ rounds
    async def _run(self) -> None:
        # A token goes out every interval, but the verdict is taken several times per interval:
        # the deadline runs from the last canary that came back, so judging only at the rounds
        # would add up to one interval to the detection time.
        tick = min(self.cfg.interval / 5, 1.0)
        next_round = self.clock()
        while True:
            try:
                if self.clock() >= next_round:
                    next_round = self.clock() + self.cfg.interval
                    await self.round()
                else:
                    await self._judge()
            except Exception:  # one bad round must not end the watch
                log.exception("canary round failed")
            await asyncio.sleep(max(min(tick, next_round - self.clock()), 0.05))

    async def round(self) -> None:
        """Send a token, run the direct checks, then judge."""
        token = self._next_token()
        sender_error = await self._send(token)
        self.monitor.note_sent(str(token), self.clock())
        ha, read_only = await self._ha()
        api = await self._api()
        self.checks = Checks(sender=sender_error, ha=ha, ha_read_only=read_only, api=api)
        await self._judge()

    def _next_token(self) -> int:
        # milliseconds since the epoch, strictly increasing: unique across restarts, and a
        # positive value is what fires the canary trigger (0 resolves it)
        self._last_token = max(int(self.clock() * 1000), self._last_token + 1)
        return self._last_token

    async def _send(self, value: int) -> str:
        """ "" when a server node took the value, else why none did (never raises)."""
        from zabbix_utils.exceptions import ProcessingError

        try:
            # the reply has no timeout in AsyncSender: a peer that accepts and never answers
            # would hang the round
            resp = await asyncio.wait_for(
                self._sender.send_value(self.cfg.host, self.cfg.key, value),
                self.cfg.timeout + 1,
            )
        except (ProcessingError, OSError, TimeoutError) as exc:
            text = str(exc) or type(exc).__name__
            return text.replace("Couldn't connect to all of cluster nodes", "no node answered")
        if resp.failed:
            return (
                f"a server node refused the value ({resp.failed} failed): is host "
                f"'{self.cfg.host}' with the trapper item '{self.cfg.key}' there (kyoten import "
                f"--canary), and is this bridge allowed by {{$KYOTEN.CANARY.ALLOWED_HOSTS}}?"
            )
        return ""

    async def _ha(self) -> tuple[Any, bool]:
        if not (self.cfg.kyoten_config and (self.cfg.zabbix_target or self.cfg.postgres_target)):
            return None, False
        return await asyncio.get_running_loop().run_in_executor(None, self._ha_blocking)

    def _ha_blocking(self) -> tuple[Any, bool]:
        from kyoten.agent.collector import Collector
        from kyoten.agent.config import load_config
        from kyoten.agent.errors import KyotenError

        try:
            if self._collector is None:
                self._collector = Collector(load_config(self.cfg.kyoten_config), persistent=True)
            ha: Any = None
            if self.cfg.zabbix_target:
                ha = parse_ha(
                    orjson.loads(self._collector.get("kyoten.zabbix.ha", [self.cfg.zabbix_target]))
                )
            read_only = False
            if self.cfg.postgres_target:
                pg = orjson.loads(self._collector.get("kyoten.pg", [self.cfg.postgres_target]))
                read_only = bool(pg.get("in_recovery"))
            return ha, read_only
        except KyotenError as exc:
            return str(exc), False

    async def _api(self) -> str | None:
        if not self.cfg.api_url or self._session is None:
            return None
        body = {"jsonrpc": "2.0", "method": "apiinfo.version", "params": {}, "id": 1}
        try:
            async with self._session.post(
                self.cfg.api_url, json=body, headers={"Content-Type": "application/json-rpc"}
            ) as resp:
                doc = await resp.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            return f"{redact_url(self.cfg.api_url)}: {type(exc).__name__}: {exc}"
        if isinstance(doc, dict) and isinstance(doc.get("result"), str):
            return ""
        return f"{redact_url(self.cfg.api_url)} answered without a version"

    async def _collect(self) -> None:
        """Receipts of this bridge's tokens that reached another bridge sharing the store.

        A store that does not answer is the likely root cause of a broken path, so its failure
        only means no receipts this tick: the verdict must still be taken.
        """
        if self.store is None or not self.monitor.sent:
            return
        try:
            receipts = await self.store.canary_receipts(list(self.monitor.sent))
        except Exception as exc:
            log.debug("canary receipts unavailable: %s", self.redact(str(exc)))
            return
        matched = [token for token, at in receipts.items() if self._matched(token, at)]
        if matched:
            await self._send(0)  # close the canary's problem in Zabbix

    async def _joined(self) -> str | None:
        if self.alert is not None or self.verdict.state is not PathState.BROKEN or not self.store:
            return None
        proposed = f"{OWN_ID_PREFIX}{self.node}-{int(self.clock())}"
        try:
            return await self.store.claim_own_alert(proposed, self.clock())
        except Exception:  # no shared store now: raise our own (it goes to the spool)
            return None

    async def _judge(self) -> None:
        async with self._lock:
            await self._collect()
            self.verdict = verdict(self.monitor, self.checks, self.clock())
            self._g_state.set({PathState.OK: 1, PathState.BROKEN: 0}.get(self.verdict.state, -1))
            alert, events = own_alert(
                self.alert,
                self.verdict,
                self.clock(),
                node=self.node,
                severity=self.cfg.severity,
                joined=await self._joined(),
            )
            try:
                for event in events:
                    log.warning("alert path %s: %s", self.verdict.state.value, event.name)
                    await self._deliver(event)
            except Exception as exc:  # neither store took it: keep the state, retry next tick
                self.not_stored = self.redact(f"{type(exc).__name__}: {exc}")
                log.error("alert path %s, not stored yet: %s", self.verdict.state, self.not_stored)
                return
            self.not_stored = ""
            resolved = self.alert if alert is None else None
            self.alert = alert
            if resolved is not None:  # the next incident tries the shared outbox first
                self.spooled = ""
                if self.store is not None:
                    with contextlib.suppress(Exception):  # the next claim finds it open: joins
                        await self.store.release_own_alert(resolved.event_id, self.clock())

    async def _deliver(self, event: Event) -> None:
        """Into the outbox; if it refuses (the shared PostgreSQL is down, the likely cause of a
        broken path), into the local spool, and the rest of this alert's life goes there too
        so its thread stays whole."""
        if not self.spooled:
            try:
                await self.accept(event)
                return
            except Exception as exc:
                if self.spool is None:
                    raise
                self.spooled = self.redact(f"{type(exc).__name__}: {exc}")
                log.error("outbox refused the own alert, using the local spool: %s", self.spooled)
        if self._spool_accept is None:
            assert self.spool is not None
            self._spool_accept = await self.spool()
        await self._spool_accept(event)

    # ------------------------------------------------------------------ intake
    async def received(self, token: str, kind: Kind) -> None:
        """A canary event arrived at the intake: match it, close the canary's problem, and
        resolve the own alert at once if it was open."""
        if kind is not Kind.PROBLEM:  # its recovery, or an update: proves nothing more
            self.monitor.received += 1
            return
        now = self.clock()
        if self.store is not None:
            await self.store.record_canary(token, now, self.node)
        if not self._matched(token, now):
            return
        if self.verdict.state is not PathState.OK:  # the verdict first: /health says ok as
            await self._judge()  # soon as the round trip is known, then the canary is closed
        await self._send(0)

    def _matched(self, token: str, at: float) -> bool:
        """Note that ``token`` came back at ``at``; the caller closes the canary's problem."""
        rtt = self.monitor.note_received(token, Kind.PROBLEM, at)
        if rtt is None:
            return False
        log.info("canary %s came back in %.2f s", token, rtt)
        self._g_rtt.set(rtt)
        self._h_rtt.observe(rtt)
        return True

    def health(self) -> dict[str, object]:
        """The canary's part of ``/health``."""
        out = summary(self.monitor, self.verdict, self.clock())
        out["own_alert"] = self.alert.event_id if self.alert else None
        out["own_alert_not_stored"] = self.not_stored or None
        out["own_alert_spooled"] = self.spooled or None
        return out
