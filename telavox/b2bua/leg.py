"""Call legs of a back-to-back user agent: one SIP dialog each.

Owns :class:`LegHost` (what a leg needs from the SIP endpoint it lives on),
:class:`LegListener` (what a leg reports to the call that owns it),
:class:`IncomingLeg` (the UAS side: the A leg of a call) and
:class:`OutgoingLeg` (the UAC side: a B leg).

Theory of operation.  A leg is one dialog (RFC 3261 §12) and the INVITE
transaction that makes it.  It knows nothing of the other legs of its call:
everything it hears that matters to the call is reported to its
:class:`LegListener` in leg-neutral terms (provisional, answered, failed,
confirmed, ended, an in-dialog request to pass on), and the call commands it
in the same terms (ring, answer, reject, hang up, cancel, send a request in
the dialog).  Leg states are named after the RFC phases:

* incoming: ``proceeding`` (INVITE received, maybe 1xx sent) → ``accepted``
  (2xx sent, retransmitted from T1 doubling to T2 until the ACK, §13.3.1.4;
  no ACK in 64*T1 → BYE) → ``confirmed`` → ``terminated``; a CANCEL in
  ``proceeding`` answers the INVITE 487 (§9.2);
* outgoing: ``calling`` → ``proceeding`` (1xx) → ``confirmed`` (2xx, ACKed
  at once, §13.2.2.4; a retransmitted 2xx gets the same ACK) →
  ``terminated``; CANCEL waits for a provisional response (§9.1); a 2xx
  crossing our CANCEL, or from a second fork, is ACKed and ended with BYE.

The leg does no I/O and reads no clock itself: it acts through its
:class:`LegHost`, which a Twisted adapter implements on a SIP endpoint and a
unit test implements with lists and a fake clock.
"""

from __future__ import annotations

import contextlib
import enum
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from telavox.b2bua.reliable import ReliableProvisionals, requires_100rel
from telavox.sip.dialog import Dialog, DialogError, DialogSet
from telavox.sip.hdrtypes import HeaderError, NameAddr, Via
from telavox.sip.message import Request, Response, make_cancel, make_response, new_tag
from telavox.sip.timers import TimerConfig
from telavox.sip.transaction import (
    Action,
    ClientTransaction,
    Destination,
    ServerTransaction,
    client_response,
)
from telavox.sip.ua import new_request, uas_response
from telavox.sip.uri import Uri

__all__ = [
    "SDP",
    "IncomingLeg",
    "LegHost",
    "LegListener",
    "LegState",
    "OutgoingLeg",
]

SDP = "application/sdp"
Extra = Sequence[tuple[str, str]]
ResponseCallback = Callable[[Response], object]
Authenticator = Callable[[Request, Response, Via], "Request | None"]


class Cancellable(Protocol):
    """A pending timer."""

    def cancel(self) -> None:
        """Stop it (no error when it already ran)."""


class LegHost(Protocol):
    """What a leg needs from the SIP endpoint it lives on."""

    timers: TimerConfig

    def send_request(self, request: Request, dest: Destination,
                     on_event: Callable[[Action], None]) -> ClientTransaction:
        """Start a client transaction; ``on_event`` gets its responses and
        its TimedOut/TransportFailed."""

    def respond(self, txn: ServerTransaction, response: Response) -> None:
        """Send ``response`` on server transaction ``txn``."""

    def send_stateless(self, message: Request | Response, dest: Destination) -> None:
        """Send without a transaction (ACK of a 2xx, 2xx retransmissions)."""

    def via_for(self, dest: Destination) -> Via:
        """Our Via (with a fresh branch) for a request to ``dest``."""

    def destination_for(self, uri: Uri) -> Destination:
        """Where a request whose next hop is ``uri`` goes."""

    def call_later(self, delay: float, fn: Callable[[], object]) -> Cancellable:
        """Run ``fn`` after ``delay`` seconds."""


