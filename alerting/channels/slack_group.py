"""One incident, one Slack thread (:mod:`kyoten.alerting.grouping`).

* The incident's **first message** is led by its most severe member: its headline, colour,
  fields, links and buttons, plus the other members listed (``+2 related``). *Acknowledge* on it
  acknowledges every open, unacknowledged member at once (the button's value lists their
  event ids); *Close* closes those whose trigger allows it.
* A member joining later, and the members' updates and recoveries, are **replies in that
  thread** — one reply per batch the pipeline delivers — and the top message is refreshed
  (members, colour, buttons); it turns resolved, green and without buttons, only when every
  member is resolved.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from .. import render
from ..events import Event, Kind, UpdateAction
from ..grouping import GroupNotice
from . import slack_blocks
from .base import Notification, Receipt

if TYPE_CHECKING:
    from .slack import SlackChannel

#: Members listed by name in the top message; the rest are counted.
LIST_MAX = 15


def _line(event: Event, resolved: bool) -> str:
    mark = "✓ " if resolved else ""
    return f"• {mark}{render.title(event, resolved=resolved)}"


def top(ch: SlackChannel, g: GroupNotice) -> dict[str, Any]:
    """``text``, ``attachments``, ``blocks`` of the incident's top message."""
    from .slack import attachment, text

    done = g.all_resolved
    lead = g.leader if g.leader.kind is Kind.PROBLEM else replace(g.leader, kind=Kind.PROBLEM)
    open_members = g.open_members
    worst = max(open_members, key=lambda e: int(e.severity)) if open_members else lead
    shaped = ch._text(replace(lead, severity=worst.severity), resolved=done)
    others = [e for e in g.members if e.event_id != lead.event_id]
    headline = shaped.subject + (f" (+{len(others)} related)" if others else "")
    lines = [_line(e, e.event_id in g.resolved_ids) for e in others[:LIST_MAX]]
    if len(others) > LIST_MAX:
        lines.append(f"… and {len(others) - LIST_MAX} more")
    body = "\n".join(filter(None, [shaped.body, *lines]))
    att = attachment(replace(lead, severity=worst.severity), resolved=done, headline=headline)
    if others:
        att["fields"] = [
            *att["fields"],
            {"title": "Related problems", "value": "\n".join(lines)[:2000], "short": False},
        ]
    out: dict[str, Any] = {
        "text": text(headline + (f"\n{body}" if body else "")),
        "attachments": [att],
    }
    # the buttons act on every open member: acknowledge the unacknowledged, close the closable
    unacked = [e.event_id for e in open_members if e.event_id not in g.acked_ids]
    closable = [e.event_id for e in open_members if e.manual_close]
    shown = replace(lead, acknowledged=not unacked, manual_close=bool(closable))
    found = slack_blocks.blocks(shown, headline, resolved=done, buttons=ch.buttons)
    if found is not None:
        for block in found:
            for element in block.get("elements", ()):
                if element.get("action_id") == slack_blocks.ACK:
                    element["value"] = ",".join(unacked)
                elif element.get("action_id") == slack_blocks.CLOSE:
                    element["value"] = ",".join(closable)
        out["blocks"] = found
    return out


def reply(ch: SlackChannel, g: GroupNotice) -> str:
    """The thread reply for a batch: new members, or the members' updates and recoveries."""
    from .slack import text

    parts = []
    for e in g.events:
        if e.kind is Kind.PROBLEM:
            parts.append("Joined this incident: " + ch._text(e).full)
        else:
            parts.append(ch._text(e, resolved=e.event_id in g.resolved_ids).full)
    if g.all_resolved:
        parts.append("Every problem of this incident is resolved.")
    return text("\n\n".join(parts))


async def send_group(ch: SlackChannel, n: Notification) -> Receipt | None:
    """Send an incident's message (see the module docstring)."""
    g = n.group
    if g is None:  # a follow-up of a member after a restart: its thread, without the state
        g = GroupNotice("", False, n.event, (n.event,), (), frozenset())
    if g.first or not n.thread:
        resp = await ch._api("chat_postMessage", channel=ch.channel, **top(ch, g))
        receipt = {"channel": str(resp["channel"]), "ts": str(resp["ts"])}
        if not g.first:  # its thread was lost: say what this is about underneath
            await ch._api("chat_postMessage", channel=receipt["channel"],
                          thread_ts=receipt["ts"], text=reply(ch, g))  # fmt: skip
        return receipt
    where = {"channel": n.thread["channel"]}
    ts = n.thread["ts"]
    acts = {a for e in g.events if e.update is not None for a in e.update.actions}
    if UpdateAction.ACKNOWLEDGE in acts and (
        not g.members or {e.event_id for e in g.members} <= g.acked_ids
    ):
        await ch._tolerate("reactions_add", "already_reacted", **where, timestamp=ts,
                           name=ch.ack_reaction)  # fmt: skip
    if g.members:  # refresh members, colour, buttons; resolved when the last one is
        await ch._api("chat_update", **where, ts=ts, **top(ch, g))
    await ch._api("chat_postMessage", **where, thread_ts=ts, text=reply(ch, g))
    return None
