"""Stateful forwarding: forking, response selection, CANCEL and Timer C,
driven with a fake endpoint and a fake clock."""

from __future__ import annotations

import gc
from typing import Any

from helpers.sipmsg import request, response_to
from twisted.internet.task import Clock

from telavox.sip.hdrtypes import Via
from telavox.sip.message import Request, Response
from telavox.sip.transaction import (
    Destination,
    RequestIn,
    ResponseIn,
    Source,
    TimedOut,
    TransportFailed,
)
from telavox.sipproxy.forwarder import ProxyCall, Target

A = Destination("udp", "192.0.2.1", 5060)
B = Destination("udp", "192.0.2.2", 5060)


class FakeEndpoint:
    """Records what the forwarder sends."""

    def __init__(self) -> None:
        self.sent: list[tuple[Request, Destination, Any]] = []
        self.upstream: list[Response] = []
        self.txns: list[object] = []
        self.rebound: dict[object, Any] = {}

    def via_for(self, dest: Destination, branch: str | None = None) -> Via:
        return Via.build("UDP", "proxy.example.com", 5060, branch or "z9hG4bK-x")

    def send_request(self, req: Request, dest: Destination, callback: Any) -> object:
        self.sent.append((req, dest, callback))
        txn = object()
        self.txns.append(txn)
        return txn

    def rebind(self, txn: object, callback: Any) -> None:
        self.rebound[txn] = callback

    def respond(self, txn: object, response: Response) -> None:
        self.upstream.append(response)

    def branch(self, dest: Destination) -> tuple[Request, Any]:
        for req, d, cb in self.sent:
            if d == dest and req.method == "INVITE":
                return req, cb
        raise AssertionError(dest)

    def cancels(self) -> list[Destination]:
        return [d for req, d, _ in self.sent if req.method == "CANCEL"]


def start(*dests: Destination, timer_c: float = 180.0) -> tuple[FakeEndpoint, Clock, ProxyCall]:
    endpoint = FakeEndpoint()
    clock = Clock()
    invite = request("INVITE")
    event = RequestIn(object(), invite, Source("udp", "192.0.2.9", 5060))  # type: ignore[arg-type]
    call = ProxyCall(endpoint, clock, event, timer_c=timer_c)  # type: ignore[arg-type]
    call.fork([Target(uri=None, dest=d) for d in dests])
    return endpoint, clock, call


def answer(endpoint: FakeEndpoint, dest: Destination, status: int) -> None:
    req, callback = endpoint.branch(dest)
    callback(ResponseIn(object(), response_to(req, status, to_tag=f"t{dest.host}"),  # type: ignore[arg-type]
                        Source("udp", dest.host, dest.port)))


def test_fork_sends_one_copy_per_target_with_distinct_branches() -> None:
    """Parallel forking: one copy per target, each with our Via on top and a
    branch of its own; Max-Forwards decremented."""
    endpoint, _, _ = start(A, B)
    requests = [req for req, _, _ in endpoint.sent]
    assert len(requests) == 2
    branches = {r.top_via.branch for r in requests}
    assert len(branches) == 2
    assert all(r.headers.get("Max-Forwards") == "69" for r in requests)


def test_provisional_goes_up_and_2xx_cancels_the_others() -> None:
    """A 180 goes upstream at once (without our Via); a 2xx goes upstream and
    the other ringing branch is cancelled."""
    endpoint, _, call = start(A, B)
    answer(endpoint, A, 180)
    answer(endpoint, B, 180)
    assert [r.status for r in endpoint.upstream] == [180, 180]
    assert endpoint.upstream[0].top_via.host != "proxy.example.com"
    answer(endpoint, B, 200)
    assert endpoint.upstream[-1].status == 200
    assert endpoint.cancels() == [A]
    assert call.answered and call.success


def test_best_response_when_every_branch_fails() -> None:
    """Without a 2xx, the best final response goes up once all branches are
    done: here 603 over 486."""
    endpoint, _, _ = start(A, B)
    answer(endpoint, A, 486)
    assert endpoint.upstream == []
    answer(endpoint, B, 603)
    assert [r.status for r in endpoint.upstream] == [603]


def test_timeouts_and_transport_failures_count_as_408_and_503() -> None:
    """A branch timing out counts as 408, a transport failure as 503 (sent up
    as 500 when it is the best there is; the 4xx class wins over 5xx)."""
    endpoint, _, _ = start(A, B)
    endpoint.branch(A)[1](TimedOut(object()))  # type: ignore[arg-type]
    endpoint.branch(B)[1](TransportFailed(object()))  # type: ignore[arg-type]
    assert [r.status for r in endpoint.upstream] == [408]
    endpoint, _, _ = start(A)
    endpoint.branch(A)[1](TransportFailed(object()))  # type: ignore[arg-type]
    assert [r.status for r in endpoint.upstream] == [500]


def test_cancel_before_any_answer_gives_487_at_once() -> None:
    """A CANCEL from upstream before any branch rang: 487 goes up at once and
    each branch is cancelled when its first provisional arrives."""
    endpoint, _, call = start(A)
    call.cancel()
    assert [r.status for r in endpoint.upstream] == [487]
    assert endpoint.cancels() == []
    answer(endpoint, A, 180)
    assert endpoint.cancels() == [A]
    assert [r.status for r in endpoint.upstream] == [487]


def test_cancel_while_ringing_cancels_branches() -> None:
    """A CANCEL while ringing cancels every ringing branch; their 487 is the
    answer that goes up."""
    endpoint, _, call = start(A, B)
    answer(endpoint, A, 180)
    answer(endpoint, B, 183)
    call.cancel()
    assert sorted(d.host for d in endpoint.cancels()) == ["192.0.2.1", "192.0.2.2"]
    answer(endpoint, A, 487)
    answer(endpoint, B, 487)
    assert endpoint.upstream[-1].status == 487


