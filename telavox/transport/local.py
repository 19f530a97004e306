"""The in-process SIP transport between components of one process.

Owns :class:`LocalNetwork`: a registry of the listen addresses of every
endpoint in the process.  A message sent to a registered address is handed
over as a copied message object (no socket, no re-parse) on the next reactor
turn, with the sender's listen address as its source, so that everything above
the transport behaves exactly as over UDP or TCP.  Delivery is lossless and in
order, so transactions over it are treated as reliable (no retransmissions).
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Protocol

from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger

from telavox.sip.message import Request, Response
from telavox.sip.transaction import Source

if TYPE_CHECKING:
    from telavox.transport.address import ListenAddress


class LocalReceiver(Protocol):
    """What an endpoint offers the local network."""

    def local_received(self, message: Request | Response, source: Source) -> None:
        """A message arrived over the in-process transport."""


def _key(transport: str, host: str, port: int) -> tuple[str, str, int]:
    return (transport.lower(), host.lower().strip("[]"), port)


class LocalNetwork:
    """Listen addresses of the endpoints hosted in this process."""

    log = Logger()

    def __init__(self, reactor: IReactorTime) -> None:
        self._reactor = reactor
        self._listeners: dict[tuple[str, str, int], tuple[LocalReceiver, str]] = {}
        self._ports: set[int] = set()  # a cheap first test before building keys
        self._queue: deque[tuple[LocalReceiver, Request | Response, Source]] = deque()
        self._drain: IDelayedCall | None = None
        self.delivered = 0

    def register(self, listener: ListenAddress, receiver: LocalReceiver) -> None:
        """Make ``listener`` (bound and advertised address) reachable in process."""
        name = str(listener)
        self._ports.update((listener.port, listener.via_port))
        self._listeners[_key(listener.transport, listener.host, listener.port)] = (receiver, name)
        self._listeners[_key(listener.transport, listener.via_host, listener.via_port)] = (
            receiver, name)

    def unregister(self, listener: ListenAddress) -> None:
        """Forget ``listener``."""
        self._listeners.pop(_key(listener.transport, listener.host, listener.port), None)
        self._listeners.pop(_key(listener.transport, listener.via_host, listener.via_port), None)

    def lookup(self, transport: str, host: str, port: int) -> tuple[LocalReceiver, str] | None:
        """The receiver listening at that address in this process, if any."""
        if port not in self._ports:
            return None
        return self._listeners.get(_key(transport, host, port))

    def send(self, message: Request | Response, transport: str, host: str, port: int,
             sender: ListenAddress) -> bool:
        """Queue a copy of ``message`` for the local listener at the address;
        False if nobody in this process listens there."""
        hit = self.lookup(transport, host, port)
        if hit is None:
            return False
        receiver, name = hit
        source = Source(transport.lower(), sender.via_host, sender.via_port, None, name, True)
        self._queue.append((receiver, message.copy(), source))
        if self._drain is None:
            self._drain = self._reactor.callLater(0, self._deliver)
        return True

    def _deliver(self) -> None:
        self._drain = None
        queue = self._queue
        count = len(queue)  # what arrives while delivering waits for the next turn
        for _ in range(count):
            receiver, message, source = queue.popleft()
            self.delivered += 1
            try:
                receiver.local_received(message, source)
            except Exception:
                self.log.failure("in-process SIP delivery failed")
        if queue and self._drain is None:
            self._drain = self._reactor.callLater(0, self._deliver)
