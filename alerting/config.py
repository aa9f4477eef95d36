"""Bridge settings: one YAML file, validated all at once into frozen dataclasses.

The file is declared with the shared validator (:mod:`kyoten.common.schema`, the same mechanism
as ``kyoten.toml``): every field — the channels' own settings too, declared per channel type in
:mod:`.channels.settings` — is read and checked before anything is reported, and every problem
is reported together with its field and its fix, so an operator fixes a config in one round
instead of one complaint at a time. Secrets may be given
inline or, better, as ``<key>_file: /path`` (``token_file``, ``password_file``,
``webhook_url_file``, ``conninfo_file``); :meth:`Settings.secrets` lists every resolved secret so
the pipeline can redact them from anything it logs or shows.

Example::

    listen: {host: 127.0.0.1, port: 8089}
    token_file: /etc/kyoten/bridge.token
    node: site-a                      # names this bridge in logs and in the PostgreSQL outbox
    outbox: {backend: sqlite, path: /var/lib/kyoten/bridge.db, synchronous: FULL}
    # outbox: {backend: postgresql, conninfo_file: /etc/kyoten/outbox.conninfo}
    retry: {base: 2, cap: 600, max_attempts: 30, max_age: 172800}
    timezone: Asia/Tokyo              # for mute windows
    channels:
      ops-mail:
        type: mail
        host: smtp.example.com
        port: 587
        security: starttls
        username: kyoten
        password_file: /etc/kyoten/smtp.pw
        from: kyoten@example.com
        to: [ops@example.com]
      ops-slack:
        type: slack
        token_file: /etc/kyoten/slack.token
        channel: "#ops-alerts"
        rate: 1                       # messages per second (Slack: about 1/s per channel)
        burst: 3
        digest: {threshold: 20, window: 60, max: 50, interval: 10}
        mute: [{days: [sat, sun], start: "00:00", end: "08:00"}]
    routes:
      - {min_severity: 4, channels: [ops-slack], continue: true}
      - {tags: {service: db}, host_groups: [Databases], channels: [ops-mail]}
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from kyoten.common import schema as s

from .actions_config import ActionsConfig, parse_actions
from .events import Severity
from .grouping import DEFAULT_BY, GroupPolicy, check_by
from .templating import TEXT_CHANNELS, TemplateSpec, parse_templates

#: Keys whose values are secrets, wherever they appear (channel settings and top level).
SECRET_KEYS = frozenset({"token", "password", "webhook_url", "conninfo", "bot_token"})
_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_SYNC = ("OFF", "NORMAL", "FULL", "EXTRA")


class ConfigError(ValueError):
    """The configuration is invalid; ``errors`` lists every problem found."""

    def __init__(self, errors: Sequence[str]) -> None:
        super().__init__("invalid bridge configuration:\n  " + "\n  ".join(errors))
        self.errors = list(errors)


@dataclass(frozen=True)
class MuteWindow:
    """A weekly window in which a channel is muted. ``end <= start`` crosses midnight."""

    days: frozenset[int]  # 0 = Monday, as datetime.weekday()
    start: dt.time
    end: dt.time

    def active(self, at: dt.datetime) -> bool:
        """Whether local time ``at`` falls in the window (the start day decides)."""
        t = at.time()
        if self.start < self.end:
            return at.weekday() in self.days and self.start <= t < self.end
        if t >= self.start:
            return at.weekday() in self.days
        return (at.weekday() - 1) % 7 in self.days and t < self.end


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter, capped; dead after max attempts or max age."""

    base: float = 1.0
    cap: float = 300.0
    max_attempts: int = 25
    max_age: float = 2 * 86400.0


@dataclass(frozen=True)
class DigestPolicy:
    """Storm control: above ``threshold`` events per ``window`` seconds, the channel sends at most
    one digest (of up to ``max`` events) every ``interval`` seconds instead of one message each."""

    threshold: int = 0  # 0: never digest
    window: float = 60.0
    max: int = 50
    interval: float = 10.0


