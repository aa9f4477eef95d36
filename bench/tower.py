"""Tower latency, through the real emulator over TCP on 127.0.0.1.

``roundtrip``: encode a full ``S`` vector → TCP → ``kyoten tower emulate`` (its own process,
like a real tower) → ACK, one connection per command as the bridge does.

``accept_to_frame``: the whole bridge — POST of a Zabbix webhook body to the real app over HTTP
(bearer auth, parse, SQLite outbox commit with the default synchronous=FULL) → pipeline state
lane → tower channel (read-back, write, verify) → PNS over TCP → the ``S`` frame applied by an
emulator running on its own thread and event loop, which timestamps it.

Run: ``.venv/bin/python bench/tower.py [--count 500] [--events 200]``. Prints p50/p99/max in
milliseconds. Goal: accept → tower frame p99 ≤ 50 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import queue
import statistics
import subprocess
import sys
import tempfile
import threading
import time

from kyoten.hardware.emulator import EmulatedTower, TcpFrontEnd
from kyoten.hardware.model import Light, TowerState
from kyoten.hardware.protocol.pns import PnsNh
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


# What Zabbix resolves the webhook's macros to for one Disaster (and its recovery).
MACROS = {
    "{EVENT.NSEVERITY}": "5", "{EVENT.SOURCE}": "0", "{EVENT.NAME}": "bench", "{EVENT.OPDATA}": "",
    "{EVENT.ACK.STATUS}": "No", "{EVENT.DATE}": "2026.11.28", "{EVENT.TIME}": "20:00:00",
    "{EVENT.TAGSJSON}": "[]", "{HOST.NAME}": "bench-host", "{TRIGGER.HOSTGROUP.NAME}": "Bench",
    "{TRIGGER.ID}": "1", "{TRIGGER.NAME}": "bench", "{ALERT.SENDTO}": "noc",
    "{ALERT.SUBJECT}": "bench", "{ALERT.MESSAGE}": "bench", "{EVENT.UPDATE.STATUS}": "0",
}  # fmt: skip
TOKEN = "bench-token-0123456789abcdef"


class ThreadedEmulator:
    """A PNS-NH emulator on its own thread and loop; records when each change arrives."""

    def __init__(self) -> None:
        self.changes: queue.Queue[tuple[float, TowerState]] = queue.Queue()
        self.loop = asyncio.new_event_loop()
        self.port = 0
        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(self.loop)
            tower = EmulatedTower(
                PnsNh(), on_change=lambda s: self.changes.put((time.perf_counter(), s))
            )
            front = TcpFrontEnd(tower)
            self.loop.run_until_complete(front.start())
            self.port = front.port
            ready.set()
            self.loop.run_forever()
            self.loop.run_until_complete(front.stop())

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        ready.wait(5)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)

    def next_change(self, timeout: float) -> tuple[float, TowerState]:
        return self.changes.get(timeout=timeout)


async def accept_to_frame(events: int) -> list[float]:
    """``events`` webhook POSTs (Disaster, then its recovery, alternately) → tower frame."""
    from aiohttp import ClientSession, web
    from kyoten.alerting import mediatype
    from kyoten.alerting.app import create_app
    from kyoten.alerting.config import parse_settings

    emulator = ThreadedEmulator()
    samples: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        settings = parse_settings(
            {
                "token": TOKEN,
                "outbox": {"backend": "sqlite", "path": f"{tmp}/bench.db"},
                "channels": {
                    "noc": {"type": "tower", "url": f"pns://127.0.0.1:{emulator.port}?model=nh"}
                },
                "routes": [{"channels": ["noc"]}],
            }
        )
        runner = web.AppRunner(create_app(settings), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        url = f"http://127.0.0.1:{runner.addresses[0][1]}/v1/events"
        headers = {"Authorization": f"Bearer {TOKEN}"}
        try:
            await asyncio.to_thread(emulator.next_change, 5)  # start-up: idle green
            async with ClientSession() as http:
                for i in range(events):
                    problem = {**MACROS, "{EVENT.ID}": str(10_000 + i // 2)}
                    if i % 2:
                        problem |= {"{EVENT.VALUE}": "0", "{EVENT.RECOVERY.DATE}": "2026.11.28",
                                    "{EVENT.RECOVERY.TIME}": "20:01:00"}  # fmt: skip
                    else:
                        problem |= {"{EVENT.VALUE}": "1"}
                    started = time.perf_counter()
                    async with http.post(
                        url, json=mediatype.render_payload(problem), headers=headers
                    ) as reply:
                        assert reply.status == 202, await reply.text()
                    arrived, _ = await asyncio.to_thread(emulator.next_change, 5)
                    samples.append(arrived - started)
        finally:
            await runner.cleanup()
            emulator.stop()
    return samples


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=500, help="set→ACK round trips")
    parser.add_argument("--events", type=int, default=200, help="webhook events through the bridge")
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
    samples = asyncio.run(accept_to_frame(args.events))
    print(f"bridge accept→tower frame, {args.events} events: {percentiles(samples)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
