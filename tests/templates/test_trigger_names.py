"""Problem names per Zabbix's template guidelines: a name stays the same for the life of a
problem, so no value in it (values go to operational data or the event name), and every
trigger says in its description what to do."""

from __future__ import annotations

import pytest
from kyoten.agent.catalogue import FAMILIES
from kyoten.agent.catalogue.model import Trigger


def triggers() -> list[Trigger]:
    out: list[Trigger] = []
    for family in FAMILIES:
        metrics = list(family.metrics) + [m for d in family.discoveries for m in d.metrics]
        out += [t for m in metrics for t in m.triggers]
    return out


@pytest.mark.parametrize("trigger", triggers(), ids=lambda t: t.uid)
def test_no_value_in_the_name_and_a_description(trigger: Trigger) -> None:
    for macro in ("{ITEM.LASTVALUE", "{ITEM.VALUE"):
        assert macro not in trigger.name, f"put the value in opdata: {trigger.name}"
    assert len(trigger.description.strip()) >= 20, trigger.uid
