"""The canary's action and the demo's wiring, without a server: the shapes ``kyoten import
--canary`` sends and compares, and the bridge config ``kyoten demo up`` writes."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

from kyoten.alerting import canary
from kyoten.alerting import canary_template as ct
from kyoten.shell.lab.config import ZabbixDb as ZabbixTarget
from kyoten.shell.lab.config import lab_config
from kyoten.shell.lab.demo import ZABBIX_TARGET, Demo, Ports
from kyoten.shell.zabbix_import import action_differences
from kyoten.shell.zabbix_wiring import action as general_action


def as_action_get(wanted: dict[str, Any]) -> dict[str, Any]:
    """``wanted`` the way action.get returns it: ids, formula ids, empty texts added."""
    got = json.loads(json.dumps(wanted))
    got.update(actionid="12", notify_if_canceled="1")
    got["filter"].update(formula="", eval_formula="A")
    for c in got["filter"]["conditions"]:
        c["formulaid"] = "A"
    for op in got["operations"]:
        op.update(operationid="31", actionid="12", esc_period="0", evaltype="0", opconditions=[])
        op["opmessage"].update(subject="", message="")
        op["opmessage_usr"] = []
    return got


def test_the_action_filters_on_the_mark_tag_the_right_way_round() -> None:
    action = ct.action("36", "7")
    assert action["name"] == canary.ACTION and action["eventsource"] == "0"
    # conditiontype 26 (tag value): value2 is the tag's NAME, value the tag's VALUE
    assert action["filter"] == {
        "evaltype": "0",
        "conditions": [
            {"conditiontype": "26", "operator": "0", "value": "canary", "value2": "kyoten"}
        ],
    }
    (op,) = action["operations"]
    assert op["operationtype"] == "0"  # send message
    assert op["opmessage"] == {"default_msg": "1", "mediatypeid": "36"}
    assert op["opmessage_grp"] == [{"usrgrpid": "7"}]
    assert action["recovery_operations"] == [] and action["update_operations"] == []


def test_action_differences_ignores_ids_and_names_what_differs() -> None:
    wanted = ct.action("36", "7")
    got = as_action_get(wanted)
    assert action_differences(got, wanted) == []

    swapped = as_action_get(wanted)
    cond = swapped["filter"]["conditions"][0]
    cond["value"], cond["value2"] = cond["value2"], cond["value"]
    (line,) = action_differences(swapped, wanted)
    assert line.startswith("filter is") and "value 'canary' value2 'kyoten'" in line

    other_group = as_action_get(ct.action("36", "8"))
    (line,) = action_differences(other_group, wanted)
    assert line.startswith("operations is") and "groups [8]" in line

    recovering = as_action_get(wanted)
    recovering["recovery_operations"] = [{"operationtype": "11", "opmessage": {}}]
    recovering["status"] = "1"
    lines = action_differences(recovering, wanted)
    assert [x.split()[0] for x in lines] == ["status", "recovery_operations"]


def test_the_general_action_kyoten_import_wires_excludes_the_canary() -> None:
    action = general_action("36", "1")
    assert action["filter"]["conditions"] == [ct.EXCLUDE_CONDITION]
    assert ct.EXCLUDE_CONDITION == {**ct.MARK_CONDITION, "operator": "1"}  # does not equal


def test_the_demo_s_bridge_config_names_the_canary_targets(tmp_path: Path) -> None:
    """The canary section lists every HA node, names the [zabbix.*] target that the demo's
    kyoten.toml really has, and passes the bridge's own validation."""
    from kyoten.alerting.config import parse_settings

    d = Demo(tmp_path)
    doc = json.loads(d.bridge_config())
    section = doc["canary"]
    p = Ports()
    assert section["servers"] == [f"127.0.0.1:{p.zbx_a}", f"127.0.0.1:{p.zbx_b}"]
    assert section["host"] == canary.HOST
    assert section["kyoten_config"] == str(d.config_path)
    assert section["api_url"] == f"http://127.0.0.1:{p.web}/api_jsonrpc.php"
    toml = lab_config(
        d.primary,
        [d.standby],
        [d.pool_a, d.pool_b],
        ZabbixTarget("127.0.0.1", p.pool_a, "zabbix", "zabbix", "zabbix"),
    )
    assert list(tomllib.loads(toml)["zabbix"]) == [ZABBIX_TARGET] == [section["zabbix_target"]]
    # the operator's API token is made in Zabbix before the bridge starts (configure_zabbix)
    (tmp_path / "secrets" / "operator-token").write_text("operator-api-token\n")
    settings = parse_settings(doc, base=tmp_path)
    assert settings.canary is not None and settings.canary.host == canary.HOST
    assert settings.slack_actions is not None
    assert [u.zabbix_user for u in settings.slack_actions.users.values()] == ["kyoten-noc"]


def test_a_trigger_expression_is_rebuilt_with_its_user_macros_as_written() -> None:
    """The map's triggers are matched on the expression as the importer sees it: function
    ids replaced by ``name(/host/key,parameters)``, user macros not resolved."""
    from kyoten.shell.zabbix_wiring import _trigger_expression

    trigger = {
        "hosts": [{"hostid": "10", "host": "noc-pool-a"}],
        "items": [
            {"itemid": "1", "hostid": "10", "key_": 'kyoten.pgpool.backends.drift["0"]'},
            {"itemid": "2", "hostid": "10", "key_": 'kyoten.pgpool.backends.status["0"]'},
        ],
        "functions": [
            {"functionid": "7", "itemid": "1", "function": "min", "parameter": "$,{$W}"},
            {"functionid": "8", "itemid": "2", "function": "last", "parameter": "$"},
        ],
    }
    assert _trigger_expression("{7}=1 and {8}<>{$S}", trigger) == (
        'min(/noc-pool-a/kyoten.pgpool.backends.drift["0"],{$W})=1'
        ' and last(/noc-pool-a/kyoten.pgpool.backends.status["0"])<>{$S}'
    )
    assert _trigger_expression("", trigger) == ""
