"""A call's life between its legs, with fake legs' transport, a fake clock
and an in-memory mediaserver: what each side is sent, when the media is
connected, and the CDR."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import attrs
import pytest
from helpers.fakelegs import FakeLegs, FakeTxn, message
from twisted.internet import defer
from twisted.internet.task import Clock

from telavox.b2bua.endpoint import LegTable
from telavox.b2bua.leg import IncomingLeg
from telavox.config.model import DialPlanEntry, PlatformConfig, UserConfig
from telavox.records import CdrRecord, LocalStream, MediaEndpoint, PlaySource, RemoteStream
from telavox.sip.hdrtypes import NameAddr
from telavox.sip.message import Request, Response, make_response
from telavox.sip.parser import parse_message
from telavox.sip.sdp import parse_sdp
from telavox.sip.transaction import Destination, ResponseIn, Source
from telavox.sip.uri import SipUri
from telavox.tproxy.call import Call, Handover
from telavox.tproxy.dialplan import DialPlan, Route, RouteKind

DOMAIN = "pbx.example.test"
SDP_A = (b"v=0\r\no=a 1 1 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\n"
         b"m=audio 4000 RTP/AVP 8 0 101\r\na=rtpmap:101 telephone-event/8000\r\n")
SDP_B = (b"v=0\r\no=b 2 2 IN IP4 192.0.2.20\r\ns=-\r\nc=IN IP4 192.0.2.20\r\nt=0 0\r\n"
         b"m=audio 5000 RTP/AVP 8 101\r\na=rtpmap:101 telephone-event/8000\r\n")
SOURCE = Source("udp", "127.0.0.1", 5060)


def invite_a(body: bytes = SDP_A) -> Request:
    return message(
        f"INVITE sip:1002@{DOMAIN} SIP/2.0\n"
        "Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-a1\n"
        "Max-Forwards: 69\n"
        f"From: \"Alice\" <sip:1001@{DOMAIN}>;tag=fa\n"
        f"To: <sip:1002@{DOMAIN}>\n"
        "Call-ID: call-a\nCSeq: 10 INVITE\n"
        "Contact: <sip:1001@192.0.2.10:5062>\n"
        "X-Account: 42\nSubject: secret\n"
        + ("Content-Type: application/sdp\n" if body else ""), body)


class FakeMedia:
    """An in-memory mediaserver: endpoints, remotes and connections."""

    name = "sip1"

    def __init__(self) -> None:
        self.endpoints: dict[str, MediaEndpoint] = {}
        self.remote: dict[str, tuple[RemoteStream, ...]] = {}
        self.connected: list[tuple[str, str]] = []
        self.played: list[tuple[str, Any]] = []
        self.recorded: list[tuple[str, str, bool]] = []
        self.stopped: list[str] = []
        self.next = 10000

    def allocate(self, owner: str, kinds: tuple[str, ...] = ("audio",)) -> Any:
        eid = f"e{self.next}"
        streams = []
        for kind in kinds:
            streams.append(LocalStream(kind=kind, address="198.51.100.1", rtp_port=self.next,
                                       rtcp_port=self.next + 1))
            self.next += 2
        self.endpoints[eid] = MediaEndpoint(endpoint_id=eid, owner=owner,
                                            streams=tuple(streams))
        return defer.succeed(self.endpoints[eid])

    def set_remote(self, eid: str, streams: tuple[RemoteStream, ...]) -> Any:
        self.remote[eid] = streams
        return defer.succeed(None)

    def connect(self, a: str, b: str) -> Any:
        self.connected.append((a, b))
        return defer.succeed(None)

    def release(self, eid: str) -> Any:
        self.endpoints.pop(eid, None)
        return defer.succeed(None)

    def endpoint_ids(self) -> list[str]:
        return list(self.endpoints)

    def disconnect(self, eid: str) -> Any:
        self.connected = [c for c in self.connected if eid not in c]
        return defer.succeed(None)

    def play(self, eid: str, source: Any) -> Any:
        self.played.append((eid, source))
        return defer.succeed(f"{eid}-play")

    def stop_play(self, eid: str) -> Any:
        self.stopped.append(eid)
        return defer.succeed(None)

    def record(self, eid: str, path: str, received_only: bool = False) -> Any:
        self.recorded.append((eid, path, received_only))
        return defer.succeed(f"{eid}-rec")

    def stop_record(self, recording_id: str) -> Any:
        self.stopped.append(recording_id)
        return defer.succeed(recording_id)


@attrs.define
class Host:
    """The CallHost of the tests."""

    legs: FakeLegs
    media: FakeMedia
    plan: DialPlan
    name: str = "sip1"
    domain: str = DOMAIN
    no_answer_timeout: float = 30.0
    max_forward_hops: int = 5
    user_agent: str = "test"
    media_address: str = "198.51.100.1"
    carrier_media_address: str = "203.0.113.1"
    music_on_hold: Any = None
    cdrs: list[CdrRecord] = attrs.Factory(list)
    events: list[str] = attrs.Factory(list)
    index: dict[tuple[str, str], Any] = attrs.Factory(dict)
    gateway_ports: list[int] = attrs.Factory(lambda: [5090])
    handed: list[Any] = attrs.Factory(list)
    parking: Any = None
    park_timeout: float = 120.0
    late_handed: bool = False
    scripts: bool = True
    handovers: list[Handover] = attrs.Factory(list)

    def prompt(self, name: str) -> str | None:
        return f"/prompts/{name}.wav"

    def user(self, extension: str) -> UserConfig | None:
        return self.plan.user(extension)

    def route(self, caller: UserConfig | None, dialled: str) -> Route:
        return self.plan.route(caller, dialled)

    def route_destinations(self, route: Route) -> list[Destination]:
        if route.kind is RouteKind.EXTERNAL:
            return [Destination("udp", "127.0.0.1", port) for port in self.gateway_ports]
        return [Destination("udp", "127.0.0.1", 5060)]

    def contact(self) -> NameAddr:
        return NameAddr(uri=SipUri(host="127.0.0.1", port=5070))

    def passed_headers(self, request: Request) -> tuple[tuple[str, str], ...]:
        return tuple((n, v) for n, v in request.headers if n.lower().startswith("x-"))

    def register_leg(self, leg: Any) -> None:
        key = LegTable.key(leg)
        if key is not None:
            self.index[key] = leg

    def find_leg(self, call_id: str, local_tag: str) -> Any:
        leg = self.index.get((call_id, local_tag))
        return None if leg is None or leg.ended else leg

    def unregister_leg(self, leg: Any) -> None:
        pass

    def call_ended(self, call: Call, cdr: CdrRecord) -> None:
        self.cdrs.append(cdr)

    def publish(self, call: Call, what: str) -> None:
        self.events.append(what)

    def call_later(self, delay: float, fn: Callable[[], object]) -> Any:
        return self.legs.clock.callLater(delay, fn)

    def hand_over(self, handover: Handover) -> bool:
        if not self.scripts:
            return False
        self.handed.append((handover.route.target, handover.route.args,
                            handover.endpoint.endpoint_id, handover.answer))
        self.late_handed = handover.late_offer
        self.handovers.append(handover)
        return True


def setup(users: list[UserConfig] | None = None, entries: Sequence[DialPlanEntry] = ()
          ) -> tuple[Host, Call, Clock]:
    clock = Clock()
    users = users or [UserConfig(extension="1001", password="x", name="Alice"),
                      UserConfig(extension="1002", password="x")]
    plan = DialPlan(PlatformConfig(domain=DOMAIN), users, list(entries))
    host = Host(FakeLegs(clock), FakeMedia(), plan)
    request = invite_a()
    leg = IncomingLeg(host.legs, None, request, FakeTxn(request, SOURCE),  # type: ignore[arg-type]
                      host.contact())
    call = Call(host, leg, plan.user("1001"), request.from_, "1002")
    return host, call, clock


def b_respond(host: Host, status: int, body: bytes = b"", to_tag: str = "tb",
              index: int = 0) -> Response:
    txn = host.legs.requests[index]
    extra: tuple[tuple[str, str], ...] = (("Contact", "<sip:1002@192.0.2.20:5064>"),)
    if body:
        extra += (("Content-Type", "application/sdp"),)
    response = make_response(txn.request, status, to_tag=to_tag, extra=extra, body=body)
    response = parse_message(response.serialize())
    assert txn.on_event is not None
    txn.on_event(ResponseIn(txn, response, SOURCE))  # type: ignore[arg-type]
    return response


def test_answered_call_anchors_media_and_writes_a_cdr() -> None:
    """A → B: B is offered the mediaserver's address with the caller's codec
    first and only allowed headers; B's 180 and 200 reach A, whose 200 carries
    an answer from A's own endpoint; media is connected; a BYE from B ends
    both legs, releases the endpoints and writes an answered CDR."""
    host, call, clock = setup()
    call.start(Route(RouteKind.USER, "1002"))
    assert len(host.legs.requests) == 1
    b_invite = host.legs.requests[0].request
    assert str(b_invite.uri) == f"sip:1002@{DOMAIN}"
    assert b_invite.call_id != "call-a"
    assert b_invite.headers.get("X-Account") == "42"
    assert b_invite.headers.get("Subject") is None
    offer = parse_sdp(b_invite.body)
    assert offer.connection is not None and offer.connection.address == "198.51.100.1"
    assert offer.media[0].formats[0] == "8"  # the caller's first codec, PCMA
    b_respond(host, 180)
    assert [r.status for r in host.legs.responses] == [180]
    b_respond(host, 200, SDP_B)
    ok = host.legs.responses[-1]
    assert ok.status == 200
    answer = parse_sdp(ok.body)
    a_endpoint, b_endpoint = sorted(host.media.remote)
    assert answer.media[0].port == host.media.endpoints[a_endpoint].streams[0].rtp_port
    assert host.media.connected == [(a_endpoint, b_endpoint)]
    assert host.media.remote[a_endpoint][0].address == "192.0.2.10"
    assert host.media.remote[b_endpoint][0].port == 5000
    assert any(m.method == "ACK" for m in host.legs.stateless)  # B's 200 is ACKed
    ack = message(
        f"ACK sip:127.0.0.1:5070 SIP/2.0\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-a2\n"
        f"Max-Forwards: 70\nFrom: <sip:1001@{DOMAIN}>;tag=fa\n"
        f"To: <sip:1002@{DOMAIN}>;tag={call.a.local_tag}\nCall-ID: call-a\nCSeq: 10 ACK\n")
    call.a.acked(ack)
    assert call.state == "answered"
    clock.advance(1.0)
    bye = message(
        f"BYE sip:127.0.0.1:5070 SIP/2.0\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-b9\n"
        f"Max-Forwards: 70\nFrom: <sip:1002@{DOMAIN}>;tag=tb\n"
        f"To: <sip:1001@{DOMAIN}>;tag={b_invite.from_tag}\nCall-ID: {b_invite.call_id}\n"
        "CSeq: 5 BYE\n")
    assert call.b is not None
    call.b.receive(bye, FakeTxn(bye, SOURCE))  # type: ignore[arg-type]
    assert host.legs.responses[-1].status == 200
    a_bye = host.legs.requests[-1].request
    assert a_bye.method == "BYE" and a_bye.call_id == "call-a"
    assert host.media.endpoints == {}
    [cdr] = host.cdrs
    assert (cdr.caller, cdr.callee, cdr.disposition, cdr.codec) == (
        "1001", "1002", "answered", "PCMA")
    assert host.events == ["created", "ringing", "answered", "ended"]


def test_busy_is_passed_back_or_forwarded() -> None:
    """486 from B reaches A as 486 with a busy CDR; with forward_busy the
    call goes on to the forward target instead."""
    host, call, _ = setup()
    call.start(Route(RouteKind.USER, "1002"))
    b_respond(host, 486)
    assert host.legs.responses[-1].status == 486
    assert host.cdrs[0].disposition == "busy"
    assert host.media.endpoints == {}

    users = [UserConfig(extension="1001", password="x"),
             UserConfig(extension="1002", password="x", forward_busy="1003"),
             UserConfig(extension="1003", password="x")]
    host, call, _ = setup(users)
    call.start(Route(RouteKind.USER, "1002"))
    b_respond(host, 486)
    assert [str(t.request.uri) for t in host.legs.requests if t.request.method == "INVITE"] \
        == [f"sip:1002@{DOMAIN}", f"sip:1003@{DOMAIN}"]
    assert host.cdrs == []


def test_external_calls_fail_over_across_gateways() -> None:
    """An external number goes to the first gateway tlb names, asserting the
    caller; its 503 (all its trunks failed) moves the call to the next
    gateway; a 486 from a carrier ends the call as it is."""
    users = [UserConfig(extension="1001", password="x", class_of_service="international"),
             UserConfig(extension="1002", password="x")]
    host, call, _ = setup(users)
    host.gateway_ports = [5090, 5092]
    call.start(Route(RouteKind.EXTERNAL, "+46812345678"))
    first = host.legs.requests[0]
    offer = parse_sdp(first.request.body)
    assert offer.connection is not None and offer.connection.address == "203.0.113.1"
    assert (first.dest.port, str(first.request.uri)) == (5090, f"sip:+46812345678@{DOMAIN}")
    assert first.request.headers.get("P-Asserted-Identity") == f"<sip:1001@{DOMAIN}>"
    b_respond(host, 503)
    invites = [t for t in host.legs.requests if t.request.method == "INVITE"]
    assert [t.dest.port for t in invites] == [5090, 5092]
    assert host.cdrs == []
    b_respond(host, 486, index=host.legs.requests.index(invites[1]))
    assert host.legs.responses[-1].status == 486
    assert host.cdrs[0].disposition == "busy"

    host, call, _ = setup(users)
    host.gateway_ports = [5090]
    call.start(Route(RouteKind.EXTERNAL, "+46812345678"))
    b_respond(host, 503)
    assert host.legs.responses[-1].status == 503
    assert len([t for t in host.legs.requests if t.request.method == "INVITE"]) == 1


def test_a_call_from_a_gateway_is_answered_with_the_carrier_facing_address() -> None:
    """The caller's answer shows the mediaserver's carrier-facing address
    when the call came in through a gateway, the internal one otherwise."""
    for from_carrier, address in ((True, "203.0.113.1"), (False, "198.51.100.1")):
        clock = Clock()
        users = [UserConfig(extension="1002", password="x")]
        plan = DialPlan(PlatformConfig(domain=DOMAIN), users, ())
        host = Host(FakeLegs(clock), FakeMedia(), plan)
        request = invite_a()
        leg = IncomingLeg(host.legs, None, request, FakeTxn(request, SOURCE),  # type: ignore[arg-type]
                          host.contact())
        call = Call(host, leg, None, request.from_, "1002", from_carrier=from_carrier)
        call.start(Route(RouteKind.USER, "1002"))
        b_respond(host, 200, SDP_B)
        answer = parse_sdp(host.legs.responses[-1].body)
        assert answer.connection is not None and answer.connection.address == address


@pytest.mark.parametrize("late", [False, True])
def test_busy_forwarded_to_voicemail_hands_the_caller_to_the_script(late: bool) -> None:
    """forward_busy to a number bound to a script (voicemail): the caller,
    its endpoint and our answer (our offer, for a caller that made none) go
    to the script; the callee's endpoint is released and the call writes no
    CDR of its own."""
    users = [UserConfig(extension="1001", password="x"),
             UserConfig(extension="1002", password="x", forward_busy="*98")]
    clock = Clock()
    plan = DialPlan(PlatformConfig(domain=DOMAIN), users,
                    [DialPlanEntry(number="*98", app="voicemail", args=("1002", "b"))])
    host = Host(FakeLegs(clock), FakeMedia(), plan)
    request = invite_a(b"" if late else SDP_A)
    leg = IncomingLeg(host.legs, None, request, FakeTxn(request, SOURCE),  # type: ignore[arg-type]
                      host.contact())
    call = Call(host, leg, plan.user("1001"), request.from_, "1002")
    call.start(Route(RouteKind.USER, "1002"))
    b_respond(host, 486)
    [(app, args, eid, answer)] = host.handed
    assert (app, args) == ("voicemail", ("1002", "b"))
    assert eid in host.media.endpoints and len(host.media.endpoints) == 1
    assert answer == call.a_answer and answer
    assert host.late_handed is late
    assert host.cdrs == [] and all(r.status != 486 for r in host.legs.responses)


def test_no_answer_cancels_and_answers_480() -> None:
    """After the no-answer timeout the B leg is cancelled and A gets 480."""
    host, call, clock = setup()
    call.start(Route(RouteKind.USER, "1002"))
    b_respond(host, 180)
    clock.advance(30.0)
    assert host.legs.requests[-1].request.method == "CANCEL"
    assert host.legs.responses[-1].status == 480
    assert host.cdrs[0].disposition == "no answer"


def test_caller_cancel_cancels_the_b_leg() -> None:
    """A's CANCEL: A gets 487, B gets CANCEL once it has rung."""
    host, call, _ = setup()
    call.start(Route(RouteKind.USER, "1002"))
    b_respond(host, 180)
    call.a.cancelled()
    assert host.legs.responses[-1].status == 487
    assert host.legs.requests[-1].request.method == "CANCEL"
    assert host.cdrs[0].disposition == "cancelled"


