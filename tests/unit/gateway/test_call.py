"""A gateway call between its legs, with fake legs' transport and a fake
clock: what each side is sent, which attempt is tried when, and what the
gateway is told (attempt results, the end of the call)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from helpers.fakelegs import FakeLegs, FakeTxn, message
from twisted.internet.task import Clock

from telavox.b2bua.endpoint import LegTable
from telavox.b2bua.leg import IncomingLeg, Leg
from telavox.config.model import PlatformConfig, TrunkConfig
from telavox.gateway.call import Attempt, GatewayCall, fails_over
from telavox.gateway.trunk import Trunk
from telavox.sip.digest import ha1
from telavox.sip.digest import response as digest_response
from telavox.sip.digestparse import parse_credentials
from telavox.sip.hdrtypes import NameAddr
from telavox.sip.message import Request, Response, make_response
from telavox.sip.parser import parse_message
from telavox.sip.transaction import Destination, ResponseIn, Source, TimedOut
from telavox.sip.transaction.events import TransportFailed
from telavox.sip.uri import SipUri

SDP_A = (b"v=0\r\no=a 1 1 IN IP4 192.0.2.10\r\ns=-\r\nc=IN IP4 192.0.2.10\r\nt=0 0\r\n"
         b"m=audio 4000 RTP/AVP 8 0 101\r\na=rtpmap:101 telephone-event/8000\r\n")
SDP_B = (b"v=0\r\no=b 2 2 IN IP4 203.0.113.20\r\ns=-\r\nc=IN IP4 203.0.113.20\r\nt=0 0\r\n"
         b"m=audio 5000 RTP/AVP 8 101\r\na=rtpmap:101 telephone-event/8000\r\n")
A_SOURCE = Source("udp", "192.0.2.99", 5060)
"""The SIP server that called (the A side)."""
B_SOURCE = Source("udp", "203.0.113.1", 5060)
"""The carrier (the B side)."""
B_CONTACT = "<sip:+4681234567@203.0.113.20:5064>"
DEST_1 = Destination("udp", "203.0.113.1", 5060)
DEST_2 = Destination("udp", "203.0.113.2", 5060)
DEST_3 = Destination("udp", "203.0.113.3", 5060)
PAI = ("P-Asserted-Identity", "<sip:+4631000000@carrier.test>")
CHALLENGE = 'Digest realm="c", nonce="n1", qop="auth", algorithm=MD5'


def invite_a(body: bytes = SDP_A) -> Request:
    """The INVITE from the SIP server, with headers of its own that must
    stay on the inside."""
    return message(
        "INVITE sip:+4631000001@gw.internal SIP/2.0\n"
        "Via: SIP/2.0/UDP 192.0.2.99:5060;branch=z9hG4bK-a1\n"
        "Max-Forwards: 69\n"
        "From: \"Alice\" <sip:1001@pbx.internal>;tag=fa\n"
        "To: <sip:+4631000001@gw.internal>\n"
        "Call-ID: call-a\nCSeq: 10 INVITE\n"
        "Contact: <sip:sip1@192.0.2.99:5060>\n"
        "P-Asserted-Identity: <sip:1001@pbx.internal>\n"
        "X-Internal: account=42\n"
        + ("Content-Type: application/sdp\n" if body else ""), body)


class FakeGateway:
    """The GatewayCallHost of the tests: records what the call tells it."""

    name = "gw1"
    user_agent = "telavox-gw-test"

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.registered: list[tuple[str, str] | None] = []
        self.unregistered: list[tuple[str, str] | None] = []
        self.results: list[tuple[Destination, int, str]] = []
        self.ended: list[GatewayCall] = []
        self.limits: dict[str, int] = {}
        """Channels of each trunk (absent: no limit)."""
        self.active: dict[str, int] = {}

    def register_leg(self, leg: Leg) -> None:
        self.registered.append(LegTable.key(leg))

    def unregister_leg(self, leg: Leg) -> None:
        self.unregistered.append(LegTable.key(leg))

    def attempt_result(self, call: GatewayCall, attempt: Attempt, status: int,
                       reason: str) -> None:
        self.results.append((attempt.dest, status, reason))

    def call_ended(self, call: GatewayCall) -> None:
        self.ended.append(call)

    def call_later(self, delay: float, fn: Callable[[], object]) -> Any:
        return self.clock.callLater(delay, fn)

    def claim_trunk(self, name: str) -> bool:
        if self.active.get(name, 0) >= self.limits.get(name, 1_000):
            return False
        self.active[name] = self.active.get(name, 0) + 1
        return True

    def release_trunk(self, name: str) -> None:
        assert self.active.get(name, 0) > 0, f"{name} released more than claimed"
        self.active[name] -= 1


class Rig:
    """A gateway call with its two sides: ``a`` (toward the SIP server that
    called) and ``b`` (toward the carriers)."""

    def __init__(self, attempts: list[Attempt], body: bytes = SDP_A) -> None:
        self.clock = Clock()
        self.gw = FakeGateway(self.clock)
        self.a = FakeLegs(self.clock, "10.0.0.1")
        self.b = FakeLegs(self.clock, "198.51.100.7")
        self.invite = invite_a(body)
        txn: Any = FakeTxn(self.invite, A_SOURCE)
        leg = IncomingLeg(self.a, None, self.invite, txn,  # type: ignore[arg-type]
                          NameAddr(uri=SipUri(host="10.0.0.1", port=5080)))
        self.attempts = attempts
        self.call = GatewayCall(self.gw, leg, attempts, self.b,
                                NameAddr(uri=SipUri(host="198.51.100.7", port=5080)),
                                direction="outbound", caller="+4631000000",
                                callee="+4681234567")

    @property
    def a_statuses(self) -> list[int]:
        return [r.status for r in self.a.responses]

    def invites(self) -> list[FakeTxn]:
        return self.b.sent("INVITE")

    def respond(self, txn: FakeTxn, status: int, body: bytes = b"", *, to_tag: str = "tb",
                extra: tuple[tuple[str, str], ...] = ()) -> Response:
        """The far side answers the request of ``txn``."""
        fields = extra
        if 100 < status < 300 and txn.request.method in ("INVITE", "UPDATE"):
            fields = (("Contact", B_CONTACT), *fields)
        if body:
            fields = (*fields, ("Content-Type", "application/sdp"))
        made = make_response(txn.request, status, to_tag=to_tag, extra=fields, body=body)
        response = parse_message(made.serialize())
        assert isinstance(response, Response)
        assert txn.on_event is not None
        txn.on_event(ResponseIn(txn, response, B_SOURCE))  # type: ignore[arg-type]
        return response

    def ack_a(self) -> None:
        """The SIP server ACKs our 200."""
        leg = self.call.a
        self.call.a.acked(message(
            "ACK sip:10.0.0.1:5080 SIP/2.0\n"
            "Via: SIP/2.0/UDP 192.0.2.99:5060;branch=z9hG4bK-a2\n"
            "Max-Forwards: 70\nFrom: \"Alice\" <sip:1001@pbx.internal>;tag=fa\n"
            f"To: <sip:+4631000001@gw.internal>;tag={leg.local_tag}\n"
            "Call-ID: call-a\nCSeq: 10 ACK\n"))

    def from_a(self, method: str, cseq: int, body: bytes = b"") -> FakeTxn:
        """An in-dialog request from the SIP server, delivered to the A leg."""
        leg = self.call.a
        request = message(
            f"{method} sip:10.0.0.1:5080 SIP/2.0\n"
            f"Via: SIP/2.0/UDP 192.0.2.99:5060;branch=z9hG4bK-a{cseq}\n"
            "Max-Forwards: 70\nFrom: \"Alice\" <sip:1001@pbx.internal>;tag=fa\n"
            f"To: <sip:+4631000001@gw.internal>;tag={leg.local_tag}\n"
            f"Call-ID: call-a\nCSeq: {cseq} {method}\n"
            "Contact: <sip:sip1@192.0.2.99:5060>\n"
            + ("Content-Type: application/sdp\n" if body else ""), body)
        txn = FakeTxn(request, A_SOURCE)
        leg.receive(request, txn)  # type: ignore[arg-type]
        return txn

    def from_b(self, method: str, cseq: int, body: bytes = b"",
               content_type: str = "application/sdp",
               extra: str = "") -> FakeTxn:
        """An in-dialog request from the carrier, delivered to the B leg."""
        leg = self.call.b
        assert leg is not None and leg.dialog is not None
        dialog = leg.dialog
        request = message(
            f"{method} sip:198.51.100.7:5080 SIP/2.0\n"
            f"Via: SIP/2.0/UDP 203.0.113.20:5064;branch=z9hG4bK-b{cseq}\n"
            f"Max-Forwards: 70\nFrom: {dialog.remote_uri};tag={dialog.remote_tag}\n"
            f"To: {dialog.local_uri};tag={dialog.local_tag}\n"
            f"Call-ID: {dialog.call_id}\nCSeq: {cseq} {method}\n"
            f"Contact: {B_CONTACT}\n" + extra
            + (f"Content-Type: {content_type}\n" if body else ""), body)
        txn = FakeTxn(request, B_SOURCE)
        leg.receive(request, txn)  # type: ignore[arg-type]
        return txn


def attempt(dest: Destination = DEST_1, *, trunk: str = "carrier-a",
            invite_timeout: float | None = None,
            authenticate: Any = None) -> Attempt:
    """An attempt toward the carrier at ``dest`` calling +4681234567."""
    return Attempt(
        dest=dest,
        uri=SipUri(user="+4681234567", host="sip.carrier.test"),
        from_=NameAddr(uri=SipUri(user="+4631000000", host="carrier.test")),
        to=NameAddr(uri=SipUri(user="+4681234567", host="carrier.test")),
        extra=(PAI,), trunk=trunk, invite_timeout=invite_timeout, authenticate=authenticate)


def answered() -> Rig:
    """A call answered by its first attempt and ACKed by the caller."""
    rig = Rig([attempt()])
    rig.call.start()
    rig.respond(rig.invites()[0], 180)
    rig.respond(rig.invites()[0], 200, SDP_B)
    rig.ack_a()
    assert rig.call.state == "answered"
    return rig


# -- 1: an answered call -----------------------------------------------------------------


def test_answered_call_passes_sdp_and_hides_each_sides_addressing() -> None:
    """The B INVITE is a fresh dialog (new Call-ID and From tag) addressed as
    the attempt says (R-URI, From, To, its extra headers) with A's SDP
    unchanged and nothing of A's headers (Via, Contact, X-*, its
    P-Asserted-Identity); A hears 180 then a 200 carrying B's SDP unchanged
    and none of B's addressing; A's ACK confirms the call."""
    first = attempt()
    rig = Rig([first])
    rig.call.start()
    [txn] = rig.b.requests
    invite = txn.request
    assert txn.dest == DEST_1
    assert invite.method == "INVITE"
    assert str(invite.uri) == "sip:+4681234567@sip.carrier.test"
    assert invite.from_.uri == first.from_.uri
    assert invite.from_tag and invite.from_tag != "fa"
    assert invite.to.uri == first.to.uri and invite.to_tag is None
    assert invite.call_id != "call-a"
    assert invite.body == SDP_A
    assert invite.headers.get("Content-Type") == "application/sdp"
    assert invite.headers.get_all("P-Asserted-Identity") == [PAI[1]]
    assert invite.headers.get("X-Internal") is None
    assert invite.headers.get("User-Agent") == "telavox-gw-test"
    assert [v.host for v in invite.vias] == ["198.51.100.7"]
    wire = invite.serialize()
    for inside in (b"192.0.2.99", b"call-a", b"z9hG4bK-a1", b"pbx.internal", b"account=42",
                   b"gw.internal"):
        assert inside not in wire.split(b"\r\n\r\n")[0], inside
    assert rig.gw.registered == [LegTable.key(rig.call.a), LegTable.key(rig.call.b)]  # type: ignore[arg-type]

    rig.respond(txn, 180)
    assert rig.a_statuses == [180]
    assert rig.call.state == "ringing"
    rig.respond(txn, 200, SDP_B)
    assert rig.a_statuses == [180, 200]
    ok = rig.a.responses[-1]
    assert ok.body == SDP_B
    assert ok.headers.get("Content-Type") == "application/sdp"
    assert ok.call_id == "call-a" and ok.from_tag == "fa"
    assert b"203.0.113.20:5064" not in ok.serialize()  # B's Contact stays outside
    assert [m.method for m in rig.b.stateless] == ["ACK"]  # B's 200 ACKed at once
    assert rig.gw.results == [(DEST_1, 0, "answered")]
    assert rig.call.state == "answering" and rig.call.answer_time is None
    rig.ack_a()
    assert rig.call.state == "answered" and rig.call.answer_time is not None
    assert rig.gw.ended == []


def test_bye_from_b_hangs_up_a_and_ends_the_call_once() -> None:
    """After the answer a BYE from the carrier is answered 200, a BYE goes
    to A in A's dialog, and the gateway hears of the end once (A's answer to
    that BYE changes nothing)."""
    rig = answered()
    rig.from_b("BYE", 5)
    assert [r.status for r in rig.b.responses] == [200]
    assert rig.b.responses[-1].cseq.method == "BYE"
    [a_bye] = rig.a.sent("BYE")
    assert a_bye.request.call_id == "call-a" and a_bye.request.to_tag == "fa"
    assert rig.gw.ended == [rig.call]
    assert rig.call.state == "ended" and rig.call.end_reason == "callee: remote BYE"
    assert LegTable.key(rig.call.a) in rig.gw.unregistered
    rig.respond(a_bye, 200)
    rig.from_b("BYE", 5)  # a retransmission reaching the ended leg: 481, nothing more
    assert rig.b.responses[-1].status == 481
    assert len(rig.a.sent("BYE")) == 1
    assert rig.gw.ended == [rig.call]


def test_bye_from_a_hangs_up_b() -> None:
    """A BYE from the SIP server is answered and passed on to the carrier."""
    rig = answered()
    rig.from_a("BYE", 11)
    assert rig.a.responses[-1].status == 200
    [b_bye] = rig.b.sent("BYE")
    assert b_bye.request.call_id == rig.invites()[0].request.call_id
    assert b_bye.dest == Destination("udp", "203.0.113.20", 5064)  # B's Contact
    assert rig.gw.ended == [rig.call] and rig.call.end_reason == "caller: remote BYE"


def test_late_offer_answer_from_a_goes_in_b_ack() -> None:
    """An INVITE without SDP: the B INVITE has no body either; B's 200
    carries the offer to A; B's ACK waits for A's ACK and carries its answer."""
    rig = Rig([attempt()], body=b"")
    rig.call.start()
    invite = rig.invites()[0].request
    assert invite.body == b"" and invite.headers.get("Content-Type") is None
    rig.respond(rig.invites()[0], 200, SDP_B)
    assert rig.a_statuses == [200] and rig.a.responses[-1].body == SDP_B
    assert rig.b.stateless == []
    leg = rig.call.a
    rig.call.a.acked(message(
        "ACK sip:10.0.0.1:5080 SIP/2.0\n"
        "Via: SIP/2.0/UDP 192.0.2.99:5060;branch=z9hG4bK-a2\n"
        "Max-Forwards: 70\nFrom: <sip:1001@pbx.internal>;tag=fa\n"
        f"To: <sip:+4631000001@gw.internal>;tag={leg.local_tag}\n"
        "Call-ID: call-a\nCSeq: 10 ACK\nContent-Type: application/sdp\n", SDP_A))
    [ack] = rig.b.stateless
    assert ack.method == "ACK" and ack.call_id == invite.call_id
    assert ack.body == SDP_A and ack.headers.get("Content-Type") == "application/sdp"
    assert rig.call.state == "answered"


def test_late_offer_b_is_acked_even_when_a_never_acks() -> None:
    """Late offer, A never ACKs our 200 (64*T1): A's leg ends; the B side's
    200 must still be ACKed before its BYE."""
    rig = Rig([attempt()], body=b"")
    rig.call.start()
    rig.respond(rig.invites()[0], 200, SDP_B)
    for _ in range(100):  # Clock.advance runs each timer once per call
        rig.clock.advance(0.5)
    assert rig.call.state == "ended" and len(rig.b.sent("BYE")) == 1
    assert [m.method for m in rig.b.stateless] == ["ACK"]


# -- 2: failover -------------------------------------------------------------------------


@pytest.mark.parametrize("status", [503, 500, 408, 302, 401, 407])
def test_failover_statuses_try_the_next_attempt(status: int) -> None:
    """A 408, 5xx, 3xx or a 401/407 the attempt cannot answer (no
    authenticator) sends the next attempt's INVITE to its destination, with a
    Call-ID of its own; A hears nothing final meanwhile."""
    rig = Rig([attempt(DEST_1), attempt(DEST_2, trunk="carrier-b")])
    rig.call.start()
    first = rig.invites()[0]
    extra: tuple[tuple[str, str], ...] = ()
    if status == 302:
        extra = (("Contact", "<sip:elsewhere@192.0.2.77>"),)
    elif status in (401, 407):
        name = "WWW-Authenticate" if status == 401 else "Proxy-Authenticate"
        extra = ((name, CHALLENGE),)
    rig.respond(first, status, extra=extra)
    assert len(rig.invites()) == 2
    second = rig.invites()[1]
    assert second.dest == DEST_2
    assert second.request.call_id not in (first.request.call_id, "call-a")
    assert second.request.body == SDP_A
    assert rig.a_statuses == []
    assert [(d, s) for d, s, _ in rig.gw.results] == [(DEST_1, status)]
    if status in (401, 407):
        assert "credentials" in rig.gw.results[0][2]
    assert len(rig.call.tried) == 1 and rig.call.tried[0][1].startswith(str(status))
    assert rig.gw.ended == []
    # the second attempt answers: A gets its 200
    rig.respond(second, 200, SDP_B)
    assert rig.a_statuses == [200] and rig.a.responses[-1].body == SDP_B


@pytest.mark.parametrize(("event", "status"), [(TimedOut, 408), (TransportFailed, 503)])
def test_transaction_timeout_or_transport_failure_fails_over(event: Any, status: int) -> None:
    """The client transaction timing out (Timer B: the 408 made up locally)
    or failing in the transport (503 made up locally) fails over like those
    answers from the far side."""
    rig = Rig([attempt(DEST_1), attempt(DEST_2)])
    rig.call.start()
    first = rig.invites()[0]
    assert first.on_event is not None
    first.on_event(event(first))
    assert [t.dest for t in rig.invites()] == [DEST_1, DEST_2]
    assert [(d, s) for d, s, _ in rig.gw.results] == [(DEST_1, status)]
    assert rig.a_statuses == []


@pytest.mark.parametrize("status", [486, 404, 603, 600])
def test_4xx_and_6xx_end_the_call_with_that_answer(status: int) -> None:
    """A 4xx (other than 401/407/408) or 6xx is the callee's answer: A gets
    the same status, no further attempt is tried, the call ends once."""
    rig = Rig([attempt(DEST_1), attempt(DEST_2)])
    rig.call.start()
    rig.respond(rig.invites()[0], 180)
    rig.respond(rig.invites()[0], status)
    assert len(rig.invites()) == 1
    assert rig.a_statuses == [180, status]
    assert rig.gw.results == [(DEST_1, status, rig.a.responses[-1].reason)]
    assert rig.gw.ended == [rig.call] and rig.call.state == "ended"
    assert not fails_over(status)


def test_every_attempt_failing_over_gives_503() -> None:
    """When the last attempt fails over too, A gets 503 and the call ends
    with every attempt in ``tried``."""
    rig = Rig([attempt(DEST_1), attempt(DEST_2), attempt(DEST_3)])
    rig.call.start()
    rig.respond(rig.invites()[0], 503)
    rig.respond(rig.invites()[1], 302, extra=(("Contact", "<sip:x@192.0.2.77>"),))
    rig.respond(rig.invites()[2], 500)
    assert [t.dest for t in rig.invites()] == [DEST_1, DEST_2, DEST_3]
    assert rig.a_statuses == [503]
    assert "no trunk answered" in (rig.a.responses[-1].reason or "")
    assert [s for _, s, _ in rig.gw.results] == [503, 302, 500]
    assert len(rig.call.tried) == 3
    assert rig.gw.ended == [rig.call]


def test_no_attempt_at_all_gives_503() -> None:
    """Without any attempt (no route), A gets 503 at once."""
    rig = Rig([])
    rig.call.start()
    assert rig.b.requests == []
    assert rig.a_statuses == [503]
    assert "no route" in (rig.a.responses[-1].reason or "")
    assert rig.gw.ended == [rig.call]


def test_provisionals_of_successive_attempts_reach_a() -> None:
    """An attempt that rang then failed with 503 passed its 180 to A; the
    next attempt's 183 with early media reaches A too (A's leg stays in
    proceeding across attempts)."""
    rig = Rig([attempt(DEST_1), attempt(DEST_2)])
    rig.call.start()
    rig.respond(rig.invites()[0], 180)
    rig.respond(rig.invites()[0], 503)
    rig.respond(rig.invites()[1], 183, SDP_B)
    assert rig.a_statuses == [180, 183]
    assert rig.a.responses[-1].body == SDP_B
    assert rig.call.state == "early"


# -- 3: invite_timeout -------------------------------------------------------------------


def test_no_provisional_in_invite_timeout_tries_the_next_attempt() -> None:
    """No provisional response within the attempt's ``invite_timeout``: the
    next attempt's INVITE goes out then (not before), reported as 408."""
    rig = Rig([attempt(DEST_1, invite_timeout=2), attempt(DEST_2)])
    rig.call.start()
    rig.clock.advance(1.9)
    assert len(rig.invites()) == 1
    rig.clock.advance(0.1)
    assert [t.dest for t in rig.invites()] == [DEST_1, DEST_2]
    assert rig.gw.results == [(DEST_1, 408, "no provisional response in 2 s")]
    assert rig.b.sent("CANCEL") == []  # §9.1: no CANCEL before a provisional response
    assert rig.a_statuses == []


