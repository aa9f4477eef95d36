"""Reconciling open problems with Zabbix, the I/O part: read the outbox, ask the API, accept.

All judgement is in :mod:`.reconcile` (pure). Every ``interval`` this loop reads the problems
the outbox holds open on any channel, asks the Zabbix API with ``problem.get`` (zabbix_utils'
``AsyncZabbixAPI``, as the read-only user of the configured token) which of them are still open,
and accepts a synthetic recovery for each of the others through the pipeline, routed only to
where its problem went.

* A batch the API did not answer closes nothing, and ``/health`` shows why (``reconcile``),
  the token redacted; the next round tries again with a fresh client.
* ``problem.get`` answers for one event source and object at a time (trigger events by
  default), so an id missing from the trigger answer is asked again as an internal and as a
  service event before it is judged gone.
* As in :mod:`.slack_actions`: the client uses the bridge's own session (zabbix_utils closes its
  internal one on any API error), is built in a worker thread (its constructor does blocking
  I/O), and zabbix_utils' loggers stay above DEBUG, where they would log the token.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any

import aiohttp
from kyoten.common.redact import Redactor
from prometheus_client import CollectorRegistry, Counter

from . import reconcile
from .channels.base import OpenProblem
from .config import ReconcileConfig
from .events import Event
from .zabbix_api import logged_in

log = logging.getLogger("kyoten.alerting.reconcile")
for _name in ("zabbix_utils", "zabbix_utils.aioapi", "zabbix_utils.api"):
    logging.getLogger(_name).setLevel(logging.INFO)

#: ``problem.get`` (source, object) pairs asked, in order: trigger events, internal events of
#: triggers, items and LLD rules, service events (Zabbix refuses any other pairing).
SOURCES = ((0, 0), (3, 0), (3, 4), (3, 5), (4, 6))

Accept = Callable[[Event], Awaitable[Any]]
OpenProblems = Callable[[], Awaitable[Iterable[OpenProblem]]]


class ReconcileLoop:
    """Every ``interval``: close the open problems Zabbix no longer has open."""

    def __init__(
        self,
        cfg: ReconcileConfig,
        accept: Accept,
        open_problems: OpenProblems,
        *,
        clock: Callable[[], float] = time.time,
        registry: CollectorRegistry | None = None,
        redact: Callable[[str], str] | None = None,
    ) -> None:
        self.cfg = cfg
        self.accept = accept
        self.open_problems = open_problems
        self.clock = clock
        base, own = redact or Redactor(()), Redactor((cfg.token,))  # the token, whatever
        self.redact: Callable[[str], str] = lambda text: own(base(text))  # the caller knows
        self.last_run: float | None = None
        self.last_ok: float | None = None
        self.last_error = ""
        self.last_checked = 0
        self.last_closed: list[str] = []
        self.unseen_hosts: list[str] = []
        self.reconciled = 0
        self._api: Any = None
        self._session: aiohttp.ClientSession | None = None
        self._task: asyncio.Task[None] | None = None
        self._c_closed = Counter(
            "kyoten_bridge_reconciled",
            "open problems closed because Zabbix no longer had them open (a synthetic recovery)",
            registry=registry or CollectorRegistry(),
        )

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        """Start the rounds (the first one after one interval: at start-up the intake is
        busy with what Zabbix retried while the bridge was away)."""
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.cfg.timeout))
        self._task = asyncio.create_task(self._run(), name="kyoten-reconcile")

    async def stop(self) -> None:
        """Stop the rounds."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._session is not None:
            await self._session.close()

    async def probe(self) -> list[str]:
        """One ``problem.get`` as the configured user, for ``kyoten bridge check-config
        --connect``: a wrong URL or a refused token shows before a problem stays open."""
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.cfg.timeout))
        try:
            await self._still_open(["0"])
        except Exception as exc:
            return [f"reconcile: {self.redact(f'{type(exc).__name__}: {exc}')} (api_url: the "
                    "frontend's api_jsonrpc.php; token: an API token Zabbix accepts)"]  # fmt: skip
        finally:
            await self.stop()
        return []

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.cfg.interval)
            try:
                await self.round()
            except Exception:  # one bad round must not end the loop
                log.exception("reconcile round failed")

    # ------------------------------------------------------------------ one round
    async def round(self) -> list[str]:
        """One reconciliation; the event ids closed (none when the API failed)."""
        now = self.clock()
        self.last_run = now
        asked = reconcile.judged(await self.open_problems(), now, self.cfg.grace)
        self.last_checked = len(asked)
        self.unseen_hosts = []
        closed: list[str] = []
        try:
            for batch in reconcile.batches([p.event_id for p in asked]):
                still = await self._still_open(batch)
                ids = set(batch)
                wanted = [p for p in asked if p.event_id in ids]
                candidates = reconcile.to_close(wanted, still)
                if not candidates:
                    continue
                shown = await self._visible_hosts({p.host for p in candidates})
                closing, unseen = reconcile.visible(candidates, shown)
                self.unseen_hosts = sorted(set(self.unseen_hosts) | set(unseen))
                for problem in closing:
                    await self.accept(reconcile.recovery(problem, self.clock()))
                    closed.append(problem.event_id)
                    self.reconciled += 1
                    self._c_closed.inc()
                    log.warning(
                        "closed problem %s (%s on %s): %s",
                        problem.event_id, problem.name, problem.host, reconcile.MESSAGE,
                    )  # fmt: skip
        except Exception as exc:
            self.last_error = self.redact(f"{type(exc).__name__}: {exc}")
            self._api = None  # a fresh client (and login) next round
            log.error("reconcile: %s", self.last_error)
            return closed
        finally:
            if closed:
                self.last_closed = closed
        self.last_error = ""
        self.last_ok = now
        return closed

    async def _still_open(self, ids: Sequence[str]) -> set[str]:
        """Which of ``ids`` Zabbix has open now, whatever their event source (raises when the
        API does not answer: then nothing may be judged)."""
        api = await self._client()
        still: set[str] = set()
        for source, kind in SOURCES:
            missing = [i for i in ids if i not in still]
            if not missing:
                break
            found = await api.problem.get(
                eventids=missing, source=source, object=kind, output=["eventid"], recent=False
            )
            still.update(str(p["eventid"]) for p in found)
        return still

    async def _visible_hosts(self, names: set[str]) -> set[str]:
        """Which of these host names (``{HOST.NAME}``) the API shows this token."""
        api = await self._client()
        found = await api.host.get(filter={"name": sorted(names)}, output=["name"])
        return {str(h["name"]) for h in found}

    async def _client(self) -> Any:
        if self._api is None:
            assert self._session is not None, "start() first"
            self._api = await logged_in(
                self.cfg.api_url,
                self._session,
                self.cfg.token,
                verify=self.cfg.verify_certs,
                timeout=self.cfg.timeout,
            )
        return self._api

    def health(self) -> dict[str, object]:
        """The reconciliation's part of ``/health`` (never the token)."""
        return {
            "interval_s": self.cfg.interval,
            "grace_s": self.cfg.grace,
            "last_run_at": self.last_run,
            "last_ok_at": self.last_ok,
            "last_error": self.last_error or None,
            "last_checked": self.last_checked,
            "last_closed": self.last_closed,
            # problems on these hosts look closed but the token cannot read the host: kept open
            "unseen_hosts": self.unseen_hosts or None,
            "reconciled_total": self.reconciled,
        }
