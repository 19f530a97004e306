"""A gateway hosted in this process: the platform's edge toward carriers.

Owns :class:`GatewayService`, one base application per ``[[gateways]]``
entry with a ``listen`` address.  It has two SIP endpoints:

* the platform side (``listen``), accepting only the SIP servers and tlb's
  prober (not sipproxy: a phone's call reaches a carrier only through a SIP
  server's dial plan and class of service): outbound calls arrive here;
* the carrier side (``carrier_listen``), accepting only the carriers'
  addresses (each trunk's resolved targets and its ``allow`` networks;
  anyone else gets 403 and a log line): inbound calls arrive here.

Outbound, the E.164 number of the Request-URI is written in each trunk's
format and the trunks are tried in order (those up first), each across its
resolved targets (:mod:`telavox.gateway.call` says when an attempt fails
over).  The caller is presented with the user's ``external_number`` in From
and P-Asserted-Identity (RFC 3325), with ``Privacy: id`` (RFC 3323) when
the user withholds it.  Inbound, the called number is turned back into
E.164, looked up in ``[[dids]]`` (404 when unknown), and the call goes to
the target's home SIP server as tlb names it.

Trunks are kept alive with OPTIONS, registered where configured
(:mod:`telavox.gateway.registration`), resolved per RFC 3263
(:mod:`telavox.gateway.resolver`) at start and every
:data:`RESOLVE_INTERVAL` seconds; their up/down changes are logged and
published as :class:`~telavox.records.TrunkEvent`.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Callable, Mapping
from typing import Any

from twisted.internet import defer, task
from twisted.logger import Logger
from zope.interface import implementer

from telavox.b2bua.endpoint import EndpointLegHost, LegHandlers, LegTable, SafeCall
from telavox.b2bua.leg import IncomingLeg, Leg
from telavox.base import BaseApplication, Platform
from telavox.config.model import GatewayConfig, UserConfig, trunk_transport
from telavox.gateway.call import ALLOW, Attempt, GatewayCall
from telavox.gateway.registration import RegistrationState, TrunkRegistration
from telavox.gateway.resolver import Resolver, Target, make_dns_resolver, plan_lookup
from telavox.gateway.trunk import Trunk
from telavox.interfaces import ITlb
from telavox.records import Health, TrunkEvent
from telavox.sip.hdrtypes import HeaderError, NameAddr
from telavox.sip.message import Request
from telavox.sip.transaction import (
    Action,
    Destination,
    RequestIn,
    client_response,
)
from telavox.sip.ua import new_request
from telavox.sip.uri import SipUri
from telavox.transport.address import ListenAddress
from telavox.transport.endpoint import SipEndpoint
from telavox.transport.interfaces import ISipHandler
from telavox.transport.policy import PeerPolicy, parse_peer

__all__ = ["RESOLVE_INTERVAL", "GatewayService"]

RESOLVE_INTERVAL = 300.0
"""Seconds between RFC 3263 resolutions of the trunks' addresses."""



class _Registrar:
    """What a trunk registration needs: the carrier-side leg host and a clock."""

    def __init__(self, legs: EndpointLegHost) -> None:
        self.legs = legs

    def send_request(self, request: Request, dest: Destination,
                     on_event: Callable[[Action], None]) -> Any:
        return self.legs.send_request(request, dest, on_event)

    def via_for(self, dest: Destination) -> Any:
        return self.legs.via_for(dest)

    def call_later(self, delay: float, fn: Callable[[], object]) -> Any:
        return SafeCall(self.legs.call_later(delay, fn))

    def now(self) -> float:
        return float(self.legs.reactor.seconds())


