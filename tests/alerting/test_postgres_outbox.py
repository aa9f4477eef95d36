"""Two bridges, one per site, on one PostgreSQL outbox (the lead's ``pg_primary``): each delivery
is done exactly once, by whichever bridge claims it first; Zabbix retries that land on the other
bridge collapse; order per event holds across bridges; either bridge carries on alone."""

from __future__ import annotations

import collections
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest
from kyoten.alerting.app import create_app
from kyoten.alerting.events import parse_event
from kyoten.alerting.outbox import Done, open_outbox
from pytest_aiohttp import AiohttpClient

from .conftest import AUTH, FakeSlack, Smtp, bridge_config, eventually, payload, settings_of

pytestmark = pytest.mark.integration


def site(tmp_path: Path, smtp: Smtp, conninfo: str, node: str) -> Any:
    doc = bridge_config(tmp_path, smtp, None, node=node)
    doc["outbox"] = {"backend": "postgresql", "conninfo": conninfo}
    return settings_of(doc, tmp_path)


def rows(conninfo: str, sql: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(conninfo) as db:
        return db.execute(sql).fetchall()


async def test_two_bridges_share_the_work_each_delivery_once(
    aiohttp_client: AiohttpClient, tmp_path: Path, smtp: Smtp, outbox_db: str
) -> None:
    a = await aiohttp_client(create_app(site(tmp_path, smtp, outbox_db, "site-a")))
    b = await aiohttp_client(create_app(site(tmp_path, smtp, outbox_db, "site-b")))
    expected: list[str] = []
    for i in range(40):
        eid = str(9000 + i)
        first, second = (a, b) if i % 2 else (b, a)
        for kind, client in (("problem", first), ("update", second), ("recovery", first)):
            resp = await client.post("/v1/events", json=payload(eid, kind), headers=AUTH)
            assert resp.status == 202, await resp.text()
            expected.append(f"{eid}:{kind}")
        # Zabbix retrying the problem against the other site: stored once.
        again = await second.post("/v1/events", json=payload(eid), headers=AUTH)
        assert again.status == 200

    await eventually(lambda: len(smtp.sink.mails) >= len(expected), timeout=30)
    mails = smtp.sink.messages()
    ids = collections.Counter(str(m["Message-ID"]) for m in mails)
    assert len(mails) == len(expected) and max(ids.values()) == 1
    # Per event, problem before update before recovery, whichever bridge sent each.
    order: dict[str, list[str]] = collections.defaultdict(list)
    for m in mails:
        eid, kind = str(m["X-Kyoten-Event"]).split()
        order[eid].append(kind)
    assert all(kinds == ["problem", "update", "recovery"] for kinds in order.values())
    # The last mail may be in the sink a moment before its outcome is committed.
    done = "SELECT count(*) FROM kyoten_deliveries WHERE status='done'"
    await eventually(lambda: rows(outbox_db, done) == [(len(expected),)])
    by = dict(
        rows(
            outbox_db,
            "SELECT finished_by, count(*) FROM kyoten_deliveries"
            " WHERE status='done' GROUP BY finished_by",
        )
    )
    assert set(by) == {"site-a", "site-b"}

    # Site A is lost: B alone delivers what is accepted from now on, and so is A's backlog.
    await a.close()
    before = len(smtp.sink.mails)
    for i in range(5):
        assert (await b.post("/v1/events", json=payload(str(9500 + i)), headers=AUTH)).status == 202
    await eventually(lambda: len(smtp.sink.mails) == before + 5, timeout=15)
    # As above: the last mail is in the sink a moment before its outcome is committed; wait
    # for that commit (the outcome), then nothing is left undone.
    not_done = "SELECT count(*) FROM kyoten_deliveries WHERE status<>'done'"
    await eventually(lambda: rows(outbox_db, not_done) == [(0,)])
    assert len(smtp.sink.mails) == before + 5  # and nothing was sent twice meanwhile


async def test_two_bridges_keep_one_slack_rate_together(
    aiohttp_client: AiohttpClient, tmp_path: Path, slack: FakeSlack, outbox_db: str
) -> None:
    """Slack allows about one message per second per channel, whichever bridge sends it: the
    bucket is a row in the shared outbox, so two bridges together keep the configured rate."""
    rate = 4.0

    def pacing_site(node: str) -> Any:
        doc = bridge_config(tmp_path, None, slack, node=node)
        doc["outbox"] = {"backend": "postgresql", "conninfo": outbox_db}
        doc["channels"]["slack"] |= {"rate": rate, "burst": 1}
        return settings_of(doc, tmp_path)

    a = await aiohttp_client(create_app(pacing_site("site-a")))
    b = await aiohttp_client(create_app(pacing_site("site-b")))
    n = 12
    for i in range(n):
        client = a if i % 2 else b
        resp = await client.post("/v1/events", json=payload(str(9700 + i)), headers=AUTH)
        assert resp.status == 202
    await eventually(lambda: len(slack.posts()) >= n, timeout=20)
    at = sorted(c.at for c in slack.posts())
    # each bridge alone would allow `rate`/s, i.e. both together about twice as fast
    assert at[-1] - at[0] >= (n - 1) / rate * 0.9, [round(t - at[0], 2) for t in at]
    # the last post may reach the fake a moment before its outcome is committed
    done = "SELECT count(*) FROM kyoten_deliveries WHERE status='done'"
    await eventually(lambda: rows(outbox_db, done) == [(n,)])
    by = dict(rows(outbox_db, "SELECT finished_by, count(*) FROM kyoten_deliveries GROUP BY 1"))
    assert set(by) == {"site-a", "site-b"}  # both bridges sent
    assert rows(outbox_db, "SELECT channel FROM kyoten_pace") == [("slack",)]


async def test_the_outbox_follows_its_database_to_the_promoted_standby(
    aiohttp_client: AiohttpClient, tmp_path: Path, smtp: Smtp, cluster_factory: Any
) -> None:
    """The outbox lives in the database the sites replicate. Site A's PostgreSQL is lost and
    site B's standby promoted: a bridge with a multi-host conninfo refuses events (503, not
    stored: Zabbix retries) until it reaches the new primary, then stores and delivers again,
    and what was accepted before the failover (replicated) is not lost. (In practice the
    intake reconnects within the same request: its batch is retried one event per
    transaction on a fresh connection, which finds the new primary.)"""
    import asyncio
    import time

    c = cluster_factory()
    c.primary.sql('CREATE DATABASE "outbox"')
    conninfo = (
        f"host=127.0.0.1,127.0.0.1 port={c.primary.port},{c.standby.port} dbname=outbox "
        "user=postgres connect_timeout=2 target_session_attrs=read-write"
    )
    bridge = await aiohttp_client(create_app(site(tmp_path, smtp, conninfo, "site-b")))
    for i in range(5):
        resp = await bridge.post("/v1/events", json=payload(str(9800 + i)), headers=AUTH)
        assert resp.status == 202
    await eventually(lambda: len(smtp.sink.mails) >= 5, timeout=15)
    # asynchronous replication: wait until the standby has replayed what was committed (the
    # lab commits with synchronous_commit = off: a commit record may still be in the WAL
    # buffers, past pg_current_wal_lsn(), so wait for the insert position)
    lsn = c.primary.value("SELECT pg_current_wal_insert_lsn()::text")
    await eventually(
        lambda: c.standby.value("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (lsn,)) is True
    )
    c.primary.stop("immediate")
    c.standby.promote()

    refused = 0
    deadline = time.monotonic() + 30
    for i in range(5):
        while True:  # as Zabbix does: retry until the bridge says it is stored
            resp = await bridge.post("/v1/events", json=payload(str(9900 + i)), headers=AUTH)
            if resp.status in (200, 202):
                break
            assert resp.status == 503, await resp.text()
            assert "not stored" in (await resp.json())["error"]
            refused += 1
            assert time.monotonic() < deadline, f"no new primary after {refused} refusals"
            await asyncio.sleep(0.2)
    await eventually(lambda: len(smtp.sink.mails) >= 10, timeout=30)
    delivered = {str(m["X-Kyoten-Event"]).split()[0] for m in smtp.sink.messages()}
    assert delivered == {str(9800 + i) for i in range(5)} | {str(9900 + i) for i in range(5)}
    on_b = psycopg.connect(c.standby.conninfo("outbox"))
    with on_b:
        events = on_b.execute("SELECT count(*) FROM kyoten_events").fetchone()
    assert events == (10,)
    assert not c.primary.running()  # the events above went to the promoted standby


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
async def test_due_counts_pending_deliveries_up_to_the_limit(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """What the pipeline asks to see a storm's backlog: due now, this channel, at most limit."""
    conninfo = request.getfixturevalue("outbox_db") if backend == "postgresql" else ""
    outbox = open_outbox(backend, path=str(tmp_path / "due.db"), conninfo=conninfo)
    await outbox.open()
    try:
        now = time.time()
        for i in range(3):
            await outbox.accept(parse_event(payload(str(4000 + i))), ["slack"], now)
        await outbox.accept(parse_event(payload("4100")), ["mail"], now)
        assert await outbox.due("slack", now, 10) == 3
        assert await outbox.due("slack", now, 2) == 2
        assert await outbox.due("slack", now - 60, 10) == 0  # none due yet at that time
        assert await outbox.due("mail", now, 10) == 1
        async with outbox.claim("slack", 1, now) as claim:
            await claim.finish([Done(claim.items[0].id)])
        assert await outbox.due("slack", now, 10) == 2
    finally:
        await outbox.close()


async def test_two_bridges_share_canary_receipts_and_raise_one_own_alert(
    aiohttp_client: AiohttpClient, tmp_path: Path, smtp: Smtp, outbox_db: str
) -> None:
    """Zabbix posts every canary to the one bridge URL it knows: a token one bridge sent that
    comes back to the other still proves the first bridge's path; when the path breaks, both
    bridges raise the same own alert, which the shared outbox delivers once."""
    import asyncio
    import json
    import socket

    from kyoten.alerting.app import CANARY

    with socket.socket() as s:  # a closed port: no Zabbix server node answers
        s.bind(("127.0.0.1", 0))
        dead = f"127.0.0.1:{s.getsockname()[1]}"
    canary = {"servers": [dead], "interval": 1, "deadline": 3, "timeout": 1}

    def with_canary(node: str) -> Any:
        doc = bridge_config(tmp_path, smtp, None, node=node, canary=canary)
        doc["outbox"] = {"backend": "postgresql", "conninfo": outbox_db}
        return settings_of(doc, tmp_path)

    a = await aiohttp_client(create_app(with_canary("site-a")))
    b = await aiohttp_client(create_app(with_canary("site-b")))
    loop_a, loop_b = a.app[CANARY], b.app[CANARY]
    await eventually(lambda: bool(loop_a.monitor.sent), timeout=5)
    token = next(iter(loop_a.monitor.sent))
    tags = json.dumps([{"tag": "kyoten", "value": "canary"},
                       {"tag": "kyoten.canary.token", "value": token}])  # fmt: skip
    resp = await b.post("/v1/events", json=payload("9901", **{"{EVENT.TAGSJSON}": tags}),
                        headers=AUTH)  # fmt: skip
    assert resp.status == 200 and (await resp.json())["status"] == "canary"
    await eventually(lambda: loop_a.monitor.last_rtt is not None, timeout=5)
    assert loop_b.monitor.last_rtt is None  # B sent no such token

    # nothing comes back any more: both bridges judge the path broken, one alert goes out
    await eventually(lambda: loop_a.alert is not None and loop_b.alert is not None, timeout=15)
    assert loop_a.alert.event_id == loop_b.alert.event_id  # type: ignore[union-attr]
    await eventually(lambda: len(smtp.sink.mails) >= 1, timeout=10)
    await asyncio.sleep(1.5)
    own = [m for m in smtp.sink.messages() if "alert path broken" in str(m["Subject"])]
    assert len(own) == 1, [str(m["Subject"]) for m in own]


class CuttableProxy:
    """A TCP relay on 127.0.0.1 in front of PostgreSQL that can be cut, as a lost site cuts it."""

    def __init__(self, host: str, port: int) -> None:
        self.target = (host, port)
        self.writers: list[Any] = []
        self.server: Any = None

    async def start(self) -> int:
        import asyncio

        async def relay(reader: Any, writer: Any) -> None:
            try:
                while data := await reader.read(65536):
                    writer.write(data)
                    await writer.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                writer.close()

        async def accept(reader: Any, writer: Any) -> None:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
            self.writers += [writer, up_writer]
            await asyncio.gather(relay(reader, up_writer), relay(up_reader, writer))

        self.server = await asyncio.start_server(accept, "127.0.0.1", 0)
        return int(self.server.sockets[0].getsockname()[1])

    def cut(self) -> None:
        self.server.close()
        for w in self.writers:
            w.transport.abort()


async def test_own_alert_goes_through_the_local_spool_when_the_shared_outbox_is_down(
    aiohttp_client: AiohttpClient, tmp_path: Path, smtp: Smtp, outbox_db: str
) -> None:
    """The likely root cause of a silent Zabbix is the database both sites share: the bridge's
    own alert must still reach the channels, through a local spool, and /health says so."""
    import socket

    from kyoten.alerting.app import CANARY
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    params = conninfo_to_dict(outbox_db)
    proxy = CuttableProxy(str(params.get("host", "127.0.0.1")), int(params.get("port", 5432)))
    port = await proxy.start()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead = f"127.0.0.1:{s.getsockname()[1]}"
    doc = bridge_config(
        tmp_path, smtp, None, node="site-a",
        canary={"servers": [dead], "interval": 1, "deadline": 3, "timeout": 1,
                "spool": str(tmp_path / "spool.db")},
    )  # fmt: skip
    doc["outbox"] = {
        "backend": "postgresql",
        "conninfo": make_conninfo(outbox_db, host="127.0.0.1", port=str(port)),
    }
    client = await aiohttp_client(create_app(settings_of(doc, tmp_path)))
    loop = client.app[CANARY]
    proxy.cut()  # the shared outbox is gone before the path is judged broken

    def own_mails() -> list[str]:
        return [s for m in smtp.sink.messages() if "alert path broken" in (s := str(m["Subject"]))]

    await eventually(lambda: len(own_mails()) == 1, timeout=20)
    health = loop.health()
    assert health["own_alert"] and health["own_alert_spooled"], health
    assert (tmp_path / "spool.db").exists()
