"""The decision table and the trigger rules it relies on, checked on the catalogue alone.

The real-lab check of every row is tests/templates/test_zabbix60_decisions.py; these fail in
milliseconds when a catalogue change breaks a rule the table depends on.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from kyoten.agent.catalogue import FAMILIES, pgpool, zabbix
from kyoten.agent.catalogue.common import CHANGE_HOLD
from kyoten.agent.catalogue.decisions import STATES, depends_on, triggers_by_uid
from kyoten.agent.catalogue.model import Discovery, Metric, Severity, State, Trigger
from kyoten.agent.export.docs import decision_table
from kyoten.shell.lab.faults import FAULTS, lead_pattern, name_pattern

ROOT = Path(__file__).resolve().parents[2]
INDEX = triggers_by_uid()
HIGH = (Severity.HIGH, Severity.DISASTER)
#: states whose lead is only a warning: nothing is broken yet (lag), or it is over (HA failover)
WARNING_LEADS = {"lag", "zabbix-failover"}
_CHANGE = re.compile(r"last\(ITEM\((\w+)\),#1\)<>last\(ITEM\(\1\),#2\)")


def every_metric() -> list[tuple[Discovery | None, Metric]]:
    out: list[tuple[Discovery | None, Metric]] = [(None, m) for f in FAMILIES for m in f.metrics]
    out += [(d, m) for f in FAMILIES for d in f.discoveries for m in d.metrics]
    return out


@pytest.mark.parametrize("state", STATES, ids=lambda s: s.key)
def test_each_state_has_one_lead_and_known_symptoms(state: State) -> None:
    lead = INDEX[state.lead].trigger
    assert lead.severity in HIGH or state.key in WARNING_LEADS, state.key
    assert "Fix" in lead.description or "fix" in lead.description, state.lead
    assert state.lead not in state.symptoms and len(set(state.symptoms)) == len(state.symptoms)
    assert set(state.symptoms) <= set(INDEX), set(state.symptoms) - set(INDEX)
    assert state.fault in (*FAULTS, "zabbix-failover")
    assert lead_pattern(state.fault).pattern == name_pattern(lead.event_name or lead.name).pattern


@pytest.mark.parametrize("state", STATES, ids=lambda s: s.key)
def test_a_high_symptom_beside_the_lead_is_suppressed_or_leads_another_state(
    state: State,
) -> None:
    """In the lead's own template, a symptom of High or above depends on the lead, or is
    itself the lead of a neighbouring state (one that precedes or follows this one, such as
    'no primary' between a primary's death and the promotion)."""
    leads = {s.lead for s in STATES}
    family = INDEX[state.lead].family
    for uid in state.symptoms:
        placed = INDEX[uid]
        if placed.family is family and placed.trigger.severity in HIGH:
            assert depends_on(uid, state.lead, INDEX) or uid in leads, (state.key, uid)


def test_change_events_open_one_event_per_change_and_resolve_by_themselves() -> None:
    """Every 'last value differs from the one before' trigger is a change event: multiple
    problem events, a name that freezes the new value, an item that stores changes only with
    the hold as heartbeat (so it is evaluated once per change and resolved by the heartbeat),
    and no time-based function that would evaluate it (and open events) every 30 s."""
    changes = 0
    for _disc, metric in every_metric():
        for t in metric.triggers:
            found = _CHANGE.search(t.expression)
            assert bool(found) == t.per_change, t.uid
            if not found:
                continue
            changes += 1
            assert found.group(1) == metric.field and metric.heartbeat == CHANGE_HOLD.name
            assert "{ITEM.VALUE1}" in t.event_name and t.manual_close, t.uid
            assert not re.search(r"nodata|now\(|time\(|date\(|,\d+[smhdw]\)", t.expression)
    assert changes == 6  # role, timeline, Pgpool primary, cross-site primary, HA active, HA node


def test_no_discovered_trigger_can_be_left_open() -> None:
    """A row that leaves the JSON (a dropped slot, a server that turned standby, a target
    removed from kyoten.toml, a backend removed from pgpool.conf, a node removed from ha_node)
    must give its triggers a value that resolves them: some item of every trigger reads its
    ``missing`` value then, and no item of such a rule turns 'not supported' (which would
    leave the trigger unknown, its problem open)."""
    for fam in FAMILIES:
        for d in fam.discoveries:
            by_field = {m.field: m for m in d.metrics}
            for m in d.metrics:
                for t in m.triggers:
                    used = set(re.findall(r"ITEM\((\w+)\)", t.expression))
                    assert any(by_field[f].missing is not None for f in used), t.uid


def _on_status(part: str, code: str) -> bool | None:
    """``part`` of an expression evaluated with the status item reading ``code``; None when
    it reads any other item (its value is then not known here)."""
    text = part.replace("last(ITEM(status))", code)
    if "(" in text:
        return None
    text = re.sub(r"(?<![<>!=])=", "==", text.replace("<>", "!="))
    return bool(eval(text, {"__builtins__": {}}))  # digits and comparisons only


@pytest.mark.parametrize(
    ("rule", "removed"),
    [(pgpool.BACKENDS, pgpool.REMOVED), (zabbix.NODES, zabbix.REMOVED)],
    ids=["backends", "nodes"],
)
def test_a_backend_or_node_that_leaves_its_report_resolves_every_trigger(
    rule: Discovery, removed: str
) -> None:
    """Once Pgpool (or ha_node) no longer reports a row, its status item reads Removed, the
    template's ``missing`` value: every trigger of the row is false on it (a conjunct that
    reads only the status is false) and every recovery expression true, whatever the row's
    other items last read. The change event that Removed opens resolves by the status's
    heartbeat, as every change event does."""
    (status,) = [m for m in rule.metrics if m.field == "status"]
    assert status.missing == removed and status.heartbeat
    triggers = [t for m in rule.metrics for t in m.triggers]
    assert triggers
    for t in triggers:
        if t.per_change:
            found = _CHANGE.search(t.expression)
            assert found is not None and found.group(1) == "status", t.uid
            continue
        parts = t.expression.split(" and ")
        assert any(_on_status(p, removed) is False for p in parts), t.uid
        if t.recovery:
            parts = t.recovery.split(" or ")
            assert any(_on_status(p, removed) is True for p in parts), t.uid


def test_a_split_brain_raises_no_high_standby_missing() -> None:
    missing = INDEX["pg.standby_missing"].trigger
    assert missing.severity not in HIGH
    for key in ("two-primaries", "double-failover"):
        (state,) = [s for s in STATES if s.key == key]
        highs = [u for u in state.symptoms if INDEX[u].trigger.severity in HIGH]
        assert all(depends_on(u, state.lead, INDEX) or u == "pgpool.drift" for u in highs)


def test_the_decision_table_is_in_metrics_md_and_quoted_in_the_readme() -> None:
    rows = decision_table()
    assert len(rows) == 2 + len(STATES)
    for doc in ("templates/METRICS.md", "README.md"):
        text = (ROOT / doc).read_text()
        assert "\n".join(rows) in text, f"{doc}: paste the table from `kyoten export docs`"


def test_trigger_names_carry_the_target_name() -> None:
    """Names from kyoten.toml: a PostgreSQL or Pgpool-II trigger names its target (a user
    macro the host sets), a backend its kyoten.toml name, never only an address."""
    prefixes = {"kyoten.pg": "PostgreSQL {$KYOTEN.PG.TARGET}: ", "kyoten.pgpool": "Pgpool-II "}
    for fam in FAMILIES:
        triggers: list[Trigger] = [t for m in fam.metrics for t in m.triggers]
        triggers += [t for d in fam.discoveries for m in d.metrics for t in m.triggers]
        for t in triggers:
            assert "{#BACKEND}" not in t.name and "{#NODE}" not in t.name, t.uid
            if fam.key in prefixes:
                assert t.name.startswith(prefixes[fam.key]), t.uid
            if fam.key == "kyoten.pgpool":
                assert t.name.startswith("Pgpool-II {$KYOTEN.PGPOOL.TARGET}: "), t.uid