def test_bad_offer_gets_488_or_400_and_leaks_nothing() -> None:
    """An offer without a codec in common gets 488, malformed SDP 400; no
    B leg is tried and no endpoint stays allocated."""
    for body, status in ((SDP_A.replace(b"8 0 101", b"18").replace(
            b"a=rtpmap:101 telephone-event/8000\r\n", b""), 488), (b"v=0\r\nbogus", 400)):
        clock = Clock()
        plan = DialPlan(PlatformConfig(domain=DOMAIN),
                        [UserConfig(extension="1001", password="x"),
                         UserConfig(extension="1002", password="x")], ())
        host = Host(FakeLegs(clock), FakeMedia(), plan)
        request = invite_a(body)
        leg = IncomingLeg(host.legs, None, request, FakeTxn(request, SOURCE),  # type: ignore[arg-type]
                          host.contact())
        call = Call(host, leg, plan.user("1001"), request.from_, "1002")
        call.start(Route(RouteKind.USER, "1002"))
        assert host.legs.responses[-1].status == status
        assert host.legs.requests == []
        assert host.media.endpoints == {}


def test_hold_is_answered_and_reoffered() -> None:
    """A re-INVITE with sendonly from A is answered recvonly from A's endpoint
    and re-offered to B as sendonly; B hears the music on hold until A
    resumes."""
    host, call, _ = setup()
    host.music_on_hold = PlaySource(path="/moh.wav", loop=True)
    call.start(Route(RouteKind.USER, "1002"))
    b_respond(host, 200, SDP_B)
    call.a.acked(message(
        f"ACK sip:127.0.0.1:5070 SIP/2.0\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-a2\n"
        f"Max-Forwards: 70\nFrom: <sip:1001@{DOMAIN}>;tag=fa\n"
        f"To: <sip:1002@{DOMAIN}>;tag={call.a.local_tag}\nCall-ID: call-a\nCSeq: 10 ACK\n"))
    hold = SDP_A.replace(b"o=a 1 1", b"o=a 1 2") + b"a=sendonly\r\n"
    reinvite = message(
        f"INVITE sip:127.0.0.1:5070 SIP/2.0\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-a3\n"
        f"Max-Forwards: 70\nFrom: <sip:1001@{DOMAIN}>;tag=fa\n"
        f"To: <sip:1002@{DOMAIN}>;tag={call.a.local_tag}\nCall-ID: call-a\nCSeq: 11 INVITE\n"
        "Contact: <sip:1001@192.0.2.10:5062>\nContent-Type: application/sdp\n", hold)
    call.a.receive(reinvite, FakeTxn(reinvite, SOURCE))  # type: ignore[arg-type]
    ok = host.legs.responses[-1]
    assert ok.status == 200
    assert parse_sdp(ok.body).media[0].direction.value == "recvonly"
    b_reinvite = host.legs.requests[-1].request
    assert b_reinvite.method == "INVITE"
    assert parse_sdp(b_reinvite.body).media[0].direction.value == "sendonly"
    assert "held" in host.events
    assert call.b_endpoint is not None
    assert host.media.played == [(call.b_endpoint.endpoint_id, host.music_on_hold)]
    resume = message(
        f"INVITE sip:127.0.0.1:5070 SIP/2.0\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-a4\n"
        f"Max-Forwards: 70\nFrom: <sip:1001@{DOMAIN}>;tag=fa\n"
        f"To: <sip:1002@{DOMAIN}>;tag={call.a.local_tag}\nCall-ID: call-a\nCSeq: 12 INVITE\n"
        "Contact: <sip:1001@192.0.2.10:5062>\nContent-Type: application/sdp\n",
        SDP_A.replace(b"o=a 1 1", b"o=a 1 3"))
    call.a.receive(resume, FakeTxn(resume, SOURCE))  # type: ignore[arg-type]
    assert host.media.stopped == [call.b_endpoint.endpoint_id]


