"""Locating a carrier's SIP servers: RFC 3263 over DNS NAPTR, SRV, A and AAAA.

Owns the choice of transport, address and port for a trunk's ``sip:`` or
``sips:`` URI: the :class:`Target` record, the sans-IO decisions
(:func:`plan_lookup`, :func:`order_naptr`, :func:`order_srv`), and the thin
Twisted edge that asks DNS (:class:`Resolver`, :func:`make_dns_resolver`).

Theory of operation
-------------------
RFC 3263 §4 takes the TARGET from the URI's ``maddr`` parameter, else its
host.  :func:`plan_lookup` decides what to ask DNS for, without asking:

* a numeric TARGET is used as is (§4.1, §4.2): no DNS;
* a port in the URI means A/AAAA of the TARGET on that port (§4.2), with
  the ``transport`` parameter, else UDP (TLS for ``sips:``);
* a ``transport`` parameter without a port means the SRV records of that
  transport (``_sip._udp``, ``_sip._tcp``, ``_sips._tcp``), else A/AAAA on
  the transport's default port (§4.1, §4.2);
* neither means NAPTR first (§4.1).  :func:`order_naptr` keeps the records
  with flag "s" and a SIP service this side supports (only SIPS+D2T for a
  ``sips:`` URI), then applies RFC 3403 §4.1: only the lowest ``order``
  value among usable records counts, sorted by ``preference``.  Without a
  usable NAPTR the SRV names of each supported transport are asked (UDP
  then TCP; TLS for ``sips:``); without any SRV record, A/AAAA of the
  TARGET on 5060 over UDP (5061 over TLS for ``sips:``).

:func:`order_srv` applies RFC 2782: priorities ascending, a weighted random
draw within a priority (zero weights first in the running sum, so they are
picked only when the draw is 0), and a lone "." target meaning that the
service is decidedly not offered.  RFC 3263 §4.3 asks for failover across
all of them, so :meth:`Resolver.resolve` returns every target: each SRV
host in RFC 2782 order expanded to its A then AAAA addresses.  An SRV
record "." also stops the A/AAAA fallback.

DNS failures never fail :meth:`Resolver.resolve`: a missing name, a
server failure or a timeout counts as "no records" for that step (so the
next RFC 3263 step still runs) and is logged under the
``telavox.gateway.resolver`` namespace; the result may be an empty list.
"""

from __future__ import annotations

import ipaddress
import random
import socket
from collections.abc import Collection, Iterable, Sequence
from itertools import accumulate
from typing import Any, TypeVar, cast

import attrs
from twisted.internet import defer
from twisted.internet.interfaces import IResolver
from twisted.logger import Logger
from twisted.names import client, dns, error, hosts, resolve

from telavox.sip.transaction.events import Destination
from telavox.sip.uri import SipUri
from telavox.transport.address import is_ip_address

__all__ = [
    "ALL_TRANSPORTS",
    "DEFAULT_PORTS",
    "DEFAULT_TIMEOUT",
    "LookupPlan",
    "NaptrRecord",
    "Resolver",
    "SrvRecord",
    "Target",
    "make_dns_resolver",
    "order_naptr",
    "order_srv",
    "plan_lookup",
]

ALL_TRANSPORTS = ("udp", "tcp", "tls")
DEFAULT_PORTS = {"udp": 5060, "tcp": 5060, "tls": 5061}
DEFAULT_TIMEOUT = (1, 3)
"""Seconds per DNS attempt: a lookup gives up after their sum."""

_T = TypeVar("_T")

_NAPTR_SERVICES = {"SIP+D2U": "udp", "SIP+D2T": "tcp", "SIPS+D2T": "tls"}
_SRV_PREFIXES = {"udp": "_sip._udp", "tcp": "_sip._tcp", "tls": "_sips._tcp"}
# (sips?, transport parameter) -> transport; sips: over TCP means TLS (RFC 3261 §26.2.2)
_PARAM_TRANSPORTS = {
    (False, "udp"): "udp",
    (False, "tcp"): "tcp",
    (False, "tls"): "tls",
    (True, "tcp"): "tls",
    (True, "tls"): "tls",
}


@attrs.frozen(slots=True)
class Target:
    """One place to send a request: ``transport`` (udp, tcp, tls), ``host``
    (an IP address, IPv6 without brackets) and ``port``."""

    transport: str
    host: str
    port: int

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.transport}:{host}:{self.port}"

    def destination(self) -> Destination:
        """The transaction layer's :class:`Destination` for this target."""
        return Destination(transport=self.transport, host=self.host, port=self.port)


@attrs.frozen(slots=True)
class NaptrRecord:
    """The fields of a NAPTR record (RFC 3403 §4.1) that RFC 3263 uses."""

    order: int
    preference: int
    flags: str
    service: str
    replacement: str
    regexp: str = ""


