"""Unit tests of :mod:`telavox.tproxy.script`: a call to a script as the
scriptserver sees it, with fake legs, an in-memory mediaserver and a fake
clock."""

from __future__ import annotations

import collections
from typing import Any

import pytest
from helpers.fakelegs import FakeTxn, message
from twisted.internet import defer
from twisted.internet.task import Clock

from telavox.b2bua.leg import IncomingLeg
from telavox.config.model import PlatformConfig, UserConfig
from telavox.interfaces import ChannelHungUp
from telavox.records import MediaEvent
from telavox.tproxy.dialplan import DialPlan
from telavox.tproxy.script import ScriptChannel

from .test_call import DOMAIN, SDP_B, SOURCE, FakeLegs, FakeMedia, Host, b_respond, invite_a


class Scripts:
    """An IScriptServer that hands the channel to the test."""

    def __init__(self) -> None:
        self.runs: list[tuple[str, Any, tuple[str, ...]]] = []
        self.done: defer.Deferred[None] = defer.Deferred()

    def run(self, script: str, channel: Any, args: tuple[str, ...] = ()) -> Any:
        self.runs.append((script, channel, args))
        return self.done


def setup() -> tuple[Host, ScriptChannel, Scripts, Clock]:
    clock = Clock()
    users = [UserConfig(extension="1001", password="x", name="Alice"),
             UserConfig(extension="1002", password="x"),
             UserConfig(extension="1003", password="x")]
    plan = DialPlan(PlatformConfig(domain=DOMAIN), users, ())
    host = Host(FakeLegs(clock), FakeMedia(), plan)
    request = invite_a()
    leg = IncomingLeg(host.legs, None, request, FakeTxn(request, SOURCE),  # type: ignore[arg-type]
                      host.contact())
    scripts = Scripts()
    channel = ScriptChannel(host, leg, plan.user("1001"), request.from_, "*43", "echo",
                            ("a",), scripts)
    channel.start()
    return host, channel, scripts, clock


def ack(channel: ScriptChannel) -> None:
    channel.a.acked(message(
        f"ACK sip:127.0.0.1:5070 SIP/2.0\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-a2\n"
        f"Max-Forwards: 70\nFrom: <sip:1001@{DOMAIN}>;tag=fa\n"
        f"To: <sip:1002@{DOMAIN}>;tag={channel.a.local_tag}\nCall-ID: call-a\n"
        "CSeq: 10 ACK\n"))


def results(d: defer.Deferred[Any]) -> list[Any]:
    out: list[Any] = []
    d.addBoth(out.append)
    return out


def test_script_runs_with_the_callers_identity_and_answers() -> None:
    """The script gets the channel (Asterisk's identity fields) after a 180;
    ANSWER sends 200 with our answer and fires on the ACK."""
    host, channel, scripts, _ = setup()
    [(script, ran, args)] = scripts.runs
    assert (script, ran, args) == ("echo", channel, ("a",))
    assert (channel.caller_id, channel.caller_name, channel.extension) == (
        "1001", "Alice", "*43")
    assert channel.name.startswith("SIP/1001-") and channel.state() == 4
    assert [r.status for r in host.legs.responses] == [180]
    answered = results(channel.answer())
    assert host.legs.responses[-1].status == 200 and answered == []
    ack(channel)
    assert answered == [None] and channel.state() == 6


def test_play_stops_on_an_escape_digit_and_ignores_others() -> None:
    """A play ends with an escape digit (the playback is stopped); other
    digits during it are dropped, as Asterisk does; play_done ends it with ""."""
    host, channel, _, _ = setup()
    channel.answer()
    ack(channel)
    first = results(channel.play(["/sounds/hello.wav"], "12"))
    [(eid, source)] = host.media.played
    assert source.path == "/sounds/hello.wav"
    channel.digit("5")
    assert first == []
    channel.digit("1")
    assert first == ["1"] and host.media.stopped == [eid]
    second = results(channel.play(["/sounds/a.wav", "/sounds/b.wav"], "#"))
    channel.media_event(MediaEvent(endpoint_id=eid, owner="call-a", kind="play_done",
                                   detail="finished"))
    assert [s.path for _, s in host.media.played[1:]] == ["/sounds/a.wav", "/sounds/b.wav"]
    channel.media_event(MediaEvent(endpoint_id=eid, owner="call-a", kind="play_done",
                                   detail="finished"))
    assert second == [""]


