"""The event model and its pure parser from the Zabbix macros the media type sends.

Zabbix hands the webhook one flat JSON object of strings (``value`` in the media type's script),
built from the parameter list in :mod:`kyoten.alerting.mediatype`. This module turns that object
into an :class:`Event` or raises :class:`InvalidEvent` naming the field and the reason, so the
intake can answer a precise 4xx and store nothing. No I/O happens here: the parser is a pure
function, which is what lets the contract test feed it exactly what the media type would send.

Three kinds are told apart by the macros, as Zabbix's own templates do:

========  =====================================================
problem   ``{EVENT.VALUE}=1`` and ``{EVENT.UPDATE.STATUS}=0``
update    ``{EVENT.UPDATE.STATUS}=1`` (ack, unack, comment, severity change, close, ...)
recovery  ``{EVENT.VALUE}=0`` and ``{EVENT.UPDATE.STATUS}=0``
========  =====================================================

``{EVENT.UPDATE.ACTION}`` is free text (ZBXNEXT-4765), comma-joined when one update does several
things; :func:`parse_update_actions` maps it to :class:`UpdateAction` flags and keeps the text.
"""

from __future__ import annotations

import enum
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

#: Bumped when the parameter contract changes incompatibly; the media type sends it as
#: ``kyoten_schema`` so a bridge and a media type of different generations fail loudly.
SCHEMA_VERSION = "1"

#: Zabbix leaves a macro it cannot resolve in place (``{EVENT.UPDATE.ACTION}`` in a problem
#: alert) or writes ``*UNKNOWN*``; both mean "no value" to the parser.
_UNRESOLVED = re.compile(r"^(\{[A-Z0-9_.]+(?:\.[A-Z0-9_]+)*\}|\*UNKNOWN\*)$")

#: Tags per event. Field *lengths* are not limited here: the intake's body limit
#: (``max_body``) is the only size limit, a long ``{EVENT.OPDATA}`` or alert message is normal,
#: and each channel truncates what it sends to what its far end accepts (the outbox keeps the
#: full text).
_MAX_TAGS = 200