class LegListener(Protocol):
    """What a leg reports to the call that owns it."""

    def leg_provisional(self, leg: OutgoingLeg, response: Response) -> None:
        """A 101-199 response arrived on an outgoing leg."""

    def leg_answered(self, leg: OutgoingLeg, response: Response) -> None:
        """The outgoing leg was answered (2xx, ACKed already)."""

    def leg_failed(self, leg: OutgoingLeg, response: Response) -> None:
        """The outgoing leg's INVITE failed (final 3xx-6xx, or a 408/503
        made up for a timeout or transport failure)."""

    def leg_confirmed(self, leg: IncomingLeg) -> None:
        """The ACK of our 2xx arrived on the incoming leg."""

    def leg_cancelled(self, leg: IncomingLeg) -> None:
        """The caller cancelled the incoming leg (it was answered 487)."""

    def leg_ended(self, leg: Leg, reason: str) -> None:
        """The leg's dialog ended from the far side or by the transport
        (BYE received, no ACK, 408/481 to one of our requests)."""

    def leg_request(self, leg: Leg, request: Request, txn: ServerTransaction) -> None:
        """An in-dialog request other than BYE/ACK/CANCEL arrived (re-INVITE,
        UPDATE, INFO, REFER, OPTIONS, MESSAGE, NOTIFY...); the call answers
        it with :meth:`Leg.respond`."""

    def leg_acked(self, leg: Leg, ack: Request) -> None:
        """The ACK of our 2xx to a re-INVITE arrived (with the answer when
        the 2xx carried the offer)."""


class LegState(enum.Enum):
    """Phases of a leg (see the module docstring)."""

    CALLING = "calling"
    PROCEEDING = "proceeding"
    ACCEPTED = "accepted"
    CONFIRMED = "confirmed"
    TERMINATED = "terminated"


