"""Slack channel: bot token + Web API with threading, or an incoming webhook as a fallback.

Bot mode (``type: slack``; settings ``token``, ``channel``, optional ``base_url``, ``timeout``,
``ack_reaction``):

* problem → ``chat.postMessage`` with the severity colour; the receipt ``{channel, ts}`` is kept
  by the pipeline in the bridge's store (not in Zabbix event tags, as Zabbix's own Slack media
  type does: those are written after the problem's alert, so an update or recovery sent soon
  after can run before they exist and lose the thread);
* update → a reply in the problem's thread; acknowledge adds a reaction, unacknowledge removes
  it, a severity change recolours the original;
* recovery → ``chat.update`` of the original to resolved (green), then a reply in the thread.

Idempotent calls (reaction, ``chat.update``) go *before* the one non-idempotent call (posting the
reply), so a retry after a partial failure repeats only harmless steps.

Webhook mode (``type: slack-webhook``; ``webhook_url``): one message per event, no threading
(webhooks cannot thread, update or react).

Failures: HTTP 429 / ``ratelimited`` → retryable with ``Retry-After``; 5xx, ``internal_error``,
``service_unavailable``, ``request_timeout``, ``fatal_error`` and network errors → retryable;
other ``ok: false`` errors (``channel_not_found``, ``invalid_auth``, ``not_in_channel``, ...) →
permanent. slack-sdk's own retries are switched off: the outbox owns retrying.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.webhook.async_client import AsyncWebhookClient

from .. import render
from ..config import ConfigError
from ..events import Event, Kind, UpdateAction
from .base import ChannelError, ChannelResources, Notification, Receipt

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


def attachment(event: Event, *, resolved: bool = False) -> dict[str, Any]:
    """A legacy coloured attachment (\"legacy, not deprecated\") for ``event``."""
    colour = render.RESOLVED_COLOUR if resolved else render.SEVERITY_COLOURS[event.severity]
    head = render.title(event)
    return {
        "color": colour,
        "fallback": head,
        "title": head,
        "fields": [{"title": k, "value": v, "short": len(v) < 40} for k, v in render.fields(event)],
    }


class SlackChannel:
    """Bot-token Slack channel; see the module docstring."""

    def __init__(
        self,
        name: str,
        client: AsyncWebClient,
        channel: str,
        ack_reaction: str = "white_check_mark",
    ) -> None:
        self.name = name
        self._client = client
        self.channel = channel
        self.ack_reaction = ack_reaction

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
            await self._api(
                "chat_postMessage",
                channel=self.channel,
                text=render.digest_title(notification.digest)
                + "\n"
                + render.digest_text(notification.digest),
            )
            return None
        thread = notification.thread
        if event.kind is Kind.PROBLEM or not thread:
            resp = await self._api(
                "chat_postMessage",
                channel=self.channel,
                text=render.title(event),
                attachments=[attachment(event, resolved=event.kind is Kind.RECOVERY)],
            )
            if event.kind is Kind.PROBLEM:
                return {"channel": str(resp["channel"]), "ts": str(resp["ts"])}
            return None
        where = {"channel": thread["channel"]}
        if event.kind is Kind.RECOVERY:
            await self._api(
                "chat_update",
                **where,
                ts=thread["ts"],
                text=render.title(event),
                attachments=[attachment(event, resolved=True)],
            )
            await self._api(
                "chat_postMessage", **where, thread_ts=thread["ts"], text=render.text_body(event)
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
        if UpdateAction.SEVERITY in acts:
            await self._api(
                "chat_update",
                **where,
                ts=thread["ts"],
                text=render.title(event),
                attachments=[attachment(event)],
            )
        text = render.update_line(event)
        if event.update.message:
            text += f"\n> {event.update.message}"
        await self._api("chat_postMessage", **where, thread_ts=thread["ts"], text=text)
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
        if notification.digest:
            body: dict[str, Any] = {
                "text": render.digest_title(notification.digest)
                + "\n"
                + render.digest_text(notification.digest)
            }
        else:
            body = {
                "text": render.title(event),
                "attachments": [attachment(event, resolved=event.kind is Kind.RECOVERY)],
            }
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
            return None
        text = (resp.body or "")[:100]
        reason = f"slack webhook: HTTP {resp.status_code} {text}".strip()
        if resp.status_code == 429:
            raise ChannelError(reason, retryable=True, retry_after=_retry_after(resp.headers, None))
        raise ChannelError(reason, retryable=resp.status_code >= 500)

    async def aclose(self) -> None:
        return None

    def __repr__(self) -> str:
        return f"SlackWebhookChannel({self.name!r})"


def _check(
    name: str, settings: Mapping[str, Any], known: set[str], required: tuple[str, ...]
) -> None:
    errors = [f"channels.{name}.{k}: unknown slack setting" for k in settings if k not in known]
    errors += [
        f"channels.{name}.{k}: required"
        for k in required
        if not isinstance(settings.get(k), str) or not settings.get(k)
    ]
    if errors:
        raise ConfigError(errors)


def build(name: str, settings: Mapping[str, Any], resources: ChannelResources) -> SlackChannel:
    """Bot-token channel from ``token`` + ``channel`` (``base_url`` for tests/proxies)."""
    _check(
        name,
        settings,
        {"token", "channel", "base_url", "timeout", "ack_reaction"},
        ("token", "channel"),
    )
    client = AsyncWebClient(
        token=str(settings["token"]),
        base_url=str(settings.get("base_url", AsyncWebClient.BASE_URL)),
        timeout=int(settings.get("timeout", 30)),
        session=resources.http,
        retry_handlers=[],
        logger=_sdk_log,
    )
    return SlackChannel(
        name,
        client,
        str(settings["channel"]),
        str(settings.get("ack_reaction", "white_check_mark")),
    )


def build_webhook(
    name: str, settings: Mapping[str, Any], resources: ChannelResources
) -> SlackWebhookChannel:
    """Incoming-webhook channel from ``webhook_url``."""
    _check(name, settings, {"webhook_url", "timeout"}, ("webhook_url",))
    client = AsyncWebhookClient(
        str(settings["webhook_url"]),
        timeout=int(settings.get("timeout", 30)),
        session=resources.http,
        retry_handlers=[],
        logger=_sdk_log,
    )
    return SlackWebhookChannel(name, client)