def test_late_provisional_of_a_timed_out_attempt_is_cancelled() -> None:
    """The timed-out attempt ringing later gets a CANCEL (RFC 3261 §9.1:
    sent once a provisional response came) matching its INVITE; A hears
    nothing of it; its 487 changes nothing; the next attempt goes on."""
    rig = Rig([attempt(DEST_1, invite_timeout=2), attempt(DEST_2)])
    rig.call.start()
    rig.clock.advance(2)
    first, second = rig.invites()
    rig.respond(first, 180)
    [cancel] = rig.b.sent("CANCEL")
    assert cancel.dest == DEST_1
    assert cancel.request.call_id == first.request.call_id
    assert cancel.request.cseq.seq == first.request.cseq.seq
    assert cancel.request.top_via.branch == first.request.top_via.branch
    assert rig.a_statuses == []
    rig.respond(first, 487)
    assert rig.a_statuses == [] and rig.gw.ended == []
    assert len(rig.gw.results) == 1
    rig.respond(second, 180)
    rig.respond(second, 200, SDP_B)
    assert rig.a_statuses == [180, 200]


def test_late_answer_of_a_timed_out_attempt_is_acked_and_byed() -> None:
    """The timed-out attempt answering 200 later is ACKed and ended with a
    BYE in its own dialog; A and the call are not affected."""
    rig = Rig([attempt(DEST_1, invite_timeout=2), attempt(DEST_2)])
    rig.call.start()
    rig.clock.advance(2)
    first, second = rig.invites()
    rig.respond(first, 200, SDP_B, to_tag="late")
    [ack] = rig.b.stateless
    assert ack.method == "ACK" and ack.call_id == first.request.call_id
    [bye] = rig.b.sent("BYE")
    assert bye.request.call_id == first.request.call_id and bye.request.to_tag == "late"
    assert rig.a_statuses == []
    assert rig.gw.ended == [] and rig.call.b is not None
    assert rig.call.b.invite is second.request
    assert rig.gw.results == [(DEST_1, 408, "no provisional response in 2 s")]


