"""The alert-path canary's whole round trip through a real Zabbix 7.0: the real bridge sends the
token to the 7.0 trapper, the canary trigger and action fire, 7.0's alerter runs the kyoten
media type against the bridge, and the bridge matches the token (and delivers nothing).

The 6.0 HA pair is proven by the demo (tests/demo); this is the other major version operators
run, wired by ``kyoten import --canary`` exactly as on 6.0.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from kyoten.alerting.app import CANARY, create_app
from kyoten.alerting.config import parse_settings
from kyoten.alerting.mediatype import NAME as MEDIA_TYPE
from kyoten.shell.lab.zabbix70 import Zabbix70
from pytest_aiohttp import AiohttpServer

from ..alerting import conftest as bridge_tests
from ..alerting.conftest import TOKEN, Smtp, bridge_config, eventually
from .conftest import kyoten_import

smtp = bridge_tests.smtp  # the bridge tests' SMTP sink fixture

pytestmark = pytest.mark.integration

NOC_GROUP = "Zabbix administrators"  # the stock group of Admin, who gets the kyoten media


def wire(zabbix70: Zabbix70, password_file: Path, intake: str) -> None:
    """What an operator does once: import with --canary, point the media at the bridge."""
    assert kyoten_import(
        zabbix70.url, password_file, "--canary", "--canary-usergroup", NOC_GROUP
    ) == 0  # fmt: skip
    api = zabbix70.api()
    for macro, value, kind in (
        ("{$KYOTEN.BRIDGE.URL}", intake, 0),
        ("{$KYOTEN.BRIDGE.TOKEN}", TOKEN, 1),
    ):
        found = api.usermacro.get(globalmacro=True, filter={"macro": macro}, output=["macro"])
        if found:
            api.usermacro.updateglobal(globalmacroid=found[0]["globalmacroid"], value=value)
        else:
            api.usermacro.createglobal(macro=macro, value=value, type=kind)
    (mt,) = api.mediatype.get(filter={"name": MEDIA_TYPE}, output=["mediatypeid"])
    api.mediatype.update(mediatypeid=mt["mediatypeid"], status=0)
    api.user.update(
        userid="1",
        medias=[{"mediatypeid": mt["mediatypeid"], "sendto": "noc", "active": 0,
                 "severity": 63, "period": "1-7,00:00-24:00"}],
    )  # fmt: skip
    # 7.0 syncs its configuration cache every 10 s: tokens sent before that just fail


async def test_a_canary_makes_the_round_trip_through_zabbix_70(
    aiohttp_server: AiohttpServer,
    zabbix70: Zabbix70,
    admin_password_file: Path,
    tmp_path: Path,
    smtp: Smtp,
) -> None:
    doc: dict[str, Any] = bridge_config(
        tmp_path, smtp, None,
        canary={"servers": [f"127.0.0.1:{zabbix70.port}"], "interval": 2, "deadline": 120,
                "timeout": 5},
    )  # fmt: skip
    server = await aiohttp_server(create_app(parse_settings(doc, base=tmp_path)))
    loop = server.app[CANARY]
    intake = f"http://127.0.0.1:{server.port}/v1/events"
    await asyncio.to_thread(wire, zabbix70, admin_password_file, intake)

    await eventually(lambda: loop.health()["state"] == "ok", timeout=120)
    health = loop.health()
    assert health["state"] == "ok" and 0 < float(str(health["last_round_trip_s"])) < 60
    await asyncio.sleep(3)
    assert smtp.sink.mails == []  # the canary's events are consumed, never delivered