def test_timer_c() -> None:
    """Timer C cancels a branch that rings too long, and closes one that
    never answered as 408; each provisional restarts it."""
    endpoint, clock, call = start(A, timer_c=10)
    answer(endpoint, A, 180)
    clock.advance(9)
    call.expire_timers(clock.seconds())
    answer(endpoint, A, 180)
    clock.advance(9)
    call.expire_timers(clock.seconds())
    assert endpoint.cancels() == []
    clock.advance(2)
    call.expire_timers(clock.seconds())
    assert endpoint.cancels() == [A]
    endpoint, clock, call = start(B, timer_c=10)
    clock.advance(11)
    call.expire_timers(clock.seconds())
    assert [r.status for r in endpoint.upstream] == [408]
    # the branch closed as 408 rings after all: it is cancelled, and the
    # caller, answered already, hears nothing more
    answer(endpoint, B, 180)
    assert endpoint.cancels() == [B]
    assert [r.status for r in endpoint.upstream] == [408]


def test_a_cancel_pending_on_a_branch_closed_by_timer_c_is_sent_when_it_rings() -> None:
    """CANCEL from upstream while a branch has had only 100 Trying: the
    CANCEL waits for its provisional; Timer C then closes it as 408 (every
    branch is done); its late 180 still gets the CANCEL."""
    endpoint, clock, call = start(A, timer_c=10)
    answer(endpoint, A, 100)
    call.cancel()
    assert endpoint.cancels() == []
    clock.advance(11)
    call.expire_timers(clock.seconds())
    answer(endpoint, A, 180)
    assert endpoint.cancels() == [A]


def test_a_call_over_lets_its_requests_go_and_still_passes_2xx_retransmissions() -> None:
    """Once every branch has its final response, the call keeps no request
    (it lives on for 64*T1 behind the Accepted client transaction); a
    retransmitted 2xx still goes upstream, and a late CANCEL or Timer C
    does nothing."""
    endpoint, clock, call = start(A, B)
    answer(endpoint, A, 180)
    answer(endpoint, B, 486)
    assert call.request is not None
    answer(endpoint, A, 200)
    assert call.request is None and all(b.request is None for b in call.branches)
    assert [r.status for r in endpoint.upstream] == [180, 200]
    answer_again = endpoint.sent[0][2]
    copy = response_to(endpoint.sent[0][0], 200, to_tag="tA")
    answer_again(ResponseIn(object(), copy, Source("udp", A.host, A.port)))  # type: ignore[arg-type]
    assert [r.status for r in endpoint.upstream] == [180, 200, 200]
    call.cancel()
    clock.advance(400)
    call.expire_timers(clock.seconds())
    assert [r.status for r in endpoint.upstream] == [180, 200, 200]
    assert endpoint.cancels() == []


def test_a_call_over_hands_its_branches_to_the_late_hook() -> None:
    """With an ``on_late`` hook, a call over hands each branch's transaction
    to it with the branch's target (nothing holding the call), so the
    hook, not the call, passes a retransmitted 2xx; a branch still to be
    cancelled stays with the call."""
    endpoint = FakeEndpoint()
    clock = Clock()
    late: list[tuple[Target, Any]] = []
    event = RequestIn(object(), request("INVITE"),  # type: ignore[arg-type]
                      Source("udp", "192.0.2.9", 5060))
    call = ProxyCall(endpoint, clock, event, timer_c=180.0,  # type: ignore[arg-type]
                     on_late=lambda target, ev: late.append((target, ev)))
    C = Destination("udp", "192.0.2.3", 5060)
    call.fork([Target(uri=None, dest=d) for d in (A, B, C)])
    answer(endpoint, A, 180)
    answer(endpoint, B, 486)
    answer(endpoint, A, 200)       # C has not answered: its CANCEL waits for its 1xx
    assert endpoint.rebound == {}  # C is not done yet: the call goes on
    answer(endpoint, C, 200)       # C answers after all (crossing the pending CANCEL)
    handed = endpoint.rebound
    assert set(handed) == {endpoint.txns[0], endpoint.txns[1], endpoint.txns[2]}
    for callback in handed.values():
        assert call not in gc.get_referents(callback)
        assert not any(isinstance(o, ProxyCall) for o in gc.get_referents(callback))
    retransmitted = ResponseIn(object(), response_to(endpoint.sent[0][0], 200, to_tag="tA"),  # type: ignore[arg-type]
                               Source("udp", A.host, A.port))
    upstream = len(endpoint.upstream)
    handed[endpoint.txns[0]](retransmitted)
    assert [(t.dest, ev) for t, ev in late] == [(A, retransmitted)]
    assert len(endpoint.upstream) == upstream  # the hook's to pass, not the call's


def test_a_branch_still_to_be_cancelled_is_not_handed_over() -> None:
    """A branch closed by Timer C with a CANCEL pending keeps its request
    and stays with the call, which must send that CANCEL when it rings."""
    endpoint = FakeEndpoint()
    clock = Clock()
    event = RequestIn(object(), request("INVITE"),  # type: ignore[arg-type]
                      Source("udp", "192.0.2.9", 5060))
    call = ProxyCall(endpoint, clock, event, timer_c=10.0,  # type: ignore[arg-type]
                     on_late=lambda target, ev: None)
    call.fork([Target(uri=None, dest=A)])
    clock.advance(11)
    call.expire_timers(clock.seconds())    # closed as 408, CANCEL pending
    assert [r.status for r in endpoint.upstream] == [408]
    assert endpoint.rebound == {}
    answer(endpoint, A, 180)
    assert endpoint.cancels() == [A]
