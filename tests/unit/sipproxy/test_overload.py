"""The overload control's admission share, fed made-up CPU samples."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from telavox.sipproxy.overload import OverloadControl


def feed(control: OverloadControl, loads: list[float], step: float = 0.5) -> list[bool]:
    """Samples every ``step`` s, the process using ``loads[i]`` cores in
    interval i, from the control's last sample (or a first one at 0 s)."""
    changes = []
    if control._last is None:
        changes.append(control.sample(0.0, 0.0))
    now, cpu = control._last or (0.0, 0.0)
    for load in loads:
        now += step
        cpu += load * step
        changes.append(control.sample(now, cpu))
    return changes


def admitted(control: OverloadControl, n: int) -> int:
    return sum(control.admit() for _ in range(n))


def test_below_the_limit_everything_is_admitted() -> None:
    control = OverloadControl(0.9)
    feed(control, [0.5, 0.89, 0.7, 0.2] * 5)
    assert not control.shedding and control.share == 1.0
    assert admitted(control, 1000) == 1000 and control.refused == 0
    assert control.utilization == pytest.approx(0.2)


def test_a_burst_shorter_than_hold_turns_nothing_away() -> None:
    """A start-up or an office re-registering: two samples at full load."""
    control = OverloadControl(0.9, hold=3)
    feed(control, [1.0, 1.0, 0.3, 1.0, 1.0, 0.3])
    assert control.share == 1.0 and admitted(control, 100) == 100


def test_sustained_overload_lowers_the_share_each_sample_down_to_the_floor() -> None:
    control = OverloadControl(0.9, hold=3, decrease=0.5, floor=0.05)
    changes = feed(control, [1.0, 1.0, 1.0])
    assert control.share == 0.5 and changes == [False, False, False, True]
    assert admitted(control, 100) == 50 and control.refused == 50
    feed(control, [1.0] * 10)
    assert control.share == 0.05
    assert admitted(control, 100) == 5


def test_admission_is_exact_for_the_share() -> None:
    """One in four at 0.25; one in ten at 0.1 despite float sums."""
    control = OverloadControl(0.9)
    control.share = 0.25
    assert [control.admit() for _ in range(8)] == [False, False, False, True] * 2
    control.share = 0.1
    control._credit = 0.0
    assert admitted(control, 100) == 10


def test_once_below_the_limit_the_share_grows_back_to_everything() -> None:
    control = OverloadControl(0.9, hold=1, decrease=0.5, increase=0.25, floor=0.05)
    feed(control, [1.0] * 6)
    assert control.share == 0.05
    changes = feed(control, [0.4] * 4)
    assert control.share == 1.0 and changes == [False, False, False, True]
    assert admitted(control, 10) == 10
    # one sample below the limit ends the count toward hold
    control = OverloadControl(0.9, hold=2)
    feed(control, [1.0, 0.5, 1.0, 0.5, 1.0])
    assert control.share == 1.0


def test_a_limit_of_zero_turns_the_control_off() -> None:
    control = OverloadControl(0.0)
    assert not control.enabled
    feed(control, [1.0] * 20)
    assert control.share == 1.0 and admitted(control, 10) == 10


def test_turning_the_control_off_while_shedding_ends_the_shedding() -> None:
    control = OverloadControl(0.9, hold=1)
    feed(control, [1.0, 1.0])
    assert control.shedding
    control.limit = 0.0
    assert feed(control, [1.0]) == [True]
    assert not control.shedding and admitted(control, 10) == 10
    control.limit = 0.9  # and on again: it starts from a clean slate
    feed(control, [1.0])
    assert control.share == 0.75


def test_a_clock_that_stands_still_or_goes_back_changes_nothing() -> None:
    control = OverloadControl(0.5, hold=1)
    control.sample(5.0, 1.0)
    assert control.sample(5.0, 3.0) is False
    assert control.sample(4.0, 4.0) is False
    assert control.share == 1.0


@pytest.mark.parametrize("kwargs", [{"limit": -0.1}, {"limit": 0.9, "hold": 0},
                                    {"limit": 0.9, "decrease": 1.0},
                                    {"limit": 0.9, "increase": 0.0},
                                    {"limit": 0.9, "floor": 0.0}])
def test_bad_parameters_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        OverloadControl(**kwargs)  # type: ignore[arg-type]


@given(st.lists(st.floats(0.0, 2.0), max_size=60))
def test_the_share_stays_between_the_floor_and_one(loads: list[float]) -> None:
    control = OverloadControl(0.9, hold=2, floor=0.05)
    feed(control, loads)
    assert 0.05 <= control.share <= 1.0
    admitted(control, 50)
    assert control.refused <= 50