def answered_call(entries: Sequence[DialPlanEntry] = (), **target: str
                  ) -> tuple[Host, Call, Clock]:
    """1001 → 1002, answered; ``target`` gives user 1003 more keys."""
    users = [UserConfig(extension="1001", password="x"),
             UserConfig(extension="1002", password="x", class_of_service="internal"),
             UserConfig(extension="1003", password="x", **target),
             UserConfig(extension="1004", password="x")]
    host, call, clock = setup(users, entries)
    call.start(Route(RouteKind.USER, "1002"))
    b_respond(host, 200, SDP_B)
    call.incoming.acked(message(
        f"ACK sip:127.0.0.1:5070 SIP/2.0\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-a2\n"
        f"Max-Forwards: 70\nFrom: <sip:1001@{DOMAIN}>;tag=fa\n"
        f"To: <sip:1002@{DOMAIN}>;tag={call.incoming.local_tag}\nCall-ID: call-a\n"
        "CSeq: 10 ACK\n"))
    return host, call, clock


def refer_from_b(call: Call, target: str) -> Request:
    b_invite = call.b.dialog  # type: ignore[union-attr]
    assert b_invite is not None
    return message(
        f"REFER sip:127.0.0.1:5070 SIP/2.0\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-r1\n"
        f"Max-Forwards: 70\nFrom: <sip:1002@{DOMAIN}>;tag=tb\n"
        f"To: <sip:1001@{DOMAIN}>;tag={b_invite.local_tag}\nCall-ID: {b_invite.call_id}\n"
        f"CSeq: 6 REFER\nContact: <sip:1002@192.0.2.20:5064>\n"
        f"Refer-To: <sip:{target}@{DOMAIN}>\n")


