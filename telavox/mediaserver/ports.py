"""The RTP port-pair pool of a mediaserver (sans-IO: time is passed in).

Owns :class:`PortPool`.  The configured range ``[low, high]`` is cut into
pairs: an even RTP port and RTCP on the next (odd) one, both inside the
range (RFC 3550 §11).  A pair is handed out in random order, so the ports of
the next call cannot be guessed from the last one; a released pair is
quarantined for ``quarantine`` seconds before it can be handed out again, so
late packets of an old call never land in a new one.

Binding the sockets is the caller's: :meth:`PortPool.acquire` calls the
``bind`` function it is given with the pair and, when that raises
:class:`OSError` (another program holds a port), quarantines the pair like a
released one and tries the next.  When no pair is left it raises
``MediaError(status=503)``.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable
from typing import TypeVar

from telavox.interfaces import MediaError

__all__ = ["DEFAULT_QUARANTINE", "PortPool"]

#: Seconds a released (or unbindable) pair waits before it is used again.
DEFAULT_QUARANTINE = 5.0

T = TypeVar("T")


class PortPool:
    """Even/odd port pairs of ``[low, high]``, in random order, with quarantine.

    ``rng`` chooses the pairs (a seeded :class:`random.Random` in tests).
    Raises :class:`ValueError` when the range holds no pair.
    """

    def __init__(self, low: int, high: int, quarantine: float = DEFAULT_QUARANTINE,
                 rng: random.Random | None = None) -> None:
        if not 0 < low <= high <= 65535:
            raise ValueError(f"bad RTP port range {low}-{high}")
        first = low + (low & 1)
        self._free: list[int] = list(range(first, high, 2))
        if not self._free:
            raise ValueError(f"RTP port range {low}-{high} holds no even/odd pair")
        self.low = low
        self.high = high
        self.size = len(self._free)
        self.quarantine = quarantine
        self._rng = rng if rng is not None else random.SystemRandom()
        self._quarantined: deque[tuple[float, int]] = deque()
        self._in_use: set[int] = set()
        self.bind_failures = 0
        self.exhausted = 0

    @property
    def in_use(self) -> int:
        """Number of pairs handed out and not released."""
        return len(self._in_use)

    @property
    def available(self) -> int:
        """Number of pairs that can be handed out now (quarantine not over
        counts as unavailable; call :meth:`expire` first for an exact
        figure)."""
        return len(self._free)

    @property
    def quarantined(self) -> int:
        """Number of pairs waiting out their quarantine."""
        return len(self._quarantined)

    def expire(self, now: float) -> None:
        """Return the pairs whose quarantine is over at ``now`` to the pool."""
        queue = self._quarantined
        while queue and queue[0][0] <= now:
            self._free.append(queue.popleft()[1])

    def acquire(self, now: float, bind: Callable[[int, int], T]) -> tuple[int, T]:
        """Hand out a pair: ``bind(rtp_port, rtcp_port)`` is called for random
        free pairs until one does not raise :class:`OSError`; returns the RTP
        port and what ``bind`` returned.

        Raises ``MediaError(status=503)`` when every pair is in use,
        quarantined or fails to bind.  Exceptions other than OSError from
        ``bind`` propagate (the pair goes back to the pool).
        """
        self.expire(now)
        free = self._free
        rng = self._rng
        while free:
            index = rng.randrange(len(free))
            free[index], free[-1] = free[-1], free[index]
            port = free.pop()
            try:
                result = bind(port, port + 1)
            except OSError:
                self.bind_failures += 1
                self._quarantined.append((now + self.quarantine, port))
                continue
            except BaseException:
                free.append(port)
                raise
            self._in_use.add(port)
            return port, result
        self.exhausted += 1
        raise MediaError(f"RTP port range {self.low}-{self.high} exhausted", status=503)

    def release(self, port: int, now: float) -> None:
        """Give back the pair of RTP port ``port``; it is quarantined until
        ``now + quarantine``.  Releasing a pair not in use is a no-op."""
        if port not in self._in_use:
            return
        self._in_use.discard(port)
        self._quarantined.append((now + self.quarantine, port))
