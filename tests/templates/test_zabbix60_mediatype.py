"""The imported webhook media type, fired by a real Zabbix 6.0 alerter at a sink on loopback.

The sink stands where the bridge would: it records each POST and answers 200. The test proves
the media type's half of the contract for real (Zabbix resolves the macros, the script sends
the bearer token and drops the transport parameters) and that the bridge's parser accepts
what arrives, for the problem and for the recovery.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from kyoten.alerting.events import Kind, parse_event
from kyoten.alerting.mediatype import payload_names
from kyoten.shell.lab.zabbix import Zabbix60

from .conftest import wait_until

pytestmark = pytest.mark.integration

TOKEN = "lab-bridge-token-1234"


class Sink(ThreadingHTTPServer):
    received: list[tuple[str, str, dict[str, Any]]]


class _Handler(BaseHTTPRequestHandler):
    server: Sink

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.server.received.append(
            (self.path, self.headers.get("Authorization", ""), json.loads(body))
        )
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def sink() -> Iterator[Sink]:
    server = Sink(("127.0.0.1", 0), _Handler)
    server.received = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_problem_and_recovery_reach_the_bridge(
    imported60: Any, zabbix60: Zabbix60, sink: Sink
) -> None:
    from zabbix_utils import Sender

    api = imported60
    url = f"http://127.0.0.1:{sink.server_address[1]}/v1/events"
    for macro, value, kind in (
        ("{$KYOTEN.BRIDGE.URL}", url, 0),
        ("{$KYOTEN.BRIDGE.TOKEN}", TOKEN, 1),
    ):
        # other tests of the session's server (kyoten import's wiring) may have set them already
        found = api.usermacro.get(globalmacro=True, filter={"macro": macro}, output=["macro"])
        if found:
            api.usermacro.updateglobal(
                globalmacroid=found[0]["globalmacroid"], value=value, type=kind
            )
        else:
            api.usermacro.createglobal(macro=macro, value=value, type=kind)  # 1: secret
    (mt,) = api.mediatype.get(filter={"name": "kyoten bridge"}, output=["mediatypeid"])
    api.user.update(
        userid="1",
        medias=[
            {
                "mediatypeid": mt["mediatypeid"],
                "sendto": "ops",
                "active": 0,
                "severity": 63,
                "period": "1-7,00:00-24:00",
            }
        ],
    )
    hostid = api.host.create(host="webhook-probe", groups=[{"groupid": "2"}])["hostids"][0]
    api.item.create(hostid=hostid, name="probe", key_="probe", type=2, value_type=3)  # trapper
    api.trigger.create(
        description="kyoten webhook probe", expression="last(/webhook-probe/probe)=1", priority=4
    )
    api.action.create(
        name="kyoten bridge (test)",
        eventsource=0,
        status=0,
        esc_period="1h",
        filter={
            "evaltype": 0,
            "conditions": [{"conditiontype": 3, "operator": 2, "value": "kyoten webhook probe"}],
        },
        operations=[
            {
                "operationtype": 0,
                "opmessage": {"default_msg": 1, "mediatypeid": mt["mediatypeid"]},
                "opmessage_usr": [{"userid": "1"}],
            }
        ],
        recovery_operations=[{"operationtype": 11, "opmessage": {"default_msg": 1}}],
    )
    zabbix60.reload_config()
    sender = Sender(server="127.0.0.1", port=zabbix60.port)
    wait_until(lambda: sender.send_value("webhook-probe", "probe", 1).processed == 1, "trapper", 30)
    wait_until(lambda: len(sink.received) >= 1, "the problem webhook", 60)
    zabbix60.reload_config()
    wait_until(lambda: sender.send_value("webhook-probe", "probe", 0).processed == 1, "trapper", 30)
    wait_until(lambda: len(sink.received) >= 2, "the recovery webhook", 60)

    kinds = []
    for path, auth, body in sink.received[:2]:
        assert path == "/v1/events"
        assert auth == f"Bearer {TOKEN}"
        assert set(body) == set(payload_names())  # URL and token never reach the body
        event = parse_event(body)
        assert event.name == "kyoten webhook probe" and event.host == "webhook-probe"
        kinds.append(event.kind)
    assert kinds == [Kind.PROBLEM, Kind.RECOVERY]
