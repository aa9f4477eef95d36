"""Transports move bytes to one tower and back; they know no protocol.

A transport is told how many more reply bytes it needs by a callable from the codec (see
:meth:`kyoten.hardware.protocol.Codec.reply_needed`), so the same TCP or serial code serves
every protocol. Failures to connect or to get a complete reply in time are raised as
:class:`~kyoten.hardware.errors.TowerUnreachable` carrying the tower's redacted URL.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

#: given the reply so far, how many more bytes complete it (0: done)
ReplyNeeded = Callable[[bytes], int]


class Link(Protocol):
    """One tower's byte pipe."""

    @property
    def url(self) -> str:
        """The tower's URL without credentials, for messages."""
        ...

    async def exchange(self, request: bytes, needed: ReplyNeeded, timeout: float) -> bytes:
        """Send ``request`` and return the complete reply, within ``timeout`` seconds."""
        ...

    async def close(self) -> None:
        """Release whatever the link holds open; it may be used again afterwards."""
        ...
