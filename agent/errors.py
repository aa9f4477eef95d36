"""kyoten's errors: each carries a message an operator can act on, never a secret."""

from __future__ import annotations


class KyotenError(Exception):
    """Base: the message is shown as-is (Zabbix 'not supported' reason, CLI error)."""


class ConfigError(KyotenError):
    """The TOML config is missing or invalid; the message lists every problem found."""


class KeyError_(KyotenError):
    """An item key is malformed, unknown, or has the wrong number of parameters."""


class UnknownTarget(KyotenError):
    """An item key names a target the config does not have; the message lists the known ones."""


class TargetError(KyotenError):
    """A target could not be reached or queried; the message names host:port and the cause."""


class ConnectError(TargetError):
    """No connection could be made (refused, unreachable, authentication failed).

    Told apart from a query that failed or ran out of time on an open connection: a live
    check counts only this as "PostgreSQL down"; a late answer is "unknown".
    """


class DeadlineExceeded(KyotenError):
    """The whole call ran out of time before the agent's Timeout."""


class QueryError(Exception):
    """A server's error (or a failed send/receive) on an open connection, whatever the driver.

    Internal: the connectors turn it into a TargetError naming the target. ``sqlstate`` is
    the server's SQLSTATE ('' when there is none, e.g. a lost connection); 57014 is a
    cancelled query (the deadline passed).
    """

    def __init__(self, message: str, sqlstate: str = "") -> None:
        super().__init__(message)
        self.sqlstate = sqlstate

    @property
    def canceled(self) -> bool:
        return self.sqlstate == "57014"