@dataclass(frozen=True)
class ChannelConfig:
    """One configured channel: pipeline policy plus the builder's own settings."""

    name: str
    type: str
    settings: Mapping[str, Any]
    rate: float = 0.0  # messages per second, 0 = unlimited
    burst: int = 1
    digest: DigestPolicy = field(default_factory=DigestPolicy)
    mute: tuple[MuteWindow, ...] = ()
    reassert: float = 30.0  # state channels: re-apply the full state this often
    retry: RetryPolicy | None = None  # None: the bridge-wide policy
    #: the channel's own texts (kyoten.alerting.templating), None: today's layout
    templates: TemplateSpec | None = None
    #: one incident, one conversation (kyoten.alerting.grouping); None: a message per event
    group: GroupPolicy | None = None


@dataclass(frozen=True)
class Route:
    """One routing rule; all given conditions must hold. First match wins unless ``cont``."""

    channels: tuple[str, ...]
    min_severity: Severity = Severity.NOT_CLASSIFIED
    max_severity: Severity = Severity.DISASTER
    tags: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # () = tag present
    host_groups: tuple[str, ...] = ()  # any of
    send_to: tuple[str, ...] = ()  # any of ({ALERT.SENDTO})
    cont: bool = False


@dataclass(frozen=True)
class OutboxConfig:
    """Where accepted events are made durable."""

    backend: str = "sqlite"
    path: str = "kyoten-bridge.db"
    synchronous: str = "FULL"
    conninfo: str = ""
    retention_days: float = 30.0


@dataclass(frozen=True)
class CanaryConfig:
    """The alert-path canary (:mod:`.canary`): where to send tokens and how to explain silence.

    ``servers`` lists every Zabbix server node of the HA cluster, both sites, as ``ip:port``
    (IP literals: a name with several addresses defeats the sender's failover); a standby node
    refuses the connection and the next one is tried. ``kyoten_config`` with ``zabbix_target``
    (a ``[zabbix.*]`` target) lets the bridge read ``ha_node`` through the collector, and
    ``postgres_target`` whether the Zabbix database is read-only; ``api_url`` is the frontend's
    ``api_jsonrpc.php``. Each is optional and only sharpens the reason given.
    """

    servers: tuple[str, ...]
    host: str = "kyoten-canary"
    key: str = "kyoten.canary"
    interval: float = 60.0
    deadline: float = 180.0
    severity: Severity = Severity.DISASTER
    timeout: float = 5.0
    kyoten_config: str = ""
    zabbix_target: str = ""
    postgres_target: str = ""
    api_url: str = ""
    #: the local SQLite spool the own alert falls back to when the outbox refuses it (a shared
    #: PostgreSQL outbox that is down); relative to the config file's directory
    spool: str = "kyoten-canary-spool.db"


@dataclass(frozen=True)
class ReconcileConfig:
    """Closing problems whose recovery never reached the bridge (:mod:`.reconcile`).

    Zabbix can lose an event (the losing side of a split brain held its database), and a
    recovery can outlive the media type's retries or go undelivered after a manual close: the
    problem would stay open here, and a tower red, for ever. Every ``interval`` the bridge asks
    ``api_url`` which of the problems it holds open (for longer than ``grace``, so an event in
    flight is not judged) Zabbix still has open, as the read-only user of ``token``, which must
    read every host group the bridge alerts on: a problem that user cannot see looks closed.
    """

    api_url: str
    token: str = field(repr=False)
    interval: float = 300.0
    grace: float = 120.0
    timeout: float = 10.0
    verify_certs: bool = True


