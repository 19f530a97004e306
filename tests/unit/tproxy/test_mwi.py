"""Unit tests of :mod:`telavox.tproxy.mwi`: message-summary subscriptions
with fake legs and a fake clock."""

from __future__ import annotations

from helpers.fakelegs import FakeLegs, FakeTxn, message
from twisted.internet.task import Clock

from telavox.sip.hdrtypes import NameAddr
from telavox.sip.transaction import Source
from telavox.sip.uri import SipUri
from telavox.tproxy.mwi import MwiNotifier, summary_body

DOMAIN = "mwi.example.test"
SOURCE = Source("udp", "127.0.0.1", 5060)


def subscribe(expires: str = "600", user: str = "1001", to_tag: str = "") -> object:
    tag = f";tag={to_tag}" if to_tag else ""
    return message(
        f"SUBSCRIBE sip:{user}@{DOMAIN} SIP/2.0\n"
        "Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-s1\nMax-Forwards: 70\n"
        f"From: <sip:1001@{DOMAIN}>;tag=ph1\nTo: <sip:{user}@{DOMAIN}>{tag}\n"
        "Call-ID: mwi-1\nCSeq: 1 SUBSCRIBE\nContact: <sip:1001@192.0.2.10:5062>\n"
        f"Event: message-summary\nExpires: {expires}\n")


def setup() -> tuple[FakeLegs, MwiNotifier, dict[str, tuple[int, int]], Clock]:
    clock = Clock()
    legs = FakeLegs(clock)
    boxes = {"1001": (2, 5)}
    notifier = MwiNotifier(legs, lambda ext: boxes.get(ext, (0, 0)),  # type: ignore[arg-type]
                           lambda: NameAddr(uri=SipUri(host="127.0.0.1", port=5070)),
                           DOMAIN, clock.seconds)
    return legs, notifier, boxes, clock


def test_subscribe_gets_200_and_a_notify_with_the_counts() -> None:
    """The user's own box: 200 with Expires, then a NOTIFY (active) whose
    body is the RFC 3842 summary; a change sends another NOTIFY."""
    legs, notifier, boxes, _ = setup()
    request = subscribe()
    notifier.subscribe(request, FakeTxn(request, SOURCE), "1001")  # type: ignore[arg-type]
    ok = legs.responses[-1]
    assert ok.status == 200 and ok.headers.get("Expires") == "600"
    [notify] = legs.sent("NOTIFY")
    assert notify.request.headers.get("Event") == "message-summary"
    assert notify.request.headers.get("Subscription-State") == "active;expires=600"
    assert notify.request.body == summary_body(f"sip:1001@{DOMAIN}", 2, 5)
    assert b"Messages-Waiting: yes" in notify.request.body
    boxes["1001"] = (0, 7)
    notifier.changed("1001")
    assert b"Messages-Waiting: no" in legs.sent("NOTIFY")[-1].request.body
    assert len(notifier) == 1


def test_other_users_box_short_expiry_and_expiry() -> None:
    """Another user's box is 403; Expires below the minimum 423; at the end
    of the subscription a terminated NOTIFY ends it."""
    legs, notifier, _, clock = setup()
    request = subscribe(user="1002")
    notifier.subscribe(request, FakeTxn(request, SOURCE), "1001")  # type: ignore[arg-type]
    assert legs.responses[-1].status == 403 and legs.sent("NOTIFY") == []
    request = subscribe(expires="10")
    notifier.subscribe(request, FakeTxn(request, SOURCE), "1001")  # type: ignore[arg-type]
    assert legs.responses[-1].status == 423
    request = subscribe(expires="120")
    notifier.subscribe(request, FakeTxn(request, SOURCE), "1001")  # type: ignore[arg-type]
    clock.advance(120)
    assert legs.sent("NOTIFY")[-1].request.headers.get(
        "Subscription-State") == "terminated;reason=timeout"
    assert len(notifier) == 0


def test_refresh_and_unsubscribe_in_the_dialog() -> None:
    """A SUBSCRIBE in the dialog refreshes (200 and a NOTIFY); Expires: 0
    ends it with a terminated NOTIFY; an unknown dialog is 481."""
    legs, notifier, _, _ = setup()
    request = subscribe()
    notifier.subscribe(request, FakeTxn(request, SOURCE), "1001")  # type: ignore[arg-type]
    tag = legs.responses[-1].to_tag
    refresh = subscribe(expires="300", to_tag=tag)
    refresh.headers.set("CSeq", "2 SUBSCRIBE")  # type: ignore[attr-defined]
    assert notifier.owns(refresh)  # type: ignore[arg-type]
    notifier.refresh(refresh, FakeTxn(refresh, SOURCE))  # type: ignore[arg-type]
    assert legs.responses[-1].status == 200
    assert legs.sent("NOTIFY")[-1].request.headers.get(
        "Subscription-State") == "active;expires=300"
    bye = subscribe(expires="0", to_tag=tag)
    bye.headers.set("CSeq", "3 SUBSCRIBE")  # type: ignore[attr-defined]
    notifier.refresh(bye, FakeTxn(bye, SOURCE))  # type: ignore[arg-type]
    assert legs.sent("NOTIFY")[-1].request.headers.get(
        "Subscription-State").startswith("terminated")  # type: ignore[union-attr]
    stray = subscribe(to_tag="nope")
    notifier.refresh(stray, FakeTxn(stray, SOURCE))  # type: ignore[arg-type]
    assert legs.responses[-1].status == 481


def test_bad_expires_and_missing_user_are_refused() -> None:
    """Expires that is not a number, or negative, is 400; a SUBSCRIBE
    without an asserted user is 403; no subscription is kept."""
    legs, notifier, _, _ = setup()
    for expires in ("soon", "-5"):
        request = subscribe(expires=expires)
        notifier.subscribe(request, FakeTxn(request, SOURCE), "1001")  # type: ignore[arg-type]
        assert legs.responses[-1].status == 400
    request = subscribe()
    notifier.subscribe(request, FakeTxn(request, SOURCE), None)  # type: ignore[arg-type]
    assert legs.responses[-1].status == 403
    assert len(notifier) == 0 and legs.sent("NOTIFY") == []
