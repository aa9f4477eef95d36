"""A local fake of Slack's Web API: what slack-sdk's ``base_url`` is pointed at.

It answers ``chat.postMessage`` with a fresh ``ts``, ``chat.update`` and ``reactions.add``
with ok, and any other method with ok, like the real API for a bot that may do all of that.
Every call is appended to a JSON-lines file (method, parameters, time, and the ``ts`` a posted
message got), never the token.
Run: ``python -m kyoten.alerting.devtools.slack_fake --listen 127.0.0.1:PORT --record FILE``.

It also plays Slack's Socket Mode (:mod:`.socket_mode_fake`): ``apps.connections.open`` hands
out ``ws://…/link/``, and ``POST /_fake/click`` with ``{"user": "U…", "action_id": "kyoten_ack",
"value": "<event id>"}`` clicks a button: the envelope goes to the connected bridge, and the
answer says whether it was acknowledged within Slack's 3 s.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from aiohttp import web

from .socket_mode_fake import SocketModeFake

RECORD = web.AppKey("record", Path)
COUNTER = web.AppKey("counter", list)
SOCKET = web.AppKey("socket", SocketModeFake)


async def api(request: web.Request) -> web.Response:
    method = request.match_info["method"]
    if request.content_type == "application/json":
        data: dict[str, Any] = await request.json()
    else:
        data = dict(await request.post())
    entry: dict[str, Any] = {"time": time.time(), "method": method, "params": data}
    if method == "chat.postMessage":  # the ts handed out, so a reader can follow its updates
        request.app[COUNTER][0] += 1
        entry["ts"] = f"{int(time.time())}.{request.app[COUNTER][0]:06d}"
    with request.app[RECORD].open("a") as fh:
        fh.write(json.dumps(entry) + "\n")
    if method == "apps.connections.open":
        return web.json_response(
            request.app[SOCKET].open_connection(request.headers.get("Authorization", ""))
        )
    if method == "chat.postMessage":
        ts = entry["ts"]
        return web.json_response(
            {"ok": True, "channel": "C0NOC", "ts": ts, "message": {"text": data.get("text", "")}}
        )
    if method == "chat.update":
        return web.json_response({"ok": True, "channel": data.get("channel"), "ts": data.get("ts")})
    return web.json_response({"ok": True})


async def click(request: web.Request) -> web.Response:
    """A button click from a (pretend) Slack user, handed to the bridge over Socket Mode."""
    body = await request.json()
    sock = request.app[SOCKET]
    envelope = await sock.click(
        user=str(body["user"]), action_id=str(body["action_id"]), value=str(body["value"])
    )
    return web.json_response({"envelope_id": envelope, "acked": await sock.wait_ack(envelope)})


def create_app(record: Path, port: int = 0) -> web.Application:
    app = web.Application()
    app[RECORD] = record
    app[COUNTER] = [0]
    app[SOCKET] = SocketModeFake()
    app[SOCKET].set_base("127.0.0.1", port)
    app[SOCKET].install(app)
    app.router.add_post("/api/{method}", api)
    app.router.add_post("/_fake/click", click)
    return app


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--listen", default="127.0.0.1:8091", help="HOST:PORT (loopback)")
    p.add_argument("--record", type=Path, required=True, help="JSON-lines file of calls")
    args = p.parse_args()
    host, _, port = args.listen.rpartition(":")
    web.run_app(
        create_app(args.record, int(port)), host=host or "127.0.0.1", port=int(port), print=None
    )


if __name__ == "__main__":
    main()
