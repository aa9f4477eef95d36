"""Bridge settings: one YAML file, validated all at once into frozen dataclasses.

Every error in the file is collected and reported together (Patroni's validator habit), so an
operator fixes a config in one round instead of one complaint at a time. Secrets may be given
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

from .events import Severity

#: Keys the pipeline consumes from a channel section; the rest goes to the channel's builder.
POLICY_KEYS = frozenset({"type", "rate", "burst", "digest", "mute", "reassert", "retry"})
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
    url: str = ""  # where `kyoten bridge send` posts; default http://listen_host:listen_port
    canary: CanaryConfig | None = None  # None: no alert-path canary

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
        return tuple(sorted((s for s in found if len(s) >= 4), key=len, reverse=True))


class _Reader:
    """Collects errors while reading a mapping with a dotted path for messages."""

    def __init__(self, errors: list[str], base: Path) -> None:
        self.errors = errors
        self.base = base

    def err(self, path: str, msg: str) -> None:
        self.errors.append(f"{path}: {msg}")

    def mapping(self, node: Any, path: str) -> Mapping[str, Any]:
        if node is None:
            return {}
        if not isinstance(node, Mapping):
            self.err(path, "must be a mapping")
            return {}
        return node

    def number(
        self, node: Mapping[str, Any], key: str, path: str, default: float, minimum: float = 0.0
    ) -> float:
        value = node.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or value < minimum:
            self.err(f"{path}.{key}", f"must be a number >= {minimum}")
            return default
        return float(value)

    def integer(
        self, node: Mapping[str, Any], key: str, path: str, default: int, minimum: int = 0
    ) -> int:
        value = node.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            self.err(f"{path}.{key}", f"must be an integer >= {minimum}")
            return default
        return value

    def strings(self, node: Mapping[str, Any], key: str, path: str) -> tuple[str, ...]:
        value = node.get(key)
        if value is None:
            return ()
        if isinstance(value, str):
            return (value,)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.err(f"{path}.{key}", "must be a string or a list of strings")
            return ()
        return tuple(value)

    def secret_files(self, node: Mapping[str, Any], path: str) -> dict[str, Any]:
        """Copy ``node`` replacing every ``<secret>_file`` by the file's stripped content."""
        out = dict(node)
        for key in list(out):
            if key.endswith("_file") and key[: -len("_file")] in SECRET_KEYS:
                target = key[: -len("_file")]
                file = self.base / str(out.pop(key))
                try:
                    out[target] = file.read_text().strip()
                except OSError as exc:
                    self.err(f"{path}.{key}", f"cannot read ({exc.strerror})")
        return out


def _severity(
    r: _Reader, node: Mapping[str, Any], key: str, path: str, default: Severity
) -> Severity:
    value = node.get(key, int(default))
    if isinstance(value, str):
        for s in Severity:
            if value.strip().lower() in (s.name.lower(), s.label.lower()):
                return s
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 5:
        return Severity(value)
    r.err(f"{path}.{key}", f"must be a severity 0-5 or a name, got {value!r}")
    return default


def _time(r: _Reader, value: Any, path: str) -> dt.time:
    try:
        hh, mm = str(value).split(":")
        return dt.time(int(hh), int(mm))
    except ValueError:
        r.err(path, f"must be HH:MM, got {value!r}")
        return dt.time(0, 0)


def _mute(r: _Reader, node: Any, path: str) -> tuple[MuteWindow, ...]:
    if node is None:
        return ()
    if not isinstance(node, list):
        r.err(path, "must be a list of {days, start, end}")
        return ()
    windows = []
    for i, item in enumerate(node):
        p = f"{path}[{i}]"
        m = r.mapping(item, p)
        days = set()
        for d in r.strings(m, "days", p) or _DAYS:
            if d.lower()[:3] not in _DAYS:
                r.err(f"{p}.days", f"unknown day {d!r}")
            else:
                days.add(_DAYS.index(d.lower()[:3]))
        windows.append(
            MuteWindow(
                frozenset(days),
                _time(r, m.get("start"), f"{p}.start"),
                _time(r, m.get("end"), f"{p}.end"),
            )
        )
    return tuple(windows)


def _retry(r: _Reader, node: Any, path: str) -> RetryPolicy:
    m = r.mapping(node, path)
    d = RetryPolicy()
    return RetryPolicy(
        base=r.number(m, "base", path, d.base, 0.001),
        cap=r.number(m, "cap", path, d.cap, 0.001),
        max_attempts=r.integer(m, "max_attempts", path, d.max_attempts, 1),
        max_age=r.number(m, "max_age", path, d.max_age, 1.0),
    )


