"""The transaction state machines of RFC 3261 §17 (with RFC 6026), walked
with explicit time: every timer, retransmission and matching rule."""

from __future__ import annotations

import pytest
from helpers.sipmsg import request, response_to

from telavox.sip.errors import LocalSipError
from telavox.sip.hdrtypes import Via
from telavox.sip.message import Response, make_response
from telavox.sip.timers import TimerConfig
from telavox.sip.transaction import (
    AckIn,
    Destination,
    RequestIn,
    ResponseIn,
    Send,
    Source,
    StrayResponse,
    Terminated,
    TimedOut,
    TransactionLayer,
    TransportFailed,
)
from telavox.sip.transaction.base import Input, State

UDP = Destination("udp", "192.0.2.2", 5060)
TCP = Destination("tcp", "192.0.2.2", 5060)
FROM_UDP = Source("udp", "192.0.2.1", 5062)
FROM_TCP = Source("tcp", "192.0.2.1", 40000, flow="c1")


def sends(actions: list) -> list[Send]:
    return [a for a in actions if isinstance(a, Send)]


def kinds(actions: list) -> list[type]:
    return [type(a) for a in actions]


def run_until(layer: TransactionLayer, until: float) -> list[tuple[float, list]]:
    """Fire the layer at each deadline up to ``until``; returns (time,
    actions) of each run that did something (next_deadline may point at a
    timer cancelled since, whose run finds nothing due)."""
    out = []
    while True:
        at = layer.next_deadline()
        if at is None or at > until:
            return out
        actions = layer.fire(at)
        if actions:
            out.append((at, actions))


def new_layer(**kw: float) -> TransactionLayer:
    return TransactionLayer(TimerConfig(trying_delay=None, **kw))


# --- client INVITE -----------------------------------------------------------


def test_client_invite_retransmits_doubling_timer_a_until_timer_b() -> None:
    """Over UDP, Timer A doubles from T1 without cap and Timer B ends the
    transaction after 64*T1 with a timeout for the TU."""
    layer = new_layer()
    txn, actions = layer.send_request(request(), UDP, now=0.0)
    assert kinds(actions) == [Send]
    fired = run_until(layer, 40.0)
    resend_times = [at for at, acts in fired if sends(acts)]
    assert resend_times == [0.5, 1.5, 3.5, 7.5, 15.5, 31.5]
    last_at, last = fired[-1]
    assert last_at == 32.0
    assert kinds(last) == [TimedOut, Terminated]
    assert last[1].outcome == "timeout"
    assert txn.state is State.TERMINATED
    assert layer.client_count == 0
    assert layer.counters["timeouts"] == 1


def test_client_invite_over_tcp_has_no_timer_a() -> None:
    """On a reliable transport the INVITE is sent once; Timer B still runs."""
    layer = new_layer()
    layer.send_request(request(transport="TCP"), TCP, now=0.0)
    fired = run_until(layer, 40.0)
    assert [at for at, _ in fired] == [32.0]


def test_client_invite_provisional_stops_retransmission_and_timeout() -> None:
    """A 1xx moves Calling to Proceeding: no more retransmissions, no Timer B."""
    layer = new_layer()
    req = request()
    txn, _ = layer.send_request(req, UDP, now=0.0)
    actions = layer.receive(response_to(req, 180), FROM_UDP, now=0.2)
    assert kinds(actions) == [ResponseIn]
    assert txn.state is State.PROCEEDING
    assert run_until(layer, 100.0) == []


def test_client_invite_failure_is_acked_and_absorbed() -> None:
    """A 486 is ACKed by the transaction and given to the TU once; its
    retransmission is ACKed again and absorbed; Timer D (32 s) ends it."""
    layer = new_layer()
    req = request()
    txn, _ = layer.send_request(req, UDP, now=0.0)
    busy = response_to(req, 486)
    actions = layer.receive(busy, FROM_UDP, now=0.1)
    assert kinds(actions) == [Send, ResponseIn]
    ack = actions[0].message
    assert ack.method == "ACK"
    assert ack.cseq.seq == req.cseq.seq and ack.cseq.method == "ACK"
    assert ack.to_tag == "8321234356"
    assert ack.top_via.branch == req.top_via.branch
    assert ack.uri_text == req.uri_text
    again = layer.receive(response_to(req, 486), FROM_UDP, now=1.0)
    assert kinds(again) == [Send] and again[0].message is ack
    fired = run_until(layer, 100.0)
    assert [at for at, _ in fired] == [32.1]
    assert kinds(fired[0][1]) == [Terminated]
    assert fired[0][1][0].outcome == "486"
    assert txn.terminated


