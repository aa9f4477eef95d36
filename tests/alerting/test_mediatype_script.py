"""Run the media type's JavaScript itself against a running bridge.

Zabbix runs the script in Duktape with an ``HttpRequest`` object; here Node runs the very same
text with a small ``HttpRequest`` shim that performs the POST with curl (synchronous, like
Zabbix's). What is checked is the script's behaviour: the body it sends, the bearer header,
success on 2xx, and an exception — Zabbix's signal to retry — on anything else.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from kyoten.alerting import mediatype
from kyoten.alerting.app import create_app
from pytest_aiohttp import AiohttpServer

from .conftest import TOKEN, FakeSlack, bridge_config, eventually, free_port, macros, settings_of

pytestmark = pytest.mark.skipif(
    shutil.which("node") is None or shutil.which("curl") is None, reason="needs node and curl"
)

SHIM = r"""
const {execFileSync} = require('child_process');
function HttpRequest() { this.headers = []; this.status = 0; }
HttpRequest.prototype.addHeader = function (h) { this.headers.push(h); };
HttpRequest.prototype.getStatus = function () { return this.status; };
HttpRequest.prototype.post = function (url, body) {
  const args = ['-s', '-o', '-', '-w', '\n%{http_code}', '-X', 'POST', '--data-binary', '@-'];
  for (const h of this.headers) { args.push('-H', h); }
  args.push(url);
  const out = execFileSync('curl', args, {input: body}).toString();  // throws if unreachable
  const i = out.lastIndexOf('\n');
  this.status = parseInt(out.slice(i + 1), 10);
  return out.slice(0, i);
};
var Zabbix = {log: function () {}};
var value = require('fs').readFileSync(0, 'utf8');
try {
  const result = (function () { %SCRIPT% })();
  console.log(JSON.stringify({ok: result}));
} catch (e) {
  console.log(JSON.stringify({error: String(e)}));
}
"""


async def run_script(tmp_path: Path, url: str, token: str, **over: str) -> dict[str, Any]:
    script = tmp_path / "mediatype.js"
    script.write_text(SHIM.replace("%SCRIPT%", mediatype.SCRIPT))
    values = {**macros("321", **over), "{$KYOTEN.BRIDGE.URL}": url, "{$KYOTEN.BRIDGE.TOKEN}": token}
    params = {}
    for name, template in mediatype.PARAMETERS:  # what Zabbix puts in ``value``
        for macro, v in values.items():
            template = template.replace(macro, v)
        params[name] = template
    proc = await asyncio.create_subprocess_exec(
        "node", str(script), stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE
    )
    out, _ = await proc.communicate(json.dumps(params).encode())
    result: dict[str, Any] = json.loads(out)
    return result


async def test_script_delivers_and_throws_on_refusal(
    tmp_path: Path, slack: FakeSlack, aiohttp_server: AiohttpServer
) -> None:
    server = await aiohttp_server(
        create_app(settings_of(bridge_config(tmp_path, None, slack), tmp_path)), host="127.0.0.1"
    )
    url = f"http://127.0.0.1:{server.port}/v1/events"

    assert await run_script(tmp_path, url, TOKEN) == {"ok": "OK"}
    await eventually(lambda: len(slack.posts()) == 1)
    assert "(321)" in slack.posts()[0].data["text"]
    assert await run_script(tmp_path, url, TOKEN) == {"ok": "OK"}  # Zabbix retry: 200

    refused = await run_script(tmp_path, url, "wrong-token-wrong-token")
    assert "HTTP 401" in refused["error"]
    invalid = await run_script(tmp_path, url, TOKEN, **{"{EVENT.NSEVERITY}": "9"})
    assert "HTTP 422" in invalid["error"] and "event_nseverity" in invalid["error"]
    unset = await run_script(tmp_path, "{$KYOTEN.BRIDGE.URL}", TOKEN)
    assert "bridge_url" in unset["error"]
    down = await run_script(tmp_path, f"http://127.0.0.1:{free_port()}/v1/events", TOKEN)
    assert "error" in down
    assert len(slack.posts()) == 1
