"""The alert-path canary: the pure verdict, and the bridge alerting by itself when Zabbix is silent.

The pure part is walked through hours of history with a fake clock. The bridge part runs the real
app with the real canary loop against Zabbix server nodes that are down (closed ports on
127.0.0.1: what the sender sees when both HA nodes are stopped) and a real SMTP sink, then brings
a canary back through the real intake, as the kyoten media type would post it.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from kyoten.alerting import canary, cli
from kyoten.alerting.app import CANARY, create_app
from kyoten.alerting.canary import (
    CanaryMonitor,
    Checks,
    HaNode,
    PathState,
    Verdict,
    canary_token,
    own_alert,
    parse_ha,
    verdict,
)
from kyoten.alerting.canary_loop import CanaryLoop
from kyoten.alerting.config import CanaryConfig, ConfigError
from kyoten.alerting.events import Kind, Severity, parse_event
from pytest_aiohttp import AiohttpClient

from .conftest import AUTH, Smtp, bridge_config, eventually, payload, settings_of, write_config


def canary_payload(token: str, kind: str = "problem") -> dict[str, str]:
    tags = [{"tag": "kyoten", "value": "canary"}, {"tag": canary.TOKEN_TAG, "value": token}]
    return payload(
        "9001",
        kind,
        **{"{EVENT.TAGSJSON}": json.dumps(tags), "{HOST.NAME}": canary.HOST,
           "{EVENT.NAME}": "kyoten alert-path canary"},
    )  # fmt: skip


# ------------------------------------------------------------------------------ pure


def test_a_canary_event_is_recognised_by_its_mark_and_carries_its_token() -> None:
    assert canary_token(parse_event(canary_payload("1234"))) == "1234"
    assert canary_token(parse_event(payload("100"))) is None


def test_verdict_starts_then_holds_while_canaries_return_then_breaks_after_the_deadline() -> None:
    m = CanaryMonitor(interval=60, deadline=180, started=1000.0)
    assert verdict(m, Checks(), 1100).state is PathState.STARTING
    assert verdict(m, Checks(), 1181).state is PathState.BROKEN  # never came back at all
    m.note_sent("a", 1000.0)
    assert m.note_received("a", Kind.PROBLEM, 1004.5) == pytest.approx(4.5)
    assert verdict(m, Checks(), 1184).state is PathState.OK
    assert verdict(m, Checks(), 1185).state is PathState.BROKEN
    # a recovery, an unknown token or a replayed problem proves nothing
    m.note_sent("b", 1200.0)
    assert m.note_received("b", Kind.RECOVERY, 1201) is None
    assert m.note_received("zzz", Kind.PROBLEM, 1201) is None
    assert m.unmatched == 1
    assert verdict(m, Checks(), 1300).state is PathState.BROKEN


@pytest.mark.parametrize(
    ("checks", "fragment"),
    [
        (Checks(ha="PostgreSQL zbx: connection refused"), "database unreachable"),
        (Checks(ha=(HaNode("a", "stopped"), HaNode("b", "standby"))), "no active Zabbix"),
        (Checks(ha=(HaNode("a", "active"), HaNode("b", "active"))), "2 active Zabbix"),
        (Checks(ha=(HaNode("a", "active", 95.0),)), "a cannot write to its database"),
        (Checks(ha=(HaNode("a", "active"),), ha_read_only=True), "read-only"),
        (Checks(ha=(HaNode("a", "active"),), sender="no node answered"), "accepts the canary"),
        (Checks(ha=(HaNode("a", "active"),), sender="", api="HTTP 502"), "frontend API"),
        (Checks(ha=(HaNode("a", "active"),), sender="", api=""), canary.ACTION),
    ],
)
def test_the_reason_names_the_most_fundamental_cause(checks: Checks, fragment: str) -> None:
    m = CanaryMonitor(interval=60, deadline=180, started=0.0)
    v = verdict(m, checks, 500)
    assert v.state is PathState.BROKEN
    assert fragment in f"{v.reason}: {v.detail}"
    assert len(v.reason) <= 60  # the cause names the problem: short, without changing figures


def test_own_alert_opens_once_updates_on_a_new_reason_and_resolves() -> None:
    kw: dict[str, Any] = {"node": "site-a", "severity": Severity.DISASTER}
    alert, events = own_alert(None, Verdict(PathState.STARTING), 10, **kw)
    assert alert is None and events == []
    alert, events = own_alert(None, Verdict(PathState.BROKEN, "no active node"), 20, **kw)
    assert alert is not None and [e.kind for e in events] == [Kind.PROBLEM]
    assert events[0].severity is Severity.DISASTER and not events[0].event_id.isdigit()
    assert events[0].name == "Zabbix alert path broken: no active node"
    same, events = own_alert(alert, Verdict(PathState.BROKEN, "no active node"), 30, **kw)
    assert same == alert and events == []
    same, events = own_alert(alert, Verdict(PathState.BROKEN, "no active node", "96 s"), 35, **kw)
    assert events == []  # a changing detail is not news
    moved, events = own_alert(alert, Verdict(PathState.BROKEN, "database unreachable"), 40, **kw)
    assert moved is not None and moved.event_id == alert.event_id
    assert [e.kind for e in events] == [Kind.UPDATE]
    done, events = own_alert(moved, Verdict(PathState.OK), 50, **kw)
    assert done is None and [(e.kind, e.event_id) for e in events] == [
        (Kind.RECOVERY, alert.event_id)
    ]


def test_round_trip_percentiles_cover_the_last_hour_only() -> None:
    m = CanaryMonitor(interval=60, deadline=180, started=0.0)
    for i in range(100):
        m.note_sent(str(i), i * 60.0)
        slow = {0: 50.0, 99: 30.0}.get(i, 1.0)
        m.note_received(str(i), Kind.PROBLEM, i * 60.0 + slow)
    p50, p99 = m.percentiles(99 * 60.0 + 30)
    assert p50 == 1.0 and p99 == 30.0  # the 50 s round trip is older than an hour
    assert len(m.rtts) <= 61 and m.sent == {}


def test_ha_rows_use_the_catalogue_words() -> None:
    doc = {"nodes": [{"name": "a", "status": 3, "lastaccess_age": 2.0}, {"name": "b", "status": 0}]}
    assert parse_ha(doc) == (HaNode("a", "active", 2.0), HaNode("b", "standby", 0.0))


def test_canary_settings_are_checked_with_the_fix(tmp_path: Path) -> None:
    doc = bridge_config(tmp_path, None, None, channels={"m": {"type": "mail", "host": "h",
                        "from": "a@b", "to": ["c@d"]}}, routes=[{"channels": ["m"]}],
                        canary={"servers": ["zbx-a"], "interval": 10, "deadline": 5,
                                "zabbix_target": "zbx", "bogus": 1})  # fmt: skip
    with pytest.raises(ConfigError) as exc:
        settings_of(doc, tmp_path)
    text = str(exc.value)
    for fragment in ("is not ip:port", "at least one interval", "needs canary.kyoten_config",
                     "canary.bogus: unknown setting"):  # fmt: skip
        assert fragment in text


# ------------------------------------------------------------------------------ the bridge


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_bridge_alerts_on_its_own_when_no_server_node_answers_and_resolves(
    aiohttp_client: AiohttpClient, tmp_path: Path, smtp: Smtp, capsys: pytest.CaptureFixture[str]
) -> None:
    servers = [f"127.0.0.1:{closed_port()}", f"127.0.0.1:{closed_port()}"]
    doc = bridge_config(
        tmp_path, smtp, None, canary={"servers": servers, "interval": 1, "timeout": 1}
    )
    client = await aiohttp_client(create_app(settings_of(doc, tmp_path)))
    loop = client.app[CANARY]

    await eventually(lambda: len(smtp.sink.mails) == 1, timeout=15)
    (mail,) = smtp.sink.messages()
    assert "Zabbix alert path broken" in mail["Subject"]
    assert "no Zabbix server node accepts the canary" in mail.get_body().get_content()
    health = await (await client.get("/health")).json()
    assert health["canary"]["state"] == "broken" and health["canary"]["own_alert"]

    # a canary event is consumed at the intake, never delivered; its token ends the incident
    token = max(loop.monitor.sent, key=loop.monitor.sent.__getitem__)
    resp = await client.post("/v1/events", json=canary_payload(token), headers=AUTH)
    assert resp.status == 200 and (await resp.json())["status"] == "canary"
    await eventually(lambda: len(smtp.sink.mails) == 2, timeout=10)
    recovery = smtp.sink.messages()[1]
    assert "Zabbix alert path broken" in recovery["Subject"]
    assert recovery["In-Reply-To"] == mail["Message-ID"]
    assert "Resolved" in recovery.get_body().get_content()
    health = await (await client.get("/health")).json()
    assert health["canary"]["state"] == "ok"
    assert health["canary"]["last_round_trip_s"] is not None
    metrics = await (await client.get("/metrics")).text()
    assert "kyoten_alert_path_ok 1.0" in metrics
    # and the canary's own mails never reached the sink: only the own alert and its recovery
    assert all("canary" not in m["Subject"].split(":")[0] for m in smtp.sink.messages())

    # a person asks the running bridge
    settings = settings_of({**doc, "url": f"http://127.0.0.1:{client.server.port}/v1/events"},
                           tmp_path)  # fmt: skip
    code = await asyncio.to_thread(cli._status, settings, 5.0)
    out = capsys.readouterr().out
    assert code == 0 and "alert path: ok" in out and "last round trip" in out


def test_check_config_connect_names_each_unreachable_part_with_its_fix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    kyoten_toml = tmp_path / "kyoten.toml"
    kyoten_toml.write_text(
        f'[zabbix.zbx]\nhost = "127.0.0.1"\nport = {closed_port()}\nuser = "z"\ndbname = "z"\n'
    )
    doc = bridge_config(
        tmp_path, None, None,
        channels={"m": {"type": "mail", "host": "h", "from": "a@b", "to": ["c@d"]}},
        routes=[{"channels": ["m"]}],
        canary={"servers": [f"127.0.0.1:{closed_port()}"], "timeout": 1,
                "kyoten_config": str(kyoten_toml), "zabbix_target": "zbx",
                "api_url": f"http://127.0.0.1:{closed_port()}/api_jsonrpc.php"},
    )  # fmt: skip
    path = write_config(tmp_path, doc)
    assert cli.main(["bridge", "check-config", "--config", str(path)]) == 0
    capsys.readouterr()
    assert cli.main(["bridge", "check-config", "--config", str(path), "--connect"]) == 2
    err = capsys.readouterr().err
    assert "canary.servers: no node answered" in err
    assert "canary.zabbix_target/postgres_target:" in err and "kyoten check-config" in err
    assert "canary.api_url:" in err


def test_a_bridge_joins_the_own_alert_another_bridge_opened() -> None:
    kw: dict[str, Any] = {"node": "site-b", "severity": Severity.DISASTER}
    broken = Verdict(PathState.BROKEN, "no active node")
    alert, events = own_alert(None, broken, 20, joined="kyoten-path-site-a-17", **kw)
    assert alert is not None and alert.event_id == "kyoten-path-site-a-17"
    assert [e.event_id for e in events] == ["kyoten-path-site-a-17"]
    alone, _ = own_alert(None, broken, 20, **kw)
    assert alone is not None and alone.event_id.startswith(canary.OWN_ID_PREFIX + "site-b-")


class MemoryStore:
    """Two bridges' shared outbox, as far as the canary uses it."""

    def __init__(self) -> None:
        self.receipts: dict[str, float] = {}
        self.open: str | None = None
        self.released: list[str] = []

    async def record_canary(self, token: str, at: float, node: str) -> None:
        self.receipts.setdefault(token, at)

    async def canary_receipts(self, tokens: Sequence[str]) -> dict[str, float]:
        return {t: self.receipts[t] for t in tokens if t in self.receipts}

    async def claim_own_alert(self, proposed: str, at: float) -> str:
        self.open = self.open or proposed
        return self.open

    async def release_own_alert(self, event_id: str, at: float) -> None:
        self.released.append(event_id)
        if self.open == event_id:
            self.open = None


