"""The plugin under agent 2 7.0 (Debian trixie's package, unpacked, run with trixie's loader).

The trixie tree is the one the Zabbix 7.0 lab builds and caches
(:func:`kyoten.shell.lab.zabbix70.ensure_root`, which installs zabbix-agent2 there too);
``KYOTEN_AGENT2_70_ROOT`` points the tests at another tree. 7.0 differs from 6.0 in
what the plugin sees and in what the agent does with the answers: the item timeout arrives in
every export, error texts are capitalised and get a full stop, a plugin exit it did not ask
for is a panic.
"""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fakes import SECRET
from kyoten.shell.lab import agent2 as lab

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not lab.agent2_available(), reason="needs root and user zabbix"),
]


@pytest.fixture(scope="session")
def command70() -> tuple[str, ...]:
    """How to run trixie's agent 2 7.0 (building the cached trixie root on first use)."""
    root = os.environ.get("KYOTEN_AGENT2_70_ROOT")
    if not root:
        from kyoten.shell.lab.zabbix70 import default_root, ensure_root

        ensure_root()
        root = str(default_root())
    command = lab.trixie_agent2(root)
    assert command is not None, f"no zabbix_agent2 or loader in the trixie tree {root}"
    return command


MakeAgent = Callable[..., lab.Agent2]


@pytest.fixture
def agent70(make_agent: MakeAgent, fake_launcher: Path, command70: tuple[str, ...]) -> lab.Agent2:
    return make_agent([f"Plugins.Kyoten.System.Path={fake_launcher}"], command=command70)


def test_70_registers_and_exports(agent70: lab.Agent2) -> None:
    assert "(7.0." in agent70.log()
    assert agent70.get('test.echo[a,"b c",]') == ('["a", "b c", ""]', None)
    assert agent70.get("test.int") == ("42", None)
    _, error = agent70.get("test.fail")
    assert error is not None and error.startswith("Deliberate failure") and error.endswith(".")
    assert SECRET not in error


def test_70_item_timeout_reaches_the_plugin_and_bounds_the_answer(agent70: lab.Agent2) -> None:
    """JSON passive checks carry the item timeout; the plugin answers before the agent's
    own "Timeout 2.5s reached" (item timeout + 0.5 s)."""
    value, _ = agent70.get_json("test.budget", 4)
    assert value is not None and 3.4 < float(value) < 3.75
    value, _ = agent70.get("test.budget")  # the plain form: 7.0 gives it 60 s
    assert value is not None and float(value) > 55
    _, error = agent70.get_json("test.block", 2)
    assert error is not None and "No result for test.block within 1.7 s" in error, error


def test_70_stop_through_the_process_group_is_clean(agent70: lab.Agent2) -> None:
    assert agent70.get("test.echo[x]")[1] is None
    assert agent70.stop(signal.SIGTERM) == 0
    text = agent70.log()
    assert "panic" not in text and "Zabbix Agent 2 stopped" in text, agent70.tail()


def test_70_real_plugin_values(
    cluster: Any,
    kyoten_config: Path,
    make_agent: MakeAgent,
    kyoten_launcher: Path,
    command70: tuple[str, ...],
) -> None:
    agent = make_agent(
        [f"Plugins.Kyoten.System.Path={kyoten_launcher}", f"Plugins.Kyoten.Config={kyoten_config}"],
        command=command70,
    )
    value, error = agent.get_json("kyoten.pg[site-a]", 3)
    assert error is None and value is not None
    assert json.loads(value)["target"] == "site-a"
    value, error = agent.get_json("kyoten.pgpool.backends[pool-a]", 3)
    assert error is None and value is not None and len(json.loads(value)) == 2
    _, error = agent.get_json("kyoten.pg[nowhere]", 3)
    assert error is not None and "Unknown postgres target 'nowhere'" in error
    assert agent.stop(signal.SIGTERM) == 0 and "panic" not in agent.log()
