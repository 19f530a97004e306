"""RFC 3263 server location against a real DNS server on loopback: a
twisted.names server with in-memory zones (NAPTR → SRV → A/AAAA, SRV only,
A only, a missing name, a "." SRV, a failing zone) queried over UDP by
:class:`telavox.gateway.resolver.Resolver` through
:func:`~telavox.gateway.resolver.make_dns_resolver`."""

from __future__ import annotations

import random
from typing import Any

import pytest
from twisted.internet import defer, reactor, task
from twisted.internet.error import CannotListenError
from twisted.internet.protocol import DatagramProtocol
from twisted.logger import Logger
from twisted.names import authority, dns, server
from twisted.trial import unittest

from telavox.gateway.resolver import Resolver, make_dns_resolver
from telavox.sip.uri import SipUri

pytestmark = pytest.mark.integration

Zone = tuple[str, list[tuple[str, Any]]]

ZONES: list[Zone] = [
    ("carrier.test", [
        # usable: order 10, by preference tcp, udp; ignored: order 20, a "u" flag, E2U
        ("carrier.test", dns.Record_NAPTR(10, 20, b"s", b"SIP+D2U", b"",
                                          b"_sip._udp.carrier.test")),
        ("carrier.test", dns.Record_NAPTR(10, 10, b"s", b"SIP+D2T", b"",
                                          b"_sip._tcp.carrier.test")),
        ("carrier.test", dns.Record_NAPTR(10, 5, b"u", b"E2U+sip", b"!^.*$!sip:x@y!", b"")),
        ("carrier.test", dns.Record_NAPTR(20, 1, b"s", b"SIPS+D2T", b"",
                                          b"_sips._tcp.carrier.test")),
        ("carrier.test", dns.Record_A("127.0.0.99")),
        ("_sip._tcp.carrier.test", dns.Record_SRV(20, 0, 5072, b"pbx2.carrier.test")),
        ("_sip._tcp.carrier.test", dns.Record_SRV(10, 0, 5070, b"pbx1.carrier.test")),
        ("_sip._udp.carrier.test", dns.Record_SRV(10, 0, 5060, b"pbx1.carrier.test")),
        ("_sips._tcp.carrier.test", dns.Record_SRV(10, 0, 5061, b"pbx1.carrier.test")),
        ("pbx1.carrier.test", dns.Record_A("127.0.0.2")),
        ("pbx1.carrier.test", dns.Record_A("127.0.0.3")),
        ("pbx1.carrier.test", dns.Record_AAAA("::1")),
        ("pbx2.carrier.test", dns.Record_A("127.0.0.4")),
    ]),
    ("srvonly.test", [
        ("_sip._udp.srvonly.test", dns.Record_SRV(20, 0, 5082, b"sip2.srvonly.test")),
        ("_sip._udp.srvonly.test", dns.Record_SRV(10, 0, 5080, b"sip1.srvonly.test")),
        ("_sip._tcp.srvonly.test", dns.Record_SRV(10, 0, 5081, b"sip1.srvonly.test")),
        ("sip1.srvonly.test", dns.Record_A("127.0.0.5")),
        ("sip2.srvonly.test", dns.Record_A("127.0.0.6")),
    ]),
    ("aonly.test", [("aonly.test", dns.Record_A("127.0.0.7"))]),
    ("closed.test", [
        ("_sip._udp.closed.test", dns.Record_SRV(0, 0, 0, b".")),
        ("closed.test", dns.Record_A("127.0.0.8")),
    ]),
]


class ZoneAuthority(authority.FileAuthority):
    """An authority for one zone given in memory as (origin, [(name, record)])."""

    def loadFile(self, zone: Zone) -> None:
        origin, records = zone
        self.soa = (origin.encode(), dns.Record_SOA(mname=f"ns.{origin}", rname=f"admin.{origin}",
                                                    serial=1, refresh=60, retry=60, expire=60,
                                                    minimum=60))
        self.records = {}
        for name, record in [(origin, self.soa[1]), *records]:
            self.records.setdefault(name.lower().encode(), []).append(record)


