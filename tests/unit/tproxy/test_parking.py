"""Call parking: the lot's table, the dial plan's park numbers, and calls
parked by a blind transfer, by an attended transfer and by dialling the
lot; the announcement, retrieval, ringing the parker back and the lot
freed whichever way the call ends."""

from __future__ import annotations

import pytest
from helpers.fakelegs import FakeLegs, FakeTxn, message
from twisted.internet.task import Clock

from telavox.b2bua.leg import IncomingLeg
from telavox.config.model import Config, DialPlanEntry, PlatformConfig, TproxyConfig, UserConfig
from telavox.records import MediaEvent, PlaySource
from telavox.sip.message import Request, make_response
from telavox.sip.parser import parse_message
from telavox.sip.transaction import ResponseIn
from telavox.tproxy.call import Call
from telavox.tproxy.dialplan import DialPlan, Route, RouteKind
from telavox.tproxy.parking import ParkingLot

from .test_call import (
    DOMAIN,
    SDP_A,
    SDP_B,
    SOURCE,
    FakeMedia,
    Host,
    _answered_on,
    answered_call,
    from_caller,
    invite_a,
    refer_from_b,
    refer_replacing,
)

USERS = [UserConfig(extension=e, password="x") for e in ("1001", "1002", "1003")]
SLOTS = TproxyConfig(park_lot="700", park_slots=3).park_numbers()


def parking_host(host: Host) -> ParkingLot[Call]:
    lot: ParkingLot[Call] = ParkingLot("700", SLOTS)
    host.parking = lot
    host.plan = DialPlan(PlatformConfig(domain=DOMAIN), list(host.plan.users.values()), (),
                         park=("700", *SLOTS))
    return lot


def play_through(host: Host, call: Call) -> list[str]:
    """Finish each prompt played to the parked party; what it heard."""
    heard: list[str] = []
    endpoint = call.a_endpoint
    assert endpoint is not None
    played = host.media.played
    seen = 0
    while len(played) > seen and len(heard) < 10:
        seen = len(played)
        eid, source = played[-1]
        assert eid == endpoint.endpoint_id
        if source.loop:
            heard.append("music")
            break
        heard.append(source.path)
        call.media_event(MediaEvent(endpoint_id=eid, owner=call.call_id, kind="play_done",
                                    detail="finished"))
    return heard


def retriever_invite(slot: str, call_id: str = "call-r",
                     body: bytes = SDP_B.replace(b"5000", b"7000")) -> Request:
    return message(
        f"INVITE sip:{slot}@{DOMAIN} SIP/2.0\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-{call_id}\n"
        f"Max-Forwards: 69\nFrom: <sip:1003@{DOMAIN}>;tag=fr\nTo: <sip:{slot}@{DOMAIN}>\n"
        f"Call-ID: {call_id}\nCSeq: 1 INVITE\nContact: <sip:1003@192.0.2.30:5066>\n"
        + ("Content-Type: application/sdp\n" if body else ""), body)


def blind_park(host: Host, call: Call, number: str = "700") -> None:
    refer = refer_from_b(call, number)
    assert call.b is not None
    call.b.receive(refer, FakeTxn(refer, SOURCE))  # type: ignore[arg-type]
    assert host.legs.responses[-1].status == 202


# -- the table, the configuration, the dial plan ---------------------------------------------


def test_the_lot_hands_out_free_slots_and_never_two_calls_per_slot() -> None:
    lot: ParkingLot[str] = ParkingLot("700", ("701", "702"))
    assert "700" in lot and "702" in lot and "703" not in lot
    assert lot.slot_for("700") == "701" and lot.slot_for("702") == "702"
    lot.take("701", "x")
    assert lot.slot_for("700") == "702" and lot.slot_for("701") is None
    assert lot.occupant("701") == "x"
    with pytest.raises(ValueError):
        lot.take("701", "y")
    with pytest.raises(KeyError):
        lot.take("799", "y")
    lot.take("702", "y")
    assert lot.slot_for("700") is None and list(lot) == [("701", "x"), ("702", "y")]
    lot.release("701", "y")  # not the one parked there
    assert lot.occupant("701") == "x"
    lot.release("701", "x")
    assert lot.slot_for("700") == "701" and len(lot) == 1


