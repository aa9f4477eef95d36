"""``kyoten import``: put kyoten's templates and the bridge media type into a Zabbix server.

Thin on purpose: the documents come from :func:`kyoten.shell.export.rendered_templates` (the
same text as the committed ``templates/`` files, which a test keeps equal), the import rules
from :func:`import_rules`; this module only talks to the API. Re-running it is harmless: the
UUIDs are stable, so objects are updated in place, and ``configuration.importcompare`` shows
no difference afterwards (``--check`` prints that difference instead of importing).

Exit codes: 0 done, 1 import rejected, 2 usage, 3 API unreachable, 4 credentials refused,
5 server version not supported, 6 ``--check`` found differences.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kyoten.common.redact import redact

MIN_VERSION = (6, 0)
MAX_VERSION = (7, 4)
"""Servers kyoten's files and rules are known to work with (6.0 files import into all)."""

_SYNC = {"createMissing": True, "updateExisting": True, "deleteMissing": True}
_UPSERT = {"createMissing": True, "updateExisting": True}


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


def _name(obj: Any) -> str:
    if isinstance(obj, dict):
        return str(obj.get("name") or obj.get("key") or obj.get("uuid") or "?")
    return str(obj)


def _leaf_changes(before: Any, after: Any, path: str) -> list[str]:
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


# ---------------------------------------------------------------------------------- API
def connect(url: str, token: str | None, user: str | None, password: str | None) -> Any:
    """A logged-in ``ZabbixAPI`` after checking the server version; raises ImportFailed."""
    from zabbix_utils import APIRequestError, ZabbixAPI
    from zabbix_utils.exceptions import ModuleBaseException, ProcessingError

    secrets = [s for s in (token, password) if s]
    try:
        api = ZabbixAPI(url=url, skip_version_check=True, timeout=60)
        version = api.api_version()
    except (ProcessingError, OSError, ValueError) as exc:
        raise ImportFailed(
            f"cannot reach the Zabbix API at {url}: {redact(str(exc), secrets)}", 3
        ) from None
    except APIRequestError as exc:
        raise ImportFailed(f"{url} does not answer like a Zabbix API: {exc}", 3) from None
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


def import_documents(api: Any, docs: Sequence[Document]) -> None:
    from zabbix_utils import APIRequestError

    rules = import_rules(server_version(api))
    for doc in docs:
        try:
            api.configuration.import_(format="yaml", source=doc.source, rules=rules)
        except APIRequestError as exc:
            raise ImportFailed(f"Zabbix rejected {doc.name}: {exc}", 1) from None


def compare_documents(api: Any, docs: Sequence[Document]) -> dict[str, list[str]]:
    """``configuration.importcompare`` per document: name → :func:`effective_changes`.

    importcompare knows host groups and templates only, so media types are left out.
    """
    rules = {k: v for k, v in import_rules(server_version(api)).items() if k != "mediaTypes"}
    diffs: dict[str, Any] = {}
    for doc in docs:
        if doc.name.endswith("mediatype_kyoten_bridge.yaml"):
            continue
        result = api.configuration.importcompare(format="yaml", source=doc.source, rules=rules)
        changes = effective_changes(result)
        if changes:
            diffs[doc.name] = changes
    return diffs


# ---------------------------------------------------------------------------------- CLI
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="kyoten import",
        description="Import kyoten's templates and/or the alert bridge media type through the "
        "Zabbix API. Without --templates/--media-type both are imported.",
    )
    p.add_argument("--url", required=True, help="frontend URL, e.g. https://zabbix.example/")
    auth = p.add_mutually_exclusive_group(required=True)
    auth.add_argument("--token", help="API token (Zabbix 5.4+)")
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
    return p


def _password(args: argparse.Namespace, parser: argparse.ArgumentParser) -> str | None:
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
    templates, media_type = args.templates, args.media_type
    if not templates and not media_type:
        templates = media_type = True
    try:
        api = connect(args.url, args.token, args.user, password)
        version = server_version(api)
        fmt = export_format(version) if args.format == "auto" else args.format
        if fmt == "7.0" and version < (7, 0):
            raise ImportFailed(f"7.0 files do not import into Zabbix {version[0]}.{version[1]}", 2)
        docs = documents(rendered_templates(), fmt, templates, media_type)
        if args.check:
            diffs = compare_documents(api, docs)
            for name, changes in diffs.items():
                print(f"{name}: would change:", *changes[:50], sep="\n  ")
            return 6 if diffs else 0
        import_documents(api, docs)
        for doc in docs:
            print(f"imported {doc.name} into Zabbix {version[0]}.{version[1]}")
        if not args.token:
            api.logout()
    except ImportFailed as exc:
        print(
            f"kyoten import: {redact(str(exc), [args.token or '', password or ''])}",
            file=sys.stderr,
        )
        return exc.code
    return 0