def from_caller(method: str, local_tag: str, cseq: int, body: bytes = b"") -> Request:
    """A request of 1001 (tag fa) inside call-a, whose our side has ``local_tag``."""
    return message(
        f"{method} sip:127.0.0.1:5070 SIP/2.0\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-{method.lower()}{cseq}\n"
        f"Max-Forwards: 70\nFrom: <sip:1001@{DOMAIN}>;tag=fa\n"
        f"To: <sip:1002@{DOMAIN}>;tag={local_tag}\nCall-ID: call-a\nCSeq: {cseq} {method}\n"
        "Contact: <sip:1001@192.0.2.10:5062>\n"
        + ("Content-Type: application/sdp\n" if body else ""), body)


def refer_replacing(call1: Call, call2: Call, target: str) -> Request:
    """1001's REFER in call-1 asking that call-2 be replaced (attended transfer)."""
    replaces = f"call-2%3Bto-tag%3D{call2.incoming.local_tag}%3Bfrom-tag%3Dfa"
    return message(
        f"REFER sip:127.0.0.1:5070 SIP/2.0\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-rf\n"
        f"Max-Forwards: 70\nFrom: <sip:1001@{DOMAIN}>;tag=fa\n"
        f"To: <sip:1002@{DOMAIN}>;tag={call1.incoming.local_tag}\nCall-ID: call-1\n"
        f"CSeq: 11 REFER\nContact: <sip:1001@192.0.2.10:5062>\n"
        f"Refer-To: <sip:{target}@{DOMAIN}?Replaces={replaces}>\n")


def test_blind_transfer_connects_the_transferee_to_the_target() -> None:
    """REFER from the callee: 202, NOTIFY 100, an INVITE to the target from
    the caller's identity; when the target answers the caller's endpoint is
    connected to the target's, the transferor gets NOTIFY 200 and BYE, its
    endpoint is released, and the call goes on between caller and target."""
    host, call, _ = answered_call()
    a_endpoint = call.a_endpoint
    old_b = call.b_endpoint
    assert a_endpoint is not None and old_b is not None
    refer = refer_from_b(call, "1003")
    assert call.b is not None
    transferor = call.b
    call.b.receive(refer, FakeTxn(refer, SOURCE))  # type: ignore[arg-type]
    assert host.legs.responses[-1].status == 202
    sent = [t.request for t in host.legs.requests]
    notify = sent[-2]
    assert notify.method == "NOTIFY" and notify.body.startswith(b"SIP/2.0 100")
    invite = sent[-1]
    assert invite.method == "INVITE" and str(invite.uri) == f"sip:1003@{DOMAIN}"
    assert "1001" in str(invite.from_.uri)
    # the target answers
    target_txn = host.legs.requests[-1]
    response = make_response(target_txn.request, 200, to_tag="tz", extra=(
        ("Contact", "<sip:1003@192.0.2.30:5066>"), ("Content-Type", "application/sdp")),
        body=SDP_B.replace(b"5000", b"6000"))
    response = parse_message(response.serialize())
    assert target_txn.on_event is not None
    target_txn.on_event(ResponseIn(target_txn, response, SOURCE))  # type: ignore[arg-type]
    new_endpoint = call.b_endpoint
    assert new_endpoint is not None and new_endpoint.endpoint_id != old_b.endpoint_id
    assert host.media.connected[-1] == (a_endpoint.endpoint_id, new_endpoint.endpoint_id)
    methods = [t.request.method for t in host.legs.requests[-3:]]
    assert methods[-2:] == ["NOTIFY", "BYE"]
    assert host.legs.requests[-2].request.body.startswith(b"SIP/2.0 200")
    assert transferor.ended
    assert old_b.endpoint_id not in host.media.endpoints
    assert "transferred" in host.events
    assert call.callee == "1003"


