"""SIP requests and responses (RFC 3261 §7) and the rules for building
responses (§8.2.6) and requests' standard fields (§8.1.1).

Owns :class:`Request`, :class:`Response`, their serialisation, the reason
phrases of the status codes, and :func:`make_response`.  Messages are mutable
containers (a proxy edits Via, Route and Max-Forwards in place); whoever
hands a message on gives up ownership, and :meth:`Message.copy` is cheap.
Typed views of header fields (:class:`~telavox.sip.hdrtypes.Via`, ``CSeq``,
``NameAddr``) are parsed on demand, so a proxy only pays for what it reads.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import ClassVar, TypeVar

from telavox.sip.grammar import GrammarError, memoized
from telavox.sip.hdrtypes import BRANCH_MAGIC, CSeq, HeaderError, NameAddr, Via
from telavox.sip.headers import Headers
from telavox.sip.randomness import random_hex
from telavox.sip.uri import Uri, UriError, parse_uri

_V = TypeVar("_V")
_TAG = re.compile(r";[ \t]*tag[ \t]*=[ \t]*([^;, \t]+)[ \t]*(?:;|$)", re.IGNORECASE)

__all__ = [
    "REASON_PHRASES",
    "Message",
    "Request",
    "Response",
    "make_response",
    "new_branch",
    "new_tag",
]

REASON_PHRASES: dict[int, str] = {
    100: "Trying", 180: "Ringing", 181: "Call Is Being Forwarded", 182: "Queued",
    183: "Session Progress", 199: "Early Dialog Terminated",
    200: "OK", 202: "Accepted", 204: "No Notification",
    300: "Multiple Choices", 301: "Moved Permanently", 302: "Moved Temporarily",
    305: "Use Proxy", 380: "Alternative Service",
    400: "Bad Request", 401: "Unauthorized", 402: "Payment Required", 403: "Forbidden",
    404: "Not Found", 405: "Method Not Allowed", 406: "Not Acceptable",
    407: "Proxy Authentication Required", 408: "Request Timeout", 410: "Gone",
    412: "Conditional Request Failed", 413: "Request Entity Too Large",
    414: "Request-URI Too Long", 415: "Unsupported Media Type",
    416: "Unsupported URI Scheme", 417: "Unknown Resource-Priority", 420: "Bad Extension",
    421: "Extension Required", 422: "Session Interval Too Small", 423: "Interval Too Brief",
    428: "Use Identity Header", 429: "Provide Referrer Identity", 430: "Flow Failed",
    433: "Anonymity Disallowed", 436: "Bad Identity-Info", 437: "Unsupported Certificate",
    438: "Invalid Identity Header", 439: "First Hop Lacks Outbound Support",
    440: "Max-Breadth Exceeded", 469: "Bad Info Package", 470: "Consent Needed",
    480: "Temporarily Unavailable", 481: "Call/Transaction Does Not Exist",
    482: "Loop Detected", 483: "Too Many Hops", 484: "Address Incomplete", 485: "Ambiguous",
    486: "Busy Here", 487: "Request Terminated", 488: "Not Acceptable Here",
    489: "Bad Event", 491: "Request Pending", 493: "Undecipherable",
    494: "Security Agreement Required",
    500: "Server Internal Error", 501: "Not Implemented", 502: "Bad Gateway",
    503: "Service Unavailable", 504: "Server Time-out", 505: "Version Not Supported",
    513: "Message Too Large", 555: "Push Notification Service Not Supported",
    580: "Precondition Failure",
    600: "Busy Everywhere", 603: "Decline", 604: "Does Not Exist Anywhere",
    606: "Not Acceptable", 607: "Unwanted", 608: "Rejected",
}  # fmt: skip


def new_branch() -> str:
    """A fresh RFC 3261 branch: the magic cookie and 64 random bits."""
    return BRANCH_MAGIC + random_hex(8)


def new_tag() -> str:
    """A fresh From/To tag (64 random bits; §19.3 asks for at least 32)."""
    return random_hex(8)


class Message:
    """What requests and responses share: headers, body and typed views.

    ``headers`` is a :class:`~telavox.sip.headers.Headers`; ``body`` is bytes.
    Content-Length is written by :meth:`serialize` from the body, so it is
    never out of step.  Typed accessors raise
    :class:`~telavox.sip.hdrtypes.HeaderError` for malformed fields and
    ``KeyError`` for missing mandatory ones.
    """

    __slots__ = ("body", "headers")

    is_request: ClassVar[bool] = False

    def __init__(self, headers: Headers | None = None, body: bytes = b"") -> None:
        self.headers = headers if headers is not None else Headers()
        self.body = body

    # -- serialisation ---------------------------------------------------------

    def start_line(self) -> str:
        """The request line or status line, without CRLF."""
        raise NotImplementedError

    def serialize(self) -> bytes:
        """The message as bytes on the wire, Content-Length set from the body."""
        lines = [self.start_line()]
        cl_done = False
        for key, name, value in self.headers.entries():
            if key == "content-length":
                if not cl_done:
                    lines.append(f"Content-Length: {len(self.body)}")
                    cl_done = True
                continue
            lines.append(f"{name}: {value}")
        if not cl_done:
            lines.append(f"Content-Length: {len(self.body)}")
        lines.append("\r\n")
        head = "\r\n".join(lines).encode("utf-8")
        return head + self.body if self.body else head

    __bytes__ = serialize

    def _same(self, other: Message) -> bool:
        """Headers (but Content-Length) and body equal."""
        if self.body != other.body:
            return False
        mine = [(k, v) for k, _, v in self.headers.entries() if k != "content-length"]
        theirs = [(k, v) for k, _, v in other.headers.entries() if k != "content-length"]
        return mine == theirs

    # -- typed views -------------------------------------------------------------

    def _required(self, name: str) -> str:
        value = self.headers.get(name)
        if value is None:
            raise KeyError(name)
        return value

    def _elements(self, name: str) -> list[str]:
        """The elements of list-valued field ``name``; HeaderError for bad quoting."""
        try:
            return self.headers.values(name)
        except GrammarError as e:
            raise HeaderError(f"bad {name} header: {e}") from None

    @property
    def call_id(self) -> str:
        """The Call-ID value."""
        return self._required("Call-ID")

    def _cached(self, field: str, build: Callable[[], _V]) -> _V:
        """The parsed view of ``field`` (a field key), built once per value of
        the field: the headers drop a field's view when the field changes."""
        views = self.headers.views
        cached = views.get(field)
        if cached is not None:
            return cached  # type: ignore[return-value]
        value = build()
        views[field] = value
        return value

    @property
    def cseq(self) -> CSeq:
        """The parsed CSeq."""
        return self._cached("cseq", lambda: CSeq.parse(self._required("CSeq")))

    @property
    def top_via(self) -> Via:
        """The first Via element (HeaderError when Via is there but empty)."""
        return self._cached("via", self._parse_top_via)

    def _parse_top_via(self) -> Via:
        try:
            text = self.headers.first_value("Via")
        except GrammarError as e:
            raise HeaderError(str(e)) from None
        if text is None:
            if "Via" in self.headers:
                raise HeaderError("empty Via header")
            raise KeyError("Via")
        return Via.parse(text)

    def push_via(self, via: Via) -> None:
        """Put ``via`` on top of the Via fields (a request we send on)."""
        self.headers.insert_at_top("Via", str(via))
        self.headers.views["via"] = via

    def set_top_via(self, via: Via, text: str | None = None) -> None:
        """Replace the first Via element (e.g. after adding received/rport);
        ``text`` is its wire form when the caller has it, else ``str(via)``."""
        self.headers.replace_first_value("Via", str(via) if text is None else text)
        self.headers.views["via"] = via

    @property
    def vias(self) -> list[Via]:
        """Every Via element, top first."""
        return [Via.parse(v) for v in self._elements("Via")]

    @property
    def from_(self) -> NameAddr:
        """The From field."""
        return self._cached("from", lambda: NameAddr.parse(self._required("From")))

    @property
    def to(self) -> NameAddr:
        """The To field."""
        return self._cached("to", lambda: NameAddr.parse(self._required("To")))

    @property
    def from_tag(self) -> str | None:
        """The From tag, or None."""
        return self._tag("From")

    @property
    def to_tag(self) -> str | None:
        """The To tag, or None."""
        return self._tag("To")

    def _tag(self, name: str) -> str | None:
        value = self._required(name)
        if "tag" not in value.lower():
            return None  # no tag parameter can be there: no need to parse
        return _field_tag(value)

    @property
    def contacts(self) -> list[NameAddr]:
        """Every Contact element (empty for none and for ``*``)."""
        values = self._elements("Contact")
        if values == ["*"]:
            return []
        return [NameAddr.parse(v) for v in values]

    @property
    def contact_star(self) -> bool:
        """True for ``Contact: *`` (REGISTER removing every binding)."""
        return self._elements("Contact") == ["*"]

    def route_set(self, name: str = "Route") -> list[NameAddr]:
        """Route (or Record-Route) elements in order."""
        return [NameAddr.parse(v) for v in self._elements(name)]

    @property
    def content_type(self) -> str | None:
        """The media type of the body in lower case, without parameters."""
        value = self.headers.get("Content-Type")
        if value is None:
            return None
        return value.split(";", 1)[0].strip().lower()

    def int_header(self, name: str) -> int | None:
        """An integer-valued field (Max-Forwards, Expires, …) or None if absent.

        Raises HeaderError when present but not a non-negative integer that
        fits in 32 bits.
        """
        value = self.headers.get(name)
        if value is None:
            return None
        value = value.strip()
        if not value.isdigit() or not value.isascii() or len(value) > 10:
            raise HeaderError(f"bad {name} value {value[:20]!r}")
        number = int(value)
        if number > 2**32 - 1:
            raise HeaderError(f"{name} value too large")
        return number

    def option_tags(self, name: str) -> list[str]:
        """Option tags of Supported/Require/Proxy-Require/Unsupported, lower case."""
        return [v.lower() for v in self._elements(name)]


