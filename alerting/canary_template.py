"""The Zabbix side of the alert-path canary, declared once, as data.

:mod:`.canary` says what the bridge sends and what it expects back; this module says what
Zabbix must hold for that round trip to work, so that ``kyoten import --canary`` creates it and
nobody wires it by hand:

* :func:`template_export` — the ``zabbix_export`` document of the template :data:`TEMPLATE`
  for Zabbix 6.0 or 7.0: the trapper item :data:`KEY` the bridge sends its tokens to, and one
  trigger that opens a problem for every token (event generation mode MULTIPLE) and resolves
  them all when the bridge sends ``0``. Its tags mark the event as the canary's
  (:data:`MARK_TAG` = :data:`MARK_VALUE`) and carry the token (:data:`TOKEN_TAG` =
  ``{ITEM.VALUE}``), which is how the bridge recognises and matches it. Written in the
  canonical form of ``configuration.export`` (defaults left out, every scalar a string), like
  the catalogue's templates, so a second import compares clean.
* :data:`HOST_GROUP` — the host group of the canary host :data:`HOST`.
* :func:`action` — the trigger action :data:`ACTION`: every event tagged ``kyoten: canary``
  goes through the kyoten media type to one user group, and nothing else does.
* :data:`EXCLUDE_CONDITION` — the filter condition a general "everything to the bridge"
  action needs so that it does not deliver canary events a second time.

Nothing here does I/O; :mod:`kyoten.shell.zabbix_import` talks to the API.
"""

from __future__ import annotations

from typing import Any

from kyoten.agent.export.templates import GROUP, VENDOR, stable_uuid

from .canary import ACTION, HOST, KEY, MARK_TAG, MARK_VALUE, TEMPLATE, TOKEN_TAG

__all__ = [
    "ACTION",
    "ALLOWED_HOSTS_ANY",
    "ALLOWED_HOSTS_MACRO",
    "EXCLUDE_CONDITION",
    "FILE",
    "HOST",
    "HOST_GROUP",
    "KEY",
    "MARK_CONDITION",
    "SUPPORTED_VERSIONS",
    "TEMPLATE",
    "TRIGGER",
    "action",
    "template_export",
]

SUPPORTED_VERSIONS = ("6.0", "7.0")
#: File name under ``templates/<version>/``.
FILE = "template_kyoten_canary.yaml"
#: Host group of the canary host (created by ``kyoten import --canary`` when missing).
HOST_GROUP = "kyoten/canary"
#: Name of the trigger (and so of every canary problem).
TRIGGER = "kyoten alert-path canary"
#: Where the trapper item may be sent from (the item's "Allowed hosts").
ALLOWED_HOSTS_MACRO = "{$KYOTEN.CANARY.ALLOWED_HOSTS}"
#: Its default: any IPv4 or IPv6 address. Not empty: an item field that *is* empty accepts
#: every sender, but a macro that *resolves* to empty accepts none (Zabbix 6.0 logs
#: 'connection from "…" rejected, allowed hosts: ""'), so "any" must be spelled out.
ALLOWED_HOSTS_ANY = "0.0.0.0/0,::/0"
#: Kept long enough to read back a token an operator wonders about, short enough not to grow.
HISTORY = "1d"

#: Trigger-action condition "tag ``kyoten`` equals ``canary``". For conditiontype 26 (tag
#: value) ``value2`` is the tag *name* and ``value`` the tag *value*: the other way round
#: silently matches nothing.
MARK_CONDITION: dict[str, str] = {
    "conditiontype": "26",
    "operator": "0",  # equals
    "value": MARK_VALUE,
    "value2": MARK_TAG,
}
#: The same condition with "does not equal": an event without the tag matches it, so a general
#: action with only this condition still sends everything except the canary.
EXCLUDE_CONDITION: dict[str, str] = {**MARK_CONDITION, "operator": "1"}

