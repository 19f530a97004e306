"""A SIP endpoint: listeners, the transaction layer and its timer, for one
component (RFC 3261 §17, §18).

Theory of operation.  :class:`SipEndpoint` owns the sockets of its listen
addresses (UDP, TCP, TLS), the connections (:mod:`.stream`), and one sans-IO
:class:`~telavox.sip.transaction.TransactionLayer`.  Every message that
arrives is parsed, checked against the listener's :class:`~.policy.PeerPolicy`
and the mandatory rules, then fed to the layer with ``reactor.seconds()`` as
``now``; the actions that come back are carried out in order: :class:`Send`
goes to the in-process transport when the destination lives in this process
(:mod:`.local`), else to UDP or a stream; events go to the component (its
:class:`~.interfaces.ISipHandler`) or to the callback of the client
transaction they belong to.  One ``callLater`` follows the layer's
``next_deadline()``.

Bad input never escapes: a malformed request that can be answered gets 400
(or 505/413) with a reason phrase naming the problem; anything else is dropped;
both are logged, under a budget so that a flood cannot flood the log too.
One line per message is logged at debug level (when enabled) and one per
finished transaction at info level.
"""

from __future__ import annotations

import contextlib
import math
import socket
from collections.abc import Callable, Sequence
from typing import Any

import attrs
from twisted.internet import defer
from twisted.internet.interfaces import IDelayedCall, IListeningPort
from twisted.logger import Logger

from telavox.logbudget import LogBudget
from telavox.sip.errors import ParseError
from telavox.sip.hdrtypes import HeaderError, Via
from telavox.sip.message import Request, Response, make_response, new_branch
from telavox.sip.parser import DEFAULT_MAX_MESSAGE
from telavox.sip.timers import TimerConfig
from telavox.sip.transaction import (
    AckIn,
    Action,
    ClientTransaction,
    Destination,
    RequestIn,
    ResponseIn,
    Send,
    ServerTransaction,
    Source,
    StrayResponse,
    Terminated,
    TimedOut,
    TransactionLayer,
    TransportFailed,
    client_response,
)
from telavox.sip.transaction.server import response_destination
from telavox.sip.uri import SipUri, format_host
from telavox.transport.address import ListenAddress
from telavox.transport.interfaces import ISipHandler
from telavox.transport.local import LocalNetwork
from telavox.transport.policy import PeerPolicy
from telavox.transport.stream import StreamConnections
from telavox.transport.tls import TlsFiles, server_options
from telavox.transport.udp import SipDatagramProtocol

__all__ = ["EndpointOptions", "SipEndpoint"]

ClientCallback = Callable[[Action], None]


@attrs.frozen
class EndpointOptions:
    """Tunables of an endpoint (from the ``[sip]`` configuration section)."""

    timers: TimerConfig = attrs.Factory(TimerConfig)
    max_message: int = DEFAULT_MAX_MESSAGE
    udp_mtu: int = 1300
    idle_timeout: float = 600.0
    partial_timeout: float = 30.0
    max_connections: int = 4096
    connect_timeout: float = 10.0
    log_messages: bool = False
    log_transactions: bool = True
    udp_buffer: int = 4 * 1024 * 1024


def _summary(message: Request | Response) -> str:
    call_id = message.headers.get("Call-ID", "-")
    if isinstance(message, Request):
        return f"{message.method} {message.uri_text} call-id={call_id}"
    cseq = message.headers.get("CSeq", "-")
    return f"{message.status} {message.reason} ({cseq}) call-id={call_id}"