def _channel(r: _Reader, name: str, node: Any, known_types: Sequence[str]) -> ChannelConfig:
    path = f"channels.{name}"
    m = r.mapping(node, path)
    kind = m.get("type")
    if kind not in known_types:
        r.err(f"{path}.type", f"must be one of {', '.join(sorted(known_types))}, got {kind!r}")
    dg = r.mapping(m.get("digest"), f"{path}.digest")
    settings = r.secret_files({k: v for k, v in m.items() if k not in POLICY_KEYS}, path)
    return ChannelConfig(
        name=name,
        type=str(kind),
        settings=settings,
        rate=r.number(m, "rate", path, 0.0),
        burst=r.integer(m, "burst", path, 1, 1),
        digest=DigestPolicy(
            threshold=r.integer(dg, "threshold", f"{path}.digest", 0),
            window=r.number(dg, "window", f"{path}.digest", 60.0, 1.0),
            max=r.integer(dg, "max", f"{path}.digest", 50, 2),
            interval=r.number(dg, "interval", f"{path}.digest", 10.0, 0.0),
        ),
        mute=_mute(r, m.get("mute"), f"{path}.mute"),
        reassert=r.number(m, "reassert", path, 30.0, 1.0),
        retry=_retry(r, m["retry"], f"{path}.retry") if "retry" in m else None,
    )


def _route(r: _Reader, i: int, node: Any, channels: Sequence[str]) -> Route:
    path = f"routes[{i}]"
    m = r.mapping(node, path)
    known = {
        "channels",
        "min_severity",
        "max_severity",
        "tags",
        "host_groups",
        "send_to",
        "continue",
    }
    for key in m:
        if key not in known:
            r.err(f"{path}.{key}", f"unknown condition (known: {', '.join(sorted(known))})")
    targets = r.strings(m, "channels", path)
    if not targets:
        r.err(f"{path}.channels", "must name at least one channel")
    for t in targets:
        if t not in channels:
            r.err(f"{path}.channels", f"unknown channel {t!r}")
    tags: dict[str, tuple[str, ...]] = {}
    for tag, want in r.mapping(m.get("tags"), f"{path}.tags").items():
        if want is None or want == "*":
            tags[str(tag)] = ()
        elif isinstance(want, str):
            tags[str(tag)] = (want,)
        elif isinstance(want, list) and all(isinstance(w, str) for w in want):
            tags[str(tag)] = tuple(want)
        else:
            r.err(f"{path}.tags.{tag}", "must be a value, a list of values, or '*'")
    cont = m.get("continue", False)
    if not isinstance(cont, bool):
        r.err(f"{path}.continue", "must be true or false")
    lo = _severity(r, m, "min_severity", path, Severity.NOT_CLASSIFIED)
    hi = _severity(r, m, "max_severity", path, Severity.DISASTER)
    if lo > hi:
        r.err(path, "min_severity is above max_severity")
    return Route(
        channels=targets,
        min_severity=lo,
        max_severity=hi,
        tags=tags,
        host_groups=r.strings(m, "host_groups", path),
        send_to=r.strings(m, "send_to", path),
        cont=bool(cont),
    )