def test_digits_from_rtp_and_info_queue_in_order() -> None:
    """Digits that arrive while nothing waits are kept in order: an RFC 4733
    event, then a SIP INFO (dtmf-relay); WAIT FOR DIGIT times out with ""."""
    host, channel, _, clock = setup()
    channel.answer()
    ack(channel)
    channel.media_event(MediaEvent(endpoint_id="e", owner="call-a", kind="dtmf", digit="4",
                                   source="rfc4733"))
    info = message(
        f"INFO sip:127.0.0.1:5070 SIP/2.0\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-i1\n"
        f"Max-Forwards: 70\nFrom: <sip:1001@{DOMAIN}>;tag=fa\n"
        f"To: <sip:1002@{DOMAIN}>;tag={channel.a.local_tag}\nCall-ID: call-a\n"
        "CSeq: 11 INFO\nContent-Type: application/dtmf-relay\n",
        b"Signal=#\r\nDuration=160\r\n")
    channel.a.receive(info, FakeTxn(info, SOURCE))  # type: ignore[arg-type]
    assert host.legs.responses[-1].status == 200
    assert results(channel.wait_digit(5)) == ["4"]
    assert results(channel.wait_digit(5)) == ["#"]
    waiting = results(channel.wait_digit(2))
    clock.advance(2)
    assert waiting == [""]


def test_info_without_a_digit_is_refused() -> None:
    """An INFO whose body carries no digit (another type, or junk) gets 415
    with what we accept, and no digit is queued."""
    host, channel, _, _ = setup()
    channel.answer()
    ack(channel)
    for seq, (content_type, body) in enumerate((
            ("text/plain", b"5"), ("application/dtmf-relay", b"junk"),
            ("application/dtmf", b"55")), start=20):
        info = message(
            f"INFO sip:127.0.0.1:5070 SIP/2.0\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-x\n"
            f"Max-Forwards: 70\nFrom: <sip:1001@{DOMAIN}>;tag=fa\n"
            f"To: <sip:1002@{DOMAIN}>;tag={channel.a.local_tag}\nCall-ID: call-a\n"
            f"CSeq: {seq} INFO\nContent-Type: {content_type}\n", body)
        channel.a.receive(info, FakeTxn(info, SOURCE))  # type: ignore[arg-type]
        refused = host.legs.responses[-1]
        assert refused.status == 415 and "dtmf" in (refused.headers.get("Accept") or "")
    assert channel._digits == collections.deque()


def test_record_is_mono_and_ends_on_a_digit_or_the_timeout() -> None:
    """RECORD records what the caller says (received only) until an escape
    digit or the timeout."""
    host, channel, _, clock = setup()
    channel.answer()
    ack(channel)
    done = results(channel.record("/tmp/msg.wav", "#", timeout=10))
    [(eid, path, received_only)] = host.media.recorded
    assert (path, received_only) == ("/tmp/msg.wav", True)
    channel.digit("#")
    assert done == ["#"] and host.media.stopped == [f"{eid}-rec"]
    done = results(channel.record("/tmp/msg2.wav", "#", timeout=3))
    clock.advance(3)
    assert done == [""]


def test_caller_hangup_fails_what_waits_and_writes_a_cdr() -> None:
    """The caller's BYE fires hung_up, fails a pending wait with
    ChannelHungUp, releases the endpoint and writes an answered CDR."""
    host, channel, _, _ = setup()
    channel.answer()
    ack(channel)
    waiting = results(channel.wait_digit(-1))
    bye = message(
        f"BYE sip:127.0.0.1:5070 SIP/2.0\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-b1\n"
        f"Max-Forwards: 70\nFrom: <sip:1001@{DOMAIN}>;tag=fa\n"
        f"To: <sip:1002@{DOMAIN}>;tag={channel.a.local_tag}\nCall-ID: call-a\n"
        "CSeq: 12 BYE\n")
    channel.a.receive(bye, FakeTxn(bye, SOURCE))  # type: ignore[arg-type]
    assert channel.hung_up.called and channel.state() == 0
    assert len(waiting) == 1 and waiting[0].check(ChannelHungUp)
    assert host.media.endpoints == {}
    [cdr] = host.cdrs
    assert (cdr.caller, cdr.callee, cdr.disposition) == ("1001", "*43", "answered")
    failed = results(channel.play(["/x.wav"]))
    assert failed[0].check(ChannelHungUp)


