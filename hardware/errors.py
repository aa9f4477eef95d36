"""The errors a tower can raise, split by what the caller should do about them.

A bridge decides whether to retry from the exception type alone: an unreachable or garbled
tower may answer next time (``retryable``), a NAK means the tower understood the frame and
refused it, which repeating the same bytes will not change. Every message starts with the
tower's URL with any credentials already removed, so errors can be logged as they are.
"""

from __future__ import annotations


class TowerError(Exception):
    """Base of every failure to drive a tower."""

    retryable = True

    def __init__(self, url: str, message: str) -> None:
        super().__init__(f"{url}: {message}")
        self.url = url


class TowerUnreachable(TowerError):
    """Connect failed, the link dropped, or no complete reply arrived in time."""


class TowerProtocolError(TowerError):
    """The tower answered with bytes that fit no reply of the protocol."""


class TowerRejected(TowerError):
    """The tower answered NAK (or HTTP ``Error.``): the frame was refused."""

    retryable = False


class TowerConfigError(ValueError):
    """A tower URL, model, colour or option is not valid; the message names the choices."""


class UnsupportedState(ValueError):
    """The requested lamp vector cannot be expressed in this tower's protocol."""
