"""Benchmark of the alert bridge, side by side with Prometheus Alertmanager.

Prints, in one run:

* sustained accept rate with durable commit (SQLite, ``synchronous=FULL``), one event per
  request as Zabbix sends them, with 1 and with 16 concurrent senders — and how many of the
  accepted events are really in the outbox afterwards;
* p50/p99 accept latency at a steady (open-loop) 200 events/s;
* accept → delivery latency to the fake channels (Slack Web API fake, SMTP sink) at 200/s;
* Alertmanager 0.25 (Debian ``prometheus-alertmanager``, loopback only, nothing persisted)
  receiving the same load, one alert per request on ``POST /api/v2/alerts``, and the ratio;
* the CPU time each server process spends per 1,000 accepted events during the closed-loop
  phases, from its own accounting (``/proc/PID/stat``: user + system time of all its threads),
  for the bridge (durable) and Alertmanager (in memory) in the same run, and their ratio. Unlike
  the throughput ratio, this one does not depend on how wrk and the two servers happen to share
  the machine's two CPUs.

The bridge runs as its own process (``python -m kyoten.alerting serve``), as in production; the
load comes from ``wrk`` (closed loop, C, so the client is not the bottleneck) with a Lua script
giving every request a fresh event id, and from an asyncio client for the fixed-rate phase.
Fakes run in this process. Everything listens on 127.0.0.1.

Run: ``.venv/bin/python bench/bridge.py [--seconds 5]``  (needs ``wrk`` and
``prometheus-alertmanager`` on PATH; Alertmanager is skipped with a note if missing).

Reading the ratio on a 2-CPU machine (measured 2026-11-29): wrk, the bridge and Alertmanager
share the two CPUs. Alertmanager (Go, both CPUs) takes 7,000–10,700 alerts/s from 16 senders,
and that spread alone moves the ratio by a third. One bridge process leaves a third of a CPU
idle: its event-loop thread is the limit. Two bridges with *separate* outboxes on one port
(``SO_REUSEPORT``), which share nothing and are the upper bound of any multi-process split,
saturate both CPUs at 5,030–5,260 events/s, against 4,730–5,080 for one bridge in the same
script. So a ratio of 0.5 needs about 5,000 events/s, which is this machine's ceiling for the
design, not a margin above it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email import message_from_bytes
from pathlib import Path
from typing import Any

import aiohttp
import yaml
from aiohttp import web
from aiosmtpd.controller import Controller
from kyoten.alerting import mediatype

TOKEN = "bench-token-0123456789abcdef"
GOALS = {"rate16": 4000.0, "p99_ms": 20.0, "ratio": 0.5, "cpu_ratio": 2.0}


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` so far, all threads (``/proc/PID/stat``)."""
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rpartition(")")[2].split()  # after "(comm)", which may hold spaces
    utime, stime = int(fields[11]), int(fields[12])  # fields 14 and 15 of stat(5)
    return (utime + stime) / os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def zabbix_body(event_id: str) -> dict[str, str]:
    """What the media type would POST for a problem with ``event_id``."""
    return mediatype.render_payload(
        {
            "{EVENT.ID}": event_id,
            "{EVENT.VALUE}": "1",
            "{EVENT.UPDATE.STATUS}": "0",
            "{EVENT.NSEVERITY}": "4",
            "{EVENT.SOURCE}": "0",
            "{EVENT.NAME}": f"Replication lag high ({event_id})",
            "{EVENT.OPDATA}": "42s",
            "{EVENT.ACK.STATUS}": "No",
            "{EVENT.DATE}": "2026.11.28",
            "{EVENT.TIME}": "19:30:00",
            "{EVENT.TAGSJSON}": '[{"tag":"service","value":"db"}]',
            "{HOST.NAME}": "db2.site-b",
            "{TRIGGER.HOSTGROUP.NAME}": "Databases",
            "{TRIGGER.ID}": "23001",
            "{TRIGGER.NAME}": "Replication lag is high",
            "{ALERT.SENDTO}": "ops",
            "{ALERT.SUBJECT}": "Problem",
            "{ALERT.MESSAGE}": "Problem started",
        }
    )


