"""`kyoten import` against a real Zabbix 6.0 server: what lands, idempotence, clear errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from kyoten.agent.catalogue import FAMILIES
from kyoten.agent.catalogue.model import Family
from kyoten.agent.export import templates as tpl
from kyoten.shell.export import rendered_templates
from kyoten.shell.lab.procs import free_port, write_file
from kyoten.shell.lab.zabbix import Zabbix60
from kyoten.shell.zabbix_import import documents, effective_changes, import_rules

from .conftest import kyoten_import

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("family", FAMILIES, ids=lambda f: f.key)
def test_template_get_shows_the_catalogue(imported60: Any, family: Family) -> None:
    (t,) = imported60.template.get(
        filter={"host": family.template},
        output=["host", "uuid"],
        selectItems=["key_", "type", "value_type", "master_itemid"],
        selectDiscoveries=["key_", "type"],
        selectTriggers=["description"],
        selectMacros=["macro"],
        selectValueMaps=["name"],
        selectDashboards=["name"],
    )
    assert t["uuid"] == tpl.stable_uuid(family.template, "template")
    items = {i["key_"]: i for i in t["items"]}
    assert set(items) == {family.master_key()} | {
        tpl.item_key(family, m) for m in family.metrics if m.item
    }
    assert items[family.master_key()]["value_type"] == "4"  # TEXT
    assert {i["type"] for k, i in items.items() if k != family.master_key()} == {"18"}  # DEPENDENT
    assert {d["key_"] for d in t["discoveries"]} == {d.key for d in family.discoveries}
    declared = {tr.name for m in family.metrics for tr in m.triggers}
    assert {tr["description"] for tr in t["triggers"]} == declared
    assert {m["macro"] for m in t["macros"]} == {m.name for m in family.all_macros()}
    assert {v["name"] for v in t["valuemaps"]} == {v.name for v in family.valuemaps}
    assert len(t["dashboards"]) == 1
    for d in family.discoveries:
        (rule,) = imported60.discoveryrule.get(
            templateids=[t["templateid"]],
            filter={"key_": d.key},
            selectItems=["key_"],
            selectTriggers=["description"],
            selectGraphs=["name"],
            selectLLDMacroPaths=["lld_macro", "path"],
        )
        assert {i["key_"] for i in rule["items"]} == {
            tpl.item_key(family, m, d) for m in d.metrics if m.item
        }
        assert {tr["description"] for tr in rule["triggers"]} == {
            tr.name for m in d.metrics for tr in m.triggers
        }
        assert {p["lld_macro"] for p in rule["lld_macro_paths"]} == {m for m, _ in d.macros}
        assert bool(rule["graphs"]) == any(m.graph for m in d.metrics)


def test_trigger_dependencies_are_in_the_database(imported60: Any) -> None:
    """One root cause pages once: lag is suppressed while the WAL receiver is down."""
    pg = "PostgreSQL {$KYOTEN.PG.TARGET}"
    (tr,) = imported60.trigger.get(
        filter={"description": f"{pg}: replay lag over {{$PG.REPL_LAG.BYTES.MAX.WARN}} B"},
        templated=True,
        selectDependencies=["description"],
        output=["description"],
    )
    assert [d["description"] for d in tr["dependencies"]] == [
        f"{pg}: WAL receiver is not streaming"
    ]


def test_media_type_imported(imported60: Any) -> None:
    (mt,) = imported60.mediatype.get(
        filter={"name": "kyoten bridge"}, selectMessageTemplates="extend"
    )
    assert mt["type"] == "4"  # webhook
    assert {m["recovery"] for m in mt["message_templates"]} == {"0", "1", "2"}


def test_second_import_changes_nothing(
    imported60: Any, zabbix60: Zabbix60, admin_password_file: Path
) -> None:
    """Stable UUIDs + canonical files: importcompare is empty, before and after re-importing."""
    docs = documents(rendered_templates(), "6.0", templates=True, media_type=False)
    rules = {k: v for k, v in import_rules((6, 0)).items() if k != "mediaTypes"}
    for doc in docs:
        diff = imported60.configuration.importcompare(format="yaml", source=doc.source, rules=rules)
        assert effective_changes(diff) == [], doc.name
    assert kyoten_import(zabbix60.url, admin_password_file, "--check") == 0
    assert kyoten_import(zabbix60.url, admin_password_file) == 0
    assert kyoten_import(zabbix60.url, admin_password_file, "--check") == 0
    n = imported60.template.get(filter={"host": [f.template for f in FAMILIES]}, countOutput=True)
    assert int(n) == len(FAMILIES)


def test_rules_follow_the_server_version() -> None:
    assert "groups" in import_rules((6, 0)) and "template_groups" not in import_rules((6, 0))
    assert {"template_groups", "host_groups"} <= set(import_rules((7, 0)))
    assert "groups" not in import_rules((6, 2))


def test_unreachable_api_is_a_clear_error(
    capsys: pytest.CaptureFixture[str], admin_password_file: Path
) -> None:
    rc = kyoten_import(f"http://127.0.0.1:{free_port()}", admin_password_file)
    assert rc == 3
    assert "cannot reach the Zabbix API" in capsys.readouterr().err


def test_wrong_credentials_are_a_clear_error_without_the_secret(
    zabbix60: Zabbix60, lab_root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = "not-the-password-4711"
    pw = write_file(lab_root / "wrong.pw", secret + "\n", "root", 0o600)
    assert kyoten_import(zabbix60.url, pw) == 4
    token = "f" * 64
    from kyoten.shell import zabbix_import

    rc = zabbix_import.main(["import", "--url", zabbix60.url, "--token", token, "--templates"])
    assert rc == 4
    out = capsys.readouterr()
    assert "refused the credentials" in out.err
    assert secret not in out.err + out.out and token not in out.err + out.out


def test_old_server_is_refused() -> None:
    from kyoten.shell.zabbix_import import ImportFailed, check_version

    with pytest.raises(ImportFailed, match="not supported") as exc:
        check_version((5, 4), "5.4.9")
    assert exc.value.code == 5


def test_import_with_an_api_token(imported60: Any, zabbix60: Zabbix60) -> None:
    """The unattended path (CI, configuration management): a token instead of a password."""
    (tokenid,) = imported60.token.create(name="kyoten-import-test", userid="1")["tokenids"]
    (generated,) = imported60.token.generate(tokenid)
    from kyoten.shell import zabbix_import

    argv = ["import", "--url", zabbix60.url, "--token", generated["token"]]
    assert zabbix_import.main([*argv, "--templates"]) == 0
    assert zabbix_import.main([*argv, "--check"]) == 0
