"""The real plugin (catalogue + persistent collector) under each stack's own zabbix_agent2
(bookworm: Debian's 6.0.14; trixie: 7.0, with Pgpool-II 4.6's pcp tools), against the
stack's PostgreSQL primary + standby and two Pgpool-II, compared with UserParameter mode
through a second agent on the same targets. ``stack_agent`` checks that every agent is the
stack's own, and asks 7.0 with the item timeout as its server would; where 6.0 and 7.0 answer
differently (error texts), ``stack_agent.error`` says how."""

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
from conftest import StackAgents, needs_agent2
from kyoten.agent.export.userparameters import render_userparameters
from kyoten.shell.lab.agent2 import ZABBIX_USER, Agent2, AgentLabError
from kyoten.shell.lab.procs import make_dir, write_file

from tests.stacks import assert_stack_agent

pytestmark = [pytest.mark.integration, needs_agent2]

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


def plugin_agent(agents: StackAgents, launcher: Path, config: Path, **kw: Any) -> Agent2:
    return agents(
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
    stack_agent: StackAgents,
    kyoten_launcher: Path,
    kyoten_cli_launcher: Path,
) -> None:
    plugin = plugin_agent(stack_agent, kyoten_launcher, kyoten_config)
    userparams = render_userparameters(str(kyoten_cli_launcher), str(kyoten_config))
    classic = stack_agent([ln for ln in userparams.splitlines() if not ln.startswith("#")])

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
    # makes it "not supported"); the plugin answers ZBX_NOTSUPPORTED with the same reason,
    # as the agent words it
    pv, perr = plugin.get("kyoten.pg[nowhere]")
    uv, _ = classic.get("kyoten.pg[nowhere]")
    assert pv is None and perr is not None
    assert uv is not None and set(json.loads(uv)) == {"error"}
    reason = json.loads(uv)["error"]
    assert reason.startswith("unknown postgres target 'nowhere'"), reason
    assert perr == stack_agent.error(reason)
    _, perr = plugin.get("kyoten.pg[site-a,extra]")
    assert perr is not None and "takes 1 parameter" in perr
    assert "panic" not in plugin.log()


def test_the_collector_under_the_agent_runs_the_stacks_pcp_tools(
    cluster: Any,
    kyoten_config: Path,
    stack_agent: StackAgents,
    kyoten_launcher: Path,
    kyoten_cli_launcher: Path,
    agent_root: Path,
) -> None:
    """``watchdog = true`` has the collector run pcp_watchdog_info, in the plugin and in
    UserParameter mode alike, as the agent's account: the stack's pcp tools (trixie: 4.6's,
    not the host's 4.3) reach Pgpool, which has no watchdog here, and both modes say so."""
    text = kyoten_config.read_text().replace(
        "[pgpool.pool-a]\n", "[pgpool.pool-a]\nwatchdog = true\n"
    )
    directory = make_dir(agent_root / f"watchdog-{cluster.stack}", ZABBIX_USER, 0o755)
    config = write_file(directory / "kyoten.toml", text, ZABBIX_USER, 0o640)
    plugin = plugin_agent(stack_agent, kyoten_launcher, config)
    userparams = render_userparameters(str(kyoten_cli_launcher), str(config))
    classic = stack_agent([ln for ln in userparams.splitlines() if not ln.startswith("#")])
    pv, perr = plugin.get("kyoten.pgpool[pool-a]")
    uv, _ = classic.get("kyoten.pgpool[pool-a]")
    assert pv is None and perr is not None and uv is not None
    reason = json.loads(uv)["error"]
    assert "pcp_watchdog_info" in reason and "watchdog is not enabled" in reason, reason
    assert perr == stack_agent.error(reason)
    assert_stack_agent(plugin, cluster.stack)  # now with the plugin process that ran pcp
    assert len(plugin.children()) == 1


def test_a_burst_of_real_requests_is_answered(
    cluster: Any, kyoten_config: Path, stack_agent: StackAgents, kyoten_launcher: Path
) -> None:
    agent = plugin_agent(stack_agent, kyoten_launcher, kyoten_config)
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
    stack_agent: StackAgents,
    kyoten_launcher: Path,
    agent_root: Path,
) -> None:
    c = cluster_factory()
    config = c.write_config(agent_root / f"kyoten-{c.primary.port}")
    agent = plugin_agent(stack_agent, kyoten_launcher, config)
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
    stack_agent: StackAgents, kyoten_launcher: Path, agent_root: Path
) -> None:
    missing = agent_root / "no-such-kyoten.toml"
    # 6.0: "cannot register plugins: [Kyoten] ..."; 7.0: "Cannot register plugins: ..."
    with pytest.raises(AgentLabError, match=r"(?i)cannot register plugins.*not found"):
        stack_agent(
            [f"Plugins.Kyoten.System.Path={kyoten_launcher}", f"Plugins.Kyoten.Config={missing}"]
        )
