"""URIs of SIP: ``sip:``/``sips:`` (RFC 3261 §19.1), ``tel:`` (RFC 3966) and any
other absolute URI kept as text.

Owns parsing (:func:`parse_uri`), serialisation (``str(uri)``), percent
escaping, and the URI comparison rules of RFC 3261 §19.1.4
(:meth:`SipUri.equivalent`).  Values are frozen; parts are kept exactly as
written (escaped), so that ``str(parse_uri(s)) == s`` for canonical input.
"""

from __future__ import annotations

import ipaddress
import re
import string

import attrs

from telavox.sip.grammar import GrammarError, format_params, memoized, param_value

__all__ = [
    "AbsoluteUri",
    "SipUri",
    "TelUri",
    "Uri",
    "UriError",
    "escape",
    "format_host",
    "parse_uri",
    "split_hostport",
    "unescape",
]

Params = tuple[tuple[str, "str | None"], ...]


class UriError(GrammarError):
    """Text that is not a valid URI."""


_HEX = frozenset(string.hexdigits)
_SCHEME_CHARS = frozenset(string.ascii_letters + string.digits + "+-.")
# unreserved / user-unreserved (RFC 3261 §25.1): kept as is in user parts
_USER_SAFE = frozenset(string.ascii_letters + string.digits + "-_.!~*'()&=+$,;?/")
_PASSWORD_SAFE = frozenset(string.ascii_letters + string.digits + "-_.!~*'()&=+$,")
_PARAM_SAFE = frozenset(string.ascii_letters + string.digits + "-_.!~*'()[]/:&+$")
_HEADER_SAFE = frozenset(string.ascii_letters + string.digits + "-_.!~*'()[]/?:+$")
_FORBIDDEN = frozenset(" \t\r\n\x00<>\"")
# reserved characters (RFC 3261 §25.1) and "%": their escapes are not equivalent
# to the characters themselves (§19.1.4)
_KEEP_ESCAPED = frozenset(";/?:@&=+$,%")


def unescape(text: str) -> str:
    """Decode ``%XX`` escapes (as UTF-8).  Malformed escapes stay as written."""
    return _decode_escapes(text, frozenset())


def _comparable(text: str) -> str:
    """``text`` with the escapes of unreserved characters decoded, and the
    escapes of reserved ones written in upper case, for comparison (§19.1.4)."""
    return _decode_escapes(text, _KEEP_ESCAPED)


def _decode_escapes(text: str, keep: frozenset[str]) -> str:
    """Decode ``%XX`` escapes, except those of characters in ``keep``, which
    are rewritten with upper-case hex digits."""
    if "%" not in text:
        return text
    out = bytearray()
    raw = text.encode("utf-8")
    n = len(raw)
    i = 0
    while i < n:
        b = raw[i]
        if b == 0x25 and i + 2 < n and chr(raw[i + 1]) in _HEX and chr(raw[i + 2]) in _HEX:
            code = int(raw[i + 1 : i + 3], 16)
            if chr(code) in keep:
                out += b"%%%02X" % code
            else:
                out.append(code)
            i += 3
            continue
        out.append(b)
        i += 1
    return out.decode("utf-8", "replace")


def _host_key(host: str) -> str:
    """A host for comparison: lower case, IPv6 references by address value
    (RFC 5954 §4)."""
    h = host.lower()
    if h.startswith("["):
        try:
            return f"[{ipaddress.IPv6Address(h[1:-1])}]"
        except ValueError:
            return h
    return h


def escape(text: str, safe: frozenset[str] = _USER_SAFE) -> str:
    """Percent-escape every character of ``text`` not in ``safe`` (UTF-8)."""
    if all(c in safe for c in text):
        return text
    out = []
    for c in text:
        if c in safe:
            out.append(c)
        else:
            out.extend(f"%{b:02X}" for b in c.encode("utf-8"))
    return "".join(out)


def format_host(host: str) -> str:
    """``host`` as it goes into a URI or Via: IPv6 addresses in brackets."""
    if ":" in host and not host.startswith("["):
        return f"[{host}]"
    return host


_HOST_RE = re.compile(r"[A-Za-z0-9._-]+\Z")
_IPV6_REF_RE = re.compile(r"\[[0-9A-Fa-f:.]{2,}\]\Z")
_SCHEME_RE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*\Z")
_FORBIDDEN_RE = re.compile(r"[ \t\r\n\x00<>\"]")


def _check_host(host: str) -> str:
    if _HOST_RE.match(host) is not None:
        return host
    if not host:
        raise UriError("empty host")
    if host[0] == "[":
        if _IPV6_REF_RE.match(host) is None:
            raise UriError(f"bad IPv6 reference {host!r}")
        return host
    raise UriError(f"bad host {host!r}")