class Leg:
    """What incoming and outgoing legs share: the dialog, requests inside it
    (§12.2.1.1), BYE (§15) and in-dialog requests from the far side."""

    outgoing = False

    def __init__(self, host: LegHost, listener: LegListener, contact: NameAddr) -> None:
        self.host = host
        self.listener = listener
        self.contact = contact
        self.dialog: Dialog | None = None
        self.state = LegState.CALLING
        self.end_reason = ""
        self.remote_sdp = b""
        """The far side's latest session description."""
        self.user_data: Any = None
        """Whatever the owning call wants to keep with the leg."""
        self._reinvite_ok: _Retransmission | None = None
        self._held_reack: tuple[Dialog, Request, Response] | None = None

    @property
    def ended(self) -> bool:
        """The leg is over."""
        return self.state is LegState.TERMINATED

    def _terminate(self, reason: str) -> bool:
        """Move to terminated; False when it already was."""
        if self.state is LegState.TERMINATED:
            return False
        self.state = LegState.TERMINATED
        self.end_reason = reason
        if self.dialog is not None:
            self.dialog.terminate()
        self._stopped()
        return True

    def _stopped(self) -> None:
        """Hook: stop the leg's timers."""
        if self._reinvite_ok is not None:
            self._reinvite_ok.stop()
            self._reinvite_ok = None

    def request(self, method: str, *, body: bytes = b"", content_type: str | None = None,
                extra: Extra = (), on_response: ResponseCallback | None = None,
                hold_ack: bool = False) -> Request:
        """Send ``method`` inside the dialog; ``on_response`` gets its final
        response (a 408/503 made up locally on timeout or transport failure).
        A 481 or 408 to it ends the leg (§12.2.1.2).  With ``hold_ack`` the
        2xx to a re-INVITE is not ACKed at once: :meth:`send_held_ack` sends
        the ACK with the answer to the offer the 2xx carried."""
        dialog = self.dialog
        if dialog is None or dialog.terminated:
            raise DialogError(f"no dialog to send {method} in")
        dest = self.host.destination_for(dialog.next_hop)
        contact = str(self.contact) if method in ("INVITE", "UPDATE", "REFER") else None
        request = dialog.create_request(method, via=self.host.via_for(dest), contact=contact,
                                        extra=tuple(extra), body=body,
                                        content_type=content_type if body else None)

        def on_event(event: Action) -> None:
            response = client_response(request, event)
            if response is None or response.status < 200:
                return
            if method == "INVITE" and response.success:
                if hold_ack and not self.ended:
                    self._held_reack = (dialog, request, response)
                else:
                    self._ack(dialog, request, response)
            with contextlib.suppress(DialogError, HeaderError):
                dialog.update_from_response(response)
            if on_response is not None:
                on_response(response)
            if response.status in (408, 481) and method != "BYE":
                self._remote_end(f"{response.status} to {method}")

        self.host.send_request(request, dest, on_event)
        return request

    def send_held_ack(self, body: bytes = b"") -> None:
        """The ACK held back by ``request(..., hold_ack=True)``, with ``body``."""
        held, self._held_reack = self._held_reack, None
        if held is not None:
            self._ack(*held, body=body)

    def _ack(self, dialog: Dialog, request: Request, response: Response,
             body: bytes = b"") -> None:
        dest = self.host.destination_for(dialog.next_hop)
        auth = tuple((name, value) for name in ("Authorization", "Proxy-Authorization")
                     for value in request.headers.get_all(name))
        ack = dialog.ack_for(response, via=self.host.via_for(dest), extra=auth, body=body,
                             content_type=SDP if body else None)
        self.host.send_stateless(ack, dest)

    def respond(self, request: Request, txn: ServerTransaction, status: int,
                reason: str | None = None, *, body: bytes = b"",
                content_type: str | None = None, extra: Extra = ()) -> Response:
        """Answer an in-dialog request the leg reported with
        :meth:`LegListener.leg_request`."""
        contact = self.contact if request.method in ("INVITE", "UPDATE") else None
        response = uas_response(request, status, reason, contact=contact, body=body,
                                content_type=content_type if body else None, extra=extra)
        self.host.respond(txn, response)
        if request.method == "INVITE" and response.success and not txn.dest.reliable:
            # §13.3.1.4, §14.2: the UAS core retransmits its 2xx until the ACK
            if self._reinvite_ok is not None:
                self._reinvite_ok.stop()
            self._reinvite_ok = _Retransmission(self.host, response, txn.dest,
                                                self._reinvite_unacked)
        return response

    def acked(self, ack: Request) -> None:
        """An ACK in the dialog: of our 2xx to a re-INVITE."""
        pending = self._reinvite_ok
        if pending is not None and pending.response.cseq.seq == ack.cseq.seq:
            pending.stop()
            self._reinvite_ok = None
        elif pending is None and self._held_reack is None and not ack.body:
            return
        if ack.body:
            self.remote_sdp = ack.body
        self.listener.leg_acked(self, ack)

    def _reinvite_unacked(self) -> None:
        """No ACK for our 2xx to a re-INVITE in 64*T1: end the dialog (§14.2)."""
        self._reinvite_ok = None
        self.hangup("no ACK to re-INVITE")
        self.listener.leg_ended(self, "no ACK to re-INVITE")

    def hangup(self, reason: str = "local BYE") -> None:
        """End the leg: BYE once the dialog is confirmed (or accepted)."""
        if self.ended:
            return
        dialog = self.dialog
        if dialog is not None and self.state in (LegState.CONFIRMED, LegState.ACCEPTED):
            dialog.confirm()
            self.request("BYE")
        self._terminate(reason)

    def abandon(self, reason: str = "abandoned") -> None:
        """End the leg whatever its state, reporting nothing more: CANCEL or
        BYE (outgoing), 487 or BYE (incoming)."""
        self.hangup(reason)

    def receive(self, request: Request, txn: ServerTransaction) -> None:
        """An in-dialog request for this leg (matched by dialog id)."""
        dialog = self.dialog
        if dialog is None or self.ended:
            self.host.respond(txn, make_response(request, 481))
            return
        status = dialog.receive_request(request)
        if status is not None:
            self.host.respond(txn, make_response(request, status))
            return
        if self._answered_here(request, txn):
            return
        if request.method == "BYE":
            self.host.respond(txn, make_response(request, 200))
            self._remote_end("remote BYE")
            return
        if request.method == "INVITE" and request.body:
            self.remote_sdp = request.body
        self.listener.leg_request(self, request, txn)

    def _answered_here(self, request: Request, txn: ServerTransaction) -> bool:
        """Hook: answer an in-dialog request the leg handles itself (True)."""
        return False

    def _remote_end(self, reason: str) -> None:
        if self._terminate(reason):
            self.listener.leg_ended(self, reason)


