"""The serial interface converters PHE-3FB3/3FB2 and PHC-D08N (PHE-3FB3-RYG user's manual).

ASCII frames ``@`` + 2-byte ID (``??`` is the default and the wildcard) + command + data + ``!``,
no CR/LF, 9600 8N1 without flow control; ACK 0x06 / NAK 0x15; the next command only after
the reply. We use ``S`` (R, A, G, unused, unused, buzzer as ``0``-``4``/``9``) and never the
``1``/``0`` bit-mask commands, whose amber/green bits the sources disagree on and which the
manual says not to mix with ``S``.

Open questions this code takes a side on: the manual's example fills the unused ``S`` bytes with
``-`` but also NAKs data outside 0x30-0x3F, so we send ``0`` there (inside the range), and the
tower side accepts anything there. The ``G`` reply is taken as 6 bare ASCII bytes in the ``S``
layout, as the manual's example shows, without ``@``/``!`` framing.
"""

from __future__ import annotations

from dataclasses import dataclass

from kyoten.hardware.errors import TowerConfigError
from kyoten.hardware.model import Colour, Light, TowerState
from kyoten.hardware.protocol import BadReply, Nak, check_buzzer, lamp_code, require_colours

ACK = b"\x06"
NAK = b"\x15"
LAMPS: tuple[Colour, ...] = (Colour.RED, Colour.AMBER, Colour.GREEN)
_DIGIT = {Light.OFF: 0, Light.ON: 1, Light.BLINK: 2, Light.BLINK2: 3}
_DIGIT_BACK = {v: k for k, v in _DIGIT.items()}
UNUSED = b"0"
MAX_FRAME = 1 + 2 + 1 + 8 + 1  # @ ID cmd data(≤8, PHC-D08N) !


def _state_digits(state: TowerState) -> bytes:
    require_colours("serial", state, LAMPS)
    lamps = [lamp_code("serial", c, state.light(c), _DIGIT) for c in LAMPS]
    buzzer = check_buzzer("serial", state.buzzer, 4)
    return "".join(str(d) for d in lamps).encode() + UNUSED * 2 + str(buzzer).encode()


@dataclass(frozen=True)
class Phe:
    """The serial converter codec; ``unit_id`` is the 2-character ID (``??`` = any)."""

    unit_id: str = "??"
    name: str = "serial"
    max_buzzer: int = 4
    can_read: bool = True

    def __post_init__(self) -> None:
        if len(self.unit_id) != 2 or not self.unit_id.isascii():
            raise TowerConfigError(
                f"serial unit id must be 2 ASCII characters, got {self.unit_id!r}"
            )

    def _frame(self, command: bytes, data: bytes = b"") -> bytes:
        return b"@" + self.unit_id.encode() + command + data + b"!"

    def encode_set(self, state: TowerState) -> bytes:
        return self._frame(b"S", _state_digits(state))

    def encode_clear(self) -> bytes:
        return self._frame(b"C")

    def encode_status(self) -> bytes:
        return self._frame(b"G")

    def reply_needed(self, request: bytes, reply: bytes) -> int:
        if reply[:1] == NAK or request[3:4] != b"G":
            return max(0, 1 - len(reply))
        return max(0, 6 - len(reply))

    def check_ack(self, reply: bytes) -> None:
        if reply == ACK:
            return
        if reply == NAK:
            raise Nak("NAK")
        raise BadReply(f"expected ACK 06 or NAK 15, got {reply.hex(' ') or 'nothing'}")

    def decode_status(self, reply: bytes) -> TowerState:
        if reply[:1] == NAK:
            raise Nak("NAK to G")
        if len(reply) != 6 or not reply.isdigit():
            raise BadReply(f"G reply must be 6 ASCII digits, got {reply!r}")
        lights = {}
        for i, colour in enumerate(LAMPS):
            if int(reply[i : i + 1]) not in _DIGIT_BACK:
                raise BadReply(f"G {colour.value} value {reply[i : i + 1]!r} is not defined")
            lights[colour] = _DIGIT_BACK[int(reply[i : i + 1])]
        buzzer = int(reply[5:6])
        if buzzer > 4:
            raise BadReply(f"G buzzer value {buzzer} is not defined")
        return TowerState.from_lights(lights, buzzer)

    # --- tower side ----------------------------------------------------------------------------
    def request_needed(self, buffer: bytes) -> int:
        if b"!" in buffer or len(buffer) >= MAX_FRAME:
            return 0
        return 1

    def answer(self, request: bytes, state: TowerState) -> tuple[bytes, TowerState]:
        request = request[: request.find(b"!") + 1] if b"!" in request else request
        if len(request) < 5 or request[:1] != b"@" or request[-1:] != b"!":
            return NAK, state
        unit, command, data = request[1:3].decode("latin-1"), request[3:4], request[4:-1]
        if unit != self.unit_id and unit != "??" and self.unit_id != "??":
            return b"", state  # addressed to another converter on the line: stay silent
        if command == b"C" and not data:
            return ACK, TowerState()
        if command == b"G" and not data:
            return _state_digits(state), state
        if command == b"S" and len(data) == 6:
            try:
                return ACK, _apply_set(data, state)
            except ValueError:
                return NAK, state
        return NAK, state


def _apply_set(data: bytes, state: TowerState) -> TowerState:
    lights = {}
    for i, colour in enumerate(LAMPS):
        code = int(data[i : i + 1])
        if code == 9:
            lights[colour] = state.light(colour)
        elif code in _DIGIT_BACK:
            lights[colour] = _DIGIT_BACK[code]
        else:
            raise ValueError(code)
    buzzer = int(data[5:6])
    if buzzer == 9:
        buzzer = state.buzzer
    elif buzzer > 4:
        raise ValueError(buzzer)
    return TowerState.from_lights(lights, buzzer)
