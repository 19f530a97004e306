"""SIP over TCP and TLS: one protocol per connection, and the table of
connections an endpoint holds (RFC 3261 §18, RFC 5626 §3.5.1, RFC 5923).

Owns :class:`SipStreamProtocol` (framing with
:class:`~telavox.sip.parser.StreamFramer`, CRLF keep-alives, limits) and
:class:`StreamConnections` (flows by id and by remote address, outgoing
connects with queued messages, idle and slow-sender timeouts).

An outgoing TLS connection counts as made once its handshake has
completed: the messages waiting for it are written then, and fail at once
(a transport error for their transactions, RFC 3261 §17.1.4) when the
handshake fails, e.g. on a certificate the configured CA did not sign.

A connection is cut when its peer breaks framing (a header section or body
over the size limit, a bad Content-Length), sends part of a message and then
stalls for ``partial_timeout`` seconds, or stays silent for ``idle_timeout``.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from twisted.internet import defer
from twisted.internet.endpoints import TCP4ClientEndpoint, TCP6ClientEndpoint, wrapClientTLS
from twisted.internet.interfaces import (
    IDelayedCall,
    IHandshakeListener,
    IReactorTCP,
    IReactorTime,
    IStreamClientEndpoint,
)
from twisted.internet.protocol import Factory, Protocol
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from telavox.sip.errors import ParseError
from telavox.sip.parser import KeepAlive, StreamFramer, parse_message
from telavox.sip.transaction import Send, Source
from telavox.transport.tls import TlsFiles, client_options

if TYPE_CHECKING:
    from telavox.transport.endpoint import SipEndpoint

_flow_ids = itertools.count(1)


@implementer(IHandshakeListener)
class SipStreamProtocol(Protocol):
    """One TCP or TLS connection carrying SIP."""

    log = Logger(namespace="telavox.sip.stream")

    def __init__(self, connections: StreamConnections, transport_name: str, listener: str,
                 outgoing: bool) -> None:
        self.connections = connections
        self.transport_name = transport_name
        self.listener = listener
        self.outgoing = outgoing
        self.flow = f"{transport_name}-{next(_flow_ids)}"
        self.framer = StreamFramer(connections.endpoint.max_message)
        self.peer_host = ""
        self.peer_port = 0
        self._idle: IDelayedCall | None = None
        self._partial: IDelayedCall | None = None
        self._handshake: IDelayedCall | None = None
        self.addresses: list[tuple[str, str, int]] = []
        """The (transport, host, port) keys it is known by in ``by_address``."""
        self.closed = False
        self.lost: defer.Deferred[None] = defer.Deferred()
        self.secured: defer.Deferred[None] = defer.Deferred()
        """Fires when the TLS handshake completes; fails when the connection
        is lost before (only waited for on outgoing TLS connections)."""

    def connectionMade(self) -> None:
        transport: Any = self.transport
        peer = transport.getPeer()
        self.peer_host = peer.host
        self.peer_port = peer.port
        if not self.connections.add(self):
            self.log.warn("too many connections: refusing {peer}", peer=self.source())
            transport.abortConnection()
            return
        clock = self.connections.reactor
        self._idle = clock.callLater(self.connections.idle_timeout, self._timed_out, "idle")
        if self.outgoing and self.transport_name == "tls":
            # a peer that takes the TCP connection and stalls the handshake
            # fails like one that does not answer at all
            self._handshake = clock.callLater(self.connections.connect_timeout,
                                              self._handshake_stalled)

    def handshakeCompleted(self) -> None:
        """TLS is up (IHandshakeListener)."""
        self._stop_handshake_timer()
        if not self.secured.called:
            self.secured.callback(None)

    def _handshake_stalled(self) -> None:
        self._handshake = None
        self.log.info("closing {flow} to {peer}: no TLS handshake within {timeout:g} s",
                      flow=self.flow, peer=self.source(),
                      timeout=self.connections.connect_timeout)
        self.closed = True
        self.transport.abortConnection()  # type: ignore[union-attr]

    def _stop_handshake_timer(self) -> None:
        if self._handshake is not None and self._handshake.active():
            self._handshake.cancel()
        self._handshake = None

    def source(self) -> Source:
        """Where messages on this connection come from."""
        return Source(self.transport_name, self.peer_host, self.peer_port, self.flow,
                      self.listener)

    def dataReceived(self, data: bytes) -> None:
        if self.closed:
            return
        if self._idle is not None and self._idle.active():
            self._idle.reset(self.connections.idle_timeout)
        endpoint = self.connections.endpoint
        fatal: ParseError | None = None
        try:
            frames = self.framer.feed(data)
        except ParseError as e:
            frames, fatal = e.frames, e
        self._handle_frames(frames)
        if fatal is not None and not self.closed:
            endpoint.malformed(fatal, self.source(), len(data))
            self.close()
            return
        self._watch_partial()

    def _handle_frames(self, frames: list[bytes | KeepAlive]) -> None:
        endpoint = self.connections.endpoint
        for frame in frames:
            if isinstance(frame, KeepAlive):
                if frame.ping:
                    self.transport.write(b"\r\n")  # type: ignore[union-attr]
                endpoint.counters["keepalives"] += 1
                continue
            try:
                message = parse_message(frame)
            except ParseError as e:
                endpoint.malformed(e, self.source(), len(frame))
                continue
            endpoint.message_received(message, self.source(), len(frame))
            if self.closed:
                return

    def _watch_partial(self) -> None:
        if self.framer.buffered:
            if self._partial is None:
                self._partial = self.connections.reactor.callLater(
                    self.connections.partial_timeout, self._timed_out, "incomplete message")
        elif self._partial is not None:
            if self._partial.active():
                self._partial.cancel()
            self._partial = None

    def _timed_out(self, why: str) -> None:
        if why == "idle":
            self._idle = None
        else:
            self._partial = None
        self.log.info("closing {flow} to {peer}: {why}", flow=self.flow, peer=self.source(),
                      why=why)
        self.close()

    def write_message(self, data: bytes) -> None:
        """Send one serialised message."""
        self.transport.write(data)  # type: ignore[union-attr]
        if self._idle is not None and self._idle.active():
            self._idle.reset(self.connections.idle_timeout)

    def close(self) -> None:
        """Drop the connection."""
        if not self.closed:
            self.closed = True
            self.transport.loseConnection()  # type: ignore[union-attr]

    def connectionLost(self, reason: Failure = Failure(ConnectionError())) -> None:  # noqa: B008
        self.closed = True
        for call in (self._idle, self._partial):
            if call is not None and call.active():
                call.cancel()
        self._idle = self._partial = None
        self._stop_handshake_timer()
        self.connections.remove(self)
        if not self.secured.called:
            self.secured.errback(reason)
            self.secured.addErrback(lambda _: None)  # nobody waited: a TCP or inbound flow
        if not self.lost.called:
            self.lost.callback(None)


def _handshaken(proto: SipStreamProtocol) -> defer.Deferred[SipStreamProtocol]:
    """``proto`` once its TLS handshake has completed (fails with why not)."""
    done: defer.Deferred[SipStreamProtocol] = defer.Deferred()
    proto.secured.addCallbacks(lambda _: done.callback(proto), done.errback)
    return done


class _StreamFactory(Factory):
    noisy = False

    def __init__(self, connections: StreamConnections, transport_name: str,
                 listener: str) -> None:
        self.connections = connections
        self.transport_name = transport_name
        self.listener = listener

    def buildProtocol(self, addr: object) -> SipStreamProtocol:
        return SipStreamProtocol(self.connections, self.transport_name, self.listener, False)


Address = tuple[str, str, int]


class StreamConnections:
    """The TCP/TLS connections of one endpoint, inbound and outbound."""

    log = Logger(namespace="telavox.sip.stream")

    def __init__(self, endpoint: SipEndpoint, reactor: IReactorTime, *,
                 idle_timeout: float, partial_timeout: float, max_connections: int,
                 connect_timeout: float, tls: TlsFiles | None) -> None:
        self.endpoint = endpoint
        self.reactor = reactor
        self.idle_timeout = idle_timeout
        self.partial_timeout = partial_timeout
        self.max_connections = max_connections
        self.connect_timeout = connect_timeout
        self.tls = tls
        self.flows: dict[str, SipStreamProtocol] = {}
        self.by_address: dict[Address, SipStreamProtocol] = {}
        self._connecting: dict[Address, list[tuple[Send, Callable[[Send], None]]]] = {}

    def factory(self, transport_name: str, listener: str) -> Factory:
        """The protocol factory of a listener."""
        return _StreamFactory(self, transport_name, listener)

    def add(self, proto: SipStreamProtocol) -> bool:
        """Record a new connection; False when over the limit."""
        if len(self.flows) >= self.max_connections:
            return False
        self.flows[proto.flow] = proto
        if not proto.outgoing:  # an outgoing one once usable (_connected)
            self._index(proto, (proto.transport_name, proto.peer_host, proto.peer_port))
        return True

    def _index(self, proto: SipStreamProtocol, key: Address) -> None:
        self.by_address[key] = proto
        if key not in proto.addresses:  # the address dialled is usually the peer's
            proto.addresses.append(key)

    def remove(self, proto: SipStreamProtocol) -> None:
        """Forget a closed connection (under every address it was known by)."""
        if self.flows.get(proto.flow) is proto:
            del self.flows[proto.flow]
        for key in proto.addresses:
            if self.by_address.get(key) is proto:
                del self.by_address[key]

    def send(self, send: Send, listener: str, failed: Callable[[Send], None]) -> None:
        """Send over the flow the destination names, else a connection to its
        address (reused, or opened now)."""
        dest = send.dest
        if dest.flow is not None:
            proto = self.flows.get(dest.flow)
            if proto is not None and not proto.closed:
                proto.write_message(send.data())
                return
        address = (dest.transport, dest.host.strip("[]"), dest.port)
        proto = self.by_address.get(address)
        if proto is not None and not proto.closed:
            proto.write_message(send.data())
            return
        waiting = self._connecting.get(address)
        if waiting is not None:
            waiting.append((send, failed))
            return
        self._connecting[address] = [(send, failed)]
        self._connect(address, listener)

    def _connect(self, address: Address, listener: str) -> None:
        transport_name, host, port = address
        reactor = self.reactor
        assert IReactorTCP.providedBy(reactor)
        endpoint: IStreamClientEndpoint
        source = self._source_for(listener, host)
        if ":" in host:
            endpoint = TCP6ClientEndpoint(reactor, host, port, timeout=self.connect_timeout,
                                          bindAddress=source)
        else:
            endpoint = TCP4ClientEndpoint(reactor, host, port, timeout=self.connect_timeout,
                                          bindAddress=source)
        if transport_name == "tls":
            endpoint = wrapClientTLS(client_options(self.tls, host), endpoint)
        factory = Factory.forProtocol(
            lambda: SipStreamProtocol(self, transport_name, listener, True))
        factory.noisy = False
        d: defer.Deferred[Any] = endpoint.connect(factory)
        if transport_name == "tls":
            d.addCallback(_handshaken)
        d.addCallbacks(self._connected, self._connect_failed,
                       callbackArgs=(address,), errbackArgs=(address,))

    def _source_for(self, listener: str, host: str) -> tuple[str, int] | None:
        """Connections leave from the listener's address (a peer that knows
        us by address, a carrier's access list, sees that one), unless it
        listens on every address or on the other IP family."""
        bound = self.endpoint.listeners.get(listener)
        if bound is None or bound.host in ("0.0.0.0", "::") or (":" in bound.host) != (
                ":" in host):
            return None
        return (bound.host, 0)

    def _connected(self, proto: SipStreamProtocol, address: Address) -> None:
        waiting = self._connecting.pop(address, [])
        self._index(proto, address)
        self._index(proto, (proto.transport_name, proto.peer_host, proto.peer_port))
        for send, _ in waiting:
            proto.write_message(send.data())

    def _connect_failed(self, reason: Failure, address: Address) -> None:
        waiting = self._connecting.pop(address, [])
        self.log.info("cannot connect to {transport}:{host}:{port}: {why}",
                      transport=address[0], host=address[1], port=address[2],
                      why=reason.getErrorMessage())
        for send, failed in waiting:
            failed(send)

    def close_all(self) -> defer.Deferred[None]:
        """Drop every connection (endpoint stopping); fires when all are gone."""
        waiting = []
        for proto in list(self.flows.values()):
            waiting.append(proto.lost)
            proto.close()
        return defer.gatherResults(waiting).addCallback(lambda _: None)