@dataclass(frozen=True)
class Settings:
    """The whole bridge configuration."""

    token: str
    channels: tuple[ChannelConfig, ...]
    routes: tuple[Route, ...]
    listen_host: str = "127.0.0.1"
    listen_port: int = 8089
    max_body: int = 64 * 1024
    node: str = "bridge"
    outbox: OutboxConfig = field(default_factory=OutboxConfig)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    timezone: str = "UTC"
    poll_interval: float = 1.0
    #: seconds a follow-up (update, recovery) that arrived before its problem waits for it
    follow_up_wait: float = 150.0
    url: str = ""  # where `kyoten bridge send` posts; default http://listen_host:listen_port
    canary: CanaryConfig | None = None  # None: no alert-path canary
    #: the Zabbix frontend's address for links back (overrides {$ZABBIX.URL} of the events)
    zabbix_url: str = ""
    #: acknowledge/close from Slack over Socket Mode (kyoten.alerting.slack_actions)
    slack_actions: ActionsConfig | None = None
    #: close problems Zabbix no longer has open (kyoten.alerting.reconcile); None: never
    reconcile: ReconcileConfig | None = None

    def channel(self, name: str) -> ChannelConfig:
        """The channel called ``name`` (KeyError if none)."""
        for c in self.channels:
            if c.name == name:
                return c
        raise KeyError(name)

    @property
    def intake_url(self) -> str:
        """The URL of ``POST /v1/events`` on this bridge."""
        return self.url or f"http://{self.listen_host}:{self.listen_port}/v1/events"

    def secrets(self) -> tuple[str, ...]:
        """Every secret value in the configuration, longest first (for redaction)."""
        found = {self.token}
        if self.outbox.conninfo:
            found.add(self.outbox.conninfo)
            for part in self.outbox.conninfo.split():
                if part.startswith("password="):
                    found.add(part.partition("=")[2])
        for c in self.channels:
            for key, value in c.settings.items():
                if key in SECRET_KEYS and isinstance(value, str):
                    found.add(value)
        if self.slack_actions is not None:
            found.update(self.slack_actions.secrets())
        if self.reconcile is not None:
            found.add(self.reconcile.token)
        return tuple(sorted((s for s in found if len(s) >= 4), key=len, reverse=True))


# -- the file, declared with the shared validator (kyoten.common.schema) --------------------

_SEVERITIES: dict[str | int, Severity] = {
    **{sev.name.lower(): sev for sev in Severity},
    **{sev.label.lower(): sev for sev in Severity},
    **{int(sev): sev for sev in Severity},
}
_SEVERITY_NAMES = "0-5 or not_classified, information, warning, average, high, disaster"


def _severity(default: Severity) -> s.Choice:
    return s.Choice(default, _SEVERITIES, names=_SEVERITY_NAMES)


def _synchronous(r: s.Reader, path: str, value: Any) -> Any:
    mode = "OFF" if value is False else str(value).upper()  # YAML 1.1 reads a bare OFF as false
    if mode not in _SYNC:
        r.problem(path, f"{value!r} is not one of {', '.join(_SYNC)}",
                  "FULL survives power loss; NORMAL a crash of the bridge")  # fmt: skip
        return s.INVALID
    return mode


def _timezone(r: s.Reader, path: str, value: Any) -> Any:
    try:
        zoneinfo.ZoneInfo(str(value))
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        r.problem(path, f"unknown time zone {value!r}", "an IANA name, e.g. Asia/Tokyo")
        return s.INVALID
    return str(value)


def _day(value: str) -> str | None:
    return None if value.lower()[:3] in _DAYS else f"unknown day {value!r}"


def _retry(**kw: Any) -> s.Section:
    d = RetryPolicy()
    return s.Section(
        {
            "base": s.Number(d.base, minimum=0.001, unit=" s", fix="seconds, e.g. 2"),
            "cap": s.Number(d.cap, minimum=0.001, unit=" s", fix="seconds, e.g. 600"),
            "max_attempts": s.Integer(d.max_attempts, minimum=1,
                                      fix="a whole number of attempts, e.g. 25"),
            "max_age": s.Number(d.max_age, minimum=1.0, unit=" s",
                                fix="seconds, e.g. 172800 (two days)"),
        },
        **kw,
    )  # fmt: skip


_MUTE = s.Section(
    {
        "days": s.Strings(_DAYS, item=_day, fix="e.g. [sat, sun]; all week when left out"),
        "start": s.Time(dt.time(0, 0), required=True),
        "end": s.Time(dt.time(0, 0), required=True),
    }
)


