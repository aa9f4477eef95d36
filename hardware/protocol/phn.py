"""PHN, the legacy 2-byte socket protocol that NHL, the older NH*-3FB models, PHN-3FBE1 and
LA6-POE all accept (NHL manual p. 12, LA6-POE manual p. 44): the lowest common denominator
for old towers.

``W`` + one operation byte sets the *whole* state (there is no "no change"), answered by ASCII
``ACK``/``NAK``; ``R`` answers ``R`` + the same byte. Bits, low to high: lit red/amber/green,
buzzer pattern 1, buzzer pattern 2, flash red/amber/green. Only three lamps, one flash pattern
and two buzzer patterns exist. If lit and flash are both set, lit wins; buzzer 1 beats 2.
"""

from __future__ import annotations

from dataclasses import dataclass

from kyoten.hardware.model import Colour, Light, TowerState
from kyoten.hardware.protocol import BadReply, Nak, check_buzzer, lamp_code, require_colours

ACK = b"ACK"
NAK = b"NAK"
LAMPS: tuple[Colour, ...] = (Colour.RED, Colour.AMBER, Colour.GREEN)
_LIT = {Colour.RED: 0x01, Colour.AMBER: 0x02, Colour.GREEN: 0x04}
_FLASH = {Colour.RED: 0x20, Colour.AMBER: 0x40, Colour.GREEN: 0x80}
_BUZZER = {0: 0x00, 1: 0x08, 2: 0x10}
_VALID = {Light.OFF: 0, Light.ON: 1, Light.BLINK: 2}


def operation_byte(state: TowerState) -> int:
    """The ``W`` operation byte for ``state``; raises UnsupportedState beyond PHN's reach."""
    require_colours("phn", state, LAMPS)
    check_buzzer("phn", state.buzzer, 2)
    value = _BUZZER[state.buzzer]
    for colour in LAMPS:
        code = lamp_code("phn", colour, state.light(colour), _VALID)
        value |= _LIT[colour] if code == 1 else _FLASH[colour] if code == 2 else 0
    return value


def state_of(value: int) -> TowerState:
    """The lamp vector an operation byte shows, with the manual's priority rules applied."""
    lights = {}
    for colour in LAMPS:
        if value & _LIT[colour]:
            lights[colour] = Light.ON
        elif value & _FLASH[colour]:
            lights[colour] = Light.BLINK
    buzzer = 1 if value & 0x08 else 2 if value & 0x10 else 0
    return TowerState.from_lights(lights, buzzer)


@dataclass(frozen=True)
class Phn:
    """The PHN codec."""

    name: str = "phn"
    max_buzzer: int = 2
    can_read: bool = True

    def encode_set(self, state: TowerState) -> bytes:
        return bytes([0x57, operation_byte(state)])

    def encode_clear(self) -> bytes:
        return b"W\x00"

    def encode_status(self) -> bytes:
        return b"R"

    def reply_needed(self, request: bytes, reply: bytes) -> int:
        # W answers ACK/NAK; R answers R + byte, or NAK: both decided by the first byte
        if request[:1] == b"R" and reply[:1] == b"R":
            return max(0, 2 - len(reply))
        return max(0, 3 - len(reply))

    def check_ack(self, reply: bytes) -> None:
        if reply == ACK:
            return
        if reply == NAK:
            raise Nak("NAK")
        raise BadReply(f"expected ACK or NAK, got {reply!r}")

    def decode_status(self, reply: bytes) -> TowerState:
        if reply == NAK:
            raise Nak("NAK to R")
        if len(reply) != 2 or reply[:1] != b"R":
            raise BadReply(f"expected R + operation byte, got {reply!r}")
        return state_of(reply[1])

    def request_needed(self, buffer: bytes) -> int:
        if not buffer:
            return 1
        return max(0, 2 - len(buffer)) if buffer[:1] == b"W" else 0

    def answer(self, request: bytes, state: TowerState) -> tuple[bytes, TowerState]:
        if request[:1] == b"W" and len(request) == 2:
            return ACK, state_of(request[1])
        if request == b"R":
            # a tower stores the byte; we store the state, so re-encode (lit wins, as shown)
            return bytes([0x52, operation_byte(state)]), state
        return NAK, state
