"""Block Kit for the Slack channel: links back to Zabbix and the *Acknowledge* / *Close* buttons.

Pure (no I/O): :mod:`.slack` sends what these functions build, and
:mod:`kyoten.alerting.slack_actions` reads the clicks back by :data:`ACK` / :data:`CLOSE`.

A problem message carries, above its coloured attachment, a section with the headline linked to
the event in the Zabbix frontend, and an actions block:

* **Acknowledge** (``action_id`` :data:`ACK`, ``value`` the Zabbix event id) — while the event is
  open and unacknowledged, and only on a channel with ``buttons: true`` (which needs the bridge's
  ``slack_actions`` section: a Socket Mode connection that receives the clicks);
* **Close** (:data:`CLOSE`, with a confirmation) — likewise, and only when the trigger allows
  closing by hand (``Event.manual_close``, passed by the media type);
* **Open in Zabbix** and **Problems of <host>** — URL buttons, whenever the links are known.

Every ``chat.update`` of the message sends its blocks again: Slack keeps a message's old blocks
when an update omits them, and a resolved problem must lose its buttons.
"""

from __future__ import annotations

from typing import Any

from .. import links
from ..events import Event

ACK = "kyoten_ack"
CLOSE = "kyoten_close"
OPEN_EVENT = "kyoten_open_event"
OPEN_HOST = "kyoten_open_host"
BLOCK_ID = "kyoten_actions"
#: Slack's limits: a section's text, a button's label.
SECTION_MAX = 3000
LABEL_MAX = 75


def mrkdwn(text: str) -> str:
    """``text`` with Slack's three control characters escaped."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _label(text: str) -> dict[str, Any]:
    if len(text) > LABEL_MAX:
        text = text[: LABEL_MAX - 1] + "…"
    return {"type": "plain_text", "text": text, "emoji": True}


def blocks(
    event: Event, headline: str, *, resolved: bool, buttons: bool
) -> list[dict[str, Any]] | None:
    """The blocks of ``event``'s top-level message, or None when there is nothing to add
    (no link known, no buttons): the message is then the plain text and attachment as before.

    :param resolved: the event is over: no Acknowledge or Close any more.
    :param buttons: the channel offers Acknowledge/Close (``buttons: true``).
    """
    found = links.links(event)
    if not found and not buttons:
        return None
    head = mrkdwn(headline)
    if found.event:
        head = f"<{found.event}|{head}>"
    section = {
        "type": "section",
        "text": {"type": "mrkdwn", "text": f"*{head}*"[:SECTION_MAX]},
    }
    elements: list[dict[str, Any]] = []
    if buttons and not resolved:
        if not event.acknowledged:
            elements.append(
                {
                    "type": "button",
                    "action_id": ACK,
                    "text": _label("Acknowledge"),
                    "value": event.event_id,
                    "style": "primary",
                }
            )
        if event.manual_close:
            elements.append(
                {
                    "type": "button",
                    "action_id": CLOSE,
                    "text": _label("Close"),
                    "value": event.event_id,
                    "style": "danger",
                    "confirm": {
                        "title": _label("Close the problem in Zabbix?"),
                        "text": {
                            "type": "mrkdwn",
                            "text": mrkdwn(f"{event.name} on {event.host}")[:300],
                        },
                        "confirm": _label("Close"),
                        "deny": _label("Cancel"),
                    },
                }
            )
    if found.event:
        elements.append(
            {
                "type": "button",
                "action_id": OPEN_EVENT,
                "text": _label("Open in Zabbix"),
                "url": found.event,
            }
        )
    if found.host:
        elements.append(
            {
                "type": "button",
                "action_id": OPEN_HOST,
                "text": _label(f"Problems of {event.host}"),
                "url": found.host,
            }
        )
    out: list[dict[str, Any]] = [section]
    if elements:
        out.append({"type": "actions", "block_id": BLOCK_ID, "elements": elements})
    return out


def attachment_links(event: Event) -> dict[str, str]:
    """Legacy attachment keys linking back: the title to the event, a footer to the host."""
    found = links.links(event)
    extra: dict[str, str] = {}
    if found.event:
        extra["title_link"] = found.event
    line = links.slack_line(event)
    if line:
        extra["footer"] = line
    return extra