def split_hostport(text: str) -> tuple[str, int | None]:
    """Split ``host[:port]`` (IPv6 references in brackets); raises UriError."""
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise UriError("unterminated IPv6 reference")
        host = text[: end + 1]
        rest = text[end + 1 :]
        if not rest:
            return _check_host(host), None
        if rest[0] != ":":
            raise UriError(f"junk after IPv6 reference: {rest!r}")
        port_text = rest[1:]
    else:
        host, sep, port_text = text.partition(":")
        if not sep:
            return _check_host(host), None
    if not port_text.isdigit() or not port_text.isascii() or len(port_text) > 5:
        raise UriError(f"bad port {port_text!r}")
    port = int(port_text)
    if port > 65535:
        raise UriError(f"port out of range: {port}")
    return _check_host(host), port


def _parse_uri_params(text: str) -> Params:
    """Parse ``;a=b;c`` URI parameters (no quoting in URIs)."""
    params: list[tuple[str, str | None]] = []
    for part in text.split(";")[1:]:
        name, sep, value = part.partition("=")
        if not name:
            raise UriError("empty URI parameter name")
        params.append((name, value if sep else None))
    return tuple(params)


def _check_chars(text: str, what: str) -> None:
    for c in text:
        if c in _FORBIDDEN:
            raise UriError(f"invalid character {c!r} in {what}")


@attrs.frozen(slots=True)
class SipUri:
    """A ``sip:`` or ``sips:`` URI.

    ``user``/``password`` and header values are kept escaped as written; use
    :func:`unescape` (or :attr:`user_unescaped`) to read them.  ``host`` keeps
    IPv6 brackets.
    """

    host: str
    user: str | None = None
    port: int | None = None
    params: Params = ()
    headers: tuple[tuple[str, str], ...] = ()
    password: str | None = None
    scheme: str = "sip"

    @classmethod
    def parse(cls, text: str) -> SipUri:
        """Parse a SIP or SIPS URI; raises :class:`UriError`."""
        uri = parse_uri(text)
        if not isinstance(uri, SipUri):
            raise UriError(f"not a SIP URI: {text!r}")
        return uri

    @classmethod
    def build(
        cls,
        host: str,
        user: str | None = None,
        port: int | None = None,
        *,
        scheme: str = "sip",
        params: Params = (),
    ) -> SipUri:
        """A URI from unescaped parts (``user`` is escaped, ``host`` bracketed)."""
        return cls(
            host=format_host(host),
            user=None if user is None else escape(user),
            port=port,
            params=params,
            scheme=scheme,
        )

    def __str__(self) -> str:
        parts = [self.scheme, ":"]
        if self.user is not None:
            parts.append(self.user)
            if self.password is not None:
                parts.append(":")
                parts.append(self.password)
            parts.append("@")
        parts.append(self.host)
        if self.port is not None:
            parts.append(f":{self.port}")
        if self.params:
            parts.append(format_params(self.params))
        if self.headers:
            parts.append("?")
            parts.append("&".join(f"{k}={v}" for k, v in self.headers))
        return "".join(parts)

    @property
    def user_unescaped(self) -> str | None:
        """The user part with ``%XX`` escapes decoded."""
        return None if self.user is None else unescape(self.user)

    @property
    def host_bare(self) -> str:
        """The host without IPv6 brackets, lower case."""
        h = self.host
        if h.startswith("["):
            h = h[1:-1]
        return h.lower()

    @property
    def secure(self) -> bool:
        """True for ``sips:``."""
        return self.scheme == "sips"

    def param(self, name: str) -> str | None:
        """Value of URI parameter ``name`` ("" for a flag, None if absent)."""
        return param_value(self.params, name)

    @property
    def transport(self) -> str | None:
        """The ``transport`` parameter in lower case, or None."""
        t = self.param("transport")
        return t.lower() if t else None

    @property
    def lr(self) -> bool:
        """True when the URI has the loose-routing ``lr`` parameter."""
        return self.param("lr") is not None

    def with_params(self, params: Params) -> SipUri:
        """A copy with ``params`` instead of this URI's parameters."""
        return attrs.evolve(self, params=params)

    def without_headers(self) -> SipUri:
        """A copy with no ``?header=value`` part."""
        return attrs.evolve(self, headers=())

    def equivalent(self, other: object) -> bool:
        """URI equality as RFC 3261 §19.1.4 defines it."""
        if not isinstance(other, SipUri):
            return False
        if self == other:
            return True
        if self.scheme.lower() != other.scheme.lower():
            return False
        if _optional(self.user) != _optional(other.user):
            return False  # userinfo compares case-sensitively
        if _optional(self.password) != _optional(other.password):
            return False
        if _host_key(self.host) != _host_key(other.host) or self.port != other.port:
            return False
        mine = _param_map(self.params)
        theirs = _param_map(other.params)
        for special in ("user", "ttl", "method", "maddr", "transport"):
            # present in one only, or with different values: not equivalent
            if (special in mine, mine.get(special)) != (special in theirs, theirs.get(special)):
                return False
        for k in mine.keys() & theirs.keys():
            if mine[k] != theirs[k]:
                return False
        h1 = {_comparable(k).lower(): _comparable(v) for k, v in self.headers}
        h2 = {_comparable(k).lower(): _comparable(v) for k, v in other.headers}
        return h1 == h2