def test_client_invite_failure_over_tcp_ends_at_once() -> None:
    """Timer D is zero on reliable transports."""
    layer = new_layer()
    req = request(transport="TCP")
    layer.send_request(req, TCP, now=0.0)
    layer.receive(response_to(req, 603), FROM_TCP, now=1.0)
    fired = run_until(layer, 100.0)
    assert [at for at, _ in fired] == [1.0]
    assert layer.client_count == 0


def test_client_invite_2xx_retransmissions_reach_tu_until_timer_m() -> None:
    """RFC 6026: after a 2xx the transaction is Accepted, passes every 2xx
    (from any fork) to the TU and ends after 64*T1 (Timer M)."""
    layer = new_layer()
    req = request()
    txn, _ = layer.send_request(req, UDP, now=0.0)
    first = layer.receive(response_to(req, 200), FROM_UDP, now=0.1)
    assert kinds(first) == [ResponseIn]
    assert txn.state is State.ACCEPTED
    again = layer.receive(response_to(req, 200, to_tag="fork2"), FROM_UDP, now=0.6)
    assert kinds(again) == [ResponseIn]
    assert again[0].response.to_tag == "fork2"
    fired = run_until(layer, 100.0)
    assert [at for at, _ in fired] == [32.1]
    assert fired[0][1][0].outcome == "200"


def test_client_transport_error_is_reported() -> None:
    """A transport failure ends the transaction and tells the TU (§17.1.4)."""
    layer = new_layer()
    txn, _ = layer.send_request(request(), UDP, now=0.0)
    actions = layer.transport_failed(txn, now=0.1)
    assert kinds(actions) == [TransportFailed, Terminated]
    assert actions[1].outcome == "transport-error"
    assert layer.transport_failed(txn, now=0.2) == []
    assert layer.client_count == 0


# --- client non-INVITE ---------------------------------------------------------


def test_client_non_invite_timer_e_caps_at_t2() -> None:
    """Timer E doubles from T1 up to T2 (4 s) and Timer F times out at 64*T1."""
    layer = new_layer()
    layer.send_request(request("OPTIONS"), UDP, now=0.0)
    fired = run_until(layer, 40.0)
    resend_times = [at for at, acts in fired if sends(acts)]
    assert resend_times == [0.5, 1.5, 3.5, 7.5, 11.5, 15.5, 19.5, 23.5, 27.5, 31.5]
    assert kinds(fired[-1][1]) == [TimedOut, Terminated]
    assert fired[-1][0] == 32.0


def test_client_non_invite_provisional_sets_timer_e_to_t2() -> None:
    """In Proceeding the request is retransmitted every T2."""
    layer = new_layer()
    req = request("BYE")
    layer.send_request(req, UDP, now=0.0)
    layer.receive(response_to(req, 100), FROM_UDP, now=0.1)
    fired = run_until(layer, 12.0)
    assert [at for at, acts in fired if sends(acts)] == [0.5, 4.5, 8.5]


def test_client_non_invite_final_then_timer_k() -> None:
    """A final response goes to the TU once; retransmissions are absorbed
    during Timer K (T4 on UDP)."""
    layer = new_layer()
    req = request("REGISTER", uri="sip:registrar.example.com")
    layer.send_request(req, UDP, now=0.0)
    assert kinds(layer.receive(response_to(req, 200), FROM_UDP, now=0.1)) == [ResponseIn]
    assert layer.receive(response_to(req, 200), FROM_UDP, now=0.2) == []
    fired = run_until(layer, 40.0)
    assert [at for at, _ in fired] == [5.1]
    assert fired[0][1][0].outcome == "200"


