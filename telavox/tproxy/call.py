"""One call through a SIP server: an A leg, its B leg(s), their media
endpoints, forwarding, and the record of how it went.

Owns :class:`Call` (the :class:`~telavox.b2bua.leg.LegListener` of its legs)
and the :class:`CallHost` protocol (what a call needs from its SIP server).

Theory of operation.  The A leg's offer is answered from the A endpoint as
soon as both media endpoints exist (so a bad offer is refused at once with
488 or 400); the answer is held back and sent with the first 183 that
brings early media or with the 200.  The B leg is offered the B endpoint's
address with the codec the caller will send listed first, so media is
relayed without transcoding whenever the callee accepts it.  Then:

* B 180 → A 180; B 183 with SDP → media connected, A 183 with our answer;
* B 2xx → media connected, A 200; the call is answered when A's ACK comes;
* B 486/600 → the callee's ``forward_busy`` if any, else the status to A;
  other failures pass to A as they are (a 408/503 made up for a dead peer
  included); no answer within the timeout → CANCEL, then
  ``forward_no_answer`` or 480;
* CANCEL from A → CANCEL to B; BYE from either side → BYE to the other;
* a re-INVITE or UPDATE from one side (hold, resume, a new address) is
  answered from that side's endpoint at once and re-offered to the other
  side with the same direction, so each far end keeps its own view;
  INFO is passed across with its answer;
* REFER (blind transfer) → the transferee is connected to a new leg to the
  target, parked, or handed to a script; a target user who is busy or does
  not answer forwards it as a call (``forward_busy``, ``forward_no_answer``).

Every way the call ends goes through :meth:`Call.end`, which releases both
endpoints and writes one CDR.
"""

from __future__ import annotations

import time
import urllib.parse
from collections.abc import Callable
from typing import Any, Protocol

import attrs
from twisted.logger import Logger

from telavox.b2bua.endpoint import let_go
from telavox.b2bua.leg import SDP, IncomingLeg, Leg, LegHost, OutgoingLeg
from telavox.config.model import UserConfig
from telavox.interfaces import IMediaServer, MediaError
from telavox.records import (
    CdrRecord,
    MediaDirection,
    MediaEndpoint,
    MediaEvent,
    PlaySource,
    new_correlation_id,
)
from telavox.sip.hdrtypes import HeaderError, NameAddr
from telavox.sip.message import Request, Response
from telavox.sip.sdp import MediaCapabilities
from telavox.sip.transaction import Destination, ServerTransaction
from telavox.sip.uri import SipUri
from telavox.tproxy.dialplan import Route, RouteKind
from telavox.tproxy.media import (
    LocalSession,
    SdpProblemError,
    answer_offer,
    make_offer,
    media_kinds,
    parse_body,
    remote_from_answer,
    video_caps,
)
from telavox.tproxy.parking import ParkingLot
from telavox.tproxy.sessiontimer import SessionTimer, negotiate

__all__ = ["Call", "CallHost", "Handover"]


@attrs.frozen
class Handover:
    """A party of a call given to a script, as it is: ``leg`` (the caller
    forwarded to voicemail, or a transferee), who it is (``caller``, a user
    of ours or None, and ``caller_uri``), the number that chose the script
    (``dialled``, with ``route``), and its media: ``endpoint``, ``session``,
    ``answer`` (our SDP for it; our offer with ``late_offer``, when its
    INVITE had none) and ``codec``.  ``answered``: the party is already in
    an answered dialog (a transfer), so the script's ANSWER has nothing to do."""

    leg: IncomingLeg | OutgoingLeg
    caller: UserConfig | None
    caller_uri: NameAddr
    dialled: str
    route: Route
    endpoint: MediaEndpoint
    session: LocalSession
    answer: bytes
    codec: str
    late_offer: bool = False
    answered: bool = False


class CallHost(Protocol):
    """What a call needs from the SIP server it runs on."""

    name: str
    legs: LegHost
    media: IMediaServer
    domain: str
    no_answer_timeout: float
    max_forward_hops: int
    user_agent: str
    media_address: str
    music_on_hold: PlaySource | None
    carrier_media_address: str
    parking: ParkingLot[Call] | None
    park_timeout: float

    def user(self, extension: str) -> UserConfig | None:
        """The configured user with ``extension``."""

    def route(self, caller: UserConfig | None, dialled: str) -> Route:
        """The dial plan's answer for ``dialled``."""

    def route_destinations(self, route: Route) -> list[Destination]:
        """Where a B leg for ``route`` may be sent, in failover order
        (sipproxy for users; the gateways tlb names for external numbers);
        empty when nothing can carry it."""

    def contact(self) -> NameAddr:
        """Our Contact for new dialogs."""

    def passed_headers(self, request: Request) -> tuple[tuple[str, str], ...]:
        """The headers of ``request`` the policy lets cross to the other leg."""

    def register_leg(self, leg: Leg) -> None:
        """Index ``leg`` so in-dialog requests reach it."""

    def find_leg(self, call_id: str, local_tag: str) -> Leg | None:
        """The live leg with that dialog (Call-ID and our tag), any call."""

    def unregister_leg(self, leg: Leg) -> None:
        """Forget ``leg``."""

    def call_ended(self, call: Call, cdr: CdrRecord) -> None:
        """The call is over: store its CDR, drop it from the tables."""

    def publish(self, call: Call, what: str) -> None:
        """Publish a call event (created, ringing, answered, held, ended...)."""

    def call_later(self, delay: float, fn: Callable[[], object]) -> Any:
        """Run ``fn`` after ``delay`` seconds; returns an IDelayedCall."""

    def prompt(self, name: str) -> str | None:
        """The WAV file of the prompt ``name`` (``park-slot``, ``digits/7``)."""

    def hand_over(self, handover: Handover) -> bool:
        """Let the script of ``handover.route`` take over ``handover.leg``
        with its media; False when no scriptserver can."""


