"""The Zabbix webhook media type that feeds the bridge, declared once, as data.

This module is the contract between Zabbix and :func:`kyoten.alerting.events.parse_event`:

* :data:`PARAMETERS` — every webhook parameter, name → Zabbix macro. Zabbix resolves the macros
  and hands the script one JSON object of strings; the script drops the two transport
  parameters (:data:`URL_PARAM`, :data:`TOKEN_PARAM`) and POSTs the rest, unchanged, to the
  bridge. The parser reads exactly these names, and a test builds the body the script would
  send from this list and parses it, so the two cannot drift apart.
* :data:`SCRIPT` — the JavaScript. 2xx is success; anything else (including a refused
  connection) throws, so Zabbix retries with the media type's attempts and interval. The bridge
  answers 2xx only after the event is committed to its outbox.
* :data:`MESSAGE_TEMPLATES` — problem / update / recovery texts. Zabbix sends nothing for an
  operation whose media type has no template, so they must exist even though the bridge renders
  its own messages; they arrive as ``alert_subject`` / ``alert_message`` and are kept.
* :func:`media_type_export` — the ``zabbix_export`` document for Zabbix 6.0 or 7.0 (every
  scalar a string, as the importer demands). The templates part of the project serialises it to
  YAML; nothing here formats YAML by hand.

The URL and the token come from global macros (``{$KYOTEN.BRIDGE.URL}``, and a *secret* macro
``{$KYOTEN.BRIDGE.TOKEN}``), so the token is masked in the frontend and never typed into the
media type itself.

Why no ``content_type`` / ``message_format`` key: it only selects HTML or plain text for e-mail
media types and is optional in both formats; 7.x renamed it (``content_type`` →
``message_format``). Leaving it out keeps one document valid for every importer we target.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .events import SCHEMA_VERSION

NAME = "kyoten bridge"
URL_PARAM = "bridge_url"
TOKEN_PARAM = "bridge_token"

#: name -> Zabbix macro (or literal). Order is the order Zabbix shows them in.
PARAMETERS: tuple[tuple[str, str], ...] = (
    (URL_PARAM, "{$KYOTEN.BRIDGE.URL}"),
    (TOKEN_PARAM, "{$KYOTEN.BRIDGE.TOKEN}"),
    ("kyoten_schema", SCHEMA_VERSION),
    ("event_id", "{EVENT.ID}"),
    ("event_value", "{EVENT.VALUE}"),
    ("event_update_status", "{EVENT.UPDATE.STATUS}"),
    ("event_update_action", "{EVENT.UPDATE.ACTION}"),
    ("event_update_message", "{EVENT.UPDATE.MESSAGE}"),
    ("event_update_nseverity", "{EVENT.UPDATE.NSEVERITY}"),
    ("event_update_date", "{EVENT.UPDATE.DATE}"),
    ("event_update_time", "{EVENT.UPDATE.TIME}"),
    ("user_fullname", "{USER.FULLNAME}"),
    ("event_nseverity", "{EVENT.NSEVERITY}"),
    ("event_source", "{EVENT.SOURCE}"),
    ("event_name", "{EVENT.NAME}"),
    ("event_opdata", "{EVENT.OPDATA}"),
    ("event_ack_status", "{EVENT.ACK.STATUS}"),
    ("event_date", "{EVENT.DATE}"),
    ("event_time", "{EVENT.TIME}"),
    ("event_recovery_date", "{EVENT.RECOVERY.DATE}"),
    ("event_recovery_time", "{EVENT.RECOVERY.TIME}"),
    ("event_tags", "{EVENT.TAGSJSON}"),
    ("host_name", "{HOST.NAME}"),
    ("host_groups", "{TRIGGER.HOSTGROUP.NAME}"),
    ("trigger_id", "{TRIGGER.ID}"),
    ("trigger_name", "{TRIGGER.NAME}"),
    # links back to the frontend (kyoten.alerting.links) and what Slack may offer (Close)
    ("host_id", "{HOST.ID}"),
    ("trigger_manual_close", "{EVENT.TAGS.manual_close}"),
    ("zabbix_url", "{$ZABBIX.URL}"),
    ("alert_sendto", "{ALERT.SENDTO}"),
    ("alert_subject", "{ALERT.SUBJECT}"),
    ("alert_message", "{ALERT.MESSAGE}"),
)

#: Zabbix has no macro for a trigger's "Allow manual close" (neither 6.0 nor 7.0 resolves one):
#: kyoten's templates give such triggers this tag, and the media type passes its value, so the
#: bridge offers *Close* in Slack only where Zabbix would accept it. Add the tag to your own
#: manually closable triggers to get the button there too.
MANUAL_CLOSE_TAG = ("manual_close", "yes")

#: Duktape (ES5) JavaScript run by Zabbix for every alert.
SCRIPT = """\
var params = JSON.parse(value);
var url = params.bridge_url;
var token = params.bridge_token;
delete params.bridge_url;
delete params.bridge_token;
if (typeof url !== 'string' || url.indexOf('http') !== 0) {
    throw 'kyoten bridge: parameter bridge_url is not an http(s) URL (set {$KYOTEN.BRIDGE.URL})';
}
if (typeof token !== 'string' || token === '' || token.indexOf('{$') === 0) {
    throw 'kyoten bridge: parameter bridge_token is empty (set {$KYOTEN.BRIDGE.TOKEN})';
}
var req = new HttpRequest();
req.addHeader('Content-Type: application/json');
req.addHeader('Authorization: Bearer ' + token);
var body = req.post(url, JSON.stringify(params));
var status = req.getStatus();
if (status < 200 || status > 299) {
    Zabbix.log(3, '[kyoten bridge] HTTP ' + status + ': ' + String(body).substring(0, 500));
    throw 'kyoten bridge answered HTTP ' + status + ': ' + String(body).substring(0, 200);
}
return 'OK';
"""

_PROBLEM_BODY = """\
Problem started at {EVENT.TIME} on {EVENT.DATE}
Problem name: {EVENT.NAME}
Host: {HOST.NAME}
Severity: {EVENT.SEVERITY}
Operational data: {EVENT.OPDATA}
Original problem ID: {EVENT.ID}
"""
_UPDATE_BODY = """\
{USER.FULLNAME} {EVENT.UPDATE.ACTION} problem at {EVENT.UPDATE.DATE} {EVENT.UPDATE.TIME}.
{EVENT.UPDATE.MESSAGE}

