"""The pipeline: the one place for every rule that cuts across channels.

``accept`` routes an event (pure :func:`~kyoten.alerting.routing.route`) and commits it to the
outbox; one *lane* per configured channel then drains that channel's deliveries:

* **order** — per event and channel, problem → updates → recovery, whatever order Zabbix's
  independent retries delivered them in: the outbox only hands out a delivery none of whose
  event's deliveries on the channel that come before it is pending, so an update or recovery
  never overtakes its problem, even while the problem is backing off; a follow-up that arrived
  before its problem waits up to ``follow_up_wait`` seconds for it, then goes alone;
* **retry** — exponential backoff with full jitter (``random() * min(cap, base * 2**n)``),
  never shorter than a ``Retry-After`` the far end gave; a retryable failure also pauses the lane
  briefly (a light circuit breaker) so a dead SMTP server is not hammered once per message;
* **classification** — the channel says retryable or not; not retryable, too many attempts or too
  old → dead letter (``kyoten bridge replay`` brings it back);
* **rate limit** — a token bucket per channel (``rate``/``burst``; Slack ≈ 1 message/s/channel),
  shared by the bridges of a PostgreSQL outbox (``Outbox.pace``);
* **mute windows** — deliveries due inside a window are recorded as muted, not sent (state
  channels still get their snapshot, flagged ``muted``);
* **digest** — when more than ``digest.threshold`` events were routed to a channel within
  ``digest.window`` seconds (a storm), the channel sends one digest of the pending ones at most
  every ``digest.interval`` seconds instead of a message per event;
* **state channels** — get the full set of open problems routed to them, on every change, at
  start-up (rebuilding a tower after a restart), every ``reassert`` seconds, and at the time the
  channel's last ``apply`` returned (when what it shows changes by itself, e.g. a tower's buzzer
  falling silent after ``silence_after``): the state lane owns that time, so a state channel keeps
  no timer. A failed ``apply`` takes the event channels' outcome path — the pending deliveries
  retry with backoff or go dead by classification, ``last_error`` and the metrics show it — and a
  failed re-assert or timed apply is retried after the same backoff (counted in failed applies in
  a row, never later than the next re-assert). A channel that reads its device back
  (:class:`~kyoten.alerting.channels.base.Drifting`) has its ``drifts`` in ``/health`` and in
  ``kyoten_bridge_drifts_total``.

Channels only send; see :mod:`kyoten.alerting.channels.base`.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import datetime as dt
import logging
import random
import time
import zoneinfo
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kyoten.common.redact import Redactor
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from . import grouping
from .channels.base import (
    Channel,
    ChannelError,
    Drifting,
    EventChannel,
    Notification,
    StateChannel,
    StateSnapshot,
)
from .config import ChannelConfig, RetryPolicy, Settings
from .events import Event, Kind
from .outbox import Accepted, Claimed, Dead, Done, Muted, Outbox, Outcome, Retry
from .routing import route

log = logging.getLogger("kyoten.alerting.pipeline")

#: A send that takes longer than this is abandoned and retried.
SEND_TIMEOUT = 60.0
#: Longest pause of a whole lane after a retryable failure.
LANE_PAUSE_CAP = 10.0
#: Deliveries claimed at once by a channel that groups events (one message per incident).
GROUP_CLAIM = 50


def backoff(attempt: int, policy: RetryPolicy, rng: Callable[[], float]) -> float:
    """Full-jitter exponential backoff for the ``attempt``-th failure (1-based)."""
    return rng() * min(policy.cap, policy.base * 2.0 ** max(0, attempt - 1))


class TokenBucket:
    """``rate`` tokens per second, at most ``burst`` saved; ``rate <= 0`` means unlimited."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float]) -> None:
        self.rate = rate
        self.burst = max(1, burst)
        self.clock = clock
        self.tokens = float(self.burst)
        self.stamp = clock()

    def delay(self) -> float:
        """Take a token; return how long to wait before using it."""
        if self.rate <= 0:
            return 0.0
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        self.tokens -= 1.0
        return 0.0 if self.tokens >= 0 else -self.tokens / self.rate


