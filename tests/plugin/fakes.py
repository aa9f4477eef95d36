"""A plugin spec with trivial, controllable keys, for the state machine and real-agent tests.

It is imported both by the tests and by ``fake_plugin.py``, the executable a real agent
starts (as user ``zabbix``, with Debian's python3), so it uses nothing beyond the stdlib and
the plugin package.
"""

from __future__ import annotations

import json
import threading
import time

from kyoten.agent.plugin.metrics import register_list
from kyoten.agent.plugin.options import PluginOptions
from kyoten.agent.plugin.session import PluginSpec

NAME = "Kyoten"
SECRET = "hunter2-s3cret"


class ExpectedError(Exception):
    """Stands in for KyotenError: a message meant for the operator."""


class FakeHandler:
    """``test.echo[...]`` params as JSON; ``test.sleep[s]``; ``test.fail``; ``test.bug``;
    ``test.count`` (calls so far, slowly); ``test.block`` (waits for :attr:`release`);
    ``test.int`` (a contract slip: returns an int); ``test.budget`` (the deadline given);
    ``test.thread`` (the name of the thread computing it)."""

    def __init__(self, options: PluginOptions) -> None:
        self.options = options
        self.calls = 0
        self.lock = threading.Lock()
        self.release = threading.Event()
        self.closed = False

    def get(self, key: str, params: list[str], deadline_s: float) -> str:
        with self.lock:
            self.calls += 1
            calls = self.calls
        if key == "test.echo":
            return json.dumps(params)
        if key == "test.sleep":
            time.sleep(float(params[0]))
            return f"slept {params[0]}"
        if key == "test.fail":
            raise ExpectedError(f"deliberate failure (password={SECRET}; server said {SECRET})")
        if key == "test.bug":
            raise ZeroDivisionError("division by zero")
        if key == "test.count":
            time.sleep(float(params[0]) if params and params[0] else 0.2)
            return str(calls)
        if key == "test.block":
            self.release.wait(60)
            return "released"
        if key == "test.int":
            return 42  # type: ignore[return-value]
        if key == "test.budget":
            return f"{deadline_s:.3f}"
        if key == "test.thread":
            return threading.current_thread().name
        raise ExpectedError(f"unknown key {key}")

    def close(self) -> None:
        self.closed = True


METRICS = [
    ("test.echo", "echo the parameters back as a JSON array"),
    ("test.sleep", "Sleep for the given number of seconds."),
    ("test.fail", "Always fails with a message."),
    ("test.bug", "Always fails with an unexpected exception."),
    ("test.count", "Number of computations so far."),
    ("test.block", "Blocks until released."),
    ("test.int", "Returns a number instead of a string."),
    ("test.budget", "The deadline the handler was given."),
    ("test.thread", "The thread that computes it."),
]


def fake_spec(handlers: list[FakeHandler] | None = None, fail_make: int = 0) -> PluginSpec:
    """A spec whose handlers are appended to ``handlers``; the first ``fail_make`` attempts
    to build one raise, like a config that cannot be loaded yet."""
    failures = [fail_make]

    def make(options: PluginOptions) -> FakeHandler:
        if failures[0] > 0:
            failures[0] -= 1
            raise ExpectedError(f"config /nonexistent.toml not found (password={SECRET})")
        handler = FakeHandler(options)
        if handlers is not None:
            handlers.append(handler)
        return handler

    def check(options: PluginOptions) -> None:
        if options.config_path == "/reject":
            raise ExpectedError("config /reject does not load")

    return PluginSpec(
        name=NAME,
        metrics=lambda: register_list(METRICS),
        make_handler=make,
        check=check,
        expected=(ExpectedError,),
        secrets=lambda handler: [SECRET],
    )
