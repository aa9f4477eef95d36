"""`kyoten import` through the real console script: dispatch, usage errors, no server needed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from kyoten.shell.lab.procs import free_port

KYOTEN = str(Path(sys.executable).with_name("kyoten"))


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([KYOTEN, "import", *args], capture_output=True, text=True, timeout=60)


def test_unreachable_api_exits_3_without_leaking_the_token() -> None:
    token = "0123456789abcdef" * 4
    out = run("--url", f"http://127.0.0.1:{free_port()}", "--token", token)
    assert out.returncode == 3
    assert "cannot reach the Zabbix API" in out.stderr
    assert token not in out.stderr + out.stdout


def test_user_needs_a_password_file(tmp_path: Path) -> None:
    out = run("--url", "http://127.0.0.1:1", "--user", "Admin")
    assert out.returncode == 2 and "--password-file" in out.stderr
    empty = tmp_path / "pw"
    empty.write_text("")
    out = run("--url", "http://127.0.0.1:1", "--user", "Admin", "--password-file", str(empty))
    assert out.returncode == 2 and "empty" in out.stderr


def test_token_and_user_are_exclusive() -> None:
    out = run("--url", "http://127.0.0.1:1", "--token", "t", "--user", "Admin")
    assert out.returncode == 2 and "not allowed with" in out.stderr


def test_canary_needs_a_user_group_and_the_reverse() -> None:
    out = run("--url", "http://127.0.0.1:1", "--token", "t", "--canary")
    assert out.returncode == 2 and "--canary needs --canary-usergroup" in out.stderr
    out = run("--url", "http://127.0.0.1:1", "--token", "t", "--canary-usergroup", "NOC")
    assert out.returncode == 2 and "goes with --canary" in out.stderr


def test_widget_fields_in_another_order_are_no_change_but_other_values_are() -> None:
    from kyoten.shell.zabbix_import import effective_changes

    show = {"type": "0", "name": "show", "value": "2"}
    size = {"type": "0", "name": "value_size", "value": "20"}
    path = {"templates": {"updated": [{"dashboards": {"updated": [{"widgets": [{
        "before": {"fields": [size, show]}, "after": {"fields": [show, size]}}]}]}}]}}  # fmt: skip
    assert effective_changes(path) == []
    bigger = {**size, "value": "30"}
    path["templates"]["updated"][0]["dashboards"]["updated"][0]["widgets"][0]["after"] = {
        "fields": [show, bigger]
    }
    assert effective_changes(path) != []


def test_obsolete_items_are_those_removed_under_uuid_and_key() -> None:
    """What importcompare removes is deleted before the import, unless the file has the key
    again under a new UUID (the import then updates that item in place)."""
    from kyoten.shell.zabbix_import import Obsolete, obsolete_items

    def gone(key: str) -> dict[str, Any]:
        return {"before": {"uuid": "u-" + key, "key": key}}

    def new(key: str) -> dict[str, Any]:
        return {"after": {"uuid": "v-" + key, "key": key}}

    rule = {
        "before": {"key": "kyoten.zabbix.ha.nodes"},
        "item_prototypes": {
            "removed": [gone('status["{#NODE.ID}"]'), gone('address["{#NODE.NAME}"]')],
            "added": [new('status["{#NODE.NAME}"]'), new('address["{#NODE.NAME}"]')],
        },
    }
    compare = {"templates": {"updated": [{
        "before": {"template": "T"},
        "items": {"removed": [gone("plain.old")], "updated": [{"before": {}, "after": {}}]},
        "discovery_rules": {"updated": [rule]},
    }]}}  # fmt: skip
    assert obsolete_items(compare) == [
        Obsolete("T", "plain.old", prototype=False),
        Obsolete("T", 'status["{#NODE.ID}"]', prototype=True),
    ]
    assert obsolete_items({}) == [] and obsolete_items({"templates": {"added": [{}]}}) == []
