"""The timer values of RFC 3261 §17 and Table 4 (Appendix A), from T1/T2/T4.

Owns :class:`TimerConfig`.  All values are seconds.  Retransmission timers
(A, E, G) start at T1 and double (E and G capped at T2); timeouts B, F, H, J,
and RFC 6026's L and M are 64*T1; D is at least 32 s; I and K are T4.  On
reliable transports D, I, J and K are zero and A, E, G are not used.
"""

from __future__ import annotations

import attrs

__all__ = ["TimerConfig"]


def _positive(instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not value > 0:
        raise ValueError(f"{attribute.name} must be positive, got {value!r}")


@attrs.frozen
class TimerConfig:
    """T1 (RTT estimate), T2 (max retransmit interval for non-INVITE and
    responses) and T4 (max time a message stays in the network), plus the
    delay after which an INVITE server transaction sends 100 Trying on its own
    (§17.2.1; None to leave it to the transaction user)."""

    t1: float = attrs.field(default=0.5, validator=_positive)
    t2: float = attrs.field(default=4.0, validator=_positive)
    t4: float = attrs.field(default=5.0, validator=_positive)
    trying_delay: float | None = 0.2

    @property
    def timeout(self) -> float:
        """64*T1: Timers B, F, H, J (unreliable), L and M."""
        return 64 * self.t1

    @property
    def timer_d(self) -> float:
        """Timer D on unreliable transports: at least 32 s (§17.1.1.2)."""
        return max(32.0, self.timeout)

    def next_interval(self, interval: float, cap: bool) -> float:
        """The retransmission interval after ``interval``: doubled, capped at
        T2 when ``cap`` (Timers E and G; Timer A is not capped)."""
        doubled = interval * 2
        return min(doubled, self.t2) if cap else doubled
