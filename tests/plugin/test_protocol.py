"""Pure framing against frames captured from real agents (no sockets involved)."""

from __future__ import annotations

import json
import struct

import pytest
from captured import FRAMES_70, OPERATIONAL_60, OPTIONS_60, REGISTRATION_60
from kyoten.agent.plugin import protocol as p


def frame(body: bytes) -> bytes:
    return struct.pack("<II", 1, len(body)) + body


def test_registration_run_of_60_decodes_to_typed_requests() -> None:
    msgs = p.decode_stream(b"".join(frame(b) for b in REGISTRATION_60))
    assert msgs[0] == p.RegisterRequest(1, "6.0.13")
    assert isinstance(msgs[1], p.ValidateRequest) and msgs[1].id == 2
    assert msgs[1].private_options == json.loads(OPTIONS_60)
    assert msgs[2] == p.TerminateRequest(0)


def test_operational_run_of_60_decodes_to_typed_requests() -> None:
    msgs = p.decode_stream(b"".join(frame(b) for b in OPERATIONAL_60))
    configure = msgs[0]
    assert isinstance(configure, p.ConfigureRequest)
    assert (configure.id, configure.timeout, configure.source_ip) == (1, 5, "")
    assert msgs[1] == p.StartRequest(2)
    assert msgs[2] == p.ExportRequest(3, "probe.echo", ("a", "b c", ""), None)
    assert msgs[3] == p.ExportRequest(4, "probe.echo", (), None)  # parameters omitted
    assert msgs[4] == p.ExportRequest(5, "probe.echo", ("",), None)  # key[]
    assert msgs[5] == p.TerminateRequest(0)


def test_frames_of_70_carry_the_item_timeout_and_the_64_version() -> None:
    msgs = p.decode_stream(b"".join(frame(b) for b in FRAMES_70))
    assert msgs == [
        p.RegisterRequest(1, "6.4.0"),
        p.ExportRequest(7, "pytest.echo", ("a", "b"), 7),
        p.TerminateRequest(3),
    ]


def test_decoder_reassembles_a_stream_fed_one_byte_at_a_time() -> None:
    stream = b"".join(frame(b) for b in OPERATIONAL_60)
    decoder = p.FrameDecoder()
    bodies = [body for i in range(len(stream)) for body in decoder.feed(stream[i : i + 1])]
    assert bodies == OPERATIONAL_60
    assert decoder.pending == 0


def test_decoder_rejects_a_non_json_frame_type() -> None:
    with pytest.raises(p.FramingError, match="only JSON"):
        list(p.FrameDecoder().feed(struct.pack("<II", 2, 2) + b"{}"))


def test_decoder_rejects_an_oversized_length_before_buffering_it() -> None:
    decoder = p.FrameDecoder(max_body=1024)
    with pytest.raises(p.FramingError, match="exceeds"):
        list(decoder.feed(struct.pack("<II", 1, 1025)))


def test_unknown_fields_and_message_types_are_tolerated() -> None:
    body = b'{"id":9,"type":6,"key":"k","parameters":[],"timeout":3,"future":{"x":1}}'
    assert p.parse_body(body) == p.ExportRequest(9, "k", (), 3)
    assert p.parse_body(b'{"id":4,"type":11}') == p.UnknownRequest(4, 11)


@pytest.mark.parametrize(
    ("body", "match"),
    [
        (b"not json", "not JSON"),
        (b"[1]", "not a JSON object"),
        (b'{"type":6,"key":"k"}', "'id'"),
        (b'{"id":3,"type":6}', "no key"),
        (b'{"id":3,"type":6,"key":"k","parameters":[1]}', "strings"),
        (b'{"id":3,"type":6,"key":"k","timeout":"7"}', "'timeout'"),
    ],
)
def test_malformed_bodies_are_protocol_errors(body: bytes, match: str) -> None:
    with pytest.raises(p.ProtocolError, match=match):
        p.parse_body(body)


def test_request_id_recovers_the_id_of_a_bad_export_only() -> None:
    assert p.request_id(b'{"id":3,"type":6,"parameters":[1]}') == 3
    assert p.request_id(b'{"id":3,"type":9}') is None
    assert p.request_id(b"garbage") is None


def test_register_response_bytes_match_the_reference_layout() -> None:
    msg = p.RegisterResponse(1, "PyTest", ("pytest.echo", "Echo parameters back."), 7)
    body = (
        b'{"id":1,"type":3,"name":"PyTest",'
        b'"metrics":["pytest.echo","Echo parameters back."],"interfaces":7}'
    )
    assert p.encode(msg) == struct.pack("<II", 1, len(body)) + body


@pytest.mark.parametrize(
    ("msg", "body"),
    [
        (p.ExportResponse(3, value="42"), b'{"id":3,"type":7,"value":"42"}'),
        (p.ExportResponse(3, value=""), b'{"id":3,"type":7,"value":""}'),
        (p.ExportResponse(3, error="no"), b'{"id":3,"type":7,"error":"no"}'),
        (p.ValidateResponse(2), b'{"id":2,"type":10}'),
        (p.ValidateResponse(2, "bad"), b'{"id":2,"type":10,"error":"bad"}'),
        (p.RegisterResponse(1, "K", error="x"), b'{"id":1,"type":3,"error":"x"}'),
        (
            p.LogMessage(p.Severity.WARNING, "ünïcode"),
            '{"id":0,"type":1,"severity":3,"message":"ünïcode"}'.encode(),
        ),
    ],
)
def test_responses_encode_to_exact_bodies(msg: p.Response, body: bytes) -> None:
    assert p.encode(msg) == struct.pack("<II", 1, len(body)) + body


def test_value_is_always_a_json_string_never_a_number() -> None:
    """The agent renders a JSON number 42 as "42.000000" and an object as "map[...]"."""
    raw = p.encode(p.ExportResponse(3, value='{"a":1}'))[8:]
    assert json.loads(raw)["value"] == '{"a":1}'


def test_export_response_needs_exactly_one_of_value_and_error() -> None:
    with pytest.raises(ValueError):
        p.ExportResponse(3)
    with pytest.raises(ValueError):
        p.ExportResponse(3, value="1", error="2")