@attrs.frozen(slots=True)
class SrvRecord:
    """An SRV record (RFC 2782)."""

    priority: int
    weight: int
    port: int
    target: str


@attrs.frozen(slots=True)
class LookupPlan:
    """What to ask DNS for one URI (see the module docstring).

    ``target`` is the TARGET name (lower case, no trailing dot).  When
    ``targets`` is not empty it is the answer and nothing is looked up.
    Otherwise: NAPTR of ``target`` when ``naptr``; the SRV names in ``srv``
    (pairs of transport and name) unless NAPTR gave usable ones; and A/AAAA of
    ``target`` with ``fallback`` (transport, port) when no SRV record exists.
    ``problem`` says why nothing can be done, when that is so.
    """

    target: str
    targets: tuple[Target, ...] = ()
    naptr: bool = False
    srv: tuple[tuple[str, str], ...] = ()
    fallback: tuple[str, int] | None = None
    problem: str = ""


def _dns_name(name: str) -> str:
    """A domain name for comparison and lookup: lower case, no final dot
    ("" for the root, which names nothing)."""
    return name.strip().rstrip(".").lower()



def _default_transport(secure: bool, supported: Collection[str]) -> str | None:
    """The transport when the URI names none (§4.1): UDP (TCP if UDP is not
    supported) for ``sip:``, TLS for ``sips:``; None when not supported."""
    for transport in ("tls",) if secure else ("udp", "tcp"):
        if transport in supported:
            return transport
    return None


def plan_lookup(uri: SipUri, supported: Collection[str] = ALL_TRANSPORTS) -> LookupPlan:
    """Decide the RFC 3263 §4.1/§4.2 lookups for ``uri``, limited to the
    transports in ``supported``; pure, never raises for a parsed SipUri."""
    maddr = uri.param("maddr")
    host = maddr.strip("[]") if maddr else uri.host_bare
    target = _dns_name(host)
    secure = uri.secure
    param = uri.transport
    if param is None:
        transport = _default_transport(secure, supported)
        if transport is None:
            return _unusable(target, uri, "no supported transport")
    else:
        mapped = _PARAM_TRANSPORTS.get((secure, param))
        if mapped is None or mapped not in supported:
            return _unusable(target, uri, f"transport={param} is not supported")
        transport = mapped
    if is_ip_address(target):
        port = uri.port or DEFAULT_PORTS[transport]
        return LookupPlan(target, targets=(Target(transport, str(ipaddress.ip_address(target)),
                                                  port),))
    if uri.port is not None:
        return LookupPlan(target, fallback=(transport, uri.port))
    if param is not None:
        srv = ((transport, f"{_SRV_PREFIXES[transport]}.{target}"),)
        return LookupPlan(target, srv=srv, fallback=(transport, DEFAULT_PORTS[transport]))
    by_naptr_absence = tuple((t, f"{_SRV_PREFIXES[t]}.{target}")
                             for t in (("tls",) if secure else ("udp", "tcp")) if t in supported)
    return LookupPlan(target, naptr=True, srv=by_naptr_absence,
                      fallback=(transport, DEFAULT_PORTS[transport]))


def _unusable(target: str, uri: SipUri, why: str) -> LookupPlan:
    return LookupPlan(target, problem=f"{why} for {uri.scheme}: URIs")


def order_naptr(records: Iterable[NaptrRecord], supported: Collection[str],
                secure: bool) -> list[tuple[str, str]]:
    """The usable NAPTR records as (transport, SRV name) pairs, most
    preferred first (RFC 3263 §4.1, RFC 3403 §4.1).

    Usable means flag "s", an empty regexp and a non-root replacement, and a
    service of SIP+D2U (udp), SIP+D2T (tcp) or SIPS+D2T (tls) whose transport
    is in ``supported``; only SIPS+D2T when ``secure`` (a ``sips:`` URI).
    Of those, only the ones with the lowest ``order`` count (RFC 3403: no
    higher order once a record matches), sorted by ``preference``; duplicates
    are dropped.  Empty when nothing is usable.
    """
    usable: list[tuple[NaptrRecord, str, str]] = []
    for record in records:
        transport = _NAPTR_SERVICES.get(record.service.strip().upper())
        name = _dns_name(record.replacement)
        if (record.flags.strip().lower() != "s" or record.regexp or not name
                or transport is None or transport not in supported
                or (secure and transport != "tls")):
            continue
        usable.append((record, transport, name))
    if not usable:
        return []
    first = min(record.order for record, _, _ in usable)
    chosen = sorted((u for u in usable if u[0].order == first), key=lambda u: u[0].preference)
    return _unique((transport, name) for _, transport, name in chosen)