Current problem status is {EVENT.STATUS}, age is {EVENT.AGE}, acknowledged: {EVENT.ACK.STATUS}.
"""
_RECOVERY_BODY = """\
Problem has been resolved at {EVENT.RECOVERY.TIME} on {EVENT.RECOVERY.DATE}
Problem name: {EVENT.NAME}
Problem duration: {EVENT.DURATION}
Host: {HOST.NAME}
Severity: {EVENT.SEVERITY}
Original problem ID: {EVENT.ID}
"""

#: operation_mode -> (subject, message), for trigger events.
MESSAGE_TEMPLATES: Mapping[str, tuple[str, str]] = {
    "PROBLEM": ("Problem: {EVENT.NAME}", _PROBLEM_BODY),
    "UPDATE": ("Updated problem in {EVENT.AGE}: {EVENT.NAME}", _UPDATE_BODY),
    "RECOVERY": ("Resolved in {EVENT.DURATION}: {EVENT.NAME}", _RECOVERY_BODY),
}

#: Zabbix's retry policy for the webhook. The bridge answers within milliseconds once the event
#: is durable, so a failure means the bridge is unreachable: retry for a couple of minutes.
ATTEMPTS = "10"
ATTEMPT_INTERVAL = "15s"
TIMEOUT = "10s"
MAX_SESSIONS = "16"

SUPPORTED_VERSIONS = ("6.0", "7.0")

DESCRIPTION = (
    "Forwards every problem, update and recovery to the kyoten alert bridge, which stores it "
    "before answering and fans it out to e-mail, Slack and PATLITE towers. Set the global macros "
    "{$KYOTEN.BRIDGE.URL} (e.g. https://bridge.example:8089/v1/events) and the secret macro "
    "{$KYOTEN.BRIDGE.TOKEN}. Assign the media type to one dedicated user. Set {$ZABBIX.URL} "
    "(the frontend's address, no trailing slash) for links back to events and hosts."
)


def payload_names() -> tuple[str, ...]:
    """The keys of the JSON body the script POSTs (parameters minus URL and token)."""
    return tuple(n for n, _ in PARAMETERS if n not in (URL_PARAM, TOKEN_PARAM))


def render_payload(resolve: Mapping[str, str]) -> dict[str, str]:
    """The body the script would POST, given Zabbix's macro values.

    Mirrors Zabbix and the script: every parameter's macro is replaced by its value (an unknown
    macro stays as written, as Zabbix leaves unresolvable macros), then URL and token are
    dropped. Tests and the benchmark use it so they send exactly what Zabbix would.
    """
    body: dict[str, str] = {}
    for name, template in PARAMETERS:
        if name in (URL_PARAM, TOKEN_PARAM):
            continue
        text = template
        for macro, value in resolve.items():
            text = text.replace(macro, value)
        body[name] = text
    return body


def media_type_export(version: str) -> dict[str, Any]:
    """The ``zabbix_export`` document declaring the media type, for Zabbix ``version``.

    :param version: ``"6.0"`` or ``"7.0"``. A 6.0 document also imports into 7.0 (the importer
        converts forward), but not the other way round.
    :raises ValueError: for any other version.
    """
    if version not in SUPPORTED_VERSIONS:
        raise ValueError(f"unsupported Zabbix export version {version!r}")
    media_type: dict[str, Any] = {
        "name": NAME,
        "type": "WEBHOOK",
        "parameters": [{"name": n, "value": v} for n, v in PARAMETERS],
        "max_sessions": MAX_SESSIONS,
        "attempts": ATTEMPTS,
        "attempt_interval": ATTEMPT_INTERVAL,
        "script": SCRIPT,
        "timeout": TIMEOUT,
        "process_tags": "NO",
        "show_event_menu": "NO",
        "description": DESCRIPTION,
        "message_templates": [
            {
                "event_source": "TRIGGERS",
                "operation_mode": mode,
                "subject": subject,
                "message": message,
            }
            for mode, (subject, message) in MESSAGE_TEMPLATES.items()
        ],
    }
    return {"zabbix_export": {"version": version, "media_types": [media_type]}}


def script_media_type_argv(config_path: str = "/etc/kyoten/bridge.yaml") -> list[str]:
    """Script parameters for the alternative *script* media type (``kyoten bridge send``).

    Each Zabbix script parameter is one argv element, so macro values need no quoting; the
    bridge URL and token come from the bridge config file, never from the command line.
    """
    return [
        "bridge",
        "send",
        "--config",
        config_path,
        *(f"{n}={v}" for n, v in PARAMETERS if n not in (URL_PARAM, TOKEN_PARAM)),
    ]