def _tag_of(value: str) -> str | None:
    """The ``tag`` parameter of a From or To value (HeaderError if malformed)."""
    # the header parameters follow the last ">" (or the addr-spec)
    params = value[value.rfind(">") + 1:]
    if '"' not in params:
        found = _TAG.search(params)
        if found is not None:
            return found.group(1)
        if "tag" not in params.lower():
            return None
    return NameAddr.parse(value).tag


# From and To come back in every message of a dialog
_field_tag = memoized(_tag_of)


class Request(Message):
    """A SIP request.  ``uri`` is parsed on first use; ``uri_text`` is the
    Request-URI as written."""

    __slots__ = ("_uri", "method", "uri_text", "version")

    is_request: ClassVar[bool] = True

    def __init__(
        self,
        method: str,
        uri: Uri | str,
        headers: Headers | None = None,
        body: bytes = b"",
        version: str = "SIP/2.0",
    ) -> None:
        super().__init__(headers, body)
        self.method = method
        self.version = version
        if isinstance(uri, str):
            self.uri_text = uri
            self._uri: Uri | None = None
        else:
            self.uri_text = str(uri)
            self._uri = uri

    @property
    def uri(self) -> Uri:
        """The parsed Request-URI (raises UriError if it is malformed)."""
        if self._uri is None:
            self._uri = parse_uri(self.uri_text)
        return self._uri

    @uri.setter
    def uri(self, value: Uri) -> None:
        self._uri = value
        self.uri_text = str(value)

    def uri_valid(self) -> bool:
        """True when the Request-URI parses."""
        try:
            self.uri  # noqa: B018
        except UriError:
            return False
        return True

    def start_line(self) -> str:
        return f"{self.method} {self.uri_text} {self.version}"

    def copy(self) -> Request:
        """An independent copy (headers list copied, values shared)."""
        r = Request(self.method, self.uri_text, self.headers.copy(), self.body, self.version)
        r._uri = self._uri
        return r

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Request):
            return NotImplemented
        return (
            self.method == other.method
            and self.uri_text == other.uri_text
            and self.version == other.version
            and self._same(other)
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.uri_text} call-id={self.headers.get('Call-ID')}>"


