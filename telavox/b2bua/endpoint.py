"""Legs living on a SIP endpoint: the Twisted-side adapter and the table
that routes a SIP server's or gateway's traffic to its legs.

Owns :class:`EndpointLegHost` (the :class:`~telavox.b2bua.leg.LegHost` of
legs on one :class:`~telavox.transport.endpoint.SipEndpoint`) and
:class:`LegTable` (which leg an in-dialog request, a CANCEL, an ACK, a
stray 2xx or a transaction failure belongs to).  Both tproxy and the
gateway keep their legs here, so that the matching rules (dialog id = our
tag plus Call-ID; CANCEL by its INVITE's transaction) live once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from telavox.b2bua.leg import IncomingLeg, Leg, LegHost, OutgoingLeg
from telavox.sip.dialog import DialogError
from telavox.sip.hdrtypes import HeaderError, NameAddr, Via
from telavox.sip.message import Request, Response, make_response, new_tag
from telavox.sip.timers import TimerConfig
from telavox.sip.transaction import (
    AckIn,
    Action,
    ClientTransaction,
    Destination,
    RequestIn,
    ServerTransaction,
    StrayResponse,
    TransportFailed,
)
from telavox.sip.uri import SipUri, Uri
from telavox.transport.endpoint import SipEndpoint

__all__ = ["NO_LISTENER", "EndpointLegHost", "LegHandlers", "LegTable", "NoListener",
           "SafeCall", "let_go"]


class EndpointLegHost:
    """The :class:`~telavox.b2bua.leg.LegHost` of legs living on a SIP endpoint."""

    def __init__(self, endpoint: SipEndpoint, reactor: Any, transport: str) -> None:
        self.endpoint = endpoint
        self.reactor = reactor
        self.transport = transport
        self.timers: TimerConfig = endpoint.options.timers

    def send_request(self, request: Request, dest: Destination,
                     on_event: Callable[[Action], None]) -> ClientTransaction:
        return self.endpoint.send_request(request, dest, on_event)

    def respond(self, txn: ServerTransaction, response: Response) -> None:
        self.endpoint.respond(txn, response)

    def send_stateless(self, message: Request | Response, dest: Destination) -> None:
        self.endpoint.send_stateless(message, dest)

    def via_for(self, dest: Destination) -> Via:
        return self.endpoint.via_for(dest)

    def destination_for(self, uri: Uri) -> Destination:
        if not isinstance(uri, SipUri):
            raise DialogError(f"cannot send to {uri}")
        transport = uri.transport or ("tls" if uri.secure else self.transport)
        port = uri.port or (5061 if transport == "tls" else 5060)
        return self.endpoint.destination(transport, uri.param("maddr") or uri.host_bare, port)

    def call_later(self, delay: float, fn: Callable[[], object]) -> Any:
        return self.reactor.callLater(delay, fn)


class LegTable:
    """The live legs of one component, by dialog id, and the dispatch of
    the traffic that belongs to them.

    A leg stays findable for ``linger`` seconds after it is unregistered, so
    that a late retransmitted BYE or ACK still meets its leg (Timer J/H
    scale) instead of a 481.
    """

    def __init__(self, call_later: Callable[..., Any], linger: float) -> None:
        self._call_later = call_later
        self.linger = linger
        self._legs: dict[tuple[str, str], Leg] = {}
        self._incoming: dict[ServerTransaction, IncomingLeg] = {}

    def __len__(self) -> int:
        return len(self._legs)

    @staticmethod
    def key(leg: Leg) -> tuple[str, str] | None:
        """The leg's dialog id as (Call-ID, our tag), once it has one."""
        if isinstance(leg, IncomingLeg):
            return (leg.invite.call_id, leg.local_tag)
        if isinstance(leg, OutgoingLeg) and leg.invite is not None:
            return (leg.invite.call_id, leg.invite.from_tag or "")
        return None

    def register(self, leg: Leg) -> None:
        """Make ``leg`` reachable by its dialog id (and its INVITE's transaction)."""
        key = self.key(leg)
        if key is not None:
            self._legs[key] = leg
        if isinstance(leg, IncomingLeg):
            self._incoming[leg.txn] = leg

    def unregister(self, leg: Leg) -> None:
        """Forget ``leg`` after the linger time."""
        key = self.key(leg)
        if key is not None and self._legs.get(key) is leg:
            self._call_later(self.linger, self._forget, key, leg)
        if isinstance(leg, IncomingLeg):
            self._incoming.pop(leg.txn, None)

    def _forget(self, key: tuple[str, str], leg: Leg) -> None:
        if self._legs.get(key) is leg:
            del self._legs[key]

    def find(self, call_id: str, local_tag: str) -> Leg | None:
        """The live leg whose dialog has ``call_id`` and our tag ``local_tag``."""
        leg = self._legs.get((call_id, local_tag))
        return None if leg is None or leg.ended else leg

    # -- dispatch ---------------------------------------------------------------------------

    @staticmethod
    def incoming(legs: LegHost, endpoint: SipEndpoint, event: RequestIn, contact: NameAddr
                 ) -> IncomingLeg | None:
        """A new incoming leg for ``event``'s INVITE (its listener a
        :class:`NoListener` until a call takes it), or None once the INVITE
        was answered 400 because its dialog fields do not parse."""
        try:
            return IncomingLeg(legs, NoListener(), event.request, event.txn, contact)
        except (DialogError, HeaderError) as e:
            endpoint.reply(event, 400, f"Bad Request ({e})", to_tag=new_tag())
            return None

    def dispatch(self, endpoint: SipEndpoint, event: RequestIn,
                 invite: Callable[[RequestIn], None], allow: str,
                 options: tuple[tuple[str, str], ...] = ()) -> None:
        """Route a request: CANCEL and in-dialog requests to their legs, a
        new INVITE to ``invite``, OPTIONS answered 200 (with Allow, Accept
        and ``options``), a stray BYE 481, anything else 405 with Allow."""
        request = event.request
        method = request.method
        if method == "CANCEL":
            self.cancel(endpoint, event)
        elif request.to_tag:
            self.in_dialog(endpoint, event)
        elif method == "INVITE":
            invite(event)
        elif method == "OPTIONS":
            endpoint.reply(event, 200, to_tag=new_tag(), extra=(
                ("Allow", allow), ("Accept", "application/sdp"), *options))
        elif method == "BYE":
            endpoint.reply(event, 481, to_tag=new_tag())
        else:
            endpoint.reply(event, 405, to_tag=new_tag(), extra=(("Allow", allow),))

    def in_dialog(self, endpoint: SipEndpoint, event: RequestIn) -> None:
        """A request with a To tag: to its leg, or 481."""
        request = event.request
        leg = self._legs.get((request.call_id, request.to_tag or ""))
        if leg is None:
            endpoint.reply(event, 481)
        else:
            leg.receive(request, event.txn)

    def cancel(self, endpoint: SipEndpoint, event: RequestIn) -> None:
        """CANCEL (§9.2): 200 to it, then 487 to its INVITE through the leg."""
        invite = endpoint.layer.find_invite(event.request)
        if invite is None:
            endpoint.reply(event, 481)
            return
        endpoint.reply(event, 200)
        leg = self._incoming.get(invite)
        if leg is not None:
            leg.cancelled()
        elif invite.status < 200:
            endpoint.respond(invite, make_response(invite.request, 487, to_tag=new_tag()))

    def ack(self, event: AckIn) -> None:
        """The ACK of a 2xx we sent (to an INVITE or a re-INVITE)."""
        request = event.request
        leg = self._legs.get((request.call_id, request.to_tag or ""))
        if leg is not None and not leg.ended:
            leg.acked(request)

    def stray_response(self, event: StrayResponse) -> None:
        """A 2xx retransmitted after our INVITE's transaction ended: ACK again."""
        response = event.response
        if not response.success or response.cseq.method != "INVITE":
            return
        leg = self._legs.get((response.call_id, response.from_tag or ""))
        if isinstance(leg, OutgoingLeg):
            leg.retransmitted_2xx(response)

    def server_failure(self, event: Any) -> None:
        """A response on an incoming leg's INVITE never got its ACK or could
        not be sent."""
        leg = self._incoming.get(event.txn)
        if leg is not None:
            leg.server_failed("transport failure" if isinstance(event, TransportFailed)
                              else "no ACK")