def test_failed_transfer_keeps_the_call() -> None:
    """When the target is busy the transferor hears NOTIFY 486 and the call
    between the original parties stays up; a REFER to a number the dial plan
    refuses is reported the same way."""
    host, call, _ = answered_call()
    refer = refer_from_b(call, "1003")
    assert call.b is not None
    b = call.b
    b.receive(refer, FakeTxn(refer, SOURCE))  # type: ignore[arg-type]
    target_txn = host.legs.requests[-1]
    busy = parse_message(make_response(target_txn.request, 486, to_tag="tz").serialize())
    assert target_txn.on_event is not None
    target_txn.on_event(ResponseIn(target_txn, busy, SOURCE))  # type: ignore[arg-type]
    notify = [t.request for t in host.legs.requests if t.request.method == "NOTIFY"][-1]
    assert notify.body.startswith(b"SIP/2.0 486")
    assert "terminated" in (notify.headers.get("Subscription-State") or "")
    assert call.b is b and not b.ended and call.transfer is None
    assert len(host.media.endpoints) == 2
    refer = refer_from_b(call, "0812345678")
    b.receive(refer, FakeTxn(refer, SOURCE))  # type: ignore[arg-type]
    notify = [t.request for t in host.legs.requests if t.request.method == "NOTIFY"][-1]
    assert notify.body.startswith(b"SIP/2.0 403")
    assert host.cdrs == []


@pytest.mark.parametrize(("scripts", "transferor"), [(True, "b"), (True, "a"), (False, "b")])
def test_blind_transfer_to_a_script_hands_the_transferee_over(scripts: bool,
                                                              transferor: str) -> None:
    """REFER to a number bound to a script on this SIP server (here the
    voicemail of 1003), from either party: the transferee, answered already,
    goes to the script with its own endpoint; the transferor gets NOTIFY 200
    and BYE, its endpoint is released and the call writes its CDR
    ("transferred").  Without a scriptserver the transferor hears NOTIFY 501
    and keeps its call."""
    host, call, _ = answered_call([DialPlanEntry(number="*97", app="voicemail",
                                                 args=("1003", "u"))])
    host.scripts = scripts
    a_endpoint, b_endpoint = call.a_endpoint, call.b_endpoint
    assert a_endpoint is not None and call.b is not None and b_endpoint is not None
    if transferor == "b":
        leg, transferee, kept, caller = call.b, call.incoming, a_endpoint, "1001"
        refer = refer_from_b(call, "*97")
    else:
        leg, transferee, kept, caller = call.incoming, call.b, b_endpoint, "1002"
        refer = from_caller("REFER", call.incoming.local_tag, 12)
        refer.headers.add("Refer-To", f"<sip:*97@{DOMAIN}>")
    leg.receive(refer, FakeTxn(refer, SOURCE))  # type: ignore[arg-type]
    assert host.legs.responses[-1].status == 202
    notify = [t.request for t in host.legs.requests if t.request.method == "NOTIFY"][-1]
    if not scripts:
        assert notify.body.startswith(b"SIP/2.0 501")
        assert not leg.ended and call.a_endpoint is a_endpoint
        assert len(host.media.endpoints) == 2 and host.cdrs == []
        return
    [handover] = host.handovers
    assert handover.leg is transferee and handover.answered and not handover.late_offer
    assert (handover.route.target, handover.route.args) == ("voicemail", ("1003", "u"))
    assert handover.dialled == "*97" and handover.caller is not None
    assert handover.caller.extension == caller
    assert handover.endpoint is kept and handover.answer
    assert notify.body.startswith(b"SIP/2.0 200")
    assert host.legs.requests[-1].request.method == "BYE" and leg.ended
    assert list(host.media.endpoints) == [kept.endpoint_id]
    assert not transferee.ended
    [cdr] = host.cdrs
    assert cdr.hangup_cause == "transferred" and cdr.disposition == "answered"


def test_a_busy_transfer_target_forwards_to_its_voicemail() -> None:
    """REFER to 1003, who is busy and forwards busy calls to its voicemail:
    the transferee goes to the voicemail script with its endpoint, the
    transferor hears NOTIFY 200 (not 486) and is let go."""
    host, call, _ = answered_call(
        [DialPlanEntry(number="*981003", app="voicemail", args=("1003", "b"))],
        forward_busy="*981003")
    b = call.b
    assert b is not None and call.a_endpoint is not None
    kept = call.a_endpoint
    refer = refer_from_b(call, "1003")
    b.receive(refer, FakeTxn(refer, SOURCE))  # type: ignore[arg-type]
    target_txn = host.legs.requests[-1]
    assert str(target_txn.request.uri) == f"sip:1003@{DOMAIN}"
    busy = parse_message(make_response(target_txn.request, 486, to_tag="tz").serialize())
    assert target_txn.on_event is not None
    target_txn.on_event(ResponseIn(target_txn, busy, SOURCE))  # type: ignore[arg-type]
    [handover] = host.handovers
    assert (handover.route.target, handover.route.args) == ("voicemail", ("1003", "b"))
    assert handover.leg is call.incoming and handover.endpoint is kept
    notifies = [t.request for t in host.legs.requests if t.request.method == "NOTIFY"]
    assert notifies[-1].body.startswith(b"SIP/2.0 200") and b.ended
    assert [c.hangup_cause for c in host.cdrs] == ["transferred"]


def test_an_unanswered_transfer_target_forwards_to_another_user() -> None:
    """No answer from 1003 within the timeout, and 1003 forwards unanswered
    calls to 1004: the first transfer leg is cancelled and 1004 is called
    for the transferee; when 1004 answers the two are connected."""
    host, call, clock = answered_call(forward_no_answer="1004")
    b = call.b
    assert b is not None
    refer = refer_from_b(call, "1003")
    b.receive(refer, FakeTxn(refer, SOURCE))  # type: ignore[arg-type]
    first = host.legs.requests[-1]
    assert str(first.request.uri) == f"sip:1003@{DOMAIN}"
    clock.advance(host.no_answer_timeout + 1)
    invites = [t for t in host.legs.requests if t.request.method == "INVITE"]
    assert str(invites[-1].request.uri) == f"sip:1004@{DOMAIN}"
    assert not b.ended and call.transfer is not None and call.transfer.hops == 1
    second = invites[-1]
    ok = parse_message(make_response(second.request, 200, to_tag="t4", extra=(
        ("Contact", "<sip:1004@192.0.2.40:5068>"), ("Content-Type", "application/sdp")),
        body=SDP_B.replace(b"5000", b"7000")).serialize())
    assert second.on_event is not None
    second.on_event(ResponseIn(second, ok, SOURCE))  # type: ignore[arg-type]
    assert call.callee == "1004" and b.ended


