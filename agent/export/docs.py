"""templates/METRICS.md: the metrics reference, rendered from the catalogue."""

from __future__ import annotations

from kyoten.agent.catalogue import FAMILIES, agent_keys
from kyoten.agent.catalogue.model import Family, Metric


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
            f"| `{m.name}` | `{m.default}` | {_cell(m.description)} |" for m in fam.all_macros()
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