def test_script_end_hangs_up_and_an_unanswered_channel_is_refused() -> None:
    """When the script finishes, a channel still up gets BYE; one never
    answered gets 480."""
    host, channel, scripts, _ = setup()
    channel.answer()
    ack(channel)
    scripts.done.callback(None)
    assert host.legs.requests[-1].request.method == "BYE"
    host, channel, scripts, _ = setup()
    scripts.done.callback(None)
    assert host.legs.responses[-1].status == 480
    assert host.cdrs[0].disposition == "failed"


def test_an_unparsable_offer_is_refused_before_any_script() -> None:
    """An offer that is not SDP is 400; no script runs."""
    clock = Clock()
    plan = DialPlan(PlatformConfig(domain=DOMAIN), [], ())
    host = Host(FakeLegs(clock), FakeMedia(), plan)
    request = invite_a(b"v=0\r\n")
    leg = IncomingLeg(host.legs, None, request, FakeTxn(request, SOURCE),  # type: ignore[arg-type]
                      host.contact())
    scripts = Scripts()
    ScriptChannel(host, leg, None, request.from_, "*43", "echo", (), scripts).start()
    assert scripts.runs == []
    assert host.legs.responses[-1].status == 400


def _late(ack_body: bytes) -> tuple[Host, ScriptChannel, list[list[Any]]]:
    """A late-offer call to a script whose ANSWER is asked twice before the
    caller's ACK (``ack_body``); what each ANSWER gave."""
    clock = Clock()
    plan = DialPlan(PlatformConfig(domain=DOMAIN), [], ())
    host = Host(FakeLegs(clock), FakeMedia(), plan)
    request = invite_a(b"")
    leg = IncomingLeg(host.legs, None, request, FakeTxn(request, SOURCE),  # type: ignore[arg-type]
                      host.contact())
    scripts = Scripts()
    channel = ScriptChannel(host, leg, None, request.from_, "*43", "echo", (), scripts)
    channel.start()
    assert scripts.runs and channel.late_offer
    answered = [results(channel.answer()), results(channel.answer())]
    assert [r.status for r in host.legs.responses].count(200) == 1
    ok = host.legs.responses[-1]
    assert ok.status == 200 and b"m=audio" in ok.body  # our offer
    channel.a.acked(message(
        f"ACK sip:127.0.0.1:5070 SIP/2.0\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-a2\n"
        f"Max-Forwards: 70\nFrom: <sip:1001@{DOMAIN}>;tag=fa\n"
        f"To: <sip:1002@{DOMAIN}>;tag={channel.a.local_tag}\nCall-ID: call-a\n"
        "CSeq: 10 ACK\n" + ("Content-Type: application/sdp\n" if ack_body else ""), ack_body))
    return host, channel, answered


def test_a_late_offer_is_made_in_the_200_and_answered_in_the_ack() -> None:
    """An INVITE without SDP (RFC 3261 §13.2.1): the script runs, ANSWER
    sends our offer in the 200, and the caller's answer in the ACK sets the
    far end of the channel's endpoint."""
    host, channel, answered = _late(SDP_B)
    assert answered == [[None], [None]] and channel.state() == 6
    endpoint = channel.endpoint
    assert endpoint is not None
    assert host.media.remote[endpoint.endpoint_id][0].port == 5000
    assert channel.codec == "PCMA"


def test_a_late_offer_answered_with_nothing_hangs_up() -> None:
    """No SDP in the ACK: the call is hung up and the script's ANSWER fails."""
    host, channel, answered = _late(b"")
    assert host.legs.requests[-1].request.method == "BYE"
    assert channel.state() == 0 and host.media.endpoints == {}
    for [failure] in answered:  # every ANSWER waiting fails
        assert failure.check(ChannelHungUp)


