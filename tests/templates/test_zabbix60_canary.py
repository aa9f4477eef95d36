"""The alert-path canary on a real Zabbix 6.0, up to the action: a token sent with zabbix_utils'
Sender to the trapper item opens a problem tagged with that token, the canary action fires for
it, the general action kyoten import wires (which excludes the canary) does not, and 0 resolves it.

No media is involved: the recipient has none, so each alert Zabbix creates is a row with "No
media defined for user", which is exactly the proof that the action selected the event and
that its recipient may read the canary host.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from kyoten.alerting import canary
from kyoten.alerting import canary_template as ct
from kyoten.alerting.mediatype import NAME as MEDIA_TYPE
from kyoten.shell.lab.zabbix import Zabbix60
from kyoten.shell.zabbix_wiring import action as wiring_action

from .conftest import CANARY_GROUP, canary_recipients, kyoten_import, wait_until

pytestmark = pytest.mark.integration

CONTROL_HOST = "kyoten-canary-control"
CONTROL_TRIGGER = "kyoten canary control problem"


def alerts(api: Any, eventid: str, actionid: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = api.alert.get(
        eventids=[eventid], actionids=[actionid], output=["alertid", "userid", "error"]
    )
    return found


def test_a_token_opens_a_tagged_problem_that_the_canary_action_takes(
    imported60: Any, zabbix60: Zabbix60, admin_password_file: Path
) -> None:
    from zabbix_utils import Sender

    api = imported60
    usrgrpid, userid = canary_recipients(api)
    assert kyoten_import(
        zabbix60.url, admin_password_file, "--canary", "--canary-usergroup", CANARY_GROUP
    ) == 0  # fmt: skip
    (canary_action,) = api.action.get(filter={"name": ct.ACTION}, output=["actionid"])
    (host,) = api.host.get(filter={"host": ct.HOST}, output=["hostid"])
    (group,) = api.hostgroup.get(filter={"name": ct.HOST_GROUP}, output=["groupid"])

    # the general action that kyoten import wires, to the same recipients, and its problem
    (mt,) = api.mediatype.get(filter={"name": MEDIA_TYPE}, output=["mediatypeid"])
    general = wiring_action(mt["mediatypeid"], usrgrpid)
    general["name"] = "kyoten test: the general action"
    general_id = api.action.create(**general)["actionids"][0]
    control = api.host.create(host=CONTROL_HOST, groups=[{"groupid": group["groupid"]}])
    control_id = control["hostids"][0]
    api.item.create(hostid=control_id, name="control", key_="control", type=2, value_type=3)
    api.trigger.create(
        description=CONTROL_TRIGGER, expression=f"last(/{CONTROL_HOST}/control)>0", priority=1
    )
    try:
        zabbix60.reload_config()
        sender = Sender(server="127.0.0.1", port=zabbix60.port)
        token = int(time.time() * 1000) % 2_000_000_000 + 1
        wait_until(
            lambda: sender.send_value(ct.HOST, ct.KEY, token).processed == 1,
            "the trapper to accept the token",
            30,
            interval=1,
        )
        wait_until(
            lambda: sender.send_value(CONTROL_HOST, "control", 1).processed == 1,
            "the trapper to accept the control value",
            30,
            interval=1,
        )

        def tagged_event() -> list[dict[str, Any]]:
            found: list[dict[str, Any]] = api.event.get(
                hostids=[host["hostid"]],
                source=0,
                object=0,
                value=1,
                tags=[{"tag": canary.TOKEN_TAG, "value": str(token), "operator": 1}],
                output=["eventid", "name", "severity"],
                selectTags="extend",
            )
            return found

        (event,) = wait_until(tagged_event, f"a problem tagged with token {token}", 60)
        tags = {(t["tag"], t["value"]) for t in event["tags"]}
        assert {(canary.MARK_TAG, canary.MARK_VALUE), (canary.TOKEN_TAG, str(token))} <= tags
        assert event["name"] == ct.TRIGGER and event["severity"] == "1"  # Information
        (problem,) = api.problem.get(eventids=[event["eventid"]], selectTags="extend")
        assert {"tag": canary.TOKEN_TAG, "value": str(token)} in problem["tags"]

        # the canary action takes the canary's event, the general action only the other one
        (taken,) = wait_until(
            lambda: alerts(api, event["eventid"], canary_action["actionid"]),
            "the canary action's alert",
            60,
        )
        assert taken["userid"] == userid and "No media defined" in taken["error"]
        (control_event,) = wait_until(
            lambda: api.event.get(hostids=[control_id], value=1, output=["eventid"]),
            "the control problem",
            60,
        )
        wait_until(
            lambda: alerts(api, control_event["eventid"], general_id),
            "the general action's alert for the control problem",
            60,
        )
        assert alerts(api, event["eventid"], general_id) == []
        assert alerts(api, control_event["eventid"], canary_action["actionid"]) == []

        # 0 resolves the problems the tokens opened
        assert sender.send_value(ct.HOST, ct.KEY, 0).processed == 1
        wait_until(
            lambda: not api.problem.get(eventids=[event["eventid"]], output=["eventid"]),
            "the token's problem to resolve after 0",
            60,
        )
    finally:
        api.action.delete(general_id)
        api.host.delete(control_id)


def test_check_config_connect_names_a_missing_canary_host_and_a_dead_api_with_the_fix(
    imported60: Any,
    zabbix60: Zabbix60,
    admin_password_file: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The real 6.0 trapper takes the connection but refuses a value for a host it does not
    know: check-config --connect says which host is missing and how to create it."""
    import socket

    import yaml
    from kyoten.alerting import cli

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    doc = {
        "token": "t" * 20,
        "channels": {"m": {"type": "mail", "host": "127.0.0.1", "from": "a@b", "to": ["c@d"]}},
        "routes": [{"channels": ["m"]}],
        "canary": {
            "servers": [f"127.0.0.1:{zabbix60.port}"],
            "host": "kyoten-canary-nowhere",
            "timeout": 5,
            "api_url": f"http://127.0.0.1:{closed}/api_jsonrpc.php",
        },
    }
    path = tmp_path / "bridge.yaml"
    path.write_text(yaml.safe_dump(doc))
    assert cli.main(["bridge", "check-config", "--config", str(path), "--connect"]) == 2
    err = capsys.readouterr().err
    assert "canary.servers: a server node refused the value" in err
    assert "'kyoten-canary-nowhere'" in err and "kyoten import" in err
    assert "canary.api_url:" in err
    # the real canary host and the real API pass the same check
    canary_recipients(imported60)
    assert kyoten_import(
        zabbix60.url, admin_password_file, "--canary", "--canary-usergroup", CANARY_GROUP
    ) == 0  # fmt: skip
    zabbix60.reload_config()
    doc["canary"]["host"] = canary.HOST
    doc["canary"]["api_url"] = zabbix60.url
    path.write_text(yaml.safe_dump(doc))
    wait_until(
        lambda: cli.main(["bridge", "check-config", "--config", str(path), "--connect"]) == 0,
        "check-config --connect to pass once the canary host is in the configuration cache",
        60,
    )
