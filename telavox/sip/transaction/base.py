"""What every transaction shares: its request, state, timers and the
transition-table dispatch.

Theory of operation.  A transaction is a small state machine (RFC 3261 §17
figures 5–8, with RFC 6026's Accepted state).  Its behaviour is a table
``(state, input) -> handler``; an input with no entry in the current state is
absorbed, as the RFC says of late or duplicated messages.  Handlers return
actions and may change the state; they never do I/O and never read a clock:
``now`` comes in with every input.  Timers are set by asking the owning
layer (:class:`TimerHost`) to call back at an absolute time; a timer that is
reset or cancelled simply stops matching when it pops.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Any, ClassVar, Protocol

from telavox.sip.errors import LocalSipError
from telavox.sip.message import Request
from telavox.sip.timers import TimerConfig
from telavox.sip.transaction.events import Action


class State(enum.Enum):
    """Transaction states (RFC 3261 §17 and RFC 6026 §7)."""

    CALLING = "calling"
    TRYING = "trying"
    PROCEEDING = "proceeding"
    COMPLETED = "completed"
    CONFIRMED = "confirmed"
    ACCEPTED = "accepted"
    TERMINATED = "terminated"

    # members are singletons compared by identity: hash them as objects (in
    # C) rather than by name (Enum.__hash__, in Python), for the table lookups
    __hash__ = object.__hash__


class Input(enum.Enum):
    """Inputs a transaction reacts to."""

    PROVISIONAL = "1xx"
    SUCCESS = "2xx"
    FAILURE = "3xx-6xx"
    REQUEST = "request retransmission"
    ACK = "ACK"
    TU_PROVISIONAL = "TU 1xx"
    TU_SUCCESS = "TU 2xx"
    TU_FAILURE = "TU 3xx-6xx"
    TRANSPORT_ERROR = "transport error"
    TIMER_A = "A"
    TIMER_B = "B"
    TIMER_D = "D"
    TIMER_E = "E"
    TIMER_F = "F"
    TIMER_G = "G"
    TIMER_H = "H"
    TIMER_I = "I"
    TIMER_J = "J"
    TIMER_K = "K"
    TIMER_L = "L"
    TIMER_M = "M"
    TIMER_TRYING = "100 Trying"

    __hash__ = object.__hash__  # as State's


class TimerHost(Protocol):
    """The side of the layer a transaction sees: timer scheduling."""

    timers: TimerConfig

    def schedule(self, txn: Transaction, timer: Input, delay: float, at: float) -> None:
        """Call ``txn.fire(timer, at, now)`` once the time is ``at``, which
        is ``delay`` seconds after the time the timer is set."""


Handler = Callable[[Any, Any, float], list[Action]]


class Transaction:
    """State, request and timers common to the four kinds.

    A transaction lets its request go (:meth:`_release`) when it enters a
    state that only absorbs retransmissions until a timer ends it (Accepted,
    Completed, Confirmed): a proxy holds tens of thousands of those for
    64*T1, and each should cost a few small objects, not a parsed message.
    """

    __slots__ = ("_call_id", "_deadlines", "_host", "_request", "created", "key", "method",
                 "state", "status")

    TABLE: ClassVar[dict[tuple[State, Input], Handler]] = {}
    initial: ClassVar[State]

    def __init__(self, host: TimerHost, key: tuple[str, ...], request: Request,
                 now: float) -> None:
        self._host = host
        self.key = key
        self._request: Request | None = request
        self.method = request.method
        self._call_id = ""
        self.created = now
        self.state = self.initial
        #: the status of the last response sent (server) or received
        #: (client); 0 before any
        self.status = 0
        # keyed by each timer's value (a str): with str keys and float
        # values the dict stays out of the cyclic collector's sight, which
        # matters for the tens of thousands of transactions a proxy holds
        self._deadlines: dict[str, float] = {}

    @property
    def terminated(self) -> bool:
        """True once the transaction has ended."""
        return self.state is State.TERMINATED

    @property
    def request(self) -> Request:
        """The transaction's request; LocalSipError once it has been released
        (the transaction then only waits for a timer to end it)."""
        request = self._request
        if request is None:
            raise LocalSipError(f"{self!r} no longer holds its request")
        return request

    @property
    def call_id(self) -> str:
        """The Call-ID of the request ("-" without one), also once released."""
        request = self._request
        if request is None:
            return self._call_id
        return request.headers.get("Call-ID") or "-"

    def _release(self) -> None:
        """Let the request go; only :attr:`method` and :attr:`call_id` stay."""
        if self._request is not None:
            self._call_id = self.call_id
            self._request = None

    def handle(self, what: Input, arg: object, now: float) -> list[Action]:
        """Feed one input; returns the actions it causes (absorbed: [])."""
        handler = self.TABLE.get((self.state, what))
        if handler is None:
            return []
        return handler(self, arg, now)

    def fire(self, timer: Input, at: float, now: float) -> list[Action]:
        """A timer scheduled for ``at`` popped; ignored if reset since."""
        key = timer._value_
        if self._deadlines.get(key) != at:
            return []
        del self._deadlines[key]
        return self.handle(timer, None, now)

    def set_timer(self, timer: Input, delay: float, now: float) -> None:
        """(Re)start ``timer`` to fire ``delay`` seconds after ``now``."""
        at = now + delay
        self._deadlines[timer._value_] = at
        self._host.schedule(self, timer, delay, at)

    def cancel_timer(self, timer: Input) -> None:
        """Stop ``timer`` if it runs."""
        self._deadlines.pop(timer._value_, None)

    def timer_running(self, timer: Input) -> bool:
        """True if ``timer`` is set."""
        return timer._value_ in self._deadlines

    def _terminate(self) -> None:
        self.state = State.TERMINATED
        self._deadlines.clear()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.method} {self.key[0]} {self.state.value}>"


def response_input(status: int, provisional: Input, success: Input, failure: Input) -> Input:
    """Classify a status code into one of the three response inputs."""
    if status < 200:
        return provisional
    if status < 300:
        return success
    return failure
