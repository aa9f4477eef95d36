"""The health endpoint's real surroundings: a site-grouped kyoten.toml, a real Zabbix 6.0
frontend, and ``kyoten health serve`` run as its own process.

The frontend is Debian's, unmodified, under ``php -S``. Debian's frontend reads the fixed path
/etc/zabbix/zabbix.conf.php, so the PHP server runs in a private mount namespace where
/etc/zabbix is bind-mounted from a directory of ours: the machine's /etc/zabbix, and any other
lab frontend pointed at it, are never touched.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kyoten.shell.lab.procs import free_port, make_dir, port_open, spawn, wait_for, write_file
from kyoten.shell.lab.zabbix import (
    DEBIAN_SQL,
    ZabbixDb,
    api_url,
    frontend_conf,
    schema_files,
    serve_frontend,
    wait_api,
)

from tests.conftest import Cluster


def kyoten_binary() -> str:
    """The kyoten console script of the interpreter running the tests."""
    return str(Path(sys.executable).with_name("kyoten"))


def site_config(c: Cluster, directory: Path) -> Path:
    """kyoten.toml with the two-site grouping the health check reads: site-a is the primary and
    pool-a, site-b the standby and pool-b (the lab's own config, sites included)."""
    return c.write_config(directory)


@dataclass
class Frontend:
    """Debian's Zabbix 6.0 frontend on 127.0.0.1:port."""

    port: int
    proc: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return api_url(self.port)

    def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            # php -S forks workers into its own session: end the whole group
            os.killpg(self.proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=10)
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)


def start_frontend(db: ZabbixDb, workdir: Path) -> Frontend:
    """Load the schema if needed, then serve the frontend reading our zabbix.conf.php."""
    db.create(schema_files(DEBIAN_SQL))
    web = make_dir(workdir, "root", 0o755)
    write_file(web / "zabbix.conf.php", frontend_conf(db, None, "kyoten health"), "root", 0o644)
    port = free_port()
    front = Frontend(port, serve_frontend(web, port, web / "php.log", workers=2))
    try:
        wait_api(port, timeout=60)
    except Exception:
        front.stop()
        raise
    return front


@pytest.fixture(scope="session")
def zabbix_frontend(cluster: Cluster, lab_root: Path) -> Iterator[Frontend]:
    """A real frontend whose database lives on the shared cluster's primary (as in the design)."""
    front = start_frontend(ZabbixDb(cluster.primary), lab_root / "health-frontend")
    yield front
    front.stop()


# ----------------------------------------------------------------------------- the endpoint
@dataclass
class Answer:
    status: int
    body: bytes
    seconds: float

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def text(self) -> str:
        return self.body.decode()


def fetch(url: str, timeout: float = 5.0) -> Answer:
    """GET ``url``; a 503 is an answer, not an error."""
    start = time.monotonic()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return Answer(resp.status, resp.read(), time.monotonic() - start)
    except urllib.error.HTTPError as exc:
        return Answer(exc.code, exc.read(), time.monotonic() - start)


@dataclass
class Endpoint:
    """A running ``kyoten health serve``."""

    base: str
    proc: subprocess.Popen[bytes]
    log: Path

    def get(self, path: str = "/health") -> Answer:
        return fetch(self.base + path)

    def wait_for(self, want_status: int, failed: list[str], timeout: float = 30.0) -> Answer:
        """Poll until the endpoint answers ``want_status`` with exactly ``failed`` failing."""
        end = time.monotonic() + timeout
        last: Answer | None = None
        while time.monotonic() < end:
            last = self.get()
            if last.status == want_status and last.json()["failed"] == failed:
                return last
            time.sleep(0.5)
        detail = last.body.decode() if last else "no answer"
        pytest.fail(f"no {want_status} with failed={failed} within {timeout:.0f} s: {detail}")


@contextlib.contextmanager
def serve(config: Path, site: str, api: str, workdir: Path) -> Iterator[Endpoint]:
    """``kyoten health serve`` on a free loopback port, one round per second."""
    port = free_port()
    log = workdir / f"health-{site}-{port}.log"
    argv = [
        kyoten_binary(),
        *("health", "serve", "--config", str(config), "--site", site),
        *("--zabbix-api", api, "--listen", f"127.0.0.1:{port}"),
        *("--interval", "1", "--check-timeout", "2.5"),
    ]
    proc = spawn(argv, user=None, log=log)
    try:
        wait_for(
            lambda: port_open(port) or proc.poll() is not None,
            f"kyoten health serve on :{port}",
            timeout=20,
        )
        if proc.poll() is not None:
            pytest.fail(f"kyoten health serve exited {proc.returncode}: {log.read_text()}")
        yield Endpoint(f"http://127.0.0.1:{port}", proc, log)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