def test_client_non_invite_over_tcp_ends_at_final() -> None:
    """Timer K is zero on reliable transports, and E never runs."""
    layer = new_layer()
    req = request("OPTIONS", transport="TCP")
    layer.send_request(req, TCP, now=0.0)
    layer.receive(response_to(req, 200), FROM_TCP, now=0.3)
    assert [at for at, _ in run_until(layer, 40.0)] == [0.3]


def test_response_matching_needs_branch_and_method() -> None:
    """§17.1.3: a response matches by top-Via branch and CSeq method; others
    are stray."""
    layer = new_layer()
    req = request("INVITE")
    layer.send_request(req, UDP, now=0.0)
    other_branch = response_to(request("INVITE", branch="z9hG4bKother"), 200)
    assert kinds(layer.receive(other_branch, FROM_UDP, now=0.1)) == [StrayResponse]
    wrong_method = response_to(request("CANCEL"), 200)
    assert kinds(layer.receive(wrong_method, FROM_UDP, now=0.1)) == [StrayResponse]
    assert layer.counters["stray_responses"] == 2


def test_cancel_has_its_own_client_transaction() -> None:
    """A CANCEL shares the INVITE's branch but is a separate transaction, and
    responses go to the right one by CSeq method."""
    from telavox.sip.message import make_cancel

    layer = new_layer()
    invite = request("INVITE")
    inv_txn, _ = layer.send_request(invite, UDP, now=0.0)
    layer.receive(response_to(invite, 180), FROM_UDP, now=0.1)
    cancel = make_cancel(invite)
    assert cancel.top_via.branch == invite.top_via.branch
    can_txn, _ = layer.send_request(cancel, UDP, now=0.2)
    ok = layer.receive(response_to(cancel, 200), FROM_UDP, now=0.3)
    assert ok[0].txn is can_txn
    terminated = layer.receive(response_to(invite, 487), FROM_UDP, now=0.4)
    assert terminated[1].txn is inv_txn
    assert terminated[0].message.method == "ACK"


def test_send_request_refuses_misuse() -> None:
    """ACK has no transaction; a branch without the magic cookie or reused
    is refused."""
    layer = new_layer()
    with pytest.raises(LocalSipError):
        layer.send_request(request("ACK"), UDP, now=0.0)
    with pytest.raises(LocalSipError):
        layer.send_request(request(branch="1234"), UDP, now=0.0)
    layer.send_request(request(), UDP, now=0.0)
    with pytest.raises(LocalSipError):
        layer.send_request(request(), UDP, now=0.0)


# --- server INVITE -----------------------------------------------------------------


def test_server_invite_goes_to_tu_and_sends_trying_after_200ms() -> None:
    """§17.2.1: a new INVITE reaches the TU; if the TU has not answered in
    200 ms the transaction sends 100 Trying itself."""
    layer = TransactionLayer(TimerConfig())
    actions = layer.receive(request(), FROM_UDP, now=0.0)
    assert kinds(actions) == [RequestIn]
    fired = run_until(layer, 1.0)
    assert [at for at, _ in fired] == [0.2]
    trying = fired[0][1][0].message
    assert isinstance(trying, Response) and trying.status == 100


def test_server_invite_no_auto_trying_once_tu_answered() -> None:
    """The automatic 100 is not sent when the TU answered first."""
    layer = TransactionLayer(TimerConfig())
    req_in = layer.receive(request(), FROM_UDP, now=0.0)[0]
    layer.respond(req_in.txn, make_response(req_in.request, 180, to_tag="t"), now=0.1)
    assert run_until(layer, 1.0) == []


def test_server_invite_retransmission_gets_last_response() -> None:
    """A retransmitted INVITE is not given to the TU again; the last
    provisional response is resent."""
    layer = new_layer()
    req_in = layer.receive(request(), FROM_UDP, now=0.0)[0]
    assert layer.receive(request(), FROM_UDP, now=0.5) == []
    layer.respond(req_in.txn, make_response(req_in.request, 180, to_tag="t"), now=0.6)
    again = layer.receive(request(), FROM_UDP, now=1.0)
    assert kinds(again) == [Send]
    assert again[0].message.status == 180
    assert layer.counters["retransmissions_received"] == 2


