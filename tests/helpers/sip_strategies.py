"""Hypothesis strategies for SIP: tokens, hosts, URIs, name-addrs, Via values,
and whole requests and responses as bytes on the wire.

The messages drawn are valid but written loosely: compact and odd-case
header names, whitespace around colons, several values on one line or folded
over several, unknown header fields, and bodies with or without a
Content-Length.  :class:`DrawnMessage` keeps what went in, so tests can
compare the typed views with it.
"""

from __future__ import annotations

import string

import attrs
from hypothesis import strategies as st

from telavox.sip.grammar import TOKEN_CHARS, WORD_CHARS, quote
from telavox.sip.hdrtypes import NameAddr, Via
from telavox.sip.uri import SipUri, TelUri

_ALNUM = string.ascii_letters + string.digits
_MARK = "-_.!~*'()"
_UNRESERVED = _ALNUM + _MARK
_USER_UNRESERVED = "&=+$,;?/"
_PASSWORD_EXTRA = "&=+$,"
_PARAM_UNRESERVED = "[]/:&+$"
_HNV_UNRESERVED = "[]/?:+$"

# text for display names, reason phrases and unknown header values: anything
# but control characters and lone surrogates
TEXT_CHARS = st.characters(exclude_categories=("Cc", "Cs"))


# characters standing for escapes in drawn text, replaced after drawing
# (one draw per character is much cheaper than one per escape)
_ESCAPES = {"\x01": "%61", "\x02": "%3B", "\x03": "%25", "\x04": "%00", "\x05": "%C3%A9",
            "\x06": "%20", "\x07": "%3a", "\x08": "%40"}
_UNESCAPE_MARKS = str.maketrans(_ESCAPES)


def _chars(alphabet: str, *, escapes: bool = True, min_size: int = 1,
           max_size: int = 10) -> st.SearchStrategy[str]:
    """Strings of ``alphabet`` characters and (optionally) ``%XX`` escapes."""
    if not escapes:
        return st.text(alphabet, min_size=min_size, max_size=max_size)
    text = st.text(alphabet + "".join(_ESCAPES), min_size=min_size, max_size=max_size)
    return text.map(lambda t: t.translate(_UNESCAPE_MARKS))


def tokens(min_size: int = 1, max_size: int = 12) -> st.SearchStrategy[str]:
    """RFC 3261 ``token`` strings."""
    return st.text("".join(sorted(TOKEN_CHARS)), min_size=min_size, max_size=max_size)


# Strategies are built once, here: building them inside a draw costs more
# than the draw itself.

_TOKEN = tokens(max_size=10)
_LABEL = st.builds(lambda a, m, b: a + m + b if b else a, st.sampled_from(_ALNUM),
                   st.text(_ALNUM + "-", max_size=4), st.just("") | st.sampled_from(_ALNUM))
_HOSTNAME = st.builds(lambda labels, first, rest: ".".join([*labels, first + rest]),
                      st.lists(_LABEL, max_size=2), st.sampled_from(string.ascii_letters),
                      st.text(_ALNUM, max_size=4))
_IPV4 = st.ip_addresses(v=4).map(str)
_IPV6_REF = st.builds(lambda a, upper: f"[{str(a).upper() if upper else a}]",
                      st.ip_addresses(v=6), st.booleans())
_HOST = st.one_of(_HOSTNAME, _IPV4, _IPV6_REF)
_PORT = st.none() | st.integers(0, 65535)
_PARAMCHARS = _UNRESERVED + _PARAM_UNRESERVED
_URI_PARAMS = st.lists(
    st.tuples(_chars(_PARAMCHARS, max_size=8),
              st.none() | _chars(_PARAMCHARS, min_size=0, max_size=8)),
    max_size=3).map(tuple)
_USER = _chars(_UNRESERVED + _USER_UNRESERVED, max_size=12)
_PASSWORD = _chars(_UNRESERVED + _PASSWORD_EXTRA, min_size=0, max_size=8)
_URI_HEADERS = st.lists(
    st.tuples(_chars(_UNRESERVED + _HNV_UNRESERVED, max_size=8),
              _chars(_UNRESERVED + _HNV_UNRESERVED, min_size=0, max_size=6)),
    max_size=2).map(tuple)


def hostnames() -> st.SearchStrategy[str]:
    """Domain names (the last label starts with a letter)."""
    return _HOSTNAME


def ipv4_addresses() -> st.SearchStrategy[str]:
    """Dotted-quad IPv4 addresses."""
    return _IPV4