def _group_part(value: str) -> str | None:
    bad = check_by([value])
    return bad[0] if bad else None


#: The pipeline's keys of a channel section; the rest is the channel type's own.
POLICY = s.Section(
    {
        "type": s.String(None),  # required and checked against the registry by _channel
        "rate": s.Number(0.0, minimum=0.0, fix="messages per second, 0 for unlimited"),
        "burst": s.Integer(1, minimum=1),
        "digest": s.Section(
            {
                "threshold": s.Integer(0, minimum=0, fix="events per window; 0: never"),
                "window": s.Number(60.0, minimum=1.0, unit=" s"),
                "max": s.Integer(50, minimum=2),
                "interval": s.Number(10.0, minimum=0.0, unit=" s"),
            }
        ),
        "mute": s.ListOf(_MUTE),
        "reassert": s.Number(30.0, minimum=1.0, unit=" s"),
        "retry": _retry(optional=True),
        # the texts (checked with the templates, see _texts) and one thread per incident
        "templates": s.Custom(lambda r, path, value: value, None, kind="a mapping of "
                              "problem/update/recovery/digest to a template", nullable=True),
        "use_action_message": s.Boolean(False),
        "group": s.Section(
            {
                "by": s.Strings(DEFAULT_BY, item=_group_part,
                                fix="e.g. [tag:scope, host_group] (also host, severity)"),
                "wait": s.Number(10.0, minimum=0.0, unit=" s", fix="group_wait, e.g. 10"),
                "window": s.Number(300.0, minimum=0.0, unit=" s"),
            },
            optional=True,
        ),
    }
)  # fmt: skip
POLICY_KEYS = frozenset(POLICY.fields)


def _texts(r: s.Reader, kind: str, p: Mapping[str, Any], path: str) -> TemplateSpec | None:
    """A channel's templates, compiled and tried on sample events (problems with their line)."""
    if p["templates"] is None and not p["use_action_message"]:
        return None
    if kind not in TEXT_CHANNELS:
        r.problem(s.join(path, "templates"), f"a {kind} channel shows no text",
                  "remove templates/use_action_message here")  # fmt: skip
        return None
    problems: list[str] = []
    spec = parse_templates(p["templates"], p["use_action_message"], path,
                           Path(r.base or "."), problems)  # fmt: skip
    for problem in problems:
        where, _, what = problem.partition(": ")
        r.problem(where, what, "fix the template (Jinja2 syntax; variables in the README)")
    return spec


def _route_check(r: s.Reader, v: dict[str, Any], path: str) -> None:
    if v["min_severity"] > v["max_severity"]:
        r.problem(path, "min_severity is above max_severity", "swap them")


def _tags(r: s.Reader, path: str, value: Any) -> Any:
    if not isinstance(value, Mapping):
        r.problem(path, "must be a mapping of tag to value(s)", "e.g. {service: [db, pgpool]}")
        return s.INVALID
    tags: dict[str, tuple[str, ...]] = {}
    for tag, want in value.items():
        if want is None or want == "*":
            tags[str(tag)] = ()
        elif isinstance(want, str):
            tags[str(tag)] = (want,)
        elif isinstance(want, list) and all(isinstance(w, str) for w in want):
            tags[str(tag)] = tuple(want)
        else:
            r.problem(s.join(path, str(tag)), "must be a value, a list of values, or '*'",
                      "'*' (or nothing) matches any value")  # fmt: skip
    return tags


_ROUTE = s.Section(
    {
        "channels": s.Strings(required=True, nonempty=True, fix="name at least one channel"),
        "min_severity": _severity(Severity.NOT_CLASSIFIED),
        "max_severity": _severity(Severity.DISASTER),
        "tags": s.Custom(_tags, {}, kind="a mapping of tag to value(s)"),
        "host_groups": s.Strings(),
        "send_to": s.Strings(),
        "continue": s.Boolean(False),
    },
    check=_route_check,
)


def _server(value: str) -> str | None:
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        return f"{value!r} is not ip:port (e.g. 10.0.1.21:10051)"
    return None