class SipEndpoint:
    """The SIP transport and transaction layer of one component.

    ``handler`` is the component (an :class:`ISipHandler`); ``network`` the
    process's in-memory transport (optional); ``policy`` who may send to the
    listeners; ``tls`` the certificate files (needed for ``tls:`` listeners and
    outgoing TLS).
    """

    log = Logger(namespace="telavox.sip")

    def __init__(
        self,
        name: str,
        listeners: Sequence[ListenAddress],
        handler: ISipHandler,
        reactor: object,
        *,
        options: EndpointOptions | None = None,
        policy: PeerPolicy | None = None,
        tls: TlsFiles | None = None,
        network: LocalNetwork | None = None,
    ) -> None:
        self.name = name
        self.handler = handler
        self.options = options or EndpointOptions()
        self.policy = policy or PeerPolicy()
        self.tls = tls
        self.network = network
        self._reactor = reactor
        self._specs = list(listeners)
        self.layer = TransactionLayer(self.options.timers)
        self.streams = StreamConnections(
            self, reactor,  # type: ignore[arg-type]
            idle_timeout=self.options.idle_timeout,
            partial_timeout=self.options.partial_timeout,
            max_connections=self.options.max_connections,
            connect_timeout=self.options.connect_timeout,
            tls=tls,
        )
        self.listeners: dict[str, ListenAddress] = {}
        self._udp: dict[str, SipDatagramProtocol] = {}
        self._ports: list[IListeningPort] = []
        self._timer: IDelayedCall | None = None
        self._timer_at = 0.0
        self._depth = 0  # nesting of _run
        self._stopped = False
        self._callbacks: dict[ClientTransaction, ClientCallback] = {}
        self._budget = LogBudget()
        self.counters: dict[str, int] = {
            "messages_in": 0,
            "messages_out": 0,
            "bytes_in": 0,
            "malformed": 0,
            "refused": 0,
            "keepalives": 0,
            "send_errors": 0,
        }

    @property
    def max_message(self) -> int:
        """Largest message accepted, in bytes."""
        return self.options.max_message

    def now(self) -> float:
        """The reactor's clock."""
        return self._reactor.seconds()  # type: ignore[attr-defined, no-any-return]

    # -- life cycle --------------------------------------------------------------

    def start(self) -> None:
        """Bind every listen address (raises CannotListenError on failure)."""
        self._stopped = False
        reactor = self._reactor
        try:
            for spec in self._specs:
                self._bind(reactor, spec)
        except Exception:
            self.stop()
            raise

    def _bind(self, reactor: object, spec: ListenAddress) -> None:
        port: IListeningPort
        if spec.transport == "udp":
            proto = SipDatagramProtocol(self, "")
            port = reactor.listenUDP(  # type: ignore[attr-defined]
                spec.port, proto, interface=spec.host, maxPacketSize=65536)
            self._tune_udp(port)
        else:
            factory = self.streams.factory(spec.transport, "")
            if spec.transport == "tls":
                if self.tls is None:
                    raise ValueError(f"listener {spec} needs TLS certificate files")
                port = reactor.listenSSL(  # type: ignore[attr-defined]
                    spec.port, factory, server_options(self.tls), interface=spec.host)
            else:
                port = reactor.listenTCP(  # type: ignore[attr-defined]
                    spec.port, factory, interface=spec.host)
        self._ports.append(port)
        bound = spec.with_port(port.getHost().port)  # type: ignore[attr-defined]
        name = str(bound)
        if spec.transport == "udp":
            proto.listener = name
            self._udp[name] = proto
        else:
            factory.listener = name  # type: ignore[attr-defined]
        self.listeners[name] = bound
        if self.network is not None:
            self.network.register(bound, self)
        self.log.info("{endpoint} listening on {listener}", endpoint=self.name, listener=name)

    def _tune_udp(self, port: IListeningPort) -> None:
        sock = getattr(port, "socket", None)
        if sock is None:
            return
        for option in (socket.SO_RCVBUF, socket.SO_SNDBUF):
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, option, self.options.udp_buffer)

    def stop(self) -> defer.Deferred[None]:
        """Stop listening, drop every connection and timer; fires once every
        socket is closed."""
        self._stopped = True
        if self.network is not None:
            for bound in self.listeners.values():
                self.network.unregister(bound)
        deferreds: list[defer.Deferred[Any]] = [
            defer.maybeDeferred(p.stopListening) for p in self._ports]
        self._ports = []
        deferreds.append(self.streams.close_all())
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        d = defer.gatherResults(deferreds, consumeErrors=True)
        return d.addCallback(lambda _: None)

    # -- addresses -----------------------------------------------------------------

    def listener_for(self, transport: str, host: str = "", name: str = "") -> ListenAddress | None:
        """The listen address to send from toward ``host`` over ``transport``
        (the named one if it exists)."""
        return self._named_listener(transport, host, name)[1]

    def _named_listener(self, transport: str, host: str, name: str
                        ) -> tuple[str, ListenAddress | None]:
        """:meth:`listener_for`, with the listener's name ("" for none)."""
        if name:
            bound = self.listeners.get(name)
            if bound is not None:
                return name, bound
        v6 = ":" in host
        fallback: tuple[str, ListenAddress | None] = ("", None)
        for key, bound in self.listeners.items():
            if bound.transport != transport:
                continue
            if (":" in bound.host) == v6:
                return key, bound
            if fallback[1] is None:
                fallback = (key, bound)
        return fallback

    def via_for(self, dest: Destination, branch: str | None = None) -> Via:
        """Our Via for a request toward ``dest`` (fresh branch unless given)."""
        bound = self.listener_for(dest.transport, dest.host, dest.listener)
        if bound is None:
            raise ValueError(f"{self.name} has no {dest.transport} listener")
        return Via.build(dest.transport, format_host(bound.via_host), bound.via_port,
                         branch or new_branch())

    def contact_uri(self, transport: str = "udp", user: str | None = None) -> SipUri:
        """A URI that reaches this endpoint over ``transport``."""
        bound = self.listener_for(transport)
        if bound is None:
            raise ValueError(f"{self.name} has no {transport} listener")
        params: tuple[tuple[str, str | None], ...] = ()
        if transport != "udp":
            params = (("transport", transport),)
        scheme = "sip"
        return SipUri.build(bound.via_host, user, bound.via_port, scheme=scheme, params=params)

    def destination(self, transport: str, host: str, port: int, flow: str | None = None
                    ) -> Destination:
        """A destination, marked local when a component of this process listens there."""
        local = self.network is not None and self.network.lookup(transport, host, port) is not None
        return Destination(transport, host, port, flow=flow, local=local)

    def is_local_source(self, source: Source) -> bool:
        """True when ``source`` is one of our own listen addresses."""
        for bound in self.listeners.values():
            if bound.via_port == source.port and bound.via_host == source.host:
                return True
        return False

    # -- inbound -------------------------------------------------------------------------

    def local_received(self, message: Request | Response, source: Source) -> None:
        """A message from another component of this process."""
        self.message_received(message, source, 0)

    def message_received(self, message: Request | Response, source: Source, size: int) -> None:
        """A parsed message arrived from ``source``."""
        counters = self.counters
        counters["messages_in"] += 1
        counters["bytes_in"] += size
        if self.options.log_messages:
            self.log.debug("{endpoint} <- {source} {summary}", endpoint=self.name,
                           source=str(source), summary=_summary(message))
        if not self.policy.allows(source):
            counters["refused"] += 1
            self._log_limited("{endpoint}: refused {summary} from {source}: not a configured "
                              "peer", summary=_summary(message), source=str(source))
            if isinstance(message, Request) and message.method != "ACK":
                self._answer_stateless(message, source, 403, "Forbidden (not a configured peer)")
            return
        if isinstance(message, Request):
            problem = _check_request(message)
            if problem is not None:
                counters["malformed"] += 1
                self._log_limited("{endpoint}: {status} {reason} to {summary} from {source}",
                                  status=problem[0], reason=problem[1],
                                  summary=_summary(message), source=str(source))
                if message.method != "ACK":
                    self._answer_stateless(message, source, *problem)
                return
        try:
            actions = self.layer.receive(message, source, self.now())
        except (HeaderError, KeyError, ValueError) as e:
            counters["malformed"] += 1
            self._log_limited("{endpoint}: dropped {summary} from {source}: {error}",
                              summary=_summary(message), source=str(source), error=str(e))
            return
        self._run(actions)

    def malformed(self, error: ParseError, source: Source, size: int) -> None:
        """Bytes from ``source`` did not parse: answer if possible, log, drop."""
        self.counters["malformed"] += 1
        self.counters["bytes_in"] += size
        message = error.message
        answered = False
        if isinstance(message, Request) and message.method != "ACK":
            answered = self._answer_stateless(message, source, error.status, error.reason)
        self._log_limited("{endpoint}: malformed message from {source}: {reason} ({what})",
                          source=str(source), reason=error.reason,
                          what=f"answered {error.status}" if answered else "dropped")

    def _answer_stateless(self, request: Request, source: Source, status: int,
                          reason: str) -> bool:
        try:
            via = request.top_via
            response = make_response(request, status, reason)
            dest = response_destination(via, source)
        except (HeaderError, KeyError, ValueError):
            return False
        self._transmit(Send(response, dest))
        return True

    def _log_limited(self, fmt: str, **fields: object) -> None:
        self._budget.info(self.log, self.now(), fmt, endpoint=self.name, **fields)

    # -- TU commands --------------------------------------------------------------------

    def send_request(self, request: Request, dest: Destination,
                     on_event: ClientCallback) -> ClientTransaction:
        """Start a client transaction; ``on_event`` gets its
        :class:`ResponseIn`, :class:`TimedOut` and :class:`TransportFailed`.

        The request must carry our Via (see :meth:`via_for`).  Over UDP a
        request larger than ``udp_mtu`` goes over TCP instead (§18.1.1) when
        this endpoint has a TCP listener.
        """
        if not dest.local and self.network is not None and self.network.lookup(
                dest.transport, dest.host, dest.port) is not None:
            dest = attrs.evolve(dest, local=True)
        wire = None
        if dest.transport == "udp" and not dest.local and self.options.udp_mtu:
            wire = request.serialize()
            if len(wire) > self.options.udp_mtu:
                tcp = self.listener_for("tcp", dest.host)
                if tcp is not None:
                    wire = None
                    via = request.top_via
                    request.headers.replace_first_value("Via", str(attrs.evolve(
                        via, transport="TCP", host=format_host(tcp.via_host), port=tcp.via_port)))
                    dest = attrs.evolve(dest, transport="tcp", listener=str(tcp))
        txn, actions = self.layer.send_request(request, dest, self.now())
        if wire is not None:
            for action in actions:
                if isinstance(action, Send) and action.message is request:
                    action.wire = wire  # serialised once, for the size check above
        self._callbacks[txn] = on_event
        self._run(actions)
        return txn

    def rebind(self, txn: ClientTransaction, on_event: ClientCallback) -> None:
        """From now on ``on_event`` gets what ``txn`` reports, instead of the
        callback given to :meth:`send_request` (which is let go).  Nothing
        happens when the transaction has nothing more to report."""
        if txn in self._callbacks:
            self._callbacks[txn] = on_event

    def request(self, request: Request, dest: Destination,
                on_provisional: Callable[[Response], None] | None = None
                ) -> defer.Deferred[Response]:
        """Send ``request`` and fire with its final response; a timeout gives a
        408 and a transport failure a 503 made up locally (§8.1.3.1, §8.1.3.2)."""
        d: defer.Deferred[Response] = defer.Deferred()

        def on_event(event: Action) -> None:
            response = client_response(request, event)
            if response is None:
                return
            if response.status < 200:
                if on_provisional is not None:
                    on_provisional(response)
            elif not d.called:
                d.callback(response)

        self.send_request(request, dest, on_event)
        return d

    def respond(self, txn: ServerTransaction, response: Response) -> None:
        """Send ``response`` on server transaction ``txn``."""
        self._run(self.layer.respond(txn, response, self.now()))

    def reply(self, event: RequestIn, status: int, reason: str | None = None, *,
              to_tag: str | None = None, extra: tuple[tuple[str, str], ...] = (),
              body: bytes = b"", stateless: bool = False) -> Response:
        """Build the response to ``event``'s request and send it; with
        ``stateless`` the transaction is forgotten at once (see
        :meth:`TransactionLayer.answer_statelessly`: for challenges and
        refusals that need no retransmission state), and a To tag, when one
        is added, is the layer's own (:meth:`TransactionLayer.stateless_tag`)
        so that the ACK of the answer is absorbed."""
        if stateless and to_tag is not None:
            to_tag = self.layer.stateless_tag()
        response = make_response(event.request, status, reason, to_tag=to_tag, extra=extra,
                                 body=body)
        if stateless:
            self._run(self.layer.answer_statelessly(event.txn, response))
        else:
            self.respond(event.txn, response)
        return response

    def send_stateless(self, message: Request | Response, dest: Destination) -> None:
        """Send without a transaction (ACK of a 2xx, stateless forwarding)."""
        self._transmit(Send(message, dest))

    # -- carrying out actions ------------------------------------------------------------

    def _run(self, actions: list[Action]) -> None:
        # actions run by a handler inside this loop (a response sent from
        # handle_request) run in a nested call; the timer is set once, by
        # the outermost call, when all of them are done
        self._depth += 1
        try:
            self._run_actions(actions)
        finally:
            self._depth -= 1
        if not self._depth:
            self._schedule()

    def _run_actions(self, actions: list[Action]) -> None:
        for action in actions:
            kind = type(action)
            try:
                if kind is Send:
                    self._transmit(action)  # type: ignore[arg-type]
                elif kind is RequestIn:
                    self._deliver_request(action)  # type: ignore[arg-type]
                elif kind is ResponseIn or kind is TimedOut or kind is TransportFailed:
                    self._deliver_txn_event(action)
                elif kind is Terminated:
                    self._terminated(action)  # type: ignore[arg-type]
                elif kind is AckIn:
                    self.handler.handle_ack(self, action)
                elif kind is StrayResponse:
                    self.handler.handle_stray_response(self, action)
            except Exception:
                self.log.failure("{endpoint}: error handling {action}", endpoint=self.name,
                                 action=repr(action))

    def _deliver_request(self, event: RequestIn) -> None:
        try:
            self.handler.handle_request(self, event)
        except Exception:
            self.log.failure("{endpoint}: error handling {summary}", endpoint=self.name,
                             summary=_summary(event.request))
            if not event.txn.responded and not event.txn.terminated:
                self.reply(event, 500, "Server Internal Error")

    def _deliver_txn_event(self, event: Action) -> None:
        txn = event.txn  # type: ignore[union-attr]
        if isinstance(txn, ClientTransaction):
            callback = self._callbacks.get(txn)
            if callback is not None:
                if txn.settled:
                    del self._callbacks[txn]  # nothing more will come: let the TU go
                callback(event)
        else:
            self.handler.handle_server_failure(self, event)

    def _terminated(self, event: Terminated) -> None:
        txn = event.txn
        if isinstance(txn, ClientTransaction):
            self._callbacks.pop(txn, None)
            side = "client"
        else:
            side = "server"
        if not self.options.log_transactions:
            return
        self.log.info("{endpoint} {side} {method} transaction {outcome} after {duration:.3f}s"
                      " call-id={call_id}", endpoint=self.name, side=side,
                      method=txn.method, outcome=event.outcome,
                      duration=self.now() - txn.created, call_id=txn.call_id)

    def _transmit(self, send: Send) -> None:
        dest = send.dest
        message = send.message
        self.counters["messages_out"] += 1
        name, bound = self._named_listener(dest.transport, dest.host, dest.listener)
        if self.options.log_messages:
            summary = (_summary(message) if message is not None  # type: ignore[arg-type]
                       else send.data().split(b"\r\n", 1)[0].decode("utf-8", "replace"))
            self.log.debug("{endpoint} -> {dest} {summary}", endpoint=self.name,
                           dest=str(dest), summary=summary)
        if bound is None:
            self.log.info("{endpoint}: no {transport} listener to send to {dest}",
                          endpoint=self.name, transport=dest.transport, dest=str(dest))
            self._send_failed(send)
            return
        network = self.network
        # a Send holding bytes only (Send.keep_wire) is never for this process
        if network is not None and message is not None and network.send(
                message, dest.transport, dest.host, dest.port, bound):  # type: ignore[arg-type]
            return
        if dest.local:
            self._send_failed(send)
            return
        if dest.transport == "udp":
            self._send_udp(send, name)
        else:
            self.streams.send(send, name, self._send_failed)

    def _send_udp(self, send: Send, listener: str) -> None:
        proto = self._udp.get(listener)
        if proto is None:
            self._send_failed(send)
            return
        dest = send.dest
        host = dest.host.strip("[]")
        if not _is_ip(host):
            d = self._reactor.resolve(host)  # type: ignore[attr-defined]
            d.addCallbacks(lambda ip: self._write_udp(proto, send, ip),
                           lambda _: self._send_failed(send))
            return
        self._write_udp(proto, send, host)

    def _write_udp(self, proto: SipDatagramProtocol, send: Send, host: str) -> None:
        try:
            proto.send(send.data(), host, send.dest.port)
        except OSError as e:
            self.log.info("{endpoint}: UDP send to {dest} failed: {error}", endpoint=self.name,
                          dest=str(send.dest), error=str(e))
            self._send_failed(send)

    def _send_failed(self, send: Send) -> None:
        self.counters["send_errors"] += 1
        txn = send.txn
        if txn is not None:
            self._run(self.layer.transport_failed(txn, self.now()))

    def _schedule(self) -> None:
        """Keep one timer at the layer's earliest deadline (moved only earlier)."""
        if self._stopped:
            return
        deadline = self.layer.next_deadline()
        if deadline is None:
            return
        timer = self._timer
        if timer is not None and timer.active():
            if self._timer_at <= deadline:
                return
            timer.cancel()
        # Wake-ups are aligned on a grid so that the timers of many
        # transactions due within one slot are run by one reactor turn.
        deadline = math.ceil(deadline / TIMER_GRANULARITY) * TIMER_GRANULARITY
        self._timer_at = deadline
        delay = max(0.0, deadline - self.now())
        self._timer = self._reactor.callLater(delay, self._fire)  # type: ignore[attr-defined]

    def _fire(self) -> None:
        self._timer = None
        self._run(self.layer.fire(self.now()))

    # -- introspection -------------------------------------------------------------------------

    def stats(self) -> dict[str, int]:
        """Counters and gauges of the endpoint and its transactions."""
        out = dict(self.counters)
        out.update(self.layer.counters)
        out["client_transactions"] = self.layer.client_count
        out["server_transactions"] = self.layer.server_count
        out["connections"] = len(self.streams.flows)
        return out


