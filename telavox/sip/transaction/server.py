"""Server transactions (RFC 3261 §17.2, RFC 6026 §7.1).

Owns :class:`ServerInvite` (figure 7 plus Accepted: the TU's 2xx
retransmissions pass through until Timer L, INVITE retransmissions are
absorbed) and :class:`ServerNonInvite` (figure 8).  Each is a transition table
over :class:`~.base.State` x :class:`~.base.Input`.

A retransmitted request gets the last response again.  A 3xx–6xx to an INVITE
is retransmitted (Timer G, unreliable transports) until the ACK comes or Timer
H gives up.  Where the TU has not answered an INVITE within
``TimerConfig.trying_delay`` the transaction sends 100 Trying itself (§17.2.1).

Responses go where §18.2.2 (with RFC 3581 rport) says: back over the
connection the request came on for reliable transports, else to the
``received``/``rport`` address of the top Via, or its ``maddr``.
"""

from __future__ import annotations

from typing import ClassVar

from telavox.sip.hdrtypes import Via
from telavox.sip.message import Request, Response, make_response
from telavox.sip.transaction.base import Handler, Input, State, TimerHost, Transaction
from telavox.sip.transaction.events import (
    Action,
    Destination,
    Send,
    Source,
    Terminated,
    TimedOut,
    TransportFailed,
)

__all__ = ["ServerInvite", "ServerNonInvite", "ServerTransaction", "response_destination"]

DEFAULT_PORTS = {"udp": 5060, "tcp": 5060, "tls": 5061, "ws": 80, "wss": 443}


def response_destination(via: Via, source: Source) -> Destination:
    """Where a response to a request with top Via ``via`` that arrived from
    ``source`` goes (RFC 3261 §18.2.2, RFC 3581 §4)."""
    transport = source.transport
    if source.reliable:
        host = via.received or source.host
        port = source.port if source.flow is not None or source.local else (
            via.port or DEFAULT_PORTS.get(transport, 5060))
        return Destination(transport, host, port, flow=source.flow, local=source.local,
                           listener=source.listener)
    maddr = via.maddr
    if maddr:
        return Destination(transport, maddr, via.port or DEFAULT_PORTS.get(transport, 5060),
                           listener=source.listener)
    if via.has_rport:
        return Destination(transport, source.host, source.port, listener=source.listener)
    host = via.received or source.host
    return Destination(transport, host, via.port or DEFAULT_PORTS.get(transport, 5060),
                       listener=source.listener)


class ServerTransaction(Transaction):
    """A request we received and the responses we give it.

    ``last_response`` is the last response sent while the transaction may
    still send it again or match an ACK to it; once it only lingers (an
    INVITE answered 2xx, which the TU repeats; a non-INVITE answered, whose
    answer is kept as bytes for retransmitted requests) it is None and
    ``status`` tells what was sent.
    """

    __slots__ = ("_interval", "_last", "dest", "last_response")

    def __init__(self, host: TimerHost, key: tuple[str, ...], request: Request, via: Via,
                 source: Source, now: float) -> None:
        super().__init__(host, key, request, now)
        # where the responses go is all that is kept of ``source`` (the TU
        # has it in RequestIn): one object fewer per lingering transaction
        self.dest = response_destination(via, source)
        self._last: Send | None = None
        self._interval = host.timers.t1
        self.last_response: Response | None = None

    def start(self, now: float) -> list[Action]:
        """Called once the TU has been told of the request."""
        return []

    def _terminate(self) -> None:
        super()._terminate()
        if self._last is not None:
            # the Send pointed back here: without that cycle an ended
            # transaction is freed at once, not by the cyclic collector
            self._last.txn = None

    def respond(self, response: Response, now: float) -> list[Action]:
        """The TU sends ``response`` on this transaction."""
        status = response.status
        if status < 200:
            what = Input.TU_PROVISIONAL
        elif status < 300:
            what = Input.TU_SUCCESS
        else:
            what = Input.TU_FAILURE
        return self.handle(what, response, now)

    def on_request(self, request: Request, now: float) -> list[Action]:
        """A retransmission of the request, or (INVITE) its ACK, arrived."""
        what = Input.ACK if request.method == "ACK" else Input.REQUEST
        return self.handle(what, request, now)

    def on_transport_error(self, now: float) -> list[Action]:
        """The transport could not send our response (§17.2.4)."""
        return self.handle(Input.TRANSPORT_ERROR, None, now)

    @property
    def responded(self) -> bool:
        """True once the TU has sent any response."""
        return self.status != 0

    # shared handlers

    def _send_response(self, response: Response) -> list[Action]:
        self.last_response = response
        self.status = response.status
        self._last = Send(response, self.dest, self)
        return [self._last]

    @staticmethod
    def _lighten(response: Response) -> None:
        """Let the parsed views of a final response go (a cache its headers
        rebuild on demand): the transaction keeps the response for 64*T1
        only to send it again or read its status, and each view is an object
        the cyclic collector would walk.  A new empty dict, not a cleared
        one: the collector does not track that one at all."""
        response.headers.views = {}

    def _send_once(self, response: Response) -> list[Action]:
        """Send a response the transaction never sends again (a 2xx to an
        INVITE: the TU repeats it, RFC 6026 §7.1), so neither it nor a Send
        is kept for the 64*T1 the transaction lingers."""
        self.last_response = None
        self.status = response.status
        if self._last is not None:
            self._last.txn = None
            self._last = None
        return [Send(response, self.dest, self)]

    def _resend(self, arg: object, now: float) -> list[Action]:
        return [self._last] if self._last is not None else []

    def _transport_error(self, arg: object, now: float) -> list[Action]:
        self._terminate()
        return [TransportFailed(self), Terminated(self, "transport-error")]

    def _end(self, arg: object, now: float) -> list[Action]:
        self._terminate()
        return [Terminated(self, str(self.status))]


