"""``kyoten import``: put kyoten's templates and the bridge media type into a Zabbix server.

Thin on purpose: the documents come from :func:`kyoten.shell.export.rendered_templates` (the
same text as the committed ``templates/`` files, which a test keeps equal), the import rules
from :func:`import_rules`; this module only talks to the API. Re-running it is harmless: the
UUIDs are stable, so objects are updated in place, and ``configuration.importcompare`` shows
no difference afterwards (``--check`` prints that difference instead of importing). Over an
older release's templates, the items and item prototypes the new files drop are deleted just
before each file's import (:func:`obsolete_items` says why Zabbix 6.0 needs that).

``--canary`` also sets up the alert-path canary (:mod:`kyoten.alerting.canary_template`): its
template, then through the API the host group ``kyoten/canary``, the host ``kyoten-canary``
linked to the template, read permission on that host group for the receiving user group, and
the trigger action that sends canary problems through the kyoten media type to that group.
Each object is read first and created or corrected only where it differs from the
declaration (:func:`reconcile_canary`), so a second run changes nothing, and ``--check`` lists
the differences without changing anything.

``--config kyoten.toml`` (with ``--bridge-url``/``--bridge-token-file`` and ``--usergroup``)
also wires the server for that file: hosts, the bridge's global macros, the action to the bridge,
the topology map and the NOC dashboard, the same read-compare-correct way
(:mod:`kyoten.shell.zabbix_wiring`). Secrets come from files (``--token-file``,
``--password-file``, ``--bridge-token-file``) and are never printed.

Exit codes: 0 done, 1 import rejected, 2 usage, 3 API unreachable, 4 credentials refused,
5 server version not supported, 6 ``--check`` found differences.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kyoten.common.redact import redact, redact_url

MIN_VERSION = (6, 0)
MAX_VERSION = (7, 4)
"""Servers kyoten's files and rules are known to work with (6.0 files import into all)."""

_SYNC = {"createMissing": True, "updateExisting": True, "deleteMissing": True}
_UPSERT = {"createMissing": True, "updateExisting": True}
MEDIA_TYPE_SUFFIX = "mediatype_kyoten_bridge.yaml"
"""The media type's file: importcompare knows host groups and templates only."""