class IncomingLeg(Leg):
    """The UAS side of a call: the INVITE that came in (the A leg)."""

    def __init__(self, host: LegHost, listener: LegListener, request: Request,
                 txn: ServerTransaction, contact: NameAddr) -> None:
        super().__init__(host, listener, contact)
        self.invite = request
        self.txn = txn
        self.remote_sdp = request.body
        self.local_tag = new_tag()
        self.dialog = Dialog.from_uas(request, self.local_tag, contact)
        self.state = LegState.PROCEEDING
        self.reliable: ReliableProvisionals | None = None
        """RFC 3262 state, when the caller requires 100rel."""
        if requires_100rel(request):
            timers = host.timers
            self.reliable = ReliableProvisionals(
                request, lambda r: host.respond(self.txn, r), self._no_prack, host.call_later,
                timers.t1, timers.t2, timers.timeout)
        self._ok: Response | None = None
        self._timer: Cancellable | None = None
        self._interval = 0.0
        self._waited = 0.0

    def _final(self, status: int, reason: str | None, body: bytes, extra: Extra) -> Response:
        response = uas_response(self.invite, status, reason, to_tag=self.local_tag,
                                contact=self.contact, body=body,
                                content_type=SDP if body else None, extra=extra)
        self.host.respond(self.txn, response)
        return response

    def provisional(self, status: int = 180, *, body: bytes = b"", reason: str | None = None,
                    extra: Extra = ()) -> None:
        """Send 180 Ringing, or 183 Session Progress with early media SDP
        (reliably, RFC 3262, when the caller requires 100rel)."""
        if self.state is not LegState.PROCEEDING:
            return
        reliable = self.reliable
        if reliable is None or status == 100:
            self._final(status, reason, body, extra)
            return
        fields = (*extra, ("Require", "100rel"), ("RSeq", str(reliable.next_rseq())))
        response = uas_response(self.invite, status, reason, to_tag=self.local_tag,
                                contact=self.contact, body=body,
                                content_type=SDP if body else None, extra=fields)
        reliable.send(response)

    def answer(self, body: bytes, extra: Extra = ()) -> None:
        """Accept with 200 OK and our SDP; retransmitted until the ACK.  With
        reliable provisionals, the 200 waits for the PRACK of any that
        carried a session description (RFC 3262 §3)."""
        if self.state is not LegState.PROCEEDING:
            return
        reliable = self.reliable
        if reliable is not None and reliable.pending_sdp():
            reliable.after = lambda: self.answer(body, extra)
            return
        if reliable is not None:
            reliable.stop()
        self._ok = self._final(200, None, body, extra)
        self.state = LegState.ACCEPTED
        self._interval = self.host.timers.t1
        self._waited = 0.0
        self._timer = self.host.call_later(self._interval, self._retransmit)

    def reject(self, status: int, reason: str | None = None, extra: Extra = ()) -> None:
        """Refuse with a 3xx-6xx final response."""
        if self.state is LegState.PROCEEDING:
            if self.reliable is not None:
                self.reliable.stop()
            self._final(status, reason, b"", extra)
            self._terminate(f"rejected {status}")

    def _no_prack(self) -> None:
        """A reliable provisional got no PRACK in 64*T1 (RFC 3262 §3)."""
        if self.state is LegState.PROCEEDING:
            self.reject(500, "Server Internal Error (no PRACK)")
            self.listener.leg_ended(self, "no PRACK")

    def _answered_here(self, request: Request, txn: ServerTransaction) -> bool:
        """A PRACK is answered here (RFC 3262 §3)."""
        if request.method != "PRACK":
            return False
        reliable = self.reliable
        if reliable is not None and reliable.prack(request):
            self.host.respond(txn, make_response(request, 200))
            reliable.flush()
        else:
            self.host.respond(txn, make_response(
                request, 481, "Call/Transaction Does Not Exist (no such RSeq)"))
        return True

    def abandon(self, reason: str = "abandoned") -> None:
        """Refuse with 487 while proceeding, else hang up."""
        if self.state is LegState.PROCEEDING:
            self.reject(487)
        else:
            self.hangup(reason)

    def cancelled(self) -> None:
        """A CANCEL matched our INVITE (the endpoint answered it 200): 487."""
        if self.state is LegState.PROCEEDING:
            self._final(487, None, b"", ())
            self._terminate("cancelled")
            self.listener.leg_cancelled(self)

    def acked(self, ack: Request) -> None:
        """The ACK of our 2xx (to the INVITE, or to a re-INVITE later)."""
        if self.state is not LegState.ACCEPTED or self._ok is None:
            if self.state is LegState.CONFIRMED:
                super().acked(ack)
            return
        if ack.cseq.seq != self._ok.cseq.seq:
            return
        self._stop_timer()
        self.state = LegState.CONFIRMED
        if self.dialog is not None:
            self.dialog.confirm()
        if ack.body:
            self.remote_sdp = ack.body
        self.listener.leg_confirmed(self)

    def server_failed(self, reason: str) -> None:
        """Our response could not be delivered or never got its ACK."""
        if self.state is not LegState.CONFIRMED:
            self._remote_end(reason)

    def _retransmit(self) -> None:
        self._timer = None
        if self.state is not LegState.ACCEPTED or self._ok is None:
            return
        self._waited += self._interval
        if self._waited >= self.host.timers.timeout:
            # §13.3.1.4: no ACK in 64*T1, the dialog is confirmed then ended
            self.state = LegState.CONFIRMED
            self.hangup("no ACK")
            self.listener.leg_ended(self, "no ACK")
            return
        self.host.send_stateless(self._ok, self.txn.dest)
        self._interval = min(self._interval * 2, self.host.timers.t2)
        self._timer = self.host.call_later(self._interval, self._retransmit)

    def _stop_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _stopped(self) -> None:
        super()._stopped()
        self._stop_timer()
        if self.reliable is not None:
            self.reliable.stop()


