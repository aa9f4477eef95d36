"""Tower latency, through the real emulator over TCP on 127.0.0.1 (issue 6 §7).

``roundtrip``: encode a full ``S`` vector → TCP → ``kyoten tower emulate`` (its own process,
like a real tower) → ACK, one connection per command as the bridge does.

Run: ``.venv/bin/python bench/tower.py [--count 500]``. Prints p50/p99/max in milliseconds.
Goal (issue 6 §7): p99 ≤ 50 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import threading
import time

from kyoten.hardware.model import Light, TowerState
from kyoten.hardware.tower import open_tower

STATES = (TowerState(red=Light.BLINK, buzzer=1), TowerState(green=Light.ON))


def percentiles(samples: list[float]) -> str:
    """``p50 … p99 … max …`` in ms."""
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return (
        f"p50 {cuts[49] * 1e3:.2f} ms  p99 {cuts[98] * 1e3:.2f} ms  max {max(samples) * 1e3:.2f} ms"
    )


async def roundtrip(port: int, count: int) -> list[float]:
    """``count`` set → ACK round trips to the emulator on ``port``."""
    samples: list[float] = []
    async with open_tower(f"pns://127.0.0.1:{port}?model=nh", timeout=2, retries=0) as tower:
        for i in range(count):
            started = time.perf_counter()
            await tower.set(STATES[i % 2])
            samples.append(time.perf_counter() - started)
    return samples


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=500)
    args = parser.parse_args()
    emulator = subprocess.Popen(
        [sys.executable, "-m", "kyoten.hardware.cli", "emulate", "--protocol", "pns-nh",
         "--listen", "127.0.0.1:0"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert emulator.stdout is not None
        banner = emulator.stdout.readline()
        port = int(banner.rsplit(":", 1)[1])
        # keep reading its one-line-per-change output so a long run never fills the pipe
        threading.Thread(target=emulator.stdout.read, daemon=True).start()
        samples = asyncio.run(roundtrip(port, args.count))
        print(f"tower set→ACK over TCP, {args.count} commands: {percentiles(samples)}")
    finally:
        emulator.terminate()
        emulator.wait(5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
