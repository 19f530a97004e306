"""The configuration model: one frozen record per section of the TOML file.

Owns the schema: every key, its type, default and meaning (the ``doc``
metadata), and the checks on its value.  :mod:`telavox.config.load` turns a
parsed TOML document into these records; components receive their own section
record.  Keep ``etc/telavox.example.toml`` and the README in step with it.
"""

from __future__ import annotations

import ipaddress
import os
import re
from typing import Any

import attrs

from telavox.transport.address import ListenAddress

_LEVELS = ("debug", "info", "warn", "error", "critical")
_DOMAIN = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$")


def doc(text: str, **kw: Any) -> Any:
    """An attrs field carrying its documentation."""
    metadata = kw.pop("metadata", {})
    metadata["doc"] = text
    return attrs.field(metadata=metadata, **kw)


def _positive(inst: object, attr: attrs.Attribute[Any], value: float) -> None:
    if value <= 0:
        raise ValueError(f"must be greater than 0, got {value}")


def _in_range(low: float, high: float) -> Any:
    def check(inst: object, attr: attrs.Attribute[Any], value: float) -> None:
        if not low <= value <= high:
            raise ValueError(f"must be between {low} and {high}, got {value}")
    return check


def _domain(inst: object, attr: attrs.Attribute[Any], value: str) -> None:
    try:
        ipaddress.ip_address(value)
        return
    except ValueError:
        pass
    if not _DOMAIN.match(value) or ".." in value:
        raise ValueError(f"{value!r} is not a valid domain name or IP address")


def _digits(inst: object, attr: attrs.Attribute[Any], value: str) -> None:
    if value and not value.isdigit():
        raise ValueError(f"{value!r} must be digits only")


def _level(inst: object, attr: attrs.Attribute[Any], value: str) -> None:
    if value not in _LEVELS:
        raise ValueError(f"must be one of {', '.join(_LEVELS)}, got {value!r}")


def _not_wildcard(inst: object, attr: attrs.Attribute[Any],
                  value: tuple[ListenAddress, ...]) -> None:
    for address in value:
        if address.host in ("0.0.0.0", "::") and not address.advertised_host:
            raise ValueError(
                f"{address} listens on every interface: add 'advertise <address>' so peers "
                "know where to reach it")


def _listen_required(inst: object, attr: attrs.Attribute[Any],
                     value: tuple[ListenAddress, ...]) -> None:
    if not value:
        raise ValueError("needs at least one address")
    _not_wildcard(inst, attr, value)
    seen = set()
    for address in value:
        key = (address.transport, address.host, address.port)
        if key in seen and address.port != 0:
            raise ValueError(f"{address} is listed twice")
        seen.add(key)


@attrs.frozen
class PlatformConfig:
    """``[platform]``: what the whole platform shares."""

    domain: str = doc("The SIP domain users register to; also the digest realm.",
                      default="localhost", validator=_domain)
    data_dir: str = doc("Folder for the SQLite store, recordings and voicemail "
                        "(relative to the working directory).", default="var")
    log_level: str = doc("debug (one line per SIP message), info (one per transaction), "
                         "warn, error or critical.", default="info", validator=_level)
    country_code: str = doc("Country calling code, for E.164 normalisation of dialled "
                            "numbers.", default="46", validator=_digits)
    national_prefix: str = doc("Trunk prefix of national numbers.", default="0",
                               validator=_digits)
    international_prefix: str = doc("Prefix of international numbers.", default="00",
                                    validator=_digits)


@attrs.frozen
class SipConfig:
    """``[sip]``: the SIP stack's tunables, shared by every endpoint."""

    t1: float = doc("RFC 3261 T1 (round-trip estimate), seconds.", default=0.5,
                    validator=_in_range(0.05, 10))
    t2: float = doc("RFC 3261 T2 (longest retransmission interval), seconds.", default=4.0,
                    validator=_in_range(0.1, 60))
    t4: float = doc("RFC 3261 T4 (longest life of a message in the network), seconds.",
                    default=5.0, validator=_in_range(0.1, 60))
    max_message_size: int = doc("Largest message accepted (header section plus body), bytes.",
                                default=65536, validator=_in_range(1024, 1048576))
    udp_mtu: int = doc("Requests larger than this go over TCP instead of UDP (RFC 3261 "
                       "§18.1.1); 0 never switches.", default=1300,
                       validator=_in_range(0, 65535))
    tcp_idle_timeout: float = doc("Seconds of silence after which a TCP/TLS connection is "
                                  "closed.", default=600.0, validator=_positive)
    tcp_max_connections: int = doc("Most TCP/TLS connections an endpoint holds at once.",
                                   default=4096, validator=_positive)


@attrs.frozen
class TlsConfig:
    """``[tls]``: certificate files for ``tls:`` listeners and outgoing TLS."""

    cert_file: str = doc("PEM certificate (with its chain) of this host.", default="")
    key_file: str = doc("PEM private key of the certificate (may be the same file).",
                        default="")
    ca_file: str = doc("PEM CA certificate that peers' certificates must chain to; empty "
                       "uses the system's trust store.", default="")
    verify_server: bool = doc("Check the certificate of servers we connect to (name or IP "
                              "address, and chain).", default=True)
    require_client_cert: bool = doc("Ask clients connecting to tls: listeners for a "
                                    "certificate that chains to ca_file (mutual TLS).",
                                    default=False)

    @property
    def configured(self) -> bool:
        """True when a certificate and key are given."""
        return bool(self.cert_file and self.key_file)


@attrs.frozen
class SipProxyConfig:
    """``[sipproxy]``: the edge SIP proxy facing phones."""

    listen: tuple[ListenAddress, ...] = doc(
        "Addresses as 'transport:host:port' (udp, tcp, tls), each optionally followed by "
        "'advertise host[:port]'.",
        default=(ListenAddress.parse("udp:127.0.0.1:5060"),
                 ListenAddress.parse("tcp:127.0.0.1:5060")),
        validator=_listen_required)
    user_agent: str = doc("Server header of the proxy's own responses.",
                          default="Telavox")


@attrs.frozen
class Config:
    """The whole configuration file."""

    platform: PlatformConfig = doc("", factory=PlatformConfig)
    sip: SipConfig = doc("", factory=SipConfig)
    tls: TlsConfig = doc("", factory=TlsConfig)
    sipproxy: SipProxyConfig = doc("", factory=SipProxyConfig)

    def check(self) -> list[tuple[str, str]]:
        """Rules across sections: ``(key, problem)`` pairs, empty when fine."""
        problems = []
        needs_tls = any(a.transport == "tls" for a in self.sipproxy.listen)
        if needs_tls and not self.tls.configured:
            problems.append(("tls.cert_file", "a tls: listener needs [tls] cert_file and "
                                              "key_file"))
        for key in ("cert_file", "key_file", "ca_file"):
            path = getattr(self.tls, key)
            if path and not os.path.isfile(path):
                problems.append((f"tls.{key}", f"no such file: {path}"))
        if self.tls.require_client_cert and not self.tls.ca_file:
            problems.append(("tls.require_client_cert", "needs ca_file"))
        return problems
