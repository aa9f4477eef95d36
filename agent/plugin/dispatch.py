"""Answering exports: a bounded pool, one deadline per request, identical requests coalesced.

The agent sends exports without waiting for earlier replies and routes replies by id, so the
plugin answers each on its own schedule. Three rules shape this module:

- **Every id gets exactly one answer, before the agent gives up.** A reply that arrives after
  the agent's timeout is dropped silently and the item shows a bare "timeout occurred"; a
  reply we send first can say what was slow. So each request has a guard on a single timer
  thread that answers with an error shortly before the agent's deadline, even while the
  collector is still blocked on a dead target.
- **Identical requests share one computation.** When the same key with the same parameters
  is already being computed (several hosts or items polling the same target in one
  interval), a new request waits for that result instead of querying again. This holds
  even for a computation past its deadline: requests for a hung target then time out
  against the one stuck worker, instead of each poll stranding another worker until none
  is left for the healthy targets.
- **Memory is bounded.** At most ``max_pending`` unanswered requests exist; beyond that a
  request is refused at once. Finished computations leave nothing behind, and cancelled
  timer entries are compacted away.

The work itself is behind :class:`Handler`, so this module is tested with trivial handlers
and knows nothing of PostgreSQL.
"""

from __future__ import annotations

import functools
import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from kyoten.agent.timer import DeadlineTimer, TimerEntry

log = logging.getLogger(__name__)


class Handler(Protocol):
    """Computes one item value. ``deadline_s`` is the time left, in seconds, to do it in.

    Return the exact string Zabbix should store; raise with a readable message on failure.
    Called from several threads at once.
    """

    def get(self, key: str, params: list[str], deadline_s: float) -> str: ...


#: ``reply(id, value, error)``: exactly one of value and error is not None.
Reply = Callable[[int, str | None, str | None], None]
Clock = Callable[[], float]


def reply_budget(budget_s: float) -> float:
    """Seconds after arrival at which the guard answers: the agent's budget minus a margin
    (0.3 s, at most a quarter of it) for scheduling jitter and the trip back. On 7.0 the agent
    waits another 0.5 s on top, so the margin is only ever eaten on 6.0."""
    return budget_s - min(0.3, budget_s / 4)


def handler_budget(reply_s: float) -> float:
    """What the handler is told it has: a little less than the guard, so its own, more
    precise timeout error (naming the target) wins the race against the generic one."""
    return max(reply_s - min(0.1, reply_s / 10), 0.0)


# ----------------------------------------------------------------------------- dispatcher

FlightKey = tuple[str, tuple[str, ...]]


@dataclass(eq=False)
class Waiter:
    """One request id waiting for a value."""

    req_id: int
    budget_s: float
    answered: bool = False
    timer: TimerEntry | None = None


@dataclass(eq=False)
class Flight:
    """One computation of ``key`` and the requests waiting for it."""

    key: FlightKey
    deadline: float
    waiters: list[Waiter] = field(default_factory=list)


@dataclass
class DispatchStats:
    """Counters for the bench and the tests (cheap, never reset)."""

    requests: int = 0
    computed: int = 0
    coalesced: int = 0
    timed_out: int = 0
    refused: int = 0


