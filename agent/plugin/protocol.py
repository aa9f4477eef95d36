"""Pure framing of the agent 2 plugin protocol: bytes in, typed messages out, and back.

A frame is ``[uint32 LE type=1][uint32 LE body length][JSON body]``; every body carries ``id``
and ``type``. Nothing here touches a socket, so the layout is tested byte for byte against
frames captured from real agents, and the connection loop only ever sees typed messages.

Decoding is lenient where the agent versions differ (unknown fields are ignored, ``timeout``
exists only from 7.0, ``parameters`` is omitted when empty, ``private_options`` may be null)
and strict where a mistake would be silent (a non-JSON frame type, a missing ``key``).
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import IntEnum

import orjson

#: The only frame type agents send or accept ("only json data type (1) supported").
FRAME_TYPE_JSON = 1
HEADER = struct.Struct("<II")
#: Largest body we accept from the agent. Requests are tiny; the cap keeps a corrupt length
#: field from making us allocate gigabytes while waiting for a body that never comes.
MAX_BODY = 16 * 1024 * 1024


class ProtocolError(ValueError):
    """A frame or body the protocol does not allow; the message says what was wrong."""


class FramingError(ProtocolError):
    """The byte stream itself is broken (bad frame type or length): nothing after it can be
    trusted, so the connection cannot continue."""


class MessageType(IntEnum):
    """Message codes, the ``iota`` enum of the agent's ``comms/protocol.go``."""

    LOG = 1
    REGISTER_REQUEST = 2
    REGISTER_RESPONSE = 3
    START_REQUEST = 4
    TERMINATE_REQUEST = 5
    EXPORT_REQUEST = 6
    EXPORT_RESPONSE = 7
    CONFIGURE_REQUEST = 8
    VALIDATE_REQUEST = 9
    VALIDATE_RESPONSE = 10


class Severity(IntEnum):
    """Log frame severities as the agent numbers them (not in syslog order)."""

    INFO = 0
    CRIT = 1
    ERR = 2
    WARNING = 3
    DEBUG = 4
    TRACE = 5


class Interface(IntEnum):
    """RegisterResponse ``interfaces`` bits: which optional requests the agent will send."""

    EXPORTER = 1
    CONFIGURATOR = 2
    RUNNER = 4


# ----------------------------------------------------------------------------- agent -> plugin


@dataclass(frozen=True)
class RegisterRequest:
    """First frame of the registration run; ``version`` is the agent's SDK constant."""

    id: int
    version: str


@dataclass(frozen=True)
class ValidateRequest:
    """Registration run, Configurator only: may we run with these ``Plugins.<Name>.*``?"""

    id: int
    private_options: object


@dataclass(frozen=True)
class ConfigureRequest:
    """First frame of the operational run. ``timeout`` is the agent's global ``Timeout``."""

    id: int
    timeout: int | None
    source_ip: str
    private_options: object


@dataclass(frozen=True)
class StartRequest:
    """Runner only; kyoten does not ask for it but tolerates it."""

    id: int


@dataclass(frozen=True)
class TerminateRequest:
    """Exit now (``id`` is 0 on 6.0, a counter value on 7.0)."""

    id: int


@dataclass(frozen=True)
class ExportRequest:
    """One check. ``timeout`` (seconds) is the item timeout, sent from 7.0 on."""

    id: int
    key: str
    params: tuple[str, ...]
    timeout: int | None


@dataclass(frozen=True)
class UnknownRequest:
    """A message type this plugin does not know (Period requests, or a future addition)."""

    id: int
    type: int


Request = (
    RegisterRequest
    | ValidateRequest
    | ConfigureRequest
    | StartRequest
    | TerminateRequest
    | ExportRequest
    | UnknownRequest
)

# ----------------------------------------------------------------------------- plugin -> agent


@dataclass(frozen=True)
class LogMessage:
    """A line for the agent's log; ``id`` is always 0 (7.x routes ``id==0`` as a log)."""

    severity: Severity
    message: str


@dataclass(frozen=True)
class RegisterResponse:
    """Name, flat ``[key, description, ...]`` list and interface bits, or an ``error`` that
    makes the agent refuse to start."""

    id: int
    name: str
    metrics: tuple[str, ...] = ()
    interfaces: int = Interface.EXPORTER
    error: str | None = None


@dataclass(frozen=True)
class ValidateResponse:
    """No ``error`` accepts the options; an ``error`` stops the agent with that text."""

    id: int
    error: str | None = None


@dataclass(frozen=True)
class ExportResponse:
    """Exactly one of ``value`` and ``error``; a reply with neither reads "No data"."""

    id: int
    value: str | None = None
    error: str | None = None

    def __post_init__(self) -> None:
        if (self.value is None) == (self.error is None):
            raise ValueError("an ExportResponse needs exactly one of value and error")


Response = LogMessage | RegisterResponse | ValidateResponse | ExportResponse


def response_body(msg: Response) -> dict[str, object]:
    """The JSON object for ``msg``, with only the fields the agent expects."""
    if isinstance(msg, LogMessage):
        return {
            "id": 0,
            "type": MessageType.LOG.value,
            "severity": int(msg.severity),
            "message": msg.message,
        }
    if isinstance(msg, RegisterResponse):
        body: dict[str, object] = {"id": msg.id, "type": MessageType.REGISTER_RESPONSE.value}
        if msg.error is not None:
            body["error"] = msg.error
        else:
            body["name"] = msg.name
            body["metrics"] = list(msg.metrics)
            body["interfaces"] = int(msg.interfaces)
        return body
    if isinstance(msg, ValidateResponse):
        body = {"id": msg.id, "type": MessageType.VALIDATE_RESPONSE.value}
        if msg.error is not None:
            body["error"] = msg.error
        return body
    body = {"id": msg.id, "type": MessageType.EXPORT_RESPONSE.value}
    if msg.error is not None:
        body["error"] = msg.error
    else:
        body["value"] = msg.value
    return body


