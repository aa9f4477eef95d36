"""The demo's count of what people received, per conversation, and its Acknowledge lookup."""

from __future__ import annotations

import json
from email.message import EmailMessage
from pathlib import Path

from kyoten.shell.lab import inbox
from kyoten.shell.lab.inbox import Mail, SlackCall


def _ack_blocks(value: str) -> list[dict[str, object]]:
    return [
        {"type": "section", "text": {"type": "mrkdwn", "text": "*[High] x*"}},
        {
            "type": "actions",
            "elements": [{"type": "button", "action_id": "kyoten_ack", "value": value}],
        },
    ]


def test_threads_are_counted_from_replies_and_only_since_the_fault() -> None:
    mails = [
        Mail("old", "", "", 5.0, "<old@kyoten>"),
        Mail("[High] lead (+2 related)", "", "", 10.0, "<lead@kyoten>"),
        Mail("Re: [High] lead", "", "<lead@kyoten>", 11.0, "<r1@kyoten>"),
        Mail("Re: old", "", "<old@kyoten>", 11.5, "<r2@kyoten>"),  # an earlier incident's
        Mail("Re: [High] lead", "", "<lead@kyoten>", 12.0, "<r3@kyoten>"),
    ]
    calls = [
        SlackCall("chat.postMessage", {"text": "old"}, 5.0, "5.000001"),
        SlackCall("chat.postMessage", {"text": "lead"}, 10.0, "10.000002"),
        SlackCall("chat.update", {"ts": "10.000002"}, 10.5),
        SlackCall("chat.postMessage", {"thread_ts": "10.000002"}, 11.0, "11.000003"),
        SlackCall("chat.postMessage", {"thread_ts": "5.000001"}, 11.2, "11.000004"),
        SlackCall("chat.postEphemeral", {"text": "done"}, 11.5),
        SlackCall("chat.postMessage", {"text": "another incident"}, 12.0, "12.000005"),
    ]
    t = inbox.tally(mails, calls, since=10.0)
    assert (t.mails, t.mail_threads, t.slack_messages, t.slack_threads) == (3, 1, 3, 2)
    assert str(t) == "mail 3 in 1 thread(s), Slack 3 message(s) in 2 thread(s)"


def test_acknowledge_is_taken_from_the_latest_version_of_each_message() -> None:
    calls = [
        SlackCall("chat.postMessage", {"blocks": _ack_blocks("101")}, 1.0, "1.000001"),
        SlackCall("chat.postMessage", {"blocks": json.dumps(_ack_blocks("102,103"))}, 2.0,
                  "2.000002"),
        SlackCall("chat.postMessage", {"thread_ts": "2.000002", "blocks": _ack_blocks("9")}, 3.0,
                  "3.000003"),
        # the first message acknowledged elsewhere: its update has lost the button
        SlackCall("chat.update", {"ts": "1.000001", "blocks": []}, 4.0),
    ]  # fmt: skip
    assert inbox.open_ack_buttons(calls) == [("2.000002", "102,103")]
    calls.append(SlackCall("chat.update", {"ts": "2.000002", "text": "resolved"}, 5.0))
    assert inbox.open_ack_buttons(calls) == []


def test_the_files_are_read_as_the_sink_and_the_fake_write_them(tmp_path: Path) -> None:
    new = tmp_path / "Maildir" / "new"
    new.mkdir(parents=True)
    for i, reply_to in enumerate(("", "<a@kyoten>")):
        msg = EmailMessage()
        msg["Subject"] = f"s{i}"
        if reply_to:
            msg["In-Reply-To"] = reply_to
        msg.set_content(f"body {i}")
        (new / f"m{i}").write_bytes(bytes(msg))
    mails = inbox.read_mails(tmp_path / "Maildir")
    assert [(m.subject, m.in_reply_to, m.body.strip()) for m in mails] == [
        ("s0", "", "body 0"),
        ("s1", "<a@kyoten>", "body 1"),
    ]
    record = tmp_path / "calls.jsonl"
    record.write_text(
        json.dumps({"time": 1.5, "method": "chat.postMessage", "params": {"a": 1}, "ts": "1.1"})
        + "\n"
        + json.dumps({"time": 2.5, "method": "chat.update", "params": {"ts": "1.1"}})
        + "\n"
    )
    assert inbox.read_slack(record) == [
        SlackCall("chat.postMessage", {"a": 1}, 1.5, "1.1"),
        SlackCall("chat.update", {"ts": "1.1"}, 2.5, ""),
    ]
    assert inbox.read_slack(tmp_path / "missing.jsonl") == []