def test_provisional_in_time_stops_the_invite_timeout() -> None:
    """A 180 within ``invite_timeout`` keeps the attempt: no other INVITE
    when the timeout would have run out."""
    rig = Rig([attempt(DEST_1, invite_timeout=2), attempt(DEST_2)])
    rig.call.start()
    rig.clock.advance(1)
    rig.respond(rig.invites()[0], 180)
    rig.clock.advance(10)
    assert len(rig.invites()) == 1
    assert rig.a_statuses == [180]
    assert rig.clock.getDelayedCalls() == []


def test_final_failure_in_time_stops_the_invite_timeout() -> None:
    """A 503 before ``invite_timeout`` fails over at once; the first
    attempt's timer does not fire on the second attempt later."""
    rig = Rig([attempt(DEST_1, invite_timeout=2), attempt(DEST_2, invite_timeout=5),
               attempt(DEST_3)])
    rig.call.start()
    rig.clock.advance(1)
    rig.respond(rig.invites()[0], 503)
    rig.clock.advance(1.5)  # past the first attempt's 2 s
    assert len(rig.invites()) == 2
    rig.clock.advance(3.5)  # the second attempt's own 5 s
    assert [t.dest for t in rig.invites()] == [DEST_1, DEST_2, DEST_3]


# -- 4: digest authentication ------------------------------------------------------------


