"""Digest authentication header values: parsing and formatting.

Owns the text form of the HTTP Digest scheme as SIP uses it (RFC 3261 §22.4,
§25.1 ``challenge``/``credentials``; RFC 2617 §3.2.1-3.2.2; RFC 7616 §3.3-3.4;
RFC 8760 §2): the frozen records :class:`Challenge` (a ``WWW-Authenticate`` or
``Proxy-Authenticate`` value) and :class:`Credentials` (an ``Authorization`` or
``Proxy-Authorization`` value), their parsers, and the algorithm names
(RFC 7616 §3.3, RFC 8760 §2.2).  Hashing, nonces and verification live in
:mod:`telavox.sip.digest`, which re-exports everything public here.

The parsers are total: whatever ``str`` they are given, they return a record
or raise :class:`DigestError` saying what is wrong.  Records check their own
fields when built, so a record that exists always formats to a header value
that parses back to an equal record.

Text rules.  Header values may hold UTF-8 text (as ``str``) and lone
surrogates U+DC80-U+DCFF (bytes that a transport decoded with
``surrogateescape``); control characters other than HT are refused
everywhere, so a formatted value can never split a header line.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import attrs

from telavox.sip.grammar import GrammarError, is_token, quote, quote_if_needed, scan_quoted, unquote

__all__ = [
    "ALGORITHMS",
    "Challenge",
    "Credentials",
    "DigestError",
    "base_algorithm",
    "canonical_algorithm",
    "digest_hex_length",
    "is_session_algorithm",
    "parse_challenge",
    "parse_credentials",
]


class DigestError(ValueError):
    """A Digest header value or record field that breaks the grammar or the rules."""


# Canonical spelling of every algorithm this module knows (RFC 7616 §3.3,
# RFC 8760 §2.2), keyed by the lower-case form used for matching.
_ALGORITHM_NAMES: dict[str, str] = {
    name.lower(): name
    for name in (
        "MD5",
        "MD5-sess",
        "SHA-256",
        "SHA-256-sess",
        "SHA-512-256",
        "SHA-512-256-sess",
    )
}

#: Every algorithm name this module can parse, in canonical spelling.
ALGORITHMS: tuple[str, ...] = tuple(_ALGORITHM_NAMES.values())

# hex digits of a digest, by canonical algorithm name
_HEX_LENGTH = {"MD5": 32, "SHA-256": 64, "SHA-512-256": 64}
_HEX_LENGTH.update({f"{name}-sess": length for name, length in _HEX_LENGTH.items()})

# C0 controls except HT, DEL, and the surrogates that surrogateescape cannot
# turn back into bytes.
_FORBIDDEN = re.compile("[\x00-\x08\x0a-\x1f\x7f\ud800-\udc7f\udd00-\udfff]")
_NC = re.compile("[0-9a-fA-F]{8}")
_LHEX = re.compile("[0-9a-f]+")
_WS = " \t"
_DOMAIN_SPLIT = re.compile("[ \t]+")

_CHALLENGE_KEYS = frozenset(
    ("realm", "nonce", "algorithm", "qop", "opaque", "stale", "domain", "userhash")
)
_CREDENTIAL_KEYS = frozenset(
    (
        "username",
        "realm",
        "nonce",
        "uri",
        "response",
        "algorithm",
        "cnonce",
        "nc",
        "qop",
        "opaque",
        "userhash",
    )
)


def canonical_algorithm(name: str) -> str:
    """The canonical spelling of algorithm ``name`` (matched case-insensitively).

    Raises DigestError for a name that is not one of :data:`ALGORITHMS`.
    """
    try:
        return _ALGORITHM_NAMES[name.lower()]
    except KeyError:
        raise DigestError(f"unsupported algorithm {name[:40]!r}") from None


def is_session_algorithm(algorithm: str) -> bool:
    """True for the ``-sess`` variants (RFC 7616 §3.4.2)."""
    return canonical_algorithm(algorithm).endswith("-sess")


def base_algorithm(algorithm: str) -> str:
    """The hash behind ``algorithm``: ``MD5``, ``SHA-256`` or ``SHA-512-256``."""
    name = canonical_algorithm(algorithm)
    return name[: -len("-sess")] if name.endswith("-sess") else name


def digest_hex_length(algorithm: str) -> int:
    """How many hex digits a digest of ``algorithm`` has (32 or 64)."""
    return _HEX_LENGTH[base_algorithm(algorithm)]


# --- field checks -------------------------------------------------------------


def _check_text(what: str, value: str, *, empty_ok: bool = True) -> None:
    if not empty_ok and not value:
        raise DigestError(f"empty {what}")
    if _FORBIDDEN.search(value):
        raise DigestError(f"control character or invalid text in {what}")


def _check_extra(extra: tuple[tuple[str, str], ...], known: frozenset[str]) -> None:
    seen: set[str] = set()
    for name, value in extra:
        if not is_token(name) or name != name.lower():
            raise DigestError(f"extra parameter name {name[:40]!r} is not a lower-case token")
        if name in known or name in seen:
            raise DigestError(f"duplicate parameter {name!r}")
        seen.add(name)
        _check_text(f"parameter {name!r}", value)


def _tuple_str(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(items)


def _tuple_pairs(items: Iterable[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
    return tuple((k, v) for k, v in items)


def _lower(text: str) -> str:
    return text.lower()


def _format_extra(extra: tuple[tuple[str, str], ...]) -> list[str]:
    return [f"{name}={quote_if_needed(value)}" for name, value in extra]


# --- records ------------------------------------------------------------------


@attrs.frozen
class Challenge:
    """One Digest challenge (RFC 7616 §3.3; RFC 3261 §22.4, §25.1 ``digest-cln``).

    ``algorithm`` is canonical (``MD5`` when the field was absent); ``qop`` is
    the offered options in order (empty: an RFC 2069 server); ``domain`` the
    space-separated URIs; ``extra`` the unknown parameters as lower-case name
    and unquoted value, in order.  Building one checks every field and raises
    DigestError for a bad one.  ``str()`` gives the header value.
    """

    realm: str
    nonce: str
    algorithm: str = attrs.field(default="MD5", converter=canonical_algorithm)
    qop: tuple[str, ...] = attrs.field(default=(), converter=_tuple_str)
    opaque: str | None = None
    stale: bool = False
    domain: tuple[str, ...] = attrs.field(default=(), converter=_tuple_str)
    userhash: bool = False
    extra: tuple[tuple[str, str], ...] = attrs.field(default=(), converter=_tuple_pairs)

    def __attrs_post_init__(self) -> None:
        _check_text("realm", self.realm)
        _check_text("nonce", self.nonce, empty_ok=False)
        for option in self.qop:
            if not is_token(option):
                raise DigestError(f"qop option {option[:40]!r} is not a token")
        if self.opaque is not None:
            _check_text("opaque", self.opaque)
        for uri in self.domain:
            _check_text("domain", uri, empty_ok=False)
            if " " in uri or "\t" in uri:
                raise DigestError("domain URI contains white space")
        _check_extra(self.extra, _CHALLENGE_KEYS)

    def format(self) -> str:
        """The header field value, e.g. ``Digest realm="x", nonce="y", algorithm=MD5``."""
        parts = [
            f"realm={quote(self.realm)}",
            f"nonce={quote(self.nonce)}",
            f"algorithm={self.algorithm}",
        ]
        if self.qop:
            parts.append(f"qop={quote(','.join(self.qop))}")
        if self.opaque is not None:
            parts.append(f"opaque={quote(self.opaque)}")
        if self.stale:
            parts.append("stale=true")
        if self.domain:
            parts.append(f"domain={quote(' '.join(self.domain))}")
        if self.userhash:
            parts.append("userhash=true")
        parts.extend(_format_extra(self.extra))
        return "Digest " + ", ".join(parts)

    def __str__(self) -> str:
        return self.format()


@attrs.frozen
class Credentials:
    """One Digest ``Authorization`` answer (RFC 7616 §3.4; RFC 3261 §25.1 ``dig-resp``).

    ``algorithm`` is canonical (``MD5`` when absent); ``response`` is lower-case
    hex of the algorithm's length; ``nc`` is the 8 hex digits exactly as sent
    (they enter the hash as text; :attr:`nc_count` is the number); ``qop`` is
    as sent, and when present ``cnonce`` and ``nc`` are too; ``-sess``
    algorithms need ``cnonce``.  ``userhash`` says ``username`` is the
    RFC 7616 §3.4.4 hash.  ``extra`` holds unknown parameters (lower-case name,
    unquoted value).  Building one checks every field and raises DigestError
    for a bad one.  ``str()`` gives the header value.
    """

    username: str
    realm: str
    nonce: str
    uri: str
    response: str = attrs.field(converter=_lower)
    algorithm: str = attrs.field(default="MD5", converter=canonical_algorithm)
    cnonce: str | None = None
    nc: str | None = None
    qop: str | None = None
    opaque: str | None = None
    userhash: bool = False
    extra: tuple[tuple[str, str], ...] = attrs.field(default=(), converter=_tuple_pairs)

    def __attrs_post_init__(self) -> None:
        texts = {"username": self.username, "realm": self.realm, "nonce": self.nonce,
                 "uri": self.uri, "cnonce": self.cnonce, "opaque": self.opaque}
        if _FORBIDDEN.search("\t".join(v for v in texts.values() if v is not None)):
            # HT joins them as it is allowed: one search finds a bad field,
            # then the field is named
            for what, value in texts.items():
                if value is not None:
                    _check_text(what, value)
        if not self.nonce:
            raise DigestError("empty nonce")
        if not self.uri:
            raise DigestError("empty uri")
        if self.cnonce == "":
            raise DigestError("empty cnonce")
        want = _HEX_LENGTH[self.algorithm]
        if len(self.response) != want or not _LHEX.fullmatch(self.response):
            raise DigestError(
                f"response must be {want} hex digits for {self.algorithm}, "
                f"got {len(self.response)} characters"
            )
        if self.nc is not None and not _NC.fullmatch(self.nc):
            raise DigestError("bad nc (must be 8 hex digits)")
        if self.qop is not None:
            if not is_token(self.qop):
                raise DigestError("qop is not a token")
            if self.cnonce is None:
                raise DigestError("missing cnonce (required with qop)")
            if self.nc is None:
                raise DigestError("missing nc (required with qop)")
        if self.cnonce is None and self.algorithm.endswith("-sess"):
            raise DigestError(f"missing cnonce (required by {self.algorithm})")
        if self.extra:
            _check_extra(self.extra, _CREDENTIAL_KEYS)

    @property
    def nc_count(self) -> int | None:
        """The nonce count as a number, or None when ``nc`` is absent."""
        return None if self.nc is None else int(self.nc, 16)

    def format(self) -> str:
        """The header field value, e.g. ``Digest username="a", realm="x", ...``."""
        parts = [
            f"username={quote(self.username)}",
            f"realm={quote(self.realm)}",
            f"nonce={quote(self.nonce)}",
            f"uri={quote(self.uri)}",
            f"response={quote(self.response)}",
            f"algorithm={self.algorithm}",
        ]
        if self.cnonce is not None:
            parts.append(f"cnonce={quote(self.cnonce)}")
        if self.opaque is not None:
            parts.append(f"opaque={quote(self.opaque)}")
        if self.qop is not None:
            parts.append(f"qop={self.qop}")
        if self.nc is not None:
            parts.append(f"nc={self.nc}")
        if self.userhash:
            parts.append("userhash=true")
        parts.extend(_format_extra(self.extra))
        return "Digest " + ", ".join(parts)

    def __str__(self) -> str:
        return self.format()


# --- parsing ------------------------------------------------------------------


_SCHEME_RE = re.compile(r"[ \t]*[Dd][Ii][Gg][Ee][Ss][Tt][ \t]+")
# one auth-param of the usual spelling and the comma (or end) after it: a
# token name, and a token or a quoted string without backslashes as its
# value (the groups: name, quoted text, token value)
_PARAM_RE = re.compile(
    r'[ \t]*([A-Za-z0-9\-.!%*_+`\'~]+)[ \t]*=[ \t]*(?:"([^"\\]*)"|([^\s,"]+))[ \t]*(?:,|\Z)')


def _split_fast(value: str) -> dict[str, str] | None:
    """The common, well-formed case in one pass of one regular expression;
    None sends the value to the careful parser (which also names the
    problem).

    Splitting at the parameters leaves what lies between them: all of it
    empty means the parameters follow one another with nothing else
    around, so the value is exactly that list.
    """
    head = _SCHEME_RE.match(value)
    if head is None:
        return None
    parts = _PARAM_RE.split(value[head.end():])  # between, name, quoted, token, between, ...
    if any(parts[0::4]):
        return None
    params = {name.lower(): token if quoted is None else quoted
              for name, quoted, token in zip(parts[1::4], parts[2::4], parts[3::4], strict=True)}
    # a name twice makes the table shorter than the list
    return params if params and 4 * len(params) + 1 == len(parts) else None


def _split_auth_params(value: str) -> dict[str, str]:
    """Check the ``Digest`` scheme and return its auth-params.

    Keys are lower-cased names in order of appearance; values are unquoted.
    Empty list elements (``a=1,,b=2``) are skipped (RFC 7230 §7).
    """
    if _FORBIDDEN.search(value):
        raise DigestError("control character or invalid text in header value")
    fast = _split_fast(value)
    if fast is not None:
        return fast
    n = len(value)
    i = 0
    while i < n and value[i] in _WS:
        i += 1
    start = i
    while i < n and value[i] not in _WS:
        i += 1
    scheme = value[start:i]
    if not scheme:
        raise DigestError("empty header value")
    if scheme.lower() != "digest":
        raise DigestError(f"unsupported scheme {scheme[:20]!r} (expected Digest)")
    params: dict[str, str] = {}
    while True:
        while i < n and (value[i] in _WS or value[i] == ","):
            i += 1
        if i >= n:
            return params
        start = i
        while i < n and value[i] not in _WS and value[i] not in '=,"':
            i += 1
        name = value[start:i]
        if not is_token(name):
            raise DigestError(f"bad parameter name {value[start : start + 20]!r}")
        while i < n and value[i] in _WS:
            i += 1
        if i >= n or value[i] != "=":
            raise DigestError(f"parameter {name[:40]!r} has no '=value'")
        i += 1
        while i < n and value[i] in _WS:
            i += 1
        if i < n and value[i] == '"':
            try:
                end = scan_quoted(value, i)
                text = unquote(value[i:end])
            except GrammarError:
                raise DigestError(f"unterminated quoted string in {name[:40]!r}") from None
            i = end
        else:
            start = i
            while i < n and value[i] not in _WS and value[i] not in ',"':
                i += 1
            text = value[start:i]
            if not text:
                raise DigestError(f"parameter {name[:40]!r} has an empty value")
        while i < n and value[i] in _WS:
            i += 1
        if i < n and value[i] != ",":
            hint = " (missing or stray quote?)" if '"' in value[i:] else ""
            raise DigestError(f"expected ',' after parameter {name[:40]!r}{hint}")
        key = name.lower()
        if key in params:
            raise DigestError(f"duplicate parameter {key!r}")
        params[key] = text


def _need(params: dict[str, str], name: str) -> str:
    try:
        return params[name]
    except KeyError:
        raise DigestError(f"missing {name}") from None


def _flag(text: str | None) -> bool:
    # RFC 2617 §3.2.1: anything but TRUE (case-insensitive) counts as false.
    return text is not None and text.lower() == "true"


def _extra(params: dict[str, str], known: frozenset[str]) -> tuple[tuple[str, str], ...]:
    return tuple((k, v) for k, v in params.items() if k not in known)


def parse_challenge(value: str) -> Challenge:
    """Parse one ``WWW-Authenticate``/``Proxy-Authenticate`` field value.

    Parameter names are case-insensitive and may come in any order, quoted or
    not.  Raises DigestError (and nothing else) for anything malformed: a
    scheme other than Digest, a missing realm or nonce, a duplicate parameter,
    an unterminated quote, an unsupported algorithm, and so on.
    """
    params = _split_auth_params(value)
    realm = _need(params, "realm")
    nonce = _need(params, "nonce")
    qop_text = params.get("qop", "")
    qop = tuple(part.strip(_WS) for part in qop_text.split(","))
    qop = tuple(part for part in qop if part)
    domain_text = params.get("domain", "").strip(_WS)
    domain = tuple(_DOMAIN_SPLIT.split(domain_text)) if domain_text else ()
    return Challenge(
        realm=realm,
        nonce=nonce,
        algorithm=params.get("algorithm", "MD5"),
        qop=qop,
        opaque=params.get("opaque"),
        stale=_flag(params.get("stale")),
        domain=domain,
        userhash=_flag(params.get("userhash")),
        extra=_extra(params, _CHALLENGE_KEYS),
    )


def parse_credentials(value: str) -> Credentials:
    """Parse one ``Authorization``/``Proxy-Authorization`` field value.

    Parameter names are case-insensitive and may come in any order; tokens may
    be quoted and quoted strings may be bare, as phones in the field do.
    Raises DigestError (and nothing else) for anything malformed: a missing
    username, realm, nonce, uri or response, a duplicate parameter, an
    unterminated quote, a bad nc, an unsupported algorithm, a response of the
    wrong length for the algorithm, and so on.
    """
    params = _split_auth_params(value)
    fields = {name: _need(params, name) for name in ("username", "realm", "nonce", "uri")}
    response = _need(params, "response")
    return Credentials(
        username=fields["username"],
        realm=fields["realm"],
        nonce=fields["nonce"],
        uri=fields["uri"],
        response=response,
        algorithm=params.get("algorithm", "MD5"),
        cnonce=params.get("cnonce"),
        nc=params.get("nc"),
        qop=params.get("qop"),
        opaque=params.get("opaque"),
        userhash=_flag(params.get("userhash")),
        extra=_extra(params, _CREDENTIAL_KEYS),
    )
