"""Slack channel: bot token + Web API with threading, or an incoming webhook as a fallback.

Bot mode (``type: slack``; settings ``token``, ``channel``, optional ``base_url``, ``timeout``,
``ack_reaction``):

* problem → ``chat.postMessage`` with the severity colour; the receipt ``{channel, ts}`` is kept
  by the pipeline in the bridge's store (not in Zabbix event tags, as Zabbix's own Slack media
  type does: those are written after the problem's alert, so an update or recovery sent soon
  after can run before they exist and lose the thread);
* update → a reply in the problem's thread, with its comment; acknowledge adds a reaction,
  unacknowledge removes it, a severity change recolours the original (not once the event is
  resolved: a late update never makes a resolved problem look open again);
* recovery → ``chat.update`` of the original to resolved (green), then a reply in the thread.

Zabbix retries each alert on its own, so a recovery or an update can arrive before its
problem; the pipeline holds it back for a while (``follow_up_wait``). If the problem still has
not come, the recovery is posted on its own as a resolved message and its receipt kept; when
the problem does arrive, it *edits* that message with the problem's details instead of posting
an open problem — one resolved message per event either way. A problem whose event is already
resolved (``notification.resolved``) is posted resolved. An update with no problem message to
reply to is posted on its own, with its comment.

Sizes: Slack cuts message text beyond 40,000 characters (and slack-sdk logs an error); legacy
attachment fields are kept within Block Kit's 2,000 characters per field (slack-sdk's
``SectionBlock`` field limit). Longer text is truncated here with a visible marker
(:func:`kyoten.alerting.render.truncate`); the outbox keeps the full event.

Idempotent calls (reaction, ``chat.update``) go *before* the one non-idempotent call (posting the
reply), so a retry after a partial failure repeats only harmless steps.

Webhook mode (``type: slack-webhook``; ``webhook_url``): one message per event, no threading
(webhooks cannot thread, update or react); a problem that arrives after its recovery is posted
resolved and the recovery is then not posted again.

Failures: HTTP 429 / ``ratelimited`` → retryable with ``Retry-After``; 5xx, ``internal_error``,
``service_unavailable``, ``request_timeout``, ``fatal_error`` and network errors → retryable;
other ``ok: false`` errors (``channel_not_found``, ``invalid_auth``, ``not_in_channel``, ...) →
permanent. slack-sdk's own retries are switched off: the outbox owns retrying.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from .. import grouping, links, render
from ..events import Event, Kind, UpdateAction
from ..templating import Renderer, Text
from . import slack_blocks
from .base import ChannelError, ChannelResources, Notification, Receipt
from .settings import SLACK, SLACK_WEBHOOK, check

_RETRYABLE_ERRORS = frozenset(
    {
        "ratelimited",
        "rate_limited",
        "internal_error",
        "fatal_error",
        "service_unavailable",
        "request_timeout",
    }
)

# slack-sdk logs request URLs at DEBUG; for webhooks the URL *is* the secret. Its clients get
# this logger, pinned above DEBUG, whatever the root logger's level.
_sdk_log = logging.getLogger("kyoten.alerting.slack_sdk")
_sdk_log.setLevel(logging.INFO)


def _retry_after(headers: Mapping[str, Any] | None, body: Any) -> float | None:
    value: Any = None
    if headers is not None:
        for k, v in headers.items():
            if k.lower() == "retry-after":
                value = v
    if value is None and isinstance(body, dict):
        value = body.get("retry_after")
    try:
        return max(0.0, float(value)) if value is not None else None
    except (TypeError, ValueError):
        return None


def classify_api_error(method: str, exc: SlackApiError) -> ChannelError:
    """Map a Web API failure (HTTP status + ``error`` field) to a ChannelError."""
    resp = exc.response
    status = int(getattr(resp, "status_code", 0) or 0)
    data = getattr(resp, "data", None)
    error = data.get("error", "") if isinstance(data, dict) else ""
    reason = f"slack {method}: HTTP {status}" + (f" {error}" if error else "")
    if status == 429 or error in ("ratelimited", "rate_limited"):
        return ChannelError(
            reason, retryable=True, retry_after=_retry_after(getattr(resp, "headers", None), data)
        )
    return ChannelError(reason, retryable=status >= 500 or error in _RETRYABLE_ERRORS)


#: ``chat.postMessage``/``chat.update`` ``text``: Slack truncates longer messages.
TEXT_MAX = 40_000
#: An attachment's title, fallback and each field's value (Block Kit's 2,000 per field).
FIELD_MAX = 2_000


def text(value: str) -> str:
    """Message text Slack takes whole."""
    return render.truncate(value, TEXT_MAX)


def attachment(
    event: Event, *, resolved: bool = False, headline: str | None = None
) -> dict[str, Any]:
    """A legacy coloured attachment (\"legacy, not deprecated\") for ``event``, its title
    linked to the event in the Zabbix frontend and a footer linking to the host."""
    colour = render.RESOLVED_COLOUR if resolved else render.SEVERITY_COLOURS[event.severity]
    head = render.truncate(headline or render.title(event, resolved=resolved), FIELD_MAX)
    return {
        **slack_blocks.attachment_links(event),
        "color": colour,
        "fallback": head,
        "title": head,
        "fields": [
            {"title": k, "value": render.truncate(v, FIELD_MAX), "short": len(v) < 40}
            for k, v in render.fields(event)
        ],
    }


def update_text(event: Event) -> str:
    """What an update says: who did what, and the comment."""
    assert event.update is not None
    line = render.update_line(event)
    if event.update.message:
        line += f"\n> {event.update.message}"
    back = links.slack_line(event)
    if back:
        line += f"\n{back}"
    return text(line)


def default_text(event: Event, *, resolved: bool = False) -> Text:
    """Today's text for ``event`` (the default when the channel has no template): a problem's
    headline; an update's line and comment; a recovery's title and details."""
    if event.kind is Kind.PROBLEM:
        return Text(render.title(event, resolved=resolved))
    if event.kind is Kind.UPDATE:
        return Text.of(update_text(event))
    return Text.of(render.text_body(event))


class SlackChannel:
    """Bot-token Slack channel; see the module docstring."""

    def __init__(
        self,
        name: str,
        client: AsyncWebClient,
        channel: str,
        ack_reaction: str = "white_check_mark",
        renderer: Renderer | None = None,
        buttons: bool = False,
    ) -> None:
        self.name = name
        self._client = client
        self.channel = channel
        self.ack_reaction = ack_reaction
        self.renderer = renderer or Renderer(name)
        self.buttons = buttons

    def _text(self, event: Event, *, resolved: bool = False) -> Text:
        """The channel's text for ``event``: its template, or today's layout."""
        return self.renderer.event_text(
            event, default_text(event, resolved=resolved), resolved=resolved
        )

    def _top(self, event: Event, *, resolved: bool) -> dict[str, Any]:
        """``text``, ``attachments`` and ``blocks`` of the event's top-level message, shown as
        a problem (open or resolved), with links back to Zabbix and the buttons."""
        as_problem = event if event.kind is Kind.PROBLEM else replace(event, kind=Kind.PROBLEM)
        shaped = self._text(as_problem, resolved=resolved)
        body: dict[str, Any] = {
            "text": text(shaped.full),
            "attachments": [attachment(as_problem, resolved=resolved, headline=shaped.subject)],
        }
        found = slack_blocks.blocks(
            as_problem, shaped.subject, resolved=resolved, buttons=self.buttons
        )
        if found is not None:
            body["blocks"] = found
        return body

    async def _api(self, method: str, **kwargs: Any) -> Any:
        try:
            return await getattr(self._client, method)(**kwargs)
        except SlackApiError as exc:
            raise classify_api_error(method.replace("_", "."), exc) from None
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ChannelError(
                f"slack {method}: network error ({type(exc).__name__})", retryable=True
            ) from None
        except SlackClientError as exc:
            raise ChannelError(
                f"slack {method}: client error ({type(exc).__name__})", retryable=False
            ) from None

    async def _tolerate(self, method: str, harmless: str, **kwargs: Any) -> None:
        """Call an idempotent method, treating ``harmless`` errors (already done) as success."""
        try:
            await self._api(method, **kwargs)
        except ChannelError as exc:
            if not exc.reason.endswith(harmless):
                raise

    async def send(self, notification: Notification) -> Receipt | None:
        event = notification.event
        if notification.digest:
            digest = self.renderer.digest_text(
                notification.digest,
                Text(
                    render.digest_title(notification.digest),
                    render.digest_text(notification.digest).rstrip("\n"),
                ),
            )
            await self._api("chat_postMessage", channel=self.channel, text=text(digest.full))
            return None
        thread = notification.thread
        if notification.group is not None or (thread and grouping.RECEIPT_KEY in thread):
            from .slack_group import send_group  # one incident, one thread

            return await send_group(self, notification)
        resolved = notification.resolved
        if event.kind is Kind.PROBLEM:
            body = self._top(event, resolved=resolved)
            if thread:  # a recovery that came first posted the message: complete it
                await self._api("chat_update", channel=thread["channel"], ts=thread["ts"], **body)
                return {"channel": thread["channel"], "ts": thread["ts"]}
            resp = await self._api("chat_postMessage", channel=self.channel, **body)
            return {"channel": str(resp["channel"]), "ts": str(resp["ts"])}
        if not thread:  # no problem message here (yet): this one stands alone
            if event.kind is Kind.RECOVERY:
                resp = await self._api(
                    "chat_postMessage", channel=self.channel, **self._top(event, resolved=True)
                )
                return {"channel": str(resp["channel"]), "ts": str(resp["ts"])}
            await self._api(
                "chat_postMessage",
                channel=self.channel,
                text=text(self._text(event, resolved=resolved).full),
                attachments=[attachment(event, resolved=resolved)],
            )
            return None
        where = {"channel": thread["channel"]}
        if event.kind is Kind.RECOVERY:
            await self._api(
                "chat_update", **where, ts=thread["ts"], **self._top(event, resolved=True)
            )
            await self._api(
                "chat_postMessage",
                **where,
                thread_ts=thread["ts"],
                text=text(self._text(event).full),
            )
            return None
        assert event.update is not None
        acts = event.update.actions
        if UpdateAction.ACKNOWLEDGE in acts:
            await self._tolerate(
                "reactions_add",
                "already_reacted",
                **where,
                timestamp=thread["ts"],
                name=self.ack_reaction,
            )
        if UpdateAction.UNACKNOWLEDGE in acts:
            await self._tolerate(
                "reactions_remove",
                "no_reaction",
                **where,
                timestamp=thread["ts"],
                name=self.ack_reaction,
            )
        # the original shows the new severity, and loses its Acknowledge button once acknowledged
        ack_changed = self.buttons and acts & {UpdateAction.ACKNOWLEDGE, UpdateAction.UNACKNOWLEDGE}
        if (UpdateAction.SEVERITY in acts or ack_changed) and not resolved:
            await self._api(
                "chat_update", **where, ts=thread["ts"], **self._top(event, resolved=False)
            )
        await self._api(
            "chat_postMessage",
            **where,
            thread_ts=thread["ts"],
            text=text(self._text(event, resolved=resolved).full),
        )
        return None

    async def aclose(self) -> None:
        return None

    def __repr__(self) -> str:
        return f"SlackChannel({self.name!r}, {self.channel!r})"


class SlackWebhookChannel:
    """Incoming-webhook fallback: one unthreaded message per notification."""

    def __init__(self, name: str, client: AsyncWebhookClient) -> None:
        self.name = name
        self._client = client

    async def send(self, notification: Notification) -> Receipt | None:
        event = notification.event
        if (
            event.kind is Kind.RECOVERY
            and not notification.digest
            and (notification.thread or {}).get("resolved")
        ):
            return None  # its problem came late and was posted resolved: said once is enough
        if notification.digest:
            body: dict[str, Any] = {
                "text": text(
                    render.digest_title(notification.digest)
                    + "\n"
                    + render.digest_text(notification.digest)
                )
            }
        else:
            resolved = notification.resolved or event.kind is Kind.RECOVERY
            head = update_text(event) if event.kind is Kind.UPDATE else render.title(event)
            if event.kind is Kind.PROBLEM:
                head = render.title(event, resolved=resolved)
            body = {"text": text(head), "attachments": [attachment(event, resolved=resolved)]}
        try:
            resp = await self._client.send_dict(body)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ChannelError(
                f"slack webhook: network error ({type(exc).__name__})", retryable=True
            ) from None
        except SlackClientError as exc:
            raise ChannelError(
                f"slack webhook: client error ({type(exc).__name__})", retryable=False
            ) from None
        if resp.status_code == 200:
            # a webhook message cannot be edited or replied to: remember that the problem was
            # already posted resolved, so its recovery does not say it again
            late = event.kind is Kind.PROBLEM and notification.resolved and not notification.digest
            return {"resolved": "1"} if late else None
        answer = (resp.body or "")[:100]
        reason = f"slack webhook: HTTP {resp.status_code} {answer}".strip()
        if resp.status_code == 429:
            raise ChannelError(reason, retryable=True, retry_after=_retry_after(resp.headers, None))
        raise ChannelError(reason, retryable=resp.status_code >= 500)

    async def aclose(self) -> None:
        return None

    def __repr__(self) -> str:
        return f"SlackWebhookChannel({self.name!r})"


def build(name: str, settings: Mapping[str, Any], resources: ChannelResources) -> SlackChannel:
    """Bot-token channel from ``token`` + ``channel`` (``base_url`` for tests/proxies); the
    settings are :data:`.settings.SLACK`."""
    v = check(SLACK, name, settings)
    client = AsyncWebClient(
        token=v["token"],
        base_url=v["base_url"],
        timeout=int(v["timeout"]),
        session=resources.http,
        retry_handlers=[],
        logger=_sdk_log,
    )
    return SlackChannel(name, client, v["channel"], v["ack_reaction"], buttons=v["buttons"])


def build_webhook(
    name: str, settings: Mapping[str, Any], resources: ChannelResources
) -> SlackWebhookChannel:
    """Incoming-webhook channel from ``webhook_url`` (:data:`.settings.SLACK_WEBHOOK`)."""
    v = check(SLACK_WEBHOOK, name, settings)
    client = AsyncWebhookClient(
        v["webhook_url"],
        timeout=int(v["timeout"]),
        session=resources.http,
        retry_handlers=[],
        logger=_sdk_log,
    )
    return SlackWebhookChannel(name, client)
