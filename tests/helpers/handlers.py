"""A SIP handler for test endpoints."""

from __future__ import annotations

from typing import Any

from zope.interface import implementer

from telavox.sip.message import Request
from telavox.sip.transaction import RequestIn, Source
from telavox.transport.endpoint import SipEndpoint
from telavox.transport.interfaces import ISipHandler


@implementer(ISipHandler)
class Recorder:
    """Answers every request with ``status`` and remembers what came from where."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.sources: list[Source] = []
        self.requests: list[Request] = []

    def handle_request(self, endpoint: SipEndpoint, event: RequestIn) -> None:
        self.sources.append(event.source)
        self.requests.append(event.request)
        endpoint.reply(event, self.status, to_tag="rec")

    def handle_ack(self, endpoint: SipEndpoint, event: Any) -> None:
        """ACKs need no answer."""

    def handle_stray_response(self, endpoint: SipEndpoint, event: Any) -> None:
        """Stray responses are dropped."""

    def handle_server_failure(self, endpoint: SipEndpoint, event: Any) -> None:
        """Nothing to clean up."""
