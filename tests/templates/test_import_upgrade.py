"""Importing over the previous release's templates succeeds, in Zabbix 6.0 and 7.0.

An installation upgrades by running ``kyoten import`` over the templates it has, on hosts
whose discovery has run. The previous release's files are kept in ``fixtures/previous/``
(``ORIGIN.md`` there says which); since then the HA node item prototypes changed keys
(``{#NODE.ID}`` to ``{#NODE.NAME}``) under trigger prototypes that kept their UUIDs, which
Zabbix 6.0's importer alone rejects (:func:`kyoten.shell.zabbix_import.obsolete_items`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from kyoten.agent.catalogue import FAMILIES, zabbix
from kyoten.agent.export.templates import file_name
from kyoten.shell.lab.config import ZabbixDb as ZabbixTarget
from kyoten.shell.zabbix_import import Document, import_documents

from .conftest import kyoten_import, wait_until
from .test_zabbix60_e2e import create_host, own_agent

pytestmark = pytest.mark.integration

PREVIOUS = Path(__file__).with_name("fixtures") / "previous"
HOST = "kyoten-upgrade-ha"
STATUS = "kyoten.zabbix.ha.nodes.status"


def previous(fmt: str) -> list[Document]:
    """The previous release's template files of format ``fmt``, in import order."""
    return [
        Document(f"previous/{fmt}/{file_name(f)}", (PREVIOUS / fmt / file_name(f)).read_text())
        for f in FAMILIES
    ]


def node_items(api: Any, hostid: str) -> set[str]:
    rows = api.item.get(hostids=[hostid], search={"key_": f"{STATUS}["}, output=["key_"])
    return {str(r["key_"]) for r in rows}


@pytest.mark.parametrize("version", ["6.0", "7.0"])
def test_importing_over_the_previous_release_succeeds(
    version: str,
    request: pytest.FixtureRequest,
    cluster: Any,
    lab_root: Path,
    admin_password_file: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    server = request.getfixturevalue("zabbix60" if version == "6.0" else "zabbix70")
    api = server.api()
    import_documents(api, previous(version))
    db = server.db
    agent = own_agent(
        cluster, lab_root, ZabbixTarget(db.node.host, db.node.port, db.name, db.user, db.password)
    )
    hostid = None
    try:
        macros = [{"macro": "{$KYOTEN.INTERVAL}", "value": "5s"}]
        hostid = create_host(api, HOST, zabbix.FAMILY.template, agent.port, macros)
        if hasattr(server, "reload_config"):  # 6.0: poll the new host now
            server.reload_config()
        old = wait_until(
            lambda: node_items(api, hostid), "HA nodes discovered by the previous template", 60
        )
        names = {f'{STATUS}["{name}"]' for name, _ in db.ha_nodes()}
        assert old.isdisjoint(names)  # keyed by the nodes' ids then
        capsys.readouterr()

        assert kyoten_import(server.url, admin_password_file, "--templates") == 0, (
            capsys.readouterr().err
        )
        first = capsys.readouterr().out
        assert "deleted item prototype" in first
        assert kyoten_import(server.url, admin_password_file, "--templates") == 0
        assert "deleted" not in capsys.readouterr().out
        assert kyoten_import(server.url, admin_password_file, "--templates", "--check") == 0

        wait_until(
            lambda: node_items(api, hostid) == names,
            f"the nodes discovered again by name (had {sorted(old)})",
            60,
            show=lambda: node_items(api, hostid),
        )
    finally:
        if hostid is not None:
            api.host.delete([hostid])
        agent.stop()