def parse_settings(
    data: Any, *, base: Path | None = None, known_types: Sequence[str] | None = None
) -> Settings:
    """Validate a decoded YAML document into :class:`Settings` or raise :class:`ConfigError`.

    :param base: directory that relative ``*_file`` paths are resolved against.
    :param known_types: channel types to accept (default: the channel registry's).
    """
    if known_types is None:
        from .channels import REGISTRY

        known_types = tuple(REGISTRY)
    errors: list[str] = []
    r = _Reader(errors, base or Path.cwd())
    top = r.secret_files(r.mapping(data, "(top)"), "(top)")
    known = {
        "listen",
        "token",
        "node",
        "outbox",
        "retry",
        "channels",
        "routes",
        "max_body",
        "timezone",
        "poll_interval",
        "url",
        "canary",
    }
    for key in top:
        if key not in known:
            r.err(key, "unknown setting")
    token = top.get("token")
    if not isinstance(token, str) or len(token) < 16:
        r.err("token", "must be set (token or token_file), at least 16 characters")
        token = ""
    listen = r.mapping(top.get("listen"), "listen")
    ob = r.secret_files(r.mapping(top.get("outbox"), "outbox"), "outbox")
    backend = ob.get("backend", "sqlite")
    if backend not in ("sqlite", "postgresql"):
        r.err("outbox.backend", "must be sqlite or postgresql")
    sync_value = ob.get("synchronous", "FULL")
    # YAML 1.1 reads a bare OFF as false.
    sync = "OFF" if sync_value is False else str(sync_value).upper()
    if sync not in _SYNC:
        r.err("outbox.synchronous", f"must be one of {', '.join(_SYNC)}")
    if backend == "postgresql" and not ob.get("conninfo"):
        r.err("outbox.conninfo", "required for the postgresql backend (or conninfo_file)")
    outbox = OutboxConfig(
        backend=str(backend),
        path=str(r.base / str(ob.get("path", "kyoten-bridge.db"))),
        synchronous=sync,
        conninfo=str(ob.get("conninfo", "")),
        retention_days=r.number(ob, "retention_days", "outbox", 30.0, 0.01),
    )
    chan_nodes = r.mapping(top.get("channels"), "channels")
    if not chan_nodes:
        r.err("channels", "define at least one channel")
    channels = tuple(_channel(r, str(n), c, known_types) for n, c in chan_nodes.items())
    names = [c.name for c in channels]
    route_nodes = top.get("routes", [])
    if not isinstance(route_nodes, list) or not route_nodes:
        r.err("routes", "must be a non-empty list of rules")
        route_nodes = []
    routes = tuple(_route(r, i, n, names) for i, n in enumerate(route_nodes))
    tz = str(top.get("timezone", "UTC"))
    try:
        zoneinfo.ZoneInfo(tz)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        r.err("timezone", f"unknown time zone {tz!r}")
        tz = "UTC"
    port = r.integer(listen, "port", "listen", 8089, 0)
    if port > 65535:
        r.err("listen.port", "must be 0-65535")
    # every field is read before the errors are reported, so all of them are listed at once
    max_body = r.integer(top, "max_body", "(top)", 64 * 1024, 1024)
    retry = _retry(r, top.get("retry"), "retry")
    poll_interval = r.number(top, "poll_interval", "(top)", 1.0, 0.01)
    canary = _canary(r, top["canary"]) if top.get("canary") is not None else None
    if errors:
        raise ConfigError(errors)
    return Settings(
        token=token,
        channels=channels,
        routes=routes,
        listen_host=str(listen.get("host", "127.0.0.1")),
        listen_port=port,
        max_body=max_body,
        node=str(top.get("node", "bridge")),
        outbox=outbox,
        retry=retry,
        timezone=tz,
        poll_interval=poll_interval,
        url=str(top.get("url", "")),
        canary=canary,
    )


_CANARY_KEYS = frozenset(
    {"servers", "host", "key", "interval", "deadline", "severity", "timeout", "kyoten_config",
     "zabbix_target", "postgres_target", "api_url"}
)  # fmt: skip


def _canary(r: _Reader, node: Any) -> CanaryConfig:
    path = "canary"
    m = r.mapping(node, path)
    for key in m:
        if key not in _CANARY_KEYS:
            r.err(f"{path}.{key}", f"unknown setting (known: {', '.join(sorted(_CANARY_KEYS))})")
    servers = r.strings(m, "servers", path)
    if not servers:
        r.err(f"{path}.servers", "list every Zabbix server node (both sites) as ip:port")
    for s in servers:
        host, _, port = s.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            r.err(f"{path}.servers", f"{s!r} is not ip:port (e.g. 10.0.1.21:10051)")
    d = CanaryConfig(servers=())
    interval = r.number(m, "interval", path, d.interval, 1.0)
    deadline = r.number(m, "deadline", path, 3 * interval, 0.0)
    if deadline < interval:
        r.err(f"{path}.deadline", f"must be at least one interval ({interval:g} s)")
    kyoten_config = str(m.get("kyoten_config", ""))
    for target in ("zabbix_target", "postgres_target"):
        if m.get(target) and not kyoten_config:
            r.err(f"{path}.{target}", "needs canary.kyoten_config (the kyoten.toml naming it)")
    api_url = str(m.get("api_url", ""))
    if api_url and not api_url.startswith(("http://", "https://")):
        r.err(f"{path}.api_url", f"must be an http(s) URL of api_jsonrpc.php, got {api_url!r}")
    return CanaryConfig(
        servers=servers,
        host=str(m.get("host", d.host)),
        key=str(m.get("key", d.key)),
        interval=interval,
        deadline=deadline,
        severity=_severity(r, m, "severity", path, d.severity),
        timeout=r.number(m, "timeout", path, d.timeout, 0.1),
        kyoten_config=kyoten_config,
        zabbix_target=str(m.get("zabbix_target", "")),
        postgres_target=str(m.get("postgres_target", "")),
        api_url=api_url,
    )


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