class Call:
    """One call: see the module docstring."""

    log = Logger()

    def __init__(self, host: CallHost, a_leg: IncomingLeg, caller: UserConfig | None,
                 caller_uri: NameAddr, dialled: str,
                 session_timer: SessionTimer | None = None, *,
                 from_carrier: bool = False) -> None:
        self.host = host
        self.incoming = a_leg
        """The INVITE that started the call (answered, rejected or cancelled here)."""
        self.a: Leg = a_leg
        """The caller's side; after a transfer, the transferee."""
        self.b: Leg | None = None
        """The callee's side; after a transfer, the transfer target."""
        self.transfer: Transfer | None = None
        self.caller = caller
        self.caller_uri = caller_uri
        self.dialled = dialled
        self.callee = dialled
        self.correlation_id = new_correlation_id()
        self.call_id = a_leg.invite.call_id
        self.start_time = time.time()
        self.answer_time: float | None = None
        self.state = "new"
        self.codec = ""
        self.hops = 0
        self.a_endpoint: MediaEndpoint | None = None
        self.b_endpoint: MediaEndpoint | None = None
        self.a_session = LocalSession(host.carrier_media_address if from_carrier
                                      else host.media_address)
        """The caller's side of the media: the carrier-facing address when
        the call came in through a gateway."""
        self.b_session = LocalSession(host.media_address)
        self.a_answer = b""
        """Our SDP for the caller: the answer to its offer, or our offer when
        its INVITE had none (``late_offer``)."""
        self.late_offer = False
        self.kinds: tuple[str, ...] = ("audio",)
        """Media kinds of the call's endpoints (video when the caller offered it)."""
        self.video: MediaCapabilities | None = None
        """The caller's video formats, offered on to the other side as they are."""
        self.session_timer = session_timer
        """The RFC 4028 session timer agreed with the caller, if it asked."""
        self._session_deadline: Any = None
        self.media_connected = False
        self.a_held = False
        self._no_answer: Any = None
        self.route: Route | None = None
        self._moh: set[str] = set()
        """Endpoints hearing the music on hold now."""
        self._spare: list[Destination] = []
        """Gateways still to try when the current one answers 503/408/500."""
        self.parked_in: str | None = None
        """The park slot the caller (``a``) waits in, if parked."""
        self.parker: str | None = None
        """The user rung back when nobody retrieves the parked call."""
        self.a_identity: NameAddr | None = None
        """Who ``a`` is once a transfer made it the transferee (parked)."""
        self._lot: ParkingLot[Call] | None = None
        self._park_timer: Any = None
        self._announcing: list[str] | None = None
        """Prompts still to play before the music (the slot announcement)."""
        self._ended = False
        a_leg.listener = self
        a_leg.user_data = self

    def __repr__(self) -> str:
        return f"<Call {self.call_id} {self.caller_uri.uri} → {self.callee} {self.state}>"

    # -- start --------------------------------------------------------------------------

    def start(self, route: Route) -> None:
        """Run the call toward ``route`` (a USER or EXTERNAL route)."""
        self.host.register_leg(self.a)
        self.host.publish(self, "created")
        try:
            offer = parse_body(self.a.remote_sdp) if self.a.remote_sdp else None
        except SdpProblemError as e:
            self._refuse(e.status, e.reason)
            return
        media = self.host.media

        def got_a(endpoint: MediaEndpoint) -> Any:
            self.a_endpoint = endpoint
            if self._ended:
                self._release()
                return None
            return media.allocate(self.call_id, self.kinds).addCallback(got_b)

        def got_b(endpoint: MediaEndpoint) -> None:
            self.b_endpoint = endpoint
            if self._ended:
                self._release()
                return
            assert self.a_endpoint is not None
            if offer is None:
                # a late offer (RFC 3261 §13.2.1): our offer goes in the 200
                # and the caller's answer comes in the ACK
                self.late_offer = True
                self.a_answer = make_offer(self.a_endpoint, self.a_session)
                self._dial(route)
                return
            try:
                body, streams, codec = answer_offer(offer, self.a_endpoint, self.a_session,
                                                    self._signalling_address(self.incoming))
            except SdpProblemError as e:
                self._refuse(e.status, e.reason)
                return
            self.a_answer = body
            self.codec = codec
            self._quietly(media.set_remote(self.a_endpoint.endpoint_id, streams), "set_remote")
            self._dial(route)

        def failed(failure: Any) -> None:
            error = failure.value
            if isinstance(error, MediaError):
                self._refuse(error.status, f"Service Unavailable ({error.reason})")
            else:
                self.log.failure("call setup failed for {call}", failure, call=repr(self))
                self._refuse(500, "Server Internal Error")

        if offer is not None:
            self.kinds = media_kinds(offer)
            self.video = video_caps(offer)
        media.allocate(self.call_id, self.kinds).addCallback(got_a).addErrback(failed)

    def _signalling_address(self, leg: Leg) -> str | None:
        request = leg.invite if isinstance(leg, IncomingLeg) else None
        if request is None:
            return None
        via = request.top_via
        return via.param("received") or via.host

    def _refuse(self, status: int, reason: str) -> None:
        self.incoming.reject(status, reason)
        self.end(f"{status} {reason}", disposition=_disposition(status))

    # -- the B leg ----------------------------------------------------------------------

    def _dial(self, route: Route) -> None:
        if route.kind is RouteKind.REJECT:
            self._refuse(route.status, route.reason)
            return
        if route.kind is RouteKind.SCRIPT:
            # forwarded to a script (voicemail, an IVR): it takes the caller over
            self._hand_over(route)
            return
        if route.kind is RouteKind.PARK:
            self._park_caller(route.target)
            return
        user = self.host.user(route.target) if route.kind is RouteKind.USER else None
        if user is not None and user.forward_always and self.hops < self.host.max_forward_hops:
            self._forward(user.forward_always)
            return
        dests = self.host.route_destinations(route)
        if not dests:
            self._refuse(503, "Service Unavailable (no route)")
            return
        self._spare = dests[1:] if route.kind is RouteKind.EXTERNAL else []
        self._invite_b(route, dests[0], user)

    def _invite_b(self, route: Route, dest: Destination, user: UserConfig | None) -> None:
        assert self.b_endpoint is not None
        self.route = route
        self.callee = route.target
        leg, self.b_session = place_b_leg(
            self.host, self, route, dest, self.b_endpoint, caller_user=self._caller_user(),
            display_name=self.caller.name if self.caller and self.caller.name
            else self.caller_uri.display_name,
            extra=self.host.passed_headers(self.incoming.invite),
            privacy=self.incoming.invite.headers.get("Privacy"), codec=self.codec,
            video=self.video)
        leg.user_data = self
        self.b = leg
        self.state = "calling"
        timeout = (user.no_answer_after if user is not None and user.no_answer_after
                   else self.host.no_answer_timeout)
        self._cancel_no_answer()
        self._no_answer = self.host.call_later(timeout, self._on_no_answer)

    def picked_up(self, leg: IncomingLeg, picker: str) -> None:
        """A colleague picked the ringing call up with ``leg`` (its INVITE):
        the callee's leg is cancelled, the picker is answered from the B
        endpoint and the caller from its own; the call goes on between the
        two."""
        b_endpoint = self.b_endpoint
        if b_endpoint is None or self.a_endpoint is None or self._ended:
            leg.reject(480, "Temporarily Unavailable (no call to pick up)")
            return
        session = LocalSession(self.host.media_address)
        try:
            offer = parse_body(leg.remote_sdp) if leg.remote_sdp else None
            if offer is None:
                raise SdpProblemError(488, "Not Acceptable Here (pickup needs an offer)")
            body, streams, _ = answer_offer(offer, b_endpoint, session,
                                            self._signalling_address(leg), prefer=self.codec)
        except SdpProblemError as e:
            leg.reject(e.status, e.reason)
            return
        self._cancel_no_answer()
        old = self.b
        if old is not None:
            old.abandon("picked up")
            self.host.unregister_leg(old)
        leg.listener = self
        leg.user_data = self
        self.b, self.b_session = leg, session
        self.host.register_leg(leg)
        media = self.host.media
        self._quietly(media.set_remote(b_endpoint.endpoint_id, streams), "set_remote")
        self._quietly(media.connect(self.a_endpoint.endpoint_id, b_endpoint.endpoint_id), "connect")
        self.media_connected = True
        self.callee = picker
        leg.answer(body)
        self.incoming.answer(self.a_answer, extra=self._timer_headers(self.session_timer))
        self.state = "answering"

    def _hand_over(self, route: Route) -> None:
        """Give the caller, its endpoint and answer to a script; the call
        itself ends here without a CDR of its own (the script's counts)."""
        if self.a_endpoint is None:
            self._refuse(500, "Server Internal Error (no media to hand over)")
            return
        endpoint, self.a_endpoint = self.a_endpoint, None
        self._ended = True
        self._cancel_no_answer()
        self._release()
        if not self.host.hand_over(Handover(
                leg=self.incoming, caller=self.caller, caller_uri=self.caller_uri,
                dialled=self.callee, route=route, endpoint=endpoint, session=self.a_session,
                answer=self.a_answer, codec=self.codec, late_offer=self.late_offer)):
            self.a_endpoint = endpoint
            self._ended = False
            self._refuse(501, f"Not Implemented (no scriptserver for {route.target})")

    def _caller_user(self) -> str:
        if self.caller is not None:
            return self.caller.extension
        uri = self.caller_uri.uri
        return uri.user if isinstance(uri, SipUri) and uri.user else "anonymous"

    def _forward(self, number: str) -> None:
        self.hops += 1
        self.log.info("{call}: forwarded to {number}", call=repr(self), number=number)
        route = self.host.route(self.caller, number)
        self._dial(route)

    def _on_no_answer(self) -> None:
        self._no_answer = None
        b = self.b
        if b is None or b.ended or self._ended:
            return
        b.abandon("no answer")
        user = self.host.user(self.callee)
        if user is not None and user.forward_no_answer and self.hops < self.host.max_forward_hops:
            self.host.unregister_leg(b)
            self.b = None
            self._forward(user.forward_no_answer)
            return
        self._refuse(480, "Temporarily Unavailable (no answer)")

    def _cancel_no_answer(self) -> None:
        if self._no_answer is not None and self._no_answer.active():
            self._no_answer.cancel()
        self._no_answer = None

    # -- what the legs report -------------------------------------------------------------

    def leg_provisional(self, leg: OutgoingLeg, response: Response) -> None:
        if self.transfer is not None and leg is self.transfer.leg:
            self._transfer_progress(response)
            return
        if leg is not self.b or self._ended:
            return
        if response.body and not self.late_offer and self._connect_b(response.body):
            self.incoming.provisional(183, body=self.a_answer)
            self.state = "early"
        elif response.status == 180 or (response.status == 183 and not response.body):
            self.incoming.provisional(180)
            self.state = "ringing"
            self.host.publish(self, "ringing")

    def _connect_b(self, body: bytes) -> bool:
        """Take the B side's answer; False (and the call refused) when unusable."""
        if self.a_endpoint is None or self.b_endpoint is None:
            return False
        if self.media_connected:
            return True
        try:
            streams = remote_from_answer(self.b_session, body, None, self.b_endpoint)
        except SdpProblemError as e:
            self.log.info("{call}: unusable answer from the callee: {reason}",
                          call=repr(self), reason=e.reason)
            if self.b is not None:
                self.b.abandon("bad SDP")
            self._refuse(502, "Bad Gateway (unusable SDP from the callee)")
            return False
        media = self.host.media
        self._quietly(media.set_remote(self.b_endpoint.endpoint_id, streams), "set_remote")
        self._quietly(media.connect(self.a_endpoint.endpoint_id, self.b_endpoint.endpoint_id),
                      "connect")
        self.media_connected = True
        return True

    def leg_answered(self, leg: OutgoingLeg, response: Response) -> None:
        if self.transfer is not None and leg is self.transfer.leg and not self._ended:
            self._transfer_answered(response)
            return
        if leg is not self.b or self._ended:
            leg.hangup("not wanted")
            return
        self._cancel_no_answer()
        if not self._connect_b(response.body):
            return
        self.incoming.answer(self.a_answer, extra=self._timer_headers(self.session_timer))
        self.state = "answering"

    def leg_failed(self, leg: OutgoingLeg, response: Response) -> None:
        if self.transfer is not None and leg is self.transfer.leg:
            self._transfer_failed(response)
            return
        if leg is not self.b or self._ended:
            return
        self._cancel_no_answer()
        self.host.unregister_leg(leg)
        self.b = None
        if self._spare and response.status in (408, 500, 503):
            # that gateway could not carry it: the next one tlb named
            self.log.info("{call}: gateway answered {status}; trying the next",
                          call=repr(self), status=response.status)
            assert self.route is not None
            self._invite_b(self.route, self._spare.pop(0), None)
            return
        user = self.host.user(self.callee)
        if (response.status in (486, 600) and user is not None and user.forward_busy
                and self.hops < self.host.max_forward_hops):
            self._forward(user.forward_busy)
            return
        self._refuse(response.status, response.reason)

    def leg_confirmed(self, leg: IncomingLeg) -> None:
        if self._ended or leg is not self.incoming:
            return
        if self.late_offer and not self._late_answer(leg.remote_sdp):
            return
        self.answer_time = time.time()
        self._arm_session_timer()
        if self.parked_in is not None:
            self.state = "parked"
            self._announce_slot()
            return
        self.state = "answered"
        self.host.publish(self, "answered")

    def _late_answer(self, body: bytes) -> bool:
        """The caller's answer (in the ACK) to the offer of our 200."""
        if self.a_endpoint is None:
            return False
        try:
            streams = remote_from_answer(self.a_session, body,
                                         self._signalling_address(self.incoming),
                                         self.a_endpoint)
        except SdpProblemError as e:
            self.log.info("{call}: unusable answer in the caller's ACK: {reason}",
                          call=repr(self), reason=e.reason)
            self.hangup("bad SDP in ACK")
            return False
        self._quietly(self.host.media.set_remote(self.a_endpoint.endpoint_id, streams),
                      "set_remote")
        if streams and streams[0].formats:
            self.codec = streams[0].formats[0].name
        return True

    def leg_cancelled(self, leg: IncomingLeg) -> None:
        if leg is not self.incoming:
            return  # a retriever gave up before its answer: the call stays parked
        if self.b is not None:
            self.b.abandon("caller cancelled")
        self.end("caller cancelled", disposition="cancelled")

    def leg_ended(self, leg: Leg, reason: str) -> None:
        transfer = self.transfer
        if transfer is not None:
            if leg is transfer.leg:
                self._transfer_failed(None)
                return
            if leg is transfer.transferor:
                # the transferor hung up while the target rings: the
                # transfer goes on, the transferee hears the target
                transfer.transferor_gone = True
                return
        other = self._other(leg)
        if other is not None:
            if isinstance(other, OutgoingLeg):
                other.abandon(reason)
            elif isinstance(other, IncomingLeg) and other.state.value == "proceeding":
                other.reject(487 if leg is self.b else 500)
            else:
                other.hangup(reason)
        side = "caller" if leg is self.a else "callee"
        self.end(f"{side}: {reason}", disposition="answered" if self.answer_time else "failed")

    def media_event(self, event: MediaEvent) -> None:
        """What the mediaserver saw on one of the call's endpoints: no RTP
        for its inactivity timeout ends the call."""
        if event.kind == "inactive":
            self.log.info("{call}: ended: no RTP", call=repr(self))
            self.hangup("RTP timeout")
        elif (event.kind == "play_done" and event.detail == "finished"
              and self._announcing is not None and self.a_endpoint is not None
              and event.endpoint_id == self.a_endpoint.endpoint_id):
            self._next_announcement()

    def leg_acked(self, leg: Leg, ack: Request) -> None:
        """The ACK of a re-INVITE's 2xx: each side's media was settled when
        its re-INVITE was answered, so there is nothing to do."""

    def _quietly(self, request: Any, what: str) -> None:
        """Log, rather than leave unhandled, a media request refused because
        its endpoint has gone: the call ended while, say, the answer to a
        re-INVITE or a transfer's media was on its way.  Other failures are
        left unhandled, so that they still show."""

        def gone(failure: Any) -> None:
            failure.trap(MediaError)
            self.log.info("{call}: media {what} refused: {error}", call=repr(self),
                          what=what, error=failure.getErrorMessage())

        request.addErrback(gone)

    def _other(self, leg: Leg) -> Leg | None:
        if leg is self.a:
            return self.b
        return self.a

    def leg_request(self, leg: Leg, request: Request, txn: ServerTransaction) -> None:
        method = request.method
        if method in ("INVITE", "UPDATE"):
            self._session_change(leg, request, txn)
        elif method == "INFO":
            self._pass_across(leg, request, txn)
        elif method == "REFER":
            self._refer(leg, request, txn)
        elif method == "OPTIONS":
            leg.respond(request, txn, 200, extra=(("Allow", ALLOW),))
        else:
            leg.respond(request, txn, 501, extra=(("Allow", ALLOW),))

    def _pass_across(self, leg: Leg, request: Request, txn: ServerTransaction) -> None:
        other = self._other(leg)
        if other is None or other.ended or other.dialog is None:
            leg.respond(request, txn, 481)
            return
        content_type = request.headers.get("Content-Type")

        def answered(response: Response) -> None:
            leg.respond(request, txn, response.status, response.reason, body=response.body,
                        content_type=response.headers.get("Content-Type"))

        other.request(request.method, body=request.body, content_type=content_type,
                      extra=self.host.passed_headers(request), on_response=answered)

    def _session_change(self, leg: Leg, request: Request, txn: ServerTransaction) -> None:
        """A re-INVITE/UPDATE from ``leg``: answered from its endpoint, then
        re-offered to the other side in the same direction."""
        mine, session, theirs, their_session = self._sides(leg)
        if mine is None:
            leg.respond(request, txn, 500, "Server Internal Error (no media)")
            return
        if not request.body:
            # an offerless re-INVITE (or a bare UPDATE refreshing the session):
            # our current description is the offer
            body = session.last
            extra = self._refreshed(leg, request)
            if request.method == "UPDATE":
                leg.respond(request, txn, 200, extra=extra)
            else:
                leg.respond(request, txn, 200, body=b"" if body is None else
                            session.stamp(body), content_type=SDP, extra=extra)
            return
        try:
            offer = parse_body(request.body)
            answer, streams, _codec = answer_offer(offer, mine, session,
                                                   self._signalling_address(leg))
        except SdpProblemError as e:
            leg.respond(request, txn, e.status, e.reason)
            return
        self._quietly(self.host.media.set_remote(mine.endpoint_id, streams), "set_remote")
        extra = self._refreshed(leg, request)
        leg.respond(request, txn, 200, body=answer, content_type=SDP, extra=extra)
        direction = streams[0].direction if streams else MediaDirection.SENDRECV
        held = not direction.receives
        if leg is self.a and held != self.a_held:
            self.a_held = held
            self.host.publish(self, "held" if held else "resumed")
        if theirs is None:
            return  # parked: nobody on the other side to tell
        self._music_on_hold(theirs, held)
        other = self._other(leg)
        if other is None or other.ended or other.dialog is None:
            return
        reoffer = make_offer(theirs, their_session, prefer=self.codec or None,
                             direction=direction, video=self.video)

        def answered(response: Response) -> None:
            if response.success and response.body:
                try:
                    remote = remote_from_answer(their_session, response.body, None, theirs)
                except SdpProblemError:
                    return
                self._quietly(self.host.media.set_remote(theirs.endpoint_id, remote), "set_remote")

        other.request("INVITE", body=reoffer, content_type=SDP, on_response=answered)

    def _music_on_hold(self, endpoint: MediaEndpoint, held: bool) -> None:
        """Play (or stop) the music on hold to the party whose peer holds."""
        source = self.host.music_on_hold
        if source is None:
            return
        media = self.host.media
        if held and endpoint.endpoint_id not in self._moh:
            self._moh.add(endpoint.endpoint_id)
            media.play(endpoint.endpoint_id, source).addErrback(
                lambda f: self.log.info("{call}: no music on hold: {error}", call=repr(self),
                                        error=f.getErrorMessage()))
        elif not held and endpoint.endpoint_id in self._moh:
            self._moh.discard(endpoint.endpoint_id)
            media.stop_play(endpoint.endpoint_id).addErrback(lambda f: None)

    def _sides(self, leg: Leg) -> tuple[MediaEndpoint | None, LocalSession,
                                        MediaEndpoint | None, LocalSession]:
        if leg is self.a:
            return self.a_endpoint, self.a_session, self.b_endpoint, self.b_session
        return self.b_endpoint, self.b_session, self.a_endpoint, self.a_session

    def _set_endpoint(self, leg: Leg, endpoint: MediaEndpoint | None) -> None:
        """Make ``endpoint`` the one of ``leg``'s side (None: the side's
        endpoint has gone elsewhere)."""
        if leg is self.a:
            self.a_endpoint = endpoint
        else:
            self.b_endpoint = endpoint

    # -- session timer (RFC 4028) -------------------------------------------------------------

    @staticmethod
    def _timer_headers(timer: SessionTimer | None) -> tuple[tuple[str, str], ...]:
        if timer is None:
            return ()
        extra: tuple[tuple[str, str], ...] = (("Session-Expires", timer.header),)
        if timer.refresher == "uac":
            extra += (("Require", "timer"),)
        return extra

    def _refreshed(self, leg: Leg, request: Request) -> tuple[tuple[str, str], ...]:
        """A re-INVITE/UPDATE from the caller refreshes its session timer."""
        if leg is not self.incoming or self.session_timer is None:
            return ()
        agreed = negotiate(request)
        if isinstance(agreed, SessionTimer):
            self.session_timer = agreed
        self._arm_session_timer()
        return self._timer_headers(self.session_timer)

    def _arm_session_timer(self) -> None:
        timer = self.session_timer
        if timer is None or self._ended:
            return
        if self._session_deadline is not None and self._session_deadline.active():
            self._session_deadline.cancel()
        if timer.refresher == "uac":
            self._session_deadline = self.host.call_later(timer.expiry, self._session_expired)
        else:
            self._session_deadline = self.host.call_later(timer.refresh_after,
                                                          self._refresh_session)

    def _session_expired(self) -> None:
        self._session_deadline = None
        if not self._ended:
            self.log.info("{call}: session timer expired", call=repr(self))
            self.hangup("session timer expired")

    def _refresh_session(self) -> None:
        """We are the refresher: a re-INVITE with our unchanged description."""
        self._session_deadline = None
        leg, timer = self.incoming, self.session_timer
        if self._ended or leg.ended or timer is None or self.a_session.last is None:
            return
        body = self.a_session.stamp(self.a_session.last)

        def answered(response: Response) -> None:
            if response.success:
                self._arm_session_timer()
            elif response.status not in (491,):
                self.hangup("session refresh failed")

        leg.request("INVITE", body=body, content_type=SDP,
                    extra=(("Session-Expires", timer.header),), on_response=answered)

    # -- transfer (RFC 3515 REFER, blind) ----------------------------------------------------

    def _refer(self, leg: Leg, request: Request, txn: ServerTransaction) -> None:
        """REFER from ``leg``: its peer (the transferee) is connected to the
        Refer-To target once the target answers (RFC 3515, blind transfer);
        the transferor hears of progress through NOTIFY with sipfrag."""
        refer_to = request.headers.get("Refer-To")
        target = _refer_target(refer_to)
        transferee = self._other(leg)
        if not self.answer_time or transferee is None or transferee.ended:
            leg.respond(request, txn, 403, "Forbidden (no answered call to transfer)")
            return
        if self.transfer is not None:
            leg.respond(request, txn, 491, "Request Pending")
            return
        if target is None:
            leg.respond(request, txn, 400, "Bad Request (Refer-To)")
            return
        replaces = _replaces(refer_to)
        if replaces is not None:
            self._attended(leg, request, txn, transferee, replaces)
            return
        transferor_user = self._user_of(leg)
        route = self.host.route(transferor_user, target)
        leg.respond(request, txn, 202, "Accepted")
        if route.kind is RouteKind.PARK:
            self._park_transferee(leg, transferee, route.target, transferor_user)
            return
        if route.kind is RouteKind.SCRIPT:
            self._transfer_to_script(leg, transferee, route)
            return
        self._transfer_to(leg, transferee, target, route, _referred_by(request),
                          router=transferor_user)

    def _transfer_to_script(self, transferor: Leg | None, transferee: Leg,
                            route: Route) -> bool:
        """A blind transfer to a script number homed here (voicemail, an
        IVR, a conference; REFER already accepted): the transferee goes on in
        the script with its own endpoint, the transferor is let go, and the
        call ends here ("transferred", its CDR written).  Without a
        scriptserver the transfer fails with 501 and the transferor keeps
        its call.  True when the script took the transferee."""
        mine, session, _theirs, _ = self._sides(transferee)
        if mine is None or not isinstance(transferee, (IncomingLeg, OutgoingLeg)):
            self._notify(transferor, 500, "Server Internal Error", final=True)
            return False
        held = mine.endpoint_id in self._moh
        self._music_on_hold(mine, False)  # before the script's first prompt
        handover = Handover(
            leg=transferee, caller=self._user_of(transferee),
            caller_uri=self._identity_of(transferee), dialled=route.number or route.target,
            route=route, endpoint=mine, session=session,
            answer=session.stamp(session.last) if session.last is not None else b"",
            codec=self.codec, answered=True)
        self._set_endpoint(transferee, None)
        if not self.host.hand_over(handover):
            self._set_endpoint(transferee, mine)
            self._music_on_hold(mine, held)  # the transferee stays held as it was
            self._notify(transferor, 501, f"Not Implemented (no scriptserver for {route.target})",
                         final=True)
            return False
        self.log.info("{call}: transferred to script {app}", call=repr(self), app=route.target)
        self._resume(transferee, mine, session)  # the transferor held it before the REFER
        self._notify(transferor, 200, "OK", final=True)
        if transferor is not None and not transferor.ended:
            transferor.hangup("transferred")
        self.end("transferred", disposition="answered")
        return True

    def _user_of(self, leg: Leg) -> UserConfig | None:
        """The user on the far end of ``leg`` (None: an outside party)."""
        if leg is self.a:
            if leg is self.incoming:
                return self.caller
            uri = self.a_identity.uri if self.a_identity is not None else None
            return self.host.user(uri.user) if isinstance(uri, SipUri) and uri.user else None
        return self.host.user(self.callee) if leg is self.b else None

    def _transfer_to(self, transferor: Leg | None, transferee: Leg, target: str,
                     route: Route, referred_by: str | None, *,
                     router: UserConfig | None = None, hops: int = 0) -> None:
        """Call ``target`` (by ``route``) for ``transferee`` and connect the
        two when it answers; ``transferor`` (None: nobody, e.g. a parked
        call ringing its parker back) hears of progress by NOTIFY.  A target
        user who is busy or does not answer forwards the transfer as it
        would a call (``forward_busy``, ``forward_no_answer``, routed with
        ``router``'s rights, at most ``max_forward_hops`` times)."""
        self.transfer = Transfer(transferor=transferor, transferee=transferee, target=target,
                                 transferor_gone=transferor is None, referred_by=referred_by,
                                 router=router, hops=hops)
        self._notify(transferor, 100, "Trying", final=False)
        if route.kind is RouteKind.REJECT:
            self._transfer_failed(None, route.status, route.reason)
            return
        dests = self.host.route_destinations(route)
        if not dests:
            self._transfer_failed(None, 503, "Service Unavailable")
            return
        dest = dests[0]

        def allocated(endpoint: MediaEndpoint) -> None:
            transfer = self.transfer
            if transfer is None or self._ended:
                self.host.media.release(endpoint.endpoint_id).addErrback(lambda f: None)
                return
            transfer.endpoint = endpoint
            session = transfer.session = LocalSession(self.host.media_address)
            z = OutgoingLeg(self.host.legs, self, self.host.contact())
            z.user_data = self
            transfer.leg = z
            uri = SipUri(user=route.target, host=self.host.domain)
            offer = make_offer(endpoint, session, prefer=self.codec or None, video=self.video)
            extra: tuple[tuple[str, str], ...] = (
                (("Referred-By", referred_by),) if referred_by else ())
            identity = self._identity_of(transferee)
            if route.kind is RouteKind.ELSEWHERE:
                # the SIP server that is home to the target trusts us to say who
                extra += (("P-Asserted-Identity", str(NameAddr(uri=identity.uri))),)
            z.invite_to(uri, dest, from_=identity, to=NameAddr(uri=uri),
                        body=offer, extra=extra, user_agent=self.host.user_agent)
            self.host.register_leg(z)
            transfer.timer = self.host.call_later(self.host.no_answer_timeout,
                                                  self._transfer_timeout)

        def failed(failure: Any) -> None:
            error = failure.value
            status = error.status if isinstance(error, MediaError) else 500
            self._transfer_failed(None, status, "Service Unavailable")

        self.host.media.allocate(self.call_id, self.kinds).addCallbacks(allocated, failed)

    def _attended(self, leg: Leg, request: Request, txn: ServerTransaction, transferee: Leg,
                  replaces: tuple[str, str, str]) -> None:
        """REFER with Replaces (RFC 3891, RFC 5589 §7): the transferor, who
        has a call with the transferee here and another one with the target,
        asks that the two far ends be joined.  Both of the transferor's legs
        end; the transferee's and the target's endpoints are connected, and
        this call goes on between them (the other call ends as replaced)."""
        call_id, to_tag, from_tag = replaces
        replaced = self.host.find_leg(call_id, to_tag)
        other_call = replaced.user_data if replaced is not None else None
        if (replaced is None or not isinstance(other_call, Call) or other_call is self
                or other_call._ended or replaced.dialog is None
                or (from_tag and replaced.dialog.remote_tag != from_tag)):
            leg.respond(request, txn, 481, "Call/Transaction Does Not Exist (Replaces)")
            return
        if other_call.parked_in is not None and replaced is other_call.a:
            # the transferor parked itself (it called the lot) and now hands
            # the transferee over: the transferee takes its slot
            slot = other_call.parked_in
            other_call._unpark()
            other_call.hangup("replaced")
            leg.respond(request, txn, 202, "Accepted")
            self._notify(leg, 200, "OK", final=True)
            parker = self._user_of(leg)
            self._leave_parked(leg, transferee, slot, parker.extension if parker else None)
            return
        target_leg = other_call._other(replaced)
        if target_leg is None or target_leg.ended or not other_call.answer_time:
            leg.respond(request, txn, 481, "Call/Transaction Does Not Exist (Replaces)")
            return
        callee = (other_call.callee if target_leg is other_call.b
                  else other_call._caller_user())
        target_leg.listener = self
        target_leg.user_data = self
        target_endpoint, target_session = other_call.detach(target_leg)
        mine, my_session, _, _ = self._sides(transferee)
        leg.respond(request, txn, 202, "Accepted")
        self._notify(leg, 100, "Trying", final=False)
        if mine is not None and target_endpoint is not None:
            self._quietly(self.host.media.connect(mine.endpoint_id, target_endpoint.endpoint_id),
                          "connect")
        self._notify(leg, 200, "OK", final=True)
        old = self._sides(leg)[0]
        leg.hangup("transferred")
        self.host.unregister_leg(leg)
        if old is not None:
            self.host.media.release(old.endpoint_id).addErrback(lambda f: None)
        self.a, self.a_endpoint, self.a_session = transferee, mine, my_session
        self.b, self.b_endpoint, self.b_session = target_leg, target_endpoint, target_session
        self.callee = callee
        self.host.publish(self, "transferred")
        for side in (self.a, self.b):
            self._resume(side)

    # -- parking ----------------------------------------------------------------------------

    def _park_caller(self, number: str) -> None:
        """The caller dialled the park lot: it is answered and waits in the
        first free slot, hearing it and then the music on hold.  A slot
        dialled with nothing parked in it is 480 (someone was too late to
        take a call back, and must not be parked instead)."""
        lot = self.host.parking
        if lot is None or number != lot.lot:
            self._refuse(480, f"Temporarily Unavailable (nothing parked at {number})")
            return
        slot = lot.slot_for(number)
        if slot is None:
            self._refuse(486, "Busy Here (no free park slot)")
            return
        if self.b_endpoint is not None:
            self.host.media.release(self.b_endpoint.endpoint_id).addErrback(lambda f: None)
            self.b_endpoint = None
        self.incoming.answer(self.a_answer, extra=self._timer_headers(self.session_timer))
        self.state = "answering"
        self._park(slot, self.parker)  # announced once the caller's ACK comes

    def _park_transferee(self, transferor: Leg, transferee: Leg, number: str,
                         parker: UserConfig | None) -> None:
        """A blind transfer to the park lot or a slot (REFER already
        accepted): the transferee is parked and the transferor let go; a
        full lot or a taken slot fails the transfer with 486, and the
        transferor keeps its call."""
        lot = self.host.parking
        slot = lot.slot_for(number) if lot is not None else None
        if slot is None:
            self._notify(transferor, 486, "Busy Here (no free park slot)", final=True)
            return
        self._notify(transferor, 200, "OK", final=True)
        self._leave_parked(transferor, transferee, slot, parker.extension if parker else None)

    def _leave_parked(self, transferor: Leg, transferee: Leg, slot: str,
                      parker: str | None) -> None:
        """End ``transferor``'s part and park ``transferee`` in ``slot``."""
        mine, session, theirs, _ = self._sides(transferee)
        self.a_identity = self._identity_of(transferee)
        transferor.hangup("parked")
        self.host.unregister_leg(transferor)
        if theirs is not None:
            self.host.media.release(theirs.endpoint_id).addErrback(lambda f: None)
        self.a, self.a_endpoint, self.a_session = transferee, mine, session
        self.b, self.b_endpoint = None, None
        self.b_session = LocalSession(self.host.media_address)
        self.media_connected = False
        if mine is not None:
            self._moh.discard(mine.endpoint_id)  # the announcement replaces it
        self._resume(transferee)  # the transferor held it before the REFER
        self._park(slot, parker)
        self.state = "parked"
        self._announce_slot()

    def _park(self, slot: str, parker: str | None) -> None:
        lot = self.host.parking
        assert lot is not None
        lot.take(slot, self)
        self._lot, self.parked_in, self.parker = lot, slot, parker
        self._park_timer = self.host.call_later(self.host.park_timeout, self._park_expired)
        self.log.info("{call}: parked in {slot}", call=repr(self), slot=slot)
        self.host.publish(self, "parked")

    def _unpark(self) -> None:
        if self._park_timer is not None and self._park_timer.active():
            self._park_timer.cancel()
        self._park_timer = None
        if self._lot is not None and self.parked_in is not None:
            self._lot.release(self.parked_in, self)
        self.parked_in = None

    def _announce_slot(self) -> None:
        """Tell the parked party its slot, then play the music on hold."""
        slot = self.parked_in or ""
        names = ["park-slot"] + [f"digits/{d}" for d in slot]
        self._announcing = [p for p in map(self.host.prompt, names) if p]
        self._next_announcement()

    def _next_announcement(self) -> None:
        endpoint = self.a_endpoint
        if endpoint is None or self._ended or self._announcing is None:
            return
        if not self._announcing:
            self._announcing = None
            self._music_on_hold(endpoint, True)
            return
        source = PlaySource(path=self._announcing.pop(0))
        self.host.media.play(endpoint.endpoint_id, source).addErrback(
            lambda f: self._next_announcement())

    def _park_expired(self) -> None:
        """Nobody retrieved the call: it rings the user who parked it (the
        caller keeps hearing the music), or ends when there is none."""
        self._park_timer = None
        slot = self.parked_in
        if self._ended or slot is None:
            return
        self._unpark()
        parker = self.host.user(self.parker) if self.parker else None
        if parker is None:
            self.log.info("{call}: nobody retrieved it from {slot}", call=repr(self), slot=slot)
            self.hangup("park timeout")
            return
        self.log.info("{call}: nobody retrieved it from {slot}; ringing {parker}",
                      call=repr(self), slot=slot, parker=parker.extension)
        self.state = "answered"
        self._transfer_to(None, self.a, parker.extension,
                          self.host.route(parker, parker.extension), None, router=parker)

    def retrieve(self, leg: IncomingLeg, retriever: UserConfig) -> None:
        """``retriever`` dialled the slot this call is parked in (``leg``,
        its INVITE): the parked party and the retriever are connected and
        the call goes on between them."""
        slot = self.parked_in
        parked = self.a_endpoint
        if self._ended or slot is None or parked is None:
            leg.reject(480, "Temporarily Unavailable (nothing parked there)")
            return
        try:
            offer = parse_body(leg.remote_sdp) if leg.remote_sdp else None
            if offer is None:
                raise SdpProblemError(488, "Not Acceptable Here (retrieving needs an offer)")
        except SdpProblemError as e:
            leg.reject(e.status, e.reason)
            return
        self._unpark()
        leg.listener = self
        leg.user_data = self
        media = self.host.media

        def allocated(endpoint: MediaEndpoint) -> None:
            if self._ended or leg.state.value != "proceeding":
                media.release(endpoint.endpoint_id).addErrback(lambda f: None)
                if not self._ended and self.parked_in is None and self._lot is not None \
                        and self._lot.slot_for(slot) == slot:
                    self._park(slot, self.parker)  # the retriever gave up
                if leg.state.value == "proceeding":
                    leg.reject(480, "Temporarily Unavailable (the parked call ended)")
                return
            session = LocalSession(self.host.media_address)
            try:
                body, streams, _ = answer_offer(offer, endpoint, session,
                                                self._signalling_address(leg),
                                                prefer=self.codec or None)
            except SdpProblemError as e:
                media.release(endpoint.endpoint_id).addErrback(lambda f: None)
                leg.reject(e.status, e.reason)
                self._park(slot, self.parker)
                return
            self._announcing = None
            self._moh.discard(parked.endpoint_id)
            media.stop_play(parked.endpoint_id).addErrback(lambda f: None)
            self.b, self.b_endpoint, self.b_session = leg, endpoint, session
            self.host.register_leg(leg)
            self._quietly(media.set_remote(endpoint.endpoint_id, streams), "set_remote")
            self._quietly(media.connect(parked.endpoint_id, endpoint.endpoint_id), "connect")
            self.media_connected = True
            self.callee = retriever.extension
            self.state = "answered"
            leg.answer(body)
            self.log.info("{call}: {user} retrieved it from {slot}", call=repr(self),
                          user=retriever.extension, slot=slot)
            self.host.publish(self, "retrieved")

        def failed(failure: Any) -> None:
            if leg.state.value == "proceeding":
                leg.reject(503, "Service Unavailable (no media)")
            if not self._ended:
                self._park(slot, self.parker)

        media.allocate(self.call_id, self.kinds).addCallbacks(allocated, failed)

    def detach(self, leg: Leg) -> tuple[MediaEndpoint | None, LocalSession]:
        """Give ``leg`` (and its endpoint) to another call, which replaces
        this one: the other leg is hung up and the call ends as replaced."""
        endpoint, session, _, _ = self._sides(leg)
        self._set_endpoint(leg, None)
        other = self._other(leg)
        if leg is self.b:
            self.b = None
        if other is not None and not other.ended:
            other.hangup("replaced")
        self.end("replaced", disposition="answered")
        return endpoint, session

    def _resume(self, leg: Leg, mine: MediaEndpoint | None = None,
                session: LocalSession | None = None) -> None:
        """Re-offer sendrecv to ``leg`` when our last offer held it (from its
        side's endpoint and session, or ``mine`` and ``session`` when the
        call no longer holds them: a leg just handed to a script)."""
        if mine is None or session is None:
            mine, session, _, _ = self._sides(leg)
        if mine is None or session.direction() in (None, MediaDirection.SENDRECV):
            return
        offer = make_offer(mine, session, prefer=self.codec or None, video=self.video)
        leg.request("INVITE", body=offer, content_type=SDP,
                    on_response=self._reanswered_from(mine, session))

    def _identity_of(self, leg: Leg) -> NameAddr:
        """Who ``leg``'s far end is, for the From of a leg made for it."""
        if leg is self.a and self.a_identity is not None:
            return self.a_identity
        if leg is self.incoming:
            return NameAddr(uri=SipUri(user=self._caller_user(), host=self.host.domain),
                            display_name=self.caller.name if self.caller and self.caller.name
                            else self.caller_uri.display_name)
        user = self.host.user(self.callee)
        return NameAddr(uri=SipUri(user=self.callee, host=self.host.domain),
                        display_name=user.name if user is not None and user.name else None)

    def _notify(self, leg: Leg | None, status: int, reason: str, *, final: bool) -> None:
        if leg is None or leg.ended or leg.dialog is None:
            return
        state = "terminated;reason=noresource" if final else "active;expires=60"
        leg.request("NOTIFY", body=f"SIP/2.0 {status} {reason}\r\n".encode(),
                    content_type="message/sipfrag;version=2.0",
                    extra=(("Event", "refer"), ("Subscription-State", state)))

    def _transfer_progress(self, response: Response) -> None:
        transfer = self.transfer
        if transfer is not None and response.status in (180, 183):
            self._notify(transfer.transferor, response.status, response.reason, final=False)

    def _transfer_timeout(self) -> None:
        transfer = self.transfer
        if transfer is None:
            return
        transfer.timer = None
        if transfer.leg is not None:
            transfer.leg.abandon("no answer")
        self._transfer_failed(None, 480, "Temporarily Unavailable", no_answer=True)

    def _transfer_answered(self, response: Response) -> None:
        transfer = self.transfer
        assert transfer is not None and transfer.leg is not None
        assert transfer.endpoint is not None and transfer.session is not None
        try:
            streams = remote_from_answer(transfer.session, response.body, None,
                                         transfer.endpoint)
        except SdpProblemError:
            transfer.leg.hangup("bad SDP")
            self._transfer_failed(None, 502, "Bad Gateway")
            return
        self._stop_transfer_timer()
        transferee = transfer.transferee
        mine, session, _old, _old_session = self._sides(transferee)
        old_endpoint = _old
        self._quietly(self.host.media.set_remote(transfer.endpoint.endpoint_id, streams),
                      "set_remote")
        if mine is not None:
            self._music_on_hold(mine, False)
            self._quietly(self.host.media.connect(mine.endpoint_id, transfer.endpoint.endpoint_id),
                          "connect")
        self._notify(transfer.transferor, 200, "OK", final=True)
        if transfer.transferor is not None:
            transfer.transferor.hangup("transferred")
            self.host.unregister_leg(transfer.transferor)
        if old_endpoint is not None:
            self.host.media.release(old_endpoint.endpoint_id).addErrback(lambda f: None)
        # the call is now transferee ↔ target
        self.a, self.a_endpoint, self.a_session = transferee, mine, session
        self.b, self.b_endpoint, self.b_session = (transfer.leg, transfer.endpoint,
                                                   transfer.session)
        self.callee = transfer.target
        self.transfer = None
        self.host.publish(self, "transferred")
        self._resume(self.a)  # the transferee was held before the REFER

    def _reanswered_from(self, mine: MediaEndpoint, session: LocalSession
                         ) -> Callable[[Response], None]:
        """The answer to a re-offer made from ``mine`` and ``session`` goes
        to them, even if the leg has moved on since (handed to a script) or
        the endpoint is gone by then."""

        def answered(response: Response) -> None:
            if response.success and response.body:
                try:
                    remote = remote_from_answer(session, response.body, None, mine)
                except SdpProblemError:
                    return
                self._quietly(self.host.media.set_remote(mine.endpoint_id, remote),
                              "set_remote")
        return answered

    def _transfer_failed(self, response: Response | None, status: int = 0,
                         reason: str = "", *, no_answer: bool = False) -> None:
        transfer = self.transfer
        if transfer is None:
            return
        self.transfer = None
        self._stop_transfer(transfer)
        if response is not None:
            status, reason = response.status, response.reason
        status, reason = status or 503, reason or "Service Unavailable"
        if self._forward_transfer(transfer, status, no_answer):
            return
        self._notify(transfer.transferor, status, reason, final=True)
        if transfer.transferor_gone:
            # nobody is left to take the transferee back
            self.hangup(f"transfer failed: {status}")

    def _forward_transfer(self, transfer: Transfer, status: int, no_answer: bool) -> bool:
        """The transfer's target user is busy or did not answer and forwards
        such calls: the transfer goes on to that number (a script takes the
        transferee over).  False when it does not."""
        user = self.host.user(transfer.target)
        if user is None or transfer.hops >= self.host.max_forward_hops:
            return False
        number = (user.forward_no_answer if no_answer
                  else user.forward_busy if status in (486, 600) else "")
        if not number:
            return False
        route = self.host.route(transfer.router, number)
        if route.kind in (RouteKind.REJECT, RouteKind.PARK, RouteKind.PICKUP):
            return False
        self.log.info("{call}: transfer to {target} forwarded to {number}", call=repr(self),
                      target=transfer.target, number=number)
        if route.kind is RouteKind.SCRIPT:
            if not self._transfer_to_script(transfer.transferor, transfer.transferee, route) \
                    and transfer.transferor_gone:
                self.hangup("transfer failed: no scriptserver")
        else:
            self._transfer_to(transfer.transferor, transfer.transferee, number, route,
                              transfer.referred_by, router=transfer.router,
                              hops=transfer.hops + 1)
        return True

    def _stop_transfer_timer(self) -> None:
        transfer = self.transfer
        if transfer is not None and transfer.timer is not None and transfer.timer.active():
            transfer.timer.cancel()
        if transfer is not None:
            transfer.timer = None

    def _stop_transfer(self, transfer: Transfer) -> None:
        if transfer.timer is not None and transfer.timer.active():
            transfer.timer.cancel()
        transfer.timer = None
        if transfer.leg is not None:
            transfer.leg.abandon("transfer failed")
            self.host.unregister_leg(transfer.leg)
        if transfer.endpoint is not None:
            self.host.media.release(transfer.endpoint.endpoint_id).addErrback(lambda f: None)

    # -- the end ----------------------------------------------------------------------------

    def hangup(self, reason: str) -> None:
        """End the call from here (inactivity, shutdown): both legs."""
        for leg in (self.a, self.b):
            if leg is None or leg.ended or leg.user_data is not self:
                continue
            if isinstance(leg, OutgoingLeg):
                leg.abandon(reason)
            elif isinstance(leg, IncomingLeg) and leg.state.value == "proceeding":
                leg.reject(480 if reason != "shutdown" else 503)
            else:
                leg.hangup(reason)
        self.end(reason, disposition="answered" if self.answer_time else "failed")

    def end(self, reason: str, *, disposition: str) -> None:
        """Release the media, write the CDR, forget the call (once)."""
        if self._ended:
            return
        self._ended = True
        self._cancel_no_answer()
        if self._session_deadline is not None and self._session_deadline.active():
            self._session_deadline.cancel()
        self._session_deadline = None
        if self.transfer is not None:
            transfer, self.transfer = self.transfer, None
            self._stop_transfer(transfer)
        self._announcing = None
        self._unpark()
        self.state = "ended"
        self._release()
        for leg in (self.a, self.b):
            if leg is not None and leg.user_data is self:
                self.host.unregister_leg(leg)
        let_go(self, self.a, self.b, self.incoming)
        cdr = CdrRecord(
            correlation_id=self.correlation_id, call_id=self.call_id,
            caller=self._caller_user(), callee=self.callee, start_time=self.start_time,
            answer_time=self.answer_time, end_time=time.time(),
            disposition="answered" if self.answer_time else disposition,
            codec=self.codec, sip_server=self.host.name, hangup_cause=reason)
        self.host.call_ended(self, cdr)
        self.host.publish(self, "ended")

    def _release(self) -> None:
        media = self.host.media
        for endpoint in (self.a_endpoint, self.b_endpoint):
            if endpoint is not None:
                media.release(endpoint.endpoint_id).addErrback(lambda f: None)
        self.a_endpoint = self.b_endpoint = None


ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, UPDATE, REFER, NOTIFY, PRACK"


