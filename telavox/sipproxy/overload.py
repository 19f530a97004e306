"""Overload control: turn new work away at the door while the process is out
of CPU, so that the calls in progress keep going.

A proxy that takes in more calls than its CPU can carry does not fail the
excess: it fails calls at random, late.  Datagrams queue in the socket, the
phones' retransmissions add to the queue, calls time out after ten seconds,
and in a one-process platform the RTP of the calls already up is relayed
late too (the congestion collapse of RFC 5390 and RFC 6357).  Refusing a
share of *new* requests at once with ``503 Service Unavailable`` and a
``Retry-After`` costs a fraction of carrying them, tells the phone at once,
and keeps the admitted calls whole.

:class:`OverloadControl` is sans-IO.  It is fed the CPU time of the thread
that does the work (the reactor's) at regular intervals
(:meth:`~OverloadControl.sample`) and answers :meth:`~OverloadControl.admit`
for each new request.  While that thread has
used at least ``limit`` of one core for ``hold`` consecutive samples, the
share of new requests admitted is multiplied by ``decrease`` at each sample
(down to ``floor``); once it is below the limit, the share grows by
``increase`` per sample back to 1, as in the loss-based scheme of RFC 7339.
A burst shorter than ``hold`` samples (a start-up, a phone office
re-registering) turns nothing away.  Admission is deterministic: with a
share of 0.25, exactly one request in four is admitted.
"""

from __future__ import annotations

__all__ = ["OverloadControl"]

_EPSILON = 1e-9
"""Slack for float sums: ten tenths make one admission."""


class OverloadControl:
    """The share of new requests admitted, from the process's CPU use.

    ``limit`` is a share of one core (the reactor runs on one), 0 to turn the
    control off.  ``hold`` is the number of consecutive samples at or above
    the limit before anything is turned away.
    """

    def __init__(self, limit: float, *, hold: int = 3, decrease: float = 0.75,
                 increase: float = 0.1, floor: float = 0.05) -> None:
        if limit < 0 or hold < 1 or not 0 < decrease < 1 or increase <= 0 \
                or not 0 < floor <= 1:
            raise ValueError("bad overload control parameters")
        self.limit = limit
        self.hold = hold
        self.decrease = decrease
        self.increase = increase
        self.floor = floor
        self.share = 1.0
        """The share of new requests admitted now, ``floor`` to 1."""
        self.utilization = 0.0
        """CPU used over the last sample's interval, in cores."""
        self.refused = 0
        """New requests turned away so far."""
        self._high = 0
        self._last: tuple[float, float] | None = None
        self._credit = 0.0

    @property
    def enabled(self) -> bool:
        """False when the limit is 0."""
        return self.limit > 0

    @property
    def shedding(self) -> bool:
        """True while some new requests are turned away."""
        return self.share < 1.0

    def sample(self, now: float, cpu: float) -> bool:
        """The process had used ``cpu`` seconds of CPU at time ``now``.

        Returns True when this sample started or ended shedding (worth a
        log line).
        """
        last, self._last = self._last, (now, cpu)
        was = self.shedding
        if not self.enabled:  # turned off, perhaps while shedding
            self.share, self._high, self._credit = 1.0, 0, 0.0
            return was
        if last is None or now <= last[0]:
            return False
        self.utilization = max(0.0, cpu - last[1]) / (now - last[0])
        if self.utilization >= self.limit:
            self._high += 1
            if self._high >= self.hold:
                self.share = max(self.floor, self.share * self.decrease)
        else:
            self._high = 0
            self.share = min(1.0, self.share + self.increase)
            if self.share == 1.0:
                self._credit = 0.0
        return was != self.shedding

    def admit(self) -> bool:
        """Whether to take one new request (counted in :attr:`refused` if not)."""
        if self.share >= 1.0 or not self.enabled:
            return True
        self._credit += self.share
        if self._credit >= 1.0 - _EPSILON:
            self._credit -= 1.0
            return True
        self.refused += 1
        return False