def _trunk(**config: Any) -> Trunk:
    return Trunk("gw1", TrunkConfig(name="carrier-a", address="sip:sip.carrier.test",
                                    username="alice", password="s3cret", **config),
                 PlatformConfig())


def test_digest_challenge_is_answered_with_a_retry() -> None:
    """A 401 to the INVITE of an attempt with the trunk's credentials: the
    retry keeps Call-ID and From tag, has CSeq one higher, a new branch and a
    valid Authorization for the challenge; it still carries A's SDP; its
    answer reaches A.  Its 200 is ACKed with the credentials."""
    rig = Rig([attempt(DEST_1, authenticate=_trunk().authenticate), attempt(DEST_2)])
    rig.call.start()
    first = rig.invites()[0]
    rig.respond(first, 401, to_tag="t401", extra=(("WWW-Authenticate", CHALLENGE),))
    assert len(rig.invites()) == 2
    retry = rig.invites()[1]
    assert retry.dest == DEST_1
    old, new = first.request, retry.request
    assert new.call_id == old.call_id and new.from_tag == old.from_tag
    assert new.cseq.seq == old.cseq.seq + 1
    assert new.top_via.branch != old.top_via.branch
    assert new.body == SDP_A and new.to_tag is None
    value = new.headers.get("Authorization")
    assert value is not None
    creds = parse_credentials(value)
    assert (creds.username, creds.realm, creds.nonce, creds.qop) == ("alice", "c", "n1", "auth")
    assert creds.response == digest_response(
        ha1("alice", "c", "s3cret"), algorithm="MD5", method="INVITE", uri=creds.uri,
        nonce="n1", qop="auth", cnonce=creds.cnonce, nc=creds.nc)
    assert rig.gw.results == [] and rig.a_statuses == []
    rig.respond(retry, 180)
    rig.respond(retry, 200, SDP_B)
    assert rig.a_statuses == [180, 200]
    [ack] = rig.b.stateless
    assert ack.cseq.seq == new.cseq.seq and ack.headers.get("Authorization") == value