def test_dial_bridges_the_callee_and_reports_answer() -> None:
    """Dial(1002): the INVITE goes out from the caller with our other
    endpoint; a 180 plays ringback; the 200 answers the caller and bridges
    the endpoints; the callee's BYE ends the dial with ANSWER."""
    host, channel, _, _ = setup()
    status = results(channel.dial("1002", 20))
    [txn] = host.legs.requests
    assert txn.request.method == "INVITE" and str(txn.request.uri) == f"sip:1002@{DOMAIN}"
    assert txn.request.from_.uri.user == "1001"
    b_respond(host, 180)
    assert host.media.played[-1][1].tone == "ring"
    b_respond(host, 200, SDP_B)
    assert host.legs.responses[-1].status == 200  # the caller is answered
    a_eid = channel.endpoint.endpoint_id  # type: ignore[union-attr]
    assert len(host.media.connected) == 1 and host.media.connected[0][0] == a_eid
    ack(channel)
    assert status == []
    invite = txn.request
    bye = message(
        f"BYE sip:127.0.0.1:5070 SIP/2.0\nVia: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-d9\n"
        f"Max-Forwards: 70\nFrom: <sip:1002@{DOMAIN}>;tag=tb\n"
        f"To: <sip:1001@{DOMAIN}>;tag={invite.from_tag}\nCall-ID: {invite.call_id}\n"
        "CSeq: 5 BYE\n")
    dial_leg = host.index[(invite.call_id, invite.from_tag)]
    dial_leg.receive(bye, FakeTxn(bye, SOURCE))
    assert status == ["ANSWER"]
    assert len(host.media.endpoints) == 1  # the callee's endpoint is released
    assert channel.state() == 6


@pytest.mark.parametrize(("status", "expected"), [(486, "BUSY"), (480, "NOANSWER"),
                                                  (404, "CHANUNAVAIL"), (503, "CONGESTION")])
def test_dial_failures_give_dialstatus(status: int, expected: str) -> None:
    """The callee's refusal becomes Asterisk's DIALSTATUS; the channel stays."""
    host, channel, _, _ = setup()
    result = results(channel.dial("1002", 20))
    b_respond(host, status)
    assert result == [expected] and channel.state() == 4
    assert len(host.media.endpoints) == 1


def test_dial_timeout_and_unknown_number() -> None:
    """No answer in the timeout cancels the leg: NOANSWER; an unknown number
    is CHANUNAVAIL without any INVITE."""
    host, channel, _, clock = setup()
    result = results(channel.dial("1002", 5))
    b_respond(host, 180)
    clock.advance(5)
    assert result == ["NOANSWER"]
    assert host.legs.requests[-1].request.method == "CANCEL"
    requests = len(host.legs.requests)
    assert results(channel.dial("5555", 5)) == ["CHANUNAVAIL"]
    assert len(host.legs.requests) == requests


def test_dial_several_rings_all_and_the_first_answer_wins() -> None:
    """Dial(1002&1003): both ring; 1003 answers and is bridged, 1002 is
    cancelled; when nobody answers, all busy is BUSY."""
    host, channel, _, _ = setup()
    status = results(channel.dial("1002&1003", 20))
    first, second = host.legs.requests
    assert [str(t.request.uri) for t in (first, second)] == [
        f"sip:1002@{DOMAIN}", f"sip:1003@{DOMAIN}"]
    b_respond(host, 180, index=0)
    b_respond(host, 180, index=1, to_tag="tc")
    b_respond(host, 200, SDP_B, index=1, to_tag="tc")
    cancels = [t for t in host.legs.requests if t.request.method == "CANCEL"]
    assert [c.request.call_id for c in cancels] == [first.request.call_id]
    assert host.legs.responses[-1].status == 200 and status == []
    assert len(host.media.connected) == 1

    host, channel, _, _ = setup()
    status = results(channel.dial("1002&1003", 20))
    b_respond(host, 486, index=0)
    b_respond(host, 486, index=1, to_tag="tc")
    assert status == ["BUSY"]
