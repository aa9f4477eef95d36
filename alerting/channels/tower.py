"""The bridge's PATLITE tower channel: a :class:`~.base.StateChannel`.

The pipeline hands this channel the full set of open problems routed to it (on every change, at
start-up, every ``reassert`` seconds and at the time the last ``apply`` returned); the channel
turns it into one lamp vector with the pure :mod:`kyoten.alerting.tower_policy` and makes the
tower show it. Everything about time, retrying, ordering and rebuilding after a restart is the
pipeline's: the channel keeps no timer, never reads the store, and opens its
:class:`~kyoten.hardware.tower.Tower` with ``retries=0`` so one ``apply`` is one attempt and the
pipeline's backoff is the only retry. This module only adds what is particular to a piece of
hardware that someone can unplug or press buttons on:

* **Read back, where the protocol allows** (PNS ``G``, PHN ``R``, serial ``G``). Before writing,
  the channel reads what the tower shows; if that is not what it last made it show, the tower was
  power-cycled or changed by another client — logged and counted in :attr:`TowerChannel.drifts`
  (the :class:`~.base.Drifting` attribute the pipeline shows in ``/health`` and the metrics), then
  corrected by the write. After writing it reads again: a tower that does not hold the state it
  acknowledged is a (retryable) failure, so ``/health`` reports it like a dead tower.
* **Lamps the tower lacks** (PHN and the serial converters have only red, amber, green) are
  left dark with a warning rather than failing the vector, so an Information problem mapped to
  blue can never hide a Disaster on a three-lamp tower; ``build`` warns about it up front.
* **The buzzer's deadline.** The policy silences a Disaster's buzzer after ``silence_after``;
  ``apply`` returns that deadline (:func:`~kyoten.alerting.tower_policy.next_change`), and the
  pipeline's state lane calls ``apply`` again then, rather than at the next re-assert.

Config (``type: tower``)::

    noc-tower:
      type: tower
      url: pns://10.1.2.3:10000?model=nh       # see kyoten.hardware.tower for every scheme
      password_file: /etc/kyoten/tower.pw      # HTTP towers: basic-auth password (optional)
      username: admin                          # HTTP towers (default: admin when a password)
      timeout: 3                               # seconds per command (one attempt each)
      readback: true                           # read back where the protocol can
      colours: {information: white, not_classified: white}
      idle: green
      buzzer: 1
      silence_after: 300

``retries`` is still accepted so existing files load, but ignored with a warning when not 0: the
pipeline's ``retry:`` policy retries a failed ``apply``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

from kyoten.hardware.errors import TowerError, UnsupportedState
from kyoten.hardware.model import COLOURS, Colour, Light, TowerState
from kyoten.hardware.tower import Tower, open_tower

from ..tower_policy import SEVERITY_NAMES, Problem, TowerPolicy, decide, next_change
from .base import ChannelError, ChannelResources, OpenProblem, StateSnapshot
from .settings import TOWER, check

#: The tower's settings, in the order they are documented (declared in :data:`.settings.TOWER`)
SETTINGS = tuple(TOWER.fields)


def problems_of(snapshot: tuple[OpenProblem, ...]) -> list[Problem]:
    """The policy's view of the store's open problems.

    The buzzer timer runs from the latest of opening and the last change (acknowledge,
    unacknowledge, severity), so a problem escalated to Disaster or un-acknowledged sounds again.
    """
    return [
        Problem(p.event_id, int(p.severity), p.acknowledged, max(p.opened_at, p.changed_at))
        for p in snapshot
    ]


class TowerChannel:
    """One tower, shown the policy's vector for the open problems routed to it."""

    def __init__(
        self,
        name: str,
        tower: Tower,
        policy: TowerPolicy,
        resources: ChannelResources,
        *,
        readback: bool = True,
    ) -> None:
        self.name = name
        self.tower = tower
        self.policy = policy
        self.readback = readback and tower.can_read
        self._log = resources.log
        self._lock = asyncio.Lock()
        self._shown: TowerState | None = None
        #: read-back mismatches since start (:class:`~.base.Drifting`; only grows)
        self.drifts = 0
        self.last_drift_at: float | None = None
        #: colours this tower's protocol has no lamp for (PHN and serial: blue, white)
        self.lacking = frozenset(c for c in COLOURS if not _has_lamp(tower, c))
        self._dropped: frozenset[Colour] = frozenset()

    async def apply(self, snapshot: StateSnapshot) -> float | None:
        """Make the tower show the vector for ``snapshot`` (idempotent; full state every time).

        Returns when that vector changes by itself (the buzzer's silence deadline), or None.
        """
        problems = problems_of(snapshot.problems)
        wanted = decide(problems, snapshot.now, self.policy, muted=snapshot.muted)
        async with self._lock:
            wanted = self._fit(wanted)
            try:
                await self._show(wanted, snapshot.now)
            except TowerError as exc:
                self._shown = None  # unknown now: the next apply must not call it drift
                raise ChannelError(str(exc), retryable=exc.retryable) from None
        return next_change(problems, snapshot.now, self.policy)

    def _fit(self, wanted: TowerState) -> TowerState:
        """Drop lamps this tower does not have, and say so once per change.

        Failing the whole vector instead would let one Information problem on a three-lamp
        tower hide a Disaster; showing what the tower can and warning is the safer choice.
        """
        dropped = frozenset(c for c in self.lacking if wanted.light(c) is not Light.OFF)
        for colour in dropped:
            wanted = wanted.with_light(colour, Light.OFF)
        if dropped and dropped != self._dropped:
            names = ", ".join(sorted(c.value for c in dropped))
            self._log.warning(
                "%s: %s has no %s lamp; not shown (map those severities with colours:)",
                self.name, self.tower.url, names,
            )  # fmt: skip
        self._dropped = dropped
        return wanted

    async def _show(self, wanted: TowerState, now: float) -> None:
        if self.readback and self._shown is not None:
            before = await self.tower.status()
            if before != self._shown:
                self.drifts += 1
                self.last_drift_at = now
                self._log.warning(
                    "%s: %s showed %s instead of %s (power-cycled or changed by another "
                    "client); re-asserting",
                    self.name,
                    self.tower.url,
                    before.describe(),
                    self._shown.describe(),
                )
        await self.tower.set(wanted)
        if self.readback:
            after = await self.tower.status()
            if after != wanted:
                self._shown = None
                raise ChannelError(
                    f"{self.tower.url}: tower acknowledged {wanted.describe()} but shows "
                    f"{after.describe()}",
                    retryable=True,
                )
        self._shown = wanted

    def health(self) -> dict[str, Any]:
        """Tower-specific detail for diagnostics (the pipeline reports failures and ``drifts``
        in ``/health`` itself)."""
        return {
            "url": self.tower.url,
            "protocol": self.tower.codec.name,
            "readback": self.readback,
            "shown": None if self._shown is None else self._shown.describe(),
            "drifts": self.drifts,
            "not_shown": sorted(c.value for c in self._dropped),
            "last_drift_at": self.last_drift_at,
        }

    async def aclose(self) -> None:
        """Release the transport."""
        await self.tower.close()