def order_srv(records: Iterable[SrvRecord], rng: random.Random) -> list[tuple[str, int]]:
    """The SRV targets as (host, port) in the order to try them (RFC 2782).

    Lower priorities come first; within a priority the order is a weighted
    random draw from ``rng``, zero-weight records placed first in the running
    sum as the RFC says (so they are drawn only when the draw is 0, and always
    appear).  Records whose target is "." are dropped, so a lone "." (service
    decidedly not available) gives an empty list.  Hosts are lower case
    without the final dot.
    """
    live = [r for r in records if _dns_name(r.target)]
    ordered: list[tuple[str, int]] = []
    for priority in sorted({r.priority for r in live}):
        group = sorted((r for r in live if r.priority == priority), key=lambda r: r.weight != 0)
        while group:
            weights = [max(r.weight, 0) for r in group]
            draw = rng.randint(0, sum(weights))
            pick = next(i for i, running in enumerate(accumulate(weights)) if running >= draw)
            record = group.pop(pick)
            ordered.append((_dns_name(record.target), record.port))
    return _unique(ordered)


def _unique(items: Iterable[_T]) -> list[_T]:
    """``items`` without repeats, first occurrence kept."""
    return list(dict.fromkeys(items))


def make_dns_resolver(servers: Sequence[tuple[str, int]] | None, reactor: Any) -> IResolver:
    """A Twisted DNS resolver: /etc/hosts, then the name ``servers`` given
    as (address, port), or when None or empty the nameservers of
    /etc/resolv.conf (re-read every minute).

    Built like ``twisted.names.client.createResolver`` but on ``reactor``,
    and, with explicit servers, neither reading /etc/resolv.conf (which
    createResolver always does, adding the system's nameservers to the retry
    rotation and leaving a repeating delayed call) nor including its cache
    resolver, which only a DNS server ever fills.
    """
    if servers:
        upstream = client.Resolver(servers=list(servers),  # type: ignore[no-untyped-call]
                                   reactor=reactor)
    else:
        upstream = client.Resolver(resolv=b"/etc/resolv.conf",  # type: ignore[no-untyped-call]
                                   reactor=reactor)
    hosts_file = hosts.Resolver(b"/etc/hosts")  # type: ignore[no-untyped-call]
    return cast(IResolver, resolve.ResolverChain([hosts_file, upstream]))  # type: ignore[no-untyped-call]


def _describe(exc: BaseException) -> str:
    """A failed lookup in a few words."""
    if isinstance(exc, error.DNSNameError):
        return "no such name"
    if isinstance(exc, defer.TimeoutError | error.DNSQueryTimeoutError):
        return "timed out"
    if isinstance(exc, error.DNSServerError):
        return "server failure"
    if isinstance(exc, error.DNSQueryRefusedError):
        return "refused"
    return f"{type(exc).__name__}: {exc}"


