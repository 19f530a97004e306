"""Transaction-stateful forwarding (RFC 3261 §16.6–§16.10): one upstream
server transaction, one client transaction per branch.

Theory of operation.  A :class:`ProxyCall` is made for each request the proxy
forwards statefully.  It sends one copy of the request per :class:`Target`
(parallel forking), each with our Via (a loop-detecting branch plus a branch
number) and the Record-Route values the dispatcher chose.  Responses come back
per branch: 100 stays here; other provisionals go upstream at once (and reset
that branch's Timer C); every 2xx goes upstream at once and, for an INVITE,
cancels the other branches; 3xx–6xx are kept until every branch has finished,
then the best one (:func:`telavox.sip.proxycore.best_response`) goes upstream.
A branch that times out counts as 408, one whose transport fails as 503.  A
CANCEL from upstream cancels every branch that has had a provisional
response, and marks the others to be cancelled when theirs comes; when no
branch has answered at all, 487 goes upstream at once.  Timer C (§16.8)
cancels an INVITE branch that rings for too long, or closes it as 408 when it
never rang (and cancels it should it ring later).  Once every branch has its
final response and one went upstream, the call lets the requests go (but
that of a branch still to be cancelled): all that can still happen is a
retransmitted 2xx passing through, for 64*T1.  Given an ``on_late`` hook,
the call hands its branches' transactions over to it then (each with its
:class:`Target`), so that the call itself is let go at once rather than
held for those 32 s.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import attrs
from twisted.logger import Logger

from telavox.sip.message import Request, Response, make_cancel, make_response, new_tag
from telavox.sip.proxycore import best_response, forwarded_request, loop_branch
from telavox.sip.proxycore import response_upstream as upstream_copy
from telavox.sip.transaction import (
    Action,
    ClientTransaction,
    Destination,
    RequestIn,
    ResponseIn,
    client_response,
)
from telavox.sip.uri import SipUri

if TYPE_CHECKING:
    from telavox.transport.endpoint import SipEndpoint

_numbers = itertools.count(1)


@attrs.frozen
class Target:
    """Where one branch goes.

    ``uri`` replaces the Request-URI (None keeps it); ``dest`` is where the
    request is sent; ``routes`` are Route values put in front of the request's
    own (a registered Path); ``record_routes`` are the Record-Route values this
    proxy adds on this branch, in insertion order; ``trusted`` says the
    destination is a peer of the platform (not a phone).
    """

    uri: SipUri | None
    dest: Destination
    routes: tuple[str, ...] = ()
    record_routes: tuple[str, ...] = ()
    trusted: bool = True


class Branch:
    """One forwarded copy of the request and what became of it."""

    __slots__ = ("call", "cancel_pending", "cancelled", "done", "final", "index",
                 "provisional", "request", "target", "timer_c_at", "txn")

    def __init__(self, call: ProxyCall, index: int, target: Target, request: Request) -> None:
        self.call = call
        self.index = index
        self.target = target
        self.request: Request | None = request  # None once the call is over
        self.txn: ClientTransaction | None = None
        self.final: Response | None = None  # None again once the call is over
        self.done = False  # the branch has its final response
        self.provisional = False
        self.cancelled = False
        self.cancel_pending = False
        self.timer_c_at: float | None = None

    def on_event(self, event: Action) -> None:
        """What the branch's client transaction reports (a bound method
        rather than a closure: one object, not three, held for as long as
        the transaction may still report)."""
        self.call._branch_event(self, event)


ResponseHook = Callable[["ProxyCall", Branch, Response], Response]
LateHook = Callable[[Target, Action], None]
"""Gets what a branch's transaction reports once its call is over: a 2xx
retransmitted (or a 2xx from another fork further on), to be passed
upstream statelessly (RFC 6026 §8.1)."""


class ProxyCall:
    """One request forwarded statefully, on one or more branches."""

    __slots__ = ("_on_finished", "_on_late", "_on_response", "answered", "branches",
                 "cancelled", "endpoint", "is_invite", "number", "reactor", "request", "success",
                 "timer_c", "txn")

    log = Logger(namespace="telavox.sipproxy")

    def __init__(self, endpoint: SipEndpoint, reactor: Any, event: RequestIn, *,
                 timer_c: float, on_response: ResponseHook | None = None,
                 on_finished: Callable[[ProxyCall], None] | None = None,
                 on_late: LateHook | None = None) -> None:
        self.endpoint = endpoint
        self.reactor = reactor
        self.txn = event.txn
        self.request: Request | None = event.request  # None once the call is over
        self.is_invite = event.request.method == "INVITE"
        self.timer_c = timer_c
        self.branches: list[Branch] = []
        self.answered = False  # a final response went upstream
        self.success = False   # ... and it was a 2xx
        self.cancelled = False
        self._on_response = on_response
        self._on_finished = on_finished
        self._on_late = on_late
        self.number = next(_numbers)

    # -- forking --------------------------------------------------------------

    def fork(self, targets: Sequence[Target], prepare: Callable[[Request], None] | None = None
             ) -> None:
        """Send the request to every target in parallel."""
        request = self.request
        assert request is not None, "forked before any branch answered"
        base = loop_branch(request)
        for index, target in enumerate(targets):
            dest = target.dest
            via = self.endpoint.via_for(dest, branch=f"{base}.{self.number}.{index}")
            copy = forwarded_request(request, target.uri, via, target.record_routes)
            for route in reversed(target.routes):
                copy.headers.add("Route", route, first=True)
            if prepare is not None:
                prepare(copy)
            branch = Branch(self, index, target, copy)
            self.branches.append(branch)
        for branch in list(self.branches):
            self._start(branch)

    def _start(self, branch: Branch) -> None:
        assert branch.request is not None
        branch.txn = self.endpoint.send_request(branch.request, branch.target.dest,
                                                branch.on_event)
        if self.is_invite and not branch.done:
            branch.timer_c_at = self.reactor.seconds() + self.timer_c

    # -- branch events ---------------------------------------------------------

    def _branch_event(self, branch: Branch, event: Action) -> None:
        if type(event) is ResponseIn:
            self._response(branch, event.response)
            return
        # a timeout or transport failure: only before the branch's final response
        if branch.request is not None:
            response = client_response(branch.request, event)
            if response is not None:
                self._response(branch, response)

    def _response(self, branch: Branch, response: Response) -> None:
        status = response.status
        if status < 200:
            if status == 100:
                return
            first = not branch.provisional
            branch.provisional = True
            if branch.timer_c_at is not None:
                branch.timer_c_at = self.reactor.seconds() + self.timer_c
            if first and branch.cancel_pending:
                self._send_cancel(branch)
            if not self.answered:
                self._upstream(branch, response, in_place=True)
            return
        # the branch's transaction has its final answer: nothing left to cancel
        branch.cancel_pending = False
        if status < 300:
            first = not self.success
            self._mark_final(branch, response)
            if self.answered and not self.success:
                return  # a late 2xx after a failure went up: nothing to do here
            self.answered = self.success = True
            self._upstream(branch, response, in_place=True)
            if first and self.is_invite:
                for other in self.branches:
                    if other is not branch and not other.done:
                        self._cancel_branch(other)
            self._maybe_finished()
            return
        self._final(branch, response)

    def _final(self, branch: Branch, response: Response) -> None:
        if branch.done:
            return
        self._mark_final(branch, response)
        if not self.answered and all(b.done for b in self.branches):
            self.answered = True
            best = best_response([b.final for b in self.branches if b.final is not None])
            owner = next((b for b in self.branches if b.final is best), branch)
            self._upstream(owner, best)
        self._maybe_finished()

    def _mark_final(self, branch: Branch, response: Response) -> None:
        if not branch.done:
            branch.done = True
            branch.final = response
        branch.timer_c_at = None

    def _upstream(self, branch: Branch, response: Response, in_place: bool = False) -> None:
        """Send ``response`` up without our Via: in place for a response that
        is forwarded once and not kept (provisionals, 2xx), else a copy."""
        if in_place:
            response.headers.pop_first_value("Via")
            copy = response
        else:
            copy = upstream_copy(response)
        if self._on_response is not None:
            copy = self._on_response(self, branch, copy)
        self.endpoint.respond(self.txn, copy)

    def _maybe_finished(self) -> None:
        if not self.answered:
            return
        if self._on_finished is not None:
            finished, self._on_finished = self._on_finished, None
            finished(self)
        if self.request is not None and all(b.done for b in self.branches):
            self._release()

    def _release(self) -> None:
        """Every branch is over: keep only what passing a retransmitted 2xx
        upstream needs (the server transaction, the branches' targets), or
        hand that to the ``on_late`` hook."""
        self.request = None
        late = self._on_late
        for branch in self.branches:
            branch.final = None  # the best of them has gone upstream
            if branch.cancel_pending and not branch.cancelled:
                continue  # the request is kept for the CANCEL its 1xx will get
            branch.request = None
            if late is not None and branch.txn is not None:
                self.endpoint.rebind(branch.txn, _Late(late, branch.target))

    # -- cancelling -----------------------------------------------------------

    def cancel(self) -> None:
        """A CANCEL came from upstream (§16.10)."""
        if self.cancelled or self.answered:
            return
        self.cancelled = True
        for branch in self.branches:
            if not branch.done:
                self._cancel_branch(branch)
        if not any(b.provisional for b in self.branches) and not self.answered:
            self.answered = True
            assert self.request is not None  # released only once answered
            self.endpoint.respond(self.txn, make_response(
                self.request, 487, "Request Terminated", to_tag=new_tag()))
            self._maybe_finished()

    def _cancel_branch(self, branch: Branch) -> None:
        if branch.cancelled:
            return
        if branch.provisional:
            self._send_cancel(branch)
        else:
            branch.cancel_pending = True

    def _send_cancel(self, branch: Branch) -> None:
        if branch.cancelled:
            return
        branch.cancelled = True
        if branch.request is None:
            return  # the call is over
        cancel = make_cancel(branch.request)
        self.endpoint.send_request(cancel, branch.target.dest, _ignore)

    def expire_timers(self, now: float) -> None:
        """Fire Timer C of every branch whose time has come (the owner calls
        this about once a second: Timer C is minutes long)."""
        for branch in self.branches:
            if branch.timer_c_at is not None and branch.timer_c_at <= now:
                self._timer_c(branch)

    def _timer_c(self, branch: Branch) -> None:
        branch.timer_c_at = None
        request = branch.request
        if branch.done or request is None:  # a branch not done keeps its request
            return
        self.log.info("Timer C fired on branch {index} of {call_id}", index=branch.index,
                      call_id=request.headers.get("Call-ID", "-"))
        if branch.provisional:
            self._send_cancel(branch)
        else:
            # closed as 408 while its transaction lives on: should it ring
            # after all, it is cancelled then (§16.8)
            branch.cancel_pending = True
            self._final(branch, make_response(request, 408, "Request Timeout"))


class _Late:
    """A branch's transaction handed to the ``on_late`` hook with its target
    (one small object: a partial would hold a tuple besides)."""

    __slots__ = ("hook", "target")

    def __init__(self, hook: LateHook, target: Target) -> None:
        self.hook = hook
        self.target = target

    def __call__(self, event: Action) -> None:
        self.hook(self.target, event)


def _ignore(event: Action) -> None:
    """Responses to our CANCELs need no handling."""
