"""A local fake of Slack's Web API: what slack-sdk's ``base_url`` is pointed at.

It answers ``chat.postMessage`` with a fresh ``ts``, ``chat.update`` and ``reactions.add``
with ok, and any other method with ok, like the real API for a bot that may do all of that.
Every call is appended to a JSON-lines file (method, parameters, time), never the token.
Run: ``python -m kyoten.alerting.devtools.slack_fake --listen 127.0.0.1:PORT --record FILE``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from aiohttp import web

RECORD = web.AppKey("record", Path)
COUNTER = web.AppKey("counter", list)


async def api(request: web.Request) -> web.Response:
    method = request.match_info["method"]
    if request.content_type == "application/json":
        data: dict[str, Any] = await request.json()
    else:
        data = dict(await request.post())
    with request.app[RECORD].open("a") as fh:
        fh.write(json.dumps({"time": time.time(), "method": method, "params": data}) + "\n")
    if method == "chat.postMessage":
        request.app[COUNTER][0] += 1
        ts = f"{int(time.time())}.{request.app[COUNTER][0]:06d}"
        return web.json_response(
            {"ok": True, "channel": "C0NOC", "ts": ts, "message": {"text": data.get("text", "")}}
        )
    if method == "chat.update":
        return web.json_response({"ok": True, "channel": data.get("channel"), "ts": data.get("ts")})
    return web.json_response({"ok": True})


def create_app(record: Path) -> web.Application:
    app = web.Application()
    app[RECORD] = record
    app[COUNTER] = [0]
    app.router.add_post("/api/{method}", api)
    return app


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--listen", default="127.0.0.1:8091", help="HOST:PORT (loopback)")
    p.add_argument("--record", type=Path, required=True, help="JSON-lines file of calls")
    args = p.parse_args()
    host, _, port = args.listen.rpartition(":")
    web.run_app(create_app(args.record), host=host or "127.0.0.1", port=int(port), print=None)


if __name__ == "__main__":
    main()
