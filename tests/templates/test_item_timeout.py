"""Native 7.0 templates give the master items 7.0's per-item timeout, derived from the
catalogue's deadline, so the agent's global Timeout (3 s) need not be raised; the 6.0 format
has no such field (6.0 agents obey their own Timeout)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from kyoten.agent.catalogue import FAMILIES
from kyoten.agent.catalogue.model import DEADLINE, TIMEOUT
from kyoten.agent.config import Config
from kyoten.agent.export import templates as tpl
from kyoten.shell.lab.zabbix70 import Zabbix70

from .conftest import kyoten_import


def master_and_macros(family: Any, version: str) -> tuple[dict[str, Any], dict[str, str]]:
    (template,) = tpl.template_export(family, version)["zabbix_export"]["templates"]
    master = next(i for i in template["items"] if i["key"] == family.master_key())
    return master, {m["macro"]: m["value"] for m in template["macros"]}


@pytest.mark.parametrize("family", FAMILIES, ids=lambda f: f.key)
def test_7_0_master_items_carry_the_timeout_and_6_0_does_not(family: Any) -> None:
    master, macros = master_and_macros(family, "7.0")
    assert master["timeout"] == TIMEOUT.name == "{$KYOTEN.TIMEOUT}"
    assert macros[TIMEOUT.name] == TIMEOUT.default
    assert list(master).index("timeout") == list(master).index("preprocessing") + 1  # as exported
    master60, macros60 = master_and_macros(family, "6.0")
    assert "timeout" not in master60 and TIMEOUT.name not in macros60


def test_the_timeout_leaves_room_above_the_deadline() -> None:
    seconds = int(TIMEOUT.default.removesuffix("s"))
    assert Config().deadline == DEADLINE  # kyoten.toml's default is the catalogue's deadline
    assert DEADLINE + 1 <= seconds <= 30  # process start-up on top; a 7.0 agent allows 30


@pytest.mark.integration
def test_7_0_imports_the_timeout_on_every_master_item(
    zabbix70: Zabbix70, admin_password_file: Path
) -> None:
    assert kyoten_import(zabbix70.url, admin_password_file, "--format", "7.0") == 0
    api = zabbix70.api()
    templates = api.template.get(
        filter={"host": [f.template for f in FAMILIES]},
        output=["host"],
        selectMacros=["macro", "value"],
    )
    assert len(templates) == len(FAMILIES)
    for t in templates:
        assert {"macro": TIMEOUT.name, "value": TIMEOUT.default} in [
            {"macro": m["macro"], "value": m["value"]} for m in t["macros"]
        ]
    masters = api.item.get(
        templateids=[t["templateid"] for t in templates],
        filter={"key_": [f.master_key() for f in FAMILIES]},
        output=["key_", "timeout", "type"],
    )
    assert len(masters) == len(FAMILIES)
    assert {m["timeout"] for m in masters} == {TIMEOUT.name}
