"""One incident, one conversation: events sharing the group key within group_wait become one
Slack thread and one mail thread, led by the most severe; later members, updates and recoveries
go to that thread; the top turns resolved with the last member."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
from kyoten.alerting.app import create_app
from kyoten.alerting.events import Kind, Severity, Tag, parse_event
from kyoten.alerting.grouping import GroupPolicy, group_key, leader, plan
from pytest_aiohttp import AiohttpClient

from .conftest import AUTH, FakeSlack, Smtp, bridge_config, eventually, payload, settings_of

RESOLVED = "#009900"


def event(eid: str, sev: int, scope: str = "availability", **over: str) -> dict[str, str]:
    tags = [{"tag": "scope", "value": scope}]
    if "depends" in over:
        tags.append({"tag": "depends_on", "value": over.pop("depends")})
    return payload(
        eid,
        over.pop("kind", "problem"),
        **{"{EVENT.NSEVERITY}": str(sev), "{EVENT.TAGSJSON}": json.dumps(tags),
           "{EVENT.NAME}": f"Fault {eid}", **over},
    )  # fmt: skip


async def start(aiohttp_client: AiohttpClient, tmp_path: Path, doc: dict[str, Any]) -> Any:
    return await aiohttp_client(create_app(settings_of(doc, tmp_path)))


def grouped(tmp_path: Path, smtp: Smtp, slack: FakeSlack) -> dict[str, Any]:
    doc = bridge_config(tmp_path, smtp, slack, poll_interval=0.05)
    for channel in doc["channels"].values():
        channel["group"] = {"wait": 0.5}
    return doc


async def test_one_incident_is_one_slack_thread_and_one_mail_thread(
    aiohttp_client: AiohttpClient, tmp_path: Path, smtp: Smtp, slack: FakeSlack
) -> None:
    client = await start(aiohttp_client, tmp_path, grouped(tmp_path, smtp, slack))
    # a split brain: the cause (Disaster) and two symptoms, within a second, in any order
    for eid, sev in (("201", 3), ("202", 5), ("203", 2)):
        assert (await client.post("/v1/events", json=event(eid, sev), headers=AUTH)).status == 202
    await client.post("/v1/events", json=event("299", 1, scope="notice"), headers=AUTH)
    await eventually(lambda: len(slack.top_level()) == 2 and len(smtp.sink.mails) == 2)
    ((ts, top),) = slack.top_level("Fault 202").items()  # led by the most severe
    assert top["text"].startswith("[Disaster] Fault 202 on db2.site-b (+2 related)")
    assert "Fault 201" in top["text"] and "Fault 203" in top["text"]
    assert top["attachments"][0]["color"] == "#E45959"
    assert slack.replies(ts) == []  # one message for the three
    first = next(m for m in smtp.sink.messages() if "Fault 202" in m["Subject"])
    assert first["Subject"] == "Problem: Fault 202 on db2.site-b (+2 related)"

    # later: one more member joins the thread, an ack and recoveries come back
    await client.post("/v1/events", json=event("204", 4), headers=AUTH)
    await eventually(lambda: len(slack.replies(ts)) == 1)
    assert "Joined this incident" in slack.replies(ts)[0]["text"]
    assert "+3 related" in slack.messages[ts]["text"]
    for eid in ("201", "202", "203"):
        await client.post("/v1/events", json=event(eid, 3, kind="recovery"), headers=AUTH)
    await eventually(lambda: len(slack.replies(ts)) >= 2)
    await eventually(lambda: "[Resolved]" in "".join(r["text"] for r in slack.replies(ts)))
    assert slack.messages[ts]["attachments"][0]["color"] != RESOLVED  # 204 is still open
    await client.post("/v1/events", json=event("204", 4, kind="recovery"), headers=AUTH)
    await eventually(lambda: slack.messages[ts]["attachments"][0]["color"] == RESOLVED)
    # the closing reply and the top message's update are two calls: either may land first
    await eventually(
        lambda: "Every problem of this incident is resolved" in slack.replies(ts)[-1]["text"]
    )
    assert len(slack.top_level()) == 2  # the notice's thread and this one, nothing else
    mails = [m for m in smtp.sink.messages() if m["Message-ID"] != first["Message-ID"]]
    thread = [m for m in mails if "Fault 299" not in m["Subject"]]
    assert thread and all(m["In-Reply-To"] == first["Message-ID"] for m in thread)
    assert all(m["Subject"] == "Re: " + first["Subject"] for m in thread)


async def test_without_group_every_event_is_its_own_message(
    aiohttp_client: AiohttpClient, tmp_path: Path, slack: FakeSlack
) -> None:
    client = await start(aiohttp_client, tmp_path, bridge_config(tmp_path, None, slack))
    for eid, sev in (("211", 3), ("212", 5)):
        await client.post("/v1/events", json=event(eid, sev), headers=AUTH)
    await eventually(lambda: len(slack.top_level()) == 2)


async def test_a_fault_in_grouping_sends_one_message_per_event_instead(
    aiohttp_client: AiohttpClient,
    tmp_path: Path,
    smtp: Smtp,
    slack: FakeSlack,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Grouping only saves messages: if it fails (as it once did on the bridge's own alert,
    whose id is not a number), every event still goes out, one message each."""

    def broken(*_: Any, **__: Any) -> Any:
        raise ValueError("invalid literal for int() with base 10: 'kyoten-path-site-a-1'")

    monkeypatch.setattr("kyoten.alerting.grouping.plan", broken)
    client = await start(aiohttp_client, tmp_path, grouped(tmp_path, smtp, slack))
    for eid, sev in (("221", 3), ("222", 5)):
        assert (await client.post("/v1/events", json=event(eid, sev), headers=AUTH)).status == 202
    await eventually(lambda: len(slack.top_level()) == 2 and len(smtp.sink.mails) == 2)


