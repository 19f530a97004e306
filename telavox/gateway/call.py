"""One call through a gateway: a signalling-only back-to-back hop between
the platform and a carrier.

Owns :class:`Attempt` (one way to reach the far side: a destination and the
INVITE's addressing) and :class:`GatewayCall` (the
:class:`~telavox.b2bua.leg.LegListener` of the call's legs).

Theory of operation.  The incoming leg is the side that called (a SIP
server for an outbound call, a carrier for an inbound one); the outgoing
leg is a fresh dialog toward the other side, with its own Call-ID, tags,
Via and Contact, so nothing of one side's addressing reaches the other
(topology hiding).  Session descriptions pass through unchanged: media
flows between the carrier and the SIP server's mediaserver, whose
description carries only its carrier-facing address.

Attempts are tried in order.  An attempt fails over to the next when the
far side answers 408, 5xx or 3xx, refuses our credentials (401/407 that
cannot be answered), or sends no provisional response within the
attempt's ``invite_timeout`` (then it is cancelled once it does); a 4xx or
6xx ends the call with that answer.  When every attempt failed over, the
caller gets 503.  A call holds one channel of the trunk it is on (an
inbound call its carrier's, an outbound one the trunk of its current
attempt) until it ends or moves on; a trunk with no free channel
(``max_calls``) is skipped.  After the answer everything passes across:
BYE, and in-dialog requests (re-INVITE, UPDATE, INFO...) with their answers.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import attrs
from twisted.logger import Logger

from telavox.b2bua.endpoint import let_go
from telavox.b2bua.leg import Authenticator, IncomingLeg, Leg, LegHost, OutgoingLeg
from telavox.sip.hdrtypes import NameAddr
from telavox.sip.message import Request, Response
from telavox.sip.transaction import Destination, ServerTransaction
from telavox.sip.uri import SipUri

__all__ = ["Attempt", "GatewayCall", "GatewayCallHost", "fails_over"]

ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE, PRACK, REFER, NOTIFY, MESSAGE"
PASSED = ("Event", "Subscription-State", "Info-Package", "Recv-Info", "Refer-To",
          "Session-Expires")
"""Headers of in-dialog requests that cross with them (what the methods
need to mean the same on the other side)."""


FULL = "at its call limit"
"""The outcome of a trunk skipped because all its channels are taken."""


def fails_over(status: int) -> bool:
    """True when a final ``status`` from one attempt means: try the next
    (the far side is down, overloaded, redirecting or refused our
    credentials), rather than: tell the caller."""
    return status in (401, 407, 408) or 300 <= status < 400 or 500 <= status < 600


@attrs.frozen
class Attempt:
    """One way to place the outgoing leg."""

    dest: Destination
    uri: SipUri
    from_: NameAddr
    to: NameAddr
    extra: tuple[tuple[str, str], ...] = ()
    trunk: str = ""
    """The trunk tried (empty toward the platform)."""
    invite_timeout: float | None = None
    """Seconds without a provisional response before failing over."""
    authenticate: Authenticator | None = None
    contact: NameAddr | None = None
    """Our Contact on this attempt's transport (None: the call's)."""


class GatewayCallHost(Protocol):
    """What a gateway call needs from its gateway."""

    name: str
    user_agent: str

    def register_leg(self, leg: Leg) -> None:
        """Make the leg reachable for its in-dialog requests."""

    def unregister_leg(self, leg: Leg) -> None:
        """The leg is over."""

    def attempt_result(self, call: GatewayCall, attempt: Attempt, status: int,
                       reason: str) -> None:
        """How an attempt ended (0: answered)."""

    def call_ended(self, call: GatewayCall) -> None:
        """The call is over."""

    def call_later(self, delay: float, fn: Callable[[], object]) -> Any:
        """Run ``fn`` after ``delay`` seconds."""

    def claim_trunk(self, name: str) -> bool:
        """Take one of trunk ``name``'s channels; False when it is full."""

    def release_trunk(self, name: str) -> None:
        """Give back a channel taken with :meth:`claim_trunk`."""