class ServerInvite(ServerTransaction):
    """INVITE server transaction: Proceeding → Completed → Confirmed, or
    Proceeding → Accepted."""

    __slots__ = ()
    initial = State.PROCEEDING

    def start(self, now: float) -> list[Action]:
        delay = self._host.timers.trying_delay
        if delay is not None:
            self.set_timer(Input.TIMER_TRYING, delay, now)
        return []

    def _auto_trying(self, arg: object, now: float) -> list[Action]:
        if self.status:
            return []
        return self._send_response(make_response(self.request, 100))

    def _provisional(self, arg: object, now: float) -> list[Action]:
        assert isinstance(arg, Response)
        self.cancel_timer(Input.TIMER_TRYING)
        return self._send_response(arg)

    def _success(self, arg: object, now: float) -> list[Action]:
        assert isinstance(arg, Response)
        self.cancel_timer(Input.TIMER_TRYING)
        self.state = State.ACCEPTED
        self.set_timer(Input.TIMER_L, self._host.timers.timeout, now)
        self._release()
        self._lighten(arg)
        return self._send_once(arg)

    def _success_again(self, arg: object, now: float) -> list[Action]:
        assert isinstance(arg, Response)
        return self._send_once(arg)

    def _failure(self, arg: object, now: float) -> list[Action]:
        assert isinstance(arg, Response)
        self.cancel_timer(Input.TIMER_TRYING)
        self.state = State.COMPLETED
        timers = self._host.timers
        if not self.dest.reliable:
            self._interval = timers.t1
            self.set_timer(Input.TIMER_G, timers.t1, now)
        self.set_timer(Input.TIMER_H, timers.timeout, now)
        return self._send_response(arg)

    def _retransmit(self, arg: object, now: float) -> list[Action]:
        self._interval = self._host.timers.next_interval(self._interval, cap=True)
        self.set_timer(Input.TIMER_G, self._interval, now)
        return self._resend(arg, now)

    def _ack(self, arg: object, now: float) -> list[Action]:
        self.state = State.CONFIRMED
        self.cancel_timer(Input.TIMER_G)
        self.cancel_timer(Input.TIMER_H)
        delay = 0.0 if self.dest.reliable else self._host.timers.t4
        self.set_timer(Input.TIMER_I, delay, now)
        self._release()
        return []

    def _no_ack(self, arg: object, now: float) -> list[Action]:
        self._terminate()
        return [TimedOut(self), Terminated(self, "timeout")]

    TABLE: ClassVar[dict[tuple[State, Input], Handler]] = {
        (State.PROCEEDING, Input.REQUEST): ServerTransaction._resend,
        (State.PROCEEDING, Input.TIMER_TRYING): _auto_trying,
        (State.PROCEEDING, Input.TU_PROVISIONAL): _provisional,
        (State.PROCEEDING, Input.TU_SUCCESS): _success,
        (State.PROCEEDING, Input.TU_FAILURE): _failure,
        (State.PROCEEDING, Input.TRANSPORT_ERROR): ServerTransaction._transport_error,
        (State.COMPLETED, Input.REQUEST): ServerTransaction._resend,
        (State.COMPLETED, Input.TIMER_G): _retransmit,
        (State.COMPLETED, Input.TIMER_H): _no_ack,
        (State.COMPLETED, Input.ACK): _ack,
        (State.COMPLETED, Input.TRANSPORT_ERROR): ServerTransaction._transport_error,
        (State.CONFIRMED, Input.TIMER_I): ServerTransaction._end,
        (State.ACCEPTED, Input.TU_SUCCESS): _success_again,
        (State.ACCEPTED, Input.TIMER_L): ServerTransaction._end,
    }


class ServerNonInvite(ServerTransaction):
    """Non-INVITE server transaction: Trying → Proceeding → Completed."""

    __slots__ = ()
    initial = State.TRYING

    def _provisional(self, arg: object, now: float) -> list[Action]:
        assert isinstance(arg, Response)
        self.state = State.PROCEEDING
        return self._send_response(arg)

    def _final(self, arg: object, now: float) -> list[Action]:
        assert isinstance(arg, Response)
        self.state = State.COMPLETED
        delay = 0.0 if self.dest.reliable else self._host.timers.timeout
        self.set_timer(Input.TIMER_J, delay, now)
        # only the response's bytes are needed until Timer J
        self._release()
        self._lighten(arg)
        actions = self._send_response(arg)
        assert self._last is not None
        self._last.keep_wire()
        self.last_response = None
        return actions

    TABLE: ClassVar[dict[tuple[State, Input], Handler]] = {
        (State.TRYING, Input.TU_PROVISIONAL): _provisional,
        (State.TRYING, Input.TU_SUCCESS): _final,
        (State.TRYING, Input.TU_FAILURE): _final,
        (State.PROCEEDING, Input.REQUEST): ServerTransaction._resend,
        (State.PROCEEDING, Input.TU_PROVISIONAL): _provisional,
        (State.PROCEEDING, Input.TU_SUCCESS): _final,
        (State.PROCEEDING, Input.TU_FAILURE): _final,
        (State.PROCEEDING, Input.TRANSPORT_ERROR): ServerTransaction._transport_error,
        (State.COMPLETED, Input.REQUEST): ServerTransaction._resend,
        (State.COMPLETED, Input.TIMER_J): ServerTransaction._end,
        (State.COMPLETED, Input.TRANSPORT_ERROR): ServerTransaction._transport_error,
    }
