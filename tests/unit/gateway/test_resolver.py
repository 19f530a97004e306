"""Unit tests of the sans-IO part of :mod:`telavox.gateway.resolver`: the
RFC 3263 decision of what to look up for a URI, NAPTR filtering and
ordering (RFC 3403), and SRV selection (RFC 2782), plus the Twisted edge
over an in-memory fake resolver (no sockets)."""

from __future__ import annotations

import random
from typing import Any

import pytest
from twisted.internet import defer, task
from twisted.internet.interfaces import IResolver
from twisted.names import common, dns, error
from twisted.python.failure import Failure
from zope.interface.verify import verifyObject

from telavox.gateway.resolver import (
    LookupPlan,
    NaptrRecord,
    Resolver,
    SrvRecord,
    Target,
    make_dns_resolver,
    order_naptr,
    order_srv,
    plan_lookup,
)
from telavox.sip.transaction.events import Destination
from telavox.sip.uri import SipUri

ALL = ("udp", "tcp", "tls")


def naptr(order: int, preference: int, service: str, replacement: str,
          flags: str = "s", regexp: str = "") -> NaptrRecord:
    return NaptrRecord(order=order, preference=preference, flags=flags, service=service,
                       replacement=replacement, regexp=regexp)


def srv(priority: int, weight: int, target: str, port: int = 5060) -> SrvRecord:
    return SrvRecord(priority=priority, weight=weight, port=port, target=target)


# --- Target -------------------------------------------------------------------------------


def test_target_text_and_destination() -> None:
    """A target reads transport:host:port (IPv6 bracketed) and converts to
    the transaction layer's Destination."""
    assert str(Target("udp", "192.0.2.1", 5060)) == "udp:192.0.2.1:5060"
    assert str(Target("tls", "2001:db8::1", 5061)) == "tls:[2001:db8::1]:5061"
    assert Target("tcp", "192.0.2.1", 5070).destination() == Destination("tcp", "192.0.2.1", 5070)


# --- what to look up (RFC 3263 §4.1, §4.2) ------------------------------------------------


@pytest.mark.parametrize(("uri", "expected"), [
    ("sip:192.0.2.1", Target("udp", "192.0.2.1", 5060)),
    ("sip:192.0.2.1:5080", Target("udp", "192.0.2.1", 5080)),
    ("sip:192.0.2.1;transport=tcp", Target("tcp", "192.0.2.1", 5060)),
    ("sip:192.0.2.1;transport=TLS", Target("tls", "192.0.2.1", 5061)),
    ("sips:192.0.2.1", Target("tls", "192.0.2.1", 5061)),
    ("sips:192.0.2.1:6000;transport=tcp", Target("tls", "192.0.2.1", 6000)),
    ("sip:[2001:db8::1]", Target("udp", "2001:db8::1", 5060)),
    ("sip:carrier.test;maddr=192.0.2.9", Target("udp", "192.0.2.9", 5060)),
])
def test_numeric_target_needs_no_dns(uri: str, expected: Target) -> None:
    """A numeric TARGET (host or maddr) is the answer: the transport
    parameter or UDP (TLS for sips), the URI port or the default port."""
    plan = plan_lookup(SipUri.parse(uri))
    assert plan.targets == (expected,)
    assert not plan.naptr and not plan.srv and plan.fallback is None


@pytest.mark.parametrize(("uri", "fallback"), [
    ("sip:carrier.test:5080", ("udp", 5080)),
    ("sip:Carrier.Test.:5080;transport=tcp", ("tcp", 5080)),
    ("sips:carrier.test:5081", ("tls", 5081)),
])
def test_port_means_address_records_only(uri: str, fallback: tuple[str, int]) -> None:
    """A name with a port: only A/AAAA of the name, no NAPTR or SRV (§4.2)."""
    assert plan_lookup(SipUri.parse(uri)) == LookupPlan("carrier.test", fallback=fallback)


@pytest.mark.parametrize(("uri", "name", "transport", "port"), [
    ("sip:carrier.test;transport=udp", "_sip._udp.carrier.test", "udp", 5060),
    ("sip:carrier.test;transport=tcp", "_sip._tcp.carrier.test", "tcp", 5060),
    ("sip:carrier.test;transport=tls", "_sips._tcp.carrier.test", "tls", 5061),
    ("sips:carrier.test;transport=tcp", "_sips._tcp.carrier.test", "tls", 5061),
])
def test_transport_without_port_means_srv(uri: str, name: str, transport: str,
                                          port: int) -> None:
    """A transport without a port: SRV of that transport, then A/AAAA on
    its default port; no NAPTR (§4.1)."""
    assert plan_lookup(SipUri.parse(uri)) == LookupPlan(
        "carrier.test", srv=((transport, name),), fallback=(transport, port))