class NoListener:
    """Stands in for the call until it takes the leg (and sets itself as
    the leg's listener): whatever the leg reports meanwhile is dropped."""

    def __getattr__(self, name: str) -> Callable[..., None]:
        return lambda *args, **kw: None


NO_LISTENER: Any = NoListener()
"""The listener of a leg whose call has ended (it holds no state)."""


def let_go(owner: object, *legs: Any) -> None:
    """``owner`` (a call) has ended: each of its legs that still reports to
    it reports to nobody now.  A leg keeping its ended call as listener ties
    the two in a reference cycle, left to the cyclic collector (whose full
    passes grow with everything a busy SIP server holds) instead of being
    freed with the call."""
    for leg in legs:
        if leg is not None and leg.listener is owner:
            leg.listener = NO_LISTENER
            if getattr(leg, "user_data", None) is owner:
                leg.user_data = None


class SafeCall:
    """A delayed call whose ``cancel`` may come after it ran (as the sans-IO
    cores' ``Cancellable`` promises), unlike Twisted's IDelayedCall."""

    def __init__(self, delayed: Any) -> None:
        self.delayed = delayed

    def cancel(self) -> None:
        if self.delayed.active():
            self.delayed.cancel()


class LegHandlers:
    """The :class:`~telavox.transport.interfaces.ISipHandler` methods of a
    component whose legs live in ``self.table``: ACKs of our 2xx, stray 2xx
    retransmissions and failed server transactions go to their legs."""

    table: LegTable

    def handle_ack(self, endpoint: SipEndpoint, event: AckIn) -> None:
        """The ACK of a 2xx we sent on an incoming leg."""
        self.table.ack(event)

    def handle_stray_response(self, endpoint: SipEndpoint, event: StrayResponse) -> None:
        """A 2xx retransmitted after our INVITE's transaction ended: ACK again."""
        self.table.stray_response(event)

    def handle_server_failure(self, endpoint: SipEndpoint, event: Any) -> None:
        """A response on an incoming leg's INVITE never got its ACK or could
        not be sent."""
        self.table.server_failure(event)
