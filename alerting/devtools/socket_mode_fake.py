"""A local fake of Slack's Socket Mode: the WebSocket end that hands out envelopes.

It behaves as Slack does on the wire (``noc-view.md`` §e, slack-sdk's own mock server):

* the Web API fake answers ``apps.connections.open`` with :attr:`SocketModeFake.url`
  (``ws://127.0.0.1:PORT/link/?ticket=…``) — mount both on one aiohttp app with :meth:`install`;
* on connect it sends ``hello``; aiohttp answers the client's pings with pongs echoing the
  payload (slack-sdk checks that);
* :meth:`send` hands out an envelope ``{envelope_id, type, payload, accepts_response_payload}``
  and :meth:`wait_ack` waits for ``{"envelope_id": …}`` back; an envelope not acknowledged within
  :attr:`ack_deadline` (3 s, as Slack) is sent again with ``retry_attempt`` raised, up to
  :attr:`retries` times, and recorded in :attr:`late`;
* :meth:`click` builds a ``block_actions`` payload for a button of a message and sends it;
* :meth:`disconnect` sends ``{"type": "disconnect", "reason": "refresh_requested"}``, after which
  slack-sdk fetches a new URL and reconnects.

Nothing here is secret: it checks only that the ``Authorization`` header of
``apps.connections.open`` carries an ``xapp-`` token, never records it.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSMsgType, web


@dataclass
class Envelope:
    """One envelope handed out, and what became of it."""

    envelope_id: str
    body: dict[str, Any]
    sent_at: float
    attempts: int = 1
    acked_at: float | None = None
    acked: asyncio.Event = field(default_factory=asyncio.Event)


class SocketModeFake:
    """Socket Mode's server side; see the module docstring."""

    ack_deadline = 3.0
    retries = 2

    def __init__(self) -> None:
        self.url = ""
        self.connections: list[web.WebSocketResponse] = []
        self.envelopes: dict[str, Envelope] = {}
        self.late: list[str] = []
        self.opened = 0  # apps.connections.open calls answered
        self.connected = asyncio.Event()
        self._tickets = 0

    # -- wiring ----------------------------------------------------------------------------

    def install(self, app: web.Application) -> None:
        """Add the WebSocket route (``/link/``) to ``app`` (the Web API fake's app)."""
        app.router.add_get("/link/", self._socket)

    def set_base(self, host: str, port: int) -> None:
        """Where the app listens (known once its server runs)."""
        self.url = f"ws://{host}:{port}/link/"

    def open_connection(self, authorization: str) -> dict[str, Any]:
        """The answer to ``apps.connections.open`` (Slack wants the app token, in the header)."""
        if not authorization.startswith("Bearer xapp-"):
            return {"ok": False, "error": "not_allowed_token_type"}
        self.opened += 1
        self._tickets += 1
        return {"ok": True, "url": f"{self.url}?ticket=fake-{self._tickets}&app_id=A0KYOTEN"}

    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self.connections.append(ws)
        await ws.send_json(
            {
                "type": "hello",
                "num_connections": len(self.connections),
                "debug_info": {"host": "fake", "approximate_connection_time": 18060},
                "connection_info": {"app_id": "A0KYOTEN"},
            }
        )
        self.connected.set()
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                try:
                    data = json.loads(msg.data)
                except ValueError:
                    continue
                env = self.envelopes.get(str(data.get("envelope_id")))
                if env is not None and env.acked_at is None:
                    env.acked_at = time.monotonic()
                    env.acked.set()
        finally:
            self.connections.remove(ws)
            if not self.connections:
                self.connected.clear()
        return ws

    # -- handing out envelopes --------------------------------------------------------------

    async def send(
        self, kind: str, payload: dict[str, Any], *, accepts_response_payload: bool = False
    ) -> str:
        """Hand out one envelope on the newest connection (waits for one); its id."""
        await asyncio.wait_for(self.connected.wait(), 10)
        envelope_id = str(uuid.uuid4())
        body = {
            "envelope_id": envelope_id,
            "type": kind,
            "payload": payload,
            "accepts_response_payload": accepts_response_payload,
        }
        env = Envelope(envelope_id, body, time.monotonic())
        self.envelopes[envelope_id] = env
        await self.connections[-1].send_json(body)
        asyncio.get_running_loop().create_task(self._redeliver(env))
        return envelope_id

    async def _redeliver(self, env: Envelope) -> None:
        """As Slack: no ack within the deadline → the same envelope again, ``retry_attempt``+1."""
        for attempt in range(1, self.retries + 1):
            try:
                await asyncio.wait_for(env.acked.wait(), self.ack_deadline)
                return
            except TimeoutError:
                if env.envelope_id not in self.late:
                    self.late.append(env.envelope_id)
                if not self.connections:
                    return
                env.attempts += 1
                await self.connections[-1].send_json(
                    {**env.body, "retry_attempt": attempt, "retry_reason": "timeout"}
                )

    async def wait_ack(self, envelope_id: str, timeout: float | None = None) -> bool:
        """Whether the envelope was acknowledged within ``timeout`` (default: the deadline)."""
        env = self.envelopes[envelope_id]
        try:
            await asyncio.wait_for(env.acked.wait(), timeout or self.ack_deadline)
        except TimeoutError:
            return False
        return True

    async def click(
        self,
        *,
        user: str,
        action_id: str,
        value: str,
        channel: str = "C0NOC",
        message_ts: str = "",
        username: str = "",
    ) -> str:
        """A click on a button of a message: a ``block_actions`` envelope; its id."""
        now = f"{time.time():.6f}"
        payload = {
            "type": "block_actions",
            "user": {"id": user, "username": username or user.lower(), "name": username or user,
                     "team_id": "T0KYOTEN"},
            "api_app_id": "A0KYOTEN",
            "token": "verification-token-unused",
            "container": {"type": "message", "message_ts": message_ts, "channel_id": channel,
                          "is_ephemeral": False},
            "trigger_id": f"{now}.trigger",
            "team": {"id": "T0KYOTEN", "domain": "kyoten"},
            "channel": {"id": channel, "name": "noc"},
            "message": {"type": "message", "ts": message_ts},
            "response_url": "http://127.0.0.1/unused",
            "actions": [
                {
                    "action_id": action_id,
                    "block_id": "kyoten_actions",
                    "type": "button",
                    "value": value,
                    "text": {"type": "plain_text", "text": action_id},
                    "action_ts": now,
                }
            ],
            "state": {"values": {}},
        }  # fmt: skip
        return await self.send("interactive", payload)

    async def disconnect(self, reason: str = "refresh_requested") -> None:
        """Ask the client to reconnect (Slack rotates connections this way)."""
        for ws in list(self.connections):
            await ws.send_json({"type": "disconnect", "reason": reason, "debug_info": {}})
