"""Fixtures for the agent 2 plugin: the agent side of a socketpair, and real agents.

``fakes.py`` sits next to this file and is imported by name, both here and by the launcher a
real agent execs, so this directory is put on ``sys.path`` (pytest runs with
``--import-mode=importlib``, which does not do that for us).
"""

from __future__ import annotations

import contextlib
import json
import socket
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from fakes import FakeHandler, fake_spec  # noqa: E402
from kyoten.agent.plugin import protocol as p  # noqa: E402
from kyoten.agent.plugin.session import PluginSpec, Session  # noqa: E402
from kyoten.shell.lab import agent2 as lab  # noqa: E402
from kyoten.shell.lab.agent2 import AgentLabError  # noqa: E402
from kyoten.shell.lab.cluster import stack_agent2  # noqa: E402

from tests import stacks  # noqa: E402

# the fixtures of tests/stacks.py, so this folder's real-stack tests run once per stack
cluster, cluster_factory, stack = stacks.cluster, stacks.cluster_factory, stacks.stack


class FakeAgent:
    """The agent's end of a socketpair: sends request bodies, reads whole frames back."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.decoder = p.FrameDecoder()
        self.frames: list[dict[str, Any]] = []
        self.logs: list[dict[str, Any]] = []
        self.raw = bytearray()

    def send(self, body: dict[str, object]) -> None:
        self.sock.sendall(p.request_frame(body))

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def recv(self, timeout: float = 5.0) -> dict[str, Any]:
        """The next frame from the plugin (Log frames included)."""
        self.sock.settimeout(timeout)
        while not self.frames:
            data = self.sock.recv(1 << 16)
            if not data:
                raise EOFError("the plugin closed the connection")
            self.raw += data
            self.frames.extend(json.loads(b) for b in self.decoder.feed(data))
        return self.frames.pop(0)

    def reply(self, timeout: float = 5.0) -> dict[str, Any]:
        """The next non-Log frame."""
        while True:
            frame = self.recv(timeout)
            if frame["type"] != p.MessageType.LOG:
                return frame
            self.logs.append(frame)

    def drain_logs(self, timeout: float = 0.3) -> list[dict[str, Any]]:
        """Collect Log frames that arrive within ``timeout``."""
        try:
            while True:
                frame = self.recv(timeout)
                assert frame["type"] == p.MessageType.LOG, frame
                self.logs.append(frame)
        except (TimeoutError, EOFError):
            pass
        return self.logs

    def export(self, req_id: int, key: str, *params: str, timeout: int | None = None) -> None:
        body: dict[str, object] = {"id": req_id, "type": 6, "key": key}
        if params:
            body["parameters"] = list(params)
        if timeout is not None:
            body["timeout"] = timeout
        self.send(body)

    def configure(self, timeout: int = 3, options: object = None) -> None:
        self.send(
            {
                "id": 1,
                "type": 8,
                "global_options": {"Timeout": timeout, "SourceIP": ""},
                "private_options": options,
            }
        )


class Running:
    """A session served on a thread, and the agent end talking to it."""

    def __init__(self, spec: PluginSpec, initial: bool, **kwargs: Any) -> None:
        ours, theirs = socket.socketpair()
        self.agent = FakeAgent(theirs)
        self.session = Session(ours, spec, initial=initial, **kwargs)
        self.result: list[str] = []
        self.thread = threading.Thread(target=lambda: self.result.append(self.session.run()))
        self.thread.start()
        self.ours = ours

    def finish(self, timeout: float = 5.0) -> str:
        """Wait for the session to end and return its reason."""
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the session did not end"
        return self.result[0]

    def close(self) -> None:
        if self.thread.is_alive():
            with contextlib.suppress(OSError):
                self.agent.send({"id": 0, "type": 5})
            self.thread.join(5)
        self.agent.sock.close()
        self.ours.close()


@pytest.fixture
def handlers() -> list[FakeHandler]:
    """Every FakeHandler the spec built, in order."""
    return []


@pytest.fixture
def start_session(
    handlers: list[FakeHandler],
) -> Iterator[Callable[..., Running]]:
    """``start_session(initial=False, fail_make=0, **session_kwargs)``."""
    made: list[Running] = []

    def start(initial: bool = False, fail_make: int = 0, **kwargs: Any) -> Running:
        run = Running(fake_spec(handlers, fail_make), initial, **kwargs)
        made.append(run)
        return run

    yield start
    for handler in handlers:
        handler.release.set()
    for run in made:
        run.close()


# ----------------------------------------------------------------------------- real agents

needs_agent2 = pytest.mark.skipif(
    not lab.agent2_available(), reason="needs root, user zabbix and /usr/sbin/zabbix_agent2"
)


@pytest.fixture(scope="session")
def agent_root() -> Iterator[Path]:
    root = lab.make_root()
    yield root
    lab.cleanup(root)


@pytest.fixture(scope="session")
def fake_launcher(agent_root: Path) -> Path:
    """An executable the agent can start that serves the fake spec."""
    body = (
        "import fakes\n"
        "from kyoten.agent.plugin.main import run\n"
        "import os\n"
        "os._exit(run(sys.argv[1:], fakes.fake_spec))"
    )
    return lab.write_launcher(agent_root / "fake-plugin", body, [str(HERE)])


class Agents:
    """Starts real agents in fresh directories under ``root``, all kept in :attr:`made`."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.made: list[lab.Agent2] = []

    def __call__(self, extra: list[str], race_retries: int = 1, **kwargs: Any) -> lab.Agent2:
        # unique whatever ran before in this session (a port number, once free, comes back)
        root = Path(tempfile.mkdtemp(prefix=f"agent-{len(self.made)}-", dir=self.root))
        root.chmod(0o755)
        lab.chown_to_zabbix(root)
        agent = lab.Agent2(root, extra, **kwargs)
        self.made.append(agent)
        return agent.start(race_retries=race_retries)


