"""`kyoten import --canary` against the real Zabbix 6.0 and 7.0 servers: what it creates, that a
second run changes nothing, that ``--check`` names what drifted, and a clear error for a user
group that does not exist."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from kyoten.alerting import canary_template as ct
from kyoten.alerting.mediatype import NAME as MEDIA_TYPE
from kyoten.shell.zabbix_import import server_version

from .conftest import CANARY_GROUP, canary_recipients, kyoten_import

pytestmark = pytest.mark.integration


@pytest.fixture(params=["zabbix60", "zabbix70"])
def server(request: pytest.FixtureRequest) -> Any:
    """Each real server in turn (6.0 from Debian, 7.0 from the trixie root)."""
    return request.getfixturevalue(request.param)


def canary(url: str, password_file: Path, *extra: str) -> int:
    return kyoten_import(url, password_file, "--canary", "--canary-usergroup", *extra)


def canary_objects(api: Any) -> dict[str, Any]:
    """What the canary's objects look like now, from the API (ids where they decide)."""
    new = server_version(api) >= (6, 2)
    templates = api.template.get(
        filter={"host": ct.TEMPLATE},
        output=["templateid"],
        selectItems=["key_", "type", "value_type", "trapper_hosts"],
        selectTriggers=["description", "type", "priority", "manual_close"],
        selectTags="extend",
    )
    hosts = api.host.get(
        filter={"host": ct.HOST},
        output=["hostid", "status"],
        selectParentTemplates=["host"],
        **{"selectHostGroups" if new else "selectGroups": ["name"]},
    )
    actions = api.action.get(
        filter={"name": ct.ACTION},
        output=["actionid", "eventsource", "status", "pause_suppressed"],
        selectFilter="extend",
        selectOperations="extend",
        selectRecoveryOperations="extend",
        selectUpdateOperations="extend",
    )
    groups = api.hostgroup.get(filter={"name": ct.HOST_GROUP}, output=["groupid"])
    (usergroup,) = api.usergroup.get(
        filter={"name": CANARY_GROUP},
        output=["usrgrpid"],
        **{"selectHostGroupRights" if new else "selectRights": ["id", "permission"]},
    )
    rights = usergroup["hostgroup_rights" if new else "rights"]
    return {
        "templates": templates,
        "hosts": hosts,
        "actions": actions,
        "groups": groups,
        "usergroup": usergroup["usrgrpid"],
        "rights": {r["id"]: r["permission"] for r in rights},
        "groups_key": "hostgroups" if new else "groups",
    }


