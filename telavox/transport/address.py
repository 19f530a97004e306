"""Listen addresses: ``transport:host:port``, optionally ``advertise host[:port]``.

Owns :class:`ListenAddress` and its parser.  The text form is the one the
configuration file uses, e.g. ``udp:127.0.0.1:5060``, ``tls:[::1]:5061`` or
``udp:10.0.0.5:5060 advertise 203.0.113.5:5060`` (what goes into Via, Contact
and Record-Route when the host sits behind NAT or has several interfaces).
"""

from __future__ import annotations

import ipaddress

import attrs

TRANSPORTS = ("udp", "tcp", "tls")


class AddressError(ValueError):
    """A listen address that cannot be understood."""


def is_ip_address(host: str) -> bool:
    """True for an IPv4 or IPv6 address literal (without brackets)."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _host_port(text: str, what: str) -> tuple[str, int | None]:
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise AddressError(f"{what}: unterminated '[' in {text!r}")
        host = text[1:end]
        rest = text[end + 1 :]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise AddressError(f"{what}: {host!r} is not an IPv6 address") from None
        if not rest:
            return host, None
        if not rest.startswith(":"):
            raise AddressError(f"{what}: unexpected {rest!r} after the address")
        port_text = rest[1:]
    else:
        if text.count(":") > 1:
            raise AddressError(f"{what}: write IPv6 addresses in brackets, as [{text}]")
        host, colon, port_text = text.partition(":")
        if not host:
            raise AddressError(f"{what}: missing host in {text!r}")
        if not colon:
            return host, None
    if not port_text.isdigit():
        raise AddressError(f"{what}: port {port_text!r} is not a number")
    port = int(port_text)
    if not 0 <= port <= 65535:
        raise AddressError(f"{what}: port {port} is out of range")
    return host, port


@attrs.frozen
class ListenAddress:
    """Where a component listens, and what it tells peers to use.

    ``port`` 0 asks the system for a free port (tests).  ``advertised_host``/
    ``advertised_port`` default to the bound ones.
    """

    transport: str
    host: str
    port: int
    advertised_host: str | None = None
    advertised_port: int | None = None

    @classmethod
    def parse(cls, text: str) -> ListenAddress:
        """Parse ``transport:host:port [advertise host[:port]]``."""
        words = text.split()
        if not words:
            raise AddressError("empty listen address")
        adv_host = adv_port = None
        if len(words) == 3 and words[1].lower() == "advertise":
            adv_host, adv_port = _host_port(words[2], "advertised address")
        elif len(words) != 1:
            raise AddressError(
                f"expected 'transport:host:port [advertise host[:port]]', got {text!r}")
        transport, sep, rest = words[0].partition(":")
        transport = transport.lower()
        if not sep or transport not in TRANSPORTS:
            raise AddressError(
                f"{words[0]!r} must start with one of {', '.join(TRANSPORTS)} and ':'")
        host, port = _host_port(rest, "listen address")
        if port is None:
            port = 5061 if transport == "tls" else 5060
        try:
            ipaddress.ip_address(host)
        except ValueError:
            raise AddressError(f"listen host {host!r} must be an IP address") from None
        return cls(transport, host, port, adv_host, adv_port)

    @property
    def via_host(self) -> str:
        """The host put into Via/Contact/Record-Route."""
        return self.advertised_host or self.host

    def with_port(self, port: int) -> ListenAddress:
        """A copy bound to ``port`` (once a port-0 listener knows its port)."""
        return attrs.evolve(self, port=port)

    @property
    def peer(self) -> str:
        """``host:port`` (``[v6]:port``) as peers and policies name it."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def via_port(self) -> int:
        """The port put into Via/Contact/Record-Route."""
        return self.advertised_port or self.port

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        text = f"{self.transport}:{host}:{self.port}"
        if self.advertised_host:
            adv = f"[{self.advertised_host}]" if ":" in self.advertised_host else (
                self.advertised_host)
            text += f" advertise {adv}" + (f":{self.advertised_port}"
                                           if self.advertised_port else "")
        return text
