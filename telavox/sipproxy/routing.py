"""Where the proxy sends things: destinations of URIs, registered bindings
and NAT aliases.

Owns the NAT handling of dialogs (the approach of Kamailio's
``add_contact_alias``/``handle_ruri_alias``): when a phone's request or
response creates a dialog, the Contact it sends is given an ``alias``
parameter holding the address the message really came from
(``alias=host~port~transport``); a request sent later to that Contact (an
in-dialog BYE, a re-INVITE) goes to the alias address, with the parameter
taken off, so phones behind NAT are reached where their packets come from.
Registered phones are reached at the source address (and TCP/TLS
connection) of their REGISTER, with their Path as Route.
"""

from __future__ import annotations

import ipaddress

import attrs

from telavox.records import BindingRecord
from telavox.sip.grammar import remove_param, set_param
from telavox.sip.hdrtypes import HeaderError, NameAddr
from telavox.sip.message import Message
from telavox.sip.transaction import Destination, Source
from telavox.sip.transaction.server import DEFAULT_PORTS
from telavox.sip.uri import SipUri, UriError, format_host, parse_uri
from telavox.sipproxy.forwarder import Target

ALIAS = "alias"


def uri_destination(uri: SipUri) -> Destination:
    """Where a SIP URI is reached: its maddr or host, its port (or the
    transport's default) and its transport parameter (RFC 3263 without DNS:
    hosts are expected to be addresses)."""
    transport = uri.transport or ("tls" if uri.secure else "udp")
    host = uri.param("maddr") or uri.host_bare
    return Destination(transport, host.strip("[]"), uri.port or DEFAULT_PORTS.get(transport, 5060))


def with_alias(uri: SipUri, source: Source) -> SipUri:
    """``uri`` carrying the address ``source`` as its alias parameter."""
    value = f"{format_host(source.host)}~{source.port}~{source.transport}"
    return uri.with_params(set_param(uri.params, ALIAS, value))


def alias_destination(uri: SipUri, flows: dict[tuple[str, str, int], str] | None = None
                      ) -> tuple[SipUri, Destination] | None:
    """When ``uri`` carries an alias: the URI without it and where to send.

    ``flows`` maps (transport, host, port) of live connections to their flow
    id, so a request goes back over the phone's own TCP/TLS connection.
    """
    value = uri.param(ALIAS)
    if not value:
        return None
    host, sep, rest = value.rpartition("~")
    host, sep2, port_text = host.rpartition("~")
    transport = rest.lower()
    if not (sep and sep2 and port_text.isdigit() and transport in DEFAULT_PORTS):
        return None
    host = host.strip("[]")
    port = int(port_text)
    flow = (flows or {}).get((transport, host, port))
    bare = uri.with_params(remove_param(uri.params, ALIAS))
    return bare, Destination(transport, host, port, flow=flow)


def alias_contact(message: Message, source: Source) -> None:
    """Give the (single) Contact of ``message`` the alias of ``source``, unless
    it already reaches that address directly."""
    values = message.headers.values("Contact")
    if len(values) != 1 or values == ["*"]:
        return
    try:
        contact = NameAddr.parse(values[0])
    except HeaderError:
        return
    uri = contact.uri
    if not isinstance(uri, SipUri):
        return
    direct = uri_destination(uri)
    if (direct.host, direct.port, direct.transport) == (source.host, source.port,
                                                        source.transport):
        return
    message.headers.set("Contact", str(attrs.evolve(contact, uri=with_alias(uri, source))))


def parse_source(text: str) -> tuple[str, str, int] | None:
    """``transport:host:port`` (IPv6 in brackets) → parts, or None."""
    transport, sep, rest = text.partition(":")
    host, sep2, port_text = rest.rpartition(":")
    if not (sep and sep2 and port_text.isdigit()):
        return None
    return transport.lower(), host.strip("[]"), int(port_text)


_NAT_NETWORKS = tuple(ipaddress.ip_network(n) for n in (
    "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "169.254.0.0/16",
    "fc00::/7", "fe80::/10"))


def behind_nat(host: str) -> bool:
    """True when ``host`` cannot be reached from outside: a private,
    shared (CGN) or link-local address, or a name we cannot judge."""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return True
    return any(address in network for network in _NAT_NETWORKS)


def binding_target(binding: BindingRecord, flows: dict[tuple[str, str, int], str],
                   record_routes: tuple[str, ...]) -> Target | None:
    """The branch toward one registered contact, with the contact as
    Request-URI and the registered Path as Route.

    It is sent where the REGISTER came from (over its connection when that is
    still up) when the phone registered over TCP/TLS, uses SIP outbound (RFC
    5626 ``+sip.instance``), or names a private address it was not seen
    from (it sits behind NAT); otherwise to the contact itself (RFC 3263
    without DNS).
    """
    text = binding.contact
    try:
        uri = NameAddr.parse(text).uri if text.startswith("<") or '"' in text else (
            parse_uri(text))
    except (HeaderError, UriError):
        return None
    if not isinstance(uri, SipUri):
        return None
    direct = uri_destination(uri)
    source = parse_source(binding.source)
    dest = direct
    if source is not None:
        transport, host, port = source
        seen = (direct.host, direct.port) == (host, port)
        if transport != "udp" or binding.instance or (behind_nat(direct.host) and not seen):
            flow = binding.connection or flows.get((transport, host, port))
            dest = Destination(transport, host, port, flow=flow or None)
    return Target(uri=uri, dest=dest, routes=tuple(binding.path),
                  record_routes=record_routes, trusted=False)
