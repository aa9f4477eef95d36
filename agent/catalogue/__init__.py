"""The metric catalogue: the single source of item keys, LLD rules, macros and triggers.

``FAMILIES`` lists every master item (one agent key each, one template each). Everything else
kyoten ships about metrics is projected from it: the collector's JSON is checked against
``Family.fields()``, and the templates, the UserParameter and plugin configs and METRICS.md
are rendered from it.
"""

from __future__ import annotations

from dataclasses import dataclass

from kyoten.agent.catalogue import cross, pgpool, postgres, zabbix
from kyoten.agent.catalogue.model import Discovery, Family

FAMILIES: tuple[Family, ...] = (postgres.FAMILY, pgpool.FAMILY, zabbix.FAMILY, cross.FAMILY)


@dataclass(frozen=True)
class AgentKey:
    """One key the agent answers: a family's master key or a standalone LLD key."""

    key: str
    description: str
    params: tuple[str, ...]
    family: Family
    discovery: Discovery | None = None


def agent_keys() -> tuple[AgentKey, ...]:
    """Every key kyoten registers with the agent (UserParameter lines, plugin metrics)."""
    keys: list[AgentKey] = []
    for fam in FAMILIES:
        names = tuple(p.name for p in fam.params)
        keys.append(AgentKey(fam.key, fam.description, names, fam))
        for disc in fam.discoveries:
            keys.append(
                AgentKey(
                    disc.key, f"{disc.name} (LLD JSON array) of {fam.template}.", names, fam, disc
                )
            )
    return tuple(keys)


KEYS: dict[str, AgentKey] = {k.key: k for k in agent_keys()}
