"""The SIP endpoint over real loopback sockets and the in-process transport:
peer policy, UDP-to-TCP for large requests, connection limits and timeouts,
transport failures."""

from __future__ import annotations

import socket
from collections.abc import Generator
from typing import Any

import pytest
from helpers.handlers import Recorder
from twisted.internet import defer, reactor, task
from twisted.logger import LogLevel, formatEvent, globalLogPublisher
from twisted.trial import unittest

from telavox.sip.message import Request, Response
from telavox.sip.ua import new_request
from telavox.transport.address import ListenAddress
from telavox.transport.endpoint import EndpointOptions, SipEndpoint
from telavox.transport.local import LocalNetwork
from telavox.transport.policy import PeerPolicy

pytestmark = pytest.mark.integration


def options_to(endpoint: SipEndpoint, transport: str, host: str, port: int,
               body: bytes = b"") -> tuple[Request, Any]:
    dest = endpoint.destination(transport, host, port)
    request = new_request("OPTIONS", f"sip:{host}:{port}", from_="<sip:probe@127.0.0.1>",
                          to=f"<sip:{host}:{port}>", via=endpoint.via_for(dest),
                          body=body, content_type="text/plain" if body else None)
    return request, dest


class EndpointTests(unittest.TestCase):
    """Endpoints talking to each other."""

    def make(self, *listen: str, handler: Any = None, network: LocalNetwork | None = None,
             policy: PeerPolicy | None = None, **options: Any) -> SipEndpoint:
        endpoint = SipEndpoint("test", [ListenAddress.parse(a) for a in listen],
                               handler or Recorder(), reactor, network=network,
                               policy=policy, options=EndpointOptions(**options))
        endpoint.start()
        self.addCleanup(endpoint.stop)
        return endpoint

    @staticmethod
    def port_of(endpoint: SipEndpoint, transport: str) -> int:
        bound = endpoint.listener_for(transport)
        assert bound is not None
        return bound.port

    @defer.inlineCallbacks
    def test_in_process_transport(self) -> Generator[Any, Any, None]:
        """Between endpoints of one process a request travels as an object
        (no socket): the server sees a local source and the client
        transaction is reliable (no retransmission timer)."""
        network = LocalNetwork(reactor)
        server_handler = Recorder()
        server = self.make("udp:127.0.0.1:0", handler=server_handler, network=network)
        client = self.make("udp:127.0.0.1:0", network=network)
        port = self.port_of(server, "udp")
        request, dest = options_to(client, "udp", "127.0.0.1", port)
        self.assertTrue(dest.local)
        response = yield client.request(request, dest).addTimeout(5, reactor)
        self.assertEqual(response.status, 200)
        (source,) = server_handler.sources
        self.assertTrue(source.local)
        self.assertEqual(source.port, self.port_of(client, "udp"))
        self.assertEqual(server.counters["bytes_in"], 0)
        self.assertEqual(network.delivered, 2)

    @defer.inlineCallbacks
    def test_peer_policy_refuses_strangers(self) -> Generator[Any, Any, None]:
        """An internal listener answers 403 to a source that is not a
        configured peer, and serves the configured one."""
        server_handler = Recorder()
        allowed = self.make("udp:127.0.0.2:0")
        stranger = self.make("udp:127.0.0.1:0")
        server = self.make("udp:127.0.0.1:0", handler=server_handler, policy=PeerPolicy.only(
            [f"127.0.0.2:{self.port_of(allowed, 'udp')}"]))
        port = self.port_of(server, "udp")
        request, dest = options_to(stranger, "udp", "127.0.0.1", port)
        response = yield stranger.request(request, dest).addTimeout(5, reactor)
        self.assertEqual(response.status, 403)
        self.assertIn("not a configured peer", response.reason)
        self.assertEqual(server_handler.requests, [])
        request, dest = options_to(allowed, "udp", "127.0.0.1", port)
        response = yield allowed.request(request, dest).addTimeout(5, reactor)
        self.assertEqual(response.status, 200)
        self.assertEqual(server.counters["refused"], 1)

    @defer.inlineCallbacks
    def test_large_request_goes_over_tcp(self) -> Generator[Any, Any, None]:
        """A request larger than udp_mtu is sent over TCP (RFC 3261 §18.1.1),
        with its Via saying so."""
        server_handler = Recorder()
        server = self.make("udp:127.0.0.1:0", "tcp:127.0.0.1:0", handler=server_handler)
        client = self.make("udp:127.0.0.1:0", "tcp:127.0.0.1:0")
        request, dest = options_to(client, "udp", "127.0.0.1", self.port_of(server, "tcp"),
                                   body=b"x" * 1500)
        response = yield client.request(request, dest).addTimeout(5, reactor)
        self.assertEqual(response.status, 200)
        self.assertEqual(server_handler.sources[0].transport, "tcp")
        self.assertEqual(server_handler.requests[0].top_via.transport, "TCP")

    @defer.inlineCallbacks
    def test_connection_refused_gives_503(self) -> Generator[Any, Any, None]:
        """A TCP destination nobody listens on fails the transaction at once
        (503 made up locally), not after Timer F."""
        client = self.make("tcp:127.0.0.1:0")
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            closed_port = probe.getsockname()[1]
        request, dest = options_to(client, "tcp", "127.0.0.1", closed_port)
        response = yield client.request(request, dest).addTimeout(10, reactor)
        self.assertIsInstance(response, Response)
        self.assertEqual(response.status, 503)

    def _connect(self, port: int) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        self.addCleanup(sock.close)
        sock.setblocking(False)
        return sock

    @defer.inlineCallbacks
    def _wait_closed(self, sock: socket.socket, limit: float) -> Generator[Any, Any, bool]:
        waited = 0.0
        while waited < limit:
            try:
                if sock.recv(65535) == b"":
                    return True
            except BlockingIOError:
                pass
            except ConnectionResetError:
                return True
            yield task.deferLater(reactor, 0.05, lambda: None)
            waited += 0.05
        return False

    @defer.inlineCallbacks
    def test_stalled_partial_message_is_cut(self) -> Generator[Any, Any, None]:
        """A peer that sends half a message and stalls is disconnected after
        partial_timeout."""
        server = self.make("tcp:127.0.0.1:0", partial_timeout=0.3)
        sock = self._connect(self.port_of(server, "tcp"))
        sock.send(b"OPTIONS sip:x SIP/2.0\r\nVia: SIP/2.0/TCP 1.2.3.4")
        closed = yield self._wait_closed(sock, 3.0)
        self.assertTrue(closed)

    @defer.inlineCallbacks
    def test_idle_connection_is_closed(self) -> Generator[Any, Any, None]:
        """A connection that stays silent past idle_timeout is closed."""
        server = self.make("tcp:127.0.0.1:0", idle_timeout=0.3)
        sock = self._connect(self.port_of(server, "tcp"))
        closed = yield self._wait_closed(sock, 3.0)
        self.assertTrue(closed)

    @defer.inlineCallbacks
    def test_connection_limit(self) -> Generator[Any, Any, None]:
        """Connections beyond max_connections are refused; the first ones stay."""
        server = self.make("tcp:127.0.0.1:0", max_connections=2)
        port = self.port_of(server, "tcp")
        first = [self._connect(port) for _ in range(2)]
        yield task.deferLater(reactor, 0.1, lambda: None)
        extra = self._connect(port)
        closed = yield self._wait_closed(extra, 3.0)
        self.assertTrue(closed)
        for sock in first:
            with pytest.raises(BlockingIOError):
                sock.recv(10)
        self.assertEqual(len(server.streams.flows), 2)