@implementer(ISipHandler)
class GatewayService(LegHandlers, BaseApplication):
    """One hosted gateway (see the module docstring)."""

    log = Logger()
    restart_keys = ("listen", "carrier_listen", "trunks")

    def __init__(self, platform: Platform, section: GatewayConfig,
                 resolver: Resolver | None = None) -> None:
        super().__init__(section.name, platform, section)
        config = platform.config
        self.reactor = platform.reactor
        self.domain = config.platform.domain
        self.user_agent = section.user_agent
        self.tlb: ITlb = platform.require(ITlb)
        self.listen = ListenAddress.parse(section.listen)
        self.carrier_listens = section.carrier_listen
        """The carrier side's addresses, one per transport its trunks speak."""
        peers = [ListenAddress.parse(m.sip_address).peer for m in config.sipservers
                 if m.sip_address]
        # not sipproxy: phones' requests reach a gateway only through a SIP
        # server, which applies the dial plan and the class of service
        peers.append(config.tlb.probe_listen.peer)
        options = platform.endpoint_options()
        self.inside = SipEndpoint(
            section.name, [self.listen], self, platform.reactor, options=options,
            policy=PeerPolicy.only(peers), tls=platform.tls_files(), network=platform.network)
        self.outside = SipEndpoint(
            f"{section.name}-carrier", list(self.carrier_listens), self, platform.reactor,
            options=options, policy=PeerPolicy.from_networks(()), tls=platform.tls_files())
        self.inside_legs = EndpointLegHost(self.inside, platform.reactor,
                                           self.listen.transport)
        self.outside_legs = EndpointLegHost(self.outside, platform.reactor,
                                            self.carrier_listens[0].transport)
        self.table = LegTable(platform.reactor.callLater, options.timers.timeout)
        self._resolver = resolver
        self._dns_servers = _dns_servers(config.platform.dns_servers)
        self.trunks = [Trunk(section.name, t, config.platform, self._trunk_changed)
                       for t in section.trunks]
        self.users: Mapping[str, UserConfig] = {u.extension: u for u in config.users}
        self.dids: Mapping[str, str] = {d.number: d.target for d in config.dids}
        self.calls: dict[str, GatewayCall] = {}
        self.registrations: dict[str, TrunkRegistration] = {}
        self._loops: list[task.LoopingCall] = []
        self._rng = random.Random()
        self.counters: dict[str, int] = dict.fromkeys((
            "outbound", "inbound", "answered", "failed", "refused", "unknown_did"), 0)

    # -- service ----------------------------------------------------------------------------

    def startService(self) -> None:
        """Open both SIP ports, resolve the trunks, start keep-alives and
        registrations."""
        self.inside.start()
        try:
            self.outside.start()
        except Exception:
            self.inside.stop()
            raise
        super().startService()
        self.log.info("{gateway}: gateway listening on {inside} (platform) and {outside} "
                      "(carriers), {count} trunk(s)", gateway=self.name,
                      inside=str(self.listen),
                      outside=", ".join(map(str, self.carrier_listens)),
                      count=len(self.trunks))
        self._every(RESOLVE_INTERVAL, self._resolve_all)
        for trunk in self.trunks:
            if trunk.config.options_interval:
                self._every(trunk.config.options_interval, self._keepalive, trunk, now=False)

    def _every(self, interval: float, fn: Callable[..., object], *args: Any,
               now: bool = True) -> None:
        loop = task.LoopingCall(fn, *args)
        loop.clock = self.reactor
        loop.start(interval, now=now).addErrback(
            lambda f: self.log.failure("{gateway}: periodic task failed", f,
                                       gateway=self.name))
        self._loops.append(loop)

    def stopService(self) -> defer.Deferred[Any]:
        """End every call, unregister the trunks, close both ports."""
        super().stopService()
        for loop in self._loops:
            if loop.running:
                loop.stop()
        self._loops.clear()
        for call in list(self.calls.values()):
            call.hangup("shutdown")
        for registration in self.registrations.values():
            registration.stop()
        deferreds = [self.inside.stop(), self.outside.stop()]
        return defer.gatherResults(deferreds, consumeErrors=True).addCallback(lambda _: None)

    def config_changed(self, config: Any) -> None:
        """Users (caller IDs) and DIDs apply to new calls."""
        self.users = {u.extension: u for u in config.users}
        self.dids = {d.number: d.target for d in config.dids}

    def health(self) -> Health:
        if not self.running:
            return Health.down("not running")
        down = [t for t in self.trunks if not t.up]
        if len(down) == len(self.trunks):
            return Health.down("; ".join(f"{t.name}: {t.reason}" for t in down))
        if down:
            return Health.degraded("; ".join(f"{t.name}: {t.reason}" for t in down))
        return Health.ok()

    def stats(self) -> Mapping[str, float]:
        out: dict[str, float] = dict(self.counters)
        out["active_calls"] = len(self.calls)
        out["legs"] = len(self.table)
        out["trunks_up"] = sum(1 for t in self.trunks if t.up)
        out["trunk_calls"] = sum(t.active for t in self.trunks)
        out["trunk_full"] = sum(t.counters["full"] for t in self.trunks)
        return out

    # -- trunks -----------------------------------------------------------------------------

    @property
    def resolver(self) -> Resolver:
        """The RFC 3263 resolver, made on first use: a gateway whose trunks
        are all IP addresses never opens a DNS client."""
        if self._resolver is None:
            self._resolver = Resolver(make_dns_resolver(self._dns_servers, self.reactor))
        return self._resolver

    def _resolve_all(self) -> defer.Deferred[None]:
        deferreds = [self._resolve(t).addCallback(self._resolved, t) for t in self.trunks]
        return defer.gatherResults(deferreds, consumeErrors=True).addCallback(lambda _: None)

    def _resolve(self, trunk: Trunk) -> defer.Deferred[list[Target]]:
        plan = plan_lookup(trunk.uri)
        if plan.targets or plan.problem:
            return defer.succeed(list(plan.targets))
        return self.resolver.resolve(trunk.uri)

    def _resolved(self, targets: list[Target], trunk: Trunk) -> None:
        first = not trunk.resolved
        trunk.set_targets(targets)
        self._update_policy()
        if not targets:
            self.log.warn("{gateway}: trunk {trunk}: {address} did not resolve",
                          gateway=self.name, trunk=trunk.name, address=trunk.config.address)
        elif first:
            self.log.info("{gateway}: trunk {trunk} at {targets}", gateway=self.name,
                          trunk=trunk.name, targets=", ".join(str(t) for t in targets))
        if first and trunk.config.register and targets:
            self._register(trunk)

    def _update_policy(self) -> None:
        networks = tuple(n for t in self.trunks for n in t.sources.networks)
        self.outside.policy = PeerPolicy(False, frozenset(), networks)

    def _destination(self, target: Target) -> Destination:
        return self.outside.destination(target.transport, target.host, target.port)

    def _register(self, trunk: Trunk) -> None:
        config = trunk.config

        def dest() -> Destination | None:
            return self._destination(trunk.targets[0]) if trunk.targets else None

        def changed(state: RegistrationState) -> None:
            trunk.registration(state.registered, state.reason)

        registration = TrunkRegistration(
            _Registrar(self.outside_legs),
            aor=SipUri(user=config.username, host=trunk.domain),
            registrar=SipUri(host=trunk.uri.host, port=trunk.uri.port),
            dest=dest, contact=NameAddr(uri=self._outside_contact(
                config.username, self._trunk_transport(trunk))),
            username=config.username, password=config.password, realm=config.realm,
            expires=config.register_expires, on_change=changed, user_agent=self.user_agent)
        self.registrations[trunk.name] = registration
        registration.start()

    def _keepalive(self, trunk: Trunk) -> None:
        if not trunk.targets:
            return
        if trunk.probe_pending:
            trunk.keepalive(None, self.reactor.seconds(),
                            f"no answer to OPTIONS within {trunk.config.options_interval:g} s")
        trunk.probe_pending = True
        dest = self._destination(trunk.targets[0])
        target = SipUri(host=trunk.uri.host, port=trunk.uri.port)
        via = self.outside.via_for(dest)
        keepalive = NameAddr(uri=SipUri(user="keepalive", host=self._outside_host(dest.transport)))
        request = new_request("OPTIONS", target, from_=keepalive, to=NameAddr(uri=target),
                              via=via, user_agent=self.user_agent,
                              extra=(("Accept", "application/sdp"),))

        def on_event(event: Action) -> None:
            response = client_response(request, event)
            if response is None or response.status < 200 or not trunk.probe_pending:
                return
            trunk.probe_pending = False
            trunk.keepalive(response.status, self.reactor.seconds(), response.reason)

        self.outside.send_request(request, dest, on_event)

    def _trunk_changed(self, trunk: Trunk) -> None:
        if not self.running:
            return  # unregistering at shutdown is not news
        what = "up" if trunk.up else "down"
        if trunk.up:
            self.log.info("{gateway}: trunk {trunk} is up: {reason}", gateway=self.name,
                          trunk=trunk.name, reason=trunk.reason)
        else:
            self.log.warn("{gateway}: trunk {trunk} is down: {reason}", gateway=self.name,
                          trunk=trunk.name, reason=trunk.reason)
        self.platform.bus.publish(TrunkEvent(gateway=self.name, trunk=trunk.name, what=what,
                                             reason=trunk.reason))

    def _carrier_side(self, transport: str) -> ListenAddress:
        """The carrier-side address of ``transport`` (the first one for ""
        or when the gateway has none of that transport: sending then fails
        as a transport error, and the attempt fails over)."""
        return next((a for a in self.carrier_listens if a.transport == transport),
                    self.carrier_listens[0])

    def _outside_host(self, transport: str) -> str:
        return self._carrier_side(transport).via_host

    def _outside_contact(self, user: str | None = None, transport: str = "") -> SipUri:
        return self.outside.contact_uri(self._carrier_side(transport).transport, user=user)

    @staticmethod
    def _trunk_transport(trunk: Trunk) -> str:
        """The transport toward ``trunk``: its first resolved target's, else
        what its address names, else UDP."""
        if trunk.targets:
            return trunk.targets[0].transport
        return trunk_transport(trunk.config) or "udp"

    # -- GatewayCallHost --------------------------------------------------------------------

    def register_leg(self, leg: Leg) -> None:
        self.table.register(leg)

    def unregister_leg(self, leg: Leg) -> None:
        self.table.unregister(leg)

    def attempt_result(self, call: GatewayCall, attempt: Attempt, status: int,
                       reason: str) -> None:
        trunk = self._trunk_named(attempt.trunk)
        if trunk is None:
            return
        if status == 0:
            trunk.counters["answered"] += 1
        elif status in (401, 407):
            trunk.counters["failed_over"] += 1
            self.log.warn("{gateway}: trunk {trunk} refused our credentials ({status}): "
                          "check its username and password", gateway=self.name,
                          trunk=trunk.name, status=status)
        elif status == 408 or status >= 500 or 300 <= status < 400:
            trunk.counters["failed_over"] += 1
        else:
            trunk.counters["rejected"] += 1

    def call_ended(self, call: GatewayCall) -> None:
        self.calls.pop(call.call_id, None)
        self.counters["answered" if call.answer_time else "failed"] += 1
        if self.platform.logs("info"):
            self.log.info("{gateway}: {direction} call {caller} → {callee} ended: {reason}",
                          gateway=self.name, direction=call.direction, caller=call.caller,
                          callee=call.callee, reason=call.end_reason)

    def call_later(self, delay: float, fn: Callable[[], object]) -> Any:
        return self.reactor.callLater(delay, fn)

    def claim_trunk(self, name: str) -> bool:
        trunk = self._trunk_named(name)
        return trunk is None or trunk.claim()

    def release_trunk(self, name: str) -> None:
        trunk = self._trunk_named(name)
        if trunk is not None:
            trunk.release()

    def _trunk_named(self, name: str) -> Trunk | None:
        return next((t for t in self.trunks if t.name == name), None)

    # -- ISipHandler -------------------------------------------------------------------------

    def handle_request(self, endpoint: SipEndpoint, event: RequestIn) -> None:
        """Requests from the platform or a carrier."""
        invite = self._outbound if endpoint is self.inside else self._inbound
        self.table.dispatch(endpoint, event, invite, ALLOW)


    # -- calls ------------------------------------------------------------------------------

    def _incoming_leg(self, event: RequestIn, legs: EndpointLegHost,
                      contact: SipUri) -> IncomingLeg | None:
        request = event.request
        leg = LegTable.incoming(legs, legs.endpoint, event, NameAddr(uri=contact))
        if leg is None:
            self.counters["refused"] += 1
            return None
        if request.call_id in self.calls:
            self.counters["refused"] += 1
            leg.reject(482, "Loop Detected")
            return None
        requires = request.headers.get("Require")
        if requires:
            leg.reject(420, "Bad Extension", extra=(("Unsupported", requires),))
            self.counters["refused"] += 1
            return None
        return leg

    def _outbound(self, event: RequestIn) -> None:
        """An INVITE from a SIP server toward a number outside."""
        request = event.request
        self.counters["outbound"] += 1
        leg = self._incoming_leg(event, self.inside_legs, self.inside.contact_uri(
            self.listen.transport))
        if leg is None:
            return
        uri = request.uri
        number = uri.user if isinstance(uri, SipUri) and uri.user else ""
        caller, withheld, display = self._caller_id(request)
        attempts: list[Attempt] = []
        ordered = [t for t in self.trunks if t.up] + [t for t in self.trunks if not t.up]
        for trunk in ordered:
            called = trunk.to_carrier(number)
            presented = trunk.to_carrier(caller) if caller else ""
            domain = trunk.domain
            if withheld or not presented:
                from_ = NameAddr(uri=SipUri(user="anonymous", host="anonymous.invalid"),
                                 display_name="Anonymous")
            else:
                from_ = NameAddr(uri=SipUri(user=presented, host=domain),
                                 display_name=display or None)
            extra: list[tuple[str, str]] = []
            if presented:
                extra.append(("P-Asserted-Identity", f"<sip:{presented}@{domain}>"))
            if withheld:
                extra.append(("Privacy", "id"))
            for target in trunk.targets:
                attempts.append(Attempt(
                    dest=self._destination(target),
                    uri=SipUri(user=called, host=trunk.uri.host, port=trunk.uri.port),
                    from_=from_, to=NameAddr(uri=SipUri(user=called, host=domain)),
                    extra=tuple(extra), trunk=trunk.name,
                    invite_timeout=trunk.config.invite_timeout,
                    authenticate=trunk.authenticate,
                    contact=NameAddr(uri=self._outside_contact(transport=target.transport))))
            trunk.counters["calls"] += 1 if trunk.targets else 0
        call = GatewayCall(self, leg, attempts, self.outside_legs,
                           NameAddr(uri=self._outside_contact()), direction="outbound",
                           caller=caller or "anonymous", callee=number)
        self.calls[call.call_id] = call
        call.start()

    def _caller_id(self, request: Request) -> tuple[str, bool, str]:
        """(E.164 caller ID or "", withheld, display name) of an outbound call."""
        identity = request.headers.get("P-Asserted-Identity") or request.headers.get("From")
        withheld = "id" in (request.headers.get("Privacy") or "").lower()
        user = ""
        display = ""
        if identity:
            try:
                name_addr = NameAddr.parse(identity.split(",")[0])
            except HeaderError:
                name_addr = None
            if name_addr is not None and isinstance(name_addr.uri, SipUri):
                user = name_addr.uri.user or ""
                display = name_addr.display_name or ""
        known = self.users.get(user)
        if known is not None:
            withheld = withheld or known.caller_id_withheld
            return known.external_number, withheld, known.name
        if user.startswith("+") and user[1:].isdigit():
            return user, withheld, display  # an outside caller, forwarded
        return "", withheld, ""

    def _inbound(self, event: RequestIn) -> None:
        """An INVITE from a carrier toward one of our numbers."""
        request = event.request
        self.counters["inbound"] += 1
        trunk = self._trunk_of(event.source.host)
        leg = self._incoming_leg(event, self.outside_legs,
                                 self._outside_contact(transport=event.source.transport))
        if leg is None:
            return
        uri = request.uri
        dialled = uri.user if isinstance(uri, SipUri) and uri.user else ""
        if not dialled:
            to_uri = request.to.uri
            dialled = to_uri.user if isinstance(to_uri, SipUri) and to_uri.user else ""
        number = trunk.from_carrier(dialled) if trunk is not None else None
        target = self.dids.get(number or "")
        if target is None:
            self.counters["unknown_did"] += 1
            self.log.info("{gateway}: inbound call to unknown number {dialled} from "
                          "{source}", gateway=self.name, dialled=dialled,
                          source=str(event.source))
            leg.reject(404, "Not Found (no such number)")
            return
        caller, display, privacy = self._inbound_caller(request, trunk)
        member = self.tlb.locate_target(target)
        attempts = []
        if member is not None and member.address:
            a = ListenAddress.parse(member.address)
            dest = self.inside.destination(a.transport, a.host, a.port)
            callee = SipUri(user=target, host=self.domain)
            extra = [("P-Asserted-Identity", f"<sip:{caller}@{self.domain}>")]
            if privacy:
                extra.append(("Privacy", privacy))
            attempts.append(Attempt(
                dest=dest, uri=callee,
                from_=NameAddr(uri=SipUri(user=caller, host=self.domain),
                               display_name=display or None),
                to=NameAddr(uri=callee), extra=tuple(extra)))
        contact = NameAddr(uri=self.inside.contact_uri(self.listen.transport))
        if trunk is not None and not trunk.claim():  # the call releases it when it ends
            self.counters["refused"] += 1
            self.log.info("{gateway}: trunk {trunk} is at its call limit ({limit}): "
                          "inbound call to {number} refused", gateway=self.name,
                          trunk=trunk.name, limit=trunk.config.max_calls, number=number)
            leg.reject(503, "Service Unavailable (trunk at its call limit)",
                       extra=(("Retry-After", "5"),))
            return
        call = GatewayCall(self, leg, attempts, self.inside_legs, contact,
                           direction="inbound", caller=caller, callee=f"{number} → {target}",
                           trunk=trunk.name if trunk is not None else "")
        self.calls[call.call_id] = call
        call.start()

    def _trunk_of(self, host: str) -> Trunk | None:
        """The first trunk whose carrier sends from ``host`` (the policy let
        only such hosts through)."""
        return next((t for t in self.trunks if t.sends_from(host)), None)

    @staticmethod
    def _inbound_caller(request: Request, trunk: Trunk | None) -> tuple[str, str, str]:
        """(E.164 caller or "anonymous", display name, Privacy) of an inbound call."""
        privacy = request.headers.get("Privacy") or ""
        identity = request.headers.get("P-Asserted-Identity")
        name_addr = request.from_
        if identity:
            with contextlib.suppress(HeaderError):
                name_addr = NameAddr.parse(identity.split(",")[0])
        uri = name_addr.uri
        user = uri.user if isinstance(uri, SipUri) and uri.user else ""
        number = trunk.from_carrier(user) if trunk is not None and user else None
        display = request.from_.display_name or ""
        if display.lower() == "anonymous":
            display = ""
        return number or "anonymous", display, privacy


def _dns_servers(servers: tuple[str, ...]) -> list[tuple[str, int]] | None:
    """``host``, ``host:port`` or ``[v6]:port`` entries (checked by the
    configuration) as (address, port), port 53 by default."""
    out = []
    for server in servers:
        host, port = parse_peer(server)
        out.append((host, port or 53))
    return out or None
