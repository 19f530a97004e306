"""Typed values of the header fields the core reads: Via, CSeq, and the
name-addr fields (From, To, Contact, Route, Record-Route, Refer-To, …).

Owns each field's grammar (RFC 3261 §20 and §25.1) as a frozen value with
``parse()`` (raising :class:`HeaderError`) and ``str()``.  Parameters keep
the spelling and quoting they had, so a value re-serialises as it came.
"""

from __future__ import annotations

import re

import attrs

from telavox.sip.grammar import (
    GrammarError,
    format_params,
    has_param,
    is_token,
    memoized,
    param_value,
    parse_params,
    parse_plain_params,
    quote,
    remove_param,
    scan_quoted,
    set_param,
    unquote,
)
from telavox.sip.uri import SipUri, Uri, UriError, format_host, parse_uri, split_hostport

__all__ = [
    "BRANCH_MAGIC",
    "CSeq",
    "HeaderError",
    "NameAddr",
    "Via",
]

Params = tuple[tuple[str, "str | None"], ...]

BRANCH_MAGIC = "z9hG4bK"
"""The RFC 3261 branch magic cookie (§8.1.1.7)."""

_MAX_CSEQ = 2**31 - 1


# "SIP/2.0/<transport> <host name or IPv4>[:port][;params without quotes or spaces]"
_PLAIN_VIA = re.compile(
    r"SIP/2\.0/([A-Za-z0-9]+) ([A-Za-z0-9._-]+)(?::([0-9]{1,5}))?(;[^\"\s]*)?\Z")


class HeaderError(GrammarError):
    """A header field value that does not follow its grammar."""


