"""templates/METRICS.md: the metrics reference, rendered from the catalogue."""

from __future__ import annotations

from kyoten.agent.catalogue import FAMILIES, agent_keys
from kyoten.agent.catalogue.decisions import STATES, depends_on, triggers_by_uid
from kyoten.agent.catalogue.model import TIMEOUT, Family, Metric


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _metric_rows(metrics: tuple[Metric, ...]) -> list[str]:
    rows = ["| Field | Item | Type | Units | Description |", "|---|---|---|---|---|"]
    for m in metrics:
        rows.append(
            f"| `{m.field}` | {_cell(m.name) if m.item else '(meta)'} | "
            f"{m.value_type.value} | {m.units} | {_cell(m.description)} |"
        )
    return rows


def _triggers(fam: Family) -> list[str]:
    rows = ["| Trigger | Severity | Expression | Depends on |", "|---|---|---|---|"]
    metrics = list(fam.metrics) + [m for d in fam.discoveries for m in d.metrics]
    for m in metrics:
        for t in m.triggers:
            rows.append(
                f"| {_cell(t.name)} | {t.severity.value} | `{_cell(t.expression)}` | "
                f"{', '.join(t.depends_on)} |"
            )
    return rows


def _where(placed_family: Family, per_entity: bool) -> str:
    host = placed_family.template.removeprefix("kyoten ")
    return f"{host}, per entity" if per_entity else host


def decision_table() -> list[str]:
    """The decision table as Markdown lines (also quoted in the README)."""
    index = triggers_by_uid()
    rows = [
        "| State | Leading problem (severity; template) | Fix (the lead's description) | "
        "Also raised: symptoms (severity; ⤷ depends on the lead) | Recovery | Lab fault |",
        "|---|---|---|---|---|---|",
    ]
    for st in STATES:
        lead = index[st.lead]
        symptoms = []
        for uid in st.symptoms:
            p = index[uid]
            mark = "⤷ " if depends_on(uid, st.lead, index) else ""
            symptoms.append(f"{mark}{p.trigger.name} ({p.trigger.severity.value.lower()})")
        rows.append(
            f"| **{st.key}**: {_cell(st.state)} "
            f"| **{_cell(lead.trigger.name)}** ({lead.trigger.severity.value}; "
            f"{_where(lead.family, lead.discovery is not None)}) "
            f"| {_cell(lead.trigger.description)} "
            f"| {_cell('; '.join(symptoms))} "
            f"| {_cell(st.recovery)} "
            f"| `{st.fault}` |"
        )
    return rows


DECISIONS_INTRO = (
    "## Decision table",
    "",
    "What the NOC sees of each cross-site state: the one problem that leads (its description "
    "carries the fix), every other problem the state may raise, and how it recovers. A symptom "
    "of severity High or above either depends on the lead in its template (⤷: Zabbix "
    "suppresses it while the lead is open) or lives on another host and is listed here. Change "
    "events (failover, role, timeline, HA node) open one event per change and resolve "
    "`{$KYOTEN.CHANGE.HOLD}` later. Each row is injected into the real lab by the integration "
    "tests (`tests/templates/test_zabbix60_decisions.py`) with its lab fault.",
    "",
)


def render_metrics_doc() -> str:
    """The whole reference as Markdown."""
    out = [
        "# kyoten metrics reference",
        "",
        "Generated from the catalogue by `kyoten export docs`; do not edit by hand.",
        "",
        "## Agent keys",
        "",
        "| Key | Parameters | Description |",
        "|---|---|---|",
    ]
    for k in agent_keys():
        out.append(f"| `{k.key}` | {', '.join(k.params) or '-'} | {_cell(k.description)} |")
    out += ["", *DECISIONS_INTRO, *decision_table()]
    for fam in FAMILIES:
        out += [
            "",
            f"## {fam.template}",
            "",
            fam.template_description,
            "",
            f"Master item: `{fam.master_key()}` (JSON).",
            "",
        ]
        out += _metric_rows(fam.metrics)
        for d in fam.discoveries:
            macros = ", ".join(f"`{m}` ← `{f}`" for m, f in d.macros)
            out += [
                "",
                f"### {d.name} (`{d.field}`; standalone key `{d.key}`)",
                "",
                d.description,
                "",
                f"LLD macros: {macros}.",
                "",
            ]
            out += _metric_rows(d.metrics)
        out += ["", "### Macros", "", "| Macro | Default | Description |", "|---|---|---|"]
        out += [
            f"| `{m.name}` | `{m.default}` | {_cell(m.description)} |"
            for m in (*fam.all_macros(), TIMEOUT)  # TIMEOUT: in the native 7.0 templates
        ]
        out += ["", "### Triggers", "", *_triggers(fam)]
    out += ["", *BRIDGE_OWNED]
    return "\n".join(out) + "\n"


BRIDGE_OWNED = (
    "## Checks the alert bridge owns",
    "",
    "A Zabbix trigger needs a running, active Zabbix server with a writable database and a "
    "working action to reach anyone. What breaks exactly that cannot be a template trigger; the "
    "alert bridge watches it from outside Zabbix with its alert-path canary (README, *When "
    "Zabbix itself goes silent*) and raises its own problem, *Zabbix alert path broken: "
    "<reason>*, through its own channels:",
    "",
    "| Failure | Why no trigger can raise it | Reason the bridge gives |",
    "|---|---|---|",
    "| both Zabbix server nodes down | nothing evaluates triggers | no Zabbix server node "
    "accepts the canary |",
    "| no active HA node | only the active node evaluates triggers | no active Zabbix server "
    "node |",
    "| Zabbix database unreachable or read-only behind both Pgpools | the active node demotes "
    "itself or cannot write events | Zabbix database unreachable / has not written to its "
    "database |",
    "| action or media type disabled, alerter stuck | the problem is raised but never "
    "delivered | Zabbix is up but no canary alert came back |",
)
