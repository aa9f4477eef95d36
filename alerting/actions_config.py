"""The ``slack_actions`` section of ``bridge.yaml``, read without loading Slack or aiohttp.

Kept apart from :mod:`kyoten.alerting.slack_actions` (which runs Socket Mode) because the
configuration is also read by ``kyoten bridge send``, once per alert, where importing the
Socket Mode client would cost for nothing. See that module for what the settings do.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class UserMapping:
    """One Slack user allowed to act, as which Zabbix user, with that user's own API token."""

    slack_user: str
    zabbix_user: str
    token: str = field(repr=False)
    allow_super_admin: bool = False


@dataclass(frozen=True)
class ActionsConfig:
    """The ``slack_actions`` section, resolved (bot token and base URL from the named Slack
    channel, the API URL from ``zabbix_url`` when not given)."""

    app_token: str = field(repr=False)
    bot_token: str = field(repr=False)
    slack_channel: str
    api_url: str
    users: Mapping[str, UserMapping]
    base_url: str = "https://slack.com/api/"
    verify_certs: bool = True
    timeout: float = 10.0

    def secrets(self) -> tuple[str, ...]:
        """Every secret of the section (for the bridge's redaction)."""
        return (self.app_token, self.bot_token, *(u.token for u in self.users.values()))


# -- configuration ------------------------------------------------------------------------------


def parse_actions(
    node: Any,
    *,
    slack_channels: Mapping[str, Mapping[str, Any]],
    zabbix_url: str,
    read_file: Any,
    problems: list[str],
) -> ActionsConfig | None:
    """Read the ``slack_actions`` section; every problem goes to ``problems`` (``path: what``).

    :param slack_channels: the configured channels of type ``slack``, name → settings (their
        bot token and base URL answer the clicks).
    :param read_file: ``read_file(path) -> str`` for the ``*_file`` keys (raises OSError).
    """
    path = "slack_actions"
    if node is None:
        return None
    if not isinstance(node, Mapping):
        problems.append(f"{path}: must be a mapping (app_token_file, slack_channel, users)")
        return None
    known = {"app_token", "app_token_file", "slack_channel", "api_url", "users", "verify_certs",
             "timeout"}  # fmt: skip
    for key in node:
        if key not in known:
            problems.append(f"{path}.{key}: unknown setting (known: {', '.join(sorted(known))})")

    def secret(m: Mapping[str, Any], key: str, where: str) -> str:
        if f"{key}_file" in m:
            try:
                return str(read_file(str(m[f"{key}_file"]))).strip()
            except OSError as exc:
                problems.append(f"{where}.{key}_file: cannot read ({exc.strerror})")
                return ""
        value = m.get(key)
        if not isinstance(value, str) or not value:
            problems.append(f"{where}.{key}: required (best as {key}_file)")
            return ""
        return value

    app_token = secret(node, "app_token", path)
    if app_token and not app_token.startswith("xapp-"):
        problems.append(f"{path}.app_token: not an app-level token (xapp-…, connections:write)")
    name = node.get("slack_channel")
    channel = slack_channels.get(str(name)) if isinstance(name, str) else None
    if channel is None:
        problems.append(
            f"{path}.slack_channel: must name a channel of type slack "
            f"({', '.join(sorted(slack_channels)) or 'none configured'})"
        )
        channel = {}
    api_url = node.get("api_url") or (
        f"{zabbix_url.rstrip('/')}/api_jsonrpc.php" if zabbix_url else ""
    )
    if not isinstance(api_url, str) or not api_url.startswith(("http://", "https://")):
        problems.append(
            f"{path}.api_url: the frontend's api_jsonrpc.php URL (or set zabbix_url at the top)"
        )
        api_url = ""
    verify = node.get("verify_certs", True)
    if not isinstance(verify, bool):
        problems.append(f"{path}.verify_certs: must be true or false")
        verify = True
    timeout = node.get("timeout", 10.0)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
        problems.append(f"{path}.timeout: must be a number of seconds above 0")
        timeout = 10.0
    users: dict[str, UserMapping] = {}
    raw_users = node.get("users")
    if not isinstance(raw_users, Mapping) or not raw_users:
        problems.append(
            f"{path}.users: map each Slack user ID to {{zabbix_user, token_file}}; "
            "a user not listed is refused"
        )
        raw_users = {}
    for slack_user, m in raw_users.items():
        where = f"{path}.users.{slack_user}"
        if not isinstance(m, Mapping):
            problems.append(f"{where}: must be {{zabbix_user, token_file}}")
            continue
        for key in m:
            if key not in ("zabbix_user", "token", "token_file", "allow_super_admin"):
                problems.append(f"{where}.{key}: unknown setting")
        zuser = m.get("zabbix_user")
        if not isinstance(zuser, str) or not zuser:
            problems.append(f"{where}.zabbix_user: the Zabbix username this Slack user acts as")
            zuser = ""
        allow = m.get("allow_super_admin", False)
        if not isinstance(allow, bool):
            problems.append(f"{where}.allow_super_admin: must be true or false")
            allow = False
        users[str(slack_user)] = UserMapping(str(slack_user), zuser, secret(m, "token", where),
                                             allow)  # fmt: skip
    return ActionsConfig(
        app_token=app_token,
        bot_token=str(channel.get("token", "")),
        slack_channel=str(name),
        api_url=api_url,
        users=users,
        base_url=str(channel.get("base_url") or "https://slack.com/api/"),
        verify_certs=verify,
        timeout=float(timeout),
    )