def test_configuration_numbers_the_slots_and_refuses_clashes() -> None:
    assert TproxyConfig(park_lot="700", park_slots=3).park_numbers() == ("701", "702", "703")
    assert TproxyConfig(park_lot="070", park_slots=2).park_numbers() == ("071", "072")
    assert TproxyConfig().park_numbers() == ()
    with pytest.raises(ValueError):
        TproxyConfig(park_lot="*70")
    config = Config(tproxy=TproxyConfig(park_lot="700", park_slots=5),
                    users=(UserConfig(extension="702", password="x"),),
                    dialplan=(DialPlanEntry(number="700", app="echo"),))
    problems = dict(config.check())
    assert "700, 702" in problems["tproxy.park_lot"]


def test_dial_plan_routes_park_numbers_for_users_only() -> None:
    plan = DialPlan(PlatformConfig(domain=DOMAIN), USERS, (), park=("700", "701"))
    user = plan.user("1001")
    assert plan.route(user, "700") == Route(RouteKind.PARK, "700")
    assert plan.route(user, "701") == Route(RouteKind.PARK, "701")
    assert plan.route(None, "701").status == 403


# -- parking by blind transfer, retrieval ------------------------------------------------------


def test_blind_transfer_to_the_lot_parks_announces_and_is_retrieved() -> None:
    """1002 transfers its caller (1001) to 700: NOTIFY 200 and BYE to 1002,
    1001 hears "parked at 7 0 1" then music; 1003 dials 701 and is answered
    from a new endpoint connected to 1001's, the music stops, the lot is
    empty and the call goes on between 1001 and 1003."""
    host, call, _ = answered_call()
    lot = parking_host(host)
    a_endpoint, old_b = call.a_endpoint, call.b_endpoint
    assert a_endpoint is not None and old_b is not None
    host.music_on_hold = PlaySource(path="/prompts/moh.wav", loop=True)
    transferor = call.b
    blind_park(host, call)
    notify = host.legs.sent("NOTIFY")[-1].request
    assert notify.body.startswith(b"SIP/2.0 200")
    assert host.legs.requests[-1].request.method == "BYE"
    assert transferor is not None and transferor.ended
    assert call.parked_in == "701" and lot.occupant("701") is call and call.state == "parked"
    assert call.parker == "1002" and old_b.endpoint_id not in host.media.endpoints
    assert play_through(host, call) == ["/prompts/park-slot.wav", "/prompts/digits/7.wav",
                                        "/prompts/digits/0.wav", "/prompts/digits/1.wav",
                                        "music"]
    invite = retriever_invite("701")
    leg = IncomingLeg(host.legs, None, invite, FakeTxn(invite, SOURCE),  # type: ignore[arg-type]
                      host.contact())
    call.retrieve(leg, USERS[2])
    ok = host.legs.responses[-1]
    assert ok.status == 200 and ok.call_id == "call-r" and ok.body
    assert call.b is leg and call.parked_in is None and len(lot) == 0
    b_endpoint = call.b_endpoint
    assert b_endpoint is not None
    assert host.media.connected[-1] == (a_endpoint.endpoint_id, b_endpoint.endpoint_id)
    assert a_endpoint.endpoint_id in host.media.stopped
    assert host.media.remote[b_endpoint.endpoint_id][0].port == 7000
    assert call.callee == "1003" and "retrieved" in host.events
    call.hangup("test")
    assert host.cdrs[-1].callee == "1003" and host.media.endpoints == {}


def test_a_taken_slot_or_a_full_lot_fails_the_transfer_and_keeps_the_call() -> None:
    host, call, _ = answered_call()
    lot = parking_host(host)
    for slot in SLOTS:
        lot.take(slot, object())  # type: ignore[arg-type]
    blind_park(host, call, "702")
    assert host.legs.sent("NOTIFY")[-1].request.body.startswith(b"SIP/2.0 486")
    blind_park(host, call, "700")
    assert host.legs.sent("NOTIFY")[-1].request.body.startswith(b"SIP/2.0 486")
    assert call.b is not None and not call.b.ended and call.parked_in is None
    assert host.legs.sent("BYE") == []