def ipv6_references() -> st.SearchStrategy[str]:
    """IPv6 addresses in brackets, as a URI or Via host, in either case."""
    return _IPV6_REF


def hosts() -> st.SearchStrategy[str]:
    """Any host of a URI or Via: a name, an IPv4 address or an IPv6 reference."""
    return _HOST


def ports() -> st.SearchStrategy[int | None]:
    """No port, or one from 0 to 65535."""
    return _PORT


@st.composite
def _sip_uri(draw: st.DrawFn, schemes: tuple[str, ...]) -> SipUri:
    user = draw(st.none() | _USER)
    return SipUri(
        host=draw(_HOST),
        user=user,
        port=draw(_PORT),
        params=draw(_URI_PARAMS),
        headers=draw(_URI_HEADERS),
        password=None if user is None else draw(st.none() | _PASSWORD),
        scheme=draw(st.sampled_from(schemes)),
    )


_SIP_URI = _sip_uri(("sip", "sips"))
_PLAIN_SIP_URI = _sip_uri(("sip",))


def sip_uris(schemes: tuple[str, ...] = ("sip", "sips")) -> st.SearchStrategy[SipUri]:
    """SIP and SIPS URIs with escaped user parts, passwords, parameters and headers."""
    if schemes == ("sip", "sips"):
        return _SIP_URI
    return _sip_uri(schemes)


_DIGITS = st.text(string.digits, min_size=1, max_size=12)
_GLOBAL_NUMBER = st.lists(st.tuples(st.sampled_from(["", "-", ".", "(", ")"]), _DIGITS),
                          min_size=1, max_size=4).map(
    lambda ps: "+" + "".join(s + d for s, d in ps).lstrip("-.()"))
_LOCAL_NUMBER = st.text(string.digits + "*#-", min_size=1, max_size=8)
_TEL_PARAMS = st.lists(
    st.tuples(_TOKEN.filter(lambda n: n.lower() != "phone-context"),
              st.none() | _chars(_PARAMCHARS, max_size=6)),
    max_size=2)
_TEL_URI = st.one_of(
    st.builds(lambda n, ps: TelUri(n, tuple(ps)), _GLOBAL_NUMBER, _TEL_PARAMS),
    st.builds(lambda n, c, ps: TelUri(n, (("phone-context", c), *ps)),
              _LOCAL_NUMBER, _HOSTNAME | _GLOBAL_NUMBER, _TEL_PARAMS),
)
_URI = st.one_of(_SIP_URI, _SIP_URI, _TEL_URI)


def tel_uris() -> st.SearchStrategy[TelUri]:
    """tel URIs: global numbers with visual separators, or local ones with a
    phone-context."""
    return _TEL_URI


def uris() -> st.SearchStrategy[SipUri | TelUri]:
    """SIP, SIPS or tel URIs."""
    return _URI


_QUOTED = st.text(TEXT_CHARS, max_size=10).map(quote)


def quoted_strings() -> st.SearchStrategy[str]:
    """``quoted-string`` values, quotes and backslashes escaped."""
    return _QUOTED


_GEN_VALUE = st.one_of(st.none(), _TOKEN, _QUOTED, _HOST)
_HEADER_PARAMS = st.lists(st.tuples(_TOKEN.filter(lambda n: n.lower() != "tag"), _GEN_VALUE),
                          max_size=2).map(tuple)
_DISPLAY = st.one_of(st.none(), st.just(""), st.text(TEXT_CHARS, min_size=1, max_size=10))


def display_names() -> st.SearchStrategy[str | None]:
    """No display name, an empty one, or any text (non-ASCII included)."""
    return _DISPLAY


@st.composite
def _name_addr(draw: st.DrawFn, tag: bool | None) -> NameAddr:
    params: tuple[tuple[str, str | None], ...] = draw(_HEADER_PARAMS)
    if draw(st.booleans()) if tag is None else tag:
        params = (("tag", draw(_TOKEN)), *params)
    return NameAddr(uri=draw(_URI), display_name=draw(_DISPLAY), params=params)


_NAME_ADDRS = {tag: _name_addr(tag) for tag in (None, True, False)}


def name_addrs(tag: bool | None = None) -> st.SearchStrategy[NameAddr]:
    """name-addr values: a URI in angle brackets, maybe a display name, header
    parameters; ``tag`` True/False forces a tag on or off."""
    return _NAME_ADDRS[tag]


TRANSPORTS = ("UDP", "TCP", "TLS", "SCTP", "TLS-SCTP", "WS", "WSS")