class InvalidEvent(ValueError):
    """The payload is not a valid event; ``field`` names the culprit for the 4xx answer."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


class Kind(enum.StrEnum):
    """What happened to the problem: opened, updated by a person, or resolved."""

    PROBLEM = "problem"
    UPDATE = "update"
    RECOVERY = "recovery"


class Severity(enum.IntEnum):
    """Zabbix trigger severities, ``{EVENT.NSEVERITY}``."""

    NOT_CLASSIFIED = 0
    INFORMATION = 1
    WARNING = 2
    AVERAGE = 3
    HIGH = 4
    DISASTER = 5

    @property
    def label(self) -> str:
        """The name Zabbix shows (``Not classified``, ``High``, ...)."""
        return self.name.replace("_", " ").capitalize()


class UpdateAction(enum.StrEnum):
    """One thing an update did; several may come in one update."""

    ACKNOWLEDGE = "acknowledge"
    UNACKNOWLEDGE = "unacknowledge"
    COMMENT = "comment"
    SEVERITY = "severity"
    CLOSE = "close"
    SUPPRESS = "suppress"
    UNSUPPRESS = "unsuppress"


# Longest prefixes first: "unacknowledged" must not be read as "acknowledged".
_ACTION_WORDS: tuple[tuple[str, UpdateAction], ...] = (
    ("unacknowledged", UpdateAction.UNACKNOWLEDGE),
    ("acknowledged", UpdateAction.ACKNOWLEDGE),
    ("commented", UpdateAction.COMMENT),
    ("changed severity", UpdateAction.SEVERITY),
    ("closed", UpdateAction.CLOSE),
    ("unsuppressed", UpdateAction.UNSUPPRESS),
    ("suppressed", UpdateAction.SUPPRESS),
)


@dataclass(frozen=True, slots=True)
class Tag:
    """One Zabbix event tag (``{EVENT.TAGSJSON}`` entry)."""

    tag: str
    value: str = ""


@dataclass(frozen=True, slots=True)
class Update:
    """What a person did to the problem: the actions, their text, the comment and who."""

    actions: frozenset[UpdateAction]
    action_text: str
    message: str = ""
    user: str = ""
    at: str = ""  # "{EVENT.UPDATE.DATE} {EVENT.UPDATE.TIME}", as Zabbix formats it
    new_severity: Severity | None = None


@dataclass(frozen=True, slots=True)
class Event:
    """One Zabbix event as the bridge stores, routes and renders it."""

    event_id: str
    kind: Kind
    severity: Severity
    name: str
    host: str
    trigger_id: str = ""
    host_groups: tuple[str, ...] = ()
    tags: tuple[Tag, ...] = ()
    opdata: str = ""
    started: str = ""  # "{EVENT.DATE} {EVENT.TIME}"
    recovered: str = ""  # "{EVENT.RECOVERY.DATE} {EVENT.RECOVERY.TIME}"
    acknowledged: bool = False
    source: int = 0
    update: Update | None = None
    send_to: str = ""
    subject: str = ""
    message: str = ""
    extra: Mapping[str, str] = field(default_factory=dict)
    #: ``{HOST.ID}``, for the link to the host in the frontend (:mod:`.links`)
    host_id: str = ""
    #: the trigger allows closing the problem by hand (tag ``manual_close: yes``, see
    #: :data:`kyoten.alerting.mediatype.MANUAL_CLOSE_TAG`): Slack offers *Close* then
    manual_close: bool = False
    #: the frontend's address (``{$ZABBIX.URL}``, or ``zabbix_url`` of the bridge's config)
    zabbix_url: str = ""

    @property
    def dedup_key(self) -> str:
        """The key under which Zabbix's retries of this very alert collapse to one row.

        A problem and its recovery happen once per event id. Updates happen many times, so their
        key hashes what identifies one update: when, who, which actions and what comment.
        """
        if self.kind is Kind.PROBLEM:
            return f"{self.event_id}:P"
        if self.kind is Kind.RECOVERY:
            return f"{self.event_id}:R"
        assert self.update is not None
        u = self.update
        ident = "\x1f".join(
            (u.at, u.user, u.action_text, u.message, str(u.new_severity or "")),
        )
        return f"{self.event_id}:U:{hashlib.sha256(ident.encode()).hexdigest()[:20]}"

    @property
    def closes(self) -> bool:
        """True when this event ends the problem: a recovery, or an update that closed it."""
        return self.kind is Kind.RECOVERY or (
            self.update is not None and UpdateAction.CLOSE in self.update.actions
        )

    def tag_values(self, name: str) -> tuple[str, ...]:
        """All values of tag ``name`` (a tag may repeat with different values)."""
        return tuple(t.value for t in self.tags if t.tag == name)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict; :func:`event_from_json` reads it back (stored in the outbox)."""
        upd = None
        if self.update is not None:
            upd = {
                "actions": sorted(a.value for a in self.update.actions),
                "action_text": self.update.action_text,
                "message": self.update.message,
                "user": self.update.user,
                "at": self.update.at,
                "new_severity": None
                if self.update.new_severity is None
                else int(self.update.new_severity),
            }
        return {
            "event_id": self.event_id,
            "kind": self.kind.value,
            "severity": int(self.severity),
            "name": self.name,
            "host": self.host,
            "trigger_id": self.trigger_id,
            "host_groups": list(self.host_groups),
            "tags": [[t.tag, t.value] for t in self.tags],
            "opdata": self.opdata,
            "started": self.started,
            "recovered": self.recovered,
            "acknowledged": self.acknowledged,
            "source": self.source,
            "update": upd,
            "send_to": self.send_to,
            "subject": self.subject,
            "message": self.message,
            "extra": dict(self.extra),
            "host_id": self.host_id,
            "manual_close": self.manual_close,
            "zabbix_url": self.zabbix_url,
        }