def test_late_offer_is_made_in_the_200_and_answered_in_the_ack() -> None:
    """An INVITE without SDP: the callee gets our offer as usual; the caller
    gets an offer in the 200 and its answer in the ACK sets the A side."""
    clock = Clock()
    plan = DialPlan(PlatformConfig(domain=DOMAIN),
                    [UserConfig(extension="1001", password="x"),
                     UserConfig(extension="1002", password="x")], ())
    host = Host(FakeLegs(clock), FakeMedia(), plan)
    request = invite_a(b"")
    leg = IncomingLeg(host.legs, None, request, FakeTxn(request, SOURCE),  # type: ignore[arg-type]
                      host.contact())
    call = Call(host, leg, plan.user("1001"), request.from_, "1002")
    call.start(Route(RouteKind.USER, "1002"))
    assert host.legs.requests[0].request.body  # the callee is offered media
    b_respond(host, 200, SDP_B)
    ok = host.legs.responses[-1]
    assert ok.status == 200
    offer = parse_sdp(ok.body)
    assert [f for f in offer.media[0].formats][:2] == ["0", "8"]
    a_endpoint = call.a_endpoint
    assert a_endpoint is not None and a_endpoint.endpoint_id not in host.media.remote
    ack = message(
        f"ACK sip:127.0.0.1:5070 SIP/2.0\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-a2\n"
        f"Max-Forwards: 70\nFrom: <sip:1001@{DOMAIN}>;tag=fa\n"
        f"To: <sip:1002@{DOMAIN}>;tag={call.incoming.local_tag}\nCall-ID: call-a\n"
        "CSeq: 10 ACK\nContent-Type: application/sdp\n",
        SDP_A.replace(b"8 0 101", b"8 101").replace(b"4000", b"4002"))
    call.incoming.acked(ack)
    assert call.state == "answered"
    assert host.media.remote[a_endpoint.endpoint_id][0].port == 4002
    assert call.codec == "PCMA"


def _answered_on(host: Host, call_id: str, callee: str, sdp_port: int) -> Call:
    request = invite_a()
    request.headers.set("Call-ID", call_id)
    request.headers.set("To", f"<sip:{callee}@{DOMAIN}>")
    request = parse_message(request.serialize())
    leg = IncomingLeg(host.legs, None, request, FakeTxn(request, SOURCE),  # type: ignore[arg-type]
                      host.contact())
    call = Call(host, leg, host.plan.user("1001"), request.from_, callee)
    start = len(host.legs.requests)
    call.start(Route(RouteKind.USER, callee))
    txn = host.legs.requests[start]
    response = make_response(txn.request, 200, to_tag=f"t{callee}", extra=(
        ("Contact", f"<sip:{callee}@192.0.2.40:5070>"), ("Content-Type", "application/sdp")),
        body=SDP_B.replace(b"5000", str(sdp_port).encode()))
    assert txn.on_event is not None
    txn.on_event(ResponseIn(txn, parse_message(response.serialize()), SOURCE))  # type: ignore[arg-type]
    call.incoming.acked(message(
        "ACK sip:127.0.0.1:5070 SIP/2.0\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-k{call_id}\n"
        f"Max-Forwards: 70\nFrom: <sip:1001@{DOMAIN}>;tag=fa\n"
        f"To: <sip:{callee}@{DOMAIN}>;tag={call.incoming.local_tag}\nCall-ID: {call_id}\n"
        "CSeq: 10 ACK\n"))
    assert call.state == "answered"
    return call


def test_attended_transfer_joins_the_two_far_ends() -> None:
    """Alice talks to Bob (call 1) and to Carol (call 2), then REFERs call 1
    with Replaces naming call 2: Alice's two legs end (NOTIFY 200 then BYE
    on both), Bob's endpoint is connected to Carol's, call 2 ends as
    replaced, and call 1 goes on between Bob and Carol until one hangs up."""
    clock = Clock()
    users = [UserConfig(extension=e, password="x") for e in ("1001", "1002", "1003")]
    host = Host(FakeLegs(clock), FakeMedia(), DialPlan(PlatformConfig(domain=DOMAIN),
                                                             users, ()))
    call1 = _answered_on(host, "call-1", "1002", 5000)
    call2 = _answered_on(host, "call-2", "1003", 6000)
    bob_endpoint, carol_endpoint = call1.b_endpoint, call2.b_endpoint
    assert bob_endpoint is not None and carol_endpoint is not None
    refer = refer_replacing(call1, call2, "1003")
    mark = len(host.legs.requests)
    call1.incoming.receive(refer, FakeTxn(refer, SOURCE))  # type: ignore[arg-type]
    assert host.legs.responses[-1].status == 202
    sent = [(t.request.method, t.request.call_id) for t in host.legs.requests[mark:]]
    assert sent.count(("BYE", "call-1")) == 1 and sent.count(("BYE", "call-2")) == 1
    notifies = [t.request for t in host.legs.requests[mark:] if t.request.method == "NOTIFY"]
    assert notifies[-1].body.startswith(b"SIP/2.0 200")
    assert host.media.connected[-1] == (bob_endpoint.endpoint_id, carol_endpoint.endpoint_id)
    assert [c.hangup_cause for c in host.cdrs] == ["replaced"]
    assert call1.a is not call1.incoming and call1.b is not None
    assert set(host.media.endpoints) == {bob_endpoint.endpoint_id, carol_endpoint.endpoint_id}
    assert call1.callee == "1003"
    # Carol hangs up: Bob gets BYE and the call ends
    carol = call1.b
    assert carol.dialog is not None
    bye = message(
        f"BYE sip:127.0.0.1:5070 SIP/2.0\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-cb\n"
        f"Max-Forwards: 70\nFrom: <sip:1003@{DOMAIN}>;tag=t1003\n"
        f"To: <sip:1001@{DOMAIN}>;tag={carol.dialog.local_tag}\nCall-ID: {carol.dialog.call_id}\n"
        "CSeq: 9 BYE\n")
    carol.receive(bye, FakeTxn(bye, SOURCE))  # type: ignore[arg-type]
    bob_bye = host.legs.requests[-1].request
    assert bob_bye.method == "BYE" and bob_bye.call_id == call1.a.dialog.call_id  # type: ignore[union-attr]
    assert host.media.endpoints == {}
    assert [c.callee for c in host.cdrs] == ["1003", "1003"]


