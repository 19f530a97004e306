"""The sipproxy base application: listeners toward phones and the requests
the proxy answers itself.

Owns :class:`SipProxyService`.  It answers OPTIONS addressed to the platform
itself (its domain or one of its addresses, no user part) with 200 and the
capabilities (Allow, Accept, Supported): phones, carriers and monitoring use it
as a keep-alive.  Requests it cannot serve yet are answered with a precise
status (RFC 3261 §8.2, §16.3): 483 when Max-Forwards is exhausted, 416 for an
unknown URI scheme, 420 for an unsupported Proxy-Require, 403 for another
domain, 481 for a CANCEL that matches nothing, 501 otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from twisted.logger import Logger
from zope.interface import implementer

from telavox.base import BaseApplication, Platform
from telavox.records import Health
from telavox.sip.hdrtypes import HeaderError
from telavox.sip.message import Request, make_response, new_tag
from telavox.sip.transaction import AckIn, RequestIn, StrayResponse
from telavox.sip.uri import SipUri
from telavox.transport.endpoint import SipEndpoint
from telavox.transport.interfaces import ISipHandler
from telavox.transport.policy import PeerPolicy

ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS, REGISTER, SUBSCRIBE, NOTIFY, REFER, MESSAGE, INFO, "\
        "PRACK, UPDATE"
ACCEPT = "application/sdp"
SUPPORTED = "path, outbound, gruu, replaces, timer, 100rel"

Extra = tuple[tuple[str, str], ...]


@implementer(ISipHandler)
class SipProxyService(BaseApplication):
    """The proxy's SIP endpoint and the requests it answers itself."""

    log = Logger(namespace="telavox.sipproxy")
    restart_keys = ("listen",)

    def __init__(self, platform: Platform, section: Any) -> None:
        super().__init__("sipproxy", platform, section)
        self.endpoint = SipEndpoint(
            "sipproxy", section.listen, self, platform.reactor,
            options=platform.endpoint_options(), policy=PeerPolicy(),
            tls=platform.tls_files(), network=platform.network)
        self.domain = platform.config.platform.domain.lower()
        self.answered_options = 0

    # -- service -----------------------------------------------------------------

    def startService(self) -> None:
        self.endpoint.start()
        super().startService()

    def stopService(self) -> Any:
        super().stopService()
        return self.endpoint.stop()

    def health(self) -> Health:
        if not self.running:
            return Health.down("not running")
        return Health.ok()

    def stats(self) -> Mapping[str, float]:
        out: dict[str, float] = dict(self.endpoint.stats())
        out["options_answered"] = self.answered_options
        return out

    # -- what is ours --------------------------------------------------------------

    def is_ours(self, uri: SipUri) -> bool:
        """True when ``uri`` names this platform (its domain or an address it
        listens on)."""
        host = uri.host_bare
        if host in (self.domain, "localhost"):
            return True
        for bound in self.endpoint.listeners.values():
            if host in (bound.host.lower(), bound.via_host.lower()) and (
                    uri.port is None or uri.port in (bound.port, bound.via_port)):
                return True
        return False

    # -- ISipHandler ------------------------------------------------------------------

    def handle_request(self, endpoint: SipEndpoint, event: RequestIn) -> None:
        request = event.request
        problem = self._precheck(request)
        if problem is not None:
            status, reason, extra = problem
            endpoint.reply(event, status, reason, to_tag=new_tag(), extra=extra)
            return
        uri = request.uri
        assert isinstance(uri, SipUri)
        if request.method == "CANCEL":
            self._cancel(endpoint, event)
            return
        if not self.is_ours(uri):
            endpoint.reply(event, 403, "Relaying Denied", to_tag=new_tag())
            return
        if request.method == "OPTIONS" and uri.user is None:
            self.answered_options += 1
            endpoint.reply(event, 200, to_tag=new_tag(), extra=(
                ("Allow", ALLOW), ("Accept", ACCEPT), ("Supported", SUPPORTED),
                ("Accept-Encoding", "identity"), ("Accept-Language", "en"),
                ("Server", self.section.user_agent)))
            return
        endpoint.reply(event, 501, to_tag=new_tag(), extra=(("Allow", ALLOW),))

    def _precheck(self, request: Request) -> tuple[int, str, Extra] | None:
        """§16.3 request validation: the answer a request gets before routing."""
        if not isinstance(request.uri, SipUri):
            return 416, "Unsupported URI Scheme", ()
        try:
            max_forwards = request.int_header("Max-Forwards")
        except HeaderError:
            return 400, "Malformed Max-Forwards", ()
        if max_forwards == 0 and request.method != "OPTIONS":
            return 483, "Too Many Hops", ()
        try:
            proxy_require = request.option_tags("Proxy-Require")
        except ValueError:
            return 400, "Malformed Proxy-Require", ()
        if proxy_require:
            return 420, "Bad Extension", (("Unsupported", ", ".join(proxy_require)),)
        return None

    def _cancel(self, endpoint: SipEndpoint, event: RequestIn) -> None:
        invite = endpoint.layer.find_invite(event.request)
        if invite is None:
            endpoint.reply(event, 481)
            return
        endpoint.reply(event, 200)
        if not invite.responded or invite.last_response is None or (
                invite.last_response.status < 200):
            endpoint.respond(invite, make_response(invite.request, 487, to_tag=new_tag()))

    def handle_ack(self, endpoint: SipEndpoint, event: AckIn) -> None:
        """ACKs of 2xx we never sent: nothing to do."""

    def handle_stray_response(self, endpoint: SipEndpoint, event: StrayResponse) -> None:
        """Responses to requests we never sent: dropped."""

    def handle_server_failure(self, endpoint: SipEndpoint, event: object) -> None:
        """Nothing to clean up for the requests answered here."""
