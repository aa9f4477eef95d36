"""The contract between the bridge's pipeline and its channels.

A channel only *sends*. Everything that cuts across channels — routing, dedup, ordering,
retries with backoff, rate limits, mutes, digests, dead letters, the durable store — belongs to
:mod:`kyoten.alerting.pipeline`, so a channel module is small and knows none of it. This mirrors
Alertmanager's ``Notify(ctx, alerts) (retryable bool, err error)``: the channel decides whether a
failure is worth retrying, the pipeline decides when.

There are two kinds of channel.

**Event channels** (:class:`EventChannel`: mail, Slack) turn one event into one message.
``send(notification)`` returns an optional :data:`Receipt` — a small ``dict[str, str]`` such as
``{"channel": "C024BE91L", "ts": "1700000000.000100"}`` for Slack or ``{"message_id": ...}`` for
mail. The pipeline stores the receipt in the same transaction that marks the delivery done, and
hands it back as ``notification.thread`` for the event's other deliveries on the same channel,
so threading never depends on Zabbix event tags. Per event, the pipeline sends problem →
updates → recovery strictly in that order on each channel, whatever order Zabbix delivered them
in (its retries let a recovery overtake its problem): a follow-up waits for its problem
(``follow_up_wait``), and only if none comes is it sent on its own. Then a channel that can
return a receipt for it (Slack: the top-level "resolved" message) does, and the late problem
gets that receipt as ``thread`` and edits that message instead of announcing an open problem.
``notification.resolved`` says when the event is already resolved.

**State channels** (:class:`StateChannel`: PATLITE towers) show the state of *all* open problems
routed to them, not one event. They implement ``apply(snapshot)`` instead of ``send``:

* The durable store keeps, per channel, the set of open problems routed to it
  (:class:`OpenProblem`: opened by a problem, changed by acknowledge/unacknowledge/severity
  updates, removed by a recovery or a close). It is updated in the same transaction that accepts
  the event, so it survives a crash and is exact after a restart.
* Whenever an accepted event is routed to a state channel, the pipeline reads that set and calls
  ``apply(StateSnapshot(...))`` once (several pending events coalesce into one call). It also
  calls ``apply`` at start-up — which is how the tower is rebuilt from the store after a restart
  — and every ``reassert`` seconds (channel option, default 30), so a power-cycled tower is
  brought up to date without an event.
* **The pipeline owns time.** ``apply`` returns when the shown state next changes by itself —
  an epoch time on the snapshot's clock (``snapshot.now``), e.g. the buzzer's silence deadline
  from :func:`kyoten.alerting.tower_policy.next_change` — or None if it is stable until the next
  event. The pipeline's state lane waits until the earliest of that time, the next re-assert and
  a new event, then calls ``apply`` again with a fresh snapshot from the store. A state channel
  keeps no timer and no task of its own, and reads the open problems only from the snapshot.
* ``apply`` raising :class:`ChannelError` goes through the same outcome path as a failed send:
  the pending deliveries are retried with the pipeline's backoff or dead-lettered by the
  channel's classification, and the error shows in ``/health`` (``last_error``) and the metrics,
  also when it was a re-assert or a timed apply without pending deliveries. Success marks all
  the channel's pending deliveries done. The snapshot carries ``muted`` (the channel's mute window
  is active) and ``now``; policy such as "buzzer only for an unacknowledged Disaster" stays in the
  channel's own pure code. Nothing under a channel retries by itself: the tower channel opens its
  :class:`kyoten.hardware.tower.Tower` with ``retries=0``.
* A state channel that reads back what its device shows may also expose ``drifts``
  (:class:`Drifting`): how many times the device showed something else than the channel had last
  made it show (power-cycled, or changed by another client). The pipeline reports it per channel
  in ``/health`` and as the ``kyoten_bridge_drifts_total`` counter.

A channel module exposes one builder, ``build(name, settings, resources) -> Channel``, and is
listed with one line in :data:`kyoten.alerting.channels.REGISTRY`. ``settings`` is the channel's
own section of the bridge config with the pipeline's keys (``type``, ``rate``, ``burst``,
``digest``, ``mute``, ``reassert``, ...) removed; the builder validates it and raises
:class:`kyoten.alerting.config.ConfigError` listing every problem.

Secrets: a channel must keep tokens, passwords and webhook URLs out of exception messages and
logs. The conformance test in ``tests/alerting/test_channel_contract.py`` checks every registered
channel for that; the pipeline additionally redacts configured secrets from stored errors.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from ..events import Event, Severity, Tag

if TYPE_CHECKING:
    import aiohttp

    from ..grouping import GroupNotice

#: Opaque per-channel reference to a sent message, stored by the pipeline (JSON object of str).
Receipt = Mapping[str, str]


class ChannelError(Exception):
    """A send failed. ``retryable`` says whether trying again may help.

    :param reason: short, secret-free text for logs, ``/health`` and the dead-letter table.
    :param retryable: True for timeouts, connection errors, 5xx, 429 and the like; False for
        errors that will fail the same way again (bad credentials, unknown channel, 4xx).
    :param retry_after: seconds the far end asked us to wait (HTTP ``Retry-After``); the
        pipeline waits at least that long before sending anything more on this channel.
    """

    def __init__(self, reason: str, *, retryable: bool, retry_after: float | None = None):
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class Notification:
    """What an event channel is asked to send.

    :ivar event: the event to announce.
    :ivar thread: the receipt of this event's problem message on this channel, if the problem
        was sent here (updates and recovery reply to it); None for problems or if it never went.
    :ivar digest: when a storm is in progress, the events folded into this one message (the
        first is also ``event``); empty for an ordinary single-event message.
    :ivar resolved: the event is already resolved as far as the bridge knows (a recovery or a
        close was accepted, possibly before this problem or update arrived): a problem is then
        shown resolved and an update must not make it look open again.
    """

    event: Event
    thread: Receipt | None = None
    digest: tuple[Event, ...] = ()
    resolved: bool = False
    #: one incident, one conversation: set when the channel groups events (``group:``), for
    #: an incident's first message, new members joining it, and its members' follow-ups
    group: GroupNotice | None = None


@dataclass(frozen=True, slots=True)
class OpenProblem:
    """One open problem routed to a state channel, as the durable store keeps it."""

    event_id: str
    severity: Severity
    name: str
    host: str
    acknowledged: bool
    opened_at: float  # epoch seconds when the bridge accepted the problem
    changed_at: float  # epoch seconds of the last accepted change (ack, severity)
    tags: tuple[Tag, ...] = ()


@dataclass(frozen=True, slots=True)
class StateSnapshot:
    """Everything a state channel needs to compute what to show."""

    problems: tuple[OpenProblem, ...]
    muted: bool
    now: float


@runtime_checkable
class EventChannel(Protocol):
    """A channel that announces events one by one (mail, Slack)."""

    name: str

    async def send(self, notification: Notification) -> Receipt | None:
        """Deliver one notification; raise :class:`ChannelError` on failure."""
        ...

    async def aclose(self) -> None:
        """Release connections; called once at shutdown."""
        ...


@runtime_checkable
class StateChannel(Protocol):
    """A channel that displays the state of all open problems routed to it (towers)."""

    name: str

    async def apply(self, snapshot: StateSnapshot) -> float | None:
        """Show ``snapshot``; raise :class:`ChannelError` on failure. Must be idempotent.

        Returns the time (on ``snapshot.now``'s clock) at which what the channel shows next
        changes without a new event, or None; the pipeline calls ``apply`` again by then.
        """
        ...

    async def aclose(self) -> None:
        """Release connections; called once at shutdown."""
        ...


@runtime_checkable
class Drifting(Protocol):
    """Optional for a state channel that reads its device back (towers).

    :ivar drifts: read-back mismatches since start: the device showed something other than what
        the channel had last made it show (power-cycled or changed by another client). Only
        ever grows; the pipeline reports it in ``/health`` and ``kyoten_bridge_drifts_total``.
    """

    drifts: int


Channel = EventChannel | StateChannel


@dataclass(frozen=True)
class ChannelResources:
    """Shared resources handed to every builder (created once per app, never per send).

    There is no way to read the store from here on purpose: a state channel gets the open
    problems in ``apply``'s snapshot, when the pipeline decides.
    """

    http: aiohttp.ClientSession
    log: logging.Logger


#: ``build(name, settings, resources)`` as listed in the registry.
Builder = Callable[[str, Mapping[str, Any], ChannelResources], Channel]
