"""Acknowledge and close from Slack: Socket Mode in, ``event.acknowledge`` out.

Problem messages of a Slack channel with ``buttons: true`` carry *Acknowledge* and, where the
trigger allows closing by hand, *Close* (:mod:`kyoten.alerting.channels.slack_blocks`). A click
reaches the bridge over **Socket Mode** — slack-sdk's asyncio client
(``slack_sdk.socket_mode.aiohttp``) keeps an outbound WebSocket to Slack, so a bridge inside a
data centre needs no inbound port — and the bridge calls the Zabbix API as the **Zabbix user
mapped from the Slack user** in ``bridge.yaml``::

    slack_actions:
      app_token_file: /etc/kyoten/slack-app.token    # xapp-…, scope connections:write
      slack_channel: noc-slack                       # its bot token answers (ephemeral)
      api_url: https://zabbix.example/api_jsonrpc.php  # default: zabbix_url + /api_jsonrpc.php
      users:
        U024BE7LH: {zabbix_user: hanako, token_file: /etc/kyoten/zabbix/hanako.token}

* A Slack user with no mapping is **refused** with an ephemeral message saying why; nothing is
  done. There is no default identity and no shared admin token: each mapping holds that user's
  own Zabbix API token (best as ``token_file``), and before acting the bridge asks Zabbix whose
  token it is (``user.checkAuthentication``): a token of another user than the mapping names is
  refused, and so is a **Super admin**'s unless the mapping says ``allow_super_admin: true``.
  Zabbix then applies that user's own permissions and role (acknowledging needs read access to
  the host, closing read-write and a trigger that allows it).
* *Acknowledge* is ``event.acknowledge`` with action 2+4 (acknowledge, with a message naming the
  Slack user); *Close* is 1+4. Zabbix's own update event then flows back through the media type
  as usual: the thread shows who acknowledged, the tower stops blinking and the buzzer stops.
  Zabbix does not notify a user of their own updates, so the mapped users must not be the
  user the kyoten media type is assigned to (the action's "notify all involved" reaches that
  one).
* Every envelope is acknowledged to Slack at once, by its ``envelope_id`` (slack-sdk never does
  it by itself; Slack redelivers after ~3 s), before the Zabbix call; a redelivered envelope or
  a repeated click (same user and ``action_ts``) is acted on once.
* zabbix_utils' ``AsyncZabbixAPI`` closes its internal aiohttp session on any
  ``APIRequestError`` (say, acknowledging an event that is gone), after which every call fails.
  The bridge passes its own ``client_session``, which the library then never closes, so one
  refused click does not break the next. Its constructor reads the API version with blocking
  I/O, so it is built in a worker thread, once per mapped user.
* Tokens never reach a log, an error, ``/health`` or a message: zabbix_utils logs request bodies
  (with the token) at DEBUG and slack-sdk logs URLs (the WebSocket ticket), so their loggers are
  pinned above DEBUG.
* ``connect()`` of slack-sdk retries forever on a bad app token, silently; the bridge checks the
  token with ``apps.connections.open`` first, and keeps retrying in the background with backoff,
  the reason in ``/health`` (``slack_actions``) — alerts flow whatever Socket Mode does.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp

from .actions_config import ActionsConfig, UserMapping, parse_actions
from .channels.slack_blocks import ACK, CLOSE
from .zabbix_api import logged_in

__all__ = ["ActionsConfig", "SlackActions", "UserMapping", "parse_actions"]

log = logging.getLogger("kyoten.alerting.slack_actions")
# Both libraries log secrets at DEBUG (request bodies with the Zabbix token, the WebSocket URL
# with its ticket): pinned above it whatever the root logger's level.
_sdk_log = logging.getLogger("kyoten.alerting.slack_actions.sdk")
_sdk_log.setLevel(logging.INFO)
for _name in ("zabbix_utils", "zabbix_utils.aioapi", "zabbix_utils.api"):
    logging.getLogger(_name).setLevel(logging.INFO)

#: ``event.acknowledge`` action bits (6.0 and 7.0): close, acknowledge, add message.
CLOSE_BIT, ACK_BIT, MESSAGE_BIT = 1, 2, 4
#: Zabbix user type of a Super admin (``user.checkAuthentication`` → ``type``).
SUPER_ADMIN = 3
#: Envelopes and clicks remembered for deduplication.
_REMEMBER = 1000


class Refused(Exception):
    """A click the bridge will not act on; ``reason`` is shown to the clicker (ephemeral)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class ActionsHealth:
    """What ``/health`` shows of Socket Mode (no secret in it)."""

    state: str = "starting"  # starting | connected | failing | stopped
    clicks: int = 0
    done: int = 0
    refused: int = 0
    failed: int = 0
    last_error: str = ""
    last_error_at: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "clicks": self.clicks,
            "done": self.done,
            "refused": self.refused,
            "failed": self.failed,
            "last_error": self.last_error or None,
            "last_error_at": self.last_error_at,
        }