TIMER_GRANULARITY = 0.02
"""Seconds: transaction timers run on this grid (at most this late), so one
reactor turn serves every timer due in the same slot.  Small beside T1."""


_KNOWN_HOSTS: dict[str, bool] = {}


def _is_ip(host: str) -> bool:
    """True for an IPv4/IPv6 address literal (answers remembered, bounded)."""
    known = _KNOWN_HOSTS.get(host)
    if known is not None:
        return known
    try:
        socket.inet_pton(socket.AF_INET6 if ":" in host else socket.AF_INET, host)
        result = True
    except OSError:
        result = False
    if len(_KNOWN_HOSTS) < 65536:
        _KNOWN_HOSTS[host] = result
    return result


def _check_request(request: Request) -> tuple[int, str] | None:
    """The answer a request that passed the parser still deserves, if any."""
    if request.version.upper() != "SIP/2.0":
        return 505, "Version Not Supported"
    if not request.uri_valid():
        return 400, "Malformed Request-URI"
    if request.method in _NAME_ADDR_CHECKED:
        try:
            request.from_  # noqa: B018
        except HeaderError:
            return 400, "Malformed From header"
        try:
            request.to  # noqa: B018
        except HeaderError:
            return 400, "Malformed To header"
    return None


# Requests that start something get their From and To checked at once; the
# others (ACK, BYE, ... inside dialogs) have them parsed when something reads
# them, and a component that finds them malformed answers 400 then.
_NAME_ADDR_CHECKED = frozenset({"INVITE", "REGISTER", "SUBSCRIBE", "OPTIONS", "MESSAGE",
                                "REFER", "PUBLISH", "NOTIFY"})


