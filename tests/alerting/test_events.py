"""The pure parser: kinds, update actions, precise rejections, and a lossless store format."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from kyoten.alerting import mediatype
from kyoten.alerting.events import (
    Event,
    InvalidEvent,
    Kind,
    UpdateAction,
    event_from_json,
    parse_event,
    parse_update_actions,
)

from .test_mediatype import PROBLEM, UPDATE


def good(**over: str) -> dict[str, Any]:
    body: dict[str, Any] = mediatype.render_payload(PROBLEM)
    body.update(over)
    return body


@pytest.mark.parametrize(
    ("payload", "field", "reason"),
    [
        ([1, 2], "body", "JSON object"),
        (good(event_id="12a"), "event_id", "decimal"),
        ({k: v for k, v in good().items() if k != "event_id"}, "event_id", "missing"),
        (good(event_id="{EVENT.ID}"), "event_id", "unresolved"),
        (good(event_value="2"), "event_value", "0 or 1"),
        (good(event_nseverity="7"), "event_nseverity", "0-5"),
        (good(event_tags="{not json"), "event_tags", "not JSON"),
        (good(event_tags='{"tag": "x"}'), "event_tags", "array"),
        (good(event_tags='[{"value": "x"}]'), "event_tags", "entry 0"),
        ({**good(), "event_name": 5}, "event_name", "must be a string"),
        (good(kyoten_schema="2"), "kyoten_schema", "schema 1"),
        (good(host_name=""), "host_name", "empty"),
        (good(event_source="9"), "event_source", "0-4"),
        (good(event_update_status="1"), "event_update_action", "unresolved"),
    ],
)
def test_rejections_name_the_field_and_the_reason(payload: Any, field: str, reason: str) -> None:
    with pytest.raises(InvalidEvent) as exc:
        parse_event(payload)
    assert exc.value.field == field
    assert reason in exc.value.reason


@pytest.mark.parametrize(
    ("text", "actions"),
    [
        ("acknowledged", {UpdateAction.ACKNOWLEDGE}),
        ("unacknowledged", {UpdateAction.UNACKNOWLEDGE}),
        ("commented, closed", {UpdateAction.COMMENT, UpdateAction.CLOSE}),
        ("changed severity from Warning to High", {UpdateAction.SEVERITY}),
        ("suppressed, unsuppressed", {UpdateAction.SUPPRESS, UpdateAction.UNSUPPRESS}),
        ("did something new", set()),
    ],
)
def test_update_action_text(text: str, actions: set[UpdateAction]) -> None:
    assert parse_update_actions(text) == actions


def test_close_update_closes_and_retries_collapse() -> None:
    close = parse_event(mediatype.render_payload({**UPDATE, "{EVENT.UPDATE.ACTION}": "closed"}))
    assert close.kind is Kind.UPDATE and close.closes
    again = parse_event(mediatype.render_payload({**UPDATE, "{EVENT.UPDATE.ACTION}": "closed"}))
    assert again.dedup_key == close.dedup_key
    other = parse_event(
        mediatype.render_payload(
            {**UPDATE, "{EVENT.UPDATE.ACTION}": "closed", "{EVENT.UPDATE.TIME}": "19:32:00"}
        )
    )
    assert other.dedup_key != close.dedup_key


text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=30)


@given(
    name=text,
    host=text.filter(lambda s: s.strip() != "" and s.strip() == s and not s.startswith("{")),
    sev=st.integers(0, 5),
    tags=st.lists(st.tuples(text, text), max_size=4),
    message=text,
)
def test_store_format_round_trips(
    name: str, host: str, sev: int, tags: list[tuple[str, str]], message: str
) -> None:
    import json

    body = mediatype.render_payload(
        {
            **UPDATE,
            "{EVENT.NAME}": name,
            "{HOST.NAME}": host,
            "{EVENT.NSEVERITY}": str(sev),
            "{EVENT.UPDATE.MESSAGE}": message,
            "{EVENT.TAGSJSON}": json.dumps([{"tag": t, "value": v} for t, v in tags]),
        }
    )
    event = parse_event(body)
    again: Event = event_from_json(json.loads(json.dumps(event.to_json())))
    assert again == event