def alertmanager_body(event_id: str) -> list[dict[str, Any]]:
    """The same alert for Alertmanager's v2 API (one alert per request)."""
    return [
        {
            "labels": {
                "alertname": "ReplicationLagHigh",
                "event_id": event_id,
                "severity": "high",
                "host": "db2.site-b",
                "service": "db",
            },
            "annotations": {"summary": f"Replication lag high ({event_id})", "opdata": "42s"},
            "startsAt": "2026-11-28T19:30:00Z",
        }
    ]


# -- fake channels ---------------------------------------------------------------------------

_ID = re.compile(r"\((\d+)\)")


@dataclass
class Arrivals:
    """When each event id first reached each fake channel (monotonic clock)."""

    seen: dict[str, dict[str, float]] = field(default_factory=lambda: {"slack": {}, "mail": {}})

    def note(self, channel: str, text: str) -> None:
        now = time.monotonic()
        for eid in _ID.findall(text):
            self.seen[channel].setdefault(eid, now)


class SlackFake:
    def __init__(self, arrivals: Arrivals) -> None:
        self.arrivals = arrivals
        self.ts = 1700000000

    async def api(self, request: web.Request) -> web.Response:
        data = (
            await request.json()
            if request.content_type == "application/json"
            else dict(await request.post())
        )
        self.arrivals.note("slack", json.dumps(data))
        self.ts += 1
        return web.json_response({"ok": True, "channel": "C0BENCH", "ts": f"{self.ts}.0001"})


class MailSink:
    def __init__(self, arrivals: Arrivals) -> None:
        self.arrivals = arrivals

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        msg = message_from_bytes(envelope.content)
        text = (
            str(msg["Subject"])
            + "\n"
            + "\n".join(
                str(p.get_payload(decode=True) or b"", "utf-8", "replace")
                for p in msg.walk()
                if p.get_content_type() == "text/plain"
            )
        )
        self.arrivals.note("mail", text)
        return "250 OK"


async def serve_fakes(slack_port: int, smtp_port: int) -> None:
    """The fake channels, in a process of their own so they do not disturb the load client."""
    arrivals = Arrivals()
    app = web.Application()
    app.router.add_post("/api/{method}", SlackFake(arrivals).api)

    async def seen(request: web.Request) -> web.Response:
        return web.json_response(arrivals.seen)

    app.router.add_get("/arrivals", seen)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", slack_port).start()
    smtp = Controller(MailSink(arrivals), hostname="127.0.0.1", port=smtp_port)
    smtp.start()
    try:
        await asyncio.Event().wait()
    finally:
        smtp.stop()
        await runner.cleanup()


async def fetch_arrivals(slack_port: int) -> dict[str, dict[str, float]]:
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"http://127.0.0.1:{slack_port}/arrivals") as resp,
    ):
        data: dict[str, dict[str, float]] = await resp.json()
        return data


# -- load -------------------------------------------------------------------------------------

WRK_LUA = r"""
local threads = {}
local counter = 0
function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end
function init(args)
  base = tonumber(args[1])
  template = args[2]
  auth = args[3]
end
function request()
  counter = counter + 1
  local id = string.format("%.0f", base + tid * 1e9 + counter)
  local body = string.gsub(template, "__ID__", id)
  local headers = {["Content-Type"] = "application/json"}
  if auth ~= "" then headers["Authorization"] = auth end
  return wrk.format("POST", nil, headers, body)
end
"""


@dataclass
class WrkResult:
    requests: int
    rate: float
    non_2xx: int
    errors: int