def test_refused_credentials_fail_over() -> None:
    """A second 401 to the retry (same nonce, not stale: the password is
    wrong) is not answered again: the next attempt is tried."""
    rig = Rig([attempt(DEST_1, authenticate=_trunk().authenticate), attempt(DEST_2)])
    rig.call.start()
    rig.respond(rig.invites()[0], 401, extra=(("WWW-Authenticate", CHALLENGE),))
    rig.respond(rig.invites()[1], 401, extra=(("WWW-Authenticate", CHALLENGE),))
    assert [t.dest for t in rig.invites()] == [DEST_1, DEST_1, DEST_2]
    assert rig.invites()[2].request.headers.get("Authorization") is None
    [(dest, status, reason)] = rig.gw.results
    assert (dest, status) == (DEST_1, 401) and "credentials" in reason
    assert rig.a_statuses == []


def test_proxy_challenge_is_answered_in_proxy_authorization() -> None:
    """A 407 is answered like a 401, in Proxy-Authorization."""
    rig = Rig([attempt(DEST_1, authenticate=_trunk().authenticate)])
    rig.call.start()
    rig.respond(rig.invites()[0], 407, extra=(("Proxy-Authenticate", CHALLENGE),))
    retry = rig.invites()[1].request
    assert retry.headers.get("Proxy-Authorization") is not None
    assert retry.headers.get("Authorization") is None


