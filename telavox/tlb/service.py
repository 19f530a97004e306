"""The tlb base application: routing answers, OPTIONS health probes, drain,
and the HTTP JSON API.

Owns :class:`TlbService`, the provider of :class:`~telavox.interfaces.ITlb`.
The decisions are made by the sans-IO :class:`~telavox.tlb.routing.Router`
(where users, targets and numbers go) and
:class:`~telavox.tlb.health.HealthTracker` (when a member is up or down);
this module wires them to the clock, the network and the event bus.

Probes.  Every ``probe_interval`` seconds a ``LoopingCall`` sends one OPTIONS
to each SIP server and gateway from tlb's own :class:`SipEndpoint`
(``probe_listen``).  Probes are sent without a client transaction and
matched to their answers by Via branch: an answer must come before the next
round, else the probe counts as failed and a late answer is ignored.  So
there is never more than one probe per member on the wire, and a dead member
costs one datagram per interval instead of a transaction retransmitting for
32 seconds; the loss of a single datagram is what ``down_after`` absorbs.
A member reached over ``tcp``/``tls`` is probed from an extra listener of
that transport on ``probe_listen``'s host (ephemeral port; ``tls`` only when
``[tls]`` is configured, else the member is not probed and stays up).
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Mapping
from typing import Any

import attrs
from twisted.internet import defer, task
from twisted.logger import Logger
from zope.interface import implementer

from telavox.base import BaseApplication, Platform
from telavox.interfaces import ITlb
from telavox.records import Health, MemberEvent, PoolMember
from telavox.sip.message import new_tag
from telavox.sip.transaction import RequestIn, StrayResponse
from telavox.sip.ua import new_request
from telavox.tlb.health import HealthTracker, Transition, probe_ok
from telavox.tlb.http import TlbApi, TlbHttpServer
from telavox.tlb.routing import Router
from telavox.transport.address import ListenAddress
from telavox.transport.endpoint import SipEndpoint
from telavox.transport.interfaces import ISipHandler
from telavox.transport.policy import PeerPolicy

__all__ = ["TlbService"]

USER_AGENT = "telavox-tlb"


@attrs.frozen
class _Probe:
    """One OPTIONS on the wire."""

    name: str
    branch: str
    sent_at: float


@functools.lru_cache(maxsize=4096)
def _normal_host(host: str) -> str:
    """An IP address in its canonical text form (anything else lower-cased)."""
    host = host.strip("[]")
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return host.lower()



@implementer(ITlb, ISipHandler)
class TlbService(BaseApplication):
    """Where users, targets and numbers live; the pool's health and drain."""

    log = Logger()
    restart_keys = ("probe_listen", "http_listen")

    def __init__(self, platform: Platform, section: Any) -> None:
        super().__init__("tlb", platform, section)
        config = platform.config
        self._reactor = platform.reactor
        sipservers = [PoolMember(m.name, m.sip_address) for m in config.sipservers]
        gateways = [PoolMember(g.name, g.sip_address) for g in config.gateways]
        self.router = Router(sipservers, gateways, {g.name: g.prefixes for g in config.gateways},
                             self._pins(section))
        self.tracker = HealthTracker([m.name for m in self.router.pool()],
                                     section.down_after, section.up_after)
        self._addresses: dict[str, ListenAddress] = {}
        for member in self.router.pool():
            if member.address:
                self._addresses[member.name] = ListenAddress.parse(member.address)
        self._by_address: dict[tuple[str, int | None], str] = {}
        for name, a in self._addresses.items():
            self._by_address.setdefault((_normal_host(a.host), a.port), name)
            self._by_address.setdefault((_normal_host(a.host), None), name)
        tls = platform.tls_files()
        listeners = [section.probe_listen]
        for transport in sorted({a.transport for a in self._addresses.values()}):
            if transport != section.probe_listen.transport and (transport != "tls" or tls):
                listeners.append(attrs.evolve(section.probe_listen, transport=transport, port=0,
                                              advertised_port=None))
        transports = {spec.transport for spec in listeners}
        self._targets = {name: a for name, a in self._addresses.items()
                         if a.transport in transports}
        self.unprobed = sorted(m.name for m in self.router.pool() if m.name not in self._targets)
        self.endpoint = SipEndpoint(
            "tlb", listeners, self, platform.reactor, options=platform.endpoint_options(),
            policy=PeerPolicy.only([a.peer for a in self._addresses.values()]),
            tls=tls, network=platform.network)
        self._loop: task.LoopingCall | None = None
        self._inflight: dict[str, _Probe] = {}
        self._branches: dict[str, _Probe] = {}
        self.counters: dict[str, int] = dict.fromkeys((
            "probes_sent", "probes_answered", "probes_failed", "probes_unanswered",
            "late_answers", "send_errors", "locate_user", "locate_target", "locate_number",
            "located_none"), 0)
        self.api = TlbApi(self, self.router, lambda: self.section.token)
        self.http: TlbHttpServer | None = None
        if section.http_listen:
            self.http = TlbHttpServer(self.api, section.http_listen, platform.reactor)
        platform.provide(ITlb, self)

    def _pins(self, section: Any) -> dict[str, str]:
        """``[[users]] sipserver`` pins, overridden by ``[tlb] pins``."""
        pins = {u.extension: u.sipserver for u in self.platform.config.users if u.sipserver}
        pins.update(section.pins)
        return pins

    # -- service -----------------------------------------------------------------

    def startService(self) -> None:
        """Open the probe and HTTP ports (CannotListenError when taken), start probing."""
        if self._targets:  # with nothing to probe, the probe port stays closed
            self.endpoint.start()
        try:
            if self.http is not None:
                self.http.start()
        except Exception:
            self.endpoint.stop()
            raise
        super().startService()
        for name in self.unprobed:
            self.log.warn("tlb: {member} is not probed (no address, or a tls: address without"
                          " [tls] certificates); it counts as up", member=name)
        self._start_loop(self.section.probe_interval)
        self.log.info("tlb: probing {count} members every {interval}s",
                      count=len(self._targets), interval=self.section.probe_interval)

    def stopService(self) -> defer.Deferred[Any]:
        """Stop probing; fires once the probe and HTTP ports are closed."""
        super().stopService()
        self._stop_loop()
        self._inflight.clear()
        self._branches.clear()
        deferreds = [self.endpoint.stop()]
        if self.http is not None:
            deferreds.append(self.http.stop())
        return defer.gatherResults(deferreds, consumeErrors=True).addCallback(lambda _: None)

    def apply(self, section: Any) -> None:
        """Take new thresholds, pins, token and probe interval live."""
        self.tracker.set_thresholds(section.down_after, section.up_after)
        self.router.set_pins(self._pins(section))
        if self.running and section.probe_interval != self.section.probe_interval:
            self._stop_loop()
            self._start_loop(section.probe_interval)

    def _start_loop(self, interval: float) -> None:
        loop = task.LoopingCall(self._probe_round, interval)
        loop.clock = self._reactor
        self._loop = loop
        loop.start(interval, now=True).addErrback(
            lambda f: self.log.failure("tlb: probe loop stopped", f))

    def _stop_loop(self) -> None:
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        self._loop = None

    # -- health and stats ----------------------------------------------------------

    def health(self) -> Health:
        """DOWN when not running or every SIP server is down; DEGRADED when a
        member is down or no SIP server takes calls."""
        if not self.running:
            return Health.down("not running")
        pool = self.router.pool()
        names = set(self.router.sipservers)
        servers = [m for m in pool if m.name in names]
        if not servers:
            return Health.degraded("no SIP servers configured")
        if not any(m.up for m in servers):
            return Health.down("every SIP server is down")
        down = [m.name for m in pool if not m.up]
        if down:
            return Health.degraded(f"down: {', '.join(down)}")
        if not any(m.available for m in servers):
            return Health.degraded("every SIP server is drained")
        return Health.ok()

    def stats(self) -> Mapping[str, float]:
        """Pool gauges, per-member state and probe counters, tlb counters and
        the probe endpoint's counters (``sip_`` prefix)."""
        pool = self.router.pool()
        out: dict[str, float] = dict(self.counters)
        out["members_up"] = sum(m.up for m in pool)
        out["members_down"] = sum(not m.up for m in pool)
        out["members_drained"] = sum(m.drained for m in pool)
        for member in pool:
            state = self.tracker.members[member.name]
            prefix = f"member.{member.name}."
            out[prefix + "up"] = int(member.up)
            out[prefix + "drained"] = int(member.drained)
            out[prefix + "probes"] = state.probes
            out[prefix + "probe_failures"] = state.failed
        out["http_requests"] = self.api.requests
        out["http_errors"] = self.api.errors
        for key, value in self.endpoint.stats().items():
            out["sip_" + key] = value
        return out

    # -- ITlb -------------------------------------------------------------------------

    def locate_user(self, aor: str) -> PoolMember | None:
        """The SIP server hosting ``aor``'s calls, or None."""
        self.counters["locate_user"] += 1
        return self._counted(self.router.locate(aor))

    def locate_target(self, name: str) -> PoolMember | None:
        """The SIP server hosting dial-plan target ``name``, or None."""
        self.counters["locate_target"] += 1
        return self._counted(self.router.locate(name))

    def _counted(self, member: PoolMember | None) -> PoolMember | None:
        if member is None:
            self.counters["located_none"] += 1
        return member

    def locate_number(self, number: str) -> list[PoolMember]:
        """The available gateways for ``number``, in failover order."""
        self.counters["locate_number"] += 1
        gateways = self.router.locate_number(number)
        if not gateways:
            self.counters["located_none"] += 1
        return gateways

    def pool(self) -> list[PoolMember]:
        """Every SIP server, then every gateway, with its state."""
        return self.router.pool()

    def member_for_source(self, host: str, port: int | None) -> PoolMember | None:
        """The member or gateway whose configured address is ``host:port``;
        with ``port`` None (a TCP/TLS peer, whose source port is ephemeral)
        the first one, in pool order, on ``host``."""
        name = self._by_address.get((_normal_host(host), port))
        return None if name is None else self.router.member(name)

    def drain(self, name: str, drained: bool = True) -> bool:
        """Stop (or resume) new calls to ``name``; False when unknown."""
        if self.router.member(name) is None:
            return False
        if self.router.set_drained(name, drained):
            what = "drained" if drained else "undrained"
            self.log.info("tlb: {member} {what}", member=name, what=what)
            self._publish(name, what, "")
        return True

    def _publish(self, name: str, what: str, reason: str) -> None:
        self.platform.bus.publish(MemberEvent(name=name, what=what, reason=reason,
                                              timestamp=self._reactor.seconds()))

    # -- probes ---------------------------------------------------------------------

    def _probe_round(self, interval: float) -> None:
        """Judge the unanswered probes of the last round, send the next ones."""
        for name, address in self._targets.items():
            probe = self._inflight.pop(name, None)
            if probe is not None:
                self._branches.pop(probe.branch, None)
                self.counters["probes_unanswered"] += 1
                self._outcome(name, None, f"no answer within {interval:g}s")
            self._send_probe(name, address)

    def _send_probe(self, name: str, address: ListenAddress) -> None:
        endpoint = self.endpoint
        try:
            dest = endpoint.destination(address.transport, address.host, address.port)
            via = endpoint.via_for(dest)
            target = f"sip:{address.peer}"
            request = new_request("OPTIONS", target, from_=f"<sip:tlb@{via.host}>",
                                  to=f"<{target}>", via=via, user_agent=USER_AGENT,
                                  extra=(("Accept", "application/sdp"),))
            probe = _Probe(name, via.branch or "", self._reactor.seconds())
            self._inflight[name] = probe
            self._branches[probe.branch] = probe
            endpoint.send_stateless(request, dest)
        except Exception:
            self.counters["send_errors"] += 1
            self.log.failure("tlb: could not probe {member}", member=name)
            return
        self.counters["probes_sent"] += 1

    def _outcome(self, name: str, status: int | None, reason: str) -> None:
        if not probe_ok(status):
            self.counters["probes_failed"] += 1
        transition = self.tracker.record(name, status, self._reactor.seconds(), reason)
        if transition is not None:
            self._transition(transition)

    def _transition(self, transition: Transition) -> None:
        name = transition.name
        self.router.set_up(name, transition.up)
        member = self.router.member(name)
        address = member.address if member is not None else ""
        if transition.up:
            self.log.info("tlb: {member} ({address}) is up: {reason}", member=name,
                          address=address, reason=transition.reason)
        else:
            self.log.warn("tlb: {member} ({address}) is down: {reason}", member=name,
                          address=address, reason=transition.reason)
        self._publish(name, "up" if transition.up else "down", transition.reason)

    # -- ISipHandler ----------------------------------------------------------------

    def handle_request(self, endpoint: SipEndpoint, event: RequestIn) -> None:
        """tlb serves no SIP: OPTIONS gets 200 (a peer checking on us), the
        rest 405."""
        if event.request.method == "OPTIONS":
            endpoint.reply(event, 200, to_tag=new_tag(), extra=(("Allow", "OPTIONS"),))
        else:
            endpoint.reply(event, 405, to_tag=new_tag(), extra=(("Allow", "OPTIONS"),))

    def handle_stray_response(self, endpoint: SipEndpoint, event: StrayResponse) -> None:
        """The answer to a probe (probes have no client transaction)."""
        response = event.response
        if response.status < 200:
            return
        try:
            branch = response.top_via.branch or ""
        except ValueError:
            return
        probe = self._branches.pop(branch, None)
        if probe is None or self._inflight.get(probe.name) is not probe:
            self.counters["late_answers"] += 1
            return
        del self._inflight[probe.name]
        self.counters["probes_answered"] += 1
        self._outcome(probe.name, response.status, response.reason)

    def handle_ack(self, endpoint: SipEndpoint, event: object) -> None:
        """ACKs need nothing."""

    def handle_server_failure(self, endpoint: SipEndpoint, event: object) -> None:
        """Nothing to clean up for the requests answered here."""