def action_mask(verb: str) -> int:
    """``event.acknowledge`` ``action`` for a button (always with a message)."""
    return (CLOSE_BIT if verb == CLOSE else ACK_BIT) | MESSAGE_BIT


def event_ids(value: Any) -> list[str]:
    """The Zabbix event ids a button's ``value`` names (decimal ids, comma-separated)."""
    if not isinstance(value, str):
        return []
    ids = [v.strip() for v in value.split(",")]
    return [v for v in ids if v.isdigit()][:100]


class SlackActions:
    """The Socket Mode listener and the Zabbix calls; see the module docstring.

    :param http: the session for the Slack Web API (ephemeral answers); the Zabbix API gets a
        session of its own, owned here (closed by :meth:`stop`).
    """

    def __init__(
        self,
        cfg: ActionsConfig,
        http: aiohttp.ClientSession,
        *,
        retry_cap: float = 60.0,
        clock: Any = time.time,
    ) -> None:
        self.cfg = cfg
        self.health = ActionsHealth()
        self._http = http
        self._clock = clock
        self._retry_cap = retry_cap
        self._seen: collections.deque[str] = collections.deque(maxlen=_REMEMBER)
        self._tasks: set[asyncio.Task[None]] = set()
        self._apis: dict[str, Any] = {}
        self._zabbix_http: aiohttp.ClientSession | None = None
        self._client: Any = None
        self._web: Any = None
        self._runner: asyncio.Task[None] | None = None

    # -- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        """Connect in the background (never blocks the bridge's start-up)."""
        from slack_sdk.web.async_client import AsyncWebClient

        self._web = AsyncWebClient(
            token=self.cfg.bot_token,
            base_url=self.cfg.base_url,
            session=self._http,
            timeout=int(self.cfg.timeout),
            retry_handlers=[],
            logger=_sdk_log,
        )
        self._zabbix_http = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(ssl=self.cfg.verify_certs),
            timeout=aiohttp.ClientTimeout(total=self.cfg.timeout),
        )
        self._runner = asyncio.create_task(self._connect_loop(), name="slack-actions")

    async def stop(self) -> None:
        """Close the WebSocket, finish nothing more, close the Zabbix session."""
        self.health.state = "stopped"
        if self._runner is not None:
            self._runner.cancel()
            await asyncio.gather(self._runner, return_exceptions=True)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._client is not None:
            try:
                await self._client.close()
            except Exception as exc:  # closing is best effort
                log.debug("closing Socket Mode: %s", type(exc).__name__)
        if self._zabbix_http is not None:
            await self._zabbix_http.close()

    async def _connect_loop(self) -> None:
        from slack_sdk.errors import SlackApiError
        from slack_sdk.socket_mode.aiohttp import SocketModeClient

        delay = 1.0
        while True:
            try:
                # slack-sdk's connect() retries a bad token forever without a word: ask first
                async with asyncio.timeout(self.cfg.timeout):
                    await self._web.apps_connections_open(app_token=self.cfg.app_token)
                client: Any = SocketModeClient(
                    app_token=self.cfg.app_token,
                    web_client=self._web,
                    logger=_sdk_log,
                    auto_reconnect_enabled=True,
                )
                client.socket_mode_request_listeners.append(self._on_request)
                async with asyncio.timeout(self.cfg.timeout):
                    await client.connect()
            except asyncio.CancelledError:
                raise
            except SlackApiError as exc:
                error = exc.response.get("error", "") if exc.response is not None else ""
                self._failing(f"apps.connections.open refused: {error or 'error'}")
            except Exception as exc:
                self._failing(f"cannot connect to Slack Socket Mode ({type(exc).__name__})")
            else:
                self._client = client
                self.health.state = "connected"
                log.info("Slack Socket Mode connected: buttons of %s act", self.cfg.slack_channel)
                return
            await asyncio.sleep(delay)
            delay = min(self._retry_cap, delay * 2)

    def _failing(self, reason: str) -> None:
        self.health.state = "failing"
        self._error(reason)

    def _error(self, reason: str) -> None:
        self.health.last_error = reason
        self.health.last_error_at = self._clock()
        log.warning("slack actions: %s", reason)

    # -- envelopes -------------------------------------------------------------------------

    async def _on_request(self, client: Any, req: Any) -> None:
        from slack_sdk.socket_mode.response import SocketModeResponse

        # Ack first, by envelope id, whatever the envelope is: Slack redelivers otherwise.
        await client.send_socket_mode_response(SocketModeResponse(envelope_id=req.envelope_id))
        if req.envelope_id in self._seen:
            return
        self._seen.append(req.envelope_id)
        payload = req.payload if isinstance(req.payload, dict) else {}
        if req.type != "interactive" or payload.get("type") != "block_actions":
            return
        for action in payload.get("actions") or ():
            verb = action.get("action_id")
            if verb not in (ACK, CLOSE):
                continue  # the URL buttons (open in Zabbix) need nothing
            click = f"{(payload.get('user') or {}).get('id')}:{action.get('action_ts')}"
            if click in self._seen:
                continue
            self._seen.append(click)
            task = asyncio.create_task(self.act(payload, action))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def act(self, payload: Mapping[str, Any], action: Mapping[str, Any]) -> None:
        """Carry out one click and answer the clicker (ephemeral)."""
        self.health.clicks += 1
        user = payload.get("user") or {}
        slack_user = str(user.get("id", ""))
        slack_name = str(user.get("username") or user.get("name") or slack_user)
        channel = str(
            (payload.get("channel") or {}).get("id")
            or (payload.get("container") or {}).get("channel_id")
            or ""
        )
        verb = str(action.get("action_id"))
        word = "close" if verb == CLOSE else "acknowledge"
        ids = event_ids(action.get("value"))
        try:
            if not ids:
                raise Refused("the button names no Zabbix event")
            mapping = self.cfg.users.get(slack_user)
            if mapping is None:
                raise Refused(
                    f"you (Slack user {slack_user}) are not mapped to a Zabbix user in the "
                    "bridge's slack_actions.users, so the bridge does nothing in your name. "
                    f"Ask the bridge's operator, or {word} the problem in the Zabbix frontend."
                )
            await self._zabbix(mapping, verb, ids, f"{word.capitalize()}d from Slack by "
                               f"{slack_name} ({slack_user})")  # fmt: skip
        except Refused as exc:
            self.health.refused += 1
            log.info("slack actions: %s refused for %s: %s", word, slack_user, exc.reason)
            await self._say(channel, slack_user, f":no_entry: Not done: {exc.reason}")
            return
        except Exception as exc:
            self.health.failed += 1
            reason = f"the Zabbix API could not be reached ({type(exc).__name__})"
            self._error(f"{word} for {slack_user}: {reason}")
            await self._say(channel, slack_user, f":warning: Not done: {reason}. Try again.")
            return
        self.health.done += 1
        log.info("slack actions: %s of event %s by %s as %s", word, ",".join(ids), slack_user,
                 mapping.zabbix_user)  # fmt: skip
        await self._say(
            channel,
            slack_user,
            f":white_check_mark: Event {', '.join(ids)}: {word} sent to Zabbix as "
            f"{mapping.zabbix_user}. The thread shows Zabbix's update when it comes back.",
        )

    async def _zabbix(self, mapping: UserMapping, verb: str, ids: list[str], message: str) -> None:
        from zabbix_utils.exceptions import APIRequestError

        api = await self._api(mapping)
        try:
            who = await api.user.checkAuthentication(token=mapping.token)
        except APIRequestError:
            raise Refused(
                f"the Zabbix token of {mapping.zabbix_user} is not accepted by Zabbix (expired "
                "or revoked); the bridge's operator must renew it"
            ) from None
        if not isinstance(who, dict) or who.get("username") != mapping.zabbix_user:
            raise Refused(
                f"the token configured for {mapping.zabbix_user} belongs to another Zabbix user; "
                "the bridge acts only as the user it is told"
            )
        if str(who.get("type")) == str(SUPER_ADMIN) and not mapping.allow_super_admin:
            raise Refused(
                f"{mapping.zabbix_user} is a Zabbix Super admin, and the bridge does not act as "
                "one unless the mapping says allow_super_admin: true"
            )
        try:
            await api.event.acknowledge(eventids=ids, action=action_mask(verb), message=message)
        except APIRequestError as exc:
            detail = getattr(exc, "data", None) or getattr(exc, "message", None) or str(exc)
            for secret in self.cfg.secrets():
                detail = str(detail).replace(secret, "***")
            raise Refused(f"Zabbix refused it as {mapping.zabbix_user}: {detail}") from None

    async def _api(self, mapping: UserMapping) -> Any:
        """The logged-in API client of ``mapping`` (built once, in a thread: its constructor
        reads the API version with blocking I/O), on the bridge's own session."""
        api: Any = self._apis.get(mapping.slack_user)
        if api is None:
            assert self._zabbix_http is not None, "start() first"
            api = await logged_in(
                self.cfg.api_url,
                self._zabbix_http,
                mapping.token,
                verify=self.cfg.verify_certs,
                timeout=self.cfg.timeout,
            )
            self._apis[mapping.slack_user] = api
        return api

    async def _say(self, channel: str, user: str, text: str) -> None:
        """An ephemeral answer only the clicker sees (best effort)."""
        if not channel or not user or self._web is None:
            return
        try:
            await self._web.chat_postEphemeral(channel=channel, user=user, text=text)
        except Exception as exc:
            log.warning("slack actions: ephemeral answer failed (%s)", type(exc).__name__)