def test_refer_with_unknown_replaces_is_481() -> None:
    """A Replaces naming no dialog of this SIP server is answered 481."""
    host, call, _ = answered_call()
    assert call.b is not None and call.b.dialog is not None
    refer = refer_from_b(call, "1003")
    refer.headers.set("Refer-To", f"<sip:1003@{DOMAIN}?Replaces=nope%3Bto-tag%3Dx%3Bfrom-tag%3Dy>")
    call.b.receive(refer, FakeTxn(refer, SOURCE))  # type: ignore[arg-type]
    assert host.legs.responses[-1].status == 481


def test_session_timer_ends_a_call_nobody_refreshes() -> None:
    """With refresher=uac the 200 says Session-Expires and Require: timer;
    a refresh (re-INVITE) restarts the interval; without one the call ends
    at the interval minus a third (BYE on both legs)."""
    from telavox.tproxy.sessiontimer import SessionTimer

    host, call, clock = setup()
    call.session_timer = SessionTimer(90, "uac")
    call.start(Route(RouteKind.USER, "1002"))
    b_respond(host, 200, SDP_B)
    ok = host.legs.responses[-1]
    assert ok.headers.get("Session-Expires") == "90;refresher=uac"
    assert ok.headers.get("Require") == "timer"
    call.incoming.acked(message(
        f"ACK sip:127.0.0.1:5070 SIP/2.0\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-a2\n"
        f"Max-Forwards: 70\nFrom: <sip:1001@{DOMAIN}>;tag=fa\n"
        f"To: <sip:1002@{DOMAIN}>;tag={call.incoming.local_tag}\nCall-ID: call-a\n"
        "CSeq: 10 ACK\n"))
    clock.advance(50)
    refresh = message(
        f"INVITE sip:127.0.0.1:5070 SIP/2.0\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-s1\n"
        f"Max-Forwards: 70\nFrom: <sip:1001@{DOMAIN}>;tag=fa\n"
        f"To: <sip:1002@{DOMAIN}>;tag={call.incoming.local_tag}\nCall-ID: call-a\n"
        "CSeq: 11 INVITE\nContact: <sip:1001@192.0.2.10:5062>\n"
        "Session-Expires: 90;refresher=uac\nSupported: timer\n"
        "Content-Type: application/sdp\n", SDP_A)
    call.incoming.receive(refresh, FakeTxn(refresh, SOURCE))  # type: ignore[arg-type]
    assert host.legs.responses[-1].headers.get("Session-Expires") == "90;refresher=uac"
    clock.advance(50)  # 100 s after the answer, 50 s after the refresh
    assert call.state != "ended"
    clock.advance(15)
    assert call.state == "ended"
    assert host.cdrs[-1].hangup_cause == "session timer expired"
    byes = [t.request.call_id for t in host.legs.requests if t.request.method == "BYE"]
    assert len(byes) == 2


def test_session_timer_we_refresh() -> None:
    """With refresher=uas the SIP server re-INVITEs the caller at half the
    interval with its unchanged description."""
    from telavox.tproxy.sessiontimer import SessionTimer

    host, call, clock = setup()
    call.session_timer = SessionTimer(120, "uas")
    call.start(Route(RouteKind.USER, "1002"))
    b_respond(host, 200, SDP_B)
    answer = host.legs.responses[-1].body
    call.incoming.acked(message(
        f"ACK sip:127.0.0.1:5070 SIP/2.0\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-a2\n"
        f"Max-Forwards: 70\nFrom: <sip:1001@{DOMAIN}>;tag=fa\n"
        f"To: <sip:1002@{DOMAIN}>;tag={call.incoming.local_tag}\nCall-ID: call-a\n"
        "CSeq: 10 ACK\n"))
    clock.advance(60)
    refresh = host.legs.requests[-1].request
    assert refresh.method == "INVITE" and refresh.call_id == "call-a"
    assert refresh.headers.get("Session-Expires") == "120;refresher=uas"
    assert refresh.body == answer  # same version: nothing changed


VIDEO = (b"m=video 4100 RTP/AVP 96 97\r\na=rtpmap:96 H264/90000\r\n"
         b"a=fmtp:96 profile-level-id=42e01f\r\na=rtpmap:97 VP8/90000\r\n")


def test_video_is_relayed_codec_agnostic() -> None:
    """A caller offering audio and video gets endpoints with both streams;
    the callee is offered the caller's video formats as they are; the two
    far ends' video streams reach the mediaserver index for index."""
    clock = Clock()
    plan = DialPlan(PlatformConfig(domain=DOMAIN),
                    [UserConfig(extension="1001", password="x"),
                     UserConfig(extension="1002", password="x")], ())
    host = Host(FakeLegs(clock), FakeMedia(), plan)
    request = invite_a(SDP_A + VIDEO)
    leg = IncomingLeg(host.legs, None, request, FakeTxn(request, SOURCE),  # type: ignore[arg-type]
                      host.contact())
    call = Call(host, leg, plan.user("1001"), request.from_, "1002")
    call.start(Route(RouteKind.USER, "1002"))
    offer = parse_sdp(host.legs.requests[0].request.body)
    assert [m.media for m in offer.media] == ["audio", "video"]
    assert offer.media[1].formats == ("96", "97")
    assert offer.media[1].fmtp(96) == "profile-level-id=42e01f"
    b_respond(host, 200, SDP_B + VIDEO.replace(b"4100", b"5100").replace(b" 96 97", b" 96"))
    answer = parse_sdp(host.legs.responses[-1].body)
    assert [m.media for m in answer.media] == ["audio", "video"]
    assert answer.media[1].port != 0
    a_endpoint, b_endpoint = call.a_endpoint, call.b_endpoint
    assert a_endpoint is not None and b_endpoint is not None
    assert answer.media[1].port == a_endpoint.streams[1].rtp_port
    assert [r.kind for r in host.media.remote[a_endpoint.endpoint_id]] == ["audio", "video"]
    b_video = host.media.remote[b_endpoint.endpoint_id][1]
    assert (b_video.kind, b_video.port, b_video.formats[0].name) == ("video", 5100, "H264")


def _prack(call: Call, rseq: str, cseq: int) -> Request:
    return message(
        "PRACK sip:127.0.0.1:5070 SIP/2.0\n"
        f"Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-p{cseq}\n"
        f"Max-Forwards: 70\nFrom: <sip:1001@{DOMAIN}>;tag=fa\n"
        f"To: <sip:1002@{DOMAIN}>;tag={call.incoming.local_tag}\nCall-ID: call-a\n"
        f"CSeq: {cseq} PRACK\nRAck: {rseq} 10 INVITE\n")