def test_server_invite_failure_timer_g_until_ack() -> None:
    """A 486 is retransmitted on Timer G (T1 doubling, capped at T2) until the
    ACK arrives; the ACK is absorbed and Timer I (T4) ends the transaction."""
    layer = new_layer()
    req_in = layer.receive(request(), FROM_UDP, now=0.0)[0]
    txn = req_in.txn
    layer.respond(txn, make_response(req_in.request, 486, to_tag="t"), now=0.0)
    fired = run_until(layer, 12.0)
    assert [at for at, acts in fired if sends(acts)] == [0.5, 1.5, 3.5, 7.5, 11.5]
    ack = request("ACK", to_tag="t", cseq_method="ACK")
    assert layer.receive(ack, FROM_UDP, now=12.0) == []
    assert txn.state is State.CONFIRMED
    assert layer.receive(ack, FROM_UDP, now=12.5) == []
    fired = run_until(layer, 100.0)
    assert [at for at, _ in fired] == [17.0]
    assert fired[0][1][0].outcome == "486"
    assert layer.server_count == 0


def test_server_invite_timer_h_without_ack() -> None:
    """Without an ACK, Timer H (64*T1) ends the transaction and the TU hears
    of the timeout."""
    layer = new_layer()
    req_in = layer.receive(request(transport="TCP"), FROM_TCP, now=0.0)[0]
    layer.respond(req_in.txn, make_response(req_in.request, 404, to_tag="t"), now=0.0)
    fired = run_until(layer, 100.0)
    assert [at for at, _ in fired] == [32.0]
    assert kinds(fired[0][1]) == [TimedOut, Terminated]


def test_server_invite_2xx_accepted_state() -> None:
    """RFC 6026: after a 2xx INVITE retransmissions are absorbed, the TU's 2xx
    retransmissions are sent, and Timer L ends the transaction; the ACK of
    the 2xx (new branch) goes to the TU."""
    layer = new_layer()
    req_in = layer.receive(request(), FROM_UDP, now=0.0)[0]
    ok = make_response(req_in.request, 200, to_tag="t")
    assert kinds(layer.respond(req_in.txn, ok, now=0.1)) == [Send]
    assert layer.receive(request(), FROM_UDP, now=0.3) == []
    assert kinds(layer.respond(req_in.txn, ok, now=0.6)) == [Send]
    ack = request("ACK", branch="z9hG4bKack2xx", to_tag="t", cseq_method="ACK")
    assert kinds(layer.receive(ack, FROM_UDP, now=0.7)) == [AckIn]
    fired = run_until(layer, 100.0)
    assert [at for at, _ in fired] == [32.1]
    assert fired[0][1][0].outcome == "200"


# --- server non-INVITE ---------------------------------------------------------------


def test_server_non_invite_absorbs_then_repeats_final() -> None:
    """In Trying a retransmission is absorbed; once answered, it gets the
    final response again until Timer J (64*T1 on UDP)."""
    layer = new_layer()
    req_in = layer.receive(request("OPTIONS"), FROM_UDP, now=0.0)[0]
    assert layer.receive(request("OPTIONS"), FROM_UDP, now=0.4) == []
    layer.respond(req_in.txn, make_response(req_in.request, 200, to_tag="t"), now=0.5)
    again = layer.receive(request("OPTIONS"), FROM_UDP, now=1.0)
    assert kinds(again) == [Send] and again[0].data().startswith(b"SIP/2.0 200 OK\r\n")
    fired = run_until(layer, 100.0)
    assert [at for at, _ in fired] == [32.5]


def test_server_non_invite_over_tcp_ends_at_final() -> None:
    """Timer J is zero on reliable transports."""
    layer = new_layer()
    req_in = layer.receive(request("OPTIONS", transport="TCP"), FROM_TCP, now=0.0)[0]
    layer.respond(req_in.txn, make_response(req_in.request, 200), now=2.0)
    assert [at for at, _ in run_until(layer, 100.0)] == [2.0]
    assert layer.server_count == 0