async def wrk(
    url: str, body_template: str, auth: str, senders: int, seconds: float, base: int, workdir: Path
) -> WrkResult:
    """Closed-loop load: ``senders`` connections, each one request at a time."""
    script = workdir / "bench.lua"
    script.write_text(WRK_LUA)
    threads = 1  # one wrk thread drives 16 connections easily and leaves a core to the server
    proc = await asyncio.create_subprocess_exec(
        "wrk",
        "-t",
        str(threads),
        "-c",
        str(senders),
        "-d",
        f"{max(1, round(seconds))}s",
        "--timeout",
        "5s",
        "-s",
        str(script),
        url,
        "--",
        str(base),
        body_template,
        auth,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out = (await proc.communicate())[0].decode()
    m = re.search(r"(\d+) requests in ([\d.]+)(m?s)", out)
    if not m:
        raise RuntimeError(f"wrk output not understood:\n{out}")
    n, dur = int(m.group(1)), float(m.group(2)) / (1000 if m.group(3) == "ms" else 1)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errs = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return WrkResult(
        n,
        n / dur,
        int(non2xx.group(1)) if non2xx else 0,
        sum(map(int, errs.groups())) if errs else 0,
    )


def template_of(body: Any, event_id: str) -> str:
    return json.dumps(body, separators=(",", ":")).replace(event_id, "__ID__")


async def steady(
    url: str, rate: float, seconds: float, base: int, on_accept: Callable[[str, float], None]
) -> list[float]:
    """Open-loop load at ``rate``/s: latency from each request's scheduled time to its answer."""
    latencies: list[float] = []
    n = int(rate * seconds)
    conn = aiohttp.TCPConnector(limit=64)
    async with aiohttp.ClientSession(connector=conn) as http:

        async def one(i: int, due: float) -> None:
            eid = str(base + i)
            async with http.post(
                url, json=zabbix_body(eid), headers={"Authorization": f"Bearer {TOKEN}"}
            ) as resp:
                await resp.read()
                if resp.status != 202:
                    raise RuntimeError(f"bridge answered {resp.status}")
            done = time.monotonic()
            latencies.append(done - due)
            on_accept(eid, done)

        start = time.monotonic() + 0.2
        tasks = []
        for i in range(n):
            due = start + i / rate
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(i, due)))
        await asyncio.gather(*tasks)
    return latencies


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def wait_http(url: str, proc: subprocess.Popen[bytes], what: str) -> None:
    async with aiohttp.ClientSession() as http:
        for _ in range(300):
            if proc.poll() is not None:
                raise RuntimeError(f"{what} exited with {proc.returncode}")
            try:
                async with http.get(url) as resp:
                    if resp.status < 500:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.05)
    raise RuntimeError(f"{what} did not come up")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


# -- the run ---------------------------------------------------------------------------------