@attrs.frozen(slots=True)
class Via:
    """One Via element: ``SIP/2.0/<transport> host[:port] *(;param)`` (§20.42)."""

    transport: str
    host: str
    port: int | None = None
    params: Params = ()

    @classmethod
    def parse(cls, text: str) -> Via:
        """Parse one Via element (not a comma list)."""
        return _parse_via(text)

    @classmethod
    def _parse(cls, text: str) -> Via:
        plain = _PLAIN_VIA.match(text)
        if plain is not None:
            # the usual spelling, "SIP/2.0/UDP 192.0.2.1:5060;branch=...", in one match
            port_text = plain.group(3)
            port = int(port_text) if port_text else None
            if port is None or port <= 65535:
                tail = plain.group(4)
                try:
                    params = parse_plain_params(tail) if tail else ()
                except GrammarError as e:
                    raise HeaderError(f"bad Via parameters: {e}") from None
                return cls(transport=plain.group(1).upper(), host=plain.group(2), port=port,
                           params=params)
        if text.startswith("SIP/2.0/"):
            # fast path for the usual spelling: "SIP/2.0/UDP host:port;params"
            transport, sep, rest = text[8:].partition(" ")
            if (sep and transport.isascii() and transport.isalnum()
                    and " " not in rest and "\t" not in rest):
                semi = rest.find(";")
                hostport = rest if semi < 0 else rest[:semi]
                if hostport and "@" not in hostport:
                    try:
                        host, port = split_hostport(hostport)
                    except UriError as e:
                        raise HeaderError(f"bad Via sent-by: {e}") from None
                    try:
                        params = parse_params(rest, semi) if semi >= 0 else ()
                    except GrammarError as e:
                        raise HeaderError(f"bad Via parameters: {e}") from None
                    return cls(transport=transport.upper(), host=host, port=port, params=params)
        proto, sep, rest = text.partition("/")
        if not sep or proto.strip().upper() != "SIP":
            raise HeaderError(f"bad Via protocol in {text[:60]!r}")
        version, sep, rest = rest.partition("/")
        if not sep or version.strip() != "2.0":
            raise HeaderError(f"bad Via version in {text[:60]!r}")
        rest = rest.lstrip()
        i = 0
        n = len(rest)
        while i < n and rest[i] not in " \t":
            i += 1
        transport = rest[:i].upper()
        if not is_token(transport):  # "TLS-SCTP" (RFC 4168) has a "-"
            raise HeaderError(f"bad Via transport in {text[:60]!r}")
        rest = rest[i:].strip()
        semi = rest.find(";")
        sent_by = (rest if semi < 0 else rest[:semi]).strip()
        if not sent_by:
            raise HeaderError("Via without sent-by")
        # sent-by = host [ COLON port ], where COLON may have whitespace around it
        sent_by = ":".join(part.strip(" \t") for part in sent_by.split(":"))
        try:
            uri = SipUri.parse("sip:" + sent_by)
        except UriError as e:
            raise HeaderError(f"bad Via sent-by: {e}") from None
        if uri.user is not None or uri.params or uri.headers:
            raise HeaderError(f"bad Via sent-by {sent_by!r}")
        params = _via_params(rest, semi)
        return cls(transport=transport, host=uri.host, port=uri.port, params=params)

    def __str__(self) -> str:
        port = f":{self.port}" if self.port is not None else ""
        return f"SIP/2.0/{self.transport} {self.host}{port}{format_params(self.params)}"

    def param(self, name: str) -> str | None:
        """Value of ``name`` ("" for a flag, None if absent)."""
        return param_value(self.params, name)

    @property
    def branch(self) -> str | None:
        """The branch parameter, or None."""
        return param_value(self.params, "branch")

    @property
    def received(self) -> str | None:
        """The received parameter (RFC 3261 §18.2.1), or None."""
        return param_value(self.params, "received")

    @property
    def has_rport(self) -> bool:
        """Whether the RFC 3581 rport parameter is present (as a flag asking
        for it, or filled in)."""
        return param_value(self.params, "rport") is not None

    @property
    def rport(self) -> int | None:
        """The port an RFC 3581 rport parameter was filled in with; None when
        it is absent, a bare flag, or unreadable."""
        v = param_value(self.params, "rport")
        if v and v.isdigit() and v.isascii() and len(v) <= 5:
            return int(v)
        return None

    @property
    def maddr(self) -> str | None:
        """The maddr parameter, or None."""
        return param_value(self.params, "maddr")

    @property
    def sent_by(self) -> tuple[str, int | None]:
        """``(host without brackets, port or None)``."""
        h = self.host[1:-1] if self.host.startswith("[") else self.host
        return h.lower(), self.port

    @property
    def rfc3261_branch(self) -> bool:
        """True when the branch carries the RFC 3261 magic cookie."""
        b = self.branch
        return b is not None and b.startswith(BRANCH_MAGIC)

    def with_param(self, name: str, value: str | None) -> Via:
        """A copy with ``name`` set (replaced where it stood, else appended)."""
        return attrs.evolve(self, params=set_param(self.params, name, value))

    @classmethod
    def build(cls, transport: str, host: str, port: int | None, branch: str,
              *, rport: bool = True) -> Via:
        """A Via for a request we send: ``branch`` and an empty ``rport``."""
        params: list[tuple[str, str | None]] = [("branch", branch)]
        if rport:
            params.append(("rport", None))
        return cls(transport=transport.upper(), host=format_host(host), port=port,
                   params=tuple(params))


# A Via text comes back within moments or not at all (the ACK of a 407, a
# 100/180 carrying our own Via, a retransmission): its branch is new in
# every transaction.  A short memory keeps those hits, and its entries are
# gone before the cyclic collector's next pass, where the default table's
# would each be walked once: at 800 calls/s that was 12 of the 44 tracked
# objects a call left to the collector, for fewer hits than it cost.
_VIA_MEMORY = 256
_parse_via = memoized(Via._parse, limit=_VIA_MEMORY)


def _via_params(text: str, semi: int) -> Params:
    """The ``;params`` of a Via element starting at ``text[semi]`` (none if -1)."""
    if semi < 0:
        return ()
    try:
        return parse_params(text, semi)
    except GrammarError as e:
        raise HeaderError(f"bad Via parameters: {e}") from None