def event_from_json(data: Mapping[str, Any]) -> Event:
    """Inverse of :meth:`Event.to_json` (trusted input: our own store)."""
    upd = data.get("update")
    update = None
    if upd:
        ns = upd.get("new_severity")
        update = Update(
            actions=frozenset(UpdateAction(a) for a in upd["actions"]),
            action_text=upd["action_text"],
            message=upd["message"],
            user=upd["user"],
            at=upd["at"],
            new_severity=None if ns is None else Severity(ns),
        )
    return Event(
        event_id=data["event_id"],
        kind=Kind(data["kind"]),
        severity=Severity(data["severity"]),
        name=data["name"],
        host=data["host"],
        trigger_id=data["trigger_id"],
        host_groups=tuple(data["host_groups"]),
        tags=tuple(Tag(t, v) for t, v in data["tags"]),
        opdata=data["opdata"],
        started=data["started"],
        recovered=data["recovered"],
        acknowledged=data["acknowledged"],
        source=data["source"],
        update=update,
        send_to=data["send_to"],
        subject=data["subject"],
        message=data["message"],
        extra=dict(data.get("extra", {})),
        host_id=data.get("host_id", ""),
        manual_close=bool(data.get("manual_close", False)),
        zabbix_url=data.get("zabbix_url", ""),
    )


def parse_update_actions(text: str) -> frozenset[UpdateAction]:
    """Map ``{EVENT.UPDATE.ACTION}`` free text (comma-joined phrases) to action flags.

    Unknown phrases are ignored here; the raw text travels on in :attr:`Update.action_text`,
    so a future Zabbix wording is shown to people even if no flag is set for it.
    """
    found: set[UpdateAction] = set()
    for part in text.split(","):
        phrase = part.strip().lower()
        for word, action in _ACTION_WORDS:
            if phrase.startswith(word):
                found.add(action)
                break
    return frozenset(found)


def _clean(value: str) -> str:
    value = value.strip()
    if value[:1] not in ("{", "*"):  # the common case, without a regex
        return value
    return "" if _UNRESOLVED.match(value) else value


def _joined(*parts: str) -> str:
    return " ".join(p for p in parts if p)


class _Fields:
    """Typed access to the flat string payload with precise error reasons."""

    def __init__(self, payload: Mapping[str, Any]) -> None:
        for key, value in payload.items():
            if not isinstance(value, str):
                raise InvalidEvent(key, f"must be a string, got {type(value).__name__}")
        self._p: Mapping[str, str] = payload

    def opt(self, name: str) -> str:
        return _clean(self._p.get(name, ""))

    def req(self, name: str) -> str:
        if name not in self._p:
            raise InvalidEvent(name, "missing")
        value = _clean(self._p[name])
        if not value:
            raise InvalidEvent(name, "empty or an unresolved macro")
        return value

    def flag(self, name: str, *, required: bool = True) -> bool:
        value = self.req(name) if required else self.opt(name)
        if value in ("0", ""):
            return False
        if value == "1":
            return True
        raise InvalidEvent(name, f"must be 0 or 1, got {value!r}")

    def severity(self, name: str, *, required: bool = True) -> Severity | None:
        value = self.req(name) if required else self.opt(name)
        if not value and not required:
            return None
        if not value.isdigit() or int(value) > 5:
            raise InvalidEvent(name, f"must be a severity 0-5, got {value!r}")
        return Severity(int(value))


