"""The sipproxy base application: the edge proxy phones talk to.

Owns :class:`SipProxyService` and the dispatch of every request (RFC 3261
§16 with the rules of :mod:`telavox.sip.proxycore`):

- from anyone: §16.3 validation (416, 400, 483, 420), loops (482), CANCEL
  matched to the INVITE it cancels (§16.10), OPTIONS to the platform itself
  answered 200 without a challenge (keep-alives);
- from phones (any source that is not a pool member or gateway): a per-source
  rate limit (503 with Retry-After, or silence far over the limit), overload
  control while the reactor is out of CPU (a share of new requests that do
  not answer a recent challenge refused with 503 and Retry-After,
  :mod:`.overload`), digest
  authentication (401 for REGISTER, 407 for the rest, with brute-force
  blocking); REGISTER goes to the registrar; other requests go to the SIP
  server tlb names for the caller, with the caller's identity asserted in
  P-Asserted-Identity (RFC 3325; any such field from the phone removed),
  Record-Route and a NAT alias on the Contact; SUBSCRIBE is routed by its
  Event package; an unauthenticated request never leaves the proxy;
- from pool members and gateways (recognised by source address, never by a
  header): requests for a user are forked in parallel to every registered
  contact (404 unknown user, 480 no binding);
- in-dialog requests follow their Route set; a phone's in-dialog request may
  only go to a pool member (so no dialog can be forged toward a gateway).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from twisted.internet.task import LoopingCall
from twisted.logger import Logger
from zope.interface import implementer

from telavox.base import BaseApplication, Platform
from telavox.interfaces import ILocationService, ITlb, IUserDirectory
from telavox.records import Health, PoolMember
from telavox.sip.hdrtypes import HeaderError, Via
from telavox.sip.message import Request, Response, new_tag
from telavox.sip.proxycore import (
    forwarded_request,
    is_dialog_creating,
    is_loop,
    loop_branch,
    next_hop,
    pop_own_routes,
    record_route,
    validate,
)
from telavox.sip.transaction import (
    AckIn,
    Action,
    Destination,
    RequestIn,
    ResponseIn,
    ServerTransaction,
    Source,
    StrayResponse,
)
from telavox.sip.transaction.server import DEFAULT_PORTS
from telavox.sip.uri import SipUri, UriError, format_host
from telavox.sipproxy.auth import Authenticator, Outcome
from telavox.sipproxy.forwarder import Branch, ProxyCall, Target
from telavox.sipproxy.guard import AuthGuard, RateLimiter
from telavox.sipproxy.overload import OverloadControl
from telavox.sipproxy.routing import (
    alias_contact,
    alias_destination,
    binding_target,
    parse_source,
    uri_destination,
)
from telavox.transport.endpoint import SipEndpoint
from telavox.transport.interfaces import ISipHandler
from telavox.transport.policy import PeerPolicy

ALLOW = "INVITE, ACK, CANCEL, BYE, OPTIONS, REGISTER, SUBSCRIBE, NOTIFY, REFER, MESSAGE, INFO, "\
        "PRACK, UPDATE"
ACCEPT = "application/sdp"
SUPPORTED = "path, outbound, gruu, replaces, timer, 100rel"
# event packages served by a user's SIP server; dialog/presence belong to the
# live-state service (not built yet)
SERVER_EVENTS = frozenset({"message-summary", "refer"})

Extra = tuple[tuple[str, str], ...]

LOAD_INTERVAL = 0.5
"""Seconds between two samples of the reactor thread's CPU time (overload control)."""
OVERLOAD_RETRY_AFTER = 2
OVERLOAD_RETRY_SPREAD = 8
"""Retry-After of a request turned away by overload control: 2 to 9 seconds."""
_ALWAYS_ADMITTED = frozenset({"CANCEL", "OPTIONS"})
CHALLENGE_ANSWER_TIME = 32.0
"""Seconds (64*T1) within which a request with credentials counts as the
answer to a challenge and passes overload control; a nonce older than that,
cached by the phone for its next calls, does not."""


