"""Pure message text shared by the channels: titles, summaries, field lists, digests.

Kept apart from the channels so wording is decided once and unit-tested without any network,
and so a mail and a Slack message about the same event say the same thing.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

from . import links
from .events import Event, Kind, Severity, UpdateAction

#: Zabbix's own Slack severity colours, and green for resolved.
SEVERITY_COLOURS = {
    Severity.NOT_CLASSIFIED: "#97AAB3",
    Severity.INFORMATION: "#7499FF",
    Severity.WARNING: "#FFC859",
    Severity.AVERAGE: "#FFA059",
    Severity.HIGH: "#E97659",
    Severity.DISASTER: "#E45959",
}
RESOLVED_COLOUR = "#009900"

_VERBS = {
    UpdateAction.ACKNOWLEDGE: "acknowledged",
    UpdateAction.UNACKNOWLEDGE: "unacknowledged",
    UpdateAction.COMMENT: "commented on",
    UpdateAction.SEVERITY: "changed the severity of",
    UpdateAction.CLOSE: "closed",
    UpdateAction.SUPPRESS: "suppressed",
    UpdateAction.UNSUPPRESS: "unsuppressed",
}


def truncate(text: str, limit: int) -> str:
    """``text`` if it has at most ``limit`` characters, else its start with a visible marker
    saying how much is left out, ``… [truncated, 18,012 characters not shown]``, in
    ``limit`` characters at most. The outbox keeps the full text; only a channel whose far
    end refuses or cuts longer text truncates, to what it accepts."""
    if len(text) <= limit:
        return text
    cut = len(text) - limit
    for _ in range(3):  # the marker's length depends on the number it shows
        marker = f"… [truncated, {cut:,} characters not shown]"
        keep = max(0, limit - len(marker))
        if len(text) - keep == cut:
            break
        cut = len(text) - keep
    return (text[:keep] + marker)[:limit]


def thread_subject(event: Event) -> str:
    """The subject of the problem mail; follow-ups use ``Re:`` plus this, for threading."""
    return f"Problem: {event.name} on {event.host}"


def title(event: Event, *, resolved: bool = False) -> str:
    """One line saying what happened; ``resolved``: a problem already resolved when shown."""
    if event.kind is Kind.PROBLEM:
        if resolved:
            return f"[Resolved] {event.name} on {event.host}"
        return f"[{event.severity.label}] {event.name} on {event.host}"
    if event.kind is Kind.RECOVERY:
        return f"[Resolved] {event.name} on {event.host}"
    return f"[Update] {update_line(event)}"


def update_line(event: Event) -> str:
    """``Hanako acknowledged, commented on "…"`` for an update event."""
    assert event.update is not None
    u = event.update
    verbs = [_VERBS[a] for a in sorted(u.actions, key=lambda a: list(_VERBS).index(a))]
    what = ", ".join(verbs) if verbs else u.action_text
    if UpdateAction.SEVERITY in u.actions and u.new_severity is not None:
        what += f" (now {u.new_severity.label})"
    return f"{u.user or 'Someone'} {what} {event.name} on {event.host}"


def fields(event: Event) -> list[tuple[str, str]]:
    """Label/value pairs worth showing, in display order, empty ones left out."""
    pairs = [
        ("Host", event.host),
        ("Severity", event.severity.label),
        ("Started", event.started),
        ("Resolved", event.recovered if event.kind is Kind.RECOVERY else ""),
        ("Operational data", event.opdata),
        ("Host groups", ", ".join(event.host_groups)),
        ("Tags", ", ".join(f"{t.tag}:{t.value}" if t.value else t.tag for t in event.tags)),
        ("Event ID", event.event_id),
    ]
    return [(k, v) for k, v in pairs if v]


def text_body(event: Event, *, resolved: bool = False) -> str:
    """Plain-text body for one event."""
    lines = [title(event, resolved=resolved), ""]
    if event.update is not None and event.update.message:
        lines += [event.update.message, ""]
    lines += [f"{k}: {v}" for k, v in fields(event)]
    back = links.text_lines(event)  # the event and its host in the Zabbix frontend
    if back:
        lines += ["", *back]
    return "\n".join(lines) + "\n"


def html_body(event: Event, *, resolved: bool = False) -> str:
    """HTML body for one event (escaped; no external resources)."""
    done = resolved or event.kind is Kind.RECOVERY
    colour = RESOLVED_COLOUR if done else SEVERITY_COLOURS[event.severity]
    rows = "".join(
        f"<tr><th align='left'>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>"
        for k, v in fields(event)
    )
    note = ""
    if event.update is not None and event.update.message:
        note = f"<p>{html.escape(event.update.message)}</p>"
    return (
        f"<html><body><h3 style='border-left:6px solid {colour};padding-left:6px'>"
        f"{html.escape(title(event, resolved=resolved))}</h3>{note}<table>{rows}</table>"
        f"{html_links(event)}</body></html>"
    )


def html_links(event: Event) -> str:
    """``<p>`` with the links to the event and its host in the frontend, or ``""``."""
    found = links.links(event)
    anchors = []
    if found.event:
        anchors.append(f"<a href='{html.escape(found.event)}'>Open the event in Zabbix</a>")
    if found.host:
        anchors.append(
            f"<a href='{html.escape(found.host)}'>Problems of {html.escape(event.host)}</a>"
        )
    return f"<p>{' · '.join(anchors)}</p>" if anchors else ""


def digest_title(events: Sequence[Event]) -> str:
    """Title of a storm digest."""
    kinds = {k: sum(e.kind is k for e in events) for k in Kind}
    parts = [f"{n} {k.value}{'s' if n > 1 else ''}" for k, n in kinds.items() if n]
    return f"[Digest] {len(events)} events: {', '.join(parts)}"


def digest_text(events: Sequence[Event]) -> str:
    """One line per event, in order (with the event's link into Zabbix when known)."""
    return "\n".join(_with_link(title(e), links.event_url(e)) for e in events) + "\n"


def _with_link(line: str, url: str) -> str:
    return f"{line} {url}" if url else line
