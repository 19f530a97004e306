"""The transaction layer: the table of live transactions and their timers.

Theory of operation.  :class:`TransactionLayer` sits between the transport
(which calls :meth:`~TransactionLayer.receive` with each parsed message) and
the transaction user, the TU (which calls :meth:`~TransactionLayer.send_request`
and :meth:`~TransactionLayer.respond`).  Every call takes ``now`` (monotonic
seconds) and returns a list of actions to carry out in order
(:mod:`telavox.sip.transaction.events`).  Timers of all transactions live in
queues of their own (:mod:`.timerqueue`); :meth:`~TransactionLayer.next_deadline`
tells the adapter when to call :meth:`~TransactionLayer.fire`, so a Twisted
adapter needs one ``callLater`` for the whole layer.

Matching follows RFC 3261 §17.1.3 and §17.2.3 (:mod:`.keys`).  A request that
matches no server transaction starts one and is handed to the TU
(:class:`~.events.RequestIn`), except ACK, which then belongs to a 2xx and
goes to the TU as :class:`~.events.AckIn`, unless its To tag is one the layer
gave a stateless answer (:meth:`~TransactionLayer.stateless_tag`): that ACK
ends at this hop (§17.1.1.3) and is absorbed, as Kamailio's sl module does.
A response that matches no client transaction is a
:class:`~.events.StrayResponse`.  The layer also stamps the
top Via of every received request with ``received`` and ``rport``
(§18.2.1, RFC 3581 §4).
"""

from __future__ import annotations

from telavox.sip.errors import LocalSipError
from telavox.sip.grammar import set_param
from telavox.sip.hdrtypes import Via
from telavox.sip.message import Request, Response
from telavox.sip.randomness import random_hex
from telavox.sip.timers import TimerConfig
from telavox.sip.transaction.base import Input, State, Transaction
from telavox.sip.transaction.client import ClientInvite, ClientNonInvite, ClientTransaction
from telavox.sip.transaction.events import (
    AckIn,
    Action,
    Destination,
    RequestIn,
    Send,
    Source,
    StrayResponse,
    Terminated,
)
from telavox.sip.transaction.keys import (
    client_key_for_request,
    client_key_for_response,
    server_key,
)
from telavox.sip.transaction.server import (
    ServerInvite,
    ServerNonInvite,
    ServerTransaction,
    response_destination,
)
from telavox.sip.transaction.timerqueue import TimerQueues

__all__ = ["TransactionLayer", "stamped_via_text"]


def stamped_via_text(line: str, rport: int | None, received: str) -> str | None:
    """The top Via line ``line`` (one element) with ``;received=`` appended
    and, when ``rport`` is given, the ``rport`` flag that ends it filled in:
    the text of the stamped Via without formatting it again.  None when the
    line is not that simple (a list, an rport elsewhere, a received already
    there): the caller then writes the stamped Via out in full.

    Equivalent to setting the parameters (:func:`set_param` replaces a
    parameter where it stands and appends a new one), and cheaper.
    """
    lower = line.lower()
    if not line or "," in line or "received" in lower:
        return None
    if rport is None:
        return f"{line};received={received}"
    if line.endswith(";rport") and lower.count("rport") == 1:
        return f"{line}={rport};received={received}"
    return None


