"""Health of pool members from the outcomes of their OPTIONS probes.  Sans-IO.

Owns :class:`HealthTracker` (one :class:`MemberHealth` per member),
:class:`Transition` (what :meth:`HealthTracker.record` returns when a member
changes state) and :func:`probe_ok`, the rule that decides whether an answer
shows a live SIP server.

A probe fails when it got no answer in time, or a 408, 503 or any other 5xx:
the server is overloaded, broken or cannot reach what it needs.  Any other
final response (200, but also 404, 405, 481, 6xx ...) comes from a live SIP
stack and counts as a success.  An up member is marked down after
``down_after`` failed probes in a row; a down member is up again after
``up_after`` successful probes in a row.  Members start up, so a platform
routes calls from its first second; a member that is dead at start is
marked down after ``down_after`` probes.

The caller feeds outcomes with explicit time (``now``, seconds on any clock
it likes); nothing here reads a clock or does I/O.
"""

from __future__ import annotations

from collections.abc import Iterable

import attrs

__all__ = ["HealthTracker", "MemberHealth", "Transition", "describe", "probe_ok"]


def probe_ok(status: int | None) -> bool:
    """True when a probe's final ``status`` shows a live SIP server; None
    (no answer) is a failure, and so are 408 and every 5xx."""
    if status is None:
        return False
    if status < 200:
        raise ValueError(f"{status} is not a final response")
    return status != 408 and not 500 <= status <= 599


def describe(status: int | None, reason: str = "") -> str:
    """A short text for a probe outcome: ``no answer`` or ``503 Service
    Unavailable``."""
    if status is None:
        return reason or "no answer"
    return f"{status} {reason}".strip()


@attrs.frozen
class Transition:
    """Member ``name`` went ``up`` (True) or down (False) at ``at``;
    ``reason`` is the outcome of the probe that tipped it."""

    name: str
    up: bool
    at: float
    reason: str


@attrs.define
class MemberHealth:
    """The probe history of one member.

    ``failures_in_row``/``successes_in_row`` count the current run;
    ``probes``/``failed`` every probe so far; ``last_outcome`` describes the
    last probe, ``changed_at`` when ``up`` last changed (None: never).
    """

    name: str
    up: bool = True
    failures_in_row: int = 0
    successes_in_row: int = 0
    probes: int = 0
    failed: int = 0
    last_probe_at: float | None = None
    last_outcome: str = ""
    changed_at: float | None = None


class HealthTracker:
    """Up/down verdicts of a set of members from their probe outcomes."""

    def __init__(self, names: Iterable[str], down_after: int = 3, up_after: int = 1) -> None:
        self.members: dict[str, MemberHealth] = {name: MemberHealth(name) for name in names}
        self.down_after = 1
        self.up_after = 1
        self.set_thresholds(down_after, up_after)

    def set_thresholds(self, down_after: int, up_after: int) -> None:
        """Change how many failures/successes in a row flip a member (they
        apply from the next probe on)."""
        if down_after < 1 or up_after < 1:
            raise ValueError("down_after and up_after must be at least 1")
        self.down_after = down_after
        self.up_after = up_after

    def is_up(self, name: str) -> bool:
        """The current verdict on ``name`` (KeyError when unknown)."""
        return self.members[name].up

    def record(self, name: str, status: int | None, now: float, reason: str = ""
               ) -> Transition | None:
        """Feed the outcome of one probe of ``name``: its final status, or
        None when no answer came in time (``reason`` then says why, else it
        is the response's reason phrase).  Returns the transition it caused,
        if any."""
        health = self.members[name]
        ok = probe_ok(status)
        outcome = describe(status, reason)
        health.probes += 1
        health.last_probe_at = now
        health.last_outcome = outcome
        if ok:
            health.successes_in_row += 1
            health.failures_in_row = 0
            if not health.up and health.successes_in_row >= self.up_after:
                return self._flip(health, True, now, outcome)
        else:
            health.failed += 1
            health.failures_in_row += 1
            health.successes_in_row = 0
            if health.up and health.failures_in_row >= self.down_after:
                return self._flip(health, False, now, outcome)
        return None

    @staticmethod
    def _flip(health: MemberHealth, up: bool, now: float, outcome: str) -> Transition:
        health.up = up
        health.changed_at = now
        return Transition(health.name, up, now, outcome)