def test_challenge_of_another_realm_is_not_answered() -> None:
    """With ``realm="other"`` on the trunk, a challenge of realm "c" is not
    answered: the attempt fails over at once.  With ``realm="c"`` it is."""
    rig = Rig([attempt(DEST_1, authenticate=_trunk(realm="other").authenticate),
               attempt(DEST_2)])
    rig.call.start()
    rig.respond(rig.invites()[0], 401, extra=(("WWW-Authenticate", CHALLENGE),))
    assert [t.dest for t in rig.invites()] == [DEST_1, DEST_2]
    assert all(t.request.headers.get("Authorization") is None for t in rig.invites())
    assert [s for _, s, _ in rig.gw.results] == [401]

    rig = Rig([attempt(DEST_1, authenticate=_trunk(realm="c").authenticate), attempt(DEST_2)])
    rig.call.start()
    rig.respond(rig.invites()[0], 401, extra=(("WWW-Authenticate", CHALLENGE),))
    assert [t.dest for t in rig.invites()] == [DEST_1, DEST_1]
    assert rig.invites()[1].request.headers.get("Authorization") is not None


def test_trunk_without_credentials_fails_over_on_a_challenge() -> None:
    """A trunk with no username/password cannot answer: fail over."""
    trunk = Trunk("gw1", TrunkConfig(name="carrier-a", address="sip:sip.carrier.test"),
                  PlatformConfig())
    rig = Rig([attempt(DEST_1, authenticate=trunk.authenticate), attempt(DEST_2)])
    rig.call.start()
    rig.respond(rig.invites()[0], 401, extra=(("WWW-Authenticate", CHALLENGE),))
    assert [t.dest for t in rig.invites()] == [DEST_1, DEST_2]


# -- 5: CANCEL from A --------------------------------------------------------------------


def test_cancel_from_a_while_b_rings() -> None:
    """The caller cancelling while the carrier rings: a CANCEL for the B
    INVITE, 487 to A, the call ends once; the carrier's later 487 (and a
    200 crossing the CANCEL) produce nothing more toward A or the gateway."""
    rig = Rig([attempt(DEST_1), attempt(DEST_2)])
    rig.call.start()
    invite = rig.invites()[0]
    rig.respond(invite, 180)
    rig.call.a.cancelled()
    [cancel] = rig.b.sent("CANCEL")
    assert cancel.dest == DEST_1 and cancel.request.call_id == invite.request.call_id
    assert rig.a_statuses == [180, 487]
    assert rig.gw.ended == [rig.call] and rig.call.end_reason == "caller cancelled"
    assert LegTable.key(rig.call.a) in rig.gw.unregistered
    requests = len(rig.b.requests)
    rig.respond(invite, 487)
    assert rig.a_statuses == [180, 487]
    assert len(rig.b.requests) == requests and len(rig.invites()) == 1
    assert rig.gw.ended == [rig.call] and rig.gw.results == []


def test_cancel_from_a_before_any_provisional_waits_to_cancel() -> None:
    """The caller cancelling before the carrier sent anything: A gets 487 at
    once; the CANCEL waits for the carrier's first provisional response."""
    rig = Rig([attempt(DEST_1)])
    rig.call.start()
    rig.call.a.cancelled()
    assert rig.a_statuses == [487] and rig.b.sent("CANCEL") == []
    rig.respond(rig.invites()[0], 180)
    assert len(rig.b.sent("CANCEL")) == 1
    assert rig.a_statuses == [487] and rig.gw.ended == [rig.call]


# -- 6: in-dialog pass-through -----------------------------------------------------------