def test_a_parked_call_nobody_retrieves_rings_the_parker_back() -> None:
    """After park_timeout the slot is freed and the parker (1002) is called
    from the parked party's identity; when it answers they are connected
    and the music stops."""
    host, call, clock = answered_call()
    lot = parking_host(host)
    host.music_on_hold = PlaySource(path="/prompts/moh.wav", loop=True)
    blind_park(host, call)
    play_through(host, call)
    a_endpoint = call.a_endpoint
    assert a_endpoint is not None
    clock.advance(host.park_timeout)
    assert len(lot) == 0
    ring = host.legs.requests[-1]
    assert ring.request.method == "INVITE" and str(ring.request.uri) == f"sip:1002@{DOMAIN}"
    assert "1001" in str(ring.request.from_.uri)
    response = make_response(ring.request, 200, to_tag="tc", extra=(
        ("Contact", "<sip:1002@192.0.2.20:5064>"), ("Content-Type", "application/sdp")),
        body=SDP_B)
    assert ring.on_event is not None
    ring.on_event(ResponseIn(ring, parse_message(response.serialize()), SOURCE))  # type: ignore[arg-type]
    b_endpoint = call.b_endpoint
    assert b_endpoint is not None
    assert host.media.connected[-1] == (a_endpoint.endpoint_id, b_endpoint.endpoint_id)
    assert a_endpoint.endpoint_id in host.media.stopped
    assert call.callee == "1002" and not call.a.ended


def test_the_parker_not_answering_ends_the_parked_call() -> None:
    host, call, clock = answered_call()
    parking_host(host)
    blind_park(host, call)
    clock.advance(host.park_timeout)
    clock.advance(host.no_answer_timeout)
    assert call.state == "ended" and host.media.endpoints == {}
    assert host.legs.sent("BYE")[-1].request.call_id == "call-a"


def test_the_parked_party_hanging_up_frees_the_slot() -> None:
    host, call, clock = answered_call()
    lot = parking_host(host)
    blind_park(host, call)
    a = call.a
    assert a.dialog is not None
    bye = from_caller("BYE", a.dialog.local_tag, 11)
    a.receive(bye, FakeTxn(bye, SOURCE))  # type: ignore[arg-type]
    assert call.state == "ended" and len(lot) == 0 and host.media.endpoints == {}
    clock.advance(host.park_timeout)  # the timer went with it
    assert [t for t in host.legs.sent("INVITE") if "1002" in str(t.request.uri)][1:] == []


def test_a_parked_party_may_hold_and_resume_alone() -> None:
    """A re-INVITE from the parked party is answered from its endpoint."""
    host, call, _ = answered_call()
    parking_host(host)
    blind_park(host, call)
    a = call.a
    assert a.dialog is not None
    reinvite = from_caller("INVITE", a.dialog.local_tag, 12,
                           SDP_A.replace(b"o=a 1 1", b"o=a 1 2") + b"a=sendonly\r\n")
    a.receive(reinvite, FakeTxn(reinvite, SOURCE))  # type: ignore[arg-type]
    ok = host.legs.responses[-1]
    assert ok.status == 200 and b"recvonly" in ok.body and call.parked_in == "701"


# -- parking by dialling the lot; attended transfer into it -----------------------------------


def _self_parked(host: Host, call_id: str, number: str = "700") -> Call:
    request = invite_a()
    request.headers.set("Call-ID", call_id)
    request.headers.set("To", f"<sip:{number}@{DOMAIN}>")
    request = parse_message(request.serialize())
    leg = IncomingLeg(host.legs, None, request, FakeTxn(request, SOURCE),  # type: ignore[arg-type]
                      host.contact())
    call = Call(host, leg, host.plan.user("1001"), request.from_, number)
    call.start(Route(RouteKind.PARK, number))
    return call