def place_b_leg(host: CallHost, listener: Any, route: Route, dest: Destination,
                endpoint: MediaEndpoint, *, caller_user: str, display_name: str | None,
                extra: tuple[tuple[str, str], ...] = (), privacy: str | None = None,
                codec: str = "", video: MediaCapabilities | None = None
                ) -> tuple[OutgoingLeg, LocalSession]:
    """Send the INVITE of a B leg toward ``route`` (a user through
    sipproxy, a number through a gateway) offering ``endpoint`` with
    ``codec`` first, from ``caller_user``; returns the leg (registered with
    the host, reporting to ``listener``) and its new session.  Toward
    another SIP server (a target homed there) the caller is asserted; toward a
    gateway the caller is asserted (the gateway presents its external
    number, or nothing when withheld) and the carrier-facing media address
    is offered."""
    session = LocalSession(host.carrier_media_address if route.kind is RouteKind.EXTERNAL
                           else host.media_address)
    leg = OutgoingLeg(host.legs, listener, host.contact())
    uri = SipUri(user=route.target, host=host.domain)
    offer = make_offer(endpoint, session, prefer=codec or None, video=video)
    from_ = NameAddr(uri=SipUri(user=caller_user, host=host.domain),
                     display_name=display_name)
    if route.kind in (RouteKind.EXTERNAL, RouteKind.ELSEWHERE):
        extra += (("P-Asserted-Identity", f"<sip:{caller_user}@{host.domain}>"),)
        if privacy and route.kind is RouteKind.EXTERNAL:
            extra += (("Privacy", privacy),)
    leg.invite_to(uri, dest, from_=from_, to=NameAddr(uri=uri), body=offer, extra=extra,
                  user_agent=host.user_agent)
    host.register_leg(leg)
    return leg, session


