"""Reconciling open problems with Zabbix: the pure decision, the section of bridge.yaml, and
the loop against a fake API (the real Zabbix 6.0 is in tests/templates)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from kyoten.alerting import reconcile
from kyoten.alerting.app import OUTBOX, RECONCILE, create_app
from kyoten.alerting.canary import OWN_ID_PREFIX
from kyoten.alerting.channels.base import OpenProblem
from kyoten.alerting.config import ConfigError, parse_settings
from kyoten.alerting.events import Kind, Severity, Tag
from pytest_aiohttp import AiohttpClient, AiohttpServer

from .conftest import AUTH, TOKEN, payload

NOW = 10_000.0
API_TOKEN = "zabbix-api-token-0123456789abcdef"


def op(event_id: str, opened_at: float = NOW - 600, **kw: Any) -> OpenProblem:
    return OpenProblem(event_id, Severity.HIGH, f"problem {event_id}", "db1", False,
                       opened_at, opened_at, **kw)  # fmt: skip


# -- the pure decision -----------------------------------------------------------------------


def test_only_problems_zabbix_no_longer_has_open_are_closed() -> None:
    rows = [op("101"), op("102"), op("103")]
    closed = reconcile.decide(rows, NOW, 120, still_open=["102"])
    assert [p.event_id for p in closed] == ["101", "103"]


def test_a_problem_younger_than_grace_is_not_judged() -> None:
    rows = [op("101", opened_at=NOW - 119), op("102", opened_at=NOW - 120)]
    assert [p.event_id for p in reconcile.decide(rows, NOW, 120, still_open=[])] == ["102"]
    assert [p.event_id for p in reconcile.judged(rows, NOW, 0)] == ["102", "101"]  # oldest first


def test_own_alert_and_non_numeric_ids_are_never_asked_about_nor_closed() -> None:
    rows = [op(f"{OWN_ID_PREFIX}site-a-1700000000"), op("abc"), op("12a"), op(""), op("7")]
    assert [p.event_id for p in reconcile.judged(rows, NOW, 0)] == ["7"]
    assert [p.event_id for p in reconcile.decide(rows, NOW, 0, still_open=[])] == ["7"]


def test_a_problem_open_on_several_channels_is_asked_and_closed_once() -> None:
    rows = [op("5", opened_at=NOW - 300), op("5", opened_at=NOW - 500), op("4")]
    asked = reconcile.judged(rows, NOW, 120)
    assert [(p.event_id, p.opened_at) for p in asked] == [("4", NOW - 600), ("5", NOW - 500)]
    assert len(reconcile.decide(rows, NOW, 120, still_open=["4"])) == 1


def test_nothing_open_in_the_store_asks_nothing() -> None:
    assert reconcile.judged([], NOW, 0) == ()
    assert reconcile.batches([]) == []


def test_batches_cover_every_id_once() -> None:
    ids = [str(i) for i in range(450)]
    chunks = reconcile.batches(ids, 200)
    assert [len(c) for c in chunks] == [200, 200, 50]
    assert [i for c in chunks for i in c] == ids


def test_the_synthetic_recovery_carries_what_the_pipeline_needs_and_says_what_it_is() -> None:
    problem = op("9001", tags=(Tag("service", "db"),))
    event = reconcile.recovery(problem, NOW)
    assert event.kind is Kind.RECOVERY and event.closes
    assert (event.event_id, event.name, event.severity, event.host) == (
        "9001", "problem 9001", Severity.HIGH, "db1")  # fmt: skip
    assert event.dedup_key == "9001:R"  # a late real recovery is then a duplicate
    assert reconcile.RECONCILED_TAG in event.tags and Tag("service", "db") in event.tags
    assert event.message == reconcile.MESSAGE
    assert event.recovered


# -- bridge.yaml -----------------------------------------------------------------------------


def _doc(**over: Any) -> dict[str, Any]:
    return {
        "token": TOKEN,
        "channels": {"m": {"type": "mail", "host": "h", "from": "a@b", "to": ["c@d"]}},
        "routes": [{"channels": ["m"]}],
        **over,
    }


def test_the_section_defaults_its_api_url_from_zabbix_url_and_reads_the_token_file(
    tmp_path: Path,
) -> None:
    (tmp_path / "zabbix.token").write_text(API_TOKEN + "\n")
    s = parse_settings(
        _doc(zabbix_url="https://zabbix.example/", reconcile={"token_file": "zabbix.token"}),
        base=tmp_path,
    )
    assert s.reconcile is not None
    assert s.reconcile.api_url == "https://zabbix.example/api_jsonrpc.php"
    assert (s.reconcile.interval, s.reconcile.grace) == (300.0, 120.0)
    assert s.reconcile.token == API_TOKEN and API_TOKEN not in repr(s.reconcile)
    assert API_TOKEN in s.secrets()
    assert parse_settings(_doc()).reconcile is None


def test_the_section_reports_every_problem_with_its_fix_and_never_the_token() -> None:
    with pytest.raises(ConfigError) as err:
        parse_settings(_doc(reconcile={"token": 42, "interval": 0, "grace": -1, "x": 1}))
    text = "\n".join(err.value.errors)
    assert "reconcile.api_url: required" in text and "zabbix_url" in text
    assert "reconcile.interval:" in text and "reconcile.grace:" in text
    assert "reconcile.token:" in text and "42" not in text
    assert "reconcile.x" in text
    with pytest.raises(ConfigError) as err:
        parse_settings(_doc(reconcile={"api_url": "ftp://z"}))
    assert [e for e in err.value.errors if e.startswith("reconcile.token: missing")]
    assert len([e for e in err.value.errors if e.startswith("reconcile.api_url")]) == 1


# -- the loop, against a fake Zabbix API -------------------------------------------------------


class FakeZabbix:
    """``apiinfo.version``, ``problem.get``, ``host.get`` and nothing else; ``open`` per
    source, ``hidden`` the hosts the token may not read (problem.get hides theirs too)."""

    def __init__(self) -> None:
        self.open: dict[int, set[str]] = {0: set(), 3: set(), 4: set()}
        self.hidden: set[str] = set()  # hosts the token cannot read
        self.fail = False
        self.calls: list[dict[str, Any]] = []
        self.app = web.Application()
        self.app.router.add_post("/api_jsonrpc.php", self._rpc)

    async def _rpc(self, request: web.Request) -> web.Response:
        body = await request.json()
        if self.fail:
            return web.Response(status=502, text="bad gateway")
        method, params = body["method"], body.get("params", {})
        if method == "apiinfo.version":
            return web.json_response({"jsonrpc": "2.0", "result": "6.0.0", "id": body["id"]})
        self.calls.append({"method": method, **params})
        assert (
            request.headers.get("Authorization") == f"Bearer {API_TOKEN}"
            or body.get("auth") == API_TOKEN
        )
        if method == "host.get":  # hosts the token may read: all but the hidden ones
            names = params["filter"]["name"]
            shown = [{"name": n} for n in names if n not in self.hidden]
            return web.json_response({"jsonrpc": "2.0", "result": shown, "id": body["id"]})
        src = int(params.get("source", 0))
        allowed = {0: {0}, 3: {0, 4, 5}, 4: {6}}[src]  # as Zabbix pairs them, or it refuses
        if int(params.get("object", 0)) not in allowed:
            error = {"code": -32602, "message": "Invalid params.", "data": "object"}
            return web.json_response({"jsonrpc": "2.0", "error": error, "id": body["id"]})
        found = [{"eventid": i} for i in params["eventids"] if i in self.open[src]]
        return web.json_response({"jsonrpc": "2.0", "result": found, "id": body["id"]})


async def _bridge(
    aiohttp_server: AiohttpServer, aiohttp_client: AiohttpClient, tmp_path: Path, zbx: FakeZabbix
) -> TestClient[Any, Any]:
    server = await aiohttp_server(zbx.app, host="127.0.0.1")
    doc = _doc(
        outbox={"backend": "sqlite", "path": str(tmp_path / "b.db")},
        poll_interval=0.05,
        channels={
            "m": {"type": "mail", "host": "127.0.0.1", "port": 9, "from": "a@b", "to": ["c@d"]}
        },
        reconcile={
            "api_url": f"http://127.0.0.1:{server.port}/api_jsonrpc.php",
            "token": API_TOKEN,
            "interval": 3600,  # rounds are driven by hand below
            "grace": 0,
            "timeout": 5,
        },
    )
    return await aiohttp_client(create_app(parse_settings(doc)))


async def test_the_loop_closes_what_zabbix_lost_and_keeps_what_it_still_has(
    aiohttp_server: AiohttpServer, aiohttp_client: AiohttpClient, tmp_path: Path
) -> None:
    zbx = FakeZabbix()
    client = await _bridge(aiohttp_server, aiohttp_client, tmp_path, zbx)
    for eid in ("501", "502", "503"):
        reply = await client.post("/v1/events", json=payload(eid), headers=AUTH)
        assert reply.status == 202
    zbx.open[0].add("502")
    zbx.open[3].add("503")  # an internal event: asked again with its source
    loop = client.app[RECONCILE]
    assert await loop.round() == ["501"]
    outbox = client.app[OUTBOX]
    assert [p.event_id for p in await outbox.open_problems("m")] == ["502", "503"]
    body = await (await client.get("/health")).json()
    assert body["reconcile"]["reconciled_total"] == 1 and body["reconcile"]["last_error"] is None
    metrics = await (await client.get("/metrics")).text()
    assert "kyoten_bridge_reconciled_total 1.0" in metrics
    # a second round asks only about what is still open, and closes nothing more
    zbx.calls.clear()
    assert await loop.round() == []
    assert sorted(zbx.calls[0]["eventids"]) == ["502", "503"]


async def test_a_problem_on_a_host_the_token_cannot_read_is_never_closed(
    aiohttp_server: AiohttpServer, aiohttp_client: AiohttpClient, tmp_path: Path
) -> None:
    """problem.get hides what the user may not read: that is not "closed in Zabbix"."""
    zbx = FakeZabbix()
    client = await _bridge(aiohttp_server, aiohttp_client, tmp_path, zbx)
    reply = await client.post("/v1/events", json=payload("701"), headers=AUTH)
    assert reply.status == 202
    (problem,) = await client.app[OUTBOX].open_problems("m")
    zbx.hidden.add(problem.host)
    loop = client.app[RECONCILE]
    assert await loop.round() == []
    assert [p.event_id for p in await client.app[OUTBOX].open_problems("m")] == ["701"]
    body = await (await client.get("/health")).json()
    assert body["reconcile"]["unseen_hosts"] == [problem.host]
    zbx.hidden.clear()  # the permission granted: the next round closes it
    assert await loop.round() == ["701"]


async def test_an_api_failure_changes_nothing_and_shows_in_health_without_the_token(
    aiohttp_server: AiohttpServer, aiohttp_client: AiohttpClient, tmp_path: Path
) -> None:
    zbx = FakeZabbix()
    client = await _bridge(aiohttp_server, aiohttp_client, tmp_path, zbx)
    assert (await client.post("/v1/events", json=payload("601"), headers=AUTH)).status == 202
    zbx.fail = True
    loop = client.app[RECONCILE]
    assert await loop.round() == []
    assert [p.event_id for p in await client.app[OUTBOX].open_problems("m")] == ["601"]
    body = await (await client.get("/health")).json()
    assert body["reconcile"]["last_error"] and API_TOKEN not in str(body)
    zbx.fail = False
    assert await loop.round() == ["601"]
    await asyncio.sleep(0)
    body = await (await client.get("/health")).json()
    assert body["reconcile"]["last_error"] is None


async def test_check_config_shows_the_section_and_connect_names_a_refused_api(
    aiohttp_server: AiohttpServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import yaml
    from kyoten.alerting import cli

    zbx = FakeZabbix()
    server = await aiohttp_server(zbx.app, host="127.0.0.1")
    (tmp_path / "zabbix.token").write_text(API_TOKEN)
    url = f"http://127.0.0.1:{server.port}/api_jsonrpc.php"
    path = tmp_path / "bridge.yaml"
    path.write_text(yaml.safe_dump(_doc(reconcile={"api_url": url, "token_file": "zabbix.token"})))
    argv = ["bridge", "check-config", "--config", str(path)]
    assert await asyncio.to_thread(cli.main, [*argv, "--connect"]) == 0
    assert "reconcile: open problems checked against" in capsys.readouterr().out
    zbx.fail = True
    assert await asyncio.to_thread(cli.main, [*argv, "--connect"]) == 2
    err = capsys.readouterr().err
    assert "reconcile:" in err and "api_jsonrpc.php" in err and API_TOKEN not in err
    path.write_text(yaml.safe_dump(_doc(reconcile={"api_url": url})))
    assert await asyncio.to_thread(cli.main, argv) == 2
    assert "reconcile.token: missing" in capsys.readouterr().err