class LoggingTests(unittest.TestCase):
    """What an endpoint logs."""

    @defer.inlineCallbacks
    def test_message_and_transaction_lines(self) -> Generator[Any, Any, None]:
        """With message logging on, every message gets a debug line naming its
        direction and summary; each finished transaction one info line with
        its outcome; with it off, no debug lines."""
        events: list[dict[str, Any]] = []
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        server = SipEndpoint("srv", [ListenAddress.parse("tcp:127.0.0.1:0")], Recorder(),
                             reactor, options=EndpointOptions(log_messages=True))
        server.start()
        self.addCleanup(server.stop)
        client = SipEndpoint("cli", [ListenAddress.parse("tcp:127.0.0.1:0")], Recorder(),
                             reactor)
        client.start()
        self.addCleanup(client.stop)
        port = EndpointTests.port_of(server, "tcp")
        request, dest = options_to(client, "tcp", "127.0.0.1", port)
        response = yield client.request(request, dest).addTimeout(5, reactor)
        self.assertEqual(response.status, 200)
        yield task.deferLater(reactor, 0.05, lambda: None)
        lines = [(e["log_level"], formatEvent(e)) for e in events
                 if e.get("endpoint") in ("srv", "cli")]
        debug = [text for level, text in lines if level is LogLevel.debug]
        self.assertTrue(any(t.startswith("srv <- tcp:127.0.0.1:") and "OPTIONS" in t
                            for t in debug), debug)
        self.assertTrue(any(t.startswith("srv -> tcp:127.0.0.1:") and "200 OK" in t
                            for t in debug), debug)
        self.assertFalse(any(t.startswith("cli") for t in debug))
        info = [text for level, text in lines if level is LogLevel.info]
        self.assertTrue(any("srv server OPTIONS transaction 200" in t for t in info), info)
        self.assertTrue(any("cli client OPTIONS transaction 200" in t for t in info), info)
