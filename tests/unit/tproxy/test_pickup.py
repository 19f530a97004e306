"""Which ringing call a pickup code answers: directed and group pickup,
the dial plan's pickup numbers, and the configuration's checks."""

from __future__ import annotations

import attrs
import pytest

from telavox.config.model import Config, PlatformConfig, TproxyConfig, UserConfig
from telavox.tproxy.dialplan import DialPlan, Route, RouteKind
from telavox.tproxy.pickup import call_to_pick_up

USERS = {u.extension: u for u in (
    UserConfig(extension="1001", password="x", pickup_group="sales"),
    UserConfig(extension="1002", password="x", pickup_group="sales"),
    UserConfig(extension="1003", password="x", pickup_group="sales"),
    UserConfig(extension="1004", password="x", pickup_group="support"),
    UserConfig(extension="1005", password="x"))}


@attrs.define
class Ringing:
    callee: str
    start_time: float
    state: str = "ringing"
    caller: object = None
    b_endpoint: object = "e1"


def test_group_pickup_takes_the_longest_ringing_call_of_the_group() -> None:
    calls = [Ringing("1004", 1.0), Ringing("1003", 3.0), Ringing("1002", 2.0),
             Ringing("1003", 0.5, state="answered")]
    picked = call_to_pick_up(calls, USERS["1001"], group="sales", user=USERS.get)
    assert picked is calls[2]
    # nothing of another group, nothing answered, nothing without an endpoint yet
    assert call_to_pick_up([calls[0], calls[3], Ringing("1002", 0.1, b_endpoint=None)],
                           USERS["1001"], group="sales", user=USERS.get) is None


def test_nobody_picks_up_their_own_call_or_a_call_ringing_at_themselves() -> None:
    mine = Ringing("1002", 1.0, caller=USERS["1001"])
    at_me = Ringing("1001", 2.0)
    assert call_to_pick_up([mine, at_me], USERS["1001"], group="sales", user=USERS.get) is None
    assert call_to_pick_up([mine], USERS["1001"], extension="1002", user=USERS.get) is None


def test_directed_pickup_ignores_groups() -> None:
    calls = [Ringing("1002", 1.0), Ringing("1004", 2.0)]
    assert call_to_pick_up(calls, USERS["1005"], extension="1004", user=USERS.get) is calls[1]


def test_dial_plan_routes_the_group_pickup_number() -> None:
    plan = DialPlan(PlatformConfig(domain="pbx.example.test"), USERS.values(), (),
                    group_pickup="*8")
    assert plan.route(USERS["1001"], "*8") == Route(RouteKind.PICKUP, args=("sales",))
    assert plan.route(USERS["1005"], "*8").status == 403  # in no group
    assert plan.route(None, "*8").status == 403


@pytest.mark.parametrize("name", ["", "sales", "floor-2"])
def test_pickup_group_names(name: str) -> None:
    assert UserConfig(extension="1", password="x", pickup_group=name).pickup_group == name


def test_pickup_group_and_number_are_checked() -> None:
    with pytest.raises(ValueError):
        UserConfig(extension="1", password="x", pickup_group="no spaces")
    config = Config(tproxy=TproxyConfig(group_pickup_number="1001"),
                    users=(UserConfig(extension="1001", password="x"),))
    assert "tproxy.group_pickup_number" in dict(config.check())