def _parse_tags(raw: str) -> tuple[Tag, ...]:
    if not raw:
        return ()
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidEvent("event_tags", f"not JSON ({exc.msg})") from None
    if not isinstance(data, list):
        raise InvalidEvent("event_tags", "must be a JSON array of {tag, value}")
    if len(data) > _MAX_TAGS:
        raise InvalidEvent("event_tags", f"more than {_MAX_TAGS} tags")
    tags = []
    for i, item in enumerate(data):
        if not isinstance(item, dict) or not isinstance(item.get("tag"), str):
            raise InvalidEvent("event_tags", f"entry {i} is not an object with a string 'tag'")
        value = item.get("value", "")
        if not isinstance(value, str):
            raise InvalidEvent("event_tags", f"entry {i}: 'value' must be a string")
        tags.append(Tag(item["tag"], value))
    return tuple(tags)


def _split_groups(raw: str) -> tuple[str, ...]:
    # {TRIGGER.HOSTGROUP.NAME} is a sorted, comma+space separated list of group names.
    return tuple(g.strip() for g in raw.split(", ") if g.strip()) if raw else ()


def parse_event(payload: Any) -> Event:
    """Build an :class:`Event` from the media type's JSON object, or raise InvalidEvent.

    :param payload: the decoded request body (any JSON value; anything but an object of
        strings is rejected).
    :raises InvalidEvent: with the offending field and a reason fit for a 400 answer.
    """
    if not isinstance(payload, dict):
        raise InvalidEvent("body", "must be a JSON object of parameter name to string")
    f = _Fields(payload)
    schema = f.req("kyoten_schema")
    if schema != SCHEMA_VERSION:
        raise InvalidEvent(
            "kyoten_schema", f"this bridge speaks schema {SCHEMA_VERSION}, got {schema!r}"
        )
    event_id = f.req("event_id")
    if not event_id.isdigit():
        raise InvalidEvent("event_id", f"must be a decimal event id, got {event_id!r}")
    value = f.flag("event_value")
    is_update = f.flag("event_update_status")
    severity = f.severity("event_nseverity")
    assert severity is not None
    source_text = f.opt("event_source") or "0"
    if not source_text.isdigit() or int(source_text) > 4:
        raise InvalidEvent("event_source", f"must be 0-4, got {source_text!r}")

    update = None
    if is_update:
        action_text = f.req("event_update_action")
        actions = parse_update_actions(action_text)
        new_severity = f.severity("event_update_nseverity", required=False)
        update = Update(
            actions=actions,
            action_text=action_text,
            message=f.opt("event_update_message"),
            user=f.opt("user_fullname"),
            at=_joined(f.opt("event_update_date"), f.opt("event_update_time")),
            new_severity=new_severity if UpdateAction.SEVERITY in actions else None,
        )
        if update.new_severity is not None:
            severity = update.new_severity
        kind = Kind.UPDATE
    else:
        kind = Kind.PROBLEM if value else Kind.RECOVERY

    ack = f.opt("event_ack_status").lower()
    host_id = f.opt("host_id")
    url = f.opt("zabbix_url")  # an undefined {$ZABBIX.URL} stays as written: not a URL
    return Event(
        event_id=event_id,
        kind=kind,
        severity=severity,
        name=f.opt("event_name") or f.opt("trigger_name") or f"event {event_id}",
        host=f.req("host_name"),
        trigger_id=f.opt("trigger_id"),
        host_groups=_split_groups(f.opt("host_groups")),
        tags=_parse_tags(f.opt("event_tags")),
        opdata=f.opt("event_opdata"),
        started=_joined(f.opt("event_date"), f.opt("event_time")),
        recovered=_joined(f.opt("event_recovery_date"), f.opt("event_recovery_time")),
        acknowledged=ack in ("yes", "1", "true"),
        source=int(source_text),
        update=update,
        send_to=f.opt("alert_sendto"),
        subject=f.opt("alert_subject"),
        message=f.opt("alert_message"),
        host_id=host_id if host_id.isdigit() else "",
        manual_close=f.opt("trigger_manual_close").lower() in ("yes", "1", "true"),
        zabbix_url=url if url.startswith(("http://", "https://")) else "",
    )
