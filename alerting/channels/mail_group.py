"""One incident, one mail thread (:mod:`kyoten.alerting.grouping`).

The incident's first mail is led by its most severe member (``Problem: <name> on <host>
(+2 related)``, the leader's details, the other members listed); its Message-ID is derived from
the incident, and every later mail of the incident — members joining, updates, recoveries —
answers it (``In-Reply-To``/``References``, ``Re: <subject>``), so mail clients show one thread.
"""

from __future__ import annotations

import hashlib
import html
from email.message import EmailMessage
from typing import TYPE_CHECKING

from .. import render
from ..events import Kind
from ..grouping import GroupNotice
from ..templating import Text
from .base import Notification

if TYPE_CHECKING:
    from .mail import MailChannel


def incident_message_id(g: GroupNotice, domain: str) -> str:
    """The first mail's Message-ID (stable for the incident's key and leader)."""
    digest = hashlib.sha256(f"{g.key}\x1f{g.leader.event_id}".encode()).hexdigest()[:20]
    return f"<kyoten.incident.{digest}@{domain}>"


def compose_group(ch: MailChannel, n: Notification, msg: EmailMessage) -> EmailMessage:
    """Fill ``msg`` (From/To/Date set) for an incident's mail."""
    from .mail import SUBJECT_MAX

    g = n.group or GroupNotice("", False, n.event, (n.event,), (), frozenset())
    lead = g.leader
    others = [e for e in g.members if e.event_id != lead.event_id]
    if g.first or not n.thread:
        shaped = ch.renderer.event_text(
            lead, Text(render.thread_subject(lead), render.text_body(lead)), resolved=False
        )
        more = f" (+{len(others)} related)" if others else ""
        msg["Subject"] = render.truncate(shaped.subject + more, SUBJECT_MAX)
        msg["Message-ID"] = incident_message_id(g, ch.domain)
        lines = [shaped.body.strip("\n")]
        if others:
            lines += ["", "Related problems (same incident):"]
            lines += [f"- {render.title(e)}" for e in others]
        body = "\n".join(lines)
        msg.set_content(body + "\n")
        msg.add_alternative(
            f"<html><body><pre>{html.escape(body)}</pre>{render.html_links(lead)}</body></html>",
            subtype="html",
        )
        return msg
    thread = n.thread
    msg["Subject"] = f"Re: {thread.get('subject') or render.thread_subject(lead)}"
    keys = "|".join(e.dedup_key for e in g.events)
    msg["Message-ID"] = (
        f"<kyoten.incident.{hashlib.sha256(keys.encode()).hexdigest()[:20]}@{ch.domain}>"
    )
    msg["In-Reply-To"] = thread["message_id"]
    msg["References"] = thread["message_id"]
    parts = []
    for e in g.events:
        resolved = e.event_id in g.resolved_ids
        shaped = ch.renderer.event_text(e, Text.of(render.text_body(e, resolved=resolved)),
                                        resolved=resolved)  # fmt: skip
        prefix = "Joined this incident:\n" if e.kind is Kind.PROBLEM else ""
        parts.append(prefix + shaped.full.strip("\n"))
    if g.all_resolved:
        parts.append("Every problem of this incident is resolved.")
    body = "\n\n".join(parts)
    msg.set_content(body + "\n")
    msg.add_alternative(f"<html><body><pre>{html.escape(body)}</pre></body></html>",
                        subtype="html")  # fmt: skip
    return msg