class BrokenAuthority(authority.FileAuthority):
    """An authority for broken.test whose every lookup fails inside the
    server, which then answers SERVFAIL."""

    def loadFile(self, zone: Zone) -> None:
        self.soa = (b"broken.test", dns.Record_SOA())
        self.records = {}

    def _lookup(self, name: bytes, cls: int, type: int, timeout: Any = None) -> Any:
        if dns._isSubdomainOf(name, b"broken.test"):
            return defer.fail(ZoneBrokenError(name))
        return defer.fail(dns.DomainError(name))


class ZoneBrokenError(Exception):
    """The failure BrokenAuthority raises (logged by the DNS server)."""


class ResolverDnsTests(unittest.TestCase):
    """Resolver against a twisted.names server on 127.0.0.1."""

    def setUp(self) -> None:
        # runs last: lets the client's closed query sockets finish their turn
        self.addCleanup(task.deferLater, reactor, 0, lambda: None)
        authorities = [ZoneAuthority(zone) for zone in ZONES] + [BrokenAuthority(("", []))]
        factory = server.DNSServerFactory(authorities=authorities)
        udp = reactor.listenUDP(0, dns.DNSDatagramProtocol(factory), interface="127.0.0.1")
        self.addCleanup(udp.stopListening)
        self.port = udp.getHost().port
        try:  # TCP on the same port for truncated answers (none expected here)
            tcp = reactor.listenTCP(self.port, factory, interface="127.0.0.1")
        except CannotListenError:
            pass
        else:
            self.addCleanup(tcp.stopListening)
        self.dns = make_dns_resolver([("127.0.0.1", self.port)], reactor)
        self.addCleanup(self.close_client_connections)
        self.events: list[dict[str, Any]] = []

    def close_client_connections(self) -> None:
        """Drop any TCP connection the DNS client kept (after truncation)."""
        for resolver in self.dns.resolvers:  # type: ignore[attr-defined]
            for protocol in getattr(resolver, "connections", []):
                protocol.transport.loseConnection()

    def resolver(self, **kw: Any) -> Resolver:
        """A Resolver on the test server, logging into self.events."""
        resolver = Resolver(self.dns, rng=random.Random(3), **kw)
        resolver.log = Logger(namespace="test", observer=self.events.append)
        return resolver

    async def resolve(self, uri: str, **kw: Any) -> list[str]:
        """The targets for ``uri`` as text."""
        return [str(t) for t in await self.resolver(**kw).resolve(SipUri.parse(uri))]

    def logged(self) -> str:
        """Everything logged, formatted, one event a line."""
        from twisted.logger import formatEvent
        return "\n".join(formatEvent(e) for e in self.events)

    @defer.inlineCallbacks
    def test_naptr_srv_a_aaaa(self) -> Any:
        """NAPTR picks TCP then UDP (order 10 by preference; the order 20
        SIPS record is not considered); each SRV is in priority order and each
        host expands to its A then AAAA addresses."""
        targets = yield defer.Deferred.fromCoroutine(self.resolve("sip:+4681234@carrier.test"))
        self.assertEqual(targets, [
            "tcp:127.0.0.2:5070", "tcp:127.0.0.3:5070", "tcp:[::1]:5070",
            "tcp:127.0.0.4:5072",
            "udp:127.0.0.2:5060", "udp:127.0.0.3:5060", "udp:[::1]:5060",
        ])

    @defer.inlineCallbacks
    def test_sips_uses_only_sips_naptr(self) -> Any:
        """A sips: URI keeps only SIPS+D2T, even at a higher order."""
        targets = yield defer.Deferred.fromCoroutine(self.resolve("sips:carrier.test"))
        self.assertEqual(targets, ["tls:127.0.0.2:5061", "tls:127.0.0.3:5061",
                                   "tls:[::1]:5061"])

    @defer.inlineCallbacks
    def test_supported_transports_filter_naptr(self) -> Any:
        """With only UDP supported the TCP NAPTR is skipped."""
        targets = yield defer.Deferred.fromCoroutine(
            self.resolve("sip:carrier.test", supported=("udp",)))
        self.assertEqual(targets, ["udp:127.0.0.2:5060", "udp:127.0.0.3:5060",
                                   "udp:[::1]:5060"])

    @defer.inlineCallbacks
    def test_srv_without_naptr(self) -> Any:
        """No NAPTR: SRV for UDP then TCP, each in priority order."""
        targets = yield defer.Deferred.fromCoroutine(self.resolve("sip:srvonly.test"))
        self.assertEqual(targets, ["udp:127.0.0.5:5080", "udp:127.0.0.6:5082",
                                   "tcp:127.0.0.5:5081"])

    @defer.inlineCallbacks
    def test_transport_parameter_selects_srv(self) -> Any:
        """transport=tcp asks only _sip._tcp."""
        targets = yield defer.Deferred.fromCoroutine(
            self.resolve("sip:srvonly.test;transport=tcp"))
        self.assertEqual(targets, ["tcp:127.0.0.5:5081"])

    @defer.inlineCallbacks
    def test_a_only(self) -> Any:
        """No NAPTR or SRV: the A record on 5060 over UDP, or the transport
        asked for on its default port."""
        self.assertEqual((yield defer.Deferred.fromCoroutine(self.resolve("sip:aonly.test"))),
                         ["udp:127.0.0.7:5060"])
        self.assertEqual(
            (yield defer.Deferred.fromCoroutine(self.resolve("sip:aonly.test;transport=tcp"))),
            ["tcp:127.0.0.7:5060"])
        self.assertEqual((yield defer.Deferred.fromCoroutine(self.resolve("sips:aonly.test"))),
                         ["tls:127.0.0.7:5061"])

    @defer.inlineCallbacks
    def test_port_skips_naptr_and_srv(self) -> Any:
        """A port in the URI: the name's own A record, though it has NAPTR
        and SRV records."""
        targets = yield defer.Deferred.fromCoroutine(self.resolve("sip:carrier.test:5099"))
        self.assertEqual(targets, ["udp:127.0.0.99:5099"])

    @defer.inlineCallbacks
    def test_dot_srv_means_no_service(self) -> Any:
        """An SRV "." target: no targets, the A record notwithstanding."""
        targets = yield defer.Deferred.fromCoroutine(
            self.resolve("sip:closed.test;transport=udp"))
        self.assertEqual(targets, [])

    @defer.inlineCallbacks
    def test_missing_name(self) -> Any:
        """A name that does not exist gives no targets and a log line."""
        targets = yield defer.Deferred.fromCoroutine(self.resolve("sip:nothere.carrier.test"))
        self.assertEqual(targets, [])
        self.assertIn("no targets for sip:nothere.carrier.test", self.logged())
        self.assertIn("no such name", self.logged())

    @defer.inlineCallbacks
    def test_server_failure(self) -> Any:
        """SERVFAIL on every lookup gives no targets and logs the failures."""
        targets = yield defer.Deferred.fromCoroutine(self.resolve("sip:pbx.broken.test"))
        self.assertEqual(targets, [])
        self.assertIn("NAPTR lookup of pbx.broken.test failed: server failure", self.logged())
        self.assertTrue(self.flushLoggedErrors(ZoneBrokenError))  # the DNS server logs each one

    @defer.inlineCallbacks
    def test_timeout(self) -> Any:
        """A nameserver that never answers: no targets, "timed out" logged."""
        silent = reactor.listenUDP(0, DatagramProtocol(), interface="127.0.0.1")
        self.addCleanup(silent.stopListening)
        self.dns = make_dns_resolver([("127.0.0.1", silent.getHost().port)], reactor)
        targets = yield defer.Deferred.fromCoroutine(
            self.resolve("sip:aonly.test:5060", timeout=(0.2,)))
        self.assertEqual(targets, [])
        self.assertIn("A lookup of aonly.test failed: timed out", self.logged())