def test_server_non_invite_provisional_resent() -> None:
    """In Proceeding a retransmission gets the last provisional response."""
    layer = new_layer()
    req_in = layer.receive(request("BYE"), FROM_UDP, now=0.0)[0]
    layer.respond(req_in.txn, make_response(req_in.request, 100), now=0.1)
    again = layer.receive(request("BYE"), FROM_UDP, now=0.5)
    assert again[0].message.status == 100


# --- matching and Via handling ----------------------------------------------------


def test_server_matching_uses_sent_by_too() -> None:
    """§17.2.3: the same branch from another sent-by is another transaction."""
    layer = new_layer()
    layer.receive(request("OPTIONS"), FROM_UDP, now=0.0)
    other = layer.receive(request("OPTIONS", via_host="other.example.com"), FROM_UDP, now=0.1)
    assert kinds(other) == [RequestIn]
    assert layer.server_count == 2


def test_cancel_finds_its_invite() -> None:
    """A received CANCEL is a transaction of its own that can find the INVITE
    it cancels (same branch and sent-by, method INVITE)."""
    from telavox.sip.message import make_cancel

    layer = new_layer()
    invite_in = layer.receive(request(), FROM_UDP, now=0.0)[0]
    cancel = make_cancel(request())
    cancel_in = layer.receive(cancel, FROM_UDP, now=0.1)[0]
    assert isinstance(cancel_in, RequestIn)
    assert cancel_in.txn is not invite_in.txn
    assert layer.find_invite(cancel_in.request) is invite_in.txn
    assert layer.find_invite(make_cancel(request(branch="z9hG4bKnone"))) is None


def test_rfc2543_matching() -> None:
    """Requests without the magic cookie match by Request-URI, tags, Call-ID,
    CSeq and Via; the ACK of a non-2xx matches by the To tag we sent."""
    layer = new_layer()
    old = request(branch="")
    req_in = layer.receive(old, FROM_UDP, now=0.0)[0]
    assert layer.receive(request(branch=""), FROM_UDP, now=0.1) == []
    layer.respond(req_in.txn, make_response(req_in.request, 486, to_tag="abc"), now=0.2)
    wrong = request("ACK", branch="", to_tag="zzz", cseq_method="ACK")
    assert kinds(layer.receive(wrong, FROM_UDP, now=0.3)) == [AckIn]
    right = request("ACK", branch="", to_tag="abc", cseq_method="ACK")
    assert layer.receive(right, FROM_UDP, now=0.4) == []
    assert req_in.txn.state is State.CONFIRMED


def test_received_and_rport_are_stamped() -> None:
    """§18.2.1 and RFC 3581: received is added when sent-by differs from the
    source, and an empty rport is filled with the source port."""
    layer = new_layer()
    req = request("OPTIONS", via_extra=";rport")
    req_in = layer.receive(req, Source("udp", "203.0.113.9", 41000), now=0.0)[0]
    via = req_in.request.top_via
    assert via.received == "203.0.113.9"
    assert via.rport == 41000
    ok = make_response(req_in.request, 200)
    send = layer.respond(req_in.txn, ok, now=0.1)[0]
    assert send.dest == Destination("udp", "203.0.113.9", 41000)


def test_rport_request_gets_received_even_when_it_equals_sent_by() -> None:
    """RFC 3581 §4: with rport asked for, received is added even when it is
    the sent-by host; the Via keeps its spelling, the parameters appended."""
    layer = new_layer()
    req = request("OPTIONS", via_host="192.0.2.50:5070", via_extra=";rport")
    req_in = layer.receive(req, Source("udp", "192.0.2.50", 6000), now=0.0)[0]
    assert req_in.request.headers.get("Via") == (
        "SIP/2.0/UDP 192.0.2.50:5070;branch=z9hG4bK776asdhds;rport=6000;received=192.0.2.50")
    assert req_in.request.top_via == Via.parse(req_in.request.headers.get("Via") or "")