class ImportFailed(Exception):
    """An import step failed; ``code`` is the exit status, the message is safe to print."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


# ---------------------------------------------------------------------------------- pure
def import_rules(version: tuple[int, int]) -> dict[str, Any]:
    """``configuration.import`` rules for a server of ``version`` (major, minor).

    The API rejects unknown rule names, and 6.2 split ``groups`` into ``template_groups`` and
    ``host_groups``. Items, triggers, discovery rules, graphs, dashboards and value maps are
    synchronised (``deleteMissing``): the templates are generated, so whatever the catalogue no
    longer declares must disappear from Zabbix too.
    """
    rules: dict[str, Any] = {
        "templates": dict(_UPSERT),
        "templateLinkage": {"createMissing": True, "deleteMissing": False},
        "mediaTypes": dict(_UPSERT),
    }
    for name in ("items", "triggers", "discoveryRules", "graphs", "templateDashboards"):
        rules[name] = dict(_SYNC)
    rules["valueMaps"] = dict(_SYNC)
    rules["httptests"] = dict(_SYNC)
    if version < (6, 2):
        rules["groups"] = {"createMissing": True}
    else:
        rules["template_groups"] = dict(_UPSERT)
        rules["host_groups"] = dict(_UPSERT)
    return rules


def export_format(version: tuple[int, int]) -> str:
    """Which rendered format to send: native 7.0 files from 7.0 on, else the 6.0 files."""
    return "7.0" if version >= (7, 0) else "6.0"


def check_version(version: tuple[int, int], text: str) -> None:
    if not MIN_VERSION <= version <= MAX_VERSION:
        lo, hi = (".".join(map(str, v)) for v in (MIN_VERSION, MAX_VERSION))
        raise ImportFailed(
            f"Zabbix {text} is not supported: kyoten's templates need Zabbix {lo} to {hi}", 5
        )


@dataclass(frozen=True)
class Document:
    """One file to import: its name (for messages) and text."""

    name: str
    source: str


def documents(
    files: Mapping[str, str], fmt: str, templates: bool, media_type: bool
) -> list[Document]:
    """The rendered files to import for format ``fmt``: templates first, then the media type."""
    from kyoten.agent.export.templates import MEDIA_TYPE_FILE, template_files

    names: list[str] = []
    if templates:
        names += template_files(fmt)
    if media_type:
        names.append(f"{fmt}/{MEDIA_TYPE_FILE}")
    return [Document(n, files[n]) for n in names]


@dataclass(frozen=True)
class Obsolete:
    """An item or item prototype of a template that an import deletes: the file no longer
    has it under its UUID nor under its key."""

    template: str
    key: str
    prototype: bool


def obsolete_items(compare: Any) -> list[Obsolete]:
    """The items and item prototypes a ``configuration.importcompare`` result says the import
    removes, except those the file has again under another UUID with the same key (the import
    finds those by key and updates them in place, keeping their history).

    :func:`import_documents` deletes these before importing, because Zabbix 6.0's importer
    cannot when a trigger it keeps refers to them. Deleting an item prototype (or an item)
    deletes the trigger prototypes (triggers) whose expression uses it, but the importer
    (``CConfigurationImport`` of 6.0.14) read the file's triggers' ids before that, keeps the
    stale ids and then updates a deleted trigger: "No permissions to referred object or it
    does not exist!" (7.0 reads them again and creates the trigger). A trigger that keeps its
    UUID while the keys in its expression change meets this: the HA node triggers when their
    prototypes went from ``{#NODE.ID}`` to ``{#NODE.NAME}``. Deleted first, with what Zabbix
    deletes along, the triggers are simply created again by the import.
    """
    out: list[Obsolete] = []
    for template in _section(compare, "templates", "updated"):
        name = str(template["before"]["template"])
        lists = [(template, "items", False)] + [
            (rule, "item_prototypes", True)
            for rule in _section(template, "discovery_rules", "updated")
        ]
        kept = {
            str(entry["after"]["key"])
            for owner, field, _ in lists
            for entry in _section(owner, field, "added")
        }
        out += [
            Obsolete(name, str(entry["before"]["key"]), prototype)
            for owner, field, prototype in lists
            for entry in _section(owner, field, "removed")
            if str(entry["before"]["key"]) not in kept
        ]
    return out


def _section(node: Any, field: str, change: str) -> list[Any]:
    """``node[field][change]`` of an importcompare result, [] where absent."""
    value = (node.get(field) or {}).get(change) if isinstance(node, dict) else None
    return list(value) if isinstance(value, list) else []


def effective_changes(node: Any, path: str = "") -> list[str]:
    """Where an ``importcompare`` result really changes something, as readable paths.

    Zabbix 6.0 lists a discovery rule that has a filter as "updated" on every compare, with
    identical ``before`` and ``after`` (seen on 6.0.14; rules without a filter compare clean).
    Only added or removed objects and fields whose values differ count as changes here.
    """
    out: list[str] = []
    if isinstance(node, dict):
        if "before" in node or "after" in node:
            out += _leaf_changes(node.get("before"), node.get("after"), path)
        for key, value in node.items():
            if key in ("added", "removed") and value:
                out += [f"{path}/{key}: {_name(v)}" for v in value]
            elif key not in ("before", "after"):
                out += effective_changes(value, f"{path}/{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            out += effective_changes(value, f"{path}[{i}]")
    return out


def reconcile_named_action(
    api: Any, wanted: Mapping[str, Any], usergroup: str, *, apply: bool
) -> list[str]:
    """The trigger action ``wanted`` (``action.create`` parameters) as Zabbix has it by name:
    created when missing, updated where :func:`action_differences` finds a difference; what
    was done (or, without ``apply``, what differs), one line each. An action of that name for
    another event source is the operator's: refused, not overwritten."""
    name = wanted["name"]
    found = api.action.get(
        filter={"name": name},
        output=["actionid", "eventsource", "status", "esc_period", "pause_suppressed"],
        selectFilter="extend",
        selectOperations="extend",
        selectRecoveryOperations="extend",
        selectUpdateOperations="extend",
    )
    if not found:
        if apply:
            api.action.create(**wanted)
            return [f"created action {name!r} to user group {usergroup!r}"]
        return [f"action {name!r} is missing"]
    current = found[0]
    if str(current["eventsource"]) != "0":
        raise ImportFailed(
            f"an action named {name!r} exists for another event source: rename it", 1
        )
    differences = action_differences(current, wanted)
    if not differences:
        return []
    if apply:
        changes = {k: v for k, v in wanted.items() if k not in ("name", "eventsource")}
        api.action.update(actionid=current["actionid"], **changes)
    return [f"{'updated action' if apply else 'action'} {name!r}: " + "; ".join(differences)]


def action_differences(actual: Mapping[str, Any], wanted: Mapping[str, Any]) -> list[str]:
    """What differs between an ``action.get`` result (with filter and all operation lists
    selected) and wanted ``action.create`` parameters, one readable line per aspect.

    Only what decides which events go where is compared: status, escalation period, pause on
    suppression, the filter (evaltype and the set of conditions) and the three operation lists
    (type, steps, message settings, recipients, operation conditions). Ids, formula ids and
    message texts of operations that use the media type's templates are not.
    """
    have, want = _action_shape(actual), _action_shape(wanted)
    return [f"{key} is {have[key]}, want {want[key]}" for key in want if have[key] != want[key]]


def _action_shape(action: Mapping[str, Any]) -> dict[str, Any]:
    filt = action.get("filter") or {}
    conditions = sorted(
        f"conditiontype {c['conditiontype']} operator {c['operator']} "
        f"value {c.get('value', '')!r} value2 {c.get('value2', '')!r}"
        for c in filt.get("conditions", [])
    )
    return {
        "status": str(action.get("status", "0")),
        "esc_period": str(action.get("esc_period", "1h")),
        "pause_suppressed": str(action.get("pause_suppressed", "1")),
        "filter": f"evaltype {filt.get('evaltype', '0')} [{'; '.join(conditions)}]",
        **{
            key: "[" + "; ".join(sorted(_operation_shape(op) for op in action.get(key) or [])) + "]"
            for key in ("operations", "recovery_operations", "update_operations")
        },
    }


def _operation_shape(op: Mapping[str, Any]) -> str:
    message = op.get("opmessage") or {}
    groups = ",".join(sorted(str(g["usrgrpid"]) for g in op.get("opmessage_grp") or []))
    users = ",".join(sorted(str(u["userid"]) for u in op.get("opmessage_usr") or []))
    text = (
        f"type {op['operationtype']}, steps {op.get('esc_step_from', '1')}-"
        f"{op.get('esc_step_to', '1')}, esc_period {op.get('esc_period', '0')}, "
        f"default_msg {message.get('default_msg', '1')}, "
        f"mediatypeid {message.get('mediatypeid', '0')}, groups [{groups}], users [{users}], "
        f"{len(op.get('opconditions') or [])} condition(s)"
    )
    return text + (", a command" if op.get("opcommand") else "")


def _name(obj: Any) -> str:
    if isinstance(obj, dict):
        return str(obj.get("name") or obj.get("key") or obj.get("uuid") or "?")
    return str(obj)


def _leaf_changes(before: Any, after: Any, path: str) -> list[str]:
    # A dashboard widget's fields are (type, name, value) rows without an order of their own:
    # Zabbix 6.0 returns them in the order its database holds them, which a re-import of the
    # same widget can change. The same rows in another order change nothing.
    if (
        path.endswith("/fields")
        and isinstance(before, list)
        and isinstance(after, list)
        and sorted(map(_canonical, before)) == sorted(map(_canonical, after))
    ):
        return []
    if isinstance(before, dict) and isinstance(after, dict):
        out: list[str] = []
        for key in sorted(set(before) | set(after)):
            out += _leaf_changes(before.get(key), after.get(key), f"{path}/{key}")
        return out
    if isinstance(before, list) and isinstance(after, list) and len(before) == len(after):
        return [
            c
            for i, (b, a) in enumerate(zip(before, after, strict=True))
            for c in _leaf_changes(b, a, f"{path}[{i}]")
        ]
    return [] if before == after else [f"{path}: {before!r} -> {after!r}"]


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


# ---------------------------------------------------------------------------------- API
def connect(url: str, token: str | None, user: str | None, password: str | None) -> Any:
    """A logged-in ``ZabbixAPI`` after checking the server version; raises ImportFailed."""
    from zabbix_utils import APIRequestError, ZabbixAPI
    from zabbix_utils.exceptions import ModuleBaseException, ProcessingError

    secrets = [s for s in (token, password) if s]
    shown = redact_url(url)  # a URL may carry user:password@ too
    try:
        api = ZabbixAPI(url=url, skip_version_check=True, timeout=60)
        version = api.api_version()
    except (ProcessingError, OSError, ValueError) as exc:
        raise ImportFailed(
            f"cannot reach the Zabbix API at {shown}: {redact(str(exc), secrets)}", 3
        ) from None
    except APIRequestError as exc:
        raise ImportFailed(
            f"{shown} does not answer like a Zabbix API: {redact(str(exc), secrets)}", 3
        ) from None
    check_version(parse_version(str(version)), str(version))
    try:
        if token:
            api.login(token=token)
        else:
            api.login(user=user, password=password)
        # a token is only sent, never checked, by login(): make one authenticated call
        api.user.get(output=["userid"], limit=1)
    except (APIRequestError, ModuleBaseException) as exc:
        raise ImportFailed(
            f"Zabbix refused the credentials: {redact(str(exc), secrets)}", 4
        ) from None
    return api


def parse_version(text: str) -> tuple[int, int]:
    """(major, minor) of an ``apiinfo.version`` answer such as ``6.0.14``."""
    major, minor = text.split(".")[:2]
    return int(major), int(minor)


def server_version(api: Any) -> tuple[int, int]:
    return parse_version(str(api.api_version()))


def import_documents(api: Any, docs: Sequence[Document]) -> list[str]:
    """Import ``docs`` in order; what had to be deleted first (:func:`obsolete_items`), one
    line each.

    Each template document is compared first and the items it drops are deleted through the
    API, then it is imported. Should the import fail after that, those items are gone
    already, as the import would have deleted them: the next run imports the rest.
    """
    from zabbix_utils import APIRequestError

    rules = import_rules(server_version(api))
    compare_rules = {k: v for k, v in rules.items() if k != "mediaTypes"}
    done: list[str] = []
    for doc in docs:
        try:
            if not doc.name.endswith(MEDIA_TYPE_SUFFIX):
                compare = api.configuration.importcompare(
                    format="yaml", source=doc.source, rules=compare_rules
                )
                done += [
                    f"{doc.name}: {line}" for line in delete_items(api, obsolete_items(compare))
                ]
            api.configuration.import_(format="yaml", source=doc.source, rules=rules)
        except APIRequestError as exc:
            raise ImportFailed(f"Zabbix rejected {doc.name}: {exc}", 1) from None
    return done


def delete_items(api: Any, obsolete: Sequence[Obsolete]) -> list[str]:
    """Delete ``obsolete`` (items and item prototypes of templates), with what Zabbix deletes
    along: the items, triggers and graphs inherited by hosts, discovered items and triggers,
    the trigger (prototypes) using them. One line per deleted item."""
    done: list[str] = []
    for template in sorted({o.template for o in obsolete}):
        found = api.template.get(filter={"host": template}, output=["templateid"])
        if not found:
            continue
        for prototype, service, what in (
            (False, api.item, "item"),
            (True, api.itemprototype, "item prototype"),
        ):
            keys = sorted(
                o.key for o in obsolete if o.template == template and o.prototype == prototype
            )
            if not keys:
                continue
            rows = service.get(
                hostids=[found[0]["templateid"]],
                filter={"key_": keys},
                inherited=False,
                output=["itemid", "key_"],
            )
            if rows:
                service.delete([str(r["itemid"]) for r in rows])
            done += [
                f"deleted {what} {r['key_']!r} of {template!r} before the import" for r in rows
            ]
    return done


def compare_documents(api: Any, docs: Sequence[Document]) -> dict[str, list[str]]:
    """``configuration.importcompare`` per document: name → :func:`effective_changes`.

    importcompare knows host groups and templates only, so media types are left out.
    """
    rules = {k: v for k, v in import_rules(server_version(api)).items() if k != "mediaTypes"}
    diffs: dict[str, Any] = {}
    for doc in docs:
        if doc.name.endswith(MEDIA_TYPE_SUFFIX):
            continue
        result = api.configuration.importcompare(format="yaml", source=doc.source, rules=rules)
        changes = effective_changes(result)
        if changes:
            diffs[doc.name] = changes
    return diffs


# ---------------------------------------------------------------------------------- canary
def canary_document(files: Mapping[str, str], fmt: str) -> Document:
    """The canary template's rendered file of format ``fmt``."""
    from kyoten.alerting.canary_template import FILE

    name = f"{fmt}/{FILE}"
    return Document(name, files[name])


def canary_usergroup(api: Any, name: str) -> dict[str, Any]:
    """The user group that receives canary problems, with its host group rights."""
    new = server_version(api) >= (6, 2)
    found = api.usergroup.get(
        filter={"name": name},
        output=["usrgrpid", "name"],
        **{"selectHostGroupRights" if new else "selectRights": ["id", "permission"]},
    )
    if not found:
        from kyoten.alerting.mediatype import NAME as MEDIA_TYPE

        raise ImportFailed(
            f"user group {name!r} does not exist in Zabbix: create it (Users > User groups) "
            f"with the user that has the {MEDIA_TYPE!r} media, or name an existing group with "
            "--canary-usergroup",
            2,
        )
    group: dict[str, Any] = found[0]
    group["rights"] = group.pop("hostgroup_rights" if new else "rights", [])
    return group


def reconcile_canary(api: Any, usergroup: str, *, apply: bool) -> list[str]:
    """Make the canary's API objects what :mod:`kyoten.alerting.canary_template` declares.

    In order: host group, host (in that group, linked to the template, enabled), read
    permission of ``usergroup`` on the host group (Zabbix creates no alert for a recipient who
    cannot read the host), and the action. Each is read first; with ``apply`` what is missing
    is created and what differs corrected, without ``apply`` nothing changes. Returns one line
    per object that was (or would be) changed, so an empty list means everything is in place.
    The template must have been imported before (``apply``) or is compared separately
    (:func:`check_canary`).
    """
    from kyoten.alerting import canary_template as ct
    from kyoten.alerting.mediatype import NAME as MEDIA_TYPE

    new = server_version(api) >= (6, 2)
    out: list[str] = []
    group = canary_usergroup(api, usergroup)
    media = api.mediatype.get(filter={"name": MEDIA_TYPE}, output=["mediatypeid"])
    if not media:
        if apply:
            raise ImportFailed(
                f"media type {MEDIA_TYPE!r} is not in Zabbix: import it first "
                "(kyoten import --media-type)",
                1,
            )
        out.append(f"media type {MEDIA_TYPE!r} is missing")
    mediatypeid = str(media[0]["mediatypeid"]) if media else "0"
    tpl = api.template.get(filter={"host": ct.TEMPLATE}, output=["templateid"])
    templateid = str(tpl[0]["templateid"]) if tpl else None
    if templateid is None and apply:
        raise ImportFailed(f"template {ct.TEMPLATE!r} is not in Zabbix after its import", 1)

    found = api.hostgroup.get(filter={"name": ct.HOST_GROUP}, output=["groupid"])
    groupid = str(found[0]["groupid"]) if found else None
    if groupid is None:
        if apply:
            groupid = str(api.hostgroup.create(name=ct.HOST_GROUP)["groupids"][0])
            out.append(f"created host group {ct.HOST_GROUP!r}")
        else:
            out.append(f"host group {ct.HOST_GROUP!r} is missing")

    groups_key = "hostgroups" if new else "groups"
    hosts = api.host.get(
        filter={"host": ct.HOST},
        output=["hostid", "status"],
        selectParentTemplates=["templateid"],
        **{"selectHostGroups" if new else "selectGroups": ["groupid"]},
    )
    if not hosts:
        if apply:
            api.host.create(
                host=ct.HOST,
                groups=[{"groupid": groupid}],
                templates=[{"templateid": templateid}],
            )
            out.append(f"created host {ct.HOST!r} linked to {ct.TEMPLATE!r}")
        else:
            out.append(f"host {ct.HOST!r} is missing")
    else:
        host = hosts[0]
        ref = [{"hostid": host["hostid"]}]
        wrong: list[str] = []
        if groupid not in {str(g["groupid"]) for g in host[groups_key]}:
            wrong.append(f"not in host group {ct.HOST_GROUP!r}")
            if apply:
                api.host.massadd(hosts=ref, groups=[{"groupid": groupid}])
        if templateid not in {str(t["templateid"]) for t in host["parentTemplates"]}:
            wrong.append(f"not linked to template {ct.TEMPLATE!r}")
            if apply:
                api.host.massadd(hosts=ref, templates=[{"templateid": templateid}])
        if str(host["status"]) != "0":
            wrong.append("disabled")
            if apply:
                api.host.update(hostid=host["hostid"], status=0)
        if wrong:
            out.append(f"{'fixed host' if apply else 'host'} {ct.HOST!r}: {', '.join(wrong)}")

    rights = {str(r["id"]): str(r["permission"]) for r in group["rights"]}
    if groupid is None or rights.get(groupid) not in ("2", "3"):  # read, read-write
        if apply and groupid is not None:
            rights[groupid] = "2"
            api.usergroup.update(
                usrgrpid=group["usrgrpid"],
                **{
                    "hostgroup_rights" if new else "rights": [
                        {"id": i, "permission": p} for i, p in rights.items()
                    ]
                },
            )
            out.append(f"granted user group {usergroup!r} read on {ct.HOST_GROUP!r}")
        else:
            out.append(f"user group {usergroup!r} cannot read host group {ct.HOST_GROUP!r}")

    wanted = ct.action(mediatypeid, str(group["usrgrpid"]))
    out.extend(reconcile_named_action(api, wanted, usergroup, apply=apply))
    return out


def setup_canary(api: Any, usergroup: str, files: Mapping[str, str] | None = None) -> list[str]:
    """Import the canary template (the format the server takes natively) and reconcile its
    host, permission and action; what was done, one line each. ``kyoten demo`` calls this."""
    from zabbix_utils import APIRequestError

    if files is None:
        from kyoten.shell.export import rendered_templates

        files = rendered_templates()
    version = server_version(api)
    canary_usergroup(api, usergroup)  # before anything changes
    doc = canary_document(files, export_format(version))
    deleted = import_documents(api, [doc])
    try:
        done = reconcile_canary(api, usergroup, apply=True)
    except APIRequestError as exc:
        raise ImportFailed(f"Zabbix rejected a canary object: {exc}", 1) from None
    return [*deleted, f"imported {doc.name} into Zabbix {version[0]}.{version[1]}", *done]


def check_canary(api: Any, usergroup: str, files: Mapping[str, str], fmt: str) -> list[str]:
    """What :func:`setup_canary` would change, changing nothing (empty: all in place)."""
    doc = canary_document(files, fmt)
    out = [
        f"{doc.name}: would change: {change}"
        for change in compare_documents(api, [doc]).get(doc.name, [])
    ]
    return out + reconcile_canary(api, usergroup, apply=False)


# ---------------------------------------------------------------------------------- CLI
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="kyoten import",
        description="Import kyoten's templates and/or the alert bridge media type through the "
        "Zabbix API. Without --templates/--media-type both are imported.",
    )
    p.add_argument("--url", required=True, help="frontend URL, e.g. https://zabbix.example/")
    auth = p.add_mutually_exclusive_group(required=True)
    auth.add_argument(
        "--token", help="API token (Zabbix 5.4+); prefer --token-file, a command line is public"
    )
    auth.add_argument(
        "--token-file", type=Path, help="file whose first line is the API token (Zabbix 5.4+)"
    )
    auth.add_argument("--user", help="user name (with --password-file)")
    p.add_argument("--password-file", type=Path, help="file whose first line is the password")
    p.add_argument("--templates", action="store_true", help="import the templates")
    p.add_argument("--media-type", action="store_true", help="import the webhook media type")
    p.add_argument(
        "--format",
        choices=("auto", "6.0", "7.0"),
        default="auto",
        help="export format to send (auto: 7.0 files on 7.0+, else 6.0 files)",
    )
    p.add_argument(
        "--check",
        action="store_true",
        help="import nothing; print what an import would change and exit 6 if anything",
    )
    p.add_argument(
        "--canary",
        action="store_true",
        help="also set up the alert-path canary: its template, the host group kyoten/canary, "
        "the host kyoten-canary, read permission on that group for --canary-usergroup, and "
        "the action sending canary problems to that group through the kyoten media type",
    )
    p.add_argument(
        "--canary-usergroup",
        metavar="NAME",
        help="existing user group whose user has the kyoten media, for every severity "
        "including Information (required with --canary)",
    )
    wire = p.add_argument_group(
        "wiring a Zabbix server for kyoten.toml (each part created or corrected only where it "
        "differs, so a second run changes nothing; --check lists the differences)"
    )
    wire.add_argument(
        "--config",
        type=Path,
        metavar="KYOTEN_TOML",
        help="create the hosts for its targets (template, target macro, agent interface), "
        "the topology map and the 'kyoten NOC' dashboard",
    )
    wire.add_argument("--host-group", default="kyoten", help="host group of the hosts (kyoten)")
    wire.add_argument("--host-prefix", default="", help="prefix of the host names (none)")
    wire.add_argument(
        "--agent",
        default="127.0.0.1:10050",
        metavar="HOST:PORT",
        help="the agent (with kyoten and every target of the file) that polls the hosts",
    )
    wire.add_argument(
        "--host-macro",
        action="append",
        default=[],
        metavar="MACRO=VALUE",
        help="a macro set on every host, e.g. '{$KYOTEN.INTERVAL}=30s' (repeatable)",
    )
    wire.add_argument(
        "--zabbix-node",
        action="append",
        default=[],
        metavar="SITE=NODE",
        help="HANodeName of the Zabbix server at SITE, for the map (default: the site's name)",
    )
    wire.add_argument(
        "--bridge-url", help="global macro {$KYOTEN.BRIDGE.URL}: the bridge's /v1/events URL"
    )
    wire.add_argument(
        "--bridge-token-file",
        type=Path,
        help="file whose first line is the bridge's token: global secret macro "
        "{$KYOTEN.BRIDGE.TOKEN} (never printed; written on every run, Zabbix never shows it)",
    )
    wire.add_argument(
        "--usergroup",
        metavar="NAME",
        help="existing user group whose user has the kyoten media: the action 'kyoten: "
        "problems to the bridge' sends every problem, update and recovery to it",
    )
    return p