def loop_of(store: MemoryStore | None, accept: Any, now: list[float], node: str) -> CanaryLoop:
    cfg = CanaryConfig(servers=("127.0.0.1:9",), interval=10, deadline=30)
    return CanaryLoop(cfg, accept, node=node, clock=lambda: now[0], store=store)


async def test_a_token_that_came_back_to_the_other_bridge_proves_the_path() -> None:
    store, now = MemoryStore(), [1000.0]
    a = loop_of(store, None, now, "site-a")
    b = loop_of(store, None, now, "site-b")
    a._send = b._send = _no_send  # type: ignore[method-assign]
    a.monitor.note_sent("111", now[0])
    now[0] += 2
    await b.received("111", Kind.PROBLEM)  # Zabbix posted A's canary to B
    assert b.monitor.last_ok is None  # not B's token
    await a._judge()
    assert a.monitor.last_rtt == pytest.approx(2.0) and a.verdict.state is PathState.OK


async def test_own_alert_not_stored_is_retried_and_shown_then_joined() -> None:
    store, now, accepted, down = MemoryStore(), [1000.0], [], [True]

    async def accept(event: Any) -> None:
        if down[0]:
            raise OSError("outbox unreachable (password=hunter2hunter2)")
        accepted.append(event)

    a = loop_of(store, accept, now, "site-a")
    now[0] += 31
    await a._judge()
    health = a.health()
    assert health["state"] == "broken" and health["own_alert"] is None
    assert "outbox unreachable" in str(health["own_alert_not_stored"])
    assert "hunter2hunter2" not in str(health["own_alert_not_stored"])
    down[0] = False
    now[0] += 1
    await a._judge()
    assert a.health()["own_alert_not_stored"] is None and len(accepted) == 1
    assert store.open == accepted[0].event_id
    b = loop_of(store, accept, now, "site-b")
    now[0] += 31
    await b._judge()
    assert [e.event_id for e in accepted] == [store.open, store.open]  # the outbox keeps one


async def _no_send(value: int) -> str:
    return ""
