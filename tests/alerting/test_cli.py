"""``kyoten bridge …`` subcommands against real files, a real outbox and a running bridge."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
import yaml
from kyoten.alerting import cli, mediatype
from kyoten.alerting.app import create_app
from pytest_aiohttp import AiohttpServer

from .conftest import FakeSlack, bridge_config, eventually, settings_of, write_config


def test_media_type_prints_the_export(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["bridge", "media-type", "--zabbix", "7.0"]) == 0
    assert yaml.safe_load(capsys.readouterr().out) == mediatype.media_type_export("7.0")


def test_check_config_lists_or_rejects(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = bridge_config(tmp_path, None, None)
    doc["channels"] = {"ops": {"type": "slack", "token": "xoxb-1", "channel": "#ops"}}
    doc["routes"] = [{"min_severity": 4, "channels": ["ops"]}]
    assert cli.main(["bridge", "check-config", "--config", str(write_config(tmp_path, doc))]) == 0
    out = capsys.readouterr().out
    assert "channel ops: slack" in out and "High..Disaster" in out

    doc["channels"]["ops"] = {"type": "slack", "channel": "#ops", "colour": "red"}
    assert cli.main(["bridge", "check-config", "--config", str(write_config(tmp_path, doc))]) == 2
    err = capsys.readouterr().err
    assert "channels.ops.colour: unknown setting; expected one of ack_reaction" in err
    assert "channels.ops.token: missing; the bot token" in err


async def test_send_is_the_intake_of_a_script_media_type(
    tmp_path: Path,
    slack: FakeSlack,
    aiohttp_server: AiohttpServer,
    capsys: pytest.CaptureFixture[str],
) -> None:
    doc = bridge_config(tmp_path, None, slack)
    server = await aiohttp_server(create_app(settings_of(doc, tmp_path)), host="127.0.0.1")
    doc["url"] = f"http://127.0.0.1:{server.port}/v1/events"
    config = str(write_config(tmp_path, doc))
    # Exactly the argv the script media type passes, macros resolved by "Zabbix".
    argv = [
        a.replace("{EVENT.ID}", "77")
        .replace("{EVENT.VALUE}", "1")
        .replace("{EVENT.UPDATE.STATUS}", "0")
        .replace("{EVENT.NSEVERITY}", "4")
        .replace("{HOST.NAME}", "db1")
        for a in mediatype.script_media_type_argv(config)
    ]
    assert await asyncio.to_thread(cli.main, argv) == 0
    assert capsys.readouterr().out.startswith("accepted: 77:P")
    await eventually(lambda: len(slack.posts()) == 1)
    assert await asyncio.to_thread(cli.main, argv) == 0  # a retry: stored once
    assert "duplicate" in capsys.readouterr().out

    bad = [*argv[:4], "event_id=x"]
    assert await asyncio.to_thread(cli.main, bad) == 1
    assert "HTTP 422" in capsys.readouterr().err
    assert await asyncio.to_thread(cli.main, [*argv[:4], "no-equals-sign"]) == 2

    await server.close()
    assert await asyncio.to_thread(cli.main, argv) == 1  # bridge down: Zabbix retries
    assert "unreachable" in capsys.readouterr().err


def test_replay_lists_and_revives_dead_letters(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = bridge_config(tmp_path, None, None)
    doc["channels"] = {"ops": {"type": "slack", "token": "xoxb-1", "channel": "#ops"}}
    doc["routes"] = [{"channels": ["ops"]}]
    config = str(write_config(tmp_path, doc))
    # An outbox with one dead delivery, as the bridge leaves it.
    assert cli.main(["bridge", "replay", "--config", config, "--list"]) == 0  # creates schema
    with sqlite3.connect(tmp_path / "bridge.db") as db:
        db.execute("INSERT INTO events VALUES (1, '5:P', '5', 'problem', '{\"name\": \"lag\"}', 0)")
        db.execute(
            "INSERT INTO deliveries (seq, channel, event_id, status, attempts, next_at,"
            " created_at, last_error) VALUES (1, 'ops', '5', 'dead', 3, 0, 0, 'gone')"
        )
    capsys.readouterr()
    assert cli.main(["bridge", "replay", "--config", config, "--list"]) == 0
    assert capsys.readouterr().out.split("\t")[1:4] == ["ops", "5", "problem"]
    assert cli.main(["bridge", "replay", "--config", config, "--channel", "ops"]) == 0
    assert capsys.readouterr().out.startswith("1 dead deliveries made pending again")
    with sqlite3.connect(tmp_path / "bridge.db") as db:
        assert db.execute("SELECT status, attempts FROM deliveries").fetchall() == [("pending", 0)]