def _first_line(parser: argparse.ArgumentParser, path: Path, option: str) -> str:
    """The first line of a secret file; a usage error (naming the option) when unreadable."""
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        parser.error(f"cannot read {option}: {exc.strerror}")
    if not lines or not lines[0]:
        parser.error(f"{option} is empty")
    return lines[0]


def _password(args: argparse.Namespace, parser: argparse.ArgumentParser) -> str | None:
    if args.token_file:
        args.token = _first_line(parser, args.token_file, "--token-file")
    if args.token:
        if args.password_file:
            parser.error("--password-file goes with --user, not with --token")
        return None
    if not args.password_file:
        parser.error("--user needs --password-file")
    path: Path = args.password_file
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        parser.error(f"cannot read --password-file: {exc.strerror}")
    if not lines or not lines[0]:
        parser.error("--password-file is empty")
    return lines[0]


def main(argv: Sequence[str]) -> int:
    """``kyoten import ...``; ``argv[0]`` is ``"import"``."""
    from kyoten.shell.export import rendered_templates

    parser = build_parser()
    args = parser.parse_args(list(argv[1:]))
    password = _password(args, parser)
    if args.canary and not args.canary_usergroup:
        parser.error(
            "--canary needs --canary-usergroup NAME: the user group whose user has the kyoten "
            "media and receives the canary's problems"
        )
    if args.canary_usergroup and not args.canary:
        parser.error("--canary-usergroup goes with --canary")
    topo, wiring, bridge_token = _wiring(args, parser)
    templates, media_type = args.templates, args.media_type
    if not templates and not media_type:
        templates = media_type = True
    try:
        api = connect(args.url, args.token, args.user, password)
        version = server_version(api)
        fmt = export_format(version) if args.format == "auto" else args.format
        if fmt == "7.0" and version < (7, 0):
            raise ImportFailed(f"7.0 files do not import into Zabbix {version[0]}.{version[1]}", 2)
        files = rendered_templates()
        docs = documents(files, fmt, templates, media_type)
        if args.canary:
            canary_usergroup(api, args.canary_usergroup)  # a clear error before any change
        if args.check:
            diffs = compare_documents(api, docs)
            for name, changes in diffs.items():
                print(f"{name}: would change:", *changes[:50], sep="\n  ")
            drift = check_canary(api, args.canary_usergroup, files, fmt) if args.canary else []
            for line in drift:
                print(f"canary: {line}")
            wired = _wire(api, topo, wiring, fmt, apply=False)
            for line in wired:
                print(f"wiring: {line}")
            return 6 if diffs or drift or wired else 0
        if args.canary:
            docs.append(canary_document(files, fmt))
        for line in import_documents(api, docs):
            print(line)
        for doc in docs:
            print(f"imported {doc.name} into Zabbix {version[0]}.{version[1]}")
        if args.canary:
            from zabbix_utils import APIRequestError

            try:
                done = reconcile_canary(api, args.canary_usergroup, apply=True)
            except APIRequestError as exc:
                raise ImportFailed(f"Zabbix rejected a canary object: {exc}", 1) from None
            for line in done or ["host, permission and action already in place"]:
                print(f"canary: {line}")
        if wiring is not None:
            for line in _wire(api, topo, wiring, fmt, apply=True) or ["everything in place"]:
                print(f"wiring: {line}")
        if not args.token:
            api.logout()
    except ImportFailed as exc:
        secrets = [args.token or "", password or "", bridge_token or ""]
        print(f"kyoten import: {redact(str(exc), secrets)}", file=sys.stderr)
        return exc.code
    return 0


