"""The TCP/TLS connection adapter's own rules, with a fake clock and a
string transport: an outgoing TLS connection whose handshake never
completes is dropped after the connect timeout, failing what waits on it."""

from __future__ import annotations

from typing import Any

from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionAborted
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure

from telavox.transport.stream import SipStreamProtocol, StreamConnections


class _Endpoint:
    max_message = 65536
    counters: dict[str, int] = {}


def _connection(transport_name: str, clock: Clock) -> tuple[SipStreamProtocol, StringTransport,
                                                             list[Any]]:
    connections = StreamConnections(_Endpoint(), clock, idle_timeout=600.0,  # type: ignore[arg-type]
                                    partial_timeout=30.0, max_connections=10,
                                    connect_timeout=10.0, tls=None)
    proto = SipStreamProtocol(connections, transport_name, "carrier", outgoing=True)
    transport = StringTransport(peerAddress=IPv4Address("TCP", "192.0.2.5", 5061))
    proto.makeConnection(transport)
    outcome: list[Any] = []
    proto.secured.addCallbacks(outcome.append, outcome.append)
    return proto, transport, outcome


def test_a_stalled_tls_handshake_is_dropped_after_the_connect_timeout() -> None:
    clock = Clock()
    proto, transport, outcome = _connection("tls", clock)
    clock.advance(9.9)
    assert not transport.disconnecting
    clock.advance(0.2)
    assert transport.disconnecting and proto.closed
    proto.connectionLost(Failure(ConnectionAborted()))
    [failure] = outcome
    assert isinstance(failure, Failure) and failure.check(ConnectionAborted)


def test_a_completed_handshake_stops_the_timer() -> None:
    clock = Clock()
    proto, transport, outcome = _connection("tls", clock)
    clock.advance(1.0)
    proto.handshakeCompleted()
    assert outcome == [None]
    clock.advance(60.0)
    assert not transport.disconnecting


def test_plain_tcp_has_no_handshake_timer() -> None:
    clock = Clock()
    _, transport, outcome = _connection("tcp", clock)
    clock.advance(60.0)
    assert not transport.disconnecting and outcome == []
