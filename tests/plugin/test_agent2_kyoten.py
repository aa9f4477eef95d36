"""The real plugin (catalogue + persistent collector) under Debian's zabbix_agent2 6.0.14,
against the lab's PostgreSQL primary + standby and two Pgpool-II, compared with UserParameter
mode through a second agent on the same targets."""

from __future__ import annotations

import json
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from conftest import needs_agent2
from kyoten.agent.export.userparameters import render_userparameters
from kyoten.shell.lab.agent2 import Agent2, AgentLabError

pytestmark = [pytest.mark.integration, needs_agent2]
MakeAgent = Callable[..., Agent2]

KEYS = [
    "kyoten.pg[site-a]",
    "kyoten.pg[site-b]",
    "kyoten.pg.standbys[site-a]",
    "kyoten.pg.slots[site-a]",
    "kyoten.pgpool[pool-a]",
    "kyoten.pgpool[pool-b]",
    "kyoten.pgpool.backends[pool-a]",
    "kyoten.cross",
]


def plugin_agent(make_agent: MakeAgent, launcher: Path, config: Path, **kw: Any) -> Agent2:
    return make_agent(
        [f"Plugins.Kyoten.System.Path={launcher}", f"Plugins.Kyoten.Config={config}"], **kw
    )


def stable(value: Any) -> Any:
    """What must be identical between two snapshots taken moments apart: the structure
    (fields, array lengths, value types) and every string (names, roles, states,
    addresses). Numbers (lags, ages, durations, counters) legitimately move."""
    if isinstance(value, dict):
        return {k: stable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [stable(v) for v in value]
    if isinstance(value, bool | str) or value is None:
        return value
    return type(value).__name__ if not isinstance(value, int | float) else "number"


def test_plugin_mode_returns_what_userparameter_mode_returns(
    cluster: Any,
    kyoten_config: Path,
    make_agent: MakeAgent,
    kyoten_launcher: Path,
    kyoten_cli_launcher: Path,
) -> None:
    plugin = plugin_agent(make_agent, kyoten_launcher, kyoten_config)
    userparams = render_userparameters(str(kyoten_cli_launcher), str(kyoten_config))
    classic = make_agent([ln for ln in userparams.splitlines() if not ln.startswith("#")])

    def both(key: str) -> tuple[Any, Any]:
        pv, perr = plugin.get(key)
        uv, uerr = classic.get(key)
        assert perr is None and uerr is None, (key, perr, uerr)
        assert pv is not None and uv is not None
        pobj, uobj = json.loads(pv), json.loads(uv)
        if key.startswith("kyoten.pgpool["):
            # the only intended difference: the plugin checks the mapped backends itself
            assert (pobj.pop("live_checks"), uobj.pop("live_checks")) == ("kyoten", "pgpool")
        return stable(pobj), stable(uobj)

    for key in KEYS:
        pobj, uobj = both(key)
        # plugin mode reads Pgpool's replication_state/sync_state in the background, every
        # replication_refresh (10 s) seconds: a change just before the first poll shows there
        # one refresh later, never later than that
        end = time.monotonic() + 12 if key.startswith("kyoten.pgpool") else 0
        while pobj != uobj and time.monotonic() < end:
            time.sleep(1)
            pobj, uobj = both(key)
        assert pobj == uobj, key
    # a failure: UserParameter mode stores {"error": ...} (the template's CHECK_JSON_ERROR
    # makes it "not supported"); the plugin answers ZBX_NOTSUPPORTED with the same reason
    pv, perr = plugin.get("kyoten.pg[nowhere]")
    uv, _ = classic.get("kyoten.pg[nowhere]")
    assert pv is None and perr is not None
    assert uv is not None and json.loads(uv) == {"error": perr}
    assert "unknown postgres target 'nowhere'" in perr
    _, perr = plugin.get("kyoten.pg[site-a,extra]")
    assert perr is not None and "takes 1 parameter" in perr
    assert "panic" not in plugin.log()


def test_a_burst_of_real_requests_is_answered(
    cluster: Any, kyoten_config: Path, make_agent: MakeAgent, kyoten_launcher: Path
) -> None:
    agent = plugin_agent(make_agent, kyoten_launcher, kyoten_config)
    keys = KEYS * 6  # 48 checks at once, identical ones sharing snapshots
    with ThreadPoolExecutor(len(keys)) as pool:
        results = list(pool.map(agent.get, keys))
    for key, (value, error) in zip(keys, results, strict=True):
        assert error is None, (key, error)
        assert value is not None
        assert isinstance(json.loads(value), dict | list)
    assert len(agent.children()) == 1


def test_stopping_a_target_mid_query_crashes_nothing_and_reconnects(
    cluster_factory: Callable[[], Any],
    make_agent: MakeAgent,
    kyoten_launcher: Path,
    agent_root: Path,
) -> None:
    c = cluster_factory()
    config = c.write_config(agent_root / f"kyoten-{c.primary.port}")
    agent = plugin_agent(make_agent, kyoten_launcher, config)
    assert agent.get("kyoten.pg[site-b]")[1] is None  # the persistent connection is open
    plugin_pid = agent.children()
    errors: list[str] = []
    stop = threading.Event()

    def poll() -> None:
        while not stop.is_set():
            for key in ("kyoten.pg[site-b]", "kyoten.pgpool[pool-a]", "kyoten.cross"):
                _, error = agent.get(key)
                if error is not None:
                    errors.append(error)

    pollers = [threading.Thread(target=poll) for _ in range(4)]
    for t in pollers:
        t.start()
    time.sleep(0.3)
    c.standby.stop("immediate")  # while four pollers hit it
    time.sleep(1.0)
    _, down = agent.get("kyoten.pg[site-b]")
    c.standby.start()
    stop.set()
    for t in pollers:
        t.join(30)
    assert down is not None and f":{c.standby.port}" in down, down
    assert agent.alive() and agent.children() == plugin_pid, "the plugin was restarted?"
    deadline = time.monotonic() + 20
    value, error = agent.get("kyoten.pg[site-b]")
    while error is not None and time.monotonic() < deadline:
        time.sleep(0.3)
        value, error = agent.get("kyoten.pg[site-b]")
    assert error is None and value is not None, error
    assert json.loads(value)["in_recovery"] == 1
    assert all("Traceback" not in e for e in errors)
    code = agent.stop(signal.SIGTERM)
    assert code == 0 and "panic" not in agent.log(), agent.tail()


def test_a_configured_kyoten_config_that_does_not_load_stops_the_agent(
    make_agent: MakeAgent, kyoten_launcher: Path, agent_root: Path
) -> None:
    missing = agent_root / "no-such-kyoten.toml"
    with pytest.raises(AgentLabError, match=r"cannot register plugins.*not found"):
        make_agent(
            [f"Plugins.Kyoten.System.Path={kyoten_launcher}", f"Plugins.Kyoten.Config={missing}"]
        )