def _canary_check(r: s.Reader, v: dict[str, Any], path: str) -> None:
    if v["deadline"] is None:
        v["deadline"] = 3 * v["interval"]
    elif v["deadline"] < v["interval"]:
        r.problem(s.join(path, "deadline"), f"must be at least one interval ({v['interval']:g} s)",
                  "give the alert path time for one round at least")  # fmt: skip
    for target in ("zabbix_target", "postgres_target"):
        if v[target] and not v["kyoten_config"]:
            r.problem(s.join(path, target),
                      "needs canary.kyoten_config (the kyoten.toml naming it)",
                      "add kyoten_config: /etc/kyoten/kyoten.toml")  # fmt: skip


_CANARY = s.Section(
    {
        "servers": s.Strings(required=True, nonempty=True, item=_server,
                             fix="list every Zabbix server node (both sites) as ip:port"),
        "host": s.String(CanaryConfig.host, nonempty=True),
        "key": s.String(CanaryConfig.key, nonempty=True),
        "interval": s.Number(CanaryConfig.interval, minimum=1.0, unit=" s"),
        "deadline": s.Number(None, minimum=0.0, unit=" s", fix="default: three intervals"),
        "severity": _severity(CanaryConfig.severity),
        "timeout": s.Number(CanaryConfig.timeout, minimum=0.1, unit=" s"),
        "kyoten_config": s.String(""),
        "zabbix_target": s.String(""),
        "postgres_target": s.String(""),
        "api_url": s.Url("", fix="must be an http(s) URL of api_jsonrpc.php"),
        "spool": s.String(CanaryConfig.spool, nonempty=True),
    },
    check=_canary_check,
    optional=True,
)  # fmt: skip


_RECONCILE = s.Section(
    {
        "api_url": s.Url("", fix="the frontend's api_jsonrpc.php URL; default: zabbix_url + "
                         "/api_jsonrpc.php"),
        "token": s.Secret("", required=True, nonempty=True,
                          fix="set token_file to a file holding the Zabbix API token of a "
                          "read-only user that reads every alerting host group"),
        "interval": s.Number(ReconcileConfig.interval, minimum=1.0, unit=" s"),
        "grace": s.Number(ReconcileConfig.grace, minimum=0.0, unit=" s",
                          fix="seconds an open problem is left alone, e.g. 120 (longer than "
                          "an alert takes from Zabbix to the bridge)"),
        "timeout": s.Number(ReconcileConfig.timeout, minimum=0.1, unit=" s"),
        "verify_certs": s.Boolean(True),
    },
    optional=True,
)  # fmt: skip


def _outbox_check(r: s.Reader, v: dict[str, Any], path: str) -> None:
    if v["backend"] == "postgresql" and not v["conninfo"]:
        r.problem(s.join(path, "conninfo"), "required for the postgresql backend",
                  "give conninfo_file: a file holding the libpq conninfo")  # fmt: skip


def _token(value: str) -> str | None:
    return None if len(value) >= 16 else "must be at least 16 characters"