@pytest.fixture
def make_agent(agent_root: Path) -> Iterator[Agents]:
    """Start real agents (Debian's 6.0.14 unless ``command`` says otherwise) in fresh
    directories; all are stopped afterwards."""
    agents = Agents(agent_root)
    yield agents
    for agent in agents.made:
        agent.stop()


class StackAgents:
    """Starts the stack's own agents (``make_agent`` with the stack's agent 2 and pcp tools,
    :func:`kyoten.shell.lab.cluster.stack_agent2`), each checked to be the stack's
    (:func:`tests.stacks.assert_stack_agent`), even one that fails to start."""

    def __init__(self, stack: str, make: Agents, options: dict[str, Any]) -> None:
        self.stack = stack
        self.make = make
        self.options = options

    def __call__(self, extra: list[str], **kwargs: Any) -> lab.Agent2:
        try:
            agent = self.make(extra, **self.options, **kwargs)
        except AgentLabError:
            stacks.assert_stack_agent(self.make.made[-1], self.stack)
            raise
        stacks.assert_stack_agent(agent, self.stack)
        return agent

    def error(self, reason: str) -> str:
        """What this stack's agent reports for kyoten's error ``reason``."""
        return stacks.agent_error(self.stack, reason)


@pytest.fixture(scope="session")
def stack_agent_options(stack: str, agent_root: Path) -> dict[str, Any]:
    """How the stack runs zabbix_agent2; trixie's 4.6 pcp tools go to one directory here."""
    return stack_agent2(stack, agent_root / f"pcp-bin-{stack}")


@pytest.fixture
def stack_agent(stack: str, make_agent: Agents, stack_agent_options: dict[str, Any]) -> StackAgents:
    """Start agents of the stack: bookworm's zabbix_agent2 6.0.14, trixie's 7.0 with 4.6's
    pcp tools first on its PATH. A test using it runs once per stack."""
    return StackAgents(stack, make_agent, stack_agent_options)


@pytest.fixture(scope="session")
def kyoten_launcher() -> Path:
    """The real ``kyoten-agent2-plugin`` console script."""
    return lab.console_script("kyoten-agent2-plugin")


@pytest.fixture(scope="session")
def kyoten_cli_launcher() -> Path:
    """The real ``kyoten`` console script, for UserParameter mode."""
    return lab.console_script("kyoten")