class GatewayCall:
    """See the module docstring.  ``b_host``/``b_contact`` are where the
    outgoing legs live and what they say as Contact."""

    log = Logger()

    def __init__(self, host: GatewayCallHost, a_leg: IncomingLeg, attempts: Sequence[Attempt],
                 b_host: LegHost, b_contact: NameAddr, *, direction: str,
                 caller: str, callee: str, trunk: str = "") -> None:
        self.host = host
        self.a = a_leg
        a_leg.listener = self
        self.attempts = list(attempts)
        self.b_host = b_host
        self.b_contact = b_contact
        self.direction = direction
        self.caller = caller
        self.callee = callee
        self.call_id = a_leg.invite.call_id
        self.b: OutgoingLeg | None = None
        self.attempt: Attempt | None = None
        self.tried: list[tuple[str, str]] = []
        """(attempt, outcome) for each attempt so far."""
        self.state = "calling"
        self.start_time = time.time()
        self.answer_time: float | None = None
        self.end_reason = ""
        self._timer: Any = None
        self._ended = False
        self._trunk = trunk
        """The trunk whose channel this call holds (an inbound call's, or the
        current outbound attempt's); empty for none."""
        self._full: set[str] = set()
        """Trunks found without a free channel (their other addresses skipped)."""

    def __repr__(self) -> str:
        return f"<GatewayCall {self.direction} {self.caller} → {self.callee} {self.state}>"

    # -- attempts ---------------------------------------------------------------------------

    def start(self) -> None:
        """Place the first attempt (503 when there is none)."""
        self.host.register_leg(self.a)
        self._next()

    def _next(self) -> None:
        if self._ended:
            return
        attempt = self._next_attempt()
        if attempt is None:
            if self.tried and all(outcome == FULL for _, outcome in self.tried):
                self._refuse(503, "Service Unavailable (every trunk at its call limit)")
            else:
                self._refuse(503, "Service Unavailable (no trunk answered)" if self.tried
                             else "Service Unavailable (no route)")
            return
        self.attempt = attempt
        leg = OutgoingLeg(self.b_host, self, attempt.contact or self.b_contact)
        leg.authenticate = attempt.authenticate
        # an INVITE without offer: the far side offers in its 2xx and the
        # caller answers in its ACK, which our ACK must carry
        leg.hold_ack = not self.a.remote_sdp
        self.b = leg
        leg.invite_to(attempt.uri, attempt.dest, from_=attempt.from_, to=attempt.to,
                      body=self.a.remote_sdp, extra=attempt.extra,
                      user_agent=self.host.user_agent)
        self.host.register_leg(leg)
        if attempt.invite_timeout is not None:
            self._timer = self.host.call_later(attempt.invite_timeout, self._no_provisional)

    def _next_attempt(self) -> Attempt | None:
        """The next attempt whose trunk has a free channel (taken for it)."""
        while self.attempts:
            attempt = self.attempts.pop(0)
            if attempt.trunk and attempt.trunk != self._trunk:
                if attempt.trunk in self._full:
                    continue  # another address of a trunk found full
                self._release_trunk()
                if not self.host.claim_trunk(attempt.trunk):
                    self._full.add(attempt.trunk)
                    self.tried.append((attempt.trunk, FULL))
                    continue
                self._trunk = attempt.trunk
            return attempt
        return None

    def _release_trunk(self) -> None:
        if self._trunk:
            self.host.release_trunk(self._trunk)
            self._trunk = ""

    def _stop_timer(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None

    def _no_provisional(self) -> None:
        self._timer = None
        leg, attempt = self.b, self.attempt
        if leg is None or attempt is None or leg.provisional_seen or self._ended:
            return
        leg.abandon("no provisional response")
        self._failed_over(leg, attempt, 408, "no provisional response in "
                                             f"{attempt.invite_timeout:g} s")

    def _failed_over(self, leg: OutgoingLeg, attempt: Attempt, status: int,
                     reason: str) -> None:
        where = attempt.trunk or str(attempt.dest)
        self.tried.append((f"{where} ({attempt.dest})", f"{status} {reason}"))
        self.log.info("{gateway}: {call}: {where} at {dest} failed ({status} {reason}); "
                      "trying the next", gateway=self.host.name, call=repr(self), where=where,
                      dest=str(attempt.dest), status=status, reason=reason)
        self.host.attempt_result(self, attempt, status, reason)
        self.host.unregister_leg(leg)
        self.b = None
        self._next()

    # -- what the legs report -------------------------------------------------------------

    def leg_provisional(self, leg: OutgoingLeg, response: Response) -> None:
        if leg is not self.b or self._ended:
            return
        self._stop_timer()
        status = response.status if response.status != 100 else 180
        self.a.provisional(status, body=response.body, reason=response.reason)
        self.state = "early" if response.body else "ringing"

    def leg_answered(self, leg: OutgoingLeg, response: Response) -> None:
        if leg is not self.b or self._ended:
            leg.hangup("not wanted")
            return
        self._stop_timer()
        if self.attempt is not None:
            self.host.attempt_result(self, self.attempt, 0, "answered")
        self.a.answer(response.body)
        self.state = "answering"

    def leg_failed(self, leg: OutgoingLeg, response: Response) -> None:
        if leg is not self.b or self._ended:
            return
        self._stop_timer()
        attempt = self.attempt
        assert attempt is not None
        if fails_over(response.status):
            reason = response.reason
            if response.status in (401, 407):
                reason = f"{reason} (credentials refused or missing)"
            self._failed_over(leg, attempt, response.status, reason)
            return
        self.host.attempt_result(self, attempt, response.status, response.reason)
        self.host.unregister_leg(leg)
        self.b = None
        self._refuse(response.status, response.reason)

    def leg_confirmed(self, leg: IncomingLeg) -> None:
        if self._ended:
            return
        if self.b is not None:
            self.b.send_ack(leg.remote_sdp)
        self.answer_time = time.time()
        self.state = "answered"

    def leg_cancelled(self, leg: IncomingLeg) -> None:
        if self.b is not None:
            self.b.abandon("caller cancelled")
        self._end("caller cancelled")

    def leg_ended(self, leg: Leg, reason: str) -> None:
        other = self.b if leg is self.a else self.a
        if other is not None and not other.ended:
            if isinstance(other, OutgoingLeg):
                other.abandon(reason)
            elif other.state.value == "proceeding":
                other.reject(487 if leg is self.b else 500)
            else:
                other.hangup(reason)
        side = "caller" if leg is self.a else "callee"
        self._end(f"{side}: {reason}")

    def leg_request(self, leg: Leg, request: Request, txn: ServerTransaction) -> None:
        other = self.b if leg is self.a else self.a
        if request.method == "OPTIONS":
            leg.respond(request, txn, 200, extra=(("Allow", ALLOW),))
            return
        if other is None or other.ended or other.dialog is None:
            leg.respond(request, txn, 481)
            return
        content_type = request.headers.get("Content-Type")
        passed = tuple((name, value) for name in PASSED
                       for value in request.headers.get_all(name))
        # an offerless re-INVITE: the other side offers in its 2xx and the
        # answer comes in this side's ACK (leg_acked), which our ACK carries
        hold = request.method == "INVITE" and not request.body

        def answered(response: Response) -> None:
            if not leg.ended:
                leg.respond(request, txn, response.status, response.reason,
                            body=response.body,
                            content_type=response.headers.get("Content-Type"))

        other.request(request.method, body=request.body, content_type=content_type,
                      extra=passed, on_response=answered, hold_ack=hold)

    def leg_acked(self, leg: Leg, ack: Request) -> None:
        other = self.b if leg is self.a else self.a
        if other is not None and not other.ended:
            other.send_held_ack(ack.body)

    # -- ending -----------------------------------------------------------------------------

    def _refuse(self, status: int, reason: str) -> None:
        self.a.reject(status, reason)
        self._end(f"{status} {reason}")

    def hangup(self, reason: str) -> None:
        """End the call from here (shutdown)."""
        for leg in (self.a, self.b):
            if leg is not None and not leg.ended:
                if leg is self.a and leg.state.value == "proceeding":
                    self.a.reject(503)
                else:
                    leg.abandon(reason)
        self._end(reason)

    def _end(self, reason: str) -> None:
        if self._ended:
            return
        self._ended = True
        self._stop_timer()
        self._release_trunk()
        self.end_reason = reason
        self.state = "ended"
        for leg in (self.a, self.b):
            if leg is not None:
                self.host.unregister_leg(leg)
        let_go(self, self.a, self.b)
        self.host.call_ended(self)