def parsed(eid: str, sev: int, **over: str) -> Any:
    return parse_event(event(eid, sev, **over))


def test_the_key_and_the_leader() -> None:
    a, b = parsed("1", 3), parsed("2", 5, scope="notice")
    key = group_key(a, ("tag:scope", "host_group"))
    assert key == "tag:scope=availability;host_group=Databases"
    assert group_key(a, ("tag:scope",)) != group_key(b, ("tag:scope",))
    assert leader([a, parsed("3", 5), parsed("4", 5)]).event_id == "3"  # most severe, earliest
    # a symptom never leads while its master is a member, however severe it is
    symptom = parsed("5", 5, depends="Fault 6")
    master = parsed("6", 2)
    assert leader([symptom, master]) is master


def test_the_bridges_own_alert_can_be_a_member_and_lead() -> None:
    """Its id is not a number (kyoten-path-…): ordering must not need one. It leads by
    severity like any event; at equal severity Zabbix's (numbered) events come first."""
    own = dataclasses.replace(parsed("9", 5), event_id="kyoten-path-site-a-1796464573")
    assert leader([parsed("3", 4), own]) is own
    assert leader([own, parsed("12", 5)]).event_id == "12"
    assert leader([own]) is own


def test_a_symptom_joins_its_masters_incident_whatever_its_key() -> None:
    master = parsed("6", 2)
    symptom = parsed("5", 5, scope="capacity", depends="Fault 6")
    other = parsed("7", 4, scope="capacity")
    batches, alone = plan([(1, master, None), (2, symptom, None), (3, other, None)], {},
                          GroupPolicy(), 0.0)  # fmt: skip
    assert alone == []
    by_ids = {b.ids: b.notice for b in batches}
    assert by_ids[(1, 2)].leader is master and by_ids[(3,)].leader is other
    assert all(n.first for n in by_ids.values())
    assert {e.kind for n in by_ids.values() for e in n.events} == {Kind.PROBLEM}
    assert other.severity == Severity.HIGH and Tag("scope", "capacity") in other.tags
