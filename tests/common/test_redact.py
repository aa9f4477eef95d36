"""No secret leaves kyoten in anything it writes, wherever it could.

One known secret is fed through each real code path that takes a password, a token or a URL
with credentials, and everything that path writes for people to read (error replies, log
lines, ``/health``, dead letters, CLI output, exception texts and their tracebacks) must not
contain it. Where the secret really does reach the text (a library or a far end echoing it),
the case also checks that the mask is there, so the case cannot pass because the secret never
got near the output. :mod:`kyoten.common.redact` is the helper behind most of these.

Everything runs against 127.0.0.1: closed ports, and small fakes that answer badly on purpose.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import http.server
import io
import json
import logging
import socket
import subprocess
import sys
import threading
import traceback
from collections.abc import Awaitable, Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from kyoten.common.redact import MASK

SECRET = "Zq7-s3cret-Redact-Me"
TOKEN = f"tok-{SECRET}"  # every configured secret contains SECRET: a partial leak shows too
KYOTEN = str(Path(sys.executable).with_name("kyoten"))


@dataclasses.dataclass
class Ctx:
    tmp_path: Path
    monkeypatch: pytest.MonkeyPatch
    caplog: pytest.LogCaptureFixture

    def logs(self, level: int = logging.DEBUG) -> str:
        """Every record of ``level`` or above logged in this process so far, message and
        traceback."""
        return "\n".join(
            f"{r.name} {r.getMessage()} {r.exc_text or ''} "
            + (trace(r.exc_info[1]) if r.exc_info and r.exc_info[1] else "")
            for r in self.caplog.records
            if r.levelno >= level
        )


Case = Callable[[Ctx], Awaitable[list[str]]]
CASES: dict[str, Case] = {}


def case(fn: Case) -> Case:
    CASES[fn.__name__.replace("_", "-")] = fn
    return fn


# ----------------------------------------------------------------------------- helpers


def closed_port() -> int:
    """A 127.0.0.1 port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def garbage_server() -> Iterator[int]:
    """A TCP port on 127.0.0.1 that answers anything with bytes no protocol expects."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    srv.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn, contextlib.suppress(OSError):
                conn.sendall(b"garbage, not any protocol\r\n\r\n")
                conn.settimeout(0.5)
                conn.recv(65536)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield int(srv.getsockname()[1])
    finally:
        stop.set()
        thread.join(5)
        srv.close()


def trace(exc: BaseException) -> str:
    """The exception as a traceback would show it, causes and context included."""
    return "".join(traceback.format_exception(exc))


def agent_config(ctx: Ctx) -> tuple[Path, dict[str, int]]:
    """kyoten.toml whose every target sits on a closed port and has SECRET for a password."""
    ports = {name: closed_port() for name in ("pg", "pool", "pcp")}
    path = ctx.tmp_path / "kyoten.toml"
    path.write_text(
        "deadline = 2.5\nconnect_timeout = 2\n\n"
        "[postgres.site-a]\n"
        f'host = "127.0.0.1"\nport = {ports["pg"]}\nuser = "kyoten"\n'
        f'password = "{SECRET}"\nsite = "site-a"\n\n'
        "[pgpool.pool-a]\n"
        f'host = "127.0.0.1"\nport = {ports["pool"]}\nuser = "kyoten"\n'
        f'password = "{SECRET}"\nsite = "site-a"\n'
        f'pcp_port = {ports["pcp"]}\npcp_user = "kyoten"\npcp_password = "pcp-{SECRET}"\n'
    )
    return path, ports


# ----------------------------------------------------------------------------- agent 2 plugin


class PluginRun:
    """A real :class:`~kyoten.agent.plugin.session.Session` on a socketpair, driven as the
    agent drives it; keeps every frame it sends (Log frames included)."""

    def __init__(self, spec: Any) -> None:
        from kyoten.agent.plugin import protocol as p
        from kyoten.agent.plugin.session import KYOTEN_LOG, Session

        self.p = p
        self._level = KYOTEN_LOG.level
        self._kyoten_log = KYOTEN_LOG
        ours, self.sock = socket.socketpair()
        self._ours = ours
        self.session = Session(ours, spec, initial=False, log_level=logging.DEBUG)
        self.thread = threading.Thread(target=self.session.run, daemon=True)
        self.thread.start()
        self.decoder = p.FrameDecoder()
        self.frames: list[dict[str, Any]] = []
        self.send(
            {
                "id": 1,
                "type": 8,
                "global_options": {"Timeout": 3, "SourceIP": ""},
                "private_options": None,
            }
        )

    def send(self, body: dict[str, object]) -> None:
        self.sock.sendall(self.p.request_frame(body))

    def _read(self, timeout: float) -> bool:
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(1 << 16)
        except TimeoutError:
            return False
        assert data, "the plugin closed the connection"
        self.frames.extend(json.loads(b) for b in self.decoder.feed(data))
        return True

    def export(self, req_id: int, key: str, *params: str) -> dict[str, Any]:
        """Send one export and wait for its reply."""
        self.send({"id": req_id, "type": 6, "key": key, "parameters": list(params)})
        while True:
            for frame in self.frames:
                if frame["type"] == self.p.MessageType.EXPORT_RESPONSE and frame["id"] == req_id:
                    return frame
            assert self._read(10), f"no reply to export {req_id}"

    def finish(self) -> list[str]:
        """Terminate the session; every frame it sent, as text."""
        while self._read(0.3):  # Log frames still on their way
            pass
        self.send({"id": 0, "type": 5})
        self.thread.join(10)
        self.sock.close()
        self._ours.close()
        self._kyoten_log.setLevel(self._level)
        return [json.dumps(f, ensure_ascii=False) for f in self.frames]

    def logs(self) -> list[str]:
        return [f["message"] for f in self.frames if f["type"] == self.p.MessageType.LOG]


@case
async def agent2_plugin_error_replies(ctx: Ctx) -> list[str]:
    """kyoten's own plugin spec: the loaded config's passwords are masked in error replies,
    here one echoing an item key parameter that happens to be the password."""
    from kyoten.agent.plugin.bindings import kyoten_spec

    config, ports = agent_config(ctx)
    ctx.monkeypatch.setenv("KYOTEN_CONFIG", str(config))
    run = PluginRun(kyoten_spec())
    try:
        echoed = run.export(2, "kyoten.pg", SECRET)
        unreachable = run.export(3, "kyoten.pg", "site-a")
        pool = run.export(4, "kyoten.pgpool", "pool-a")
    finally:
        frames = run.finish()
    assert f"unknown postgres target '{MASK}'" in echoed["error"], echoed
    assert f"127.0.0.1:{ports['pg']}" in unreachable["error"], unreachable
    assert f"127.0.0.1:{ports['pool']}" in pool["error"], pool
    return frames


@case
async def agent2_plugin_log_lines(ctx: Ctx) -> list[str]:
    """Log frames and error replies for a config that does not load yet (before any secret is
    known: the pattern masks ``password=...``), then for a bug whose exception text, traceback
    and a warning logged on the way all carry a configured password. (The Log frames are the
    plugin's only log output: its Python logging reaches nothing else, so the raw records are
    not part of what is checked.)"""
    from kyoten.agent.config import load_config
    from kyoten.agent.errors import KyotenError
    from kyoten.agent.plugin.bindings import KyotenHandler, kyoten_spec

    config, _ = agent_config(ctx)

    class Buggy(KyotenHandler):
        def get(self, key: str, params: list[str], deadline_s: float) -> str:
            logging.getLogger("kyoten.agent.collector").warning("connecting with %s", SECRET)
            raise RuntimeError(f"driver said: {SECRET}")

    attempts = []

    def make(options: Any) -> KyotenHandler:
        attempts.append(options)
        if len(attempts) == 1:
            raise KyotenError(f"cannot load: host=10.0.0.1 password={SECRET} dbname=x")
        return Buggy(load_config(str(config)))

    run = PluginRun(dataclasses.replace(kyoten_spec(), make_handler=make))
    try:
        not_loaded = run.export(2, "kyoten.pg", "site-a")
        bug = run.export(3, "kyoten.pg", "site-a")
    finally:
        frames = run.finish()
    logs = "\n".join(run.logs())
    assert not_loaded["error"] == f"cannot load: host=10.0.0.1 password={MASK} dbname=x"
    assert bug["error"] == f"RuntimeError: driver said: {MASK}", bug
    assert f"connecting with {MASK}" in logs
    assert f"cannot start collecting: cannot load: host=10.0.0.1 password={MASK}" in logs
    assert "Traceback" in logs and f"RuntimeError: driver said: {MASK}" in logs, logs
    return frames


# ----------------------------------------------------------------------------- kyoten get


@case
async def kyoten_get_and_check_config(ctx: Ctx) -> list[str]:
    """UserParameter mode and ``check-config --connect`` on targets with passwords (Pgpool's
    SQL port refusing, so its PCP fallback runs with the PCP password too)."""
    config, ports = agent_config(ctx)
    shown = []
    for key in ("kyoten.pg[site-a]", "kyoten.pgpool[pool-a]", "kyoten.cross"):
        out = subprocess.run(
            [KYOTEN, "get", key, "--config", str(config)],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert out.returncode == (0 if key == "kyoten.cross" else 1), out
        named = ports["pcp" if key == "kyoten.pgpool[pool-a]" else "pg"]
        assert f"127.0.0.1:{named}" in out.stdout, out
        shown += [out.stdout, out.stderr]
    out = subprocess.run(
        [KYOTEN, "check-config", "--connect", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert out.returncode == 1 and f"127.0.0.1:{ports['pg']}" in out.stdout, out
    assert out.stdout.count("FAILED") == 2, out.stdout
    return [*shown, out.stdout, out.stderr]


@case
async def agent_config_errors(ctx: Ctx) -> list[str]:
    """Config validation and TOML syntax errors, in the library and in ``kyoten check-config``."""
    from kyoten.agent.config import parse_config
    from kyoten.agent.errors import ConfigError

    (ctx.tmp_path / "pw").write_text(f"{SECRET}\n")
    bad = {
        "postgres": {
            "a": {"host": "h", "password": [SECRET]},
            "b": {"host": "h", "password": SECRET, "password_file": str(ctx.tmp_path / "pw")},
            "c": {"host": "h", "port": "x", "password": SECRET, "sslmode": "no"},
        },
        "pgpool": {
            "p": {"host": "h", "pcp_port": 9898, "pcp_password": {"x": SECRET}, "pcppass": 7}
        },
    }
    with pytest.raises(ConfigError) as exc:
        parse_config(bad)
    assert "expected a string, got list" in str(exc.value), exc.value
    assert "give password or password_file, not both" in str(exc.value)
    shown = [str(exc.value)]
    for text in (
        f'[postgres.a]\nhost = "h"\npassword = "{SECRET}\n',  # unterminated string
        f'[postgres.a]\nhost = "h"\npassword = {SECRET}\n',  # bare word
        f'[postgres.a]\nhost = "h"\npassword = "{SECRET}"\npasword = "{SECRET}"\n',  # typo
    ):
        path = ctx.tmp_path / "bad.toml"
        path.write_text(text)
        out = subprocess.run(
            [KYOTEN, "check-config", "--config", str(path)],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert out.returncode == 2 and str(path) in out.stderr, out  # a configuration error
        shown += [out.stdout, out.stderr]
    return shown


# ----------------------------------------------------------------------------- the bridge


@case
async def bridge_pipeline(ctx: Ctx) -> list[str]:
    """A channel whose far end echoes the configured password, and one whose library raises
    with it: ``last_error``, ``/health``, ``/metrics``, the dead letters and the logs."""
    from aiohttp.test_utils import TestClient, TestServer
    from kyoten.alerting.app import OUTBOX, PIPELINE, create_app
    from kyoten.alerting.channels import REGISTRY
    from kyoten.alerting.channels.base import ChannelError, ChannelResources, Notification
    from kyoten.alerting.config import parse_settings

    from tests.alerting.conftest import payload

    class Leaky:
        name = "leaky"

        def __init__(self, settings: Mapping[str, Any]) -> None:
            self.password = settings["password"]

        async def send(self, notification: Notification) -> None:
            if notification.event.event_id == "1":
                raise ChannelError(f"535 auth failed for {self.password}", retryable=False)
            raise RuntimeError(f"library said: {self.password}")

        async def aclose(self) -> None:
            return None

    def build(name: str, settings: Mapping[str, Any], resources: ChannelResources) -> Leaky:
        return Leaky(settings)

    ctx.monkeypatch.setitem(REGISTRY, "leaky", build)
    settings = parse_settings(
        {
            "token": TOKEN,
            "outbox": {"backend": "sqlite", "path": str(ctx.tmp_path / "bridge.db")},
            "retry": {"base": 0.05, "cap": 0.1, "max_attempts": 1},
            "poll_interval": 0.05,
            "channels": {"leaky": {"type": "leaky", "password": f"pw-{SECRET}"}},
            "routes": [{"channels": ["leaky"]}],
        },
        base=ctx.tmp_path,
    )
    auth = {"Authorization": f"Bearer {TOKEN}"}
    async with TestClient(TestServer(create_app(settings))) as client:
        for event_id in ("1", "2"):
            resp = await client.post("/v1/events", json=payload(event_id), headers=auth)
            assert resp.status == 202, await resp.text()
        outbox = client.server.app[OUTBOX]
        for _ in range(250):
            dead = await outbox.dead_letters()
            if len(dead) == 2:
                break
            await asyncio.sleep(0.02)
        assert len(dead) == 2, dead
        health = await (await client.get("/health")).text()
        metrics = await (await client.get("/metrics")).text()
        direct = client.server.app[PIPELINE].redact(f"x pw-{SECRET} {TOKEN} y")
    errors = sorted(d.error for d in dead)
    assert errors == [
        f"gave up after 1 attempts: unexpected RuntimeError: library said: {MASK}",
        f"permanent: 535 auth failed for {MASK}",
    ], errors
    assert json.loads(health)["channels"]["leaky"]["last_error"].endswith(MASK), health
    assert direct == f"x {MASK} {MASK} y"
    return [*errors, health, metrics, direct, ctx.logs()]


@case
async def bridge_channels(ctx: Ctx) -> list[str]:
    """The real mail, Slack and tower channels with secrets in their settings, against a
    closed port and a server answering garbage: errors, reprs, ``health()`` and logs."""
    import aiohttp
    from kyoten.alerting.channels import load_builder
    from kyoten.alerting.channels.base import (
        ChannelError,
        ChannelResources,
        Notification,
        StateSnapshot,
    )
    from kyoten.alerting.events import parse_event

    from tests.alerting.conftest import payload

    shown: list[str] = []
    event = parse_event(payload("7"))
    with garbage_server() as garbage:
        ports = (closed_port(), garbage)
        settings: list[tuple[str, dict[str, Any]]] = []
        for port in ports:
            settings += [
                (
                    "mail",
                    {
                        "host": "127.0.0.1",
                        "port": port,
                        "security": "none",
                        "username": "kyoten",
                        "password": SECRET,
                        "from": "kyoten@example.com",
                        "to": ["ops@example.com"],
                        "timeout": 2,
                    },
                ),
                (
                    "slack",
                    {
                        "token": f"xoxb-{SECRET}",
                        "channel": "#ops",
                        "base_url": f"http://127.0.0.1:{port}/api/",
                        "timeout": 2,
                    },
                ),
                ("slack-webhook", {"webhook_url": f"http://127.0.0.1:{port}/hook/{SECRET}"}),
                (
                    "tower",
                    {"url": f"http://127.0.0.1:{port}", "password": SECRET, "retries": 0},
                ),
                ("tower", {"url": f"http://admin:{SECRET}@127.0.0.1:{port}/", "retries": 0}),
            ]
        async with aiohttp.ClientSession() as http:
            resources = ChannelResources(http, logging.getLogger("kyoten.alerting.test"))
            for kind, conf in settings:
                channel = load_builder(kind)(kind, {"timeout": 2, **conf}, resources)
                with pytest.raises(ChannelError) as exc:
                    if kind == "tower":
                        await channel.apply(StateSnapshot((), muted=False, now=0.0))
                    else:
                        await channel.send(Notification(event))
                shown += [exc.value.reason, trace(exc.value), repr(channel)]
                if kind == "tower":
                    health = json.dumps(channel.health())  # type: ignore[attr-defined]
                    assert f"http://{MASK}@127.0.0.1" in health, health
                    shown.append(health)
                await channel.aclose()
    assert len(shown) >= 20
    return [*shown, ctx.logs()]


@case
async def bridge_config_errors(ctx: Ctx) -> list[str]:
    """``kyoten bridge check-config``: settings and channel validation errors around secrets."""
    import yaml
    from kyoten.alerting.cli import main
    from kyoten.alerting.config import ConfigError, parse_settings

    (ctx.tmp_path / "token").write_text(TOKEN)
    doc: dict[str, Any] = {
        "token_file": "token",
        "outbox": {"backend": "nosuch", "conninfo": f"host=127.0.0.1 password={SECRET}"},
        "channels": {
            "m": {"type": "mail", "host": "h", "password": SECRET, "from": "x"},
            "s": {"type": "slack", "token": f"xoxb-{SECRET}", "chanel": "#ops"},
            "w": {"type": "slack-webhook", "webhook_url": SECRET, "extra": 1},
            "t": {"type": "tower", "url": "pns://127.0.0.1?model=nh", "password": SECRET},
            "u": {"type": "tower", "url": f"http://admin:{SECRET}@127.0.0.1/?x=1"},
            "v": {"type": "pager", "key": SECRET},
        },
        "routes": [{"channels": ["m"]}],
    }
    with pytest.raises(ConfigError) as exc:
        parse_settings(doc, base=ctx.tmp_path)
    shown = [str(exc.value)]
    assert "outbox.backend" in shown[0], shown
    # without the settings-level errors, each channel's builder validates its own settings
    doc["outbox"] = {"backend": "sqlite", "path": "bridge.db"}
    del doc["channels"]["v"]
    path = ctx.tmp_path / "bridge.yaml"
    path.write_text(yaml.safe_dump(doc))
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = await asyncio.to_thread(main, ["bridge", "check-config", "--config", str(path)])
    assert code == 2, (out.getvalue(), err.getvalue())
    text = err.getvalue()
    for where in ("channels.m", "channels.s", "channels.w", "channels.t", "channels.u"):
        assert where in text, text
    assert f"http://{MASK}@127.0.0.1" in text, text
    return [*shown, out.getvalue(), text, ctx.logs()]


# ----------------------------------------------------------------------------- kyoten import


class FakeZabbixApi(http.server.BaseHTTPRequestHandler):
    """Answers ``apiinfo.version``; refuses logins and sessions, echoing what it was sent,
    as a careless proxy or a future server might."""

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if body["method"] == "apiinfo.version":
            answer: dict[str, Any] = {"result": "6.0.14"}
        else:
            echoed = json.dumps({"params": body.get("params"), "auth": body.get("auth")})
            answer = {
                "error": {"code": -32602, "message": "Not authorised.", "data": f"got {echoed}"}
            }
        raw = json.dumps({"jsonrpc": "2.0", "id": body["id"], **answer}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextlib.contextmanager
def fake_zabbix() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FakeZabbixApi)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@case
async def kyoten_import(ctx: Ctx) -> list[str]:
    """``connect()`` and ``kyoten import``: an unreachable API (a token, or credentials in the
    URL), and an API that echoes the token or the password back in its refusal."""
    from kyoten.shell.zabbix_import import ImportFailed, connect, main

    password_file = ctx.tmp_path / "password"
    password_file.write_text(f"pw-{SECRET}\n")
    shown: list[str] = []
    with fake_zabbix() as api:
        attempts: list[tuple[str, str | None, str | None, str | None, int]] = [
            (f"http://127.0.0.1:{closed_port()}/", TOKEN, None, None, 3),
            (f"http://admin:{SECRET}@127.0.0.1:{closed_port()}/", TOKEN, None, None, 3),
            (api, TOKEN, None, None, 4),
            (api, None, "Admin", f"pw-{SECRET}", 4),
        ]
        for url, token, user, password, code in attempts:
            with pytest.raises(ImportFailed) as exc:
                await asyncio.to_thread(connect, url, token, user, password)
            assert exc.value.code == code, exc.value
            shown += [str(exc.value), trace(exc.value)]
        refusals = shown[4] + shown[6]
        assert refusals.count(MASK) >= 2, refusals
        for url, auth in (
            (f"http://admin:{SECRET}@127.0.0.1:{closed_port()}/", ["--token", TOKEN]),
            (api, ["--token", TOKEN]),
            (api, ["--user", "Admin", "--password-file", str(password_file)]),
        ):
            out, err = io.StringIO(), io.StringIO()
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                code = await asyncio.to_thread(main, ["import", "--url", url, *auth])
            assert code in (3, 4) and err.getvalue().startswith("kyoten import: "), err.getvalue()
            shown += [out.getvalue(), err.getvalue()]
    # kyoten import configures no logging: only Python's last-resort handler writes, and only
    # warnings and worse (zabbix_utils logs whole API answers at DEBUG, echoes included)
    return [*shown, ctx.logs(logging.WARNING)]


# ----------------------------------------------------------------------------- health, towers


@case
async def health_api_url(ctx: Ctx) -> list[str]:
    """``kyoten health``: an API URL with credentials, unreachable and answering garbage, in
    the check's detail, the JSON body, the one-line summary and the logs."""
    from kyoten.agent.config import load_config
    from kyoten.agent.health import Checker

    config, _ = agent_config(ctx)
    loaded = load_config(str(config))
    shown: list[str] = []
    with garbage_server() as garbage:
        for port in (closed_port(), garbage):
            url = f"http://kyoten:{SECRET}@127.0.0.1:{port}/zabbix/api_jsonrpc.php"
            checker = Checker(loaded, "site-a", url, timeout=3)
            try:
                report = await checker.run()
            finally:
                await checker.close()
            api = next(c for c in report.checks if c.name == "zabbix_api")
            assert not api.ok
            assert api.detail.startswith(f"http://{MASK}@127.0.0.1:{port}/zabbix/"), api.detail
            shown += [api.detail, json.dumps(report.as_json()), report.line()]
    return [*shown, ctx.logs()]