class Dispatcher:
    """Runs exports on ``workers`` daemon threads and answers each id once through ``reply``.

    :param handler: returns the handler to use (it may raise, e.g. when the config cannot be
        loaded: that request is then answered with the error, and the next one tries again).
    :param describe: turns a handler exception into the error text the agent shows.
    """

    def __init__(
        self,
        handler: Callable[[], Handler],
        reply: Reply,
        describe: Callable[[BaseException], str],
        *,
        workers: int = 8,
        max_pending: int = 1024,
        clock: Clock = time.monotonic,
    ) -> None:
        self._handler = handler
        self._reply = reply
        self._describe = describe
        self._clock = clock
        self._max_pending = max_pending
        self._lock = threading.Lock()
        self._flights: dict[FlightKey, Flight] = {}
        self._pending = 0
        self._queue: queue.SimpleQueue[Flight | None] = queue.SimpleQueue()
        self._timer = DeadlineTimer(clock)
        self.stats = DispatchStats()
        self._workers = [
            threading.Thread(target=self._work, name=f"kyoten-export-{n}", daemon=True)
            for n in range(workers)
        ]
        for thread in self._workers:
            thread.start()

    @property
    def pending(self) -> int:
        """Requests received and not yet answered."""
        with self._lock:
            return self._pending

    @property
    def in_flight(self) -> int:
        """Computations queued or running."""
        with self._lock:
            return len(self._flights)

    def submit(
        self,
        req_id: int,
        key: str,
        params: tuple[str, ...],
        budget_s: float,
        *,
        inline: bool = False,
    ) -> Flight | None:
        """Accept one export; its answer comes later, from a worker thread.

        With ``inline`` a new computation is handed back instead of queued: the caller runs
        it (``run``) on its own thread, sparing the request the wake-up of a worker (about
        0.2 ms on a virtual machine whose idle CPU sleeps, a fifth of an answer).
        """
        now = self._clock()
        reply_s = reply_budget(budget_s)
        waiter = Waiter(req_id, budget_s)
        flight_key: FlightKey = (key, params)
        with self._lock:
            self.stats.requests += 1
            if self._pending >= self._max_pending:
                self.stats.refused += 1
                refuse = True
            else:
                refuse = False
                self._pending += 1
                found = self._flights.get(flight_key)
                fresh = found is None
                if found is None:
                    flight = Flight(flight_key, now + reply_s)
                    self._flights[flight_key] = flight
                else:
                    flight = found
                    self.stats.coalesced += 1
                flight.waiters.append(waiter)
                waiter.timer = self._timer.call_at(
                    now + reply_s, functools.partial(self._expire, flight, waiter)
                )
        if refuse:
            self._send(
                req_id, None, f"kyoten plugin is busy: {self._max_pending} requests unanswered"
            )
            return None
        if fresh:
            if inline:
                return flight
            self._queue.put(flight)
        return None

    def computing(self, key: str, params: tuple[str, ...]) -> bool:
        """Whether a request for ``key[params]`` submitted now would join a computation."""
        with self._lock:
            return (key, params) in self._flights

    def run(self, flight: Flight, settle: Callable[[], None] | None = None) -> None:
        """Compute ``flight`` and answer its waiters (a worker's, or the caller's own after
        ``submit(inline=True)``). ``settle`` runs between computing and answering, so the
        caller can still add waiters (requests it has not read yet)."""
        try:
            self._run(flight, settle)
        except BaseException:  # never let a serving thread die: the pool would shrink for good
            log.exception("export failed")

    def close(self) -> None:
        """Stop the timer and let the workers finish; pending ids stay unanswered."""
        self._timer.close()
        for _ in self._workers:
            self._queue.put(None)

    # --------------------------------------------------------------------- internals

    def _send(self, req_id: int, value: str | None, error: str | None) -> None:
        try:
            self._reply(req_id, value, error)
        except Exception:  # the socket is gone; the reader loop notices and ends the session
            log.debug("could not send the answer to %d", req_id, exc_info=True)

    def _expire(self, flight: Flight, waiter: Waiter) -> None:
        with self._lock:
            if waiter.answered:
                return
            waiter.answered = True
            self._pending -= 1
            self.stats.timed_out += 1
            flight.waiters.remove(waiter)
        # Starts with a capital and names the key later: 7.0 capitalises the first letter.
        self._send(
            waiter.req_id,
            None,
            f"No result for {flight.key[0]} within {reply_budget(waiter.budget_s):.1f} s "
            f"(agent timeout {waiter.budget_s:g} s): a target is slow or unreachable",
        )

    def _work(self) -> None:
        while True:
            flight = self._queue.get()
            if flight is None:
                return
            self.run(flight)

    def _run(self, flight: Flight, settle: Callable[[], None] | None) -> None:
        with self._lock:
            if not flight.waiters:  # every requester timed out while this sat in the queue
                del self._flights[flight.key]
                return
        value: str | None = None
        error: str | None = None
        key, params = flight.key
        try:
            budget = handler_budget(flight.deadline - self._clock())
            result = self._handler().get(key, list(params), budget)
            if isinstance(result, str):
                value = result
            else:  # a contract slip must still reach Zabbix as text, never as Go's rendering
                log.warning("%s returned %s, not str", key, type(result).__name__)
                value = str(result)
        except BaseException as exc:  # SystemExit from a library included: answer, carry on
            error = self._describe(exc)
        if settle is not None:
            try:
                settle()
            except Exception:  # the waiters already here must be answered all the same
                log.exception("settling export %s failed", key)
        with self._lock:
            self.stats.computed += 1
            if self._flights.get(flight.key) is flight:
                del self._flights[flight.key]
            waiters = [w for w in flight.waiters if not w.answered]
            for waiter in waiters:
                waiter.answered = True
            self._pending -= len(waiters)
            flight.waiters.clear()
        for waiter in waiters:
            if waiter.timer is not None:
                self._timer.cancel(waiter.timer)
            self._send(waiter.req_id, value, error)
