"""Each channel type's own settings, declared with the shared validator
(:mod:`kyoten.common.schema`), so ``bridge.yaml`` is checked in one pass — the channels'
settings with everything else — and the builders read the very same declaration.

Light on purpose: the configuration is read by ``kyoten bridge send`` (run by Zabbix once per
alert) too, so nothing here imports a channel's client library; the tower URL's check imports
the tower drivers' URL parser only when a tower is configured.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from kyoten.common import schema as s

#: Default Web API base URL (slack-sdk's ``AsyncWebClient.BASE_URL``).
SLACK_API = "https://slack.com/api/"
_PORTS = {"none": 25, "starttls": 587, "tls": 465}


def _address(value: str) -> str | None:
    return None if "@" in value.strip("@") else f"{value!r} is not an e-mail address"


def _mail_check(r: s.Reader, v: dict[str, Any], path: str) -> None:
    if bool(v["username"]) != bool(v["password"]):
        r.problem(path, "username and password go together", "give both, or neither")
    if v["port"] is None:
        v["port"] = _PORTS[v["security"]]


MAIL = s.Section(
    {
        "host": s.String(None, required=True, nonempty=True, fix="the SMTP server's name"),
        "port": s.Integer(None, minimum=1, maximum=65535, fix="default: 25, 587 or 465 by "
                          "security"),
        "security": s.Choice("starttls", {k: k for k in _PORTS}),
        "username": s.String(""),
        "password": s.Secret(""),
        "from": s.String("kyoten@localhost", required=True, check=_address,
                         fix="the sender's address, e.g. kyoten@example.com"),
        "to": s.Strings(required=True, nonempty=True, item=_address,
                        fix="one or more addresses, e.g. [ops@example.com]"),
        "timeout": s.Number(30.0, above=0, unit=" s"),
        "verify": s.Boolean(True),
        "domain": s.String(""),
    },
    check=_mail_check,
)  # fmt: skip


SLACK = s.Section(
    {
        "token": s.Secret(None, required=True, nonempty=True,
                          fix="the bot token (xoxb-…), best as token_file"),
        "channel": s.String(None, required=True, nonempty=True,
                            fix='the channel\'s name or ID, e.g. "#ops-alerts"'),
        "base_url": s.Url(SLACK_API, fix="leave it out (Slack's API), or a proxy's or a "
                          "fake's URL ending in /api/"),
        "timeout": s.Number(30.0, above=0, unit=" s"),
        "ack_reaction": s.String("white_check_mark", nonempty=True),
        # Acknowledge/Close buttons on problem messages (needs the slack_actions section)
        "buttons": s.Boolean(False),
    }
)  # fmt: skip


def _http_url(value: str) -> str | None:  # a secret: the message never shows it
    parts = urlsplit(value)
    return None if parts.scheme in ("http", "https") and parts.hostname else "not an http(s) URL"


SLACK_WEBHOOK = s.Section(
    {
        "webhook_url": s.Secret(None, required=True, nonempty=True, check=_http_url,
                                fix="the incoming webhook's URL, best as webhook_url_file"),
        "timeout": s.Number(30.0, above=0, unit=" s"),
    }
)  # fmt: skip


def _tower_url(value: str) -> str | None:
    from kyoten.hardware.errors import TowerConfigError
    from kyoten.hardware.tower import build_codec

    try:
        build_codec(value)
    except TowerConfigError as exc:
        return str(exc)
    return None


def _tower_check(r: s.Reader, v: dict[str, Any], path: str) -> None:
    from kyoten.hardware.errors import TowerConfigError

    from ..tower_policy import TowerPolicy

    if v["password"] is not None and urlsplit(v["url"] or "").scheme not in ("http", "https"):
        r.problem(s.join(path, "password"), "only HTTP towers take a password", "remove it")
    try:
        policy = TowerPolicy.from_settings(v)
    except TowerConfigError as exc:
        for e in str(exc).split("; "):
            r.problem(path, e, "see the colours/idle/buzzer/silence_after settings")
        return
    if v["url"] and _tower_url(v["url"]) is None:
        from kyoten.hardware.tower import build_codec

        codec = build_codec(v["url"])
        if policy.buzzer > codec.max_buzzer:
            r.problem(
                s.join(path, "buzzer"),
                f"{codec.name} has buzzer patterns 1..{codec.max_buzzer}, not {policy.buzzer}",
                f"use 1..{codec.max_buzzer}",
            )


def _as_is(r: s.Reader, path: str, value: Any) -> Any:
    return value  # checked, with the other lamp settings, by TowerPolicy.from_settings


TOWER = s.Section(
    {
        "url": s.String(None, required=True, nonempty=True, check=_tower_url,
                        fix="e.g. pns://10.0.0.5:10000?model=nh"),
        "username": s.String("admin", nonempty=True),
        "password": s.Secret(None),
        "timeout": s.Number(3.0, above=0, unit=" s", fix="seconds per command, e.g. 3"),
        "retries": s.Integer(0, minimum=0, fix="leave it out: the bridge's retry: policy "
                             "retries a tower"),
        "readback": s.Boolean(True),
        "colours": s.Custom(_as_is, {}, kind="severity: colour"),
        "idle": s.Custom(_as_is, "green", kind="a colour", nullable=True),
        "buzzer": s.Custom(_as_is, 1, kind="a buzzer pattern"),
        "silence_after": s.Custom(_as_is, 300.0, kind="seconds", nullable=True),
    },
    check=_tower_check,
)  # fmt: skip

#: channel type → its settings (types registered without one get their settings as written)
SCHEMAS: Mapping[str, s.Section] = {
    "mail": MAIL,
    "slack": SLACK,
    "slack-webhook": SLACK_WEBHOOK,
    "tower": TOWER,
}


def check(schema: s.Section, name: str, settings: Mapping[str, Any]) -> dict[str, Any]:
    """``settings`` of channel ``name`` read with ``schema``, or ConfigError listing every
    problem (what a builder calls; the bridge's config has already done it once)."""
    from ..config import ConfigError

    values, problems = s.validate(schema, dict(settings), path=f"channels.{name}")
    if problems:
        raise ConfigError(problems)
    return values