def test_bare_sip_name_means_naptr() -> None:
    """A bare sip: name: NAPTR, then SRV for UDP and TCP, then A/AAAA on
    5060 over UDP (§4.1, §4.2)."""
    assert plan_lookup(SipUri.parse("sip:alice@carrier.test")) == LookupPlan(
        "carrier.test", naptr=True,
        srv=(("udp", "_sip._udp.carrier.test"), ("tcp", "_sip._tcp.carrier.test")),
        fallback=("udp", 5060))


def test_bare_sips_name_means_naptr_over_tls() -> None:
    """A bare sips: name: NAPTR, then only the _sips._tcp SRV, then A/AAAA
    on 5061 over TLS."""
    assert plan_lookup(SipUri.parse("sips:carrier.test")) == LookupPlan(
        "carrier.test", naptr=True, srv=(("tls", "_sips._tcp.carrier.test"),),
        fallback=("tls", 5061))


def test_maddr_is_the_target() -> None:
    """maddr replaces the host as TARGET (RFC 3263 §4)."""
    plan = plan_lookup(SipUri.parse("sip:trunk.test;maddr=edge.carrier.test"))
    assert plan.target == "edge.carrier.test"
    assert plan.srv[0] == ("udp", "_sip._udp.edge.carrier.test")


def test_supported_transports_limit_the_plan() -> None:
    """Only supported transports are asked for; a sip: name without UDP
    falls back to TCP."""
    plan = plan_lookup(SipUri.parse("sip:carrier.test"), ("tcp",))
    assert plan.srv == (("tcp", "_sip._tcp.carrier.test"),)
    assert plan.fallback == ("tcp", 5060)


@pytest.mark.parametrize(("uri", "supported"), [
    ("sip:carrier.test;transport=sctp", ALL),
    ("sips:carrier.test;transport=udp", ALL),
    ("sip:192.0.2.1;transport=tcp", ("udp",)),
    ("sips:carrier.test", ("udp", "tcp")),
])
def test_unusable_transport(uri: str, supported: tuple[str, ...]) -> None:
    """A transport this side lacks, or one a sips: URI cannot use, leaves
    nothing to look up and says why."""
    plan = plan_lookup(SipUri.parse(uri), supported)
    assert plan.problem
    assert not plan.targets and not plan.naptr and not plan.srv and plan.fallback is None


# --- NAPTR (RFC 3263 §4.1, RFC 3403 §4.1) --------------------------------------------------


def test_naptr_sorted_by_preference_within_lowest_order() -> None:
    """Usable records of the lowest order, by preference; higher orders are
    not considered once one matches."""
    records = [
        naptr(20, 1, "SIP+D2U", "_sip._udp.other.test"),
        naptr(10, 30, "SIP+D2U", "_sip._udp.carrier.test."),
        naptr(10, 10, "SIPS+D2T", "_sips._tcp.carrier.test"),
        naptr(10, 20, "SIP+D2T", "_SIP._TCP.carrier.test"),
    ]
    assert order_naptr(records, ALL, secure=False) == [
        ("tls", "_sips._tcp.carrier.test"),
        ("tcp", "_sip._tcp.carrier.test"),
        ("udp", "_sip._udp.carrier.test"),
    ]


def test_naptr_higher_order_used_when_lower_unusable() -> None:
    """Order only ranks usable records: an unusable low order does not hide
    a usable higher one."""
    records = [naptr(10, 10, "SIP+D2S", "_sip._sctp.carrier.test"),
               naptr(20, 10, "SIP+D2T", "_sip._tcp.carrier.test")]
    assert order_naptr(records, ALL, secure=False) == [("tcp", "_sip._tcp.carrier.test")]


@pytest.mark.parametrize("record", [
    naptr(10, 10, "SIP+D2U", "_sip._udp.carrier.test", flags="u"),
    naptr(10, 10, "SIP+D2U", "_sip._udp.carrier.test", flags=""),
    naptr(10, 10, "SIP+D2U", "", flags="s", regexp="!^.*$!sip:x@carrier.test!"),
    naptr(10, 10, "SIP+D2U", "."),
    naptr(10, 10, "E2U+sip", "_sip._udp.carrier.test"),
    naptr(10, 10, "SIP+D2S", "_sip._sctp.carrier.test"),
    naptr(10, 10, "SIP+D2W", "_sip._ws.carrier.test"),
])
def test_naptr_unusable_records_dropped(record: NaptrRecord) -> None:
    """Only flag "s", no regexp, a real replacement and a known SIP service
    count."""
    assert order_naptr([record], ALL, secure=False) == []