@implementer(ISipHandler)
class SipProxyService(BaseApplication):
    """The proxy's SIP endpoint and its routing."""

    log = Logger(namespace="telavox.sipproxy")
    # the endpoint's sockets; the authenticator and the guards take their keys
    # in apply(), the others are read where they are used
    restart_keys = ("listen",)

    def __init__(self, platform: Platform, section: Any) -> None:
        super().__init__("sipproxy", platform, section)
        self.endpoint = SipEndpoint(
            "sipproxy", section.listen, self, platform.reactor,
            options=platform.endpoint_options(), policy=PeerPolicy(),
            tls=platform.tls_files(), network=platform.network)
        self.domain = platform.config.platform.domain.lower()
        self.directory: IUserDirectory = platform.require(IUserDirectory)
        self.location: ILocationService = platform.require(ILocationService)
        self.tlb: ITlb = platform.require(ITlb)
        self.guard = AuthGuard(section.max_failures, section.max_failed_users,
                               section.block_time)
        self.limiter = RateLimiter(section.rate_limit, section.rate_burst)
        self.auth = Authenticator(self.directory, self.guard,
                                  algorithms=tuple(section.auth_algorithms),
                                  nonce_lifetime=section.nonce_lifetime,
                                  is_ours=self.is_ours)
        self.overload = OverloadControl(section.overload_cpu)
        self.calls: dict[ServerTransaction, ProxyCall] = {}
        # bound once: every call holds these, and a bound method is an object
        self._on_response = self._shape_response
        self._on_finished = self._finished
        self._on_late = self._late_response
        self._sweep: LoopingCall | None = None
        self._load: LoopingCall | None = None
        self.counters = {"options_answered": 0, "forwarded": 0, "rate_limited": 0,
                         "dropped": 0, "refused": 0}

    # -- service ---------------------------------------------------------------

    def startService(self) -> None:
        self.endpoint.start()
        self._sweep = LoopingCall(self._expire_timers)
        self._sweep.clock = self.platform.reactor
        self._sweep.start(1.0, now=False)
        self._load = LoopingCall(self._sample_load)
        self._load.clock = self.platform.reactor
        self._load.start(LOAD_INTERVAL, now=True)
        super().startService()

    def stopService(self) -> Any:
        super().stopService()
        for loop in (self._sweep, self._load):
            if loop is not None and loop.running:
                loop.stop()
        return self.endpoint.stop()

    def apply(self, section: Any) -> None:
        """Put a new ``[sipproxy]`` in force: digest algorithms and nonce
        lifetime from the next challenge, brute-force thresholds from the
        next failure, the rate limit from the next request.  Blocks, buckets
        and nonces already issued carry over.  The digest settings are put
        first, as only they can be refused here (an algorithm this Python
        cannot compute: ValueError, nothing changed); the configuration's
        validators have already held the limits to their ranges."""
        self.auth.server.configure(algorithms=section.auth_algorithms,
                                   nonce_lifetime=section.nonce_lifetime)
        self.limiter.configure(section.rate_limit, section.rate_burst)
        self.guard.configure(section.max_failures, section.max_failed_users,
                             section.block_time)
        changed = [key for key in ("auth_algorithms", "nonce_lifetime", "max_failures",
                                   "max_failed_users", "block_time", "rate_limit",
                                   "rate_burst")
                   if getattr(section, key) != getattr(self.section, key)]
        if changed:
            self.log.info("Authentication and limits now: {settings}", settings=", ".join(
                f"{key}={getattr(section, key)!r}" for key in changed))

    def _sample_load(self) -> None:
        control = self.overload
        control.limit = self.section.overload_cpu
        # the reactor's thread and a clock that never steps: the store's
        # worker thread does not count, and a clock set back reads as no load
        if control.sample(time.monotonic(), time.thread_time()):
            if control.shedding:
                self.log.warn("Overloaded ({cpu:.0%} of a core for {seconds:.1f} s): "
                              "turning a share of new requests away with 503",
                              cpu=control.utilization, seconds=control.hold * LOAD_INTERVAL)
            else:
                self.log.info("Load back under {limit:.0%} of a core: taking every new "
                              "request again ({refused} turned away so far)",
                              limit=control.limit, refused=control.refused)

    def _expire_timers(self) -> None:
        now = self.now()
        for call in list(self.calls.values()):
            call.expire_timers(now)

    def health(self) -> Health:
        if not self.running:
            return Health.down("not running")
        return Health.ok()

    def stats(self) -> Mapping[str, float]:
        out: dict[str, float] = dict(self.endpoint.stats())
        out.update(self.counters)
        out.update(self.auth.counters)
        out["proxied_in_progress"] = len(self.calls)
        out["overload_share"] = self.overload.share
        out["overload_refused"] = self.overload.refused
        out["cpu_utilization"] = self.overload.utilization
        return out

    def now(self) -> float:
        """The reactor's clock."""
        return self.platform.reactor.seconds()  # type: ignore[no-any-return]

    # -- who is who ------------------------------------------------------------------

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

    def _own_via(self, via: Via) -> bool:
        host, port = via.sent_by
        return any(host == b.via_host.lower() and (port or 5060) == b.via_port
                   for b in self.endpoint.listeners.values())

    def _via_hints(self) -> tuple[str, ...]:
        """Our Via sent-by values as they appear in Via lines (for the loop
        check): ``host:port``, as :meth:`SipEndpoint.via_for` writes them."""
        return tuple({f"{format_host(b.via_host)}:{b.via_port}"
                      for b in self.endpoint.listeners.values()})

    def peer_of(self, source: Source) -> PoolMember | None:
        """The pool member or gateway ``source`` is, if any."""
        member = self.tlb.member_for_source(source.host, source.port)
        if member is None and source.transport != "udp" and not source.local:
            member = self.tlb.member_for_source(source.host, None)
        return member

    def _flows(self) -> dict[tuple[str, str, int], str]:
        return {key: proto.flow for key, proto in self.endpoint.streams.by_address.items()}

    def _record_routes(self, source: Source, dest: Destination) -> tuple[str, ...]:
        """Our Record-Route value(s): one, or two when the request leaves by
        another listener (transport or interface) than it came in."""
        inbound = self.endpoint.listeners.get(source.listener)
        outbound = self.endpoint.listener_for(dest.transport, dest.host, dest.listener)
        values = []
        for bound in (inbound, outbound):
            if bound is None:
                continue
            value = record_route(bound.via_host if ":" not in bound.via_host else
                                 f"[{bound.via_host}]", bound.via_port, bound.transport)
            if value not in values:
                values.append(value)
        return tuple(values)

    # -- ISipHandler -------------------------------------------------------------------

    def handle_request(self, endpoint: SipEndpoint, event: RequestIn) -> None:
        request, source = event.request, event.source
        peer = self.peer_of(source)
        if peer is None and not (self._within_rate(event) and self._admitted(event)):
            return
        refusal = validate(request)
        if refusal is not None:
            reason, extra = refusal
            endpoint.reply(event, reason.status, reason.reason, to_tag=new_tag(), extra=extra)
            return
        try:
            if is_loop(request, self._own_via, self._via_hints()):
                endpoint.reply(event, 482, "Loop Detected", to_tag=new_tag())
                return
            if request.method == "CANCEL":
                self._cancel(event)
            elif request.to_tag is not None:
                self._in_dialog(request, source, peer, event)
            else:
                self._out_of_dialog(event, peer)
        except (HeaderError, UriError) as e:
            if not event.txn.responded:
                endpoint.reply(event, 400, f"Bad Request ({e})", to_tag=new_tag())

    def handle_ack(self, endpoint: SipEndpoint, event: AckIn) -> None:
        """The ACK of a 2xx: route it statelessly along its Route set."""
        try:
            self._in_dialog(event.request, event.source, self.peer_of(event.source), None)
        except (HeaderError, UriError):
            self.counters["dropped"] += 1

    def handle_stray_response(self, endpoint: SipEndpoint, event: StrayResponse) -> None:
        """A response with no client transaction (a retransmitted 2xx after
        Timer M): forward it statelessly when our Via is on top (§16.7)."""
        response = event.response
        try:
            if not self._own_via(response.top_via):
                return
        except (HeaderError, KeyError):
            return
        self._pass_up(response.copy())

    def _pass_up(self, response: Response) -> None:
        """Send ``response`` (ours to change) statelessly to the next Via
        down, without our own Via (§16.7 step 9), over the connection that
        address has with us if any.  A response with no Via left is dropped."""
        try:
            response.headers.pop_first_value("Via")
            via = response.top_via
        except (HeaderError, KeyError):
            self.counters["dropped"] += 1
            return
        transport = via.transport.lower()
        host = via.received or via.sent_by[0]
        port = via.rport or via.port or DEFAULT_PORTS.get(transport, 5060)
        flow = self._flows().get((transport, host, port))
        self.endpoint.send_stateless(response, Destination(transport, host, port, flow=flow))

    def _late_response(self, target: Target, event: Action) -> None:
        """What the transaction of a proxied INVITE's branch reports once the
        call is over (:class:`ProxyCall` has been let go): a 2xx is passed up
        statelessly as the call would have (the proxy forwards every 2xx,
        RFC 6026 §8.1), with the same NAT alias on a phone's Contact; the
        rest is the transaction's own business."""
        if type(event) is not ResponseIn:
            return
        response = event.response
        if 200 <= response.status < 300:
            self._pass_up(self._alias_answer(target, response))

    def handle_server_failure(self, endpoint: SipEndpoint, event: object) -> None:
        """Nothing to clean up: branches end by themselves."""

    # -- the pieces ------------------------------------------------------------------------

    def _within_rate(self, event: RequestIn) -> bool:
        decision = self.limiter.allow(event.source.host, self.now())
        if decision.allowed:
            return True
        self.counters["rate_limited"] += 1
        if not decision.dropped:
            self.endpoint.reply(event, 503, "Service Unavailable (rate limit)",
                                to_tag=new_tag(),
                                extra=(("Retry-After", str(decision.retry_after)),))
        return False

    def _admitted(self, event: RequestIn) -> bool:
        """Overload control at the door: while shedding, a share of the new
        requests that carry no credentials gets 503 (stateless).  Whatever
        continues work already taken in goes through: in-dialog requests,
        CANCEL, OPTIONS, and the answer to a challenge issued in the last
        32 s (:meth:`Authenticator.answers_recent_challenge`)."""
        control = self.overload
        if not control.shedding:
            return True
        request = event.request
        if request.method in _ALWAYS_ADMITTED:
            return True
        try:
            if request.to_tag is not None:
                return True
        except HeaderError:
            return True  # answered 400 by the checks that follow
        if self.auth.answers_recent_challenge(request, self.now(), CHALLENGE_ANSWER_TIME):
            return True
        if control.admit():
            return True
        # spread the retries of the phones turned away over a few seconds
        retry_after = str(OVERLOAD_RETRY_AFTER + control.refused % OVERLOAD_RETRY_SPREAD)
        self.endpoint.reply(event, 503, "Service Unavailable (overload)", to_tag=new_tag(),
                            extra=(("Retry-After", retry_after),), stateless=True)
        return False

    def _cancel(self, event: RequestIn) -> None:
        invite = self.endpoint.layer.find_invite(event.request)
        if invite is None:
            self.endpoint.reply(event, 481, "Call/Transaction Does Not Exist")
            return
        self.endpoint.reply(event, 200)
        call = self.calls.get(invite)
        if call is not None:
            call.cancel()

    def _out_of_dialog(self, event: RequestIn, peer: PoolMember | None) -> None:
        request = event.request
        uri = request.uri
        assert isinstance(uri, SipUri)
        pop_own_routes(request, self.is_ours)
        if request.method == "OPTIONS" and uri.user is None and self.is_ours(uri):
            self._answer_options(event)
            return
        if peer is not None:
            self._from_peer(event, peer)
        else:
            self._from_phone(event)

    def _answer_options(self, event: RequestIn) -> None:
        self.counters["options_answered"] += 1
        self.endpoint.reply(event, 200, to_tag=new_tag(), extra=(
            ("Allow", ALLOW), ("Accept", ACCEPT), ("Supported", SUPPORTED),
            ("Accept-Encoding", "identity"), ("Accept-Language", "en"),
            ("Server", self.section.user_agent)))

    def _refuse(self, event: RequestIn, status: int, reason: str, extra: Extra = ()) -> None:
        self.counters["refused"] += 1
        self.endpoint.reply(event, status, reason, to_tag=new_tag(), extra=extra)

    def _from_phone(self, event: RequestIn) -> None:
        request, source = event.request, event.source
        uri = request.uri
        assert isinstance(uri, SipUri)
        if not self.is_ours(uri):
            self._refuse(event, 403, "Relaying Denied")
            return
        result = self.auth.check(request, source.host, self.now())
        if result.outcome is not Outcome.ACCEPT:
            # challenges are sent statelessly, as Kamailio's sl does: a
            # retransmitted request simply gets a new challenge
            self.endpoint.reply(event, result.status, result.reason, to_tag=new_tag(),
                                extra=result.extra, stateless=True)
            return
        user = result.user
        assert user is not None
        if request.method == "REGISTER":
            self.endpoint.respond(event.txn, self.location.register(request, source, user))
            return
        if request.headers.get("Route") is not None:
            self._refuse(event, 403, "Preloaded Route Not Allowed")
            return
        if request.method in ("SUBSCRIBE", "PUBLISH"):
            package = (request.headers.get("Event") or "").split(";", 1)[0].strip().lower()
            if package not in SERVER_EVENTS:
                self._refuse(event, 489, "Bad Event",
                             extra=(("Allow-Events", ", ".join(sorted(SERVER_EVENTS))),))
                return
        member = self.tlb.locate_user(user)
        if member is None:
            self._refuse(event, 503, "No SIP Server Available", extra=(("Retry-After", "5"),))
            return
        self._assert_identity(request, user)
        if is_dialog_creating(request):
            alias_contact(request, source)
        dest = self._member_destination(member)
        routes = self._record_routes(source, dest) if (
            self.section.record_route and is_dialog_creating(request)) else ()
        self._proxy(event, [Target(uri=None, dest=dest, record_routes=routes, trusted=True)])

    def _assert_identity(self, request: Request, user: str) -> None:
        """RFC 3325: the proxy vouches for the authenticated caller."""
        request.headers.remove("P-Asserted-Identity")
        request.headers.remove("P-Preferred-Identity")
        record = self.directory.get_user(user)
        name = record.display_name if record is not None else ""
        identity = f"<sip:{user}@{self.domain}>"
        if name:
            quoted = name.replace("\\", "\\\\").replace('"', '\\"')
            identity = f'"{quoted}" {identity}'
        request.headers.add("P-Asserted-Identity", identity)

    def _member_destination(self, member: PoolMember) -> Destination:
        parts = parse_source(member.address)
        assert parts is not None, member.address
        transport, host, port = parts
        return self.endpoint.destination(transport, host, port)

    def _from_peer(self, event: RequestIn, peer: PoolMember) -> None:
        request, source = event.request, event.source
        uri = request.uri
        assert isinstance(uri, SipUri)
        if request.method == "REGISTER":
            self._refuse(event, 403, "Forbidden")
            return
        user = uri.user_unescaped
        if user is None or not self.is_ours(uri) or self.directory.get_user(user) is None:
            self._refuse(event, 404, "Not Found")
            return
        bindings = self.location.lookup(user)
        flows = self._flows()
        targets = []
        for binding in bindings:
            target = binding_target(binding, flows, ())
            if target is None:
                continue
            if self.section.record_route and is_dialog_creating(request):
                target = Target(uri=target.uri, dest=target.dest, routes=target.routes,
                                record_routes=self._record_routes(source, target.dest),
                                trusted=False)
            targets.append(target)
        if not targets:
            self._refuse(event, 480, "Temporarily Unavailable")
            return
        self._proxy(event, targets)

    def _in_dialog(self, request: Request, source: Source, peer: PoolMember | None,
                   event: RequestIn | None) -> None:
        removed = pop_own_routes(request, self.is_ours)
        if removed == 0 and peer is None:
            if event is not None:
                self._refuse(event, 404, "Not Here")
            return
        hop = next_hop(request)
        if hop is None:
            if event is not None:
                self._refuse(event, 416, "Unsupported URI Scheme")
            return
        aliased = alias_destination(hop, self._flows())
        new_uri: SipUri | None = None
        if aliased is not None:
            bare, dest = aliased
            if request.headers.get("Route") is None:
                new_uri = bare
        else:
            dest = uri_destination(hop)
        trusted_dest = self.tlb.member_for_source(dest.host, dest.port) is not None
        if peer is None and not trusted_dest:
            if event is not None:
                self._refuse(event, 403, "Forbidden")
            return
        dest = self.endpoint.destination(dest.transport, dest.host, dest.port, flow=dest.flow)
        if event is None:  # an ACK: forwarded statelessly
            via = self.endpoint.via_for(dest, branch=loop_branch(request) + ".ack")
            self.endpoint.send_stateless(forwarded_request(request, new_uri, via), dest)
            return
        self._proxy(event, [Target(uri=new_uri, dest=dest, trusted=trusted_dest)])

    def _proxy(self, event: RequestIn, targets: list[Target]) -> None:
        # 100 Trying: sent by the INVITE server transaction itself when no
        # provisional response has gone up within 200 ms (§17.2.1), so a
        # quick downstream answer costs no extra message
        call = ProxyCall(self.endpoint, self.platform.reactor, event,
                         timer_c=self.section.timer_c, on_response=self._on_response,
                         on_finished=self._on_finished, on_late=self._on_late)
        self.calls[event.txn] = call
        self.counters["forwarded"] += 1
        call.fork(targets)

    def _shape_response(self, call: ProxyCall, branch: Branch, response: Response) -> Response:
        return self._alias_answer(branch.target, response)

    @staticmethod
    def _alias_answer(target: Target, response: Response) -> Response:
        """A phone's answer that creates or refreshes a dialog gets the NAT
        alias of where it came from."""
        if not target.trusted and response.status < 300 and (
                response.headers.get("Contact") is not None):
            dest = target.dest
            alias_contact(response, Source(dest.transport, dest.host, dest.port, dest.flow))
        return response

    def _finished(self, call: ProxyCall) -> None:
        self.calls.pop(call.txn, None)
