"""SIP over UDP: one datagram is one message (RFC 3261 §18).

Owns :class:`SipDatagramProtocol`, which hands each datagram to its endpoint
and writes what the endpoint sends.  Keep-alives (a lone CRLF pair, or the
4 zero bytes some phones send) are counted and otherwise ignored.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from twisted.internet.protocol import DatagramProtocol

from telavox.sip.errors import ParseError
from telavox.sip.parser import parse_message
from telavox.sip.transaction import Source

if TYPE_CHECKING:
    from telavox.transport.endpoint import SipEndpoint

_KEEPALIVE_BYTES = frozenset(b"\r\n\x00 ")


class SipDatagramProtocol(DatagramProtocol):
    """The UDP socket of one listener."""

    noisy = False

    def __init__(self, endpoint: SipEndpoint, listener: str) -> None:
        self.endpoint = endpoint
        self.listener = listener

    def datagramReceived(self, datagram: bytes, addr: tuple[str, int]) -> None:  # type: ignore[override]
        endpoint = self.endpoint
        if len(datagram) <= 8 and all(b in _KEEPALIVE_BYTES for b in datagram):
            endpoint.counters["keepalives"] += 1
            return
        source = Source("udp", addr[0], addr[1], None, self.listener)
        try:
            message = parse_message(datagram)
        except ParseError as e:
            endpoint.malformed(e, source, len(datagram))
            return
        endpoint.message_received(message, source, len(datagram))

    def send(self, data: bytes, host: str, port: int) -> None:
        """Write one datagram to ``host`` (an IP address literal, checked by
        the endpoint) and ``port``.

        The socket is written directly: Twisted's ``Port.write`` would parse
        the address three times per datagram.  A full send buffer drops the
        datagram like the network would (SIP retransmits); a refused port
        (ICMP) is ignored, as for any unconnected UDP socket; other errors
        are raised as OSError.
        """
        assert self.transport is not None
        sock = self.transport.socket  # type: ignore[attr-defined]
        while True:
            try:
                sock.sendto(data, (host, port))
                return
            except InterruptedError:
                continue
            except (BlockingIOError, ConnectionRefusedError):
                self.endpoint.counters["send_errors"] += 1
                return