async def run(seconds: float, workdir: Path) -> dict[str, Any]:
    slack_port, smtp_port = free_port(), free_port()
    fakes = subprocess.Popen(
        [sys.executable, __file__, "--fakes", str(slack_port), str(smtp_port)],
        stdout=subprocess.DEVNULL,
    )
    await wait_http(f"http://127.0.0.1:{slack_port}/arrivals", fakes, "fake channels")

    def start_bridge(
        name: str, digest: dict[str, Any]
    ) -> tuple[subprocess.Popen[bytes], int, Path]:
        port = free_port()
        db = workdir / f"{name}.db"
        config = {
            "listen": {"host": "127.0.0.1", "port": port},
            "token": TOKEN,
            "node": "bench",
            "outbox": {"backend": "sqlite", "path": str(db), "synchronous": "FULL"},
            "channels": {
                "slack": {
                    "type": "slack",
                    "token": "xoxb-bench",
                    "channel": "#bench",
                    "base_url": f"http://127.0.0.1:{slack_port}/api/",
                    "digest": digest,
                },
                "mail": {
                    "type": "mail",
                    "host": "127.0.0.1",
                    "port": smtp_port,
                    "security": "none",
                    "from": "kyoten@example.com",
                    "to": ["ops@example.com"],
                    "digest": digest,
                },
            },
            "routes": [{"channels": ["slack", "mail"]}],
        }
        (workdir / f"{name}.yaml").write_text(yaml.safe_dump(config))
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "kyoten.alerting",
                "serve",
                "--config",
                str(workdir / f"{name}.yaml"),
                "--log-level",
                "warning",
                "--no-access-log",
            ],
            stdout=subprocess.DEVNULL,
        )
        return proc, port, db

    results: dict[str, Any] = {}
    # Throughput: a flood, so the channels' storm protection is on (as it would be in
    # production): every event is stored and routed, and each channel gets a digest every 5 s.
    storm = {"threshold": 100, "window": 60, "max": 5000, "interval": 5}
    bridge, port, db = start_bridge("flood", storm)
    try:
        url = f"http://127.0.0.1:{port}/v1/events"
        await wait_http(f"http://127.0.0.1:{port}/health", bridge, "bridge")
        tpl = template_of(zabbix_body("999999"), "999999")
        for senders, base in ((1, 10**12), (16, 2 * 10**12)):
            cpu = cpu_seconds(bridge.pid)
            r = await wrk(url, tpl, f"Bearer {TOKEN}", senders, seconds, base, workdir)
            results[f"bridge_{senders}"] = r
            results[f"bridge_cpu_{senders}"] = cpu_seconds(bridge.pid) - cpu
        with sqlite3.connect(db) as c:
            results["stored"] = c.execute("SELECT count(*) FROM events").fetchone()[0]
    finally:
        stop(bridge)

    # Latency at a steady 200/s, one message per event (no digest), on a fresh bridge.
    bridge, port, db = start_bridge("steady", {"threshold": 0})
    try:
        url = f"http://127.0.0.1:{port}/v1/events"
        await wait_http(f"http://127.0.0.1:{port}/health", bridge, "bridge")
        accepted_at: dict[str, float] = {}
        lat = await steady(
            url,
            200.0,
            max(seconds, 5.0),
            3 * 10**12,
            lambda eid, t: accepted_at.__setitem__(eid, t),
        )
        results["accept_p50"], results["accept_p99"] = pct(lat, 0.5), pct(lat, 0.99)
        deadline = time.monotonic() + 30
        seen = await fetch_arrivals(slack_port)
        while time.monotonic() < deadline and not all(
            set(accepted_at) <= set(seen[ch]) for ch in ("slack", "mail")
        ):
            await asyncio.sleep(0.2)
            seen = await fetch_arrivals(slack_port)
        for ch in ("slack", "mail"):
            d = [seen[ch][e] - t for e, t in accepted_at.items() if e in seen[ch]]
            results[f"deliver_{ch}"] = (pct(d, 0.5), pct(d, 0.99), len(d), len(accepted_at))
    finally:
        stop(bridge)
        stop(fakes)

    am = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
    if am is None or shutil.which("wrk") is None:
        results["alertmanager"] = None
        return results
    am_port = free_port()
    (workdir / "am.yml").write_text(
        "route: {receiver: blackhole, group_by: ['...']}\nreceivers: [{name: blackhole}]\n"
    )
    am_proc = subprocess.Popen(
        [
            am,
            f"--config.file={workdir / 'am.yml'}",
            f"--storage.path={workdir / 'am'}",
            f"--web.listen-address=127.0.0.1:{am_port}",
            "--cluster.listen-address=",
            "--log.level=warn",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        await wait_http(f"http://127.0.0.1:{am_port}/-/ready", am_proc, "alertmanager")
        am_tpl = template_of(alertmanager_body("999999"), "999999")
        am_url = f"http://127.0.0.1:{am_port}/api/v2/alerts"
        for senders, base in ((1, 10**12), (16, 2 * 10**12)):
            cpu = cpu_seconds(am_proc.pid)
            results[f"am_{senders}"] = await wrk(
                am_url, am_tpl, "", senders, seconds, base, workdir
            )
            results[f"am_cpu_{senders}"] = cpu_seconds(am_proc.pid) - cpu
        results["alertmanager"] = subprocess.run(
            [am, "--version"], capture_output=True, text=True
        ).stdout.splitlines()[0]
    finally:
        stop(am_proc)
    return results


def report(r: dict[str, Any], seconds: float) -> bool:
    b1, b16 = r["bridge_1"], r["bridge_16"]
    print(
        f"kyoten bridge benchmark — {os.cpu_count()} CPUs, {seconds:g} s per closed-loop phase, "
        "SQLite outbox synchronous=FULL, one event per request, routed to 2 channels"
    )
    print(
        f"  accept rate,  1 sender : {b1.rate:8.0f} events/s  ({b1.requests} requests, "
        f"{b1.non_2xx} non-2xx, {b1.errors} socket errors)"
    )
    print(
        f"  accept rate, 16 senders: {b16.rate:8.0f} events/s  ({b16.requests} requests, "
        f"{b16.non_2xx} non-2xx, {b16.errors} socket errors)"
    )
    accepted = b1.requests + b16.requests - b1.non_2xx - b16.non_2xx
    print(f"  stored in the outbox afterwards: {r['stored']} of {accepted} accepted")
    print(
        f"  accept latency at a steady 200 events/s: p50 {r['accept_p50'] * 1e3:.1f} ms, "
        f"p99 {r['accept_p99'] * 1e3:.1f} ms"
    )
    for ch in ("slack", "mail"):
        p50, p99, n, total = r[f"deliver_{ch}"]
        print(
            f"  accept -> delivery to the {ch} fake at 200/s, one message per event: "
            f"p50 {p50 * 1e3:.0f} ms, "
            f"p99 {p99 * 1e3:.0f} ms ({n}/{total} delivered)"
        )
    ok = (
        b16.rate >= GOALS["rate16"]
        and r["accept_p99"] * 1e3 <= GOALS["p99_ms"]
        and r["stored"] >= accepted
    )
    if r.get("alertmanager"):
        a1, a16 = r["am_1"], r["am_16"]
        ratio = b16.rate / a16.rate
        print(f"  {r['alertmanager']} (in memory, nothing persisted), same client:")
        print(
            f"    1 sender : {a1.rate:8.0f} alerts/s   16 senders: {a16.rate:8.0f} alerts/s "
            f"({a1.non_2xx + a16.non_2xx} non-2xx)"
        )
        print(
            f"    ratio bridge/Alertmanager: 1 sender {b1.rate / a1.rate:.2f}, "
            f"16 senders {ratio:.2f}"
        )
        ok = ok and ratio >= GOALS["ratio"]
        print("  CPU time per 1,000 accepted events (each server's own user + system time):")
        cpu_ratio = 0.0
        for senders in (1, 16):
            b, a = r[f"bridge_{senders}"], r[f"am_{senders}"]
            b_ms = r[f"bridge_cpu_{senders}"] / max(1, b.requests - b.non_2xx) * 1e6
            a_ms = r[f"am_cpu_{senders}"] / max(1, a.requests - a.non_2xx) * 1e6
            cpu_ratio = b_ms / a_ms if a_ms else float("inf")
            print(
                f"    {senders:2d} sender{'s' if senders > 1 else ' '}: bridge {b_ms:6.0f} ms "
                f"(durable)   Alertmanager {a_ms:6.0f} ms (in memory)   "
                f"ratio {cpu_ratio:.2f}"
            )
        ok = ok and cpu_ratio <= GOALS["cpu_ratio"]
    else:
        print("  Alertmanager: not run (prometheus-alertmanager or wrk not installed)")
    print(
        f"  goals: >= {GOALS['rate16']:.0f}/s durable from 16 senders, p99 accept <= "
        f"{GOALS['p99_ms']:.0f} ms at 200/s, ratio >= {GOALS['ratio']} at 16 senders, CPU per "
        f"event <= {GOALS['cpu_ratio']:g}x Alertmanager's at 16 senders: "
        f"{'met' if ok else 'NOT met'}"
    )
    return ok


# -- PATLITE tower: accept → tower frame (goal p99 ≤ 50 ms; owned by the tower work) ---------
# The bridge runs as its own process with one tower channel pointing at a PNS emulator in this
# process, which timestamps the S frame that changes its lamps (time.monotonic is system-wide).
# Events alternate: a High problem (tower → red blinking), then its recovery (→ green).
# bench/tower.py measures the bare encode → TCP → ACK round trip.

TOWER_GOAL_P99_MS = 50.0


async def tower_latency(events: int, workdir: Path) -> list[float]:
    """Seconds from each webhook POST to the tower frame it causes, ``events`` times."""
    from kyoten.hardware.emulator import EmulatedTower, TcpFrontEnd
    from kyoten.hardware.model import Light
    from kyoten.hardware.protocol.pns import PnsNh

    frames: list[float] = []
    tower = EmulatedTower(PnsNh(), on_change=lambda _: frames.append(time.monotonic()))
    front = TcpFrontEnd(tower)
    await front.start()
    port = free_port()
    config = {
        "listen": {"host": "127.0.0.1", "port": port},
        "token": TOKEN,
        "outbox": {"backend": "sqlite", "path": str(workdir / "tower.db"), "synchronous": "FULL"},
        "channels": {"tower": {"type": "tower", "url": f"pns://127.0.0.1:{front.port}?model=nh"}},
        "routes": [{"channels": ["tower"]}],
    }
    (workdir / "tower.yaml").write_text(yaml.safe_dump(config))
    bridge = subprocess.Popen(
        [sys.executable, "-m", "kyoten.alerting", "serve", "--config", str(workdir / "tower.yaml"),
         "--log-level", "warning", "--no-access-log"],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    latencies: list[float] = []
    try:
        await wait_http(f"http://127.0.0.1:{port}/health", bridge, "bridge")
        await tower.wait_for(lambda s: s.green is Light.ON, 10)  # start-up: nothing open
        recovery = {
            "event_value": "0",
            "event_recovery_date": "2026.11.28",
            "event_recovery_time": "19:31:00",
        }
        async with aiohttp.ClientSession() as http:
            for i in range(events):
                body = zabbix_body(str(4 * 10**12 + i // 2))
                if i % 2:
                    body = {**body, **recovery}
                seen = len(frames)
                started = time.monotonic()
                async with http.post(
                    f"http://127.0.0.1:{port}/v1/events",
                    json=body,
                    headers={"Authorization": f"Bearer {TOKEN}"},
                ) as resp:
                    if resp.status != 202:
                        raise RuntimeError(f"bridge answered {resp.status}: {await resp.text()}")
                await tower.wait_for(lambda _, n=seen: len(frames) > n, 5)
                latencies.append(frames[seen] - started)
    finally:
        stop(bridge)
        await front.stop()
    return latencies


def report_tower(latencies: list[float]) -> bool:
    p50, p99 = pct(latencies, 0.5) * 1e3, pct(latencies, 0.99) * 1e3
    ok = p99 <= TOWER_GOAL_P99_MS
    print(
        f"  accept -> PATLITE tower frame (PNS over TCP, emulator), {len(latencies)} events: "
        f"p50 {p50:.1f} ms, p99 {p99:.1f} ms (goal p99 <= {TOWER_GOAL_P99_MS:.0f} ms: "
        f"{'met' if ok else 'NOT met'})"
    )
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument(
        "--fakes", nargs=2, type=int, metavar=("SLACK_PORT", "SMTP_PORT"), help=argparse.SUPPRESS
    )  # internal: run the fake channels
    parser.add_argument("--tower-events", type=int, default=200, help="0 skips the tower phase")
    parser.add_argument("--tower-only", action="store_true", help="only the tower phase (no wrk)")
    args = parser.parse_args()
    if args.fakes:
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(serve_fakes(*args.fakes))
        return 0
    if args.tower_only:
        with tempfile.TemporaryDirectory(prefix="kyoten-bench-") as tmp:
            report_tower(asyncio.run(tower_latency(args.tower_events, Path(tmp))))
        return 0
    if shutil.which("wrk") is None:
        print("bench/bridge.py needs wrk (apt-get install wrk)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="kyoten-bench-") as tmp:
        results = asyncio.run(run(args.seconds, Path(tmp)))
    report(results, args.seconds)
    if args.tower_events:
        with tempfile.TemporaryDirectory(prefix="kyoten-bench-") as tmp:
            report_tower(asyncio.run(tower_latency(args.tower_events, Path(tmp))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