@dataclass
class Lane:
    """In-memory state of one channel's worker (the durable state is in the outbox)."""

    cfg: ChannelConfig
    channel: Channel
    bucket: TokenBucket
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    paused_until: float = 0.0
    recent: collections.deque[float] = field(default_factory=collections.deque)  # arrivals
    last_error: str = ""
    last_error_at: float | None = None
    last_ok_at: float | None = None
    next_reassert: float = 0.0
    next_change: float | None = None  # state channels: when the last apply said it changes
    failures: int = 0  # state channels: failed applies in a row (the backoff's attempt)
    drifts_seen: int = 0  # state channels: the channel's ``drifts`` already counted
    hold_until: float = 0.0  # storm: no digest before this
    last_digest_at: float = 0.0
    #: grouping (``group:``): the incidents of this channel, by group key (memory only)
    incidents: dict[str, grouping.Incident] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.cfg.name

    @property
    def next_apply(self) -> float:
        """State channels: when ``apply`` is due without an event (re-assert or own change)."""
        if self.next_change is None:
            return self.next_reassert
        return min(self.next_reassert, self.next_change)

    def storm_level(self, now: float) -> int:
        """Events routed to this channel in the digest window (by this bridge)."""
        horizon = now - self.cfg.digest.window
        while self.recent and self.recent[0] < horizon:
            self.recent.popleft()
        return len(self.recent)