@attrs.frozen(slots=True)
class CSeq:
    """``CSeq: <number> <method>`` (§20.16); numbers are < 2**31."""

    seq: int
    method: str

    @classmethod
    def parse(cls, text: str) -> CSeq:
        """Parse a CSeq value; raises HeaderError."""
        return _parse_cseq(text)

    @classmethod
    def _parse(cls, text: str) -> CSeq:
        parts = text.split()
        if len(parts) != 2:
            raise HeaderError(f"bad CSeq {text[:40]!r}")
        num, method = parts
        if not num.isdigit() or not num.isascii() or len(num) > 10:
            raise HeaderError(f"bad CSeq number {num[:20]!r}")
        seq = int(num)
        if seq > _MAX_CSEQ:
            raise HeaderError("CSeq number too large")
        return cls(seq, method)

    def __str__(self) -> str:
        return f"{self.seq} {self.method}"


_parse_cseq = memoized(CSeq._parse)


@attrs.frozen(slots=True)
class NameAddr:
    """A ``name-addr`` or ``addr-spec`` with header parameters (§20.10, §25.1).

    ``display_name`` is unquoted text (None when absent).  In the addr-spec form
    (no angle brackets) every ``;param`` belongs to the header, not the URI;
    ``str()`` always writes angle brackets.
    """

    uri: Uri
    display_name: str | None = None
    params: Params = ()

    @classmethod
    def parse(cls, text: str) -> NameAddr:
        """Parse one element (not a comma list); raises HeaderError."""
        return _parse_name_addr(text)

    @classmethod
    def _parse(cls, text: str) -> NameAddr:
        text = text.strip()
        display: str | None = None
        try:
            if text.startswith('"'):
                end = scan_quoted(text, 0)
                display = unquote(text[:end])
                rest = text[end:].lstrip()
                if not rest.startswith("<"):
                    raise HeaderError("quoted display name without <URI>")
            else:
                lt = text.find("<")
                rest = text
                if lt > 0:
                    display = text[:lt].strip() or None
                    rest = text[lt:]
            if rest.startswith("<"):
                gt = rest.find(">")
                if gt < 0:
                    raise HeaderError("unterminated '<'")
                uri_text = rest[1:gt].strip()
                ptext = rest[gt + 1 :]
                params = parse_params(ptext) if ptext.strip() else ()
            else:
                semi = rest.find(";")
                # the addr-spec may be followed by whitespace before ";" (SEMI = SWS ";" SWS)
                uri_text = (rest if semi < 0 else rest[:semi]).rstrip(" \t")
                params = parse_params(rest, semi) if semi >= 0 else ()
                if "?" in uri_text or "," in uri_text:
                    raise HeaderError("addr-spec with '?' or ',' needs <...>")
            uri = parse_uri(uri_text)
        except HeaderError:
            raise
        except GrammarError as e:
            raise HeaderError(str(e)) from None
        return cls(uri=uri, display_name=display, params=params)

    def __str__(self) -> str:
        if self.display_name:
            disp = quote(self.display_name) + " "
        elif self.display_name == "":
            disp = '"" '
        else:
            disp = ""
        return f"{disp}<{self.uri}>{format_params(self.params)}"

    def param(self, name: str) -> str | None:
        """Value of header parameter ``name`` ("" for a flag, None if absent)."""
        return param_value(self.params, name)

    def has_param(self, name: str) -> bool:
        """True when header parameter ``name`` is present."""
        return has_param(self.params, name)

    @property
    def tag(self) -> str | None:
        """The ``tag`` parameter (From/To), or None."""
        return param_value(self.params, "tag")

    def with_tag(self, tag: str) -> NameAddr:
        """A copy carrying ``;tag=<tag>``."""
        return attrs.evolve(self, params=set_param(self.params, "tag", tag))

    def with_param(self, name: str, value: str | None) -> NameAddr:
        """A copy with header parameter ``name`` set."""
        return attrs.evolve(self, params=set_param(self.params, name, value))

    def without_param(self, name: str) -> NameAddr:
        """A copy without header parameter ``name``."""
        return attrs.evolve(self, params=remove_param(self.params, name))


_parse_name_addr = memoized(NameAddr._parse)
