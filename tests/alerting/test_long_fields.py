"""Long fields are accepted whole (the body limit is the only size limit at intake), kept whole
in the outbox, and each channel truncates only what its far end would refuse or cut, with a
visible marker."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import orjson
import pytest
from kyoten.alerting.app import create_app
from kyoten.alerting.channels.mail import SUBJECT_MAX
from kyoten.alerting.channels.slack import FIELD_MAX, TEXT_MAX
from kyoten.alerting.events import parse_event
from kyoten.alerting.render import truncate
from pytest_aiohttp import AiohttpClient

from .conftest import AUTH, FakeSlack, Smtp, bridge_config, eventually, payload, settings_of

MARK = "characters not shown]"


@pytest.mark.parametrize(
    ("size", "limit"), [(100, 100), (101, 100), (20_000, 200), (50_000, 40_000)]
)
def test_truncate_keeps_the_limit_and_says_how_much_is_left_out(size: int, limit: int) -> None:
    text = "".join(chr(0x41 + i % 26) for i in range(size))
    cut = truncate(text, limit)
    assert len(cut) <= limit
    if size <= limit:
        assert cut == text
    else:
        shown = cut[: cut.index("… [truncated, ")]
        assert text.startswith(shown) and len(shown) > limit // 2
        assert cut.endswith(f"… [truncated, {size - len(shown):,} {MARK}")


def test_a_20000_character_field_is_a_valid_event() -> None:
    event = parse_event(payload("1", **{"{EVENT.OPDATA}": "x" * 20_000}))
    assert event.opdata == "x" * 20_000


async def test_a_20000_character_alert_is_delivered_truncated_where_the_channel_needs_it(
    aiohttp_client: AiohttpClient, tmp_path: Path, smtp: Smtp, slack: FakeSlack
) -> None:
    client = await aiohttp_client(
        create_app(settings_of(bridge_config(tmp_path, smtp, slack), tmp_path))
    )
    opdata = "".join(f"{i:05d} " for i in range(3334))[:20_000]  # "00000 00001 …", 20,000
    name = "Replication lag high (800) " + "w" * 400  # a subject far longer than any client shows
    message = "m" * 20_000  # {ALERT.MESSAGE}, kept with the event
    body = payload(
        "800",
        **{"{EVENT.OPDATA}": opdata, "{EVENT.NAME}": name, "{ALERT.MESSAGE}": message},
    )
    assert len(orjson.dumps(body)) > 40_000  # well above the old 16,384 per field
    resp = await client.post("/v1/events", json=body, headers=AUTH)
    assert resp.status == 202, await resp.text()
    comment = "c" * 45_000  # longer than a Slack message may be
    update = payload("800", "update", **{"{EVENT.UPDATE.MESSAGE}": comment})
    resp = await client.post("/v1/events", json=update, headers=AUTH)
    assert resp.status == 202, await resp.text()
    await eventually(lambda: len(smtp.sink.mails) == 2 and len(slack.posts()) == 2)

    # the outbox keeps everything
    with sqlite3.connect(tmp_path / "bridge.db") as db:
        stored = [orjson.loads(b) for (b,) in db.execute("SELECT body FROM events ORDER BY seq")]
    assert stored[0]["opdata"] == opdata and stored[0]["message"] == message
    assert stored[0]["name"] == name and stored[1]["update"]["message"] == comment

    # mail: the subject is cut with a marker, the body is whole
    problem_mail, update_mail = smtp.sink.messages()
    subject = str(problem_mail["Subject"])
    assert len(subject) <= SUBJECT_MAX and subject.endswith(MARK)
    assert subject.startswith("Problem: Replication lag high (800) www")
    assert str(update_mail["Subject"]) == f"Re: {subject}"
    assert opdata in problem_mail.get_body(("plain",)).get_content()
    assert comment in update_mail.get_body(("plain",)).get_content()

    # Slack: text within 40,000, each attachment field within 2,000, both marked
    post, reply = slack.posts()
    field = {f["title"]: f["value"] for f in post.data["attachments"][0]["fields"]}
    ops = field["Operational data"]
    assert len(ops) <= FIELD_MAX and ops.endswith(MARK) and opdata.startswith(ops.split("…")[0])
    assert len(post.data["attachments"][0]["title"]) <= FIELD_MAX
    assert len(reply.data["text"]) <= TEXT_MAX and reply.data["text"].endswith(MARK)
    assert "c" * 30_000 in reply.data["text"]
