"""The transaction timers of a layer: one first-in-first-out queue per timer
kind and delay.

Theory of operation.  Every transaction timer is set as "``delay`` seconds
from now", and a layer's ``now`` only moves forward, so the timers of one
kind set with one delay come due in the order they were set: a queue per
(kind, delay) is always sorted, and setting or running a timer is an append
or a pop at its ends instead of a heap operation over every timer of the
layer.  That matters for a proxy, which holds tens of thousands of
transactions for 64*T1 with two or three timers each.

Each queue keeps the deadlines and the transactions in two parallel deques,
so a pending timer costs two slots and no object of its own: nothing per
timer for the cyclic collector to walk.  A timer that is cancelled or set
again stays queued until its time and is skipped then, as the transaction's
own record of its deadlines (``Transaction._deadlines``, keyed by the
timer's value) no longer matches.

A deadline earlier than the last one of its queue (a clock that stepped
back, in tests) is inserted in order, so the queues stay sorted whatever the
caller does.
"""

from __future__ import annotations

import bisect
from collections import deque
from collections.abc import Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from telavox.sip.transaction.base import Input, Transaction

__all__ = ["TimerQueues"]


class _Queue:
    """The pending timers of one kind set with one delay, in deadline order."""

    __slots__ = ("deadlines", "key", "timer", "txns")

    def __init__(self, timer: Input) -> None:
        self.timer = timer
        self.key: str = timer._value_  # how the transaction's _deadlines name it
        self.deadlines: deque[float] = deque()
        self.txns: deque[Transaction] = deque()

    def add(self, txn: Transaction, at: float) -> None:
        deadlines = self.deadlines
        if not deadlines or deadlines[-1] <= at:
            deadlines.append(at)
            self.txns.append(txn)
            return
        index = bisect.bisect_right(deadlines, at)
        deadlines.insert(index, at)
        self.txns.insert(index, txn)

    def head(self) -> float | None:
        """The deadline of the first timer still set, dropping those before
        it that were cancelled or set again."""
        deadlines, txns, key = self.deadlines, self.txns, self.key
        while deadlines:
            at = deadlines[0]
            if txns[0]._deadlines.get(key) == at:
                return at
            deadlines.popleft()
            txns.popleft()
        return None


class TimerQueues:
    """Every pending timer of a transaction layer.

    :meth:`add` queues a timer; :meth:`due` takes out, in deadline order,
    those due at a given time that are still set; :meth:`next_deadline`
    says when to call it next.  Whether a timer is still set is read from
    its transaction (``_deadlines``), so cancelling costs nothing here.
    """

    __slots__ = ("_earliest", "_known", "_queues")

    def __init__(self) -> None:
        self._queues: dict[tuple[Input, float], _Queue] = {}
        self._earliest: float | None = None
        self._known = True  # _earliest is up to date with the timers added

    def add(self, txn: Transaction, timer: Input, delay: float, at: float) -> None:
        """Queue ``timer`` of ``txn``, set ``delay`` seconds before ``at``."""
        queue = self._queues.get((timer, delay))
        if queue is None:
            queue = self._queues[(timer, delay)] = _Queue(timer)
        queue.add(txn, at)
        if self._known:
            earliest = self._earliest
            if earliest is None or at < earliest:
                self._earliest = at

    def next_deadline(self) -> float | None:
        """When :meth:`due` has something to give next, or None when no
        timer is set.  Never later than the earliest timer still set; it
        may be earlier when that timer was cancelled since the last
        :meth:`due` (which then gives nothing, and this becomes exact): the
        price of keeping this call constant-time, as it is asked after
        every message."""
        if not self._known:
            best: float | None = None
            for queue in self._queues.values():
                at = queue.head()
                if at is not None and (best is None or at < best):
                    best = at
            self._earliest = best
            self._known = True
        return self._earliest

    def due(self, now: float) -> Iterator[tuple[Transaction, Input, float]]:
        """Each timer still set whose deadline is at or before ``now``, as
        (transaction, timer, deadline), earliest first.  Timers are taken
        out of their queues as they are gathered: the consumer checks, as
        ``Transaction.fire`` does, that one is still set when its turn
        comes.  Timers the consumer sets while iterating are given too when
        they are due by ``now``."""
        try:
            while True:
                batch: list[tuple[float, int, Transaction, Input]] = []
                queues = 0
                for queue in self._queues.values():
                    deadlines = queue.deadlines
                    if not deadlines or deadlines[0] > now:
                        continue
                    queues += 1
                    txns, timer, key = queue.txns, queue.timer, queue.key
                    while deadlines and deadlines[0] <= now:
                        at = deadlines.popleft()
                        txn = txns.popleft()
                        if txn._deadlines.get(key) == at:
                            batch.append((at, len(batch), txn, timer))
                if not batch:
                    return
                if queues > 1:
                    batch.sort()
                for at, _, txn, timer in batch:
                    yield txn, timer, at
        finally:
            self._known = False

    def __len__(self) -> int:
        """Timers queued, including cancelled ones not yet dropped."""
        return sum(len(queue.deadlines) for queue in self._queues.values())
