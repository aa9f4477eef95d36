"""PNS, the binary socket protocol of networked PATLITE towers (TCP port 10000 by default).

Frame (all dialects; NHL manual p. 27, and PATLITE's sample code packs it as ``'>2ssxH'``): a
2-byte product category, a 1-byte ASCII command, one 0x00, a big-endian uint16 data length, the
data. Control commands answer one byte, ACK 0x06 or NAK 0x15; read commands answer their data
bare, so the first byte is checked for NAK before parsing. Three dialects differ only in the
data:

* ``XX`` NH family: ``S`` data is per colour (R, Y, G, B, W, buzzer), lamps 0/1/2/3/9,
  buzzer 0-4/9; ``G`` answers the same 6 bytes.
* ``AB`` LA6-POE: ``S`` data is per *tier* (tier 1 at the top) plus buzzer, tiers 0/1/2/9,
  buzzer 0-3/9; ``G`` answers 15 bytes (8 inputs, a mode byte, 5 tiers, buzzer). The tier →
  colour map is the tower's configuration, so it is ours too.
* ``AB`` LR5-LAN: ``S`` per colour, LEDs 0 off, 1 on, 2-4 blink slow/medium/high, 5-7 flash
  single/double/triple, buzzer 0/1; ``G`` answers 6 bytes.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass, field

from kyoten.hardware.errors import TowerConfigError
from kyoten.hardware.model import COLOURS, Colour, Light, TowerState, parse_colour
from kyoten.hardware.protocol import (
    BadReply,
    Nak,
    check_buzzer,
    decode_lamp,
    lamp_code,
    require_colours,
)

ACK = b"\x06"
NAK = b"\x15"
HEADER = struct.Struct(">2ssxH")
KEEP = 9  # "no change": never sent by us, honoured by the tower side


def frame(category: bytes, command: bytes, data: bytes = b"") -> bytes:
    """One PNS request frame."""
    return HEADER.pack(category, command, len(data)) + data


def split_frame(request: bytes) -> tuple[bytes, bytes, bytes]:
    """(category, command, data) of a complete frame."""
    category, command, length = HEADER.unpack_from(request)
    return category, command, request[HEADER.size : HEADER.size + length]


def _frame_needed(buffer: bytes) -> int:
    if len(buffer) < HEADER.size:
        return HEADER.size - len(buffer)
    length = int(HEADER.unpack_from(buffer)[2])
    return max(0, HEADER.size + length - len(buffer))


@dataclass(frozen=True)
class _PnsDialect:
    """Shared framing; subclasses say how a lamp vector maps onto ``S``/``G`` data."""

    name: str = field(init=False, default="pns")
    category: bytes = field(init=False, default=b"XX")
    max_buzzer: int = field(init=False, default=4)
    can_read: bool = field(init=False, default=True)
    status_length: int = field(init=False, default=6)

    # --- what differs per dialect -------------------------------------------------------------
    def _set_data(self, state: TowerState) -> bytes:
        raise NotImplementedError

    def _decode_status_data(self, data: bytes) -> TowerState:
        raise NotImplementedError

    def _status_data(self, state: TowerState) -> bytes:
        raise NotImplementedError

    def _apply_set(self, data: bytes, state: TowerState) -> TowerState:
        """Tower side of ``S``; raise :class:`Nak` for data a tower would refuse."""
        raise NotImplementedError

    # --- client side ---------------------------------------------------------------------------
    def encode_set(self, state: TowerState) -> bytes:
        return frame(self.category, b"S", self._set_data(state))

    def encode_clear(self) -> bytes:
        return frame(self.category, b"C")

    def encode_status(self) -> bytes:
        return frame(self.category, b"G")

    def reply_needed(self, request: bytes, reply: bytes) -> int:
        if reply[:1] == NAK:
            return 0
        want = self.status_length if request[2:3] == b"G" else 1
        return max(0, want - len(reply))

    def check_ack(self, reply: bytes) -> None:
        if reply == ACK:
            return
        if reply == NAK:
            raise Nak("NAK")
        raise BadReply(f"expected ACK 06 or NAK 15, got {reply.hex(' ') or 'nothing'}")

    def decode_status(self, reply: bytes) -> TowerState:
        if reply[:1] == NAK:
            raise Nak("NAK to G")
        if len(reply) != self.status_length:
            raise BadReply(f"G reply is {len(reply)} bytes, expected {self.status_length}")
        return self._decode_status_data(reply)

    # --- tower side ----------------------------------------------------------------------------
    def request_needed(self, buffer: bytes) -> int:
        return _frame_needed(buffer)

    def answer(self, request: bytes, state: TowerState) -> tuple[bytes, TowerState]:
        category, command, data = split_frame(request)
        if category != self.category:
            return NAK, state
        try:
            if command == b"S":
                return ACK, self._apply_set(data, state)
            if command == b"C" and not data:
                return ACK, TowerState()
            if command == b"G" and not data:
                return self._status_data(state), state
        except Nak:
            pass
        return NAK, state


def _kept(values: dict[int, Light], code: int, previous: Light) -> Light:
    if code == KEEP:
        return previous
    if code not in values:
        raise Nak(f"lamp value {code}")
    return values[code]


def _kept_buzzer(code: int, previous: int, max_buzzer: int) -> int:
    if code == KEEP:
        return previous
    if not 0 <= code <= max_buzzer:
        raise Nak(f"buzzer value {code}")
    return code


# --- per-colour dialects: NH family (XX) and LR5-LAN (AB) -----------------------------------

NH_LAMP = {Light.OFF: 0x00, Light.ON: 0x01, Light.BLINK: 0x02, Light.BLINK2: 0x03}
NH_LAMP_BACK = {v: k for k, v in NH_LAMP.items()}
LR5_LAMP = {Light.OFF: 0, Light.ON: 1, Light.BLINK: 2, Light.BLINK2: 6}
# read-back folds the three blink speeds into BLINK and the three flash counts into BLINK2
LR5_LAMP_BACK = {0: Light.OFF, 1: Light.ON, 2: Light.BLINK, 3: Light.BLINK, 4: Light.BLINK,
                 5: Light.BLINK2, 6: Light.BLINK2, 7: Light.BLINK2}  # fmt: skip


@dataclass(frozen=True)
class _PerColour(_PnsDialect):
    """``S``/``G`` data is R, Y(amber), G, B, W, buzzer; only the value tables differ."""

    lamp: dict[Light, int] = field(init=False, default_factory=lambda: NH_LAMP)
    lamp_back: dict[int, Light] = field(init=False, default_factory=lambda: NH_LAMP_BACK)

    def _set_data(self, state: TowerState) -> bytes:
        lamps = [lamp_code(self.name, c, state.light(c), self.lamp) for c in COLOURS]
        return bytes([*lamps, check_buzzer(self.name, state.buzzer, self.max_buzzer)])

    def _decode_status_data(self, data: bytes) -> TowerState:
        lights = {
            c: decode_lamp(self.lamp_back, data[i], f"G {c.value}") for i, c in enumerate(COLOURS)
        }
        if data[5] > self.max_buzzer:
            raise BadReply(f"G buzzer value {data[5]:#04x} is not defined")
        return TowerState.from_lights(lights, data[5])

    def _status_data(self, state: TowerState) -> bytes:
        return bytes([*(self.lamp[light] for light in state.lights()), state.buzzer])

    def _apply_set(self, data: bytes, state: TowerState) -> TowerState:
        if len(data) != 6:
            raise Nak("S data length")
        lights = {c: _kept(self.lamp_back, data[i], state.light(c)) for i, c in enumerate(COLOURS)}
        return TowerState.from_lights(lights, _kept_buzzer(data[5], state.buzzer, self.max_buzzer))


@dataclass(frozen=True)
class PnsNh(_PerColour):
    """NH family (NHL, NHL-FB2, NH-FV …): category ``XX``, lamps 0-3, buzzer 0-4."""

    name: str = field(init=False, default="pns-nh")


@dataclass(frozen=True)
class PnsLr5(_PerColour):
    """LR5-LAN: category ``AB``; BLINK is "blink slow" (2), BLINK2 "flash double" (6)."""

    name: str = field(init=False, default="pns-lr5")
    category: bytes = field(init=False, default=b"AB")
    max_buzzer: int = field(init=False, default=1)
    lamp: dict[Light, int] = field(init=False, default_factory=lambda: LR5_LAMP)
    lamp_back: dict[int, Light] = field(init=False, default_factory=lambda: LR5_LAMP_BACK)


# --- LA6-POE (AB, per tier) -----------------------------------------------------------------

LA6_LAMP = {Light.OFF: 0, Light.ON: 1, Light.BLINK: 2}
LA6_LAMP_BACK = {v: k for k, v in LA6_LAMP.items()}
LA6_DEFAULT_TIERS: tuple[Colour, ...] = COLOURS
#: ``D`` command colour codes (LA6 manual); lemon 3, sky blue 5, purple 7, pink 8 have no
#: counterpart in :class:`Colour` and are not produced here.
LA6_COLOUR_CODE = {Colour.RED: 1, Colour.AMBER: 2, Colour.GREEN: 4, Colour.BLUE: 6, Colour.WHITE: 9}


def parse_tiers(spec: str | Sequence[Colour]) -> tuple[Colour, ...]:
    """``"red,amber,green"`` → tier map (tier 1 first, i.e. the top lamp); 1-5 distinct colours."""
    if isinstance(spec, str):
        tiers = tuple(parse_colour(s) for s in spec.split(","))
    else:
        tiers = tuple(spec)
    if not 1 <= len(tiers) <= 5 or len(set(tiers)) != len(tiers):
        raise TowerConfigError(f"LA6 tiers must be 1 to 5 distinct colours, got {spec!r}")
    return tiers


@dataclass(frozen=True)
class PnsLa6(_PnsDialect):
    """LA6-POE: category ``AB``, ``S`` data per tier through the tower's tier → colour map."""

    tiers: tuple[Colour, ...] = LA6_DEFAULT_TIERS
    name: str = field(init=False, default="pns-la6")
    category: bytes = field(init=False, default=b"AB")
    max_buzzer: int = field(init=False, default=3)
    status_length: int = field(init=False, default=15)

    def __post_init__(self) -> None:
        parse_tiers(self.tiers)

    def _tier_codes(self, state: TowerState) -> list[int]:
        require_colours(self.name, state, self.tiers)
        codes = [lamp_code(self.name, c, state.light(c), LA6_LAMP) for c in self.tiers]
        return codes + [0] * (5 - len(codes))

    def _set_data(self, state: TowerState) -> bytes:
        buzzer = check_buzzer(self.name, state.buzzer, self.max_buzzer)
        return bytes([*self._tier_codes(state), buzzer])

    def _decode_status_data(self, data: bytes) -> TowerState:
        tiers = data[9:14]
        lights = {
            c: decode_lamp(LA6_LAMP_BACK, tiers[i], f"G tier {i + 1}")
            for i, c in enumerate(self.tiers)
        }
        if data[14] > self.max_buzzer:
            raise BadReply(f"G buzzer value {data[14]:#04x} is not defined")
        return TowerState.from_lights(lights, data[14])

    def _status_data(self, state: TowerState) -> bytes:
        # inputs 1-8 all open, mode 0x00 (signal-tower mode), tiers 1-5, buzzer
        return bytes(8) + b"\x00" + bytes([*self._tier_codes(state), state.buzzer])

    def _apply_set(self, data: bytes, state: TowerState) -> TowerState:
        if len(data) != 6:
            raise Nak("S data length")
        lights = {
            c: _kept(LA6_LAMP_BACK, data[i], state.light(c)) for i, c in enumerate(self.tiers)
        }
        return TowerState.from_lights(lights, _kept_buzzer(data[5], state.buzzer, self.max_buzzer))

    def encode_detailed(
        self, tier_colours: Sequence[Colour | None], *, flash: bool, buzzer: int
    ) -> bytes:
        """``D``: set each tier's colour explicitly (None = off); ``flash`` applies to all tiers.

        Not used for lamp vectors (one flash flag cannot show "red blinking, green steady"),
        but it is the only way to light a colour the tower's tier map does not have.
        """
        if len(tier_colours) != 5:
            raise TowerConfigError("D takes exactly 5 tier colours (None for off)")
        if not 0 <= buzzer <= 11:
            raise TowerConfigError(f"D buzzer is 0..11, not {buzzer}")
        codes = [0 if c is None else LA6_COLOUR_CODE[c] for c in tier_colours]
        return frame(self.category, b"D", bytes([*codes, int(flash), buzzer]))