def test_reinvite_from_a_is_passed_to_b_and_its_answer_back() -> None:
    """A re-INVITE from the SIP server goes to the carrier in B's dialog
    with the same body; the carrier's 200 is ACKed there and relayed to A
    with its body."""
    rig = answered()
    hold = SDP_A.replace(b"o=a 1 1", b"o=a 1 2") + b"a=sendonly\r\n"
    rig.from_a("INVITE", 11, hold)
    [_, b_txn] = rig.invites()
    reinvite = b_txn.request
    assert reinvite.call_id == rig.invites()[0].request.call_id
    assert reinvite.to_tag == "tb"
    assert reinvite.cseq.seq == rig.invites()[0].request.cseq.seq + 1
    assert reinvite.body == hold
    assert reinvite.headers.get("Content-Type") == "application/sdp"
    assert b_txn.dest == Destination("udp", "203.0.113.20", 5064)
    assert rig.a.responses[-1].status == 200 and rig.a.responses[-1].cseq.method == "INVITE"
    answered_before = len(rig.a.responses)
    held = SDP_B.replace(b"o=b 2 2", b"o=b 2 3") + b"a=recvonly\r\n"
    rig.respond(b_txn, 200, held)
    assert [m.method for m in rig.b.stateless] == ["ACK", "ACK"]
    assert rig.b.stateless[-1].cseq.seq == reinvite.cseq.seq
    assert len(rig.a.responses) == answered_before + 1
    ok = rig.a.responses[-1]
    assert (ok.status, ok.cseq.seq, ok.cseq.method) == (200, 11, "INVITE")
    assert ok.body == held and ok.headers.get("Content-Type") == "application/sdp"
    assert b"203.0.113.20" not in ok.serialize().split(b"\r\n\r\n")[0]  # B's Contact


def test_reinvite_refused_by_b_is_relayed() -> None:
    """The carrier refusing a re-INVITE (488): A hears 488, the call stays."""
    rig = answered()
    rig.from_a("INVITE", 11, SDP_A)
    rig.respond(rig.invites()[1], 488)
    assert rig.a.responses[-1].status == 488
    assert rig.call.state == "answered" and rig.gw.ended == []


def test_info_from_b_is_passed_to_a_and_its_answer_back() -> None:
    """An INFO from the carrier goes to the SIP server in A's dialog with
    its body and Content-Type (but not the carrier's own headers); A's
    answer goes back to the carrier."""
    rig = answered()
    dtmf = b"Signal=5\r\nDuration=160\r\n"
    rig.from_b("INFO", 6, dtmf, "application/dtmf-relay", "X-Carrier: secret\n")
    [info] = rig.a.sent("INFO")
    assert info.request.call_id == "call-a" and info.request.to_tag == "fa"
    assert info.request.body == dtmf
    assert info.request.headers.get("Content-Type") == "application/dtmf-relay"
    assert info.request.headers.get("X-Carrier") is None
    assert info.dest == Destination("udp", "192.0.2.99", 5060)  # A's Contact
    responses = len(rig.b.responses)
    make = make_response(info.request, 200, "OK")
    assert info.on_event is not None
    info.on_event(ResponseIn(info, parse_message(make.serialize()), A_SOURCE))  # type: ignore[arg-type]
    assert len(rig.b.responses) == responses + 1
    answer = rig.b.responses[-1]
    assert (answer.status, answer.cseq.seq, answer.cseq.method) == (200, 6, "INFO")


def test_relayed_reinvite_2xx_is_retransmitted_until_acked() -> None:
    """The 200 relayed to A's re-INVITE is retransmitted after T1 while
    A has not ACKed it."""
    rig = answered()
    rig.from_a("INVITE", 11, SDP_A.replace(b"o=a 1 1", b"o=a 1 2"))
    rig.respond(rig.invites()[1], 200, SDP_B)
    rig.clock.advance(0.5)
    again = [m for m in rig.a.stateless
             if isinstance(m, Response) and m.status == 200 and m.cseq.seq == 11]
    assert again


def test_offerless_reinvite_answer_goes_in_b_ack() -> None:
    """A re-INVITE from A without SDP: B offers in its 200, relayed to A;
    A's answer in its ACK must reach B in B's ACK."""
    rig = answered()
    rig.from_a("INVITE", 11)
    b_txn = rig.invites()[1]
    assert b_txn.request.body == b""
    rig.respond(b_txn, 200, SDP_B)
    assert rig.a.responses[-1].body == SDP_B
    leg = rig.call.a
    answer = SDP_A.replace(b"o=a 1 1", b"o=a 1 2")
    leg.acked(message(
        "ACK sip:10.0.0.1:5080 SIP/2.0\n"
        "Via: SIP/2.0/UDP 192.0.2.99:5060;branch=z9hG4bK-a12\n"
        "Max-Forwards: 70\nFrom: <sip:1001@pbx.internal>;tag=fa\n"
        f"To: <sip:+4631000001@gw.internal>;tag={leg.local_tag}\n"
        "Call-ID: call-a\nCSeq: 11 ACK\nContent-Type: application/sdp\n", answer))
    acks = [m for m in rig.b.stateless if m.cseq.seq == b_txn.request.cseq.seq]
    assert [a.body for a in acks] == [answer]


def test_info_package_header_is_passed() -> None:
    """An INFO of an RFC 6086 Info Package keeps its Info-Package header."""
    rig = answered()
    rig.from_b("INFO", 6, b"Signal=5\r\n", "application/dtmf-relay", "Info-Package: dtmf\n")
    [info] = rig.a.sent("INFO")
    assert info.request.headers.get("Info-Package") == "dtmf"