_TRANSPORT = st.sampled_from(TRANSPORTS) | tokens(max_size=6).map(str.upper)
_VIA_OTHER = st.lists(st.tuples(_TOKEN.filter(lambda n: n.lower() != "branch"), _GEN_VALUE),
                      max_size=2)
_RPORT = st.none() | st.just(None).map(lambda _: ("rport", None)) | st.integers(1, 65535).map(
    lambda p: ("rport", str(p)))
_RECEIVED = st.none() | st.one_of(_IPV4, _IPV6_REF).map(lambda h: ("received", h))


@st.composite
def _via(draw: st.DrawFn) -> Via:
    params: list[tuple[str, str | None]] = [("branch", "z9hG4bK" + draw(_TOKEN))]
    params += [p for p in (draw(_RPORT), draw(_RECEIVED)) if p is not None]
    params += draw(_VIA_OTHER)
    return Via(transport=draw(_TRANSPORT), host=draw(_HOST), port=draw(_PORT),
               params=tuple(draw(st.permutations(params))))


_VIA = _via()


def vias() -> st.SearchStrategy[Via]:
    """Via elements with an RFC 3261 branch and assorted parameters."""
    return _VIA


_SP = st.sampled_from(["", " ", "  ", "\t"])
_LWS = st.sampled_from([" ", "  ", "\t", " \t"])


def _loose_via(draw: st.DrawFn, via: Via) -> str:
    # two whitespace runs, used in turn wherever SWS may go (fewer draws than
    # one per gap, which drawing time cannot afford)
    a, b = draw(_SP), draw(_SP)
    pieces = [f"SIP{a}/{b}2.0{a}/{b}{via.transport}", draw(_LWS), via.host]
    if via.port is not None:
        pieces.append(f"{b}:{a}{via.port}")
    for k, v in via.params:
        pieces.append(f"{a};{b}{k}" if v is None else f"{a};{b}{k}{a}={b}{v}")
    return "".join(pieces)


def _via_text(draw: st.DrawFn, via: Via) -> str:
    return _loose_via(draw, via) if draw(st.booleans()) else str(via)


def via_texts(via: Via) -> st.SearchStrategy[str]:
    """``via`` written canonically, or with whitespace wherever LWS/SWS may go."""
    return st.composite(_via_text)(via)


_WORD = st.text("".join(sorted(WORD_CHARS)), min_size=1, max_size=16)
_CALL_ID = st.builds(lambda a, b: a if b is None else f"{a}@{b}", _WORD, st.none() | _WORD)


def words() -> st.SearchStrategy[str]:
    """Call-ID ``word`` strings."""
    return _WORD


def call_ids() -> st.SearchStrategy[str]:
    """Call-IDs: a word, maybe followed by ``@`` and another."""
    return _CALL_ID


METHODS = ("INVITE", "ACK", "BYE", "CANCEL", "OPTIONS", "REGISTER", "SUBSCRIBE", "NOTIFY",
           "REFER", "MESSAGE", "INFO", "PRACK", "UPDATE", "PUBLISH")
_METHOD = st.sampled_from(METHODS) | _TOKEN


def methods() -> st.SearchStrategy[str]:
    """Known methods and unknown (extension) ones."""
    return _METHOD


_COMPACT = {"Via": "v", "From": "f", "To": "t", "Call-ID": "i", "Contact": "m",
            "Content-Length": "l", "Content-Type": "c", "Subject": "s", "Supported": "k"}


_COLONS = (": ", ":", " : ", ":\t", "  :  ")
_COLON = st.sampled_from(_COLONS)
# each name as written with its colon: one draw per field
_SPELLINGS = {
    name: st.sampled_from([spelling + colon
                           for spelling in [name, name.lower(), name.upper()]
                           + ([_COMPACT[name]] if name in _COMPACT else [])
                           for colon in _COLONS])
    for name in ("Via", "From", "To", "Call-ID", "CSeq", "Max-Forwards", "Contact", "Route",
                 "Record-Route", "Content-Type", "Content-Length")
}


_SEPARATORS = st.sampled_from([",", ", ", " , ", ",  ", ",\r\n ", ",\r\n\t  "])


@attrs.frozen
class DrawnMessage:
    """A drawn message's bytes and what went into them."""

    data: bytes
    is_request: bool
    method: str
    uri: SipUri | TelUri | None
    status: int
    reason: str
    vias: tuple[Via, ...]
    from_: NameAddr
    to: NameAddr
    call_id: str
    cseq: int
    contacts: tuple[NameAddr, ...]
    routes: tuple[NameAddr, ...]
    unknown: tuple[tuple[str, str], ...]
    body: bytes
    has_length: bool


