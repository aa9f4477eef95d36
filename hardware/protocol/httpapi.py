"""The HTTP control API of the NH family: ``GET /api/control?alert=RYGBCZ`` and ``clear=1``.

Digits (as in the NH's RSH ``alert`` command): each lamp 0 off, 1 on, 2 flash 1, 3 flash 2, 9 no
change; the buzzer 0 off, 1-4 patterns, 9 no change. The body is ``Success.`` or ``Error.``.
There is no documented read-back for the NH family or LA6, so ``can_read`` is false and drift
can only be corrected by re-asserting. The "request" here is the path and query; the HTTP
transport prefixes the tower's base URL and returns the body.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit

from kyoten.hardware.errors import UnsupportedState
from kyoten.hardware.model import COLOURS, Light, TowerState
from kyoten.hardware.protocol import BadReply, Nak, check_buzzer, lamp_code

PATH = "/api/control"
SUCCESS = b"Success."
ERROR = b"Error."
_DIGIT = {Light.OFF: 0, Light.ON: 1, Light.BLINK: 2, Light.BLINK2: 3}
_DIGIT_BACK = {v: k for k, v in _DIGIT.items()}


def alert_digits(state: TowerState) -> str:
    """``RYGBCZ`` for ``state``, e.g. ``"123004"``."""
    lamps = [lamp_code("http", c, state.light(c), _DIGIT) for c in COLOURS]
    return "".join(str(d) for d in [*lamps, check_buzzer("http", state.buzzer, 4)])


@dataclass(frozen=True)
class HttpNh:
    """The NH-family HTTP codec."""

    name: str = "http"
    max_buzzer: int = 4
    can_read: bool = False

    def encode_set(self, state: TowerState) -> bytes:
        return f"{PATH}?alert={alert_digits(state)}".encode()

    def encode_clear(self) -> bytes:
        return f"{PATH}?clear=1".encode()

    def encode_status(self) -> bytes:
        raise UnsupportedState("the HTTP control API has no read-back")

    def reply_needed(self, request: bytes, reply: bytes) -> int:
        return 0  # HTTP frames the body itself

    def check_ack(self, reply: bytes) -> None:
        body = reply.strip()
        if body == SUCCESS:
            return
        if body == ERROR:
            raise Nak("Error.")
        raise BadReply(f"expected 'Success.' or 'Error.', got {body[:60]!r}")

    def decode_status(self, reply: bytes) -> TowerState:
        raise UnsupportedState("the HTTP control API has no read-back")

    def request_needed(self, buffer: bytes) -> int:
        return 0

    def answer(self, request: bytes, state: TowerState) -> tuple[bytes, TowerState]:
        parts = urlsplit(request.decode("ascii", "replace"))
        params = dict(parse_qsl(parts.query, keep_blank_values=True))
        if parts.path != PATH:
            return ERROR, state
        if params == {"clear": "1"}:
            return SUCCESS, TowerState()
        digits = params.get("alert", "")
        if set(params) != {"alert"} or len(digits) != 6 or not digits.isdigit():
            return ERROR, state
        values = [int(d) for d in digits]
        if any(v not in _DIGIT_BACK and v != 9 for v in values[:5]) or values[5] not in (
            0,
            1,
            2,
            3,
            4,
            9,
        ):
            return ERROR, state
        lights = {
            c: state.light(c) if values[i] == 9 else _DIGIT_BACK[values[i]]
            for i, c in enumerate(COLOURS)
        }
        buzzer = state.buzzer if values[5] == 9 else values[5]
        return SUCCESS, TowerState.from_lights(lights, buzzer)
