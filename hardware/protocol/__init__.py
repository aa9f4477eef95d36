"""Pure PATLITE protocol code: bytes in, bytes out, no sockets, no clocks.

Every protocol is one :class:`Codec`. The client half builds request frames from a
:class:`~kyoten.hardware.model.TowerState` and judges replies; the tower half (used by the
emulator) frames incoming requests and answers them exactly as a tower would. Keeping both halves
in one class means a byte layout is written down once, and the emulator can never drift from the
encoder the bridge uses. Transports only move bytes; they learn how many bytes a complete reply
or request needs from :meth:`Codec.reply_needed` / :meth:`Codec.request_needed`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from kyoten.hardware.errors import UnsupportedState
from kyoten.hardware.model import Colour, Light, TowerState


class Nak(Exception):
    """The tower refused a request (pure: the transport adds the tower's URL)."""


class BadReply(Exception):
    """The reply fits no shape of the protocol (pure: the transport adds the tower's URL)."""


class Codec(Protocol):
    """One wire protocol, both sides of it."""

    @property
    def name(self) -> str:
        """Short name used in messages and by the emulator (``pns-nh``, ``phn`` …)."""
        ...

    @property
    def max_buzzer(self) -> int:
        """The largest buzzer pattern the protocol can express."""
        ...

    @property
    def can_read(self) -> bool:
        """Whether the tower can be read back (``G``/``R``); the HTTP API cannot."""
        ...

    def encode_set(self, state: TowerState) -> bytes:
        """The request that makes the tower show ``state`` (the whole vector)."""
        ...

    def encode_clear(self) -> bytes:
        """The request that turns everything off."""
        ...

    def encode_status(self) -> bytes:
        """The read-back request; raises :class:`UnsupportedState` if ``can_read`` is false."""
        ...

    def reply_needed(self, request: bytes, reply: bytes) -> int:
        """How many more bytes the reply to ``request`` needs (0: complete)."""
        ...

    def check_ack(self, reply: bytes) -> None:
        """Accept an ACK; raise :class:`Nak` or :class:`BadReply` otherwise."""
        ...

    def decode_status(self, reply: bytes) -> TowerState:
        """The lamp vector in a read-back reply; raise :class:`Nak`/:class:`BadReply`."""
        ...

    def request_needed(self, buffer: bytes) -> int:
        """Tower side: how many more bytes complete the first request in ``buffer``."""
        ...

    def answer(self, request: bytes, state: TowerState) -> tuple[bytes, TowerState]:
        """Tower side: the reply to one complete request and the state it leaves behind."""
        ...


def lamp_code(codec: str, colour: Colour, light: Light, table: Mapping[Light, int]) -> int:
    """Look ``light`` up in a protocol's value table, or say which states it has."""
    try:
        return table[light]
    except KeyError:
        valid = ", ".join(k.value for k in table)
        raise UnsupportedState(
            f"{codec} cannot show {colour.value}={light.value}; it supports {valid}"
        ) from None


def check_buzzer(codec: str, buzzer: int, max_buzzer: int) -> int:
    """Reject buzzer patterns the protocol has no value for."""
    if buzzer > max_buzzer:
        raise UnsupportedState(f"{codec} has buzzer patterns 0..{max_buzzer}, not {buzzer}")
    return buzzer


def require_colours(codec: str, state: TowerState, available: tuple[Colour, ...]) -> None:
    """Refuse to silently drop a lit lamp the tower does not have."""
    for colour in Colour:
        if colour not in available and state.light(colour) is not Light.OFF:
            have = ", ".join(c.value for c in available)
            raise UnsupportedState(f"{codec} has no {colour.value} lamp; it has {have}")


def decode_lamp(table: Mapping[int, Light], value: int, what: str) -> Light:
    """Inverse of a value table, for read-back replies."""
    try:
        return table[value]
    except KeyError:
        raise BadReply(f"{what}: lamp value {value:#04x} is not defined") from None