@case
async def tower_url(ctx: Ctx) -> list[str]:
    """Tower URLs with ``user:password@``: unreachable, garbage, bad scheme, model or option,
    in the library's exceptions (with their tracebacks) and in ``kyoten tower``'s output."""
    from kyoten.hardware.cli import main
    from kyoten.hardware.errors import TowerConfigError, TowerError
    from kyoten.hardware.tower import open_tower

    shown: list[str] = []
    with garbage_server() as garbage:
        urls = [
            f"http://admin:{SECRET}@127.0.0.1:{closed_port()}",
            f"http://admin:{SECRET}@127.0.0.1:{garbage}/",
            f"pns://admin:{SECRET}@127.0.0.1:{closed_port()}?model=nh",
            f"phn://admin:{SECRET}@127.0.0.1:{garbage}",
            f"ftp://admin:{SECRET}@127.0.0.1/",
            f"pns://admin:{SECRET}@127.0.0.1?model=xx",
            f"http://admin:{SECRET}@127.0.0.1:{closed_port()}/?x=1",
        ]
        for url in urls:
            with pytest.raises((TowerError, TowerConfigError)) as exc:
                async with open_tower(url, timeout=1, retries=0) as tower:
                    shown.append(tower.url)
                    await tower.clear()
            assert str(exc.value).startswith(url.split(":", 1)[0] + f"://{MASK}@"), exc.value
            shown += [str(exc.value), trace(exc.value)]
        for url in urls[:1] + urls[4:5]:
            err = io.StringIO()
            with contextlib.redirect_stderr(err):
                code = await asyncio.to_thread(
                    main, ["tower", "clear", url, "--timeout", "1", "--retries", "0"]
                )
            assert code in (1, 2) and f"://{MASK}@" in err.getvalue(), err.getvalue()
            shown.append(err.getvalue())
    return [*shown, ctx.logs()]


# ----------------------------------------------------------------------------- the test


@pytest.mark.parametrize("name", sorted(CASES))
async def test_no_secret_reaches_any_output(
    name: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    shown = await CASES[name](Ctx(tmp_path, monkeypatch, caplog))
    assert shown and all(isinstance(text, str) for text in shown)
    for text in shown:
        assert SECRET not in text, text
