"""A small SIP user agent on a :class:`~telavox.transport.endpoint.SipEndpoint`:
OPTIONS, REGISTER and calls (RFC 3261 §8, §10, §11, §13–§15, §22).

Owns :class:`UserAgent` (the endpoint's :class:`ISipHandler`), :class:`Call`,
:class:`Identity` and :class:`CallError`.  It is the helper that tests, the
softphone and the gateway's trunk registration build on, not the PBX: one
SDP body in each direction, no re-INVITE, no PRACK, no DNS (RFC 3263).

Theory of operation.  Out-of-dialog requests are built with
:func:`telavox.sip.ua.new_request` and sent with
:meth:`SipEndpoint.request`; a 401/407 is answered once per challenge with
:func:`telavox.sip.ua.authorize`, which gives up on a second non-stale
challenge.  An INVITE is sent with :meth:`SipEndpoint.send_request`, so that
every provisional and every 2xx (several when a proxy forks) reaches the
:class:`Call`; a :class:`~telavox.sip.dialog.DialogSet` turns them into
dialogs, each 2xx is ACKed (§13.2.2.4: the same ACK again for a
retransmission) and the 2xx of any fork but the first is ended with BYE.
Requests inside a dialog go to the dialog's next hop (first route or remote
target) over the transport its URI names, else the agent's own.

Incoming requests: OPTIONS gets 200 with Allow/Accept; an INVITE becomes a
:class:`Call` handed to ``on_invite``, which answers it with
:meth:`Call.ring`, :meth:`Call.answer` or :meth:`Call.reject`; the 2xx is
retransmitted from T1 doubling to T2 until its ACK comes (§13.3.1.4); a BYE
ends its call with 200; a CANCEL of a pending INVITE gets 200 and the INVITE
487; a NOTIFY for one of our subscriptions (:meth:`UserAgent.subscribe`,
matched by Call-ID and our tag) is kept in :attr:`UserAgent.notifications`
and answered 200; requests naming an unknown dialog get 481.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from typing import Any

import attrs
from twisted.internet import defer
from twisted.internet.interfaces import IDelayedCall
from twisted.logger import Logger
from zope.interface import implementer

from telavox.sip.dialog import Dialog, DialogError, DialogId, DialogSet
from telavox.sip.hdrtypes import HeaderError, NameAddr
from telavox.sip.message import Request, Response, make_cancel, make_response, new_tag
from telavox.sip.transaction import (
    AckIn,
    Action,
    ClientTransaction,
    Destination,
    RequestIn,
    ServerTransaction,
    StrayResponse,
    TransportFailed,
    client_response,
)
from telavox.sip.ua import authorize, new_call_id, new_cnonce, new_request, uas_response
from telavox.sip.uri import SipUri, Uri, parse_uri
from telavox.transport.endpoint import SipEndpoint
from telavox.transport.interfaces import ISipHandler

__all__ = ["ALLOW", "Call", "CallError", "Identity", "UserAgent"]

ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS"
SDP = "application/sdp"
MAX_AUTH_RETRIES = 3
Extra = Sequence[tuple[str, str]]


@attrs.frozen
class Identity:
    """Who the agent is: ``sip:user@domain`` with an optional display name."""

    user: str
    domain: str
    display_name: str | None = None

    @property
    def uri(self) -> SipUri:
        """The address of record."""
        return SipUri.build(self.domain, self.user)

    def name_addr(self) -> NameAddr:
        """The From (and REGISTER To) value, without tag."""
        return NameAddr(uri=self.uri, display_name=self.display_name)


class CallError(Exception):
    """A call that did not come about or ended before it was confirmed.

    ``response`` is the final response that ended it (a 408 or 503 made up
    locally for a timeout or transport failure), None when it ended otherwise.
    """

    def __init__(self, reason: str, response: Response | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.response = response

    @property
    def status(self) -> int | None:
        """The status of :attr:`response`, if any."""
        return None if self.response is None else self.response.status


def _uri(value: Uri | str) -> Uri:
    return parse_uri(value) if isinstance(value, str) else value


def _ignore(failure: Any) -> None:
    UserAgent.log.failure("request failed", failure)


class Call:
    """One call, outgoing or incoming.

    ``state`` goes ``calling`` → ``early`` (a provisional response) →
    ``answered`` (incoming: 2xx sent, waiting for the ACK) → ``confirmed`` →
    ``ended``; :attr:`ended` fires with the reason once it is over (never
    fails).  ``provisional`` holds the 1xx received by an outgoing call.
    """

    def __init__(self, ua: UserAgent, outgoing: bool) -> None:
        self.ua = ua
        self.outgoing = outgoing
        self.state = "calling"
        self.dialog: Dialog | None = None
        self.request: Request | None = None
        self.local_sdp = b""
        self.remote_sdp = b""
        self.provisional: list[Response] = []
        self.ended: defer.Deferred[str] = defer.Deferred()
        self.end_reason: str | None = None
        self.notifies: list[Request] = []
        """NOTIFYs received inside the call (see :meth:`send_request`)."""
        # outgoing side
        self.on_provisional: Callable[[Call, Response], object] | None = None
        self._answered: defer.Deferred[Call] | None = None
        self._forks: DialogSet | None = None
        self._txn: ClientTransaction | None = None
        self._dest: Destination | None = None
        self._provisional_seen = False
        self._cancel_wanted = False
        self._cancel_sent = False
        # incoming side
        self._event: RequestIn | None = None
        self._ok: Response | None = None
        self._acked: defer.Deferred[Call] | None = None
        self._timer: IDelayedCall | None = None
        self._interval = 0.0
        self._waited = 0.0

    def __repr__(self) -> str:
        side = "out" if self.outgoing else "in"
        call_id = self.request.call_id if self.request is not None else "-"
        return f"<Call {side} {self.state} call-id={call_id}>"

    # -- both sides ------------------------------------------------------------------

    def bye(self) -> defer.Deferred[Response]:
        """End a confirmed call with BYE (§15.1.1); fires with the BYE's final
        response.  Fails with RuntimeError when the call is not confirmed."""
        dialog = self.dialog
        if dialog is None or self.state != "confirmed":
            return defer.fail(RuntimeError(f"cannot send BYE in state {self.state}"))
        d = self.ua._bye(dialog)
        self._end("local BYE")
        return d

    def send_request(self, method: str, *, extra: tuple[tuple[str, str], ...] = (),
                     body: bytes = b"", content_type: str | None = None
                     ) -> defer.Deferred[Response]:
        """Send ``method`` (REFER, INFO, ...) inside the confirmed call;
        fires with its final response.  NOTIFYs that come back in the
        dialog (a REFER's progress) are answered 200 and kept in
        :attr:`notifies`."""
        dialog = self.dialog
        if dialog is None or self.state != "confirmed":
            return defer.fail(RuntimeError(f"cannot send {method} in state {self.state}"))
        dest = self.ua.destination_for(dialog.next_hop)
        request = dialog.create_request(method, via=self.ua.endpoint.via_for(dest), body=body,
                                        content_type=content_type, extra=extra)
        return self.ua.send(request, dest, dialog)

    def _end(self, reason: str) -> None:
        if self.state == "ended":
            return
        self.state = "ended"
        self.end_reason = reason
        self._stop_timer()
        if self.dialog is not None:
            self.dialog.terminate()
            if self.ua.calls.get(self.dialog.id) is self:
                del self.ua.calls[self.dialog.id]
        if self._event is not None:
            self.ua._incoming.pop(self._event.txn, None)
        if self._acked is not None and not self._acked.called:
            self._acked.errback(CallError(reason))
        self.ended.callback(reason)

    def _stop_timer(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None

    # -- outgoing ------------------------------------------------------------------------

    def cancel(self) -> None:
        """Give up on an outgoing call not answered yet: CANCEL (§9.1), sent as
        soon as a provisional response has come; the call then fails with 487.
        A 2xx that crosses the CANCEL is ACKed and ended with BYE."""
        if not self.outgoing or self.dialog is not None or self.state == "ended":
            return
        if not self._cancel_wanted:
            self._cancel_wanted = True
            if self._provisional_seen:
                self._send_cancel()

    def _send_cancel(self) -> None:
        assert self.request is not None and self._txn is not None
        self._cancel_sent = True
        d = self.ua.endpoint.request(make_cancel(self.request), self._txn.dest)
        d.addErrback(_ignore)

    def _send_invite(self, request: Request, dest: Destination) -> None:
        self.request = request
        self._dest = dest
        self._forks = DialogSet(request)
        self._provisional_seen = False
        self._txn = self.ua.endpoint.send_request(
            request, dest, lambda event: self._invite_event(request, event))

    def _invite_event(self, request: Request, event: Action) -> None:
        if request is not self.request:
            return  # an earlier attempt, answered with a challenge
        response = client_response(request, event)
        if response is None:
            return
        if response.status < 200:
            self._on_provisional(response)
        elif response.status < 300:
            self._on_success(response)
        else:
            self._on_failure(request, response)

    def _on_provisional(self, response: Response) -> None:
        assert self._forks is not None
        self._provisional_seen = True
        with contextlib.suppress(DialogError, HeaderError):
            self._forks.on_response(response)
        if response.status > 100:
            self.provisional.append(response)
            if self.state == "calling":
                self.state = "early"
        if self._cancel_wanted:
            if not self._cancel_sent:
                self._send_cancel()
        elif response.status > 100 and self.on_provisional is not None:
            self.on_provisional(self, response)

    def _on_success(self, response: Response) -> None:
        assert self._forks is not None and self._answered is not None
        try:
            dialog = self._forks.on_response(response)
        except (DialogError, HeaderError) as e:
            self.ua.log.info("unusable 2xx {response}: {error}", response=repr(response),
                             error=str(e))
            return
        if dialog is None:
            return
        self._ack(dialog, response)
        if dialog is self.dialog or dialog.terminated:
            return  # a retransmission: ACKed again
        if self.dialog is None and not self._cancel_wanted and self.state != "ended":
            self.dialog = dialog
            self.state = "confirmed"
            self.remote_sdp = response.body
            self.ua.calls[dialog.id] = self
            if not self._answered.called:
                self._answered.callback(self)
            return
        # another fork answered too (§13.2.2.4), or the answer crossed our CANCEL
        self.ua._bye(dialog).addErrback(_ignore)
        if self.dialog is None:
            self._end("answered after CANCEL")
            if not self._answered.called:
                self._answered.errback(CallError("answered after CANCEL", response))

    def _ack(self, dialog: Dialog, response: Response) -> None:
        assert self.request is not None
        dest = self.ua.destination_for(dialog.next_hop)
        auth = tuple((name, value) for name in ("Authorization", "Proxy-Authorization")
                     for value in self.request.headers.get_all(name))
        ack = dialog.ack_for(response, via=self.ua.endpoint.via_for(dest), extra=auth)
        self.ua.endpoint.send_stateless(ack, dest)

    def _on_failure(self, request: Request, response: Response) -> None:
        assert self._forks is not None and self._answered is not None
        if response.status in (401, 407) and not self._cancel_wanted and self._dest:
            retry = self.ua._authorize(request, response, self._dest)
            if retry is not None:
                self._send_invite(retry, self._dest)
                return
        self._forks.on_response(response)
        reason = f"{response.status} {response.reason}"
        self._end(reason)
        if not self._answered.called:
            self._answered.errback(CallError(reason, response))

    # -- incoming ------------------------------------------------------------------------

    def _respond(self, status: int, reason: str | None = None, sdp: bytes = b"") -> Response:
        if self.outgoing or self._event is None or self.dialog is None:
            raise RuntimeError("only an incoming call can be answered")
        if self.state not in ("calling", "early"):
            raise RuntimeError(f"cannot answer a call in state {self.state}")
        assert self.request is not None
        response = uas_response(self.request, status, reason, to_tag=self.dialog.local_tag,
                                contact=self.dialog.local_contact, body=sdp,
                                content_type=SDP if sdp else None)
        self.ua.endpoint.respond(self._event.txn, response)
        return response

    def ring(self, status: int = 180, sdp: bytes = b"") -> None:
        """Send a provisional response (180 Ringing, or 183 with early media SDP)."""
        self._respond(status, sdp=sdp)
        self.state = "early"

    def answer(self, sdp: bytes) -> defer.Deferred[Call]:
        """Accept the call with 200 and our SDP; fires with the call once the
        ACK has come, fails with CallError when the call ends first."""
        self._ok = self._respond(200, sdp=sdp)
        assert self.dialog is not None
        self.dialog.confirm()
        self.local_sdp = sdp
        self.state = "answered"
        self._acked = defer.Deferred()
        self._interval = self.ua.endpoint.options.timers.t1
        self._waited = 0.0
        self._timer = self.ua.reactor.callLater(self._interval, self._retransmit_ok)
        return self._acked

    def reject(self, status: int = 486, reason: str | None = None) -> None:
        """Refuse the call with a 3xx–6xx final response."""
        self._respond(status, reason)
        self._end(f"rejected {status}")

    def _retransmit_ok(self) -> None:
        """§13.3.1.4: resend the 2xx until its ACK; after 64*T1 give up with BYE."""
        self._timer = None
        if self.state != "answered" or self._ok is None or self._event is None:
            return
        timers = self.ua.endpoint.options.timers
        self._waited += self._interval
        if self._waited >= timers.timeout:
            self.state = "confirmed"
            self.bye().addErrback(_ignore)
            return
        self.ua.endpoint.send_stateless(self._ok, self._event.txn.dest)
        self._interval = min(self._interval * 2, timers.t2)
        self._timer = self.ua.reactor.callLater(self._interval, self._retransmit_ok)

    def _on_ack(self, ack: Request) -> None:
        if self.state != "answered" or self._ok is None or ack.cseq.seq != self._ok.cseq.seq:
            return
        self._stop_timer()
        self.state = "confirmed"
        if self._acked is not None and not self._acked.called:
            self._acked.callback(self)


@implementer(ISipHandler)
class UserAgent:
    """A user agent on one endpoint (given, or built by ``endpoint(self)``).

    ``identity`` is who it is; ``credentials`` the (username, password)
    answering digest challenges; ``transport`` the one put in Contact and used
    when a URI names none; ``on_invite`` gets each incoming :class:`Call`
    (without it calls are refused with 480).  :meth:`stop` stops the
    endpoint without ending calls.
    """

    log = Logger(namespace="telavox.ua")

    def __init__(
        self,
        endpoint: SipEndpoint | Callable[[UserAgent], SipEndpoint],
        identity: Identity,
        credentials: tuple[str, str] | None = None,
        *,
        transport: str = "udp",
        on_invite: Callable[[Call], object] | None = None,
        reactor: Any = None,
        user_agent: str = "telavox-ua",
    ) -> None:
        if isinstance(endpoint, SipEndpoint):
            endpoint.handler = self
            self.endpoint = endpoint
        else:
            self.endpoint = endpoint(self)
        if reactor is None:
            from twisted.internet import reactor as default_reactor
            reactor = default_reactor
        self.reactor = reactor
        self.identity = identity
        self.credentials = credentials
        self.transport = transport
        self.on_invite = on_invite
        self.user_agent = user_agent
        self.calls: dict[DialogId, Call] = {}
        self._incoming: dict[ServerTransaction, Call] = {}
        self._register_call_id = new_call_id()
        self._register_cseq = 0
        self._subscriptions: set[tuple[str, str]] = set()
        self.notifications: list[Request] = []
        """NOTIFYs received for our subscriptions, in arrival order."""

    # -- life cycle and addresses -------------------------------------------------------

    def start(self) -> None:
        """Start the endpoint (bind its listeners)."""
        self.endpoint.start()

    def stop(self) -> defer.Deferred[None]:
        """Stop timers and the endpoint; fires once its sockets are closed."""
        for call in [*self.calls.values(), *self._incoming.values()]:
            call._stop_timer()
        return self.endpoint.stop()

    def contact(self, transport: str | None = None) -> NameAddr:
        """Our Contact for ``transport`` (default: the agent's)."""
        uri = self.endpoint.contact_uri(transport or self.transport, self.identity.user)
        return NameAddr(uri=uri)

    def destination_for(self, uri: Uri) -> Destination:
        """Where a request to ``uri`` goes: its maddr or host, its port, its
        transport parameter (else ours; TLS for sips:).  No DNS SRV/NAPTR."""
        if not isinstance(uri, SipUri):
            raise ValueError(f"cannot send to {uri}")
        transport = uri.transport or ("tls" if uri.secure else self.transport)
        port = uri.port or (5061 if transport == "tls" else 5060)
        return self.endpoint.destination(transport, uri.param("maddr") or uri.host_bare, port)

    # -- requests we send ------------------------------------------------------------------

    def _new(self, method: str, uri: Uri, dest: Destination, *, to: NameAddr | None = None,
             **kw: Any) -> Request:
        return new_request(method, uri, from_=self.identity.name_addr(),
                           to=to or NameAddr(uri=uri), via=self.endpoint.via_for(dest),
                           contact=self.contact(dest.transport), user_agent=self.user_agent,
                           **kw)

    def _authorize(self, request: Request, response: Response,
                   dest: Destination) -> Request | None:
        if self.credentials is None:
            return None
        username, password = self.credentials
        return authorize(request, response, username=username, password=password,
                         cnonce=new_cnonce(), via=self.endpoint.via_for(dest))

    async def _exchange(self, request: Request, dest: Destination,
                        dialog: Dialog | None) -> Response:
        response = await self.endpoint.request(request, dest)
        for _ in range(MAX_AUTH_RETRIES):
            if response.status not in (401, 407):
                break
            retry = self._authorize(request, response, dest)
            if retry is None:
                break
            if dialog is not None:
                dialog.local_seq = max(dialog.local_seq or 0, retry.cseq.seq)
            request = retry
            response = await self.endpoint.request(request, dest)
        return response

    def send(self, request: Request, dest: Destination,
             dialog: Dialog | None = None) -> defer.Deferred[Response]:
        """Send ``request``, answering 401/407 challenges; fires with the final
        response (408/503 made up locally on timeout/transport failure)."""
        return defer.Deferred.fromCoroutine(self._exchange(request, dest, dialog))

    def subscribe(self, target_uri: Uri | str, dest: Destination, event: str,
                  expires: int = 600, accept: str = "") -> defer.Deferred[Response]:
        """SUBSCRIBE to ``event`` at ``target_uri`` (RFC 6665); the NOTIFYs of
        the subscription land in :attr:`notifications`.  Fires with the final
        response to the SUBSCRIBE."""
        extra = [("Event", event), ("Expires", str(expires))]
        if accept:
            extra.append(("Accept", accept))
        request = self._new("SUBSCRIBE", _uri(target_uri), dest, extra=tuple(extra))
        self._subscriptions.add((request.call_id, request.from_tag or ""))
        return self.send(request, dest)

    def options(self, target_uri: Uri | str, dest: Destination) -> defer.Deferred[Response]:
        """Send OPTIONS to ``target_uri`` via ``dest``; fires with the final response."""
        request = self._new("OPTIONS", _uri(target_uri), dest, extra=(("Accept", SDP),))
        return self.send(request, dest)

    def register(self, registrar_uri: Uri | str, dest: Destination,
                 expires: int = 3600) -> defer.Deferred[Response]:
        """Bind our Contact to our address of record for ``expires`` seconds
        (0 removes it) at ``registrar_uri`` (§10.2); one Call-ID for all of
        the agent's registrations, CSeq growing.  Fires with the final response."""
        self._register_cseq += 1
        aor = self.identity.name_addr()
        request = self._new("REGISTER", _uri(registrar_uri), dest, to=aor,
                            call_id=self._register_call_id, cseq=self._register_cseq,
                            extra=(("Expires", str(expires)),))

        def note(response: Response) -> Response:
            self._register_cseq = max(self._register_cseq, response.cseq.seq)
            return response

        return self.send(request, dest).addCallback(note)

    def invite(self, target_uri: Uri | str, dest: Destination, sdp: bytes, *,
               on_provisional: Callable[[Call, Response], object] | None = None,
               extra: Extra = ()) -> defer.Deferred[Call]:
        """Call ``target_uri`` via ``dest`` offering ``sdp``.

        Fires with the confirmed :class:`Call` once a 2xx has come and been
        ACKed; fails with :class:`CallError` for a final failure, a timeout
        (408) or a transport failure (503).  Challenges are answered.
        ``on_provisional(call, response)`` sees each 1xx above 100; the call
        can be abandoned with :meth:`Call.cancel` (or by cancelling the
        Deferred).
        """
        uri = _uri(target_uri)
        request = self._new("INVITE", uri, dest, body=sdp, content_type=SDP,
                            extra=(("Allow", ALLOW), *extra))
        call = Call(self, outgoing=True)
        call.local_sdp = sdp
        call.on_provisional = on_provisional
        answered: defer.Deferred[Call] = defer.Deferred(lambda _: call.cancel())
        call._answered = answered
        call._send_invite(request, dest)
        return answered

    def _bye(self, dialog: Dialog) -> defer.Deferred[Response]:
        dest = self.destination_for(dialog.next_hop)
        request = dialog.create_request("BYE", via=self.endpoint.via_for(dest))
        dialog.terminate()
        return self.send(request, dest, dialog)

    # -- ISipHandler -----------------------------------------------------------------------

    def handle_request(self, endpoint: SipEndpoint, event: RequestIn) -> None:
        """Answer a new request (see the module docstring)."""
        request = event.request
        method = request.method
        if method == "CANCEL":
            self._on_cancel(endpoint, event)
        elif method == "NOTIFY" and (request.call_id, request.to_tag) in self._subscriptions:
            self.notifications.append(request)
            endpoint.reply(event, 200)
        elif request.to_tag:
            self._in_dialog(endpoint, event)
        elif method == "OPTIONS":
            endpoint.reply(event, 200, to_tag=new_tag(), extra=self._capabilities())
        elif method == "INVITE":
            self._on_invite(endpoint, event)
        elif method == "BYE":
            endpoint.reply(event, 481, to_tag=new_tag())
        else:
            endpoint.reply(event, 405, to_tag=new_tag(), extra=(("Allow", ALLOW),))

    @staticmethod
    def _capabilities() -> tuple[tuple[str, str], ...]:
        return (("Allow", ALLOW), ("Accept", SDP))

    def _in_dialog(self, endpoint: SipEndpoint, event: RequestIn) -> None:
        request = event.request
        call = self.calls.get(DialogId.of_request(request))
        if call is None or call.dialog is None:
            endpoint.reply(event, 481)
            return
        status = call.dialog.receive_request(request)
        if status is not None:
            endpoint.reply(event, status)
        elif request.method == "BYE":
            endpoint.reply(event, 200)
            call._end("remote BYE")
        elif request.method == "OPTIONS":
            endpoint.reply(event, 200, extra=self._capabilities())
        elif request.method == "NOTIFY":
            call.notifies.append(request)
            endpoint.reply(event, 200)
        elif request.method == "INVITE":
            endpoint.reply(event, 488, "Session Changes Not Supported")
        else:
            endpoint.reply(event, 501)

    def _on_invite(self, endpoint: SipEndpoint, event: RequestIn) -> None:
        request = event.request
        try:
            dialog = Dialog.from_uas(request, new_tag(), self.contact(event.source.transport))
        except (DialogError, HeaderError) as e:
            endpoint.reply(event, 400, f"Bad Contact ({e})", to_tag=new_tag())
            return
        call = Call(self, outgoing=False)
        call.request = request
        call.dialog = dialog
        call.remote_sdp = request.body
        call._event = event
        self.calls[dialog.id] = call
        self._incoming[event.txn] = call
        if self.on_invite is None:
            call.reject(480)
        else:
            self.on_invite(call)

    def _on_cancel(self, endpoint: SipEndpoint, event: RequestIn) -> None:
        invite = endpoint.layer.find_invite(event.request)
        if invite is None:
            endpoint.reply(event, 481)
            return
        endpoint.reply(event, 200)
        if invite.status >= 200:
            return
        call = self._incoming.get(invite)
        tag = call.dialog.local_tag if call is not None and call.dialog else new_tag()
        endpoint.respond(invite, make_response(invite.request, 487, to_tag=tag))
        if call is not None:
            call._end("cancelled")

    def handle_ack(self, endpoint: SipEndpoint, event: AckIn) -> None:
        """The ACK of a 2xx we sent confirms its call."""
        call = self.calls.get(DialogId.of_request(event.request))
        if call is not None and not call.outgoing:
            call._on_ack(event.request)

    def handle_stray_response(self, endpoint: SipEndpoint, event: StrayResponse) -> None:
        """A 2xx retransmitted after its INVITE transaction ended is ACKed again."""
        response = event.response
        if not response.success or response.cseq.method != "INVITE":
            return
        call = self.calls.get(DialogId.of_response(response))
        if call is not None and call.outgoing and call.dialog is not None:
            call._ack(call.dialog, response)

    def handle_server_failure(self, endpoint: SipEndpoint, event: Any) -> None:
        """Our response to an incoming INVITE could not be delivered: end the call."""
        call = self._incoming.get(event.txn)
        if call is not None and call.state != "confirmed":
            call._end("transport failure" if isinstance(event, TransportFailed) else "no ACK")