def _ack(call: Call) -> None:
    call.incoming.acked(message(
        "ACK sip:127.0.0.1:5070 SIP/2.0\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-ak\n"
        f"Max-Forwards: 70\nFrom: <sip:1001@{DOMAIN}>;tag=fa\n"
        f"To: <sip:700@{DOMAIN}>;tag={call.incoming.local_tag}\nCall-ID: {call.call_id}\n"
        "CSeq: 10 ACK\n"))


def test_dialling_the_lot_parks_the_caller_until_the_lot_is_full() -> None:
    clock = Clock()
    host = Host(FakeLegs(clock), FakeMedia(), DialPlan(PlatformConfig(domain=DOMAIN), USERS, ()))
    lot = parking_host(host)
    first = _self_parked(host, "call-p1")
    ok = host.legs.responses[-1]
    assert ok.status == 200 and ok.body and first.parked_in == "701"
    assert len(host.media.endpoints) == 1  # no B endpoint kept for nobody
    assert host.media.played == []  # the announcement waits for the ACK
    _ack(first)
    assert play_through(host, first)[-1] == "/prompts/digits/1.wav"
    second = _self_parked(host, "call-p2")
    assert second.parked_in == "702"
    _self_parked(host, "call-p3")
    full = _self_parked(host, "call-p4")
    assert host.legs.responses[-1].status == 486 and full.state == "ended"
    # a slot with nothing in it is not a place to park oneself
    first.hangup("test")
    empty = _self_parked(host, "call-p5", "701")
    assert host.legs.responses[-1].status == 480 and empty.state == "ended"
    # nobody to ring back: a self-parked caller is let go after the timeout
    clock.advance(host.park_timeout)
    assert second.state == "ended" and len(lot) == 0


def test_attended_transfer_to_a_self_parked_call_parks_the_transferee() -> None:
    """1001 talks to 1002 (call 1), dials 700 (call 2, parked in 701, hears
    the slot), then transfers call 1 with Replaces naming call 2: 1002
    takes slot 701, both of 1001's legs end, the parker is 1001."""
    clock = Clock()
    host = Host(FakeLegs(clock), FakeMedia(), DialPlan(PlatformConfig(domain=DOMAIN), USERS, ()))
    lot = parking_host(host)
    call1 = _answered_on(host, "call-1", "1002", 5000)
    call2 = _self_parked(host, "call-2")
    _ack(call2)
    assert lot.occupant("701") is call2
    refer = refer_replacing(call1, call2, "700")
    mark = len(host.legs.requests)
    call1.incoming.receive(refer, FakeTxn(refer, SOURCE))  # type: ignore[arg-type]
    assert host.legs.responses[-1].status == 202
    sent = [(t.request.method, t.request.call_id) for t in host.legs.requests[mark:]]
    assert ("BYE", "call-1") in sent and ("BYE", "call-2") in sent
    assert lot.occupant("701") is call1 and call1.parked_in == "701"
    assert call1.parker == "1001" and call2.state == "ended"
    bob = call1.a
    assert bob is not call1.incoming and not bob.ended
    assert play_through(host, call1)[:1] == ["/prompts/park-slot.wav"]
    # the ring-back goes to 1001 from 1002's identity
    clock.advance(host.park_timeout)
    ring = host.legs.requests[-1].request
    assert ring.method == "INVITE" and str(ring.uri) == f"sip:1001@{DOMAIN}"
    assert "1002" in str(ring.from_.uri)


def test_a_retriever_without_an_offer_is_refused_and_the_call_stays_parked() -> None:
    """An INVITE to a slot without SDP gets 488; the call waits on, still
    retrievable."""
    host, call, _ = answered_call()
    lot = parking_host(host)
    blind_park(host, call)
    invite = retriever_invite("701", body=b"")
    leg = IncomingLeg(host.legs, None, invite, FakeTxn(invite, SOURCE),  # type: ignore[arg-type]
                      host.contact())
    call.retrieve(leg, USERS[2])
    assert host.legs.responses[-1].status == 488
    assert lot.occupant("701") is call and call.parked_in == "701"
