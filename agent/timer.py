"""One thread that runs callbacks at their due time: deadlines without a thread per deadline.

The plugin arms one per request (answer before the agent gives up) and the connector one per
query pass (cancel a query that runs past its poll). A ``threading.Timer`` each would start a
thread per request and per pass; at plugin rates that start-up is a visible share of an
answer of about a millisecond.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)
Clock = Callable[[], float]


@dataclass(eq=False)
class TimerEntry:
    """A scheduled callback; :meth:`DeadlineTimer.cancel` it when it is no longer needed."""

    when: float
    callback: Callable[[], None]
    cancelled: bool = False


class DeadlineTimer:
    """One thread running callbacks at their due time; a heap instead of a thread per request."""

    def __init__(self, clock: Clock = time.monotonic) -> None:
        self._clock = clock
        self._heap: list[tuple[float, int, TimerEntry]] = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._cancelled = 0
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="kyoten-deadlines", daemon=True)
        self._thread.start()

    def call_at(self, when: float, callback: Callable[[], None]) -> TimerEntry:
        """Run ``callback`` on the timer thread at ``when`` (clock time)."""
        entry = TimerEntry(when, callback)
        with self._cond:
            heapq.heappush(self._heap, (when, next(self._seq), entry))
            if self._heap[0][2] is entry:
                self._cond.notify()
        return entry

    def cancel(self, entry: TimerEntry) -> None:
        """Forget ``entry``; the heap is rebuilt once cancelled entries are the majority."""
        with self._cond:
            if entry.cancelled:
                return
            entry.cancelled = True
            self._cancelled += 1
            if self._cancelled > 64 and self._cancelled * 2 > len(self._heap):
                self._heap = [item for item in self._heap if not item[2].cancelled]
                heapq.heapify(self._heap)
                self._cancelled = 0

    def __len__(self) -> int:
        with self._cond:
            return len(self._heap)

    def close(self) -> None:
        """Stop the thread; callbacks not yet due never run."""
        with self._cond:
            self._closed = True
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                if self._closed:
                    return
                if not self._heap:
                    self._cond.wait()
                    continue
                when, _, entry = self._heap[0]
                if entry.cancelled:
                    heapq.heappop(self._heap)
                    self._cancelled -= 1
                    continue
                delay = when - self._clock()
                if delay > 0:
                    self._cond.wait(delay)
                    continue
                heapq.heappop(self._heap)
                entry.cancelled = True  # ran: a later cancel() is a no-op
            try:
                entry.callback()
            except Exception:  # a callback bug must not stop every other deadline
                log.exception("deadline callback failed")


_shared: DeadlineTimer | None = None
_shared_lock = threading.Lock()


def shared_timer() -> DeadlineTimer:
    """The process-wide timer, started on first use (``kyoten get`` may never need it)."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = DeadlineTimer()
        return _shared
