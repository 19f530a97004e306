"""Client transactions (RFC 3261 §17.1, RFC 6026 §7.2).

Owns :class:`ClientInvite` (figure 5 plus the Accepted state: 2xx
retransmissions go to the TU until Timer M) and :class:`ClientNonInvite`
(figure 6).  Each is a transition table over :class:`~.base.State` x
:class:`~.base.Input`; see :mod:`telavox.sip.transaction.base`.

On unreliable transports the request is retransmitted (Timer A doubling
without cap for INVITE, Timer E doubling up to T2 and staying at T2 once a
provisional arrives); Timers B/F end a transaction that got no final
response.  A 3xx–6xx to an INVITE is acknowledged by the transaction itself
(:func:`~telavox.sip.message.make_error_ack`), once per response received.
"""

from __future__ import annotations

from typing import ClassVar

from telavox.sip.message import Request, Response, make_error_ack
from telavox.sip.transaction.base import Handler, Input, State, TimerHost, Transaction
from telavox.sip.transaction.events import (
    Action,
    Destination,
    ResponseIn,
    Send,
    Source,
    Terminated,
    TimedOut,
    TransportFailed,
)

__all__ = ["ClientInvite", "ClientNonInvite", "ClientTransaction"]


def _unpack(arg: object) -> tuple[Response, Source]:
    assert isinstance(arg, tuple)
    response, source = arg
    assert isinstance(response, Response) and isinstance(source, Source)
    return response, source


class ClientTransaction(Transaction):
    """A request we sent and the responses it gets back."""

    __slots__ = ("_ack", "_interval", "_send", "dest")

    def __init__(self, host: TimerHost, key: tuple[str, ...], request: Request,
                 dest: Destination, now: float) -> None:
        super().__init__(host, key, request, now)
        self.dest = dest
        self._send: Send | None = Send(request, dest, self)
        self._ack: Send | None = None
        self._interval = host.timers.t1

    def start(self, now: float) -> list[Action]:
        """Send the request and start the timers."""
        raise NotImplementedError

    def _terminate(self) -> None:
        super()._terminate()
        # the Sends pointed back here: without those cycles an ended
        # transaction is freed at once, not by the cyclic collector
        self._drop_request()
        if self._ack is not None:
            self._ack.txn = None

    def _drop_request(self) -> None:
        """Final response in: the request is not sent again."""
        if self._send is not None:
            self._send.txn = None
            self._send = None
        self._release()

    def _request_send(self) -> list[Action]:
        assert self._send is not None, "a request is only sent before its final response"
        return [self._send]

    @property
    def settled(self) -> bool:
        """True once no further event can reach the TU: a final response came
        and its retransmissions are absorbed (Completed).  An INVITE answered
        2xx is not settled: 2xx retransmissions still go to the TU until
        Timer M (RFC 6026)."""
        return self.state is State.COMPLETED

    def on_response(self, response: Response, source: Source, now: float) -> list[Action]:
        """A response matched this transaction."""
        status = response.status
        if status < 200:
            what = Input.PROVISIONAL
        elif status < 300:
            what = Input.SUCCESS
        else:
            what = Input.FAILURE
        return self.handle(what, (response, source), now)

    def on_transport_error(self, now: float) -> list[Action]:
        """The transport could not send the request (§17.1.4)."""
        return self.handle(Input.TRANSPORT_ERROR, None, now)

    # shared handlers

    def _deliver(self, arg: object, now: float) -> list[Action]:
        response, source = _unpack(arg)
        self.status = response.status
        return [ResponseIn(self, response, source)]

    def _transport_error(self, arg: object, now: float) -> list[Action]:
        self._terminate()
        return [TransportFailed(self), Terminated(self, "transport-error")]

    def _timeout(self, arg: object, now: float) -> list[Action]:
        self._terminate()
        return [TimedOut(self), Terminated(self, "timeout")]

    def _end(self, arg: object, now: float) -> list[Action]:
        self._terminate()
        return [Terminated(self, str(self.status))]