def _file(known_types: Sequence[str]) -> s.Section:
    """The whole of bridge.yaml."""
    from .channels.settings import SCHEMAS

    kinds = ", ".join(sorted(known_types))

    def channel(r: s.Reader, path: str, body: Any) -> Any:
        name = path.partition(".")[2]
        if not isinstance(body, Mapping):
            r.problem(path, "must be a mapping of settings", "give at least its type")
            body = {}
        kind = body.get("type")
        if kind is None:  # POLICY reports it missing: one problem per field
            r.problem(s.join(path, "type"), "missing", f"add type: one of {kinds}")
        elif kind not in known_types:
            r.problem(s.join(path, "type"), f"must be one of {kinds}, got {kind!r}",
                      "see the channel types in the README")  # fmt: skip
        own = {k: v for k, v in body.items() if k not in POLICY_KEYS}
        schema = SCHEMAS.get(str(kind))
        if schema is not None:
            settings = schema.values(r, own, path)
        else:  # a type registered without a schema: as written, secrets read from files
            settings = s.Section(
                {k.removesuffix("_file"): s.Secret() for k in own if _secret_file(k)},
                extra=[k for k in own if not _secret_file(k)],
            ).values(r, own, path)
            settings = {**{k: v for k, v in own.items() if not _secret_file(k)}, **settings}
        p = POLICY.values(r, {k: v for k, v in body.items() if k in POLICY_KEYS}, path)
        dg = p["digest"]
        return ChannelConfig(
            name=name,
            type=str(kind),
            settings=settings,
            rate=p["rate"],
            burst=p["burst"],
            digest=DigestPolicy(dg["threshold"], dg["window"], dg["max"], dg["interval"]),
            mute=tuple(_window(w) for w in p["mute"]),
            reassert=p["reassert"],
            retry=None if p["retry"] is None else RetryPolicy(**p["retry"]),
            templates=_texts(r, str(kind), p, path),
            group=None if p["group"] is None else GroupPolicy(
                tuple(p["group"]["by"]), p["group"]["wait"], p["group"]["window"]),
        )  # fmt: skip

    def whole(r: s.Reader, v: dict[str, Any], path: str) -> None:
        names = set(v["channels"])
        if not names:
            r.problem("channels", "define at least one channel", "see the README's examples")
        rc = v["reconcile"]
        if isinstance(rc, dict) and not rc["api_url"]:
            if v["zabbix_url"]:
                rc["api_url"] = f"{v['zabbix_url'].rstrip('/')}/api_jsonrpc.php"
            elif not any(p.startswith("reconcile.api_url:") for p in r.problems):
                r.problem("reconcile.api_url",
                          "required: where to ask Zabbix which problems are still open",
                          "give api_url, or zabbix_url at the top level")  # fmt: skip
        for i, rule in enumerate(v["routes"]):
            for t in rule["channels"]:
                if t not in names:
                    r.problem(f"routes[{i}].channels", f"unknown channel {t!r}",
                              "name a channel defined under channels:")  # fmt: skip

    return s.Section(
        {
            "listen": s.Section(
                {
                    "host": s.String("127.0.0.1", nonempty=True),
                    "port": s.Integer(8089, minimum=0, maximum=65535),
                }
            ),
            "token": s.Secret("", required=True, check=_token,
                              fix="set token_file to a file holding a random string of at "
                              "least 16 characters"),
            "node": s.String("bridge", nonempty=True),
            "outbox": s.Section(
                {
                    "backend": s.Choice("sqlite", {"sqlite": "sqlite",
                                                   "postgresql": "postgresql"}),
                    "path": s.String("kyoten-bridge.db", nonempty=True),
                    "synchronous": s.Custom(_synchronous, "FULL", kind="a synchronous mode"),
                    "conninfo": s.Secret(""),
                    "retention_days": s.Number(30.0, minimum=0.01, fix="days, e.g. 30"),
                },
                check=_outbox_check,
            ),
            "retry": _retry(),
            "channels": s.Table(channel, required=True,
                                fix="define at least one channel under channels:"),
            "routes": s.ListOf(_ROUTE, required=True, nonempty=True,
                               fix="a list of rules, e.g. [{channels: [ops-mail]}]"),
            "max_body": s.Integer(64 * 1024, minimum=1024, fix="bytes; Zabbix's events "
                                  "are a few KiB, long operational data some tens"),
            "timezone": s.Custom(_timezone, "UTC", kind="a time zone"),
            "poll_interval": s.Number(1.0, minimum=0.01, unit=" s"),
            "follow_up_wait": s.Number(150.0, minimum=0.0, unit=" s",
                                       fix="at least the media type's attempts x interval"),
            "url": s.Url("", fix="where kyoten bridge send posts, e.g. "
                         "http://127.0.0.1:8089/v1/events"),
            "canary": _CANARY,
            "zabbix_url": s.Url("", fix="the frontend's address, e.g. https://zabbix.example "
                                "(links back to events and hosts)"),
            "slack_actions": s.Custom(lambda r, path, value: value, None, nullable=True,
                                      kind="a mapping (app_token_file, slack_channel, users)"),
            "reconcile": _RECONCILE,
        },
        check=whole,
    )  # fmt: skip


