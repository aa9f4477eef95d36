"""The catalogue is self-consistent, and its projections agree with it."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from kyoten.agent.catalogue import FAMILIES, KEYS
from kyoten.agent.catalogue.model import ValueMap
from kyoten.agent.export.userparameters import render_userparameters

ROOT = Path(__file__).resolve().parents[2]


def test_trigger_uids_unique_and_dependencies_resolve() -> None:
    scopes = []
    for fam in FAMILIES:
        scopes.append((fam, list(fam.metrics), None))
        scopes += [(fam, list(d.metrics), d) for d in fam.discoveries]
    uids: dict[str, str] = {}
    for fam, metrics, _disc in scopes:
        for m in metrics:
            for t in m.triggers:
                assert t.uid not in uids, t.uid
                uids[t.uid] = fam.key
    for fam, metrics, _disc in scopes:
        fields = {m.field for m in metrics if m.item}
        for m in metrics:
            for t in m.triggers:
                for dep in t.depends_on:
                    assert uids.get(dep) == fam.key, f"{t.uid} depends on unknown {dep}"
                for expr in filter(None, (t.expression, t.recovery)):
                    refs = set(re.findall(r"ITEM\((\w+)\)", expr))
                    assert refs and refs <= fields, (t.uid, refs - fields)


def test_macros_used_are_declared() -> None:
    for fam in FAMILIES:
        declared = {m.name for m in fam.all_macros()}
        texts = [
            t.expression + (t.recovery or "") + t.name
            for m in (*fam.metrics, *[x for d in fam.discoveries for x in d.metrics])
            for t in m.triggers
        ]
        used = {
            u.split(":")[0] + ("}" if ":" in u else "")
            for text in texts
            for u in re.findall(r"\{\$[A-Z0-9_.]+(?::\"[^\"]*\")?\}", text)
        }
        used = {u if u.endswith("}") else u + "}" for u in used}
        assert used <= declared, (fam.key, used - declared)


def test_userparameters_cover_every_key_with_quoted_parameters() -> None:
    text = render_userparameters("/opt/k/bin/kyoten", "/etc/k.toml")
    lines = [line for line in text.splitlines() if line.startswith("UserParameter=")]
    assert {line.split("=", 1)[1].split("[")[0].split(",")[0] for line in lines} == set(KEYS)
    assert (
        "UserParameter=kyoten.pg[*],/opt/k/bin/kyoten get --config /etc/k.toml "
        "'kyoten.pg[$1]'" in lines
    )


def test_committed_artefacts_match_the_catalogue() -> None:
    proc = subprocess.run(
        [
            str(Path(sys.executable).with_name("kyoten")),
            "export",
            "all",
            "--check",
            "--root",
            str(ROOT),
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr


def test_no_doubled_braces_in_trigger_texts() -> None:
    """A '{{' is an f-string escape that leaked: Zabbix would show it literally."""
    for fam in FAMILIES:
        for m in (*fam.metrics, *[x for d in fam.discoveries for x in d.metrics]):
            for t in m.triggers:
                texts = (t.name, t.event_name, t.expression, t.recovery or "", t.description)
                for text in (*texts, t.opdata):
                    assert "{{" not in text and "}}" not in text, (t.uid, text)


def test_value_map_words_name_declared_codes_once() -> None:
    vm = ValueMap("m", (("0", "No"), ("1", "Yes")), words=(("no", "0"), ("yes", "1")))
    assert (vm.code("no"), vm.code("yes")) == (0, 1)
    with pytest.raises(KeyError):
        vm.code("maybe")  # no other code declared
    with pytest.raises(ValueError, match="no code 2"):
        ValueMap("m", (("0", "No"),), words=(("no", "0"),), other="2")
    with pytest.raises(ValueError, match="twice"):
        ValueMap("m", (("0", "No"), ("1", "Yes")), words=(("no", "0"), ("no", "1")))
