"""SIGKILL a real bridge process while it is accepting and delivering, restart it: every event
that got a 2xx is delivered, and at most the one message in flight at the kill is repeated
(the documented at-least-once window)."""

from __future__ import annotations

import asyncio
import collections
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import aiohttp

from .conftest import AUTH, FakeSlack, bridge_config, free_port, payload, write_config


def spawn(config: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "kyoten.alerting",
            "serve",
            "--config",
            str(config),
            "--log-level",
            "warning",
            "--no-access-log",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


async def wait_ready(http: aiohttp.ClientSession, base: str, proc: subprocess.Popen[bytes]) -> None:
    for _ in range(200):
        if proc.poll() is not None:
            raise AssertionError(
                f"bridge exited: {proc.stderr.read().decode() if proc.stderr else ''}"
            )
        try:
            async with http.get(f"{base}/health") as resp:
                if resp.status in (200, 503):
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.05)
    raise AssertionError("bridge did not come up")


def delivered_ids(slack: FakeSlack) -> list[str]:
    ids = []
    for call in slack.posts():
        m = re.search(r"\((\d+)\)", call.data["text"])
        if m:
            ids.append(m.group(1))
    return ids


async def test_sigkill_during_intake_and_delivery_loses_nothing(
    tmp_path: Path, slack: FakeSlack
) -> None:
    port = free_port()
    doc = bridge_config(tmp_path, None, slack, listen={"host": "127.0.0.1", "port": port})
    doc["outbox"]["synchronous"] = "FULL"
    config = write_config(tmp_path, doc)
    base = f"http://127.0.0.1:{port}"
    slack.delay = 0.03  # each Slack call takes a while, so one is in flight at the kill
    acked: list[str] = []

    async with aiohttp.ClientSession() as http:
        proc = spawn(config)
        try:
            await wait_ready(http, base, proc)

            async def sender() -> None:
                for i in range(200):
                    eid = str(5000 + i)
                    try:
                        async with http.post(
                            f"{base}/v1/events", json=payload(eid), headers=AUTH
                        ) as resp:
                            if resp.status == 202:
                                acked.append(eid)
                    except aiohttp.ClientError:
                        return  # the bridge is gone: Zabbix would retry later
                    await asyncio.sleep(0.005)

            task = asyncio.create_task(sender())
            while len(slack.posts()) < 8:
                await asyncio.sleep(0.01)
            os.kill(proc.pid, signal.SIGKILL)  # mid-intake and mid-delivery
            proc.wait(5)
            await task
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(5)
        before = len(slack.posts())
        assert 8 <= len(acked) < 200 and before < len(acked)

        proc = spawn(config)
        try:
            await wait_ready(http, base, proc)
            for _ in range(500):
                if set(acked) <= set(delivered_ids(slack)):
                    break
                await asyncio.sleep(0.02)
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(10)

    delivered = delivered_ids(slack)
    assert set(acked) <= set(delivered), sorted(set(acked) - set(delivered))
    repeats = [eid for eid, n in collections.Counter(delivered).items() if n > 1]
    assert len(repeats) <= 1, repeats