class Resolver:
    """RFC 3263 server location over a Twisted :class:`IResolver`.

    ``rng`` draws the RFC 2782 weighted order (a fresh ``random.Random`` by
    default); ``supported`` lists the transports this side can use;
    ``timeout`` bounds each DNS lookup (seconds per attempt).
    """

    log = Logger(namespace="telavox.gateway.resolver")

    def __init__(self, resolver: IResolver, *, rng: random.Random | None = None,
                 supported: Collection[str] = ALL_TRANSPORTS,
                 timeout: Sequence[float] = DEFAULT_TIMEOUT) -> None:
        self._dns = resolver
        self._rng = rng if rng is not None else random.Random()
        self._supported = tuple(supported)
        self._timeout = tuple(timeout)

    def resolve(self, uri: SipUri) -> defer.Deferred[list[Target]]:
        """Every target for ``uri`` in failover order (see the module
        docstring); fires with an empty list when there is none, and never
        fails except with CancelledError when cancelled."""
        return defer.Deferred.fromCoroutine(self._guarded(uri))

    async def _guarded(self, uri: SipUri) -> list[Target]:
        """:meth:`_resolve`, with a bug logged rather than failing the caller."""
        try:
            return await self._resolve(uri)
        except defer.CancelledError:
            raise
        except Exception:
            self.log.failure("resolving {uri} failed", uri=str(uri))
            return []

    async def _resolve(self, uri: SipUri) -> list[Target]:
        plan = plan_lookup(uri, self._supported)
        if plan.targets:
            return list(plan.targets)
        if plan.problem:
            self.log.warn("no targets for {uri}: {problem}", uri=str(uri), problem=plan.problem)
            return []
        failures: list[str] = []
        srv = list(plan.srv)
        if plan.naptr:
            answers = await self._lookup("NAPTR", plan.target, failures)
            chosen = order_naptr(_naptr_records(answers), self._supported, uri.secure)
            if chosen:
                srv = chosen
        targets, srv_found = await self._srv_targets(srv, failures)
        if not srv_found and plan.fallback is not None:
            transport, port = plan.fallback
            addresses = await self._addresses([plan.target], failures)
            targets = [Target(transport, a, port) for a in addresses[plan.target]]
        targets = _unique(targets)
        if targets:
            self.log.debug("{uri} resolved to {targets}", uri=str(uri),
                           targets=", ".join(map(str, targets)))
        else:
            self.log.warn("no targets for {uri}: {failures}", uri=str(uri),
                          failures="; ".join(failures) or "no records")
        return targets

    async def _srv_targets(self, srv: Sequence[tuple[str, str]],
                           failures: list[str]) -> tuple[list[Target], bool]:
        """The targets of the SRV names in ``srv``, and whether any SRV
        record (even ".") was found."""
        answers = await defer.gatherResults(
            [defer.Deferred.fromCoroutine(self._lookup("SRV", name, failures))
             for _, name in srv])
        endpoints: list[tuple[str, str, int]] = []
        found = False
        for (transport, _), rrs in zip(srv, answers, strict=True):
            records = _srv_records(rrs)
            found = found or bool(records)
            endpoints.extend((transport, host, port)
                             for host, port in order_srv(records, self._rng))
        addresses = await self._addresses(_unique(h for _, h, _ in endpoints), failures)
        targets = [Target(transport, address, port)
                   for transport, host, port in endpoints for address in addresses[host]]
        return targets, found

    async def _addresses(self, names: Sequence[str],
                         failures: list[str]) -> dict[str, list[str]]:
        """The A then AAAA addresses of each name (an IP address stands for
        itself)."""
        lookups = [n for n in names if not is_ip_address(n)]
        answers = await defer.gatherResults(
            [defer.Deferred.fromCoroutine(self._lookup(kind, name, failures))
             for name in lookups for kind in ("A", "AAAA")])
        found: dict[str, list[str]] = {n: [n] for n in names if is_ip_address(n)}
        for i, name in enumerate(lookups):
            found[name] = _addresses(answers[2 * i]) + _addresses(answers[2 * i + 1])
        return found

    async def _lookup(self, kind: str, name: str, failures: list[str]) -> list[dns.RRHeader]:
        """The answer records of one lookup; [] when it fails (noted in
        ``failures`` and logged)."""
        method = {
            "NAPTR": self._dns.lookupNamingAuthorityPointer,
            "SRV": self._dns.lookupService,
            "A": self._dns.lookupAddress,
            "AAAA": self._dns.lookupIPV6Address,
        }[kind]
        try:
            result: Any = await method(name, self._timeout)  # type: ignore[arg-type]
        except defer.CancelledError:
            raise
        except Exception as exc:
            why = _describe(exc)
            failures.append(f"{kind} {name}: {why}")
            if isinstance(exc, error.DNSNameError):
                self.log.debug("{kind} lookup of {name}: no such name", kind=kind, name=name)
            else:
                self.log.warn("{kind} lookup of {name} failed: {why}", kind=kind, name=name,
                              why=why)
            return []
        return list(result[0])


def _naptr_records(answers: Iterable[dns.RRHeader]) -> list[NaptrRecord]:
    """The NAPTR records among ``answers``."""
    out: list[NaptrRecord] = []
    for rr in answers:
        p = rr.payload
        if isinstance(p, dns.Record_NAPTR):
            out.append(NaptrRecord(order=p.order, preference=p.preference,
                                   flags=_text(p.flags.string), service=_text(p.service.string),
                                   regexp=_text(p.regexp.string),
                                   replacement=_text(p.replacement.name)))
    return out


def _srv_records(answers: Iterable[dns.RRHeader]) -> list[SrvRecord]:
    """The SRV records among ``answers``."""
    out: list[SrvRecord] = []
    for rr in answers:
        p = rr.payload
        if isinstance(p, dns.Record_SRV):
            out.append(SrvRecord(priority=p.priority, weight=p.weight, port=p.port,
                                 target=_text(p.target.name)))
    return out


def _addresses(answers: Iterable[dns.RRHeader]) -> list[str]:
    """The addresses of the A and AAAA records among ``answers``."""
    out: list[str] = []
    for rr in answers:
        p = rr.payload
        if isinstance(p, dns.Record_A):
            out.append(socket.inet_ntop(socket.AF_INET, p.address))
        elif isinstance(p, dns.Record_AAAA):
            out.append(socket.inet_ntop(socket.AF_INET6, p.address))
    return out


def _text(raw: bytes) -> str:
    return raw.decode("ascii", "replace")
