"""Links back to Zabbix, the Slack buttons, and the templates operators shape, through the whole
bridge (intake → outbox → pipeline → channels → the Slack fake and a real SMTP server)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from kyoten.alerting import mediatype
from kyoten.alerting.app import create_app
from kyoten.alerting.channels.mail import MailChannel
from kyoten.alerting.channels.slack import default_text
from kyoten.alerting.channels.slack_blocks import ACK, CLOSE
from kyoten.alerting.cli import main as bridge_main
from kyoten.alerting.config import ConfigError
from kyoten.alerting.events import parse_event
from kyoten.alerting.templating import DEFAULT_TEMPLATES, Renderer, Text, parse_templates
from pytest_aiohttp import AiohttpClient

from .conftest import (
    AUTH,
    FakeSlack,
    Smtp,
    bridge_config,
    eventually,
    macros,
    payload,
    settings_of,
    write_config,
)

EVENT_URL = "https://zabbix.example/tr_events.php?triggerid=23001&eventid={}"
HOST_URL = "https://zabbix.example/zabbix.php?action=problem.view&filter_name=&hostids%5B%5D=10084"
IDS = {"{HOST.ID}": "10084", "{$ZABBIX.URL}": "https://zabbix.example/"}


async def start(aiohttp_client: AiohttpClient, tmp_path: Path, doc: dict[str, Any]) -> Any:
    return await aiohttp_client(create_app(settings_of(doc, tmp_path)))


def post(eid: str, kind: str = "problem", **over: str) -> dict[str, str]:
    return payload(eid, kind, **{**IDS, **over})


def plain(mail: Any) -> str:
    return str(mail.get_body(("plain",)).get_content()).replace("\r\n", "\n")


def urls_of(blocks: list[dict[str, Any]]) -> list[str]:
    return [e["url"] for b in blocks for e in b.get("elements", ()) if "url" in e]


async def test_every_message_and_mail_links_to_the_event_and_the_host(
    aiohttp_client: AiohttpClient, tmp_path: Path, smtp: Smtp, slack: FakeSlack
) -> None:
    client = await start(aiohttp_client, tmp_path, bridge_config(tmp_path, smtp, slack))
    for kind in ("problem", "update", "recovery"):
        resp = await client.post("/v1/events", json=post("100", kind), headers=AUTH)
        assert resp.status == 202
    await eventually(lambda: len(smtp.sink.mails) == 3 and len(slack.posts()) == 3)
    event_url = EVENT_URL.format(100)
    problem, update, recovery = slack.posts()
    assert problem.data["attachments"][0]["title_link"] == event_url
    assert HOST_URL in problem.data["attachments"][0]["footer"]
    assert urls_of(problem.data["blocks"]) == [event_url, HOST_URL]
    assert not any(e.get("action_id") == ACK for b in problem.data["blocks"]
                   for e in b.get("elements", ()))  # buttons: false (the default)  # fmt: skip
    for reply in (update, recovery):
        assert event_url in reply.data["text"] and HOST_URL in reply.data["text"]
    for mail in smtp.sink.messages():
        text = plain(mail)
        html = mail.get_body(("html",)).get_content()
        assert event_url in text and HOST_URL in text
        assert f"href='{event_url.replace('&', '&amp;')}'" in html


async def test_bridge_yaml_zabbix_url_wins_and_no_url_means_no_link(
    aiohttp_client: AiohttpClient, tmp_path: Path, slack: FakeSlack
) -> None:
    doc = bridge_config(tmp_path, None, slack, zabbix_url="https://noc.example/zabbix/")
    client = await start(aiohttp_client, tmp_path, doc)
    await client.post("/v1/events", json=post("101"), headers=AUTH)
    bare = payload("102", **{"{HOST.ID}": "10084"})  # {$ZABBIX.URL} undefined: left as is
    await client.post("/v1/events", json=bare, headers=AUTH)
    await eventually(lambda: len(slack.posts()) == 2)
    linked = slack.posts()[0].data
    assert linked["attachments"][0]["title_link"].startswith(
        "https://noc.example/zabbix/tr_events.php?triggerid=23001&eventid=101"
    )
    # the second event's {$ZABBIX.URL} was never resolved, but bridge.yaml gives the URL
    assert "https://noc.example/zabbix/" in slack.posts()[1].data["attachments"][0]["title_link"]
    assert parse_event(bare).zabbix_url == ""


async def test_buttons_follow_the_problem_state(
    aiohttp_client: AiohttpClient, tmp_path: Path, slack: FakeSlack
) -> None:
    doc = bridge_config(tmp_path, None, slack)
    doc["channels"]["slack"]["buttons"] = True
    (tmp_path / "app.token").write_text("xapp-1-test-app-token\n")
    (tmp_path / "hanako.token").write_text("zabbix-token-hanako\n")
    doc["slack_actions"] = {
        "app_token_file": "app.token",
        "slack_channel": "slack",
        "api_url": "http://127.0.0.1:9/api_jsonrpc.php",
        "users": {"U0HANAKO": {"zabbix_user": "hanako", "token_file": "hanako.token"}},
    }
    client = await start(aiohttp_client, tmp_path, doc)
    closable = post("103", **{"{EVENT.TAGS.manual_close}": "yes"})
    await client.post("/v1/events", json=closable, headers=AUTH)
    await client.post("/v1/events", json=post("104"), headers=AUTH)
    await eventually(lambda: len(slack.posts()) == 2)

    def actions(ts: str) -> list[str]:
        return [e.get("action_id", "") for b in slack.messages[ts]["blocks"]
                for e in b.get("elements", ()) if "url" not in e]  # fmt: skip

    (ts103,) = slack.top_level("(103)")
    (ts104,) = slack.top_level("(104)")
    assert actions(ts103) == [ACK, CLOSE]  # the trigger allows manual close
    assert actions(ts104) == [ACK]
    ack = macros("103", "update", **{**IDS, "{EVENT.ACK.STATUS}": "Yes",
                                     "{EVENT.UPDATE.ACTION}": "acknowledged",
                                     "{EVENT.TAGS.manual_close}": "yes"})  # fmt: skip
    await client.post("/v1/events", json=mediatype.render_payload(ack), headers=AUTH)
    await eventually(lambda: actions(ts103) == [CLOSE])  # acknowledged: only Close is left
    await client.post("/v1/events", json=post("104", "recovery"), headers=AUTH)
    await eventually(lambda: slack.messages[ts104]["text"].startswith("[Resolved]"))
    assert actions(ts104) == []  # resolved: no button at all, links stay
    health = await (await client.get("/health")).json()
    assert health["slack_actions"]["state"] in ("starting", "connected", "failing")


def test_buttons_without_slack_actions_are_refused(tmp_path: Path, slack: FakeSlack) -> None:
    doc = bridge_config(tmp_path, None, slack)
    doc["channels"]["slack"]["buttons"] = True
    with pytest.raises(ConfigError, match=r"channels\.slack\.buttons: nothing receives the clicks"):
        settings_of(doc, tmp_path)


# -- templates ---------------------------------------------------------------------------------

TEMPLATES = {
    "problem": "ALERT {{ severity | upper }}: {{ event.name }}\n"
    "host={{ event.host }} ops={{ event.opdata }}\nsee {{ event_url }}",
    "recovery": "OK again: {{ event.name }}\n{{ event.recovered }}",
}


async def test_a_template_edit_changes_the_delivered_text_without_code(
    aiohttp_client: AiohttpClient, tmp_path: Path, smtp: Smtp, slack: FakeSlack
) -> None:
    doc = bridge_config(tmp_path, smtp, slack)
    doc["channels"]["slack"]["templates"] = TEMPLATES
    doc["channels"]["mail"]["templates"] = TEMPLATES
    client = await start(aiohttp_client, tmp_path, doc)
    for kind in ("problem", "recovery"):
        await client.post("/v1/events", json=post("110", kind), headers=AUTH)
    await eventually(lambda: len(smtp.sink.mails) == 2 and len(slack.posts()) == 2)
    top = slack.posts()[0].data
    assert top["text"].startswith("ALERT HIGH: Replication lag high (110)\nhost=db2.site-b ops=42s")
    assert top["attachments"][0]["title"] == "ALERT HIGH: Replication lag high (110)"
    assert (
        slack.posts()[1].data["text"] == "OK again: Replication lag high (110)\n2026.11.28 19:40:00"
    )
    problem, recovery = smtp.sink.messages()
    assert problem["Subject"] == "ALERT HIGH: Replication lag high (110)"
    assert plain(problem).startswith("host=db2.site-b ops=42s\nsee ")
    assert recovery["Subject"] == "Re: " + problem["Subject"]  # follow-ups thread on it
    assert "OK again" in plain(recovery)


async def test_use_action_message_sends_the_actions_own_text(
    aiohttp_client: AiohttpClient, tmp_path: Path, smtp: Smtp
) -> None:
    doc = bridge_config(tmp_path, smtp, None)
    doc["channels"]["mail"]["use_action_message"] = True
    client = await start(aiohttp_client, tmp_path, doc)
    own = post("111", **{"{ALERT.SUBJECT}": "Problem: lag on db2", "{ALERT.MESSAGE}": "Lag 42s"})
    await client.post("/v1/events", json=own, headers=AUTH)
    await eventually(lambda: len(smtp.sink.mails) == 1)
    (mail,) = smtp.sink.messages()
    assert mail["Subject"] == "Problem: lag on db2"
    assert plain(mail) == "Lag 42s\n"


def test_check_config_refuses_a_bad_template_with_its_line(
    tmp_path: Path, smtp: Smtp, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = bridge_config(tmp_path, smtp, None)
    doc["channels"]["mail"]["templates"] = {
        "problem": "ok {{ event.name }}\nline two\n{{ event.host }",  # syntax, line 3
        "update": "{{ update.mesage }}\n",  # misspelt: fails on the sample update, line 1
    }
    (tmp_path / "digest.j2").write_text("head\n\n{% for e in events %}{{ e.nope }}{% endfor %}")
    doc["channels"]["mail"]["templates"]["digest_file"] = "digest.j2"
    path = write_config(tmp_path, doc)
    assert bridge_main(["bridge", "check-config", "--config", str(path)]) != 0
    err = capsys.readouterr().err
    assert "channels.mail.templates.problem: line 3: TemplateSyntaxError" in err
    assert "channels.mail.templates.update: line 1: UndefinedError" in err
    assert f"channels.mail.templates.digest_file ({tmp_path / 'digest.j2'}): line 3" in err


async def test_a_template_failing_at_render_time_falls_back_and_shows_in_health(
    aiohttp_client: AiohttpClient, tmp_path: Path, slack: FakeSlack
) -> None:
    doc = bridge_config(tmp_path, None, slack)
    # fine on the sample update (it has a comment), fails on an update without one
    doc["channels"]["slack"]["templates"] = {"update": "{{ update.message[0] }} said {{ kind }}"}
    client = await start(aiohttp_client, tmp_path, doc)
    await client.post("/v1/events", json=post("120"), headers=AUTH)
    silent = post("120", "update", **{"{EVENT.UPDATE.MESSAGE}": "", "{EVENT.UPDATE.ACTION}":
                                     "acknowledged"})  # fmt: skip
    await client.post("/v1/events", json=silent, headers=AUTH)
    await eventually(lambda: len(slack.posts()) == 2)
    reply = slack.posts()[1].data["text"]
    assert reply.startswith("Hanako Yamada (hanako) acknowledged Replication lag high (120)")
    health = await (await client.get("/health")).json()
    templates = health["channels"]["slack"]["templates"]
    assert templates["render_failures"] == 1
    assert templates["last_error"].startswith("templates.update: line 1: UndefinedError")


@pytest.mark.parametrize("kind", ["mail", "slack"])
@pytest.mark.parametrize("part", ["problem", "update", "recovery", "digest"])
def test_the_shipped_default_templates_are_todays_layout(kind: str, part: str) -> None:
    """DEFAULT_TEMPLATES (for operators to copy) render exactly what the code sends."""
    problems: list[str] = []
    spec = parse_templates({part: DEFAULT_TEMPLATES[kind][part]}, False, "c", Path("."), problems)
    assert problems == []
    renderer = Renderer("c", spec)
    from kyoten.alerting import render
    from kyoten.alerting.templating import sample_events

    samples = sample_events()
    if part == "digest":
        events = list(samples.values())
        default = Text(render.digest_title(events), render.digest_text(events).rstrip("\n"))
        assert renderer.digest_text(events, default) == default
        return
    event = samples[part]
    if kind == "slack":
        default = default_text(event)
    else:
        mail = MailChannel("c", host="h", port=25, security="none", username="", password="",
                           sender="k@example.com", to=("o@example.com",), timeout=1,
                           verify=False, domain="example.com")  # fmt: skip
        body = render.text_body(event)
        default = Text(render.thread_subject(event), body) if part == "problem" else Text.of(body)
        assert mail.renderer.is_default(part)
    shaped = renderer.event_text(event, default)
    assert renderer.health.failures == 0
    assert (shaped.subject, shaped.body.strip("\n")) == (default.subject, default.body.strip("\n"))
