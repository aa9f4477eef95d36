"""The plugin under Debian's real zabbix_agent2 6.0.14, serving the fake keys.

These pin the behaviour that only a real agent shows: registration at start, what Getter
reads back, errors as ZBX_NOTSUPPORTED, timeouts, a clean stop through the process group,
and concurrency through the agent's own scheduler.
"""

from __future__ import annotations

import json
import re
import signal
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from conftest import needs_agent2
from fakes import SECRET
from kyoten.shell.lab.agent2 import REGISTRATION_RACE, Agent2, AgentLabError
from zabbix_utils.exceptions import ProcessingError

pytestmark = [pytest.mark.integration, needs_agent2]
MakeAgent = Callable[..., Agent2]


def plugin_lines(launcher: Path, *extra: str) -> list[str]:
    return [f"Plugins.Kyoten.System.Path={launcher}", *extra]


def assert_clean_stop(agent: Agent2) -> None:
    """SIGTERM to the whole group, as systemd does: the agent must exit on its own."""
    plugin_pids = agent.children()
    code = agent.stop(signal.SIGTERM)
    text = agent.log()
    assert code == 0, agent.tail()
    assert "panic" not in text and "died" not in text, agent.tail()
    assert "Zabbix Agent 2 stopped" in text
    give_up = time.monotonic() + 5
    while any(running(pid) for pid in plugin_pids) and time.monotonic() < give_up:
        time.sleep(0.05)
    assert not any(running(pid) for pid in plugin_pids), "the plugin outlived the agent"


def running(pid: int) -> bool:
    """Alive and not a zombie (an orphan waits for a reaper that may be slow in containers)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def test_registers_at_start_and_answers_through_getter(
    make_agent: MakeAgent, fake_launcher: Path
) -> None:
    agent = make_agent(plugin_lines(fake_launcher))
    assert agent.get('test.echo[a,"b c",]') == ('["a", "b c", ""]', None)
    assert agent.get("test.echo[]") == ('[""]', None)
    assert agent.get("test.int") == ("42", None)
    _, error = agent.get("test.nope")
    assert (error is not None and "Unknown metric" in error) or "Unsupported" in str(error)
    assert len(agent.children()) == 1, "one operational plugin process"
    assert_clean_stop(agent)


def test_errors_come_back_as_not_supported_with_the_reason(
    make_agent: MakeAgent, fake_launcher: Path
) -> None:
    agent = make_agent(plugin_lines(fake_launcher))
    value, error = agent.get("test.fail")
    assert value is None and error is not None
    assert error.startswith("deliberate failure") and SECRET not in error
    _, bug = agent.get("test.bug")
    assert bug == "ZeroDivisionError: division by zero"
    assert SECRET not in agent.log()
    assert agent.get("test.echo[still,alive]") == ('["still", "alive"]', None)


def test_the_plugin_answers_before_the_60_plugin_timeout(
    make_agent: MakeAgent, fake_launcher: Path
) -> None:
    """6.0 tells plugins its Timeout, not PluginTimeout: Plugins.Kyoten.Timeout bridges it."""
    agent = make_agent(
        plugin_lines(fake_launcher, "Plugins.Kyoten.Timeout=2"), timeout=5, plugin_timeout=2
    )
    _, error = agent.get("test.block")
    assert error is not None and "No result for test.block within 1.7 s" in error, error
    assert agent.get("test.echo[after]") == ('["after"]', None)


def test_a_burst_of_concurrent_requests_is_answered(
    make_agent: MakeAgent, fake_launcher: Path
) -> None:
    """40 checks of 0.5 s each against a 3 s timeout: only concurrency gets them all in."""
    agent = make_agent(plugin_lines(fake_launcher, "Plugins.Kyoten.Workers=32"))
    keys = [f"test.sleep[0.5,{n}]" for n in range(20)] + [f"test.echo[{n}]" for n in range(20)]
    with ThreadPoolExecutor(len(keys)) as pool:
        results = list(pool.map(agent.get, keys))
    for key, (value, error) in zip(keys, results, strict=True):
        assert error is None, (key, error)
        n = re.search(r"\[(?:0\.5,)?(\d+)\]", key)
        assert n is not None
        expected = "slept 0.5" if key.startswith("test.sleep") else json.dumps([n.group(1)])
        assert value == expected
    assert_clean_stop(agent)


def test_stopping_the_agent_mid_query_is_clean(make_agent: MakeAgent, fake_launcher: Path) -> None:
    agent = make_agent(plugin_lines(fake_launcher), timeout=10)
    assert agent.get("test.echo[warm]")[1] is None
    with ThreadPoolExecutor(1) as pool:
        pending = pool.submit(agent.get, "test.block")
        time.sleep(0.5)
        assert_clean_stop(agent)
        with pytest.raises((OSError, ProcessingError)):  # the agent hung up, nothing else
            pending.result(15)


def test_agent_starts_repeatedly_without_the_60_registration_panic(
    make_agent: MakeAgent, kyoten_launcher: Path
) -> None:
    """6.0.14 races its own SIGCHLD handlers after the registration run (see
    ``lab.REGISTRATION_RACE``); only a plugin that exits at once after Terminate keeps that
    rare (about 1 start in 15 under this suite's load). One that exits through interpreter
    teardown (~3 ms) lost about every second start: twelve starts without retries allow
    three losses (a false alarm about 1 run in 200, a slow exit caught 13 times in 14)."""
    lost = 0
    for _ in range(12):
        try:
            agent = make_agent([f"Plugins.Kyoten.System.Path={kyoten_launcher}"], race_retries=0)
        except AgentLabError as exc:
            assert REGISTRATION_RACE in str(exc), exc
            lost += 1
            continue
        agent.stop()
    assert lost <= 3, f"{lost} of 12 starts lost the 6.0.14 registration race"


def test_a_rejected_option_stops_the_agent_with_the_reason(
    make_agent: MakeAgent, fake_launcher: Path
) -> None:
    with pytest.raises(AgentLabError, match=r"Plugins\.Kyoten\.Confg"):
        make_agent(plugin_lines(fake_launcher, "Plugins.Kyoten.Confg=/etc/kyoten.toml"))