def _wiring(
    args: argparse.Namespace, parser: argparse.ArgumentParser
) -> tuple[Any, Any, str | None]:
    """(topology or None, :class:`~kyoten.shell.zabbix_wiring.Wiring` or None, bridge token)
    from the wiring options; usage errors name the option."""
    wants = args.config or args.bridge_url or args.bridge_token_file or args.usergroup
    if not wants:
        for option, given in (
            ("--host-macro", args.host_macro),
            ("--zabbix-node", args.zabbix_node),
            ("--host-prefix", args.host_prefix),
        ):
            if given:
                parser.error(f"{option} goes with --config")
        return None, None, None
    from kyoten.shell.zabbix_wiring import Wiring

    token = (
        _first_line(parser, args.bridge_token_file, "--bridge-token-file")
        if args.bridge_token_file
        else None
    )
    host, sep, port = args.agent.rpartition(":")
    if not sep or not host or not port.isdigit():
        parser.error(f"--agent takes HOST:PORT, got {args.agent!r}")
    topo = None
    if args.config:
        from kyoten.agent.config import load_config
        from kyoten.agent.errors import ConfigError
        from kyoten.agent.export.topology import plan

        macros = dict(_pair(parser, v, "--host-macro") for v in args.host_macro)
        nodes = dict(_pair(parser, v, "--zabbix-node") for v in args.zabbix_node)
        try:
            topo = plan(load_config(str(args.config)), args.host_prefix, macros, nodes)
        except (ConfigError, ValueError) as exc:
            parser.error(f"--config: {exc}")
    wiring = Wiring(
        host_group=args.host_group,
        agent=(host, int(port)),
        bridge_url=args.bridge_url,
        bridge_token=token,
        usergroup=args.usergroup,
        map=topo is not None,
        dashboard=topo is not None,
    )
    return topo, wiring, token


def _pair(parser: argparse.ArgumentParser, text: str, option: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        parser.error(f"{option} takes NAME=VALUE, got {text!r}")
    return key, value


def _wire(api: Any, topo: Any, wiring: Any, fmt: str, *, apply: bool) -> list[str]:
    if wiring is None:
        return []
    from kyoten.shell.zabbix_wiring import wire

    return wire(api, topo, wiring, fmt, apply=apply)