class Metrics:
    """The bridge's Prometheus metrics, in a registry of their own (one per app)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.accepted = Counter(
            "kyoten_bridge_events_accepted",
            "Events accepted and stored",
            ["kind"],
            registry=registry,
        )
        self.duplicates = Counter(
            "kyoten_bridge_events_duplicate", "Retries of already stored events", registry=registry
        )
        self.rejected = Counter(
            "kyoten_bridge_requests_rejected", "Requests refused", ["reason"], registry=registry
        )
        self.deliveries = Counter(
            "kyoten_bridge_deliveries",
            "Delivery attempts by outcome",
            ["channel", "outcome"],
            registry=registry,
        )
        self.latency = Histogram(
            "kyoten_bridge_delivery_latency_seconds",
            "From accept to delivered",
            ["channel"],
            registry=registry,
            buckets=(0.01, 0.05, 0.1, 0.5, 1, 5, 30, 60, 300, 1800, 3600),
        )
        self.pending = Gauge(
            "kyoten_bridge_pending", "Deliveries waiting", ["channel"], registry=registry
        )
        self.oldest = Gauge(
            "kyoten_bridge_oldest_pending_seconds",
            "Age of the oldest waiting delivery",
            ["channel"],
            registry=registry,
        )
        self.dead = Gauge(
            "kyoten_bridge_dead_letters", "Deliveries given up", ["channel"], registry=registry
        )
        self.open = Gauge(
            "kyoten_bridge_open_problems",
            "Open problems routed to a channel",
            ["channel"],
            registry=registry,
        )
        self.up = Gauge(
            "kyoten_bridge_channel_failing",
            "1 when the channel's last attempt failed",
            ["channel"],
            registry=registry,
        )
        self.drifts = Counter(
            "kyoten_bridge_drifts",
            "Read-backs of a state channel's device showing something else than the channel "
            "had made it show (power-cycled or changed by another client)",
            ["channel"],
            registry=registry,
        )


class Pipeline:
    """Routes, stores and delivers; see the module docstring."""

    def __init__(
        self,
        settings: Settings,
        outbox: Outbox,
        channels: Mapping[str, Channel],
        *,
        clock: Callable[[], float] = time.time,
        rng: Callable[[], float] = random.random,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.settings = settings
        self.outbox = outbox
        self.clock = clock
        self.rng = rng
        self.metrics = Metrics(registry or CollectorRegistry())
        self._redactor = Redactor(settings.secrets())
        self._tz = zoneinfo.ZoneInfo(settings.timezone)
        self.lanes = {
            name: Lane(
                settings.channel(name),
                ch,
                TokenBucket(settings.channel(name).rate, settings.channel(name).burst, clock),
                # Only "at least threshold arrivals in the window" matters: keep that many.
                recent=collections.deque(maxlen=max(1, settings.channel(name).digest.threshold)),
            )
            for name, ch in channels.items()
        }
        for lane in self.lanes.values():
            if isinstance(lane.channel, Drifting):  # export 0 before the first drift
                lane.drifts_seen = lane.channel.drifts
                self.metrics.drifts.labels(lane.name)
        self._tasks: list[asyncio.Task[None]] = []

    # -- intake --------------------------------------------------------------------------

    async def accept(self, event: Event, *, reroute: bool = True) -> Accepted:
        """Route and durably store ``event``; returns once committed.

        ``reroute=False``: a follow-up goes only where its problem went, not where the rules
        send it (a synthetic recovery, built from an open problem's row, lacks what rules may
        match on, such as host groups, and could land on a channel that never saw the problem).
        """
        routed = route(self.settings.routes, event) if reroute else ()
        acc = await self.outbox.accept(event, routed, self.clock())
        if acc.new:
            self.metrics.accepted.labels(event.kind.value).inc()
            now = self.clock()
            for c in acc.channels:
                lane = self.lanes.get(c)
                if lane is not None:
                    if lane.cfg.digest.threshold:
                        lane.recent.append(now)
                    lane.wake.set()
        else:
            self.metrics.duplicates.inc()
        return acc

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """Start one worker per channel and the housekeeping task."""
        for lane in self.lanes.values():
            run = self._state_lane if isinstance(lane.channel, StateChannel) else self._event_lane
            self._tasks.append(asyncio.create_task(self._guard(lane, run), name=lane.name))
        self._tasks.append(asyncio.create_task(self._housekeeping(), name="housekeeping"))

    async def stop(self) -> None:
        """Cancel the workers; anything not finished stays pending in the outbox."""
        tasks, self._tasks = self._tasks, []
        while tasks:
            for t in tasks:
                t.cancel()
            done, pending = await asyncio.wait(tasks, timeout=5)
            for t in done:
                if not t.cancelled() and t.exception() is not None:
                    log.error("worker %s ended with %r", t.get_name(), t.exception())
            tasks = list(pending)

    async def _guard(self, lane: Lane, run: Callable[[Lane], Any]) -> None:
        """Keep a lane alive through unexpected errors (e.g. the database blipping)."""
        while True:
            try:
                await run(lane)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._note_error(lane, f"worker error: {type(exc).__name__}: {exc}")
                log.error("lane %s: %s", lane.name, lane.last_error)
                await asyncio.sleep(self.settings.poll_interval)

    async def _housekeeping(self) -> None:
        keep = self.settings.outbox.retention_days * 86400
        while True:
            try:
                await self.outbox.purge(self.clock() - keep)
            except Exception as exc:  # keep going; this is not urgent
                log.warning("purge failed: %s", self.redact(str(exc)))
            await asyncio.sleep(3600)

    # -- policy helpers ------------------------------------------------------------------

    def redact(self, text: str) -> str:
        """``text`` with every configured secret replaced by ``***``."""
        return self._redactor(text)

    def muted(self, cfg: ChannelConfig, now: float) -> bool:
        """Whether a mute window of ``cfg`` is active at ``now``."""
        if not cfg.mute:
            return False
        local = dt.datetime.fromtimestamp(now, self._tz)
        return any(w.active(local) for w in cfg.mute)

    def _note_error(self, lane: Lane, reason: str) -> None:
        lane.last_error = self.redact(reason)
        lane.last_error_at = self.clock()
        self.metrics.up.labels(lane.name).set(1)

    def _note_ok(self, lane: Lane) -> None:
        lane.last_ok_at = self.clock()
        self.metrics.up.labels(lane.name).set(0)

    def _failure(self, lane: Lane, item: Claimed, exc: ChannelError, now: float) -> Outcome:
        policy = lane.cfg.retry or self.settings.retry
        attempt = item.attempts + 1
        reason = self.redact(exc.reason)
        self._note_error(lane, reason)
        if not exc.retryable:
            outcome: Outcome = Dead(item.id, f"permanent: {reason}")
        elif attempt >= policy.max_attempts or now - item.created_at >= policy.max_age:
            outcome = Dead(item.id, f"gave up after {attempt} attempts: {reason}")
        else:
            delay = max(exc.retry_after or 0.0, backoff(attempt, policy, self.rng))
            outcome = Retry(item.id, now + delay, reason)
            pause = exc.retry_after if exc.retry_after else min(delay, LANE_PAUSE_CAP)
            lane.paused_until = max(lane.paused_until, now + pause)
        kind = "dead" if isinstance(outcome, Dead) else "retry"
        self.metrics.deliveries.labels(lane.name, kind).inc()
        log.warning(
            "%s: event %s %s: %s (%s)",
            lane.name,
            item.event.event_id,
            item.event.kind.value,
            reason,
            kind,
        )
        return outcome

    async def _call(self, lane: Lane, coro: Any) -> Any:
        """Await a channel call with a timeout; map every failure to ChannelError."""
        try:
            async with asyncio.timeout(SEND_TIMEOUT):
                return await coro
        except ChannelError:
            raise
        except TimeoutError:
            raise ChannelError(f"no answer within {SEND_TIMEOUT:.0f}s", retryable=True) from None
        except Exception as exc:
            # No traceback: exception text from libraries can carry URLs or credentials.
            log.error(
                "%s: unexpected %s from channel: %s",
                lane.name,
                type(exc).__name__,
                self.redact(str(exc)),
            )
            raise ChannelError(
                f"unexpected {type(exc).__name__}: {self.redact(str(exc))}", retryable=True
            ) from None

    async def _idle(self, lane: Lane, timeout: float) -> None:
        now = self.clock()
        hold = max(lane.paused_until, lane.hold_until)
        if hold > now:  # Retry-After or storm interval: new events must not wake the lane
            await asyncio.sleep(hold - now)
            lane.wake.clear()
            return
        # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation that
        # coincides with the wake-up, and the lane would then never stop.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(max(0.0, timeout)):
                await lane.wake.wait()
        lane.wake.clear()

    # -- event channels ------------------------------------------------------------------

    async def _event_lane(self, lane: Lane) -> None:
        assert isinstance(lane.channel, EventChannel)
        while True:
            await self._idle(lane, self.settings.poll_interval)
            while lane.paused_until <= self.clock():
                now = self.clock()
                dg = lane.cfg.digest
                # A storm is many arrivals in the window, or a backlog as large as one: what a
                # storm left behind (the window has passed, or the bridge restarted) must still
                # go out as digests, not as one message per event once the arrivals stop.
                storm = dg.threshold > 0 and (
                    lane.storm_level(now) >= dg.threshold
                    or await self.outbox.due(lane.name, now, dg.threshold) >= dg.threshold
                )
                if storm and now < lane.last_digest_at + dg.interval:
                    lane.hold_until = lane.last_digest_at + dg.interval
                    break
                # One delivery per claim outside a storm: its outcome is committed before the next
                # send, so a crash can repeat at most the one message in flight.
                # Grouping: deliveries wait group_wait (claimed as of that long ago), and what
                # is due goes together, one message per incident.
                gp = None if storm else lane.cfg.group
                async with self.outbox.claim(
                    lane.name,
                    dg.max if storm else GROUP_CLAIM if gp else 1,
                    now - gp.wait if gp else now,
                    follow_up_wait=self.settings.follow_up_wait,
                ) as claim:
                    if not claim.items:
                        break
                    outcomes = await self._deliver(lane, claim.items, storm, now)
                    await claim.finish(outcomes)
                if not outcomes:
                    break

    async def _deliver(
        self, lane: Lane, items: Sequence[Claimed], storm: bool, now: float
    ) -> list[Outcome]:
        channel = lane.channel
        assert isinstance(channel, EventChannel)
        if self.muted(lane.cfg, now):
            self.metrics.deliveries.labels(lane.name, "muted").inc(len(items))
            return [Muted(i.id) for i in items]
        if storm and len(items) > 1:
            return await self._digest(lane, channel, items)
        outcomes: list[Outcome] = []
        if lane.cfg.group is not None:
            items, outcomes, stopped = await self._grouped(lane, channel, items)
            if stopped:
                return outcomes
        for item in items:
            wait = await self._pace(lane)
            if wait > 0:
                await asyncio.sleep(wait)
            try:
                receipt = await self._call(
                    lane,
                    channel.send(Notification(item.event, item.thread, resolved=item.resolved)),
                )
            except ChannelError as exc:
                outcomes.append(self._failure(lane, item, exc, self.clock()))
                if exc.retryable:
                    break  # the lane is paused; the rest stay pending, untouched
                continue
            outcomes.append(Done(item.id, receipt))
            self._delivered(lane, item)
        return outcomes

    async def _grouped(
        self, lane: Lane, channel: EventChannel, items: Sequence[Claimed]
    ) -> tuple[list[Claimed], list[Outcome], bool]:
        """One message per incident (:mod:`.grouping`): returns the deliveries left to the
        one-per-event path, the outcomes so far, and whether a retryable failure stopped it.
        Each member's problem delivery stores the incident's thread as its receipt, so its
        updates and recovery find the thread, also after a restart."""
        policy = lane.cfg.group
        assert policy is not None
        by_id = {i.id: i for i in items}
        try:
            batches, alone = grouping.plan(
                [(i.id, i.event, i.thread) for i in items], lane.incidents, policy, self.clock()
            )
        except Exception:  # grouping is a convenience: a fault in it must not stop alerts
            log.exception("lane %s: grouping failed, sending one message per event", lane.name)
            return list(items), [], False
        outcomes: list[Outcome] = []
        for batch in batches:
            members = [by_id[i] for i in batch.ids]
            g = batch.notice
            wait = await self._pace(lane)
            if wait > 0:
                await asyncio.sleep(wait)
            event = g.leader if g.first else g.events[0]
            try:
                sent = await self._call(
                    lane, channel.send(Notification(event, batch.thread, group=g))
                )
            except ChannelError as exc:
                now = self.clock()
                outcomes += [self._failure(lane, m, exc, now) for m in members]
                if exc.retryable:
                    return [], outcomes, True  # paused; the rest stay pending, untouched
                continue
            thread = grouping.receipt_of(g.key, sent) if batch.thread is None else batch.thread
            incident = lane.incidents.get(g.key)
            if thread is not None and (incident is None or g.first):
                incident = lane.incidents[g.key] = grouping.Incident(g.key, thread, g.leader)
            if incident is not None and dict(incident.receipt) == dict(thread or {}):
                incident.record(g.events, self.clock())
            for m in members:
                keep = thread if m.event.kind is Kind.PROBLEM else None
                outcomes.append(Done(m.id, keep))
                self._delivered(lane, m)
        return [by_id[i] for i in alone], outcomes, False

    async def _digest(
        self, lane: Lane, channel: EventChannel, items: Sequence[Claimed]
    ) -> list[Outcome]:
        wait = await self._pace(lane)
        if wait > 0:
            await asyncio.sleep(wait)
        events = tuple(i.event for i in items)
        lane.last_digest_at = self.clock()
        try:
            await self._call(lane, channel.send(Notification(events[0], None, events)))
        except ChannelError as exc:
            now = self.clock()
            return [self._failure(lane, i, exc, now) for i in items]
        for i in items:
            self._delivered(lane, i)
        return [Done(i.id) for i in items]

    async def _pace(self, lane: Lane) -> float:
        """Seconds to wait before the next send on ``lane``: the rate limit every bridge on
        a shared outbox keeps together, else (or while the outbox cannot say) this one's."""
        if lane.cfg.rate > 0:
            try:
                shared = await self.outbox.pace(lane.name, lane.cfg.rate, lane.cfg.burst)
            except Exception as exc:  # the outbox is down: pace locally, deliver anyway
                log.debug("%s: shared rate limit unavailable: %s", lane.name, exc)
            else:
                if shared is not None:
                    return shared
        return lane.bucket.delay()

    def _delivered(self, lane: Lane, item: Claimed) -> None:
        self._note_ok(lane)
        self.metrics.deliveries.labels(lane.name, "done").inc()
        self.metrics.latency.labels(lane.name).observe(max(0.0, self.clock() - item.created_at))

    # -- state channels ------------------------------------------------------------------

    async def _state_lane(self, lane: Lane) -> None:
        channel = lane.channel
        assert isinstance(channel, StateChannel)
        while True:
            now = self.clock()
            # Wake for new events, and by the re-assert or the channel's own next change.
            await self._idle(
                lane, min(self.settings.poll_interval, max(0.0, lane.next_apply - now))
            )
            now = self.clock()
            if lane.paused_until > now:
                continue
            async with self.outbox.claim(lane.name, 10_000, now, ordered=False) as claim:
                if not claim.items and now < lane.next_apply:
                    continue
                snapshot = StateSnapshot(
                    await self.outbox.open_problems(lane.name), self.muted(lane.cfg, now), now
                )
                try:
                    at = await self._call(lane, channel.apply(snapshot))
                except ChannelError as exc:
                    outcomes = self._state_failure(lane, claim.items, exc, now)
                else:
                    outcomes = [Done(i.id) for i in claim.items]
                    for i in claim.items:
                        self._delivered(lane, i)
                    self._note_ok(lane)
                    lane.failures = 0
                    lane.next_reassert = now + lane.cfg.reassert
                    lane.next_change = self._own_change(lane, at, now)
                self._count_drifts(lane)
                await claim.finish(outcomes)

    def _state_failure(
        self, lane: Lane, items: Sequence[Claimed], exc: ChannelError, now: float
    ) -> list[Outcome]:
        """A failed ``apply``: the pending deliveries take the event channels' path (retry with
        backoff or dead letter, ``last_error``, metrics); the next apply — also for a failed
        re-assert or timed apply with nothing pending — follows the same backoff, counted in
        failed applies in a row and never later than a re-assert (a non-retryable failure
        waits for the re-assert)."""
        policy = lane.cfg.retry or self.settings.retry
        lane.failures += 1
        lane.next_change = None  # what the channel shows is unknown; the retry re-applies it
        outcomes = [self._failure(lane, i, exc, now) for i in items]
        if not items:
            reason = self.redact(exc.reason)
            self._note_error(lane, reason)
            self.metrics.deliveries.labels(lane.name, "retry").inc()
            log.warning("%s: apply without pending events failed: %s", lane.name, reason)
        wait = backoff(lane.failures, policy, self.rng) if exc.retryable else lane.cfg.reassert
        lane.next_reassert = now + max(exc.retry_after or 0.0, min(wait, lane.cfg.reassert))
        return outcomes

    def _own_change(self, lane: Lane, at: Any, now: float) -> float | None:
        """The time a state channel's ``apply`` returned, checked: a time not after ``now``
        (the channel keeps answering "already") waits one poll interval, not zero."""
        if at is None:
            return None
        if isinstance(at, bool) or not isinstance(at, int | float):
            log.warning("%s: apply returned %r, not a time; ignored", lane.name, type(at).__name__)
            return None
        return float(at) if at > now else now + self.settings.poll_interval

    def _count_drifts(self, lane: Lane) -> None:
        """Add a read-back channel's new ``drifts`` to ``kyoten_bridge_drifts_total``."""
        if isinstance(lane.channel, Drifting):
            drifts = lane.channel.drifts
            if drifts > lane.drifts_seen:
                self.metrics.drifts.labels(lane.name).inc(drifts - lane.drifts_seen)
            lane.drifts_seen = drifts

    # -- observability -------------------------------------------------------------------

    async def health(self) -> dict[str, Any]:
        """Per-channel state, queue depth, oldest pending, last error (secret-free), and
        ``drifts`` for a channel that reads its device back."""
        now = self.clock()
        backlog = await self.outbox.backlog()
        channels: dict[str, Any] = {}
        for name, lane in self.lanes.items():
            b = backlog.get(name)
            failing = lane.last_error_at is not None and (
                lane.last_ok_at is None or lane.last_error_at > lane.last_ok_at
            )
            state = (
                "muted"
                if self.muted(lane.cfg, now)
                else "paused"
                if lane.paused_until > now
                else "failing"
                if failing
                else "ok"
            )
            channels[name] = {
                "type": lane.cfg.type,
                "state": state,
                "pending": b.pending if b else 0,
                "oldest_pending_seconds": round(now - b.oldest, 3) if b and b.oldest else None,
                "dead": b.dead if b else 0,
                "open_problems": b.open_problems if b else 0,
                "last_error": lane.last_error or None,
                "last_error_at": lane.last_error_at,
                "last_success_at": lane.last_ok_at,
            }
            if isinstance(lane.channel, Drifting):  # read-back mismatches (towers)
                channels[name]["drifts"] = lane.channel.drifts
        ok = all(c["state"] in ("ok", "muted") for c in channels.values())
        return {
            "status": "ok" if ok else "degraded",
            "node": self.settings.node,
            "channels": channels,
        }

    async def refresh_gauges(self) -> None:
        """Copy queue figures into the gauges and bring ``kyoten_bridge_drifts_total`` up to the
        channels' counts (called before each ``/metrics`` scrape)."""
        for lane in self.lanes.values():
            self._count_drifts(lane)
        now = self.clock()
        backlog = await self.outbox.backlog()
        for name in self.lanes:
            b = backlog.get(name)
            self.metrics.pending.labels(name).set(b.pending if b else 0)
            self.metrics.dead.labels(name).set(b.dead if b else 0)
            self.metrics.open.labels(name).set(b.open_problems if b else 0)
            self.metrics.oldest.labels(name).set(now - b.oldest if b and b.oldest else 0)