def test_naptr_flags_and_services_case_insensitive() -> None:
    """Flags and services compare without regard to case."""
    assert order_naptr([naptr(1, 1, "sip+d2u", "_sip._udp.carrier.test", flags="S")], ALL,
                       secure=False) == [("udp", "_sip._udp.carrier.test")]


def test_naptr_sips_keeps_only_sips_services() -> None:
    """For a sips: URI only SIPS+D2T counts."""
    records = [naptr(10, 10, "SIP+D2U", "_sip._udp.carrier.test"),
               naptr(10, 20, "SIP+D2T", "_sip._tcp.carrier.test"),
               naptr(10, 30, "SIPS+D2T", "_sips._tcp.carrier.test")]
    assert order_naptr(records, ALL, secure=True) == [("tls", "_sips._tcp.carrier.test")]


def test_naptr_unsupported_transport_dropped() -> None:
    """Services whose transport is not supported here are dropped."""
    records = [naptr(10, 10, "SIPS+D2T", "_sips._tcp.carrier.test"),
               naptr(10, 20, "SIP+D2U", "_sip._udp.carrier.test")]
    assert order_naptr(records, ("udp", "tcp"), secure=False) == [
        ("udp", "_sip._udp.carrier.test")]


# --- SRV (RFC 2782) ------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(20))
def test_srv_lower_priority_first(seed: int) -> None:
    """Whatever the draw, every target of a lower priority comes before any
    of a higher one, and each target appears once."""
    records = [srv(20, 5, "c.test"), srv(10, 60, "a.test"), srv(30, 0, "e.test"),
               srv(10, 40, "b.test"), srv(20, 5, "d.test")]
    ordered = order_srv(records, random.Random(seed))
    hosts = [h for h, _ in ordered]
    assert set(hosts[:2]) == {"a.test", "b.test"}
    assert set(hosts[2:4]) == {"c.test", "d.test"}
    assert hosts[4] == "e.test"
    assert len(hosts) == 5


@pytest.mark.parametrize("seed", range(20))
def test_srv_zero_weight_present(seed: int) -> None:
    """Zero-weight records are kept alongside weighted ones of the same
    priority."""
    records = [srv(10, 0, "zero.test"), srv(10, 100, "heavy.test"), srv(10, 0, "nil.test")]
    hosts = {h for h, _ in order_srv(records, random.Random(seed))}
    assert hosts == {"zero.test", "heavy.test", "nil.test"}


def test_srv_all_zero_weights_keep_their_order() -> None:
    """With all weights 0 the draw is always 0: records stay in the order
    given (RFC 2782's running sum picks the first)."""
    records = [srv(10, 0, f"h{i}.test", 5060 + i) for i in range(5)]
    assert order_srv(records, random.Random(7)) == [(f"h{i}.test", 5060 + i) for i in range(5)]


def test_srv_draw_picks_by_running_sum() -> None:
    """The first record whose running sum reaches the draw is picked: a
    draw above the zero-weight prefix picks the weighted record."""

    class Fixed(random.Random):
        def randint(self, a: int, b: int) -> int:
            return b  # the largest draw: always the last record of the running sum

    records = [srv(10, 3, "a.test"), srv(10, 0, "z.test"), srv(10, 1, "b.test")]
    # zero weights go first: running sums z=0, a=3, b=4; draw 4 picks b, then 3 picks a
    assert [h for h, _ in order_srv(records, Fixed())] == ["b.test", "a.test", "z.test"]


def test_srv_dot_target_means_not_available() -> None:
    """A lone "." target says the service is not offered: no targets."""
    assert order_srv([srv(0, 0, ".", 0)], random.Random(1)) == []
    assert order_srv([], random.Random(1)) == []


def test_srv_names_normalised() -> None:
    """Targets are lower case without the final dot; ports are kept."""
    assert order_srv([srv(1, 1, "PBX1.Carrier.Test.", 5070)], random.Random(1)) == [
        ("pbx1.carrier.test", 5070)]


# --- the Twisted edge over a fake resolver -------------------------------------------------