def _with_credentials(url: str, username: str, password: str) -> str:
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    userinfo = f"{quote(username, safe='')}:{quote(password, safe='')}"
    return urlunsplit(parts._replace(netloc=f"{userinfo}@{host}"))


def build(name: str, settings: Mapping[str, Any], resources: ChannelResources) -> TowerChannel:
    """Validate ``settings`` (:data:`.settings.TOWER`, every problem at once) and make the
    channel."""
    v = check(TOWER, name, settings)
    url = v["url"]
    if v["password"] is not None:
        url = _with_credentials(url, v["username"], v["password"])
    policy = TowerPolicy.from_settings(v)
    if v["retries"]:
        resources.log.warning(
            "%s: retries: %s ignored; the bridge tries a tower once per apply and retries with "
            "the pipeline's retry policy", name, v["retries"],
        )  # fmt: skip
    # One attempt per command: the pipeline owns retrying (see the module docstring).
    tower = open_tower(url, timeout=v["timeout"], retries=0, session=resources.http)
    lacking = missing_lamps(tower, policy)
    if lacking:  # not an error: the routes may never send those severities to this tower
        resources.log.warning(
            "%s: %s has no lamp for the colour of %s; those problems will not show there "
            "(set colours:)", name, tower.url, ", ".join(lacking)
        )  # fmt: skip
    return TowerChannel(name, tower, policy, resources, readback=v["readback"])


def _has_lamp(tower: Tower, colour: Colour) -> bool:
    try:
        tower.codec.encode_set(TowerState().with_light(colour, Light.ON))
    except UnsupportedState:
        return False
    return True


def missing_lamps(tower: Tower, policy: TowerPolicy) -> list[str]:
    """Severity names (and ``idle``) whose configured colour the tower has no lamp for."""
    wanted = [(SEVERITY_NAMES[sev], colour) for sev, colour in sorted(policy.colours.items())]
    if policy.idle is not None:
        wanted.append(("idle", policy.idle))
    return [what for what, colour in wanted if not _has_lamp(tower, colour)]