def test_request_without_rport_from_its_sent_by_is_not_stamped() -> None:
    """§18.2.1: no rport and the source is the sent-by host: the Via is
    left as it came."""
    layer = new_layer()
    req = request("OPTIONS", via_host="192.0.2.50:5070")
    req_in = layer.receive(req, Source("udp", "192.0.2.50", 5070), now=0.0)[0]
    assert req_in.request.headers.get("Via") == (
        "SIP/2.0/UDP 192.0.2.50:5070;branch=z9hG4bK776asdhds")


def test_response_destination_without_rport_uses_via_port() -> None:
    """Without rport, UDP responses go to received (or source) and the Via port."""
    layer = new_layer()
    req = request("OPTIONS", via_host="192.0.2.50:5070")
    req_in = layer.receive(req, Source("udp", "192.0.2.50", 6000), now=0.0)[0]
    send = layer.respond(req_in.txn, make_response(req_in.request, 200), now=0.0)[0]
    assert send.dest == Destination("udp", "192.0.2.50", 5070)


def test_response_destination_reliable_reuses_flow() -> None:
    """On TCP the response goes back over the request's connection."""
    layer = new_layer()
    req_in = layer.receive(request("OPTIONS", transport="TCP"), FROM_TCP, now=0.0)[0]
    send = layer.respond(req_in.txn, make_response(req_in.request, 200), now=0.0)[0]
    assert send.dest.flow == "c1"
    assert send.dest.port == 40000


def test_ack_without_transaction_goes_to_tu() -> None:
    """An ACK that matches nothing (a 2xx's ACK) is handed to the TU."""
    layer = new_layer()
    actions = layer.receive(request("ACK", cseq_method="ACK"), FROM_UDP, now=0.0)
    assert kinds(actions) == [AckIn]
    assert layer.server_count == 0


def test_ack_of_a_stateless_answer_is_absorbed() -> None:
    """A 407 answered statelessly carries a To tag of the layer's: its ACK
    (hop by hop, §17.1.1.3) stops here and never reaches the TU; an ACK with
    another tag still does."""
    layer = new_layer()
    invite = request()
    (event, *_) = layer.receive(invite, FROM_UDP, now=0.0)
    assert isinstance(event, RequestIn)
    tag = layer.stateless_tag()
    answer = make_response(invite, 407, to_tag=tag)
    assert kinds(layer.answer_statelessly(event.txn, answer)) == [Send]
    assert layer.server_count == 0
    ack = request("ACK", to_tag=tag, cseq_method="ACK")
    assert layer.receive(ack, FROM_UDP, now=0.1) == []
    assert layer.counters["stateless_acks_absorbed"] == 1
    other = request("ACK", to_tag="t", cseq_method="ACK")
    assert kinds(layer.receive(other, FROM_UDP, now=0.2)) == [AckIn]
    assert layer.stateless_tag() != tag


def test_every_state_input_pair_is_handled_or_absorbed() -> None:
    """Each machine answers every (state, input) pair: a listed transition
    or an absorbed input, never an exception."""
    from telavox.sip.transaction.base import Input

    for method in ("INVITE", "OPTIONS"):
        for state in State:
            for what in Input:
                layer = new_layer()
                txn, _ = layer.send_request(request(method), UDP, now=0.0)
                txn.state = state
                arg = (response_to(txn.request, 200), FROM_UDP)
                txn.handle(what, arg, 1.0)
                layer2 = new_layer()
                sin = layer2.receive(request(method), FROM_UDP, now=0.0)[0]
                sin.txn.state = state
                argument = make_response(sin.request, 200) if "TU" in what.value else sin.request
                sin.txn.handle(what, argument, 1.0)


def test_ack_with_invite_branch_in_accepted_goes_to_tu() -> None:
    """RFC 6026 §7.1: an ACK for a 2xx that reuses the INVITE's branch reaches
    the TU instead of being absorbed by the Accepted transaction."""
    layer = new_layer()
    req_in = layer.receive(request(), FROM_UDP, now=0.0)[0]
    layer.respond(req_in.txn, make_response(req_in.request, 200, to_tag="t"), now=0.1)
    ack = request("ACK", to_tag="t", cseq_method="ACK")
    assert kinds(layer.receive(ack, FROM_UDP, now=0.2)) == [AckIn]