class TransactionLayer:
    """Live client and server transactions, matched and timed.

    ``timers`` sets T1/T2/T4.  Counters in :attr:`counters` (created, by
    outcome) are plain ints, cheap to read for ``stats()``.
    """

    def __init__(self, timers: TimerConfig | None = None) -> None:
        self.timers = timers or TimerConfig()
        self._clients: dict[tuple[str, ...], ClientTransaction] = {}
        self._servers: dict[tuple[str, ...], ServerTransaction] = {}
        self._timers = TimerQueues()
        # To tags of stateless answers start with this (per layer, random)
        self._stateless_prefix = f"sl{random_hex(4)}-"
        self.counters: dict[str, int] = {
            "client_created": 0,
            "server_created": 0,
            "retransmissions_received": 0,
            "stray_responses": 0,
            "timeouts": 0,
            "transport_errors": 0,
            "stateless_acks_absorbed": 0,
        }

    # -- what the adapter reads ------------------------------------------------

    @property
    def client_count(self) -> int:
        """Live client transactions."""
        return len(self._clients)

    @property
    def server_count(self) -> int:
        """Live server transactions."""
        return len(self._servers)

    def next_deadline(self) -> float | None:
        """When to call :meth:`fire` next, or None when no timer is set.
        Never later than the earliest timer still set; it may be earlier
        when that timer has been cancelled since the last :meth:`fire`
        (which then finds nothing due): see :meth:`.TimerQueues.next_deadline`."""
        return self._timers.next_deadline()

    # -- timer host (seen by transactions) -----------------------------------

    def schedule(self, txn: Transaction, timer: Input, delay: float, at: float) -> None:
        """Queue ``timer`` of ``txn`` for time ``at``, ``delay`` after it was set."""
        self._timers.add(txn, timer, delay, at)

    # -- inputs ------------------------------------------------------------------

    def fire(self, now: float) -> list[Action]:
        """Run every timer due at or before ``now``."""
        actions: list[Action] = []
        for txn, timer, at in self._timers.due(now):
            actions.extend(self._after(txn, txn.fire(timer, at, now)))
        return actions

    def receive(self, message: Request | Response, source: Source, now: float) -> list[Action]:
        """A parsed message arrived from ``source``.

        The message must have passed :func:`telavox.sip.parser.parse_message`
        (so its top Via and CSeq are well formed).
        """
        if isinstance(message, Request):
            return self._receive_request(message, source, now)
        return self._receive_response(message, source, now)

    def _receive_request(self, request: Request, source: Source, now: float) -> list[Action]:
        if request.method == "ACK" and self._acks_stateless_answer(request):
            self.counters["stateless_acks_absorbed"] += 1
            return []
        via = self._stamp_via(request, source)
        key = server_key(request, via)
        txn = self._servers.get(key)
        if txn is not None:
            if request.method == "ACK":
                if key[0] == "2543" and not self._ack_matches(txn, request):
                    return [AckIn(request, source)]
                if txn.state is State.ACCEPTED:
                    # RFC 6026 §7.1: the ACK of a 2xx goes to the TU, even when the
                    # peer reused the INVITE's branch for it
                    return [AckIn(request, source)]
            if request.method != "ACK":
                self.counters["retransmissions_received"] += 1
            return self._after(txn, txn.on_request(request, now))
        if request.method == "ACK":
            return [AckIn(request, source)]
        server: ServerTransaction
        if request.method == "INVITE":
            server = ServerInvite(self, key, request, via, source, now)
        else:
            server = ServerNonInvite(self, key, request, via, source, now)
        self._servers[key] = server
        self.counters["server_created"] += 1
        return [RequestIn(server, request, source), *server.start(now)]

    def _acks_stateless_answer(self, ack: Request) -> bool:
        tag = ack.to_tag
        return tag is not None and tag.startswith(self._stateless_prefix)

    @staticmethod
    def _ack_matches(txn: ServerTransaction, ack: Request) -> bool:
        sent = txn.last_response
        if sent is None:
            return False
        return sent.to_tag == ack.to_tag

    @staticmethod
    def _stamp_via(request: Request, source: Source) -> Via:
        """Add received/rport to the top Via where §18.2.1 and RFC 3581 §4 say
        so: received when the sent-by host is not the source address; when
        the client asks for rport, rport filled with the source port and
        received added even when it equals sent-by."""
        via = request.top_via
        if source.local:
            return via
        host = source.host
        port: int | None = None
        if via.has_rport and via.rport is None:
            port = source.port
            params = set_param(set_param(via.params, "rport", str(port)), "received", host)
        elif via.sent_by[0] != host.lower():
            params = set_param(via.params, "received", host)
        else:
            return via
        stamped = Via(via.transport, via.host, via.port, params)
        line = request.headers.get("Via") or ""
        request.set_top_via(stamped, stamped_via_text(line, port, host))
        return stamped

    def _receive_response(self, response: Response, source: Source, now: float) -> list[Action]:
        via = response.top_via
        txn = self._clients.get(client_key_for_response(response, via))
        if txn is None:
            self.counters["stray_responses"] += 1
            return [StrayResponse(response, source)]
        return self._after(txn, txn.on_response(response, source, now))

    # -- TU commands ---------------------------------------------------------------

    def send_request(self, request: Request, dest: Destination,
                     now: float) -> tuple[ClientTransaction, list[Action]]:
        """Start a client transaction for ``request`` (not ACK) toward ``dest``.

        The request must already carry our top Via with a unique RFC 3261
        branch.  Returns the transaction and the actions (the first Send).
        """
        if request.method == "ACK":
            raise LocalSipError("ACK is sent without a transaction (send_stateless)")
        via = request.top_via
        if not via.rfc3261_branch:
            raise LocalSipError("our requests need an RFC 3261 branch")
        key = client_key_for_request(request, via)
        if key in self._clients:
            raise LocalSipError(f"branch {key[0]} is already in use")
        txn: ClientTransaction
        if request.method == "INVITE":
            txn = ClientInvite(self, key, request, dest, now)
        else:
            txn = ClientNonInvite(self, key, request, dest, now)
        self._clients[key] = txn
        self.counters["client_created"] += 1
        return txn, txn.start(now)

    def respond(self, txn: ServerTransaction, response: Response, now: float) -> list[Action]:
        """Send ``response`` on server transaction ``txn``."""
        return self._after(txn, txn.respond(response, now))

    def stateless_tag(self) -> str:
        """A fresh To tag for a response given by :meth:`answer_statelessly`:
        the layer recognises it, and absorbs the ACK of such a 3xx–6xx."""
        return self._stateless_prefix + random_hex(6)

    def answer_statelessly(self, txn: ServerTransaction, response: Response) -> list[Action]:
        """Send ``response`` to ``txn``'s request and forget the transaction
        at once, as a stateless element would (§16.11): a retransmitted
        request is then a new request (for challenges: a fresh nonce), and a
        lost response is not repeated but answered again on the next
        retransmission.  A response to an INVITE should carry a To tag from
        :meth:`stateless_tag`, so that its ACK is absorbed here."""
        if self._servers.get(txn.key) is txn:
            del self._servers[txn.key]
        txn._terminate()
        return [Send(response, txn.dest)]

    def transport_failed(self, txn: ClientTransaction | ServerTransaction,
                         now: float) -> list[Action]:
        """The transport reports it could not send a message of ``txn``."""
        if txn.terminated:
            return []
        self.counters["transport_errors"] += 1
        return self._after(txn, txn.on_transport_error(now))

    def find_invite(self, cancel: Request) -> ServerInvite | None:
        """The INVITE server transaction a received CANCEL is for (§9.2)."""
        via = cancel.top_via
        txn = self._servers.get(server_key(cancel, via, method="INVITE"))
        if isinstance(txn, ServerInvite):
            return txn
        return None

    @staticmethod
    def send_stateless(message: Request | Response, dest: Destination) -> list[Action]:
        """Send without a transaction (ACK for 2xx, stateless forwarding)."""
        return [Send(message, dest)]

    @staticmethod
    def stateless_response(response: Response, source: Source) -> list[Action]:
        """Answer a request that has no transaction (e.g. a malformed one) to
        where §18.2.2 says responses to it go."""
        return [Send(response, response_destination(response.top_via, source))]

    # -- bookkeeping ----------------------------------------------------------------

    def _after(self, txn: Transaction, actions: list[Action]) -> list[Action]:
        """Forget a transaction once it has terminated."""
        if txn.terminated:
            if isinstance(txn, ClientTransaction):
                if self._clients.get(txn.key) is txn:
                    del self._clients[txn.key]
            elif self._servers.get(txn.key) is txn:
                del self._servers[txn.key]
            for action in actions:
                if isinstance(action, Terminated) and action.outcome == "timeout":
                    self.counters["timeouts"] += 1
        return actions