class FakeDns(common.ResolverBase):
    """An IResolver answering from a dict of (type, name) → records; other
    names fail with ``missing`` (NXDOMAIN unless told otherwise).  Answers
    synchronously and remembers what was asked."""

    def __init__(self, records: dict[tuple[int, str], list[Any]],
                 missing: type[Exception] = error.DNSNameError) -> None:
        super().__init__()
        self.records = records
        self.missing = missing
        self.asked: list[tuple[int, str]] = []

    def _lookup(self, name: bytes, cls: int, type: int, timeout: Any) -> defer.Deferred[Any]:
        key = (type, name.decode())
        self.asked.append(key)
        if key not in self.records:
            return defer.fail(Failure(self.missing(name)))
        rrs = [dns.RRHeader(name, type, payload=p) for p in self.records[key]]
        return defer.succeed((rrs, [], []))


def resolved(fake: FakeDns, uri: str, **kw: Any) -> list[str]:
    """The targets, as text, that a Resolver over ``fake`` gives for ``uri``
    (the fake answers synchronously)."""
    results: list[list[Target]] = []
    Resolver(fake, rng=random.Random(1), **kw).resolve(SipUri.parse(uri)).addCallback(
        results.append)
    assert len(results) == 1
    return [str(t) for t in results[0]]


def test_fake_is_a_resolver() -> None:
    """The fake provides IResolver."""
    assert verifyObject(IResolver, FakeDns({}))


def test_dns_resolver_with_servers_asks_only_them() -> None:
    """With explicit servers the resolver neither reads /etc/resolv.conf
    (no system nameservers, no re-read timer) nor uses another reactor."""
    clock = task.Clock()
    chain: Any = make_dns_resolver([("127.0.0.1", 5353)], clock)
    assert verifyObject(IResolver, chain)
    upstream = chain.resolvers[-1]
    assert upstream.servers == [("127.0.0.1", 5353)]
    assert list(upstream.dynServers) == []
    assert upstream._reactor is clock
    assert clock.getDelayedCalls() == []


def test_dns_resolver_without_servers_uses_the_system() -> None:
    """Without servers the resolver follows /etc/resolv.conf, re-read on
    the given reactor."""
    clock = task.Clock()
    chain: Any = make_dns_resolver(None, clock)
    assert verifyObject(IResolver, chain)
    assert chain.resolvers[-1].resolv == b"/etc/resolv.conf"
    assert len(clock.getDelayedCalls()) == 1


def test_numeric_uri_asks_nothing() -> None:
    """A numeric host never reaches DNS."""
    fake = FakeDns({})
    assert resolved(fake, "sip:127.0.0.1:5099;transport=tcp") == ["tcp:127.0.0.1:5099"]
    assert fake.asked == []


def test_failures_give_empty_list() -> None:
    """NXDOMAIN everywhere, or SERVFAIL/timeouts everywhere, give [] rather
    than an error."""
    assert resolved(FakeDns({}), "sip:nowhere.test") == []
    assert resolved(FakeDns({}, missing=error.DNSServerError), "sip:nowhere.test") == []
    assert resolved(FakeDns({}, missing=defer.TimeoutError), "sips:nowhere.test") == []


def test_naptr_failure_still_tries_srv_then_address() -> None:
    """A failed NAPTR lookup is "no NAPTR": SRV then A/AAAA still run."""
    fake = FakeDns({(dns.A, "carrier.test"): [dns.Record_A("127.0.0.7")]},
                   missing=error.DNSServerError)
    assert resolved(fake, "sip:carrier.test") == ["udp:127.0.0.7:5060"]
    assert [k for k, _ in fake.asked] == [dns.NAPTR, dns.SRV, dns.SRV, dns.A, dns.AAAA]


def test_srv_dot_stops_address_fallback() -> None:
    """An SRV "." means no service: A/AAAA are not consulted."""
    fake = FakeDns({(dns.SRV, "_sip._udp.closed.test"): [dns.Record_SRV(0, 0, 0, b".")],
                    (dns.A, "closed.test"): [dns.Record_A("127.0.0.8")]})
    assert resolved(fake, "sip:closed.test;transport=udp") == []
    assert (dns.A, "closed.test") not in fake.asked


def test_srv_target_given_as_address() -> None:
    """An SRV target that is an IP address (against RFC 2782, but seen) is
    used without an address lookup."""
    fake = FakeDns({(dns.SRV, "_sip._tcp.carrier.test"): [dns.Record_SRV(1, 0, 5070,
                                                                          b"127.0.0.9")]})
    assert resolved(fake, "sip:carrier.test;transport=tcp") == ["tcp:127.0.0.9:5070"]