def test_ended_transactions_are_freed_without_the_cyclic_collector() -> None:
    """Nothing of a transaction that ended (its Sends, request, responses)
    is left in a reference cycle, so it is freed as soon as the layer lets
    go of it: a SIP server keeps tens of thousands of transactions for 64*T1
    and must not leave each one to the cyclic collector."""
    import gc

    gc.collect()
    gc.disable()
    try:
        layer = new_layer()
        client = request("REGISTER", uri="sip:registrar.example.com")
        layer.send_request(client, UDP, now=0.0)
        layer.receive(response_to(client, 200), FROM_UDP, now=0.1)
        invite = request("INVITE", uri="sip:bob@example.com")
        layer.send_request(invite, UDP, now=0.0)
        layer.receive(response_to(invite, 486), FROM_UDP, now=0.1)  # its ACK is a Send too
        req_in = layer.receive(request("OPTIONS"), FROM_UDP, now=0.0)[0]
        layer.respond(req_in.txn, make_response(req_in.request, 200, to_tag="t"), now=0.5)
        del req_in
        run_until(layer, 100.0)
        assert layer.client_count == layer.server_count == 0
        assert gc.collect() == 0
    finally:
        gc.enable()


def _holds(txn: object, message: object) -> bool:
    import gc

    return any(referrer is txn for referrer in gc.get_referrers(message))


def test_held_transactions_let_their_request_go() -> None:
    """A transaction that only waits for a timer (Accepted, Completed,
    Confirmed) no longer holds its request: a proxy keeps tens of thousands
    of them for 64*T1.  Its method and Call-ID stay readable, its request
    does not; a failed INVITE keeps its request until the ACK (Timer H may
    still report it to the TU) and still re-ACKs a retransmitted 486."""
    layer = new_layer()
    outgoing = {}
    for method, status in (("INVITE", 200), ("INVITE", 486), ("BYE", 200)):
        req = request(method, call_id=f"c-{method}-{status}", branch=f"z9hG4bKc{status}{method}")
        txn, _ = layer.send_request(req, UDP, now=0.0)
        assert _holds(txn, req)
        layer.receive(response_to(req, status), FROM_UDP, now=0.1)
        assert not _holds(txn, req), (method, status)
        outgoing[method, status] = (req, txn)
    req, txn = outgoing["INVITE", 486]
    assert kinds(layer.receive(response_to(req, 486), FROM_UDP, now=0.2)) == [Send]
    assert txn.method == "INVITE" and txn.call_id == "c-INVITE-486"
    with pytest.raises(LocalSipError):
        txn.request  # noqa: B018

    for method, status in (("INVITE", 200), ("INVITE", 486), ("OPTIONS", 200)):
        incoming = request(method, call_id=f"s-{method}-{status}",
                           branch=f"z9hG4bKs{status}{method}")
        event = layer.receive(incoming, FROM_UDP, now=0.0)[0]
        layer.respond(event.txn, make_response(event.request, status, to_tag="t"), now=0.1)
        if status == 486:
            assert _holds(event.txn, event.request)  # Completed: Timer H may still fire
            ack = request("ACK", call_id="s-INVITE-486", to_tag="t", cseq_method="ACK",
                          branch="z9hG4bKs486INVITE")
            layer.receive(ack, FROM_UDP, now=0.2)
            assert event.txn.state is State.CONFIRMED
        assert not _holds(event.txn, event.request), (method, status)
        assert event.txn.call_id == f"s-{method}-{status}"
    fired = run_until(layer, 100.0)
    assert sorted(a.outcome for _, acts in fired for a in acts if isinstance(a, Terminated)) == [
        "200", "200", "200", "200", "486", "486"]