class Response(Message):
    """A SIP response."""

    __slots__ = ("reason", "status", "version")

    def __init__(
        self,
        status: int,
        reason: str | None = None,
        headers: Headers | None = None,
        body: bytes = b"",
        version: str = "SIP/2.0",
    ) -> None:
        super().__init__(headers, body)
        self.status = status
        self.reason = REASON_PHRASES.get(status, "Unknown") if reason is None else reason
        self.version = version

    def start_line(self) -> str:
        return f"{self.version} {self.status} {self.reason}"

    @property
    def provisional(self) -> bool:
        """1xx."""
        return self.status < 200

    @property
    def success(self) -> bool:
        """2xx."""
        return 200 <= self.status < 300

    def copy(self) -> Response:
        """An independent copy (headers list copied, values shared)."""
        return Response(self.status, self.reason, self.headers.copy(), self.body, self.version)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Response):
            return NotImplemented
        return (
            self.status == other.status
            and self.reason == other.reason
            and self.version == other.version
            and self._same(other)
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"<Response {self.status} {self.reason} call-id={self.headers.get('Call-ID')}>"


def make_response(
    request: Request,
    status: int,
    reason: str | None = None,
    *,
    to_tag: str | None = None,
    extra: tuple[tuple[str, str], ...] = (),
    body: bytes = b"",
) -> Response:
    """Build a response to ``request`` as RFC 3261 §8.2.6.2 says.

    Copies every Via, From, Call-ID and CSeq, and To (adding ``to_tag`` when
    the request's To has none and the status is above 100); a 100 Trying also
    copies Timestamp (§8.2.6.1).  ``extra`` headers are appended in order.
    Works on partially parsed requests (fields missing are left out), so it can
    answer a malformed request with 400.
    """
    h = Headers()
    items = h.building()
    tagged = False
    for key, name, value in request.headers.entries():
        if key in ("via", "from", "call-id", "cseq"):
            items.append((key, name, value))
        elif key == "to":
            if to_tag is not None and status > 100 and not tagged:
                tagged = True
                try:
                    if request.to.tag is None:
                        # a header parameter after the name-addr or addr-spec
                        value = f"{value};tag={to_tag}"
                except (HeaderError, KeyError):
                    pass
            items.append((key, name, value))
        elif key == "timestamp" and status == 100:
            items.append((key, name, value))
    for name, value in extra:
        h.add(name, value)
    return Response(status, reason, h, body)


def _copy_fields(source: Message, target: Headers, names: tuple[str, ...]) -> None:
    for key, name, value in source.headers.entries():
        if key in names:
            target.building().append((key, name, value))


def make_cancel(invite: Request) -> Request:
    """The CANCEL of a pending INVITE we sent (RFC 3261 §9.1).

    Same Request-URI, Call-ID, From, To and CSeq number; only the top Via (so
    the same branch); the INVITE's Route fields.
    """
    h = Headers()
    top = invite.headers.first_value("Via")
    if top is not None:
        h.add("Via", top)
    h.add("Max-Forwards", "70")
    _copy_fields(invite, h, ("from", "to", "call-id"))
    h.add("CSeq", f"{invite.cseq.seq} CANCEL")
    _copy_fields(invite, h, ("route",))
    return Request("CANCEL", invite.uri_text, h)


def make_error_ack(invite: Request, response: Response) -> Request:
    """The ACK a client INVITE transaction sends for a 3xx–6xx (§17.1.1.3).

    Same Request-URI, Call-ID, From and CSeq number, To from the response
    (with its tag), the INVITE's top Via only and its Route fields.
    """
    h = Headers()
    top = invite.headers.first_value("Via")
    if top is not None:
        h.add("Via", top)
    h.add("Max-Forwards", "70")
    _copy_fields(invite, h, ("from",))
    to = response.headers.get("To")
    if to is not None:
        h.add("To", to)
    _copy_fields(invite, h, ("call-id",))
    h.add("CSeq", f"{invite.cseq.seq} ACK")
    _copy_fields(invite, h, ("route",))
    return Request("ACK", invite.uri_text, h)
