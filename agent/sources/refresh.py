"""A slow read kept fresh in the background, for data whose source only changes periodically.

Pgpool's sr-check columns (replication_delay, replication_state, replication_sync_state)
change only every ``sr_check_period`` (10 s by default), yet the only SQL command that shows
them, SHOW POOL_NODES, also makes live checks that cost a connection per backend. The agent 2
plugin therefore reads them here on a timer of its own and answers polls with the latest
reading and its age, instead of making every poll wait for them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Reading(Generic[T]):
    value: T
    taken: float  # time.monotonic() when the read finished

    def age(self) -> float:
        return max(time.monotonic() - self.taken, 0.0)


class Refresher(Generic[T]):
    """Runs ``read(deadline)`` every ``interval`` seconds in a daemon thread; keeps the latest.

    The first reading is taken by the caller (``read_now``) so that the first answer is
    complete; the thread starts after it. A failed read keeps the previous reading (its age
    keeps growing, which is what the snapshot reports) and remembers the error.
    """

    def __init__(self, read: Callable[[float], T], interval: float, name: str) -> None:
        self.read = read
        self.interval = interval
        self.name = name
        self.last_error: str | None = None
        self._latest: Reading[T] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def latest(self) -> Reading[T] | None:
        return self._latest

    def read_now(self, deadline: float) -> Reading[T] | None:
        """Read once in the caller's thread; errors are kept, not raised."""
        try:
            value = self.read(deadline)
        except Exception as exc:
            self.last_error = str(exc) or type(exc).__name__
        else:
            self._latest = Reading(value, time.monotonic())
            self.last_error = None
        return self._latest

    def start(self) -> None:
        with self._lock:
            if self._thread is None and not self._stop.is_set():
                self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.read_now(time.monotonic() + min(self.interval, 10.0))

    def stop(self) -> None:
        self._stop.set()