@attrs.define
class Transfer:
    """A blind transfer in progress: who asked (``transferor``), who is
    moved (``transferee``), the target and the leg and endpoint made for it."""

    transferor: Leg | None
    transferee: Leg
    target: str
    leg: OutgoingLeg | None = None
    endpoint: MediaEndpoint | None = None
    session: LocalSession | None = None
    timer: Any = None
    transferor_gone: bool = False
    referred_by: str | None = None
    router: UserConfig | None = None
    """Whose rights route the transfer and its forwards (the transferor)."""
    hops: int = 0
    """Forwards taken so far (busy, no answer)."""


def _refer_uri(refer_to: str | None) -> SipUri | None:
    """The SIP URI of a Refer-To, or None."""
    if not refer_to:
        return None
    try:
        uri = NameAddr.parse(refer_to).uri
    except HeaderError:
        return None
    return uri if isinstance(uri, SipUri) else None


def _refer_target(refer_to: str | None) -> str | None:
    """The user part of a Refer-To (the number to call), or None."""
    uri = _refer_uri(refer_to)
    return uri.user if uri is not None and uri.user else None


def _replaces(refer_to: str | None) -> tuple[str, str, str] | None:
    """(call-id, to-tag, from-tag) of a Replaces header embedded in a
    Refer-To URI (``?Replaces=...``, RFC 3891 §3, escaped), or None."""
    uri = _refer_uri(refer_to)
    if uri is None:
        return None
    text = next((v for k, v in uri.headers if k.lower() == "replaces"), None)
    if text is None:
        return None
    parts = urllib.parse.unquote(text).split(";")
    params = dict(p.strip().split("=", 1) for p in parts[1:] if "=" in p)
    call_id = parts[0].strip()
    if not call_id or "to-tag" not in params:
        return None
    return call_id, params["to-tag"], params.get("from-tag", "")


def _referred_by(request: Request) -> str:
    sender = request.from_
    return request.headers.get("Referred-By") or str(
        NameAddr(uri=sender.uri, display_name=sender.display_name))


def _disposition(status: int) -> str:
    if status in (486, 600):
        return "busy"
    if status in (480, 408):
        return "no answer"
    if status == 487:
        return "cancelled"
    if status == 603:
        return "declined"
    return "failed"

