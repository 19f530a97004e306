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


def _domain_or_empty(inst: object, attr: attrs.Attribute[Any], value: str) -> None:
    if value:
        _domain(inst, attr, value)


def _peers(inst: object, attr: attrs.Attribute[Any], value: tuple[str, ...]) -> None:
    from telavox.transport.policy import PeerError, parse_peer

    for entry in value:
        try:
            parse_peer(entry)
        except PeerError as e:
            raise ValueError(str(e)) from None


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


_EXTENSION = re.compile(r"^[A-Za-z0-9_.+*#-]{1,64}$")
_HEX32 = re.compile(r"^[0-9a-f]{32}$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


def _extension(inst: object, attr: attrs.Attribute[Any], value: str) -> None:
    if not _EXTENSION.match(value):
        raise ValueError(f"{value!r} must be 1-64 characters of letters, digits and _.+*#-")


def _digits_or_empty(inst: object, attr: attrs.Attribute[Any], value: str) -> None:
    if value and not (value.isascii() and value.isdigit() and len(value) <= 10):
        raise ValueError(f"{value!r} must be up to 10 digits (or empty)")


def _hex(pattern: re.Pattern[str], size: int) -> Any:
    def check(inst: object, attr: attrs.Attribute[Any], value: str) -> None:
        if value and not pattern.match(value):
            raise ValueError(f"must be {size} lower-case hex digits")
    return check


def _algorithms(inst: object, attr: attrs.Attribute[Any], value: tuple[str, ...]) -> None:
    known = ("SHA-256", "MD5", "SHA-512-256")
    if not value:
        raise ValueError("needs at least one algorithm")
    for name in value:
        if name not in known:
            raise ValueError(f"{name!r} is not one of {', '.join(known)}")


def _name(inst: object, attr: attrs.Attribute[Any], value: str) -> None:
    if not re.match(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$", value):
        raise ValueError(f"{value!r} must be a name of letters, digits and _.-")


def _name_or_empty(inst: object, attr: attrs.Attribute[Any], value: str) -> None:
    if value:
        _name(inst, attr, value)


def _target_address(inst: object, attr: attrs.Attribute[Any], value: str) -> None:
    if value:
        ListenAddress.parse(value)


def _prefixes(inst: object, attr: attrs.Attribute[Any], value: tuple[str, ...]) -> None:
    for prefix in value:
        if not re.match(r"^\+?[0-9]*$", prefix):
            raise ValueError(f"prefix {prefix!r} must be digits, optionally after '+'")


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
    dns_servers: tuple[str, ...] = doc("DNS servers (address, address:port or [v6]:port) "
                                       "for the trunks' host names; empty: the system's "
                                       "resolv.conf.", default=(), converter=tuple,
                                       validator=_peers)


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
    record_route: bool = doc("Record-Route dialog-creating requests so that in-dialog "
                             "requests come back through the proxy (needed for NAT).",
                             default=True)
    auth_algorithms: tuple[str, ...] = doc(
        "Digest algorithms offered to phones, in order (MD5, SHA-256, SHA-512-256). The "
        "default is MD5 alone: many deployed clients answer only the first challenge "
        "(SIPp) or fail on any algorithm they do not know (baresip 1.0); list SHA-256 "
        "first once every phone supports RFC 8760.",
        default=("MD5",), validator=_algorithms)
    nonce_lifetime: float = doc("Seconds a digest nonce stays valid (then stale=true).",
                                default=300.0, validator=_in_range(10, 86400))
    max_failures: int = doc("Failed authentications of one username from one address "
                            "before that pair is blocked.", default=5,
                            validator=_in_range(1, 1000))
    max_failed_users: int = doc("Distinct usernames failing from one address before the "
                                "whole address is blocked.", default=10,
                                validator=_in_range(1, 100000))
    block_time: float = doc("Seconds a block lasts.", default=600.0,
                            validator=_in_range(1, 604800))
    rate_limit: float = doc("Requests per second one source address may send, sustained.",
                            default=100.0, validator=_in_range(1, 1000000))
    rate_burst: int = doc("Requests one source address may send in a burst above "
                          "rate_limit (an office rebooting its phones at once).",
                          default=600, validator=_in_range(1, 10000000))
    timer_c: float = doc("Seconds a forwarded INVITE may ring without a final "
                         "answer before the proxy cancels it (RFC 3261 Timer C).",
                         default=180.0, validator=_in_range(10, 3600))
    overload_cpu: float = doc(
        "Share of one CPU core the platform's reactor thread may use for 1.5 s running before "
        "the proxy turns a share of new requests from phones away with 503 and "
        "Retry-After, so that calls in progress keep going; answers to a recent "
        "challenge, in-dialog requests and OPTIONS always go through.  0 turns it "
        "off.", default=0.9, validator=_in_range(0, 1))


CLASSES_OF_SERVICE = ("internal", "national", "international", "premium")
"""Classes of service, each allowing what the ones before it allow."""


def _e164_or_empty(inst: object, attr: attrs.Attribute[Any], value: str) -> None:
    if value and not re.match(r"^\+[1-9][0-9]{1,14}$", value):
        raise ValueError(f"{value!r} is not an E.164 number (+ and 2-15 digits)")


@attrs.frozen
class UserConfig:
    """``[[users]]``: one user (extension) of the platform."""

    extension: str = doc("The user's number and SIP user name, e.g. 1001.",
                         validator=_extension)
    password: str = doc("SIP password (the store keeps only HA1 digests of it).",
                        default="")
    ha1_md5: str = doc("Precomputed MD5(extension:domain:password), instead of password.",
                       default="", validator=_hex(_HEX32, 32))
    ha1_sha256: str = doc("Precomputed SHA-256(extension:domain:password), instead of "
                          "password.", default="", validator=_hex(_HEX64, 64))
    name: str = doc("Display name.", default="")
    sipserver: str = doc("Pin the user to this pool member instead of hashing.", default="")
    class_of_service: str = doc("What the user may call outside the platform: internal, "
                                "national, international or premium (emergency numbers "
                                "are always allowed).", default="national",
                                validator=attrs.validators.in_(CLASSES_OF_SERVICE))
    external_number: str = doc("E.164 caller ID toward carriers, e.g. +46812345678.",
                               default="", validator=_e164_or_empty)
    voicemail_pin: str = doc("PIN of the user's voicemail box (digits); empty: the box "
                             "is checked without a PIN from the user's own phones only.",
                             default="", validator=_digits)
    caller_id_withheld: bool = doc("Withhold the caller ID from called parties outside "
                                   "(sent with Privacy: id, RFC 3323).", default=False)
    pickup_group: str = doc("Name of the user's call pickup group: the members answer "
                            "each other's ringing calls with [tproxy] group_pickup_number "
                            "(empty: none).", default="", validator=_name_or_empty)
    forward_always: str = doc("Forward every call to this number (empty: off).", default="")
    forward_busy: str = doc("Forward when the user is busy (486/600).", default="")
    forward_no_answer: str = doc("Forward when the user does not answer in time.",
                                 default="")
    no_answer_after: float = doc("Seconds of ringing before forward_no_answer (or 480 "
                                 "when none); 0 = the [tproxy] no_answer_timeout.",
                                 default=0.0, validator=_in_range(0, 600))


@attrs.frozen
class RegistrarConfig:
    """``[registrar]``: the location service (RFC 3261 §10)."""

    min_expires: int = doc("Shortest registration accepted, seconds (shorter: 423).",
                           default=60, validator=_in_range(1, 86400))
    max_expires: int = doc("Longest registration granted, seconds (longer is cut down).",
                           default=3600, validator=_in_range(1, 604800))
    default_expires: int = doc("Expiry when a REGISTER names none, seconds.", default=3600,
                               validator=_in_range(1, 604800))
    max_contacts: int = doc("Most contacts one user may have registered (more: 403).",
                            default=10, validator=_in_range(1, 1000))
    flush_interval: float = doc("Seconds between batched writes of bindings to the store.",
                                default=1.0, validator=_in_range(0.05, 60))


@attrs.frozen
class PoolMemberConfig:
    """``[[sipservers]]``: one SIP server of the pool tlb balances over."""

    name: str = doc("Name of the SIP server, e.g. sip1.", validator=_name)
    address: str = doc("Its SIP address as transport:host:port, when it runs elsewhere "
                       "(another process or host).", default="", validator=_target_address)
    listen: str = doc("Host it in this process (tproxy + mediaserver), listening on this "
                      "transport:host:port; sipproxy reaches it in memory.", default="",
                      validator=_target_address)

    @property
    def sip_address(self) -> str:
        """Where the pool member receives SIP: its listen or its remote address."""
        return self.listen or self.address


NUMBER_FORMATS = ("e164", "international", "national", "digits")
"""How a trunk writes numbers toward its carrier: ``e164`` (+46812345678),
``international`` (0046812345678), ``national`` (08123456578 for numbers of
the platform's country, international otherwise), ``digits`` (46812345678)."""


def _trunk_uri(inst: object, attr: attrs.Attribute[Any], value: str) -> None:
    from telavox.sip.uri import SipUri, UriError, parse_uri

    try:
        uri = parse_uri(value)
    except UriError as e:
        raise ValueError(f"{value!r} is not a SIP URI ({e})") from None
    if not isinstance(uri, SipUri) or uri.user:
        raise ValueError(f"{value!r} must be a SIP URI without a user part, e.g. "
                         "'sip:carrier.example.net' or 'sip:192.0.2.1:5060;transport=tcp'")


def _number_format(inst: object, attr: attrs.Attribute[Any], value: str) -> None:
    if value not in NUMBER_FORMATS:
        raise ValueError(f"must be one of {', '.join(NUMBER_FORMATS)}, got {value!r}")


def _networks(inst: object, attr: attrs.Attribute[Any], value: tuple[str, ...]) -> None:
    for network in value:
        try:
            ipaddress.ip_network(network, strict=False)
        except ValueError:
            raise ValueError(f"{network!r} is not an IP address or network") from None


def _carrier_listen(inst: object, attr: attrs.Attribute[Any],
                    value: tuple[ListenAddress, ...]) -> None:
    _not_wildcard(inst, attr, value)
    transports = [a.transport for a in value]
    if len(set(transports)) != len(transports):
        raise ValueError("one address per transport (udp, tcp, tls)")


def _listen_addresses(value: object) -> tuple[ListenAddress, ...]:
    """A string (one address) or a sequence of addresses or strings."""
    if isinstance(value, (str, ListenAddress)):
        value = (value,)
    assert isinstance(value, (tuple, list))
    return tuple(v if isinstance(v, ListenAddress) else ListenAddress.parse(v) for v in value)


@attrs.frozen
class TrunkConfig:
    """``[[gateways.trunks]]``: one carrier trunk of a gateway."""

    name: str = doc("Name of the trunk, e.g. carrier-a.", validator=_name)
    address: str = doc("The carrier's SIP URI, e.g. 'sip:sip.carrier.example' (resolved "
                       "per RFC 3263: NAPTR, SRV, A/AAAA) or 'sip:192.0.2.1:5060;"
                       "transport=tcp'.", validator=_trunk_uri)
    username: str = doc("User name for the carrier's digest challenges and the "
                        "registration (empty: no credentials).", default="")
    password: str = doc("Password for the carrier's digest challenges.", default="")
    realm: str = doc("Answer only challenges of this realm (empty: any realm).",
                     default="")
    register: bool = doc("Keep a registration with the carrier (REGISTER with "
                         "username), refreshed before it expires.", default=False)
    register_expires: int = doc("Registration lifetime asked for, seconds.", default=600,
                                validator=_in_range(60, 86400))
    from_domain: str = doc("Domain of From/To/P-Asserted-Identity toward the carrier "
                           "(empty: the carrier's host).", default="")
    invite_timeout: float = doc("Seconds to wait for a provisional response before the "
                                "next trunk is tried.", default=4.0,
                                validator=_in_range(0.5, 60))
    options_interval: float = doc("Seconds between OPTIONS keep-alives to the carrier "
                                  "(0: none).", default=30.0, validator=_in_range(0, 3600))
    number_format: str = doc("How numbers are written toward the carrier: e164, "
                             "international, national or digits.", default="e164",
                             validator=_number_format)
    tech_prefix: str = doc("Prefix put before called numbers toward the carrier (and "
                           "removed from numbers it sends).", default="", validator=_digits)
    allow: tuple[str, ...] = doc("Extra source addresses or networks the carrier sends "
                                 "from (its resolved addresses are always allowed).",
                                 default=(), converter=tuple, validator=_networks)
    max_calls: int = doc("Calls the trunk carries at once, both directions (the channels "
                         "bought from the carrier; 0: no limit).  A full trunk is skipped "
                         "for outbound calls and answers the carrier's new calls 503.",
                         default=0, validator=_in_range(0, 100_000))


def trunk_transport(trunk: TrunkConfig) -> str:
    """The transport a trunk's address names (``;transport=``, or tls for a
    sips URI); empty when it leaves the choice to DNS (RFC 3263)."""
    from telavox.sip.uri import SipUri, parse_uri

    uri = parse_uri(trunk.address)
    if not isinstance(uri, SipUri):
        return ""
    return uri.transport or ("tls" if uri.secure else "")


def _did(inst: object, attr: attrs.Attribute[Any], value: str) -> None:
    if not re.match(r"^\+[1-9][0-9]{1,14}$", value):
        raise ValueError(f"{value!r} is not an E.164 number (+ and 2-15 digits)")


@attrs.frozen
class GatewayConfig:
    """``[[gateways]]``: a gateway toward a carrier network."""

    name: str = doc("Name of the gateway, e.g. tdcproxy1.", validator=_name)
    address: str = doc("Its platform-side SIP address as transport:host:port, when it runs "
                       "elsewhere.", default="", validator=_target_address)
    prefixes: tuple[str, ...] = doc("E.164 prefixes it carries (longest match wins), e.g. "
                                    "['+46']; [''] for everything.", default=(),
                                    validator=_prefixes)
    listen: str = doc("Host it in this process, its platform side listening on this "
                      "transport:host:port.", default="", validator=_target_address)
    carrier_listen: tuple[ListenAddress, ...] = doc(
        "Where a hosted gateway faces its carriers, as transport:host:port [advertise "
        "host[:port]]; one address, or one per transport its trunks use (udp, tcp, tls).",
        default=(), converter=_listen_addresses, validator=_carrier_listen)
    trunks: tuple[TrunkConfig, ...] = doc("Its carrier trunks, tried in order.", default=())
    user_agent: str = doc("User-Agent/Server toward carriers.", default="telavox")

    @property
    def sip_address(self) -> str:
        """Where the gateway receives SIP from the platform."""
        return self.listen or self.address


@attrs.frozen
class DidConfig:
    """``[[dids]]``: an external number and the dial-plan target it rings."""

    number: str = doc("The E.164 number callers dial, e.g. +46812345600.", validator=_did)
    target: str = doc("What it rings: a user's extension or a [[dialplan]] number (IVR, "
                      "voicemail, conference...).", validator=_extension)


@attrs.frozen
class TlbConfig:
    """``[tlb]``: where users, targets and numbers live, and pool health."""

    http_listen: str = doc("Address of the HTTP JSON API as tcp:host:port; empty disables "
                           "it.", default="tcp:127.0.0.1:8070", validator=_target_address)
    token: str = doc("Bearer token the HTTP API requires (required when it listens "
                     "beyond loopback).", default="")
    probe_listen: ListenAddress = doc(
        "Where tlb's OPTIONS health probes are sent from.",
        default=ListenAddress.parse("udp:127.0.0.1:5069"))
    probe_interval: float = doc("Seconds between OPTIONS probes of each pool member and "
                                "gateway.", default=5.0, validator=_in_range(0.1, 3600))
    down_after: int = doc("Failed probes in a row before a member is marked down.",
                          default=3, validator=_in_range(1, 100))
    up_after: int = doc("Answered probes in a row before a down member is up again.",
                        default=1, validator=_in_range(1, 100))
    pins: dict[str, str] = doc("Targets (users, IVRs, rooms...) pinned to a pool member, "
                               "e.g. { \"800\" = \"sip1\" }.", factory=dict)


def _port_range(inst: object, attr: attrs.Attribute[Any], value: tuple[int, int]) -> None:
    if len(value) != 2:
        raise ValueError("must be [low, high]")
    low, high = value
    if not 1024 <= low < high <= 65535 or high - low < 3:
        raise ValueError(f"must be 1024 <= low < high <= 65535 with room for a port pair, "
                         f"got [{low}, {high}]")


@attrs.frozen
class MediaServerConfig:
    """``[mediaserver]``: RTP endpoints of the SIP servers hosted here (the
    range is split evenly between them)."""

    address: str = doc("IP address advertised in SDP: where phones and carriers send RTP.",
                       default="127.0.0.1", validator=_domain)
    carrier_address: str = doc("IP address advertised in SDP toward the gateways' carriers "
                               "(empty: address); bind_host must then cover both.",
                               default="", validator=_domain_or_empty)
    bind_host: str = doc("Address the RTP sockets bind to (empty: the advertised address).",
                         default="")
    rtp_ports: tuple[int, int] = doc("UDP port range [low, high] for RTP (even) and RTCP "
                                     "(RTP + 1).", default=(10000, 20000),
                                     converter=tuple, validator=_port_range)
    inactivity_timeout: float = doc("Seconds without RTP or RTCP from a leg that should be "
                                    "sending before its call is ended (0: never).",
                                    default=60.0, validator=_in_range(0, 86400))
    country: str = doc("Tone plan for ringback, busy and congestion tones (us, uk, se, de, "
                       "fr, nl).", default="us")


@attrs.frozen
class TproxyConfig:
    """``[tproxy]``: call control of the SIP servers hosted here."""

    no_answer_timeout: float = doc("Seconds a call may ring before it ends with 480 (or "
                                   "goes to the callee's forward_no_answer).", default=30.0,
                                   validator=_in_range(1, 600))
    pass_headers: tuple[str, ...] = doc("Headers copied from one leg to the other ('X-*' "
                                        "matches a prefix).",
                                        default=("X-*", "User-to-User"), converter=tuple)
    emergency_numbers: tuple[str, ...] = doc("Numbers every user may call whatever the "
                                             "class of service.", default=("112", "911"),
                                             converter=tuple)
    premium_prefixes: tuple[str, ...] = doc("E.164 prefixes of premium-rate numbers, "
                                            "callable only with class_of_service premium, "
                                            "e.g. ['+46900'].", default=(), converter=tuple,
                                            validator=_prefixes)
    cdr_csv: str = doc("CSV file the CDRs are appended to, relative to data_dir (empty: "
                       "store only).", default="cdr.csv")
    user_agent: str = doc("User-Agent/Server header of the SIP servers.",
                          default="telavox-tproxy")
    max_forward_hops: int = doc("Longest chain of call forwarding followed for one call.",
                                default=5, validator=_in_range(0, 20))
    pickup_prefix: str = doc("Dialled before a colleague's extension, answers the call "
                             "ringing there (directed pickup, e.g. **1002); empty: off.",
                             default="**")
    group_pickup_number: str = doc("Dialled by a user, answers the call that has rung "
                                   "longest in the user's pickup_group (Asterisk's *8); "
                                   "empty: off.", default="*8")
    music_on_hold: str = doc("What a held party hears: 'default' (the built-in music), a "
                             "WAV file's path, 'tone:<indications>' (e.g. "
                             "'tone:!440/200,!0/3800'), or '' for silence.",
                             default="default")
    park_lot: str = doc("Call parking: a call transferred to this number (or a caller "
                        "dialling it) waits in the first free slot, which is announced; "
                        "empty: no parking.", default="", validator=_digits_or_empty)
    park_slots: int = doc("Number of park slots, numbered after park_lot (700 with 20 "
                          "slots: 701-720). Transferring to a free slot parks there; "
                          "dialling a slot in use retrieves the call.", default=20,
                          validator=_in_range(1, 100))
    park_timeout: float = doc("Seconds a call stays parked before it rings back the user "
                              "who parked it (then ends when nobody answers).",
                              default=120.0, validator=_in_range(10, 3600))

    def park_numbers(self) -> tuple[str, ...]:
        """The park slots' numbers, in order (empty without a park lot)."""
        if not self.park_lot:
            return ()
        width = len(self.park_lot)
        return tuple(str(int(self.park_lot) + i).zfill(width)
                     for i in range(1, self.park_slots + 1))


@attrs.frozen
class ScriptServerConfig:
    """``[scriptserver]``: scripts bound to dial-plan numbers (built-in
    applications, AGI programs, FastAGI servers)."""

    sounds_dirs: tuple[str, ...] = doc("Folders searched for sounds before the built-in "
                                       "prompts (relative to data_dir), each with one "
                                       "sub-folder per language.", default=("sounds",),
                                       converter=tuple)
    language: str = doc("Language of prompts (a sub-folder of the sound folders).",
                        default="en", validator=_name)
    agi_timeout: float = doc("Seconds an AGI script may take to send its next command "
                             "before its call is ended.", default=30.0,
                             validator=_in_range(1, 3600))
    agi_connect_timeout: float = doc("Seconds to connect to a FastAGI server.",
                                     default=5.0, validator=_in_range(0.1, 60))


def _ivr_options(inst: object, attr: attrs.Attribute[Any], value: dict[str, str]) -> None:
    for key, target in value.items():
        if key not in set("0123456789*#t") or len(key) != 1:
            raise ValueError(f"option {key!r} must be one digit, * or # (or t: timeout)")
        if not target:
            raise ValueError(f"option {key!r} has no target")


@attrs.frozen
class IvrConfig:
    """``[[ivr]]``: a voice menu, run by ``[[dialplan]]`` entries with
    ``app = "ivr"`` and ``args = ["<name>"]``."""

    name: str = doc("Name of the menu, e.g. main.", validator=_name)
    prompt: str = doc("Sound played to the caller (a sound name such as ivr-main-menu, or "
                      "an absolute path to a WAV file without .wav).",
                      default="ivr-main-menu")
    options: dict[str, str] = doc(
        "Digit → where it leads: an extension or number to dial, 'menu:<name>' another "
        "menu, 'voicemail:<extension>' a voicemail box, 'hangup'; 't' is where a caller "
        "who presses nothing goes.", factory=dict, validator=_ivr_options)
    direct_dial: bool = doc("Callers may also dial a user's extension directly.",
                            default=False)
    timeout: float = doc("Seconds to wait for a digit after the prompt.", default=5.0,
                         validator=_in_range(1, 60))
    retries: int = doc("Times the menu is played again after an invalid entry or no "
                       "entry, before the caller is told goodbye.", default=2,
                       validator=_in_range(0, 10))
    invalid_prompt: str = doc("Sound played after an invalid entry.", default="invalid")


@attrs.frozen
class DialPlanEntry:
    """``[[dialplan]]``: a number bound to a script or an alias of a user."""

    number: str = doc("The number dialled, e.g. *43 or 800.", validator=_extension)
    app: str = doc("Script run by the scriptserver: a built-in application (echo, ivr, "
                   "voicemail, conference...), an AGI program's absolute path, or "
                   "agi://host[:port][/name] (FastAGI).", default="")
    args: tuple[str, ...] = doc("Arguments given to the script (agi_arg_1, ...).",
                                default=(), converter=tuple)
    target: str = doc("Or: the extension this number rings.", default="")


@attrs.frozen
class Config:
    """The whole configuration file."""

    platform: PlatformConfig = doc("", factory=PlatformConfig)
    sip: SipConfig = doc("", factory=SipConfig)
    tls: TlsConfig = doc("", factory=TlsConfig)
    sipproxy: SipProxyConfig = doc("", factory=SipProxyConfig)
    registrar: RegistrarConfig = doc("", factory=RegistrarConfig)
    tlb: TlbConfig = doc("", factory=TlbConfig)
    mediaserver: MediaServerConfig = doc("", factory=MediaServerConfig)
    tproxy: TproxyConfig = doc("", factory=TproxyConfig)
    scriptserver: ScriptServerConfig = doc("", factory=ScriptServerConfig)
    dialplan: tuple[DialPlanEntry, ...] = doc("", default=())
    ivr: tuple[IvrConfig, ...] = doc("", default=())
    users: tuple[UserConfig, ...] = doc("", default=())
    sipservers: tuple[PoolMemberConfig, ...] = doc("", default=())
    gateways: tuple[GatewayConfig, ...] = doc("", default=())
    dids: tuple[DidConfig, ...] = doc("", default=())

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
        problems += self._check_users()
        problems += self._check_pool()
        problems += self._check_dialplan()
        problems += self._check_dids()
        problems += self._check_ivr()
        registrar = self.registrar
        if not registrar.min_expires <= registrar.default_expires <= registrar.max_expires:
            problems.append(("registrar.default_expires",
                             "must lie between min_expires and max_expires"))
        return problems

    def _check_users(self) -> list[tuple[str, str]]:
        problems = []
        seen: set[str] = set()
        members = {m.name for m in self.sipservers}
        for i, user in enumerate(self.users):
            key = f"users[{i}]"
            if user.extension in seen:
                problems.append((f"{key}.extension", f"{user.extension} is listed twice"))
            seen.add(user.extension)
            if not (user.password or user.ha1_md5 or user.ha1_sha256):
                problems.append((f"{key}.password", "needs password, ha1_md5 or ha1_sha256"))
            if user.sipserver and user.sipserver not in members:
                problems.append((f"{key}.sipserver", f"no [[sipservers]] named "
                                                      f"{user.sipserver!r}"))
        return problems

    def _check_dialplan(self) -> list[tuple[str, str]]:
        problems = []
        extensions = {u.extension for u in self.users}
        seen: set[str] = set()
        for i, entry in enumerate(self.dialplan):
            key = f"dialplan[{i}]"
            if entry.number in seen or entry.number in extensions:
                problems.append((f"{key}.number", f"{entry.number} is already a user or "
                                                   "listed before"))
            seen.add(entry.number)
            if bool(entry.app) == bool(entry.target):
                problems.append((key, "needs either app or target"))
            elif entry.target and entry.target not in extensions:
                problems.append((f"{key}.target", f"no user {entry.target}"))
        group_pickup = self.tproxy.group_pickup_number
        if group_pickup and group_pickup in extensions | seen:
            problems.append(("tproxy.group_pickup_number", f"{group_pickup} is already a "
                                                           "user or dial-plan number"))
        parking = {self.tproxy.park_lot, *self.tproxy.park_numbers()}
        taken = sorted(parking & (extensions | seen))
        if self.tproxy.park_lot and taken:
            problems.append(("tproxy.park_lot", f"park numbers {', '.join(taken)} are "
                                                "already users or dial-plan numbers"))
        media = self.mediaserver
        if (media.carrier_address and media.carrier_address != media.address
                and media.bind_host not in ("0.0.0.0", "::")):
            problems.append(("mediaserver.bind_host", "must be 0.0.0.0 or :: when "
                                                       "carrier_address differs from address"))
        hosted = [m for m in self.sipservers if m.listen]
        low, high = self.mediaserver.rtp_ports
        if hosted and (high - low + 1) // len(hosted) < 4:
            problems.append(("mediaserver.rtp_ports", "too few ports for the SIP servers "
                                                      "hosted here"))
        return problems

    @staticmethod
    def _check_gateway(key: str, gateway: GatewayConfig) -> list[tuple[str, str]]:
        problems = []
        if gateway.listen and not gateway.carrier_listen:
            problems.append((f"{key}.carrier_listen", "needed by a gateway hosted here"))
        if gateway.listen and not gateway.trunks:
            problems.append((f"{key}.trunks", "a gateway hosted here needs a trunk"))
        names: set[str] = set()
        for j, trunk in enumerate(gateway.trunks):
            where = f"{key}.trunks[{j}]"
            if trunk.name in names:
                problems.append((f"{where}.name", f"{trunk.name!r} is used twice"))
            names.add(trunk.name)
            if trunk.register and not (trunk.username and trunk.password):
                problems.append((f"{where}.register", "needs username and password"))
            if bool(trunk.username) != bool(trunk.password):
                problems.append((f"{where}.password", "give username and password together"))
            transport = trunk_transport(trunk)
            listening = {a.transport for a in gateway.carrier_listen}
            if gateway.listen and transport and listening and transport not in listening:
                problems.append((f"{where}.address", f"the trunk speaks {transport} but the "
                                 f"gateway has no {transport} carrier_listen"))
        return problems

    def _check_ivr(self) -> list[tuple[str, str]]:
        problems = []
        menus = {m.name for m in self.ivr}
        users = {u.extension for u in self.users}
        if len(menus) != len(self.ivr):
            problems.append(("ivr", "two menus have the same name"))
        for i, menu in enumerate(self.ivr):
            for key, target in menu.options.items():
                kind, _, name = target.partition(":")
                if kind == "menu" and name not in menus:
                    problems.append((f"ivr[{i}].options.{key}", f"no [[ivr]] named {name!r}"))
                elif kind == "voicemail" and name not in users:
                    problems.append((f"ivr[{i}].options.{key}", f"no user {name!r}"))
        for i, entry in enumerate(self.dialplan):
            if entry.app == "ivr" and (not entry.args or entry.args[0] not in menus):
                problems.append((f"dialplan[{i}].args", "an ivr entry needs args = "
                                                        "[\"<name of an [[ivr]] menu>\"]"))
        return problems

    def _check_dids(self) -> list[tuple[str, str]]:
        problems = []
        targets = {u.extension for u in self.users} | {e.number for e in self.dialplan}
        seen: set[str] = set()
        for i, did in enumerate(self.dids):
            if did.number in seen:
                problems.append((f"dids[{i}].number", f"{did.number} is listed twice"))
            seen.add(did.number)
            if did.target not in targets:
                problems.append((f"dids[{i}].target", f"no user or [[dialplan]] number "
                                                       f"{did.target}"))
        return problems

    def _check_pool(self) -> list[tuple[str, str]]:
        problems = []
        names: set[str] = set()
        groups: tuple[tuple[str, tuple[PoolMemberConfig | GatewayConfig, ...]], ...] = (
            ("sipservers", self.sipservers), ("gateways", self.gateways))
        for kind, entries in groups:
            for i, entry in enumerate(entries):
                if entry.name in names:
                    problems.append((f"{kind}[{i}].name", f"{entry.name!r} is used twice"))
                names.add(entry.name)
                hosted = bool(entry.listen)
                if hosted and entry.address:
                    problems.append((f"{kind}[{i}].address",
                                     "give either address (elsewhere) or listen (hosted "
                                     "here), not both"))
                elif not entry.address and not hosted:
                    problems.append((f"{kind}[{i}].address",
                                     "needed: address (elsewhere) or listen (hosted here)"))
                if isinstance(entry, GatewayConfig):
                    problems += self._check_gateway(f"{kind}[{i}]", entry)
        members = {m.name for m in self.sipservers}
        for target, member in self.tlb.pins.items():
            if member not in members:
                problems.append((f"tlb.pins.{target}", f"no [[sipservers]] named {member!r}"))
        if self.tlb.http_listen:
            address = ListenAddress.parse(self.tlb.http_listen)
            if address.transport != "tcp":
                problems.append(("tlb.http_listen", "must be a tcp: address"))
            elif not address.host.startswith("127.") and address.host != "::1" and (
                    not self.tlb.token):
                problems.append(("tlb.token", "needed when http_listen is not on loopback"))
        return problems