class ClientInvite(ClientTransaction):
    """INVITE client transaction: Calling → Proceeding → Completed/Accepted."""

    __slots__ = ()
    initial = State.CALLING

    def start(self, now: float) -> list[Action]:
        timers = self._host.timers
        if not self.dest.reliable:
            self.set_timer(Input.TIMER_A, timers.t1, now)
        self.set_timer(Input.TIMER_B, timers.timeout, now)
        return self._request_send()

    def _retransmit(self, arg: object, now: float) -> list[Action]:
        self._interval = self._host.timers.next_interval(self._interval, cap=False)
        self.set_timer(Input.TIMER_A, self._interval, now)
        return self._request_send()

    def _provisional(self, arg: object, now: float) -> list[Action]:
        self.state = State.PROCEEDING
        self.cancel_timer(Input.TIMER_A)
        self.cancel_timer(Input.TIMER_B)
        return self._deliver(arg, now)

    def _success(self, arg: object, now: float) -> list[Action]:
        self.state = State.ACCEPTED
        self.cancel_timer(Input.TIMER_A)
        self.cancel_timer(Input.TIMER_B)
        self.set_timer(Input.TIMER_M, self._host.timers.timeout, now)
        self._drop_request()
        return self._deliver(arg, now)

    def _failure(self, arg: object, now: float) -> list[Action]:
        response, _ = _unpack(arg)
        self.state = State.COMPLETED
        self.cancel_timer(Input.TIMER_A)
        self.cancel_timer(Input.TIMER_B)
        delay = 0.0 if self.dest.reliable else self._host.timers.timer_d
        self.set_timer(Input.TIMER_D, delay, now)
        self._ack = Send(make_error_ack(self.request, response), self.dest, self)
        self._drop_request()
        return [self._ack, *self._deliver(arg, now)]

    def _reack(self, arg: object, now: float) -> list[Action]:
        return [self._ack] if self._ack is not None else []

    TABLE: ClassVar[dict[tuple[State, Input], Handler]] = {
        (State.CALLING, Input.TIMER_A): _retransmit,
        (State.CALLING, Input.TIMER_B): ClientTransaction._timeout,
        (State.CALLING, Input.PROVISIONAL): _provisional,
        (State.CALLING, Input.SUCCESS): _success,
        (State.CALLING, Input.FAILURE): _failure,
        (State.CALLING, Input.TRANSPORT_ERROR): ClientTransaction._transport_error,
        (State.PROCEEDING, Input.PROVISIONAL): ClientTransaction._deliver,
        (State.PROCEEDING, Input.SUCCESS): _success,
        (State.PROCEEDING, Input.FAILURE): _failure,
        (State.PROCEEDING, Input.TRANSPORT_ERROR): ClientTransaction._transport_error,
        (State.COMPLETED, Input.FAILURE): _reack,
        (State.COMPLETED, Input.TIMER_D): ClientTransaction._end,
        (State.COMPLETED, Input.TRANSPORT_ERROR): ClientTransaction._transport_error,
        (State.ACCEPTED, Input.SUCCESS): ClientTransaction._deliver,
        (State.ACCEPTED, Input.TIMER_M): ClientTransaction._end,
    }


class ClientNonInvite(ClientTransaction):
    """Non-INVITE client transaction: Trying → Proceeding → Completed."""

    __slots__ = ()
    initial = State.TRYING

    def start(self, now: float) -> list[Action]:
        timers = self._host.timers
        if not self.dest.reliable:
            self.set_timer(Input.TIMER_E, timers.t1, now)
        self.set_timer(Input.TIMER_F, timers.timeout, now)
        return self._request_send()

    def _retransmit(self, arg: object, now: float) -> list[Action]:
        timers = self._host.timers
        if self.state is State.PROCEEDING:
            self._interval = timers.t2
        else:
            self._interval = timers.next_interval(self._interval, cap=True)
        self.set_timer(Input.TIMER_E, self._interval, now)
        return self._request_send()

    def _provisional(self, arg: object, now: float) -> list[Action]:
        self.state = State.PROCEEDING
        return self._deliver(arg, now)

    def _final(self, arg: object, now: float) -> list[Action]:
        self.state = State.COMPLETED
        self.cancel_timer(Input.TIMER_E)
        self.cancel_timer(Input.TIMER_F)
        delay = 0.0 if self.dest.reliable else self._host.timers.t4
        self.set_timer(Input.TIMER_K, delay, now)
        self._drop_request()
        return self._deliver(arg, now)

    TABLE: ClassVar[dict[tuple[State, Input], Handler]] = {
        (State.TRYING, Input.TIMER_E): _retransmit,
        (State.TRYING, Input.TIMER_F): ClientTransaction._timeout,
        (State.TRYING, Input.PROVISIONAL): _provisional,
        (State.TRYING, Input.SUCCESS): _final,
        (State.TRYING, Input.FAILURE): _final,
        (State.TRYING, Input.TRANSPORT_ERROR): ClientTransaction._transport_error,
        (State.PROCEEDING, Input.TIMER_E): _retransmit,
        (State.PROCEEDING, Input.TIMER_F): ClientTransaction._timeout,
        (State.PROCEEDING, Input.PROVISIONAL): ClientTransaction._deliver,
        (State.PROCEEDING, Input.SUCCESS): _final,
        (State.PROCEEDING, Input.FAILURE): _final,
        (State.PROCEEDING, Input.TRANSPORT_ERROR): ClientTransaction._transport_error,
        (State.COMPLETED, Input.TIMER_K): ClientTransaction._end,
    }
