"""The same files against a real Zabbix 7.0 (trixie's 7.0.22): 6.0 files convert forward, native
7.0 files import as they are, both idempotent, the media type included."""

from __future__ import annotations

from pathlib import Path

import pytest
from kyoten.agent.catalogue import FAMILIES
from kyoten.agent.export import templates as tpl
from kyoten.shell.export import rendered_templates
from kyoten.shell.lab.zabbix70 import Zabbix70
from kyoten.shell.zabbix_import import compare_documents, documents

from .conftest import kyoten_import

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("fmt", ["6.0", "7.0"])
def test_files_import_into_7_0_and_are_idempotent(
    zabbix70: Zabbix70, admin_password_file: Path, fmt: str
) -> None:
    """6.0 first (what most sites ship), then the native files over it.

    Idempotent means a second import leaves the database as it was: the full export is
    byte-identical before and after it. The native files also compare clean; the 6.0 files
    cannot, because the 6.0→7.0 converter writes defaults the exporter leaves out (e.g. the
    master item's ``type: ZABBIX_PASSIVE``), which importcompare reports as changes.
    """
    assert kyoten_import(zabbix70.url, admin_password_file, "--format", fmt) == 0
    api = zabbix70.api()
    assert str(api.api_version()).startswith("7.0.")
    ids = [
        t["templateid"] for t in api.template.get(filter={"host": [f.template for f in FAMILIES]})
    ]
    assert len(ids) == len(FAMILIES)
    before = api.configuration.export(format="yaml", options={"templates": ids})
    assert kyoten_import(zabbix70.url, admin_password_file, "--format", fmt) == 0
    assert api.configuration.export(format="yaml", options={"templates": ids}) == before
    if fmt == "7.0":
        docs = documents(rendered_templates(), fmt, templates=True, media_type=True)
        assert compare_documents(api, docs) == {}
        assert kyoten_import(zabbix70.url, admin_password_file, "--check") == 0
    templates = api.template.get(
        filter={"host": [f.template for f in FAMILIES]},
        output=["host"],
        selectItems=["key_"],
        selectTemplateGroups=["name"],
    )
    assert {t["host"] for t in templates} == {f.template for f in FAMILIES}
    for t in templates:
        assert [g["name"] for g in t["templategroups"]] == [tpl.GROUP]
    (mt,) = api.mediatype.get(filter={"name": "kyoten bridge"}, output=["type"])
    assert mt["type"] == "4"