class OutgoingLeg(Leg):
    """The UAC side of a call: an INVITE we send (a B leg)."""

    outgoing = True

    def __init__(self, host: LegHost, listener: LegListener, contact: NameAddr) -> None:
        super().__init__(host, listener, contact)
        self.invite: Request | None = None
        self.txn: ClientTransaction | None = None
        self.dest: Destination | None = None
        self.provisional_seen = False
        self.final: Response | None = None
        self._forks: DialogSet | None = None
        self._cancel_wanted = False
        self._cancel_sent = False
        self.authenticate: Authenticator | None = None
        """Answers a 401/407 to our INVITE: the retry to send (§22.2: same
        Call-ID and From tag, CSeq one higher), or None to fail the leg."""
        self.hold_ack = False
        """Do not ACK the 2xx at once: the owner sends the ACK with
        :meth:`send_ack` (an INVITE without offer, whose answer goes in the
        ACK, RFC 3261 §13.2.1)."""
        self._held_ack: tuple[Dialog, Response] | None = None

    def invite_to(self, uri: Uri, dest: Destination, *, from_: NameAddr, to: NameAddr,
                  body: bytes, call_id: str | None = None, extra: Extra = (),
                  user_agent: str | None = None) -> Request:
        """Send the INVITE that starts the leg."""
        request = new_request("INVITE", uri, from_=from_, to=to, via=self.host.via_for(dest),
                              contact=self.contact, call_id=call_id, extra=tuple(extra),
                              body=body, content_type=SDP if body else None,
                              user_agent=user_agent)
        self.invite = request
        self.dest = dest
        self._forks = DialogSet(request)
        self.txn = self.host.send_request(request, dest, self._invite_event)
        return request

    def cancel(self) -> None:
        """Give up before an answer: CANCEL once a provisional response came
        (§9.1); the leg then fails with 487 (reported as failed)."""
        if self.state not in (LegState.CALLING, LegState.PROCEEDING) or self._cancel_wanted:
            return
        self._cancel_wanted = True
        if self.provisional_seen:
            self._send_cancel()

    def abandon(self, reason: str = "abandoned") -> None:
        """Cancel if not answered, hang up if answered; report nothing more."""
        if self.state in (LegState.CALLING, LegState.PROCEEDING):
            self.cancel()
            self._terminate(reason)
        else:
            self.hangup(reason)

    def _send_cancel(self) -> None:
        if self._cancel_sent or self.invite is None or self.txn is None:
            return
        self._cancel_sent = True
        cancel = make_cancel(self.invite)
        self.host.send_request(cancel, self.txn.dest, lambda event: None)

    def _invite_event(self, event: Action) -> None:
        request = self.invite
        if request is None:
            return
        response = client_response(request, event)
        if response is None:
            return
        if response.status < 200:
            self._on_provisional(response)
        elif response.status < 300:
            self._on_success(response)
        else:
            self._on_failure(response)

    def _on_provisional(self, response: Response) -> None:
        assert self._forks is not None
        self.provisional_seen = True
        if self._cancel_wanted:
            self._send_cancel()
            return
        if self.ended:
            return
        with contextlib.suppress(DialogError, HeaderError):
            dialog = self._forks.on_response(response)
            if dialog is not None and self.dialog is None:
                self.dialog = dialog
        if response.status > 100:
            self.state = LegState.PROCEEDING
            if response.body:
                self.remote_sdp = response.body
            self.listener.leg_provisional(self, response)

    def _on_success(self, response: Response) -> None:
        assert self._forks is not None and self.invite is not None
        try:
            dialog = self._forks.on_response(response)
        except (DialogError, HeaderError):
            return
        if dialog is None:
            return
        if dialog is self.dialog and self.state is LegState.CONFIRMED:
            # a retransmission: the same ACK again (the dialog remembers
            # it), none yet while it is held
            if self._held_ack is None:
                self._ack(dialog, self.invite, response)
            return
        wanted = self.state in (LegState.CALLING, LegState.PROCEEDING) and (
            not self._cancel_wanted)
        if wanted and self.hold_ack:
            self._held_ack = (dialog, response)
        else:
            self._ack(dialog, self.invite, response)
        if wanted:
            self.dialog = dialog
            dialog.confirm()
            self.state = LegState.CONFIRMED
            self.final = response
            if response.body:
                self.remote_sdp = response.body
            self.listener.leg_answered(self, response)
            return
        # a second fork answered, or the answer crossed our CANCEL: end that dialog
        self._bye(dialog)

    def hangup(self, reason: str = "local BYE") -> None:
        """End the leg; a 2xx whose ACK was held is ACKed first (§13.2.2.4)."""
        if self._held_ack is not None:
            self.send_ack()
        if self._held_reack is not None:
            self.send_held_ack()
        super().hangup(reason)

    def send_ack(self, body: bytes = b"") -> None:
        """Send the ACK held back by :attr:`hold_ack`, carrying ``body`` (the
        answer to the offer of the 2xx)."""
        held, self._held_ack = self._held_ack, None
        if held is None or self.invite is None:
            return
        dialog, response = held
        dest = self.host.destination_for(dialog.next_hop)
        auth = tuple((name, value) for name in ("Authorization", "Proxy-Authorization")
                     for value in self.invite.headers.get_all(name))
        ack = dialog.ack_for(response, via=self.host.via_for(dest), extra=auth, body=body,
                             content_type=SDP if body else None)
        self.host.send_stateless(ack, dest)

    def _bye(self, dialog: Dialog) -> None:
        dest = self.host.destination_for(dialog.next_hop)
        bye = dialog.create_request("BYE", via=self.host.via_for(dest))
        self.host.send_request(bye, dest, lambda event: None)
        dialog.terminate()

    def _on_failure(self, response: Response) -> None:
        assert self._forks is not None
        if response.status in (401, 407) and self._retry(response):
            return
        self._forks.on_response(response)
        self.final = response
        if self._terminate(f"{response.status} {response.reason}") and not self._cancel_wanted:
            self.listener.leg_failed(self, response)

    def _retry(self, response: Response) -> bool:
        """Send the INVITE again with credentials; False when there are none."""
        if (self.authenticate is None or self.invite is None or self.dest is None
                or self._cancel_wanted or self.ended):
            return False
        retry = self.authenticate(self.invite, response, self.host.via_for(self.dest))
        if retry is None:
            return False
        self.invite = retry
        self._forks = DialogSet(retry)
        self.txn = self.host.send_request(retry, self.dest, self._invite_event)
        return True

    def retransmitted_2xx(self, response: Response) -> None:
        """A 2xx for our INVITE arriving after its transaction ended (§13.2.2.4):
        ACK it again, or end a dialog we do not use."""
        if self.invite is None or self._forks is None:
            return
        self._on_success(response)


class _Retransmission:
    """A 2xx to an INVITE sent again from T1 doubling to T2 until stopped
    (its ACK came) or 64*T1 have passed (then ``expired`` is called)."""

    def __init__(self, host: LegHost, response: Response, dest: Destination,
                 expired: Callable[[], None]) -> None:
        self.host = host
        self.response = response
        self.dest = dest
        self.expired = expired
        self.interval = host.timers.t1
        self.waited = 0.0
        self.timer: Cancellable | None = host.call_later(self.interval, self._fire)

    def _fire(self) -> None:
        self.timer = None
        self.waited += self.interval
        if self.waited >= self.host.timers.timeout:
            self.expired()
            return
        self.host.send_stateless(self.response, self.dest)
        self.interval = min(self.interval * 2, self.host.timers.t2)
        self.timer = self.host.call_later(self.interval, self._fire)

    def stop(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
