"""The transaction layer's timer queues: due timers come out in deadline
order, cancelled and re-set timers are skipped, and next_deadline is never
later than the earliest timer still set."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from telavox.sip.transaction.base import Input
from telavox.sip.transaction.timerqueue import TimerQueues


class FakeTxn:
    """What the queues read of a transaction: its record of set timers,
    keyed by the timer's value as Transaction keeps it."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._deadlines: dict[str, float] = {}

    def set(self, queues: TimerQueues, timer: Input, delay: float, now: float) -> None:
        self._deadlines[timer.value] = now + delay
        queues.add(self, timer, delay, now + delay)  # type: ignore[arg-type]

    def cancel(self, timer: Input) -> None:
        self._deadlines.pop(timer.value, None)

    def fire(self, timer: Input, at: float) -> bool:
        if self._deadlines.get(timer.value) != at:
            return False
        del self._deadlines[timer.value]
        return True

    def __repr__(self) -> str:
        return self.name


def take(queues: TimerQueues, now: float) -> list[tuple[str, str, float]]:
    out = []
    for txn, timer, at in queues.due(now):
        if txn.fire(timer, at):  # type: ignore[attr-defined]
            out.append((txn.name, timer.value, at))  # type: ignore[attr-defined]
    return out


def test_due_timers_come_in_deadline_order_across_kinds() -> None:
    queues = TimerQueues()
    a, b = FakeTxn("a"), FakeTxn("b")
    a.set(queues, Input.TIMER_B, 32.0, 0.0)
    a.set(queues, Input.TIMER_A, 0.5, 0.0)
    b.set(queues, Input.TIMER_A, 0.5, 0.1)
    b.set(queues, Input.TIMER_K, 5.0, 0.2)
    assert queues.next_deadline() == 0.5
    assert take(queues, 10.0) == [("a", "A", 0.5), ("b", "A", 0.6), ("b", "K", 5.2)]
    assert queues.next_deadline() == 32.0
    assert take(queues, 40.0) == [("a", "B", 32.0)]
    assert queues.next_deadline() is None
    assert len(queues) == 0


def test_cancelled_and_reset_timers_are_skipped() -> None:
    queues = TimerQueues()
    a, b = FakeTxn("a"), FakeTxn("b")
    a.set(queues, Input.TIMER_E, 0.5, 0.0)
    b.set(queues, Input.TIMER_E, 0.5, 0.1)
    a.cancel(Input.TIMER_E)
    b.set(queues, Input.TIMER_E, 1.0, 0.2)  # set again, for later
    # the cancelled timer may still be named as the next deadline...
    assert queues.next_deadline() in (0.5, 1.2)
    # ... but nothing of it comes out, and the answer is exact afterwards
    assert take(queues, 0.9) == []
    assert queues.next_deadline() == 1.2
    assert take(queues, 1.2) == [("b", "E", 1.2)]
    assert queues.next_deadline() is None


def test_a_clock_stepping_back_keeps_the_queue_in_order() -> None:
    queues = TimerQueues()
    a, b = FakeTxn("a"), FakeTxn("b")
    a.set(queues, Input.TIMER_J, 32.0, 10.0)
    b.set(queues, Input.TIMER_J, 32.0, 5.0)
    assert queues.next_deadline() == 37.0
    assert take(queues, 50.0) == [("b", "J", 37.0), ("a", "J", 42.0)]


def test_timers_set_while_running_are_given_when_due() -> None:
    queues = TimerQueues()
    a = FakeTxn("a")
    a.set(queues, Input.TIMER_D, 0.0, 1.0)
    seen = []
    for txn, timer, at in queues.due(1.0):
        if txn.fire(timer, at):  # type: ignore[attr-defined]
            seen.append(timer)
            if timer is Input.TIMER_D:
                a.set(queues, Input.TIMER_K, 0.0, 1.0)
    assert seen == [Input.TIMER_D, Input.TIMER_K]


_KINDS = [Input.TIMER_A, Input.TIMER_B, Input.TIMER_E, Input.TIMER_K]
_DELAYS = [0.0, 0.5, 1.0, 4.0, 32.0]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(
    st.sampled_from(["set", "cancel", "run"]), st.integers(0, 5), st.sampled_from(_KINDS),
    st.sampled_from(_DELAYS), st.floats(0.0, 3.0)), max_size=60))
def test_queues_fire_what_a_sorted_reference_fires(steps: list) -> None:
    """Against a reference that keeps every set timer and fires the due ones
    in deadline order: the same timers come out, at the same deadlines, and
    next_deadline is never later than the reference's earliest."""
    queues = TimerQueues()
    txns = [FakeTxn(str(i)) for i in range(6)]
    now = 0.0
    for op, index, kind, delay, step in steps:
        txn = txns[index]
        if op == "set":
            txn.set(queues, kind, delay, now)
        elif op == "cancel":
            txn.cancel(kind)
        else:
            now += step
            pending = sorted((at, t.name, k) for t in txns for k, at in t._deadlines.items())
            expected_next = pending[0][0] if pending else None
            got_next = queues.next_deadline()
            if expected_next is not None:
                assert got_next is not None and got_next <= expected_next
            due = [(name, kind_name, at) for at, name, kind_name in pending if at <= now]
            fired = take(queues, now)
            assert sorted(fired, key=lambda f: (f[2], f[0], f[1])) == sorted(
                due, key=lambda f: (f[2], f[0], f[1]))
            assert [f[2] for f in fired] == sorted(f[2] for f in fired)
