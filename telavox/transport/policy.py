"""Who may talk to a listener.

Owns :class:`PeerPolicy`.  Phone-facing listeners accept anyone (and
authenticate); internal ones accept only their configured peers, recognised
by source address and port (never by a header).  Over TCP/TLS the source port
of a peer's connection is ephemeral, so there only the address is compared.
"""

from __future__ import annotations

import ipaddress

import attrs

from telavox.sip.transaction import Source


class PeerError(ValueError):
    """A peer entry that cannot be understood."""


def parse_peer(text: str) -> tuple[str, int | None]:
    """``host``, ``host:port``, ``[v6]`` or ``[v6]:port`` → (host, port or None).

    The host must be an IP address.
    """
    text = text.strip()
    port: int | None = None
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise PeerError(f"unterminated '[' in {text!r}")
        host, rest = text[1:end], text[end + 1 :]
        if rest:
            if not rest.startswith(":") or not rest[1:].isdigit():
                raise PeerError(f"bad port in {text!r}")
            port = int(rest[1:])
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
        if not port_text.isdigit():
            raise PeerError(f"bad port in {text!r}")
        port = int(port_text)
    else:
        host = text
    try:
        host = str(ipaddress.ip_address(host))
    except ValueError:
        raise PeerError(f"{host!r} is not an IP address") from None
    if port is not None and not 0 < port <= 65535:
        raise PeerError(f"port out of range in {text!r}")
    return host, port


@attrs.frozen
class PeerPolicy:
    """``allow_any`` for public listeners; else only ``peers`` (address and
    port) and sources inside ``networks`` (any port: a carrier's addresses)."""

    allow_any: bool = True
    peers: frozenset[tuple[str, int | None]] = frozenset()
    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()

    @classmethod
    def only(cls, entries: list[str] | tuple[str, ...]) -> PeerPolicy:
        """A policy admitting just the listed peers."""
        return cls(False, frozenset(parse_peer(e) for e in entries))

    @classmethod
    def from_networks(cls, entries: list[str] | tuple[str, ...]) -> PeerPolicy:
        """A policy admitting sources inside the listed addresses or networks
        (``192.0.2.1``, ``198.51.100.0/24``), whatever their port."""
        try:
            networks = tuple(ipaddress.ip_network(e, strict=False) for e in entries)
        except ValueError as e:
            raise PeerError(str(e)) from None
        return cls(False, frozenset(), networks)

    def allows_host(self, host: str) -> bool:
        """True when ``host`` lies inside one of ``networks``."""
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in network for network in self.networks)

    def allows(self, source: Source) -> bool:
        """True when a message from ``source`` may be handled."""
        if self.allow_any:
            return True
        host = source.host.lower()
        if (host, None) in self.peers:
            return True
        if self.networks and self.allows_host(host):
            return True
        if source.transport == "udp" or source.local:
            return (host, source.port) in self.peers
        return any(h == host for h, _ in self.peers)