_UNKNOWN_HEADERS = st.lists(
    st.tuples(_TOKEN.map(lambda t: "X-" + t), st.text(TEXT_CHARS, max_size=30).map(str.strip)),
    max_size=2)


def _lines(draw: st.DrawFn, name: str, values: list[str]) -> list[str]:
    """``values`` of one list-valued field, spread over one or more lines."""
    lines = [values[0]]
    for v in values[1:]:
        if draw(st.booleans()):
            lines.append(v)
        else:
            lines[-1] += draw(_SEPARATORS) + v
    return [_field(draw, name, text) for text in lines]


def _field(draw: st.DrawFn, name: str, value: str) -> str:
    spelling = _SPELLINGS.get(name)
    return f"{name}{draw(_COLON)}{value}" if spelling is None else draw(spelling) + value


_STATUS = st.integers(100, 699)
_REASON = st.text(TEXT_CHARS, max_size=20).map(str.strip)
_VIA_LIST = st.lists(_VIA, min_size=1, max_size=3)
_CSEQ = st.integers(0, 2**31 - 1)
_MAX_FORWARDS = st.integers(0, 255)
_CONTACTS = st.lists(_NAME_ADDRS[False], max_size=2)
_ROUTES = st.lists(_PLAIN_SIP_URI.map(lambda u: NameAddr(u.with_params((*u.params, ("lr", None))))),
                   max_size=2)


def messages(*, requests: bool | None = None, stream: bool = False,
             max_body: int = 100) -> st.SearchStrategy[DrawnMessage]:
    """Whole requests or responses (``requests`` None: either) as bytes.

    With ``stream`` every message carries a correct Content-Length, as TCP
    needs; otherwise some have none (the body is the rest of the datagram).
    """

    kind = st.booleans() if requests is None else st.just(requests)
    has_length = st.just(True) if stream else st.booleans()
    body_strategy = st.binary(max_size=max_body)

    @st.composite
    def build(draw: st.DrawFn) -> DrawnMessage:
        is_request = draw(kind)
        method = draw(_METHOD)
        uri = draw(_URI) if is_request else None
        status = 0 if is_request else draw(_STATUS)
        reason = "" if is_request else draw(_REASON)
        via_list = draw(_VIA_LIST)
        from_ = draw(_NAME_ADDRS[True])
        to = draw(_NAME_ADDRS[None if is_request else True])
        call_id = draw(_CALL_ID)
        cseq = draw(_CSEQ)
        contacts = draw(_CONTACTS)
        routes = draw(_ROUTES)
        unknown = draw(_UNKNOWN_HEADERS)
        body = draw(body_strategy)
        with_length = draw(has_length)

        fields: list[list[str]] = [
            _lines(draw, "Via", [_via_text(draw, v) for v in via_list]),
            [_field(draw, "From", str(from_))],
            [_field(draw, "To", str(to))],
            [_field(draw, "Call-ID", call_id)],
            [_field(draw, "CSeq", f"{cseq} {method}")],
            [_field(draw, "Max-Forwards", str(draw(_MAX_FORWARDS)))],
        ]
        if contacts:
            fields.append(_lines(draw, "Contact", [str(c) for c in contacts]))
        if routes:
            fields.append(_lines(draw, "Route" if is_request else "Record-Route",
                                 [str(r) for r in routes]))
        fields += [[_field(draw, n, v)] for n, v in unknown]
        if body:
            fields.append([_field(draw, "Content-Type", "application/octet-stream")])
        if with_length:
            fields.append([_field(draw, "Content-Length", str(len(body)))])
        # Via first (as sent); the rest in any order
        head = fields[0] + [line for group in draw(st.permutations(fields[1:]))
                            for line in group]
        if is_request:
            start = f"{method} {uri} SIP/2.0"
        else:
            start = f"SIP/2.0 {status} {reason}"
        data = ("\r\n".join([start, *head]) + "\r\n\r\n").encode("utf-8") + body
        return DrawnMessage(
            data=data, is_request=is_request, method=method, uri=uri, status=status,
            reason=reason, vias=tuple(via_list), from_=from_, to=to, call_id=call_id,
            cseq=cseq, contacts=tuple(contacts), routes=tuple(routes),
            unknown=tuple(unknown), body=body, has_length=with_length,
        )

    return build()


def message_bytes(**kw: bool) -> st.SearchStrategy[bytes]:
    """Just the bytes of :func:`messages`."""
    return messages(**kw).map(lambda m: m.data)