_TEMPLATE_DESCRIPTION = (
    "The kyoten alert-path canary: proves end to end that Zabbix still turns a value into a "
    "problem and delivers it. The kyoten alert bridge sends a fresh numeric token to the trapper "
    f"item {KEY} of the host {HOST} every few seconds; the trigger opens one problem per token and "
    f"the action '{ACTION}' sends it through the kyoten media type back to the bridge, which "
    "matches the token and consumes the event: canary problems are never shown to people. When "
    "no token comes back, the bridge raises its own alert. Host, host group and action are "
    f"created by 'kyoten import --canary'. Set {ALLOWED_HOSTS_MACRO} (on the host) to the "
    "bridges' addresses to accept tokens from them only."
)
_ITEM_DESCRIPTION = (
    "Token sent by the kyoten alert bridge (a positive integer), then 0 to resolve the "
    "problems it opened. Only the bridge writes here."
)
_TRIGGER_DESCRIPTION = (
    "One problem per canary token (a new event for every value), tagged with the token. The "
    "kyoten alert bridge consumes these events to prove the alert path works: they are never "
    "shown to people. They resolve when the bridge sends 0; an open one only means a token "
    "whose 0 has not arrived yet."
)
_MACRO_DESCRIPTION = (
    "Addresses allowed to send canary tokens to the trapper item (its 'Allowed hosts': "
    f"comma-separated IPs, CIDR ranges or DNS names). The default {ALLOWED_HOSTS_ANY} accepts "
    "any address; list the alert bridges of both sites to restrict it. Never leave it empty: "
    "an empty macro value rejects every sender."
)


def _expression(function: str) -> str:
    return f"{function}(/{TEMPLATE}/{KEY})"


def template_export(version: str) -> dict[str, Any]:
    """The ``zabbix_export`` document of the canary template, for Zabbix ``version``.

    :param version: ``"6.0"`` or ``"7.0"``. A 6.0 document also imports into 7.0 (the importer
        converts forward), but not the other way round.
    :raises ValueError: for any other version.
    """
    if version not in SUPPORTED_VERSIONS:
        raise ValueError(f"unsupported Zabbix export version {version!r}")
    trigger: dict[str, Any] = {
        "uuid": stable_uuid(TEMPLATE, "trigger", "canary"),
        "expression": f"{_expression('last')}>0",
        "recovery_mode": "RECOVERY_EXPRESSION",
        "recovery_expression": f"{_expression('last')}=0",
        "name": TRIGGER,
        "priority": "INFO",
        "description": _TRIGGER_DESCRIPTION,
        "type": "MULTIPLE",
        "manual_close": "YES",
        "tags": [
            {"tag": MARK_TAG, "value": MARK_VALUE},
            {"tag": TOKEN_TAG, "value": "{ITEM.VALUE}"},
        ],
    }
    item: dict[str, Any] = {
        "uuid": stable_uuid(TEMPLATE, "item", KEY),
        "name": "Alert-path canary token",
        "type": "TRAP",
        "key": KEY,
        "delay": "0",
        "history": HISTORY,
        "trends": "0",
        # value_type UNSIGNED is the exporter's default, so the canonical form leaves it out
        "allowed_hosts": ALLOWED_HOSTS_MACRO,
        "description": _ITEM_DESCRIPTION,
        "tags": [{"tag": "component", "value": "canary"}],
        "triggers": [trigger],
    }
    template: dict[str, Any] = {
        "uuid": stable_uuid(TEMPLATE, "template"),
        "template": TEMPLATE,
        "name": TEMPLATE,
        "description": _TEMPLATE_DESCRIPTION,
    }
    if version != "6.0":
        template["vendor"] = dict(VENDOR)
    template["groups"] = [{"name": GROUP}]
    template["items"] = [item]
    macro = {"macro": ALLOWED_HOSTS_MACRO, "value": ALLOWED_HOSTS_ANY}
    template["macros"] = [{**macro, "description": _MACRO_DESCRIPTION}]
    export: dict[str, Any] = {"version": version}
    export["groups" if version == "6.0" else "template_groups"] = [
        {"uuid": stable_uuid("group", GROUP), "name": GROUP}
    ]
    export["templates"] = [template]
    return {"zabbix_export": export}


def action(mediatypeid: str, usrgrpid: str) -> dict[str, Any]:
    """``action.create`` parameters of :data:`ACTION` (every value a string, as ``action.get``
    returns them, so the same dict serves to compare).

    Problems only: no recovery or update operations, the bridge needs the problem alone.
    ``pause_suppressed`` is off because a maintenance that suppresses the canary's problem must
    not hold back the proof that the path works. ``default_msg`` 1 uses the media type's
    message templates (the webhook sends its own fields anyway).
    """
    return {
        "name": ACTION,
        "eventsource": "0",
        "status": "0",
        "esc_period": "1h",
        "pause_suppressed": "0",
        "filter": {"evaltype": "0", "conditions": [dict(MARK_CONDITION)]},
        "operations": [
            {
                "operationtype": "0",
                "esc_step_from": "1",
                "esc_step_to": "1",
                "opmessage": {"default_msg": "1", "mediatypeid": mediatypeid},
                "opmessage_grp": [{"usrgrpid": usrgrpid}],
            }
        ],
        "recovery_operations": [],
        "update_operations": [],
    }