def _secret_file(key: str) -> bool:
    return key.endswith("_file") and key.removesuffix("_file") in SECRET_KEYS


def _window(w: Mapping[str, Any]) -> MuteWindow:
    days = frozenset(_DAYS.index(d.lower()[:3]) for d in w["days"] if _day(d) is None)
    return MuteWindow(days, w["start"], w["end"])


def parse_settings(
    data: Any, *, base: Path | None = None, known_types: Sequence[str] | None = None
) -> Settings:
    """Validate a decoded YAML document into :class:`Settings` or raise :class:`ConfigError`
    listing every problem in the file, each with its field and its fix (channels' own settings
    included: each type's are declared in :mod:`.channels.settings`).

    :param base: directory that relative ``*_file`` and outbox paths are resolved against.
    :param known_types: channel types to accept (default: the channel registry's).
    """
    if known_types is None:
        from .channels import REGISTRY

        known_types = tuple(REGISTRY)
    where = base or Path.cwd()
    v, problems = s.validate(_file(known_types), data, base=str(where))
    actions = _actions(v, where, problems)
    if problems:
        raise ConfigError(problems)
    ob, cn = v["outbox"], v["canary"]
    return Settings(
        token=v["token"],
        channels=tuple(v["channels"].values()),
        routes=tuple(
            Route(
                channels=rule["channels"],
                min_severity=rule["min_severity"],
                max_severity=rule["max_severity"],
                tags=rule["tags"],
                host_groups=rule["host_groups"],
                send_to=rule["send_to"],
                cont=rule["continue"],
            )
            for rule in v["routes"]
        ),
        listen_host=v["listen"]["host"],
        listen_port=v["listen"]["port"],
        max_body=v["max_body"],
        node=v["node"],
        outbox=OutboxConfig(
            backend=ob["backend"],
            path=str(where / ob["path"]),
            synchronous=ob["synchronous"],
            conninfo=ob["conninfo"],
            retention_days=ob["retention_days"],
        ),
        retry=RetryPolicy(**v["retry"]),
        timezone=v["timezone"],
        poll_interval=v["poll_interval"],
        follow_up_wait=v["follow_up_wait"],
        url=v["url"],
        canary=None if cn is None else CanaryConfig(**{**cn, "spool": str(where / cn["spool"])}),
        zabbix_url=v["zabbix_url"],
        slack_actions=actions,
        reconcile=None if v["reconcile"] is None else ReconcileConfig(**v["reconcile"]),
    )


def _actions(v: Mapping[str, Any], base: Path, problems: list[str]) -> ActionsConfig | None:
    """``slack_actions`` (read with the rest: its problems join the others), and the check that
    a Slack channel with ``buttons: true`` has something to receive the clicks."""
    channels = v["channels"] if isinstance(v.get("channels"), Mapping) else {}
    slack = {n: c.settings for n, c in channels.items()
             if isinstance(c, ChannelConfig) and c.type == "slack"}  # fmt: skip
    actions = parse_actions(
        v.get("slack_actions"),
        slack_channels=slack,
        zabbix_url=str(v.get("zabbix_url") or ""),
        read_file=lambda name: (base / name).read_text(),
        problems=problems,
    )
    for name, settings in slack.items():
        if settings.get("buttons") and actions is None:
            problems.append(
                f"channels.{name}.buttons: nothing receives the clicks; add a slack_actions "
                "section (Socket Mode), or remove buttons"
            )
    return actions


def load_settings(path: str | Path) -> Settings:
    """Read and validate the YAML file at ``path``."""
    p = Path(path)
    try:
        data = yaml.safe_load(p.read_text())
    except OSError as exc:
        raise ConfigError([f"{p}: cannot read ({exc.strerror})"]) from None
    except yaml.YAMLError as exc:
        raise ConfigError([f"{p}: not valid YAML ({exc})"]) from None
    return parse_settings(data, base=p.parent)
