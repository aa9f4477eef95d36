"""What the demo's NOC would have received: the SMTP sink's mails and the Slack fake's calls.

``kyoten demo fault`` counts what one fault sent people, per conversation — "one incident, one
conversation" is measured here, not assumed: a mail without ``In-Reply-To`` starts a mail
thread, a ``chat.postMessage`` without ``thread_ts`` starts a Slack thread, everything else is a
reply in one, and counts for the thread it answers. ``kyoten demo ack`` reads the Slack record
the way a person reads the channel: the newest message that still offers *Acknowledge*, as last
posted or updated.

Reading the files is kept apart from the counting, which is pure and unit-tested.
"""

from __future__ import annotations

import email
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from email import policy
from pathlib import Path
from typing import Any

#: The Slack Web API methods that put a message in front of people (not ephemeral answers).
POSTS = ("chat.postMessage",)
#: The ``action_id`` of the *Acknowledge* button (kyoten.alerting.channels.slack_blocks.ACK).
ACK_ACTION = "kyoten_ack"


@dataclass(frozen=True, slots=True)
class Mail:
    subject: str
    body: str
    in_reply_to: str
    at: float  # when it reached the sink (the Maildir file's mtime)
    message_id: str = ""


@dataclass(frozen=True, slots=True)
class SlackCall:
    method: str
    params: dict[str, Any]
    at: float
    ts: str = ""  # the ts the fake gave a posted message


@dataclass(frozen=True, slots=True)
class Tally:
    """What people received: messages and the conversations (threads) they form."""

    mails: int
    mail_threads: int
    slack_messages: int
    slack_threads: int

    def __str__(self) -> str:
        return (
            f"mail {self.mails} in {self.mail_threads} thread(s), "
            f"Slack {self.slack_messages} message(s) in {self.slack_threads} thread(s)"
        )


def read_mails(maildir: Path) -> list[Mail]:
    """The sink's mails (``Maildir/new``), oldest first."""
    found = []
    folder = maildir / "new"
    for f in sorted(folder.glob("*")) if folder.exists() else ():
        msg = email.message_from_bytes(f.read_bytes(), policy=policy.default)
        body = msg.get_body(("plain",))
        text = body.get_content() if body is not None else ""
        found.append(
            Mail(str(msg["Subject"] or ""), str(text), str(msg["In-Reply-To"] or ""),
                 f.stat().st_mtime, str(msg["Message-ID"] or ""))
        )  # fmt: skip
    return sorted(found, key=lambda m: m.at)


def read_slack(record: Path) -> list[SlackCall]:
    """The Slack fake's recorded calls (JSON lines), in the order they were made."""
    if not record.exists():
        return []
    calls = []
    for line in record.read_text().splitlines():
        with_time = json.loads(line)
        params = with_time.get("params") or {}
        calls.append(
            SlackCall(str(with_time["method"]), dict(params), float(with_time["time"]),
                      str(with_time.get("ts") or ""))
        )  # fmt: skip
    return calls


def tally(mails: Iterable[Mail], calls: Iterable[SlackCall], since: float) -> Tally:
    """What a fault injected at ``since`` sent people: the threads started at or after
    ``since``, and the replies in those threads. A late reply in an older thread (the
    recovery of an earlier fault's change event) is that earlier incident's, not this one's."""
    new_mails = [m for m in mails if m.at >= since]
    roots = {m.message_id for m in new_mails if not m.in_reply_to}
    mine = [m for m in new_mails if not m.in_reply_to or m.in_reply_to in roots]
    posts = [c for c in calls if c.at >= since and c.method in POSTS]
    threads = {c.ts for c in posts if not c.params.get("thread_ts")}
    in_mine = [c for c in posts if str(c.params.get("thread_ts") or c.ts) in threads]
    return Tally(
        mails=len(mine),
        mail_threads=len(roots),
        slack_messages=len(in_mine),
        slack_threads=len(threads),
    )


def _blocks(params: dict[str, Any]) -> list[Any]:
    blocks = params.get("blocks") or []
    if isinstance(blocks, str):  # a form-encoded call carries them as JSON text
        blocks = json.loads(blocks)
    return list(blocks) if isinstance(blocks, list) else []


def ack_value(params: dict[str, Any]) -> str | None:
    """The *Acknowledge* button's value (event ids) on one message, or None without one."""
    for block in _blocks(params):
        for element in block.get("elements", ()) if isinstance(block, dict) else ():
            if isinstance(element, dict) and element.get("action_id") == ACK_ACTION:
                return str(element.get("value") or "") or None
    return None


def open_ack_buttons(calls: Sequence[SlackCall]) -> list[tuple[str, str]]:
    """(message ts, button value) of every top-level message whose latest version still
    offers *Acknowledge*, newest message first. ``chat.update`` replaces a message's blocks:
    a resolved or acknowledged message has lost its button."""
    latest: dict[str, dict[str, Any]] = {}
    for call in calls:
        if call.method == "chat.postMessage" and call.ts and not call.params.get("thread_ts"):
            latest[call.ts] = call.params
        elif call.method == "chat.update" and str(call.params.get("ts") or "") in latest:
            latest[str(call.params["ts"])] = call.params
    found = []
    for ts in reversed(list(latest)):  # dicts keep the order of the first post
        value = ack_value(latest[ts])
        if value:
            found.append((ts, value))
    return found
