"""Links back to the Zabbix frontend: the event and its host (pure, no I/O).

The media type passes the ids (``{EVENT.ID}``, ``{TRIGGER.ID}``, ``{HOST.ID}``) and the frontend's
address from the global macro ``{$ZABBIX.URL}`` — the macro Zabbix's own Slack media type reads,
so a site that has it set gets links at once; ``zabbix_url:`` in ``bridge.yaml`` overrides it at
the intake (a bridge serves one Zabbix cluster, and its operator may prefer a GSLB name). The
URL travels with the event into the outbox, so what a message links to is decided once, when the
event is accepted.

* the event: ``tr_events.php?triggerid=T&eventid=E``, the page Zabbix's own Slack media type
  links to (6.0 and 7.x alike; trigger events only, ``{EVENT.SOURCE}`` 0);
* the host: the *Problems* view filtered on the host, ``zabbix.php?action=problem.view&
  filter_name=&hostids[]=H`` — the link the frontend's own problem notifications use, open to
  every user who may read the host (the host's configuration form is not).

A URL is only built from decimal ids and an ``http(s)://`` base, so nothing from an event can turn
a link into something else. No trailing slash is kept on the base (``https://z/zabbix/`` would give
``…//tr_events.php`` otherwise, as it does in the official media type).
"""

from __future__ import annotations

from dataclasses import dataclass

from .events import Event


def base_url(url: str) -> str:
    """``url`` without trailing slashes if it is an http(s) URL, else ``""``."""
    url = url.strip()
    if not url.startswith(("http://", "https://")) or any(c.isspace() for c in url):
        return ""
    return url.rstrip("/")


def event_url(event: Event) -> str:
    """The event's page in the frontend, or ``""`` when the event does not say enough."""
    base = base_url(event.zabbix_url)
    if not base or event.source != 0:
        return ""
    if not (event.event_id.isdigit() and event.trigger_id.isdigit()):
        return ""
    return f"{base}/tr_events.php?triggerid={event.trigger_id}&eventid={event.event_id}"


def host_url(event: Event) -> str:
    """The problems of the event's host in the frontend, or ``""``."""
    base = base_url(event.zabbix_url)
    if not base or not event.host_id.isdigit():
        return ""
    return f"{base}/zabbix.php?action=problem.view&filter_name=&hostids%5B%5D={event.host_id}"


@dataclass(frozen=True, slots=True)
class Links:
    """Both links of one event (either may be ``""``)."""

    event: str
    host: str

    def __bool__(self) -> bool:
        return bool(self.event or self.host)


def links(event: Event) -> Links:
    """:func:`event_url` and :func:`host_url` of ``event``."""
    return Links(event_url(event), host_url(event))


def text_lines(event: Event) -> list[str]:
    """Plain-text lines naming the links (``Event in Zabbix: …``), for mail and Slack text."""
    found = links(event)
    lines = []
    if found.event:
        lines.append(f"Event in Zabbix: {found.event}")
    if found.host:
        lines.append(f"Host in Zabbix: {found.host}")
    return lines


def slack_line(event: Event) -> str:
    """One mrkdwn line with both links (``<url|Open in Zabbix> · <url|host db2>``), or ``""``."""
    found = links(event)
    parts = []
    if found.event:
        parts.append(f"<{found.event}|Open in Zabbix>")
    if found.host:
        parts.append(f"<{found.host}|Problems of {_mrkdwn(event.host)}>")
    return " · ".join(parts)


def _mrkdwn(text: str) -> str:
    """Escape what Slack's mrkdwn treats as markup inside a link label."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("|", "¦")
