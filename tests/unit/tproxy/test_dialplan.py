"""The dial plan's order of matching, E.164 normalisation and class of service."""

from __future__ import annotations

import pytest

from telavox.config.model import DialPlanEntry, PlatformConfig, UserConfig
from telavox.tproxy.dialplan import DialPlan, RouteKind, normalise

PLATFORM = PlatformConfig(domain="pbx.example.test", country_code="46")


def plan() -> DialPlan:
    users = [UserConfig(extension=e, password="x", class_of_service=c)
             for e, c in (("1001", "national"), ("1002", "internal"),
                          ("1003", "international"), ("1004", "premium"))]
    entries = [DialPlanEntry(number="*43", app="echo"), DialPlanEntry(number="800",
                                                                      target="1001")]
    return DialPlan(PLATFORM, users, entries, emergency=("112",), premium=("+46900",))


@pytest.mark.parametrize(("dialled", "expected"), [
    ("+46812345678", "+46812345678"),
    ("0812345678", "+46812345678"),
    ("0046812345678", "+46812345678"),
    ("004412345678", "+4412345678"),
    ("1234", None),
    ("08abc", None),
    ("+0123", None),
    ("", None),
])
def test_normalise(dialled: str, expected: str | None) -> None:
    """Local, national and international forms become one E.164 number."""
    assert normalise(dialled, "46", "0", "00") == expected


def test_order_dialplan_then_extensions_then_external() -> None:
    """Dial-plan numbers win, then extensions, then external numbers; an
    unknown short number is 404."""
    p = plan()
    caller = p.user("1001")
    assert p.route(caller, "*43").kind is RouteKind.SCRIPT
    alias = p.route(caller, "800")
    assert (alias.kind, alias.target) == (RouteKind.USER, "1001")
    assert p.route(caller, "1002").target == "1002"
    external = p.route(caller, "0812345678")
    assert (external.kind, external.target) == (RouteKind.EXTERNAL, "+46812345678")
    assert p.route(caller, "5555").status == 404


def test_class_of_service() -> None:
    """Internal users reach no external number, national ones only their
    country, premium numbers need premium; emergency is always allowed."""
    p = plan()
    internal, national, international, premium = (p.user(e) for e in
                                                  ("1002", "1001", "1003", "1004"))
    assert p.route(internal, "0812345678").status == 403
    assert p.route(national, "004412345678").status == 403
    assert p.route(international, "004412345678").kind is RouteKind.EXTERNAL
    assert p.route(international, "0900123456").status == 403
    assert p.route(premium, "0900123456").kind is RouteKind.EXTERNAL
    for caller in (internal, national, None):
        emergency = p.route(caller, "112")
        assert emergency.kind is RouteKind.EXTERNAL and emergency.emergency


def test_outside_caller_reaches_internal_targets_only() -> None:
    """A caller from outside (no user) may not be routed back out."""
    p = plan()
    assert p.route(None, "1001").kind is RouteKind.USER
    assert p.route(None, "0812345678").status == 403


def test_home_keys_place_scripts_by_number_and_a_park_lot_as_one() -> None:
    """tlb places a script by the number dialled and every slot of a park
    lot by the lot's number (so the lot lives on one SIP server); users and
    outside numbers have no home of their own."""
    p = DialPlan(PLATFORM, [UserConfig(extension="1001", password="x")],
                 [DialPlanEntry(number="*43", app="echo")], park=("700", "701", "702"))
    user = p.user("1001")
    echo = p.route(user, "*43")
    assert (echo.kind, echo.target, echo.number) == (RouteKind.SCRIPT, "echo", "*43")
    assert p.home_key(echo) == "*43"
    assert p.home_key(p.route(user, "702")) == "700"
    assert p.home_key(p.route(user, "700")) == "700"
    assert p.home_key(p.route(user, "1001")) is None
    assert p.home_key(p.route(user, "0812345678")) is None