def test_options_in_dialog_is_answered_locally() -> None:
    """OPTIONS inside the dialog is answered 200 with Allow by the gateway,
    on either side, and not passed across."""
    rig = answered()
    b_requests, a_requests = len(rig.b.requests), len(rig.a.requests)
    rig.from_a("OPTIONS", 12)
    ok = rig.a.responses[-1]
    assert (ok.status, ok.cseq.method) == (200, "OPTIONS")
    assert "INVITE" in (ok.headers.get("Allow") or "")
    rig.from_b("OPTIONS", 7)
    assert (rig.b.responses[-1].status, rig.b.responses[-1].cseq.method) == (200, "OPTIONS")
    assert (len(rig.b.requests), len(rig.a.requests)) == (b_requests, a_requests)


# -- 7: shutdown -------------------------------------------------------------------------


def test_hangup_of_a_ringing_call() -> None:
    """``hangup("shutdown")`` while the carrier rings: A gets 503, the B
    INVITE is cancelled, the call ends once."""
    rig = Rig([attempt(DEST_1), attempt(DEST_2)])
    rig.call.start()
    rig.respond(rig.invites()[0], 180)
    rig.call.hangup("shutdown")
    assert rig.a_statuses == [180, 503]
    [cancel] = rig.b.sent("CANCEL")
    assert cancel.request.call_id == rig.invites()[0].request.call_id
    assert rig.gw.ended == [rig.call] and rig.call.end_reason == "shutdown"
    rig.respond(rig.invites()[0], 487)
    assert rig.a_statuses == [180, 503] and len(rig.invites()) == 1
    assert rig.gw.ended == [rig.call]


def test_hangup_before_any_provisional_cancels_after_one() -> None:
    """``hangup`` before the carrier sent anything: 503 to A at once, the
    CANCEL once the carrier's first provisional response arrives, and no
    timer left to try another attempt."""
    rig = Rig([attempt(DEST_1, invite_timeout=2), attempt(DEST_2)])
    rig.call.start()
    rig.call.hangup("shutdown")
    assert rig.a_statuses == [503] and rig.b.sent("CANCEL") == []
    rig.clock.advance(5)
    assert len(rig.invites()) == 1
    rig.respond(rig.invites()[0], 100)
    assert len(rig.b.sent("CANCEL")) == 1
    assert rig.gw.ended == [rig.call]


def test_hangup_of_an_answered_call_byes_both_sides() -> None:
    """``hangup`` after the answer sends BYE on both legs."""
    rig = answered()
    rig.call.hangup("shutdown")
    assert len(rig.a.sent("BYE")) == 1 and len(rig.b.sent("BYE")) == 1
    assert rig.gw.ended == [rig.call]


# -- trunk channels ---------------------------------------------------------------------


def test_a_full_trunk_is_skipped_and_the_call_holds_one_channel_of_its_trunk() -> None:
    """carrier-a has no free channel: both its addresses are skipped and the
    INVITE goes to carrier-b, whose channel the call holds; a failover
    moves the channel to the next trunk; the end gives it back."""
    rig = Rig([attempt(DEST_1, trunk="carrier-a"), attempt(DEST_2, trunk="carrier-a"),
               attempt(DEST_3, trunk="carrier-b"), attempt(DEST_1, trunk="carrier-c")])
    rig.gw.limits["carrier-a"] = 0
    rig.call.start()
    assert [t.dest for t in rig.invites()] == [DEST_3]
    assert rig.gw.active == {"carrier-b": 1}
    rig.respond(rig.invites()[0], 503)
    assert [t.dest for t in rig.invites()] == [DEST_3, DEST_1]
    assert rig.gw.active == {"carrier-b": 0, "carrier-c": 1}
    rig.respond(rig.invites()[1], 200, SDP_B)
    rig.ack_a()
    rig.from_b("BYE", 5)
    assert rig.gw.ended == [rig.call]
    assert rig.gw.active == {"carrier-b": 0, "carrier-c": 0}


def test_every_trunk_full_gives_503_without_an_invite() -> None:
    """With no free channel anywhere nothing is sent and the caller hears
    503 saying why; nothing is held afterwards."""
    rig = Rig([attempt(DEST_1, trunk="carrier-a"), attempt(DEST_2, trunk="carrier-b")])
    rig.gw.limits.update({"carrier-a": 0, "carrier-b": 0})
    rig.call.start()
    assert rig.invites() == []
    assert rig.a_statuses == [503]
    assert "call limit" in rig.a.responses[-1].reason
    assert sum(rig.gw.active.values()) == 0


def test_trunk_channels_are_counted_up_to_max_calls() -> None:
    """Trunk.claim takes a channel while fewer than max_calls are taken
    (0: no limit), counting refusals; release gives one back."""
    platform = PlatformConfig()
    trunk = Trunk("gw1", TrunkConfig(name="t", address="sip:192.0.2.1", max_calls=2), platform)
    assert trunk.claim() and trunk.claim() and not trunk.claim()
    assert trunk.active == 2 and trunk.counters["full"] == 1
    trunk.release()
    assert trunk.claim() and trunk.active == 2
    free = Trunk("gw1", TrunkConfig(name="u", address="sip:192.0.2.1"), platform)
    assert all(free.claim() for _ in range(1000)) and free.active == 1000