def reliable_setup() -> tuple[Host, Call, Clock]:
    clock = Clock()
    plan = DialPlan(PlatformConfig(domain=DOMAIN),
                    [UserConfig(extension="1001", password="x"),
                     UserConfig(extension="1002", password="x")], ())
    host = Host(FakeLegs(clock), FakeMedia(), plan, no_answer_timeout=60.0)
    request = invite_a()
    request.headers.add("Require", "100rel")
    request = parse_message(request.serialize())
    leg = IncomingLeg(host.legs, None, request, FakeTxn(request, SOURCE),  # type: ignore[arg-type]
                      host.contact())
    call = Call(host, leg, plan.user("1001"), request.from_, "1002")
    call.start(Route(RouteKind.USER, "1002"))
    return host, call, clock


def test_reliable_provisionals_when_the_caller_requires_100rel() -> None:
    """RFC 3262: each 18x goes reliably (Require: 100rel, RSeq one higher),
    retransmitted until its PRACK, one at a time; the 200 that answers an
    offer waits for the PRACK of the 183 that carried the session."""
    host, call, clock = reliable_setup()
    b_respond(host, 180)
    ringing = host.legs.responses[-1]
    assert ringing.status == 180 and ringing.headers.get("Require") == "100rel"
    rseq = int(ringing.headers.get("RSeq") or 0)
    clock.advance(0.5)
    assert host.legs.responses[-1] is ringing  # retransmitted
    sent = len(host.legs.responses)
    b_respond(host, 183, SDP_B)  # queued behind the unacknowledged 180
    assert len(host.legs.responses) == sent
    prack = _prack(call, str(rseq), 11)
    call.incoming.receive(prack, FakeTxn(prack, SOURCE))  # type: ignore[arg-type]
    statuses = [r.status for r in host.legs.responses[sent:]]
    assert statuses == [200, 183]  # the PRACK's 200, then the queued 183
    progress = host.legs.responses[-1]
    assert int(progress.headers.get("RSeq") or 0) == rseq + 1 and progress.body
    b_respond(host, 200, SDP_B)
    assert host.legs.responses[-1] is progress  # the 200 waits for the PRACK
    prack = _prack(call, str(rseq + 1), 12)
    call.incoming.receive(prack, FakeTxn(prack, SOURCE))  # type: ignore[arg-type]
    assert [r.status for r in host.legs.responses[-2:]] == [200, 200]
    assert host.legs.responses[-1].cseq.method == "INVITE"
    wrong = _prack(call, "1", 13)
    call.incoming.receive(wrong, FakeTxn(wrong, SOURCE))  # type: ignore[arg-type]
    assert host.legs.responses[-1].status == 481


def test_no_prack_gives_up_the_call() -> None:
    """A reliable 180 that never gets its PRACK: after 64*T1 the caller gets
    500 and the callee's leg is cancelled."""
    host, call, clock = reliable_setup()
    b_respond(host, 180)
    for _ in range(80):
        clock.advance(0.5)
    assert host.legs.responses[-1].status == 500
    assert host.legs.requests[-1].request.method == "CANCEL"
    assert call.state == "ended"


def test_directed_pickup_answers_the_ringing_call() -> None:
    """1003 dials **1002 while 1002 rings: the dial plan says pickup; the
    call cancels 1002, answers 1003 from the B endpoint (bridged to A) and
    answers the caller; the CDR names 1003."""
    users = [UserConfig(extension="1001", password="x"),
             UserConfig(extension="1002", password="x"),
             UserConfig(extension="1003", password="x")]
    host, call, _ = setup(users)
    assert host.plan.route(host.plan.user("1003"), "**1002") == Route(RouteKind.PICKUP, "1002")
    assert host.plan.route(None, "**1002").kind is RouteKind.REJECT
    call.start(Route(RouteKind.USER, "1002"))
    b_respond(host, 180)
    picker_invite = message(
        f"INVITE sip:**1002@{DOMAIN} SIP/2.0\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-p1\n"
        f"Max-Forwards: 69\nFrom: <sip:1003@{DOMAIN}>;tag=fp\nTo: <sip:**1002@{DOMAIN}>\n"
        "Call-ID: call-p\nCSeq: 1 INVITE\nContact: <sip:1003@192.0.2.30:5066>\n"
        "Content-Type: application/sdp\n", SDP_B.replace(b"5000", b"7000"))
    picker = IncomingLeg(host.legs, None, picker_invite,  # type: ignore[arg-type]
                         FakeTxn(picker_invite, SOURCE), host.contact())
    call.picked_up(picker, "1003")
    assert any(t.request.method == "CANCEL" for t in host.legs.requests)
    oks = [r for r in host.legs.responses if r.status == 200]
    assert {r.call_id for r in oks} == {"call-a", "call-p"}
    assert call.b is picker and call.callee == "1003"
    a_eid, b_eid = call.a_endpoint.endpoint_id, call.b_endpoint.endpoint_id  # type: ignore[union-attr]
    assert (a_eid, b_eid) in host.media.connected
    assert host.media.remote[b_eid][0].port == 7000
    call.hangup("test")
    assert host.cdrs[-1].callee == "1003"


def test_an_ended_call_is_freed_without_the_cyclic_collector() -> None:
    """Once a call has ended its legs no longer report to it, so the call
    (its sessions, endpoints, route) is freed with the last reference, not
    left in a cycle for the cyclic collector."""
    import gc

    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        host, call, _ = answered_call()
        a = call.a
        assert a.dialog is not None
        bye = from_caller("BYE", a.dialog.local_tag, 11)
        a.receive(bye, FakeTxn(bye, SOURCE))  # type: ignore[arg-type]
        assert call.state == "ended"
        del a, bye, call
        host.index.clear()
        host.legs.requests.clear()  # the fakes' own records of the legs
        host.legs.responses.clear()
        gc.collect()
        assert not [o for o in gc.garbage if isinstance(o, Call)]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()


def test_media_refused_for_a_released_endpoint_is_logged_not_left_unhandled() -> None:
    """The answer to a re-INVITE (or a transfer's media) can arrive after the
    call ended and released its endpoints: the mediaserver's refusal is
    logged, not left as an unhandled error; any other failure still shows."""
    from twisted.python.failure import Failure

    from telavox.interfaces import MediaError

    _host, call, _ = setup()
    refused: defer.Deferred[None] = defer.fail(MediaError("no endpoint 'sip1-4'", status=404))
    call._quietly(refused, "set_remote")
    outcome: list[object] = []
    refused.addBoth(outcome.append)
    assert outcome == [None]
    broken: defer.Deferred[None] = defer.fail(ValueError("a bug"))
    call._quietly(broken, "connect")
    outcome.clear()
    broken.addBoth(outcome.append)
    assert isinstance(outcome[0], Failure) and outcome[0].check(ValueError)