def _optional(text: str | None) -> str | None:
    """:func:`_comparable` of an optional part."""
    return None if text is None else _comparable(text)


def _param_map(params: Params) -> dict[str, str | None]:
    """URI parameters by lower-case name, values comparable and lower case."""
    return {
        _comparable(k).lower(): None if v is None else _comparable(v).lower()
        for k, v in params
    }


_VISUAL_SEPARATORS = str.maketrans("", "", "-.()")


@attrs.frozen(slots=True)
class TelUri:
    """A ``tel:`` URI (RFC 3966): a number and parameters."""

    number: str
    params: Params = ()

    def __str__(self) -> str:
        return f"tel:{self.number}{format_params(self.params)}"

    @property
    def is_global(self) -> bool:
        """True for a global number (``+`` followed by digits)."""
        return self.number.startswith("+")

    @property
    def digits(self) -> str:
        """The number without visual separators (RFC 3966 §5.1.1)."""
        return self.number.translate(_VISUAL_SEPARATORS)

    def param(self, name: str) -> str | None:
        """Value of parameter ``name`` ("" for a flag, None if absent)."""
        return param_value(self.params, name)

    def equivalent(self, other: object) -> bool:
        """tel URI equality (RFC 3966 §4): same digits, same parameters."""
        if not isinstance(other, TelUri):
            return False
        p1 = sorted((k.lower(), (v or "").lower()) for k, v in self.params)
        p2 = sorted((k.lower(), (v or "").lower()) for k, v in other.params)
        return self.digits.lower() == other.digits.lower() and p1 == p2


@attrs.frozen(slots=True)
class AbsoluteUri:
    """Any other URI (``mailto:``, ``urn:``, ``http:`` …), kept as text."""

    scheme: str
    rest: str

    def __str__(self) -> str:
        return f"{self.scheme}:{self.rest}"

    def equivalent(self, other: object) -> bool:
        """Case-insensitive scheme, exact rest."""
        return (
            isinstance(other, AbsoluteUri)
            and self.scheme.lower() == other.scheme.lower()
            and self.rest == other.rest
        )


Uri = SipUri | TelUri | AbsoluteUri


def _parse_uri(text: str) -> Uri:
    """Parse any URI; ``sip``/``sips``/``tel`` get their own types.

    Raises :class:`UriError` (never anything else) for invalid text.
    """
    scheme, sep, rest = text.partition(":")
    if not sep or _SCHEME_RE.match(scheme) is None:
        if sep and scheme and all(c in _SCHEME_CHARS for c in scheme):
            raise UriError(f"bad URI scheme {scheme!r}")
        raise UriError(f"not a URI: {text[:60]!r}")
    lscheme = scheme.lower()
    if _FORBIDDEN_RE.search(rest) is not None:
        _check_chars(rest, "URI")
    if lscheme in ("sip", "sips"):
        return _parse_sip(lscheme, rest)
    if lscheme == "tel":
        number, _, ptext = rest.partition(";")
        if not number:
            raise UriError("tel URI without a number")
        return TelUri(number=number, params=_parse_uri_params(";" + ptext) if ptext else ())
    if not rest:
        raise UriError(f"empty {scheme} URI")
    return AbsoluteUri(scheme=scheme, rest=rest)


parse_uri = memoized(_parse_uri)


def _parse_sip(scheme: str, rest: str) -> SipUri:
    user: str | None = None
    password: str | None = None
    at = rest.find("@")
    if at >= 0:
        userinfo = rest[:at]
        rest = rest[at + 1 :]
        user, sep, pw = userinfo.partition(":")
        if sep:
            password = pw
        if not user and password is None:
            raise UriError("empty user part before '@'")
    qmark = rest.find("?")
    headers: tuple[tuple[str, str], ...] = ()
    if qmark >= 0:
        htext = rest[qmark + 1 :]
        rest = rest[:qmark]
        hs: list[tuple[str, str]] = []
        for item in htext.split("&"):
            if not item:
                continue
            k, _, v = item.partition("=")
            if not k:
                raise UriError("empty URI header name")
            hs.append((k, v))
        headers = tuple(hs)
    semi = rest.find(";")
    if semi >= 0:
        params = _parse_uri_params(rest[semi:])
        hostport = rest[:semi]
    else:
        params = ()
        hostport = rest
    host, port = split_hostport(hostport)
    return SipUri(
        host=host,
        user=user,
        port=port,
        params=params,
        headers=headers,
        password=password,
        scheme=scheme,
    )
