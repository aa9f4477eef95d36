"""Shared by the collector's integration tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kyoten.agent.catalogue import FAMILIES
from kyoten.agent.catalogue.model import Family


def kyoten_get(
    config: Path, key: str, timeout: float = 15, path: Path | None = None
) -> tuple[Any, float, int]:
    """Run the real ``kyoten get`` in a subprocess: (parsed stdout, seconds, exit code).

    ``path``: a directory put first on PATH (a stack's own pcp tools, ``Cluster.pcp_bin``).
    """
    start = time.monotonic()
    exe = str(Path(sys.executable).with_name("kyoten"))
    env = dict(os.environ)
    if path is not None:
        env["PATH"] = f"{path}{os.pathsep}{env.get('PATH', '')}"
    proc = subprocess.run(
        [exe, "get", "--config", str(config), key],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )
    took = time.monotonic() - start
    assert proc.stderr == "", (
        f"kyoten get wrote to stderr (the agent would store it): {proc.stderr}"
    )
    return json.loads(proc.stdout), took, proc.returncode


def family(key: str) -> Family:
    return next(f for f in FAMILIES if f.key == key)


def assert_catalogue_shape(obj: dict[str, Any], fam: Family) -> None:
    """The JSON carries exactly the catalogue's fields, at the top and in every array row."""
    assert set(obj) == set(fam.fields()), set(obj) ^ set(fam.fields())
    for d in fam.discoveries:
        declared = {m.field for m in d.metrics}
        for row in obj[d.field]:
            assert set(row) == declared, set(row) ^ declared


def wait_until(
    check: Callable[[], Any],
    what: str,
    timeout: float = 20,
    interval: float = 0.25,
    on_timeout: Callable[[], Any] | None = None,
) -> Any:
    """Poll until ``check()`` returns something truthy; fail naming ``what`` (and what
    ``on_timeout()`` then says, e.g. the server's own view)."""
    end = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < end:
        try:
            last = check()
        except Exception as exc:  # e.g. Pgpool refusing connections mid-failover
            last = exc
        else:
            if last:
                return last
        time.sleep(interval)
    facts = f"; {on_timeout()!r}" if on_timeout is not None else ""
    raise AssertionError(f"timed out waiting for {what}; last value: {last!r}{facts}")