def encode(msg: Response) -> bytes:
    """One whole frame, header and body, ready for a single ``sendall``.

    Early 6.0 agents read the header and the body with one ``Read`` each and fail on a short
    read, so a frame is never written in pieces.
    """
    body = orjson.dumps(response_body(msg))  # compact, UTF-8 as is (ensure_ascii=False)
    return HEADER.pack(FRAME_TYPE_JSON, len(body)) + body


# ----------------------------------------------------------------------------- decoding


def _uint(body: dict[str, object], name: str) -> int:
    value = body.get(name)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ProtocolError(f"field {name!r} must be an unsigned integer, got {value!r}")
    return value


def _opt_int(body: dict[str, object], name: str) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise ProtocolError(f"field {name!r} must be an integer, got {value!r}")
    return value


def parse_body(raw: bytes) -> Request:
    """Decode one frame body into a request; :class:`ProtocolError` if it is not one."""
    try:
        body = orjson.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:  # orjson's is a subclass
        raise ProtocolError(f"frame body is not JSON: {exc}") from exc
    if not isinstance(body, dict):
        raise ProtocolError("frame body is not a JSON object")
    msg_id = _uint(body, "id")
    msg_type = _uint(body, "type")
    if msg_type == MessageType.EXPORT_REQUEST:
        key = body.get("key")
        if not isinstance(key, str) or not key:
            raise ProtocolError(f"export request {msg_id} has no key")
        params = body.get("parameters") or []
        if not isinstance(params, list) or not all(isinstance(p, str) for p in params):
            raise ProtocolError(f"export request {msg_id}: parameters must be strings")
        return ExportRequest(msg_id, key, tuple(params), _opt_int(body, "timeout"))
    if msg_type == MessageType.REGISTER_REQUEST:
        version = body.get("version")
        return RegisterRequest(msg_id, version if isinstance(version, str) else str(version))
    if msg_type == MessageType.VALIDATE_REQUEST:
        return ValidateRequest(msg_id, body.get("private_options"))
    if msg_type == MessageType.CONFIGURE_REQUEST:
        glob = body.get("global_options")
        glob = glob if isinstance(glob, dict) else {}
        source_ip = glob.get("SourceIP")
        return ConfigureRequest(
            msg_id,
            _opt_int(glob, "Timeout"),
            source_ip if isinstance(source_ip, str) else "",
            body.get("private_options"),
        )
    if msg_type == MessageType.START_REQUEST:
        return StartRequest(msg_id)
    if msg_type == MessageType.TERMINATE_REQUEST:
        return TerminateRequest(msg_id)
    return UnknownRequest(msg_id, msg_type)


def request_id(raw: bytes) -> int | None:
    """Best-effort ``id`` of a body :func:`parse_body` rejected, so an export with a bad field
    can still be answered (an unanswered id only times out in the agent)."""
    try:
        body = orjson.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    if isinstance(body, dict) and body.get("type") == MessageType.EXPORT_REQUEST:
        msg_id = body.get("id")
        if isinstance(msg_id, int) and not isinstance(msg_id, bool) and msg_id > 0:
            return msg_id
    return None


@dataclass
class FrameDecoder:
    """Incremental splitter: feed it whatever ``recv`` returned, get whole frame bodies.

    Keeping the partial frame here (and not in the socket loop) is what lets the tests feed a
    captured stream one byte at a time. The buffer never holds more than one frame beyond the
    data just fed, and a header announcing more than ``max_body`` bytes is rejected at once.
    """

    max_body: int = MAX_BODY
    _buf: bytearray = field(default_factory=bytearray, init=False, repr=False)

    def feed(self, data: bytes) -> Iterator[bytes]:
        """Append ``data`` and yield every complete body; :class:`FramingError` on garbage."""
        self._buf += data
        while len(self._buf) >= HEADER.size:
            frame_type, length = HEADER.unpack_from(self._buf)
            if frame_type != FRAME_TYPE_JSON:
                raise FramingError(f"frame type {frame_type}: only JSON frames (1) exist")
            if length > self.max_body:
                raise FramingError(f"frame body of {length} bytes exceeds {self.max_body}")
            end = HEADER.size + length
            if len(self._buf) < end:
                return
            body = bytes(self._buf[HEADER.size : end])
            del self._buf[:end]
            yield body

    @property
    def pending(self) -> int:
        """Bytes of an incomplete frame held back."""
        return len(self._buf)


def decode_stream(data: bytes) -> list[Request]:
    """Every request in a complete byte stream (tests and captured frames)."""
    decoder = FrameDecoder()
    out = [parse_body(body) for body in decoder.feed(data)]
    if decoder.pending:
        raise ProtocolError(f"{decoder.pending} trailing bytes after the last whole frame")
    return out


def request_frame(body: dict[str, object]) -> bytes:
    """Frame an agent-side body (what the agent would send): for tests and the bench."""
    raw = json.dumps(body, separators=(",", ":")).encode()
    return HEADER.pack(FRAME_TYPE_JSON, len(raw)) + raw
