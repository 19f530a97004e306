"""UDP sockets for RTP and RTCP, read by the reactor directly.

Owns :class:`RtpSocket`.  A mediaserver opens and closes two sockets per
call leg, thousands per second under load: Twisted's ``listenUDP`` builds a
``Port`` object and writes a log line on every open and close, which costs
more than the call's signalling.  An RtpSocket is a bound non-blocking
socket registered with ``reactor.addReader``: a wake-up reads one
datagram (a media socket gets one every 20 ms, so reading on until the
socket is empty would cost a failing system call and an exception per
packet; the level-triggered poller wakes the reader again while datagrams
wait), and sending is the socket's own ``sendto``.
"""

from __future__ import annotations

import socket
from typing import Any, Protocol

from twisted.internet.interfaces import IReadDescriptor
from zope.interface import implementer

__all__ = ["DatagramReceiver", "RtpSocket"]

class DatagramReceiver(Protocol):
    """What an RtpSocket hands its datagrams to."""

    def datagramReceived(self, datagram: bytes, addr: Any) -> None:
        """One datagram from ``addr``."""


@implementer(IReadDescriptor)
class RtpSocket:
    """A UDP socket bound to ``host:port`` feeding ``receiver``; OSError
    from the constructor when the port cannot be bound."""

    def __init__(self, reactor: Any, host: str, port: int, receiver: DatagramReceiver) -> None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        try:
            sock.setblocking(False)
            sock.bind((host, port))
        except OSError:
            sock.close()
            raise
        self.socket = sock
        self.port = sock.getsockname()[1]
        self.receiver = receiver
        self._reactor = reactor
        self._fileno = sock.fileno()
        self._open = True
        reactor.addReader(self)

    def fileno(self) -> int:
        """The socket's descriptor (-1 once closed)."""
        return self._fileno

    def doRead(self) -> None:
        """Read one datagram and hand it on."""
        try:
            data, addr = self.socket.recvfrom(65535)
        except OSError:
            # nothing after all, or an ICMP error reported on the socket
            # (port unreachable): try again on the next wake-up
            return
        self.receiver.datagramReceived(data, addr)

    def connectionLost(self, reason: Any) -> None:
        """The reactor dropped the socket (shutdown): close it."""
        self.stopListening()

    def logPrefix(self) -> str:
        return "RtpSocket"

    def stopListening(self) -> None:
        """Close the socket (idempotent)."""
        if not self._open:
            return
        self._open = False
        self._reactor.removeReader(self)
        self.socket.close()
        self._fileno = -1
