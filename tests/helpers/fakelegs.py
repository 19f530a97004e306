"""Fakes for unit tests of calls built on legs (tproxy, the gateway): a
LegHost that records what the legs send, on a fake clock."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet.task import Clock

from telavox.sip.hdrtypes import Via
from telavox.sip.message import Request, Response, new_branch
from telavox.sip.parser import parse_message
from telavox.sip.timers import TimerConfig
from telavox.sip.transaction import Action, Destination
from telavox.sip.uri import SipUri, Uri


def message(text: str, body: bytes = b"") -> Any:
    """A parsed message from ``text`` (LF line ends; Content-Length added)."""
    head = text.replace("\n", "\r\n")
    data = (head + f"Content-Length: {len(body)}\r\n\r\n").encode() + body
    return parse_message(data)


class FakeTxn:
    """Stands for a transaction: remembers its callback."""

    def __init__(self, request: Request, dest: Any,
                 on_event: Callable[[Action], None] | None = None) -> None:
        self.request = request
        self.dest = dest
        self.on_event = on_event


class FakeLegs:
    """A LegHost that records what the legs send; its Via names ``host``:``port``."""

    def __init__(self, clock: Clock, host: str = "127.0.0.1", port: int = 5070) -> None:
        self.clock = clock
        self.host = host
        self.port = port
        self.timers = TimerConfig()
        self.requests: list[FakeTxn] = []
        self.responses: list[Response] = []
        self.stateless: list[Any] = []

    def send_request(self, request: Request, dest: Destination,
                     on_event: Callable[[Action], None]) -> Any:
        txn = FakeTxn(request, dest, on_event)
        self.requests.append(txn)
        return txn

    def respond(self, txn: Any, response: Response) -> None:
        self.responses.append(response)

    def send_stateless(self, message: Any, dest: Destination) -> None:
        self.stateless.append(message)

    def via_for(self, dest: Destination) -> Via:
        return Via("UDP", self.host, self.port, (("branch", new_branch()),))

    def destination_for(self, uri: Uri) -> Destination:
        assert isinstance(uri, SipUri)
        return Destination("udp", uri.host_bare, uri.port or 5060)

    def call_later(self, delay: float, fn: Callable[[], object]) -> Any:
        return self.clock.callLater(delay, fn)

    def sent(self, method: str) -> list[FakeTxn]:
        """The requests of ``method`` sent so far."""
        return [t for t in self.requests if t.request.method == method]
