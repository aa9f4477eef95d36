"""Timing helpers shared by the benchmark scripts (imported as ``measure``: the scripts run
as ``python bench/NAME.py``, so this folder is on ``sys.path``)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable

from zabbix_utils import Getter


def percentiles(samples: list[float]) -> tuple[float, float]:
    """(p50, p90) in the samples' unit."""
    return statistics.median(samples), statistics.quantiles(samples, n=10)[8]


def timed(fn: Callable[[], object], n: int, warmup: int = 1) -> list[float]:
    """``n`` wall-clock timings of ``fn`` in milliseconds, after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
    return out


def row(label: str, samples: list[float], width: int = 58) -> tuple[float, float]:
    """Print one figure line; return (p50, p90)."""
    p50, p90 = percentiles(samples)
    print(f"  {label:{width}} p50 {p50:8.2f} ms   p90 {p90:8.2f} ms   (n={len(samples)})")
    return p50, p90


def agent_check(getter: Getter, key: str) -> Callable[[], None]:
    """One passive check that must succeed (a failure would make a fast figure meaningless)."""

    def call() -> None:
        r = getter.get(key)
        if r.error or r.value is None or str(r.value).startswith('{"error"'):
            raise RuntimeError(f"{key}: {r.error or r.value}")

    return call