def test_invite_answered_2xx_keeps_no_send() -> None:
    """In Accepted the transaction never sends again by itself (the TU
    repeats its 2xx, RFC 6026 §7.1), so it keeps no Send for its 64*T1:
    neither the 2xx's nor the earlier 180's, which it would otherwise
    repeat on a retransmitted INVITE.  The 2xx still goes out, and so does
    each 2xx the TU repeats."""
    import gc

    layer = new_layer()
    incoming = request("INVITE", call_id="kept", branch="z9hG4bKkept")
    event = layer.receive(incoming, FROM_UDP, now=0.0)[0]
    txn = event.txn
    ringing = layer.respond(txn, make_response(incoming, 180, to_tag="t"), now=0.1)
    assert kinds(ringing) == [Send]
    assert kinds(layer.receive(incoming, FROM_UDP, now=0.2)) == [Send]  # the 180 again
    ok = make_response(incoming, 200, to_tag="t")
    assert sends(layer.respond(txn, ok, now=0.3))[0].message is ok
    assert sends(layer.respond(txn, ok, now=0.8))[0].message is ok
    del ringing
    assert txn.state is State.ACCEPTED
    assert not [r for r in gc.get_referrers(txn) if isinstance(r, Send)]
    assert layer.receive(incoming, FROM_UDP, now=1.0) == []  # absorbed


def test_timer_records_are_not_tracked_by_the_cyclic_collector() -> None:
    """A transaction's record of its timers holds only strings and floats,
    so the collector never walks it, however many transactions linger."""
    import gc

    layer = new_layer()
    txn, _ = layer.send_request(request(), UDP, now=0.0)
    event = layer.receive(request("OPTIONS", branch="z9hG4bKopt"), FROM_UDP, now=0.0)[0]
    layer.respond(event.txn, make_response(event.request, 200, to_tag="t"), now=0.1)
    assert txn.timer_running(Input.TIMER_B) and event.txn.timer_running(Input.TIMER_J)
    assert not gc.is_tracked(txn._deadlines)
    assert not gc.is_tracked(event.txn._deadlines)


def test_final_responses_kept_for_64_t1_hold_no_parsed_views() -> None:
    """A final response a server transaction keeps (to send again, or for
    its status) lets its parsed views go, and reads them again on demand."""
    import gc

    layer = new_layer()
    for method in ("INVITE", "BYE"):
        incoming = request(method, branch=f"z9hG4bKviews{method}")
        event = layer.receive(incoming, FROM_UDP, now=0.0)[0]
        final = make_response(incoming, 200, to_tag="t")
        assert final.top_via.branch == f"z9hG4bKviews{method}"  # a view is made
        layer.respond(event.txn, final, now=0.1)
        assert (event.txn.last_response, event.txn.status) == (None, 200)
        assert not final.headers.views and not gc.is_tracked(final.headers.views)
        assert final.top_via.branch == f"z9hG4bKviews{method}"  # and made again


def test_answered_non_invite_keeps_its_answer_as_bytes() -> None:
    """Over the network, an answered non-INVITE repeats its final response
    from the bytes first sent and holds no message for its 64*T1; toward a
    component of this process (which is passed messages) it keeps the
    message."""
    layer = new_layer()
    event = layer.receive(request("BYE", branch="z9hG4bKwire"), FROM_UDP, now=0.0)[0]
    sent = sends(layer.respond(event.txn, make_response(event.request, 200, to_tag="t"),
                               now=0.1))[0]
    again = sends(layer.receive(request("BYE", branch="z9hG4bKwire"), FROM_UDP, now=0.5))[0]
    assert again is sent and again.message is None
    assert again.data().startswith(b"SIP/2.0 200 OK\r\n") and b"z9hG4bKwire" in again.data()
    assert event.txn.status == 200 and event.txn.responded

    local = Source("udp", "127.0.0.1", 5090, local=True)
    event = layer.receive(request("BYE", branch="z9hG4bKlocal"), local, now=0.0)[0]
    kept = sends(layer.respond(event.txn, make_response(event.request, 200, to_tag="t"),
                               now=0.1))[0]
    assert kept.dest.local and kept.message is not None
