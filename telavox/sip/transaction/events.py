"""What goes into and comes out of the transaction layer.

Owns the addresses (:class:`Source` of a received message, :class:`Destination`
of one to send) and the actions the layer returns: :class:`Send` for the
transport adapter, and the events for the transaction user (TU):
:class:`RequestIn`, :class:`ResponseIn`, :class:`AckIn`,
:class:`StrayResponse`, :class:`TimedOut`, :class:`TransportFailed` and
:class:`Terminated`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

from telavox.sip.message import Message, Request, Response, make_response

if TYPE_CHECKING:
    from telavox.sip.transaction.client import ClientTransaction
    from telavox.sip.transaction.server import ServerTransaction

RELIABLE_TRANSPORTS = frozenset({"tcp", "tls", "ws", "wss", "sctp"})


@attrs.frozen(slots=True)
class Source:
    """Where a message came from.

    ``transport`` is lower case (udp, tcp, tls); ``flow`` identifies the
    connection it arrived on (None for UDP); ``listener`` names the local
    listen address that received it; ``local`` is True when it came over the
    in-process transport from another component (lossless, so treated as
    reliable).
    """

    transport: str
    host: str
    port: int
    flow: str | None = None
    listener: str = ""
    local: bool = False

    @property
    def reliable(self) -> bool:
        """No retransmissions needed (stream transport or in-process)."""
        return self.local or self.transport in RELIABLE_TRANSPORTS

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.transport}:{host}:{self.port}"


@attrs.frozen(slots=True)
class Destination:
    """Where to send a message.

    ``flow`` asks for a given connection (responses go back over the
    connection their request came on, §18.2.2); when it is gone the transport
    connects to ``host``/``port``.  ``local`` marks a peer hosted in this
    process (the in-memory transport).  ``listener`` names the local listen
    address to send from (responses leave where their request came in).
    """

    transport: str
    host: str
    port: int
    flow: str | None = None
    local: bool = False
    listener: str = ""

    @property
    def reliable(self) -> bool:
        """No retransmissions needed (stream transport or in-process)."""
        return self.local or self.transport in RELIABLE_TRANSPORTS

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.transport}:{host}:{self.port}"


class Send:
    """Send ``message`` to ``dest``.

    The same Send is returned again for each retransmission, so an adapter
    may keep the serialised bytes in :attr:`wire`.  ``txn`` is the transaction
    it belongs to (None for stateless sends); a transport failure is reported
    back with :meth:`TransactionLayer.transport_failed`.  A Send a
    transaction keeps only to repeat it may hold the bytes alone
    (:meth:`keep_wire`): ``message`` is then None.
    """

    __slots__ = ("dest", "message", "txn", "wire")

    def __init__(
        self,
        message: Message,
        dest: Destination,
        txn: ClientTransaction | ServerTransaction | None = None,
    ) -> None:
        self.message: Message | None = message
        self.dest = dest
        self.txn = txn
        self.wire: bytes | None = None

    def data(self) -> bytes:
        """The serialised message (computed once)."""
        wire = self.wire
        if wire is None:
            assert self.message is not None
            wire = self.wire = self.message.serialize()
        return wire

    def keep_wire(self) -> None:
        """Serialise now and let the message go, unless the destination is
        in this process (the in-process transport passes messages, not
        bytes): for a response a transaction keeps for 64*T1 only to repeat
        it, the bytes are one object where the message is a dozen."""
        if not self.dest.local:
            self.data()
            self.message = None

    def __repr__(self) -> str:
        what = repr(self.message) if self.message is not None else f"{len(self.wire or b'')} bytes"
        return f"Send({what} -> {self.dest})"


@attrs.frozen(slots=True, eq=False)
class RequestIn:
    """A new request for the TU, with the server transaction that must answer it."""

    txn: ServerTransaction
    request: Request
    source: Source


@attrs.frozen(slots=True, eq=False)
class ResponseIn:
    """A response for the TU on one of its client transactions."""

    txn: ClientTransaction
    response: Response
    source: Source


@attrs.frozen(slots=True, eq=False)
class AckIn:
    """An ACK that matched no transaction: the ACK of a 2xx (§13.3.1.4, §17.2.3)."""

    request: Request
    source: Source


@attrs.frozen(slots=True, eq=False)
class StrayResponse:
    """A response that matched no client transaction (a proxy forwards a
    stray 2xx statelessly, §16.7; a UA uses it to re-ACK 2xx retransmissions)."""

    response: Response
    source: Source


@attrs.frozen(slots=True, eq=False)
class TimedOut:
    """A transaction timed out: client B/F (no final response: treat as 408)
    or server H (no ACK for our final response)."""

    txn: ClientTransaction | ServerTransaction


@attrs.frozen(slots=True, eq=False)
class TransportFailed:
    """The transport could not carry a transaction's message (§17.1.4,
    §17.2.4): a client transaction treats it as 503."""

    txn: ClientTransaction | ServerTransaction


@attrs.frozen(slots=True, eq=False)
class Terminated:
    """A transaction ended; ``outcome`` says how (for logs and counters):
    the final status code as text, "timeout" or "transport-error"."""

    txn: ClientTransaction | ServerTransaction
    outcome: str


Action = (Send | RequestIn | ResponseIn | AckIn | StrayResponse | TimedOut | TransportFailed
          | Terminated)


def client_response(request: Request, event: Action) -> Response | None:
    """The response a client transaction's event stands for: the one
    received, or the 408 (timeout) or 503 (transport failure) that §8.1.3.1
    and §8.1.3.2 make up locally; None for other events."""
    if isinstance(event, ResponseIn):
        return event.response
    if isinstance(event, TimedOut):
        return make_response(request, 408, "Request Timeout")
    if isinstance(event, TransportFailed):
        return make_response(request, 503, "Service Unavailable (transport failure)")
    return None