def test_canary_import_creates_template_host_and_action_idempotently(
    server: Any, admin_password_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    api = server.api()
    url = server.url
    canary_recipients(api)
    before = canary_objects(api)

    # a user group that does not exist: a clear error, and nothing changes (not even templates)
    assert canary(url, admin_password_file, "no such NOC group") == 2
    err = capsys.readouterr().err
    assert "user group 'no such NOC group' does not exist" in err
    assert "create it" in err and "--canary-usergroup" in err
    assert canary_objects(api) == before

    assert canary(url, admin_password_file, CANARY_GROUP) == 0
    out = capsys.readouterr().out
    assert "template_kyoten_canary.yaml" in out
    now = canary_objects(api)

    (template,) = now["templates"]
    (item,) = template["items"]
    assert item["key_"] == ct.KEY and item["type"] == "2"  # trapper
    assert item["value_type"] == "3"  # unsigned
    assert item["trapper_hosts"] == ct.ALLOWED_HOSTS_MACRO
    (trigger,) = template["triggers"]
    assert trigger["description"] == ct.TRIGGER
    assert (trigger["type"], trigger["priority"], trigger["manual_close"]) == ("1", "1", "1")

    (group,) = now["groups"]
    (host,) = now["hosts"]
    assert host["status"] == "0"
    assert [g["name"] for g in host[now["groups_key"]]] == [ct.HOST_GROUP]
    assert [t["host"] for t in host["parentTemplates"]] == [ct.TEMPLATE]
    assert now["rights"][group["groupid"]] in ("2", "3")  # the recipients may read the host

    (action,) = now["actions"]
    assert (action["eventsource"], action["status"]) == ("0", "0")
    (condition,) = action["filter"]["conditions"]
    # conditiontype 26: value2 is the tag's name, value the tag's value
    assert (condition["conditiontype"], condition["operator"]) == ("26", "0")
    assert (condition["value2"], condition["value"]) == ("kyoten", "canary")
    (operation,) = action["operations"]
    (mt,) = api.mediatype.get(filter={"name": MEDIA_TYPE}, output=["mediatypeid"])
    assert operation["operationtype"] == "0"
    assert operation["opmessage"]["mediatypeid"] == mt["mediatypeid"]
    assert operation["opmessage"]["default_msg"] == "1"
    assert [g["usrgrpid"] for g in operation["opmessage_grp"]] == [now["usergroup"]]
    assert action["recovery_operations"] == [] and action["update_operations"] == []

    # a second run is a no-op: --check is clean before and after it
    assert canary(url, admin_password_file, CANARY_GROUP, "--check") == 0
    assert canary(url, admin_password_file, CANARY_GROUP) == 0
    assert "already in place" in capsys.readouterr().out
    assert canary(url, admin_password_file, CANARY_GROUP, "--check") == 0
    assert canary_objects(api) == now

    # an action changed by hand: --check names it and changes nothing; an import repairs it
    api.action.update(actionid=action["actionid"], status=1)
    capsys.readouterr()
    assert canary(url, admin_password_file, CANARY_GROUP, "--check") == 6
    out = capsys.readouterr().out
    assert f"action {ct.ACTION!r}" in out and "status is 1, want 0" in out
    assert canary_objects(api)["actions"][0]["status"] == "1"
    assert canary(url, admin_password_file, CANARY_GROUP) == 0
    assert canary(url, admin_password_file, CANARY_GROUP, "--check") == 0

    # the condition written the wrong way round (the conditiontype 26 trap) is drift too
    api.action.update(
        actionid=action["actionid"],
        filter={
            "evaltype": 0,
            "conditions": [{"conditiontype": 26, "operator": 0, "value": "kyoten",
                            "value2": "canary"}],
        },
    )  # fmt: skip
    capsys.readouterr()
    assert canary(url, admin_password_file, CANARY_GROUP, "--check") == 6
    assert f"action {ct.ACTION!r}: filter is" in capsys.readouterr().out

    # a deleted action: --check names it missing, an import creates it again
    api.action.delete(action["actionid"])
    assert canary(url, admin_password_file, CANARY_GROUP, "--check") == 6
    assert f"action {ct.ACTION!r} is missing" in capsys.readouterr().out
    assert canary_objects(api)["actions"] == []
    assert canary(url, admin_password_file, CANARY_GROUP) == 0
    assert canary(url, admin_password_file, CANARY_GROUP, "--check") == 0

    # a disabled host and a revoked permission are drift as well
    api.host.update(hostid=host["hostid"], status=1)
    rights = [{"id": i, "permission": p} for i, p in now["rights"].items() if i != group["groupid"]]
    key = "hostgroup_rights" if server_version(api) >= (6, 2) else "rights"
    api.usergroup.update(usrgrpid=now["usergroup"], **{key: rights})
    capsys.readouterr()
    assert canary(url, admin_password_file, CANARY_GROUP, "--check") == 6
    out = capsys.readouterr().out
    assert f"host {ct.HOST!r}: disabled" in out
    assert f"user group {CANARY_GROUP!r} cannot read host group {ct.HOST_GROUP!r}" in out
    assert canary(url, admin_password_file, CANARY_GROUP) == 0
    assert canary(url, admin_password_file, CANARY_GROUP, "--check") == 0
    repaired = canary_objects(api)
    assert repaired["hosts"][0]["status"] == "0"
    assert repaired["rights"][group["groupid"]] == "2"
