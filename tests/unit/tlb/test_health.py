"""Unit tests of :mod:`telavox.tlb.health`: which answers show a live SIP
server, and the up/down transitions with down_after/up_after."""

from __future__ import annotations

import pytest

from telavox.tlb.health import HealthTracker, Transition, describe, probe_ok


@pytest.mark.parametrize("status", [200, 202, 302, 404, 405, 481, 488, 603])
def test_final_answers_show_life(status: int) -> None:
    """Any final response but 408 and 5xx comes from a live SIP server."""
    assert probe_ok(status)


@pytest.mark.parametrize("status", [None, 408, 500, 502, 503, 504, 599])
def test_failures(status: int | None) -> None:
    """No answer, 408 and every 5xx count as failed probes."""
    assert not probe_ok(status)


def test_provisional_is_not_an_outcome() -> None:
    """A 1xx is not a final answer and cannot be judged."""
    with pytest.raises(ValueError):
        probe_ok(100)


def test_describe() -> None:
    """Outcomes read as 'no answer', the given reason, or status and phrase."""
    assert describe(None) == "no answer"
    assert describe(None, "no answer within 5s") == "no answer within 5s"
    assert describe(503, "Service Unavailable") == "503 Service Unavailable"


def test_members_start_up() -> None:
    """Before any probe every member is up."""
    tracker = HealthTracker(["sip1", "sip2"])
    assert tracker.is_up("sip1") and tracker.is_up("sip2")


def test_down_after_failures_in_a_row() -> None:
    """A member goes down on the down_after-th failure in a row, once."""
    tracker = HealthTracker(["sip1"], down_after=3, up_after=2)
    assert tracker.record("sip1", None, 1.0) is None
    assert tracker.record("sip1", 503, 2.0, "Service Unavailable") is None
    assert tracker.record("sip1", None, 3.0) == Transition("sip1", False, 3.0, "no answer")
    assert not tracker.is_up("sip1")
    assert tracker.record("sip1", None, 4.0) is None
    state = tracker.members["sip1"]
    assert (state.probes, state.failed, state.changed_at) == (4, 4, 3.0)


def test_success_resets_the_failure_run() -> None:
    """A success between failures starts the count again."""
    tracker = HealthTracker(["sip1"], down_after=2)
    assert tracker.record("sip1", None, 1.0) is None
    assert tracker.record("sip1", 404, 2.0) is None
    assert tracker.record("sip1", 408, 3.0) is None
    assert tracker.is_up("sip1")
    assert tracker.record("sip1", 500, 4.0, "Server Internal Error") == Transition(
        "sip1", False, 4.0, "500 Server Internal Error")


def test_up_after_successes_in_a_row() -> None:
    """A down member is up after up_after successes in a row, not fewer."""
    tracker = HealthTracker(["sip1"], down_after=1, up_after=2)
    assert tracker.record("sip1", None, 1.0) is not None
    assert tracker.record("sip1", 200, 2.0) is None
    assert tracker.record("sip1", 503, 3.0) is None
    assert tracker.record("sip1", 200, 4.0) is None
    assert tracker.record("sip1", 405, 5.0, "Method Not Allowed") == Transition(
        "sip1", True, 5.0, "405 Method Not Allowed")
    assert tracker.record("sip1", 200, 6.0) is None
    assert tracker.members["sip1"].last_outcome == "200"


def test_up_after_one() -> None:
    """With up_after=1 (the default) one answer brings a member back."""
    tracker = HealthTracker(["sip1"], down_after=1)
    tracker.record("sip1", None, 1.0)
    assert tracker.record("sip1", 200, 2.0, "OK") == Transition("sip1", True, 2.0, "200 OK")


def test_thresholds_change_live_and_are_checked() -> None:
    """New thresholds apply from the next probe; zero is refused."""
    tracker = HealthTracker(["sip1"], down_after=5)
    tracker.record("sip1", None, 1.0)
    tracker.set_thresholds(2, 1)
    assert tracker.record("sip1", None, 2.0) is not None
    with pytest.raises(ValueError):
        tracker.set_thresholds(0, 1)
    with pytest.raises(KeyError):
        tracker.record("nosuch", 200, 3.0)
