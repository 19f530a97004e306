"""Bytes to messages: :func:`parse_message` for one datagram or framed
message, and :class:`StreamFramer` for TCP/TLS byte streams (RFC 3261 §7.5,
§18.3, RFC 5626 §3.5.1 keep-alives).

The parser is total: any input gives a message or raises
:class:`~telavox.sip.errors.ParseError`, never another exception.  A
``ParseError`` carries the status to answer with (400, 505, 413 …), a reason
phrase naming what is wrong, and what could be read of the message so the
caller can build that answer when it is a request with a usable Via.

It checks what every message must have to be handled at all (start line,
Via, From, To, Call-ID, CSeq matching the method, a sane Content-Length) and
leaves the rest (URIs, name-addrs, other fields) to be parsed lazily by whoever
reads them.  Start lines and header lines already read are remembered
(bounded), since most of them come back in every message of a call.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from telavox.sip.errors import ParseError
from telavox.sip.grammar import memoized
from telavox.sip.hdrtypes import CSeq, HeaderError
from telavox.sip.headers import Headers, header_key
from telavox.sip.message import Message, Request, Response

__all__ = ["DEFAULT_MAX_MESSAGE", "KeepAlive", "StreamFramer", "parse_message"]

DEFAULT_MAX_MESSAGE = 65536
"""Default limit on a message's size (header section plus body), in bytes."""

_MANDATORY = (("via", "Via"), ("from", "From"), ("to", "To"), ("call-id", "Call-ID"),
              ("cseq", "CSeq"))  # fmt: skip


_TOKEN_RE = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+\Z")


def _token(text: str) -> bool:
    return _TOKEN_RE.match(text) is not None


def parse_message(data: bytes) -> Request | Response:
    """Parse one complete message (a datagram, or a frame from :class:`StreamFramer`).

    Leading CRLFs are ignored (§7.5).  Without Content-Length (allowed on
    UDP) the body is the rest of the data; with one, the body is cut to it,
    and a Content-Length larger than what is there is an error.
    """
    start = 0
    while data.startswith(b"\r\n", start):
        start += 2
    end = data.find(b"\r\n\r\n", start)
    if end >= 0:
        head_bytes = data[start:end]
        body = data[end + 4 :]
    else:
        end = data.find(b"\n\n", start)
        if end >= 0:
            head_bytes = data[start:end]
            body = data[end + 2 :]
        else:
            head_bytes = data[start:]
            body = b""
    if not head_bytes:
        raise ParseError("Empty message")
    bad_utf8 = False
    try:
        head = head_bytes.decode("utf-8")
    except UnicodeDecodeError:
        head = head_bytes.decode("latin-1")
        bad_utf8 = True
    lines = head.split("\r\n")
    if "\n" in head and head.count("\n") != len(lines) - 1:
        lines = head.replace("\r\n", "\n").split("\n")
    msg, problem = _start_line(lines[0])
    line_problem = _read_headers(lines, msg.headers)
    if problem is None:
        problem = line_problem
    if bad_utf8 and problem is None:
        problem = "Header section is not valid UTF-8"
    if problem is None and "\x00" in head:
        problem = "NUL byte in header section"
    if problem is None:
        problem = _check_mandatory(msg)
    if problem is None:
        problem, body = _check_length(msg, body)
    msg.body = body
    if problem is not None:
        raise ParseError(problem, 400, msg)
    return msg


class _StartLine(NamedTuple):
    """What a start line says: a status line has ``status`` (and ``reason``),
    a request line ``method`` and ``uri``; ``problem`` is a request line's
    readable defect."""

    status: int
    reason: str
    method: str
    uri: str
    version: str
    problem: str | None


def _start_line(line: str) -> tuple[Request | Response, str | None]:
    """The message the start line begins, and what is wrong with the line.

    Raises ParseError when nothing can be built from it.  A request line that
    is malformed but still readable (extra whitespace between its elements, a
    Request-URI without a scheme) gives a request and a problem, so that the
    headers are read and a 400 can be answered.
    """
    start = _read_start_line(line)
    if start.status:
        return Response(start.status, start.reason, Headers(), b"", start.version), None
    return Request(start.method, start.uri, Headers(), b"", start.version), start.problem


def _parse_start_line(line: str) -> _StartLine:
    # the SIP-Version is case-insensitive (§7.1)
    if line.startswith("SIP/") or (line[:1] == "s" and line[:4].upper() == "SIP/"):
        parts = line.split(" ", 2)
        if len(parts) < 2:
            raise ParseError("Malformed status line")
        version, code = parts[0], parts[1]
        reason = parts[2] if len(parts) == 3 else ""
        if version.upper() != "SIP/2.0":
            raise ParseError(f"Unsupported version {version[:16]}")
        if len(code) != 3 or not code.isdigit() or not code.isascii() or code[0] not in "123456":
            raise ParseError("Malformed status code")
        return _StartLine(int(code), reason, "", "", version, None)
    # Request-Line = Method SP Request-URI SP SIP-Version: exactly one SP each
    problem: str | None = None
    parts = line.split(" ")
    if len(parts) != 3:
        parts = line.split()
        if len(parts) != 3 or not parts[2].upper().startswith("SIP/"):
            raise ParseError("Malformed request line")
        problem = "Malformed request line (extra whitespace)"
    method, uri, version = parts
    if not _token(method):
        raise ParseError("Malformed method")
    if ":" not in uri and problem is None:
        problem = "Malformed Request-URI"
    # a version other than SIP/2.0 is not a parse error: the caller answers 505
    # (see check_version) once the headers are read
    return _StartLine(0, "", method, uri, version, problem)


# the start lines of a call come back (every "SIP/2.0 200 OK", the INVITE
# line of the challenged and the authenticated INVITE and of their ACK)
_read_start_line = memoized(_parse_start_line)


# header names as written -> (key, wire name), for names already validated
_NAMES: dict[str, tuple[str, str]] = {}
_NAMES_LIMIT = 4096
# whole field lines already read -> their entry: the lines that come back in
# every message of a call (From, Call-ID, Max-Forwards, Content-Type, ...);
# bounded, emptied when full: at 800 calls/s a few new lines a call fill it
# in a few seconds, so a call's BYE still finds most of its lines
_LINES: dict[str, tuple[str, str, str]] = {}
_LINES_LIMIT = 16384
_LINE_LONGEST = 256


def _read_headers(lines: list[str], headers: Headers) -> str | None:
    """Fill ``headers``; returns a problem description or None.

    Folded continuation lines (§7.3.1) are collected and joined once per
    field, so the work stays linear in the size of the header section.
    """
    items = headers.building()
    problem: str | None = None
    folds: dict[int, list[str]] | None = None
    for line in lines[1:]:
        entry = _LINES.get(line)
        if entry is not None:
            items.append(entry)
            continue
        if not line:
            continue
        first = line[0]
        if first == " " or first == "\t":
            if not items:
                problem = problem or "Folded line before the first header"
                continue
            part = line.strip()
            if part:
                if folds is None:
                    folds = {}
                folds.setdefault(len(items) - 1, []).append(part)
            continue
        name, sep, value = line.partition(":")
        known = _NAMES.get(name)
        if known is None:
            if not sep:
                problem = problem or f"Malformed header line {line[:40]!r}"
                continue
            stripped = name.rstrip(" \t")
            if not _token(stripped):
                problem = problem or f"Malformed header name {name[:40]!r}"
                continue
            known = header_key(stripped)
            if len(_NAMES) < _NAMES_LIMIT:
                _NAMES[name] = known
        entry = (known[0], known[1], value.strip())
        if len(line) <= _LINE_LONGEST:
            if len(_LINES) >= _LINES_LIMIT:
                _LINES.clear()
            _LINES[line] = entry
        items.append(entry)
    if folds:
        for index, parts in folds.items():
            key, name, value = items[index]
            items[index] = (key, name, " ".join([value, *parts]).strip())
    return problem


def _check_mandatory(msg: Request | Response) -> str | None:
    headers = msg.headers
    present = {k for k, _, _ in headers.entries()}
    for key, name in _MANDATORY:
        if key not in present:
            return f"Missing {name} header"
    # the views every reader wants (transaction matching), parsed here once
    views = headers.views
    try:
        views["via"] = msg._parse_top_via()
    except HeaderError as e:
        return f"Malformed Via header: {e}"
    try:
        cseq = views["cseq"] = CSeq.parse(headers.get("CSeq") or "")
    except HeaderError as e:
        return f"Malformed CSeq header: {e}"
    if isinstance(msg, Request) and cseq.method != msg.method:
        return "CSeq method does not match the request method"
    # a version other than SIP/2.0 is answered 505 by the caller (check_version)
    return None


def _check_length(msg: Message, body: bytes) -> tuple[str | None, bytes]:
    values = msg.headers.get_all("Content-Length")
    if not values:
        return None, body
    if len(values) > 1 and len(set(values)) > 1:
        return "Conflicting Content-Length headers", body
    text = values[0]
    if not text.isdigit() or not text.isascii() or len(text) > 10:
        return "Malformed Content-Length", b""
    length = int(text)
    if length > len(body):
        return "Content-Length larger than the message body", body
    return None, body[:length]


class KeepAlive:
    """A RFC 5626 keep-alive seen on a stream: ``ping`` (CRLFCRLF, to be
    answered with a CRLF pong) or a pong (a lone CRLF)."""

    __slots__ = ("ping",)

    def __init__(self, ping: bool) -> None:
        self.ping = ping

    def __repr__(self) -> str:
        return f"KeepAlive(ping={self.ping})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, KeepAlive) and other.ping == self.ping

    __hash__ = None  # type: ignore[assignment]


_CONTENT_LENGTH = re.compile(rb"\n(?:content-length|l)[ \t]*:[ \t]*([^\r\n]*)", re.IGNORECASE)


class StreamFramer:
    """Cuts a TCP/TLS byte stream into messages by Content-Length (§18.3).

    :meth:`feed` returns, in order, each complete message as bytes (to pass to
    :func:`parse_message`) and each :class:`KeepAlive`.  A stream that cannot be
    framed any more (a header section over ``max_message`` bytes, a bad or too
    large Content-Length) raises :class:`ParseError`: the connection must be
    closed, after answering with the error's status if it carries a request.
    Missing Content-Length on a stream is read as 0.
    """

    def __init__(self, max_message: int = DEFAULT_MAX_MESSAGE) -> None:
        self.max_message = max_message
        self._buffer = bytearray()
        self._body_needed = -1  # length of the current frame once its head is seen
        self._after_pong = False  # the last read ended with a CRLF taken as a pong
        self._scanned = 0  # bytes of the buffer already searched for CRLFCRLF
        self.failed = False

    @property
    def buffered(self) -> int:
        """Bytes held waiting for the rest of a message."""
        return len(self._buffer)

    def feed(self, data: bytes) -> list[bytes | KeepAlive]:
        """Add ``data``; return what is now complete.

        On a framing error the :class:`ParseError` raised carries, in its
        ``frames`` attribute, what was complete before the error.
        """
        if self.failed:
            return []
        out: list[bytes | KeepAlive] = []
        try:
            self._feed(data, out)
        except ParseError as e:
            e.frames = out
            raise
        return out

    def _feed(self, data: bytes, out: list[bytes | KeepAlive]) -> None:
        buf = self._buffer
        buf += data
        while buf:
            if self._body_needed < 0:
                if buf[0] == 0x0D or buf[0] == 0x0A:
                    if not self._keepalive(buf, out):
                        break
                    continue
                self._after_pong = False
                end = buf.find(b"\r\n\r\n", max(0, self._scanned - 3))
                if end < 0:
                    self._scanned = len(buf)
                    if len(buf) > self.max_message:
                        raise self._head_too_large(buf)
                    break
                self._scanned = 0
                head_len = end + 4
                if head_len > self.max_message:
                    raise self._head_too_large(buf)
                length = self._content_length(bytes(buf[:head_len]))
                if head_len + length > self.max_message:
                    self.failed = True
                    raise ParseError("Message body too large", 413,
                                     _partial(bytes(buf[:head_len])))
                self._body_needed = head_len + length
            if len(buf) < self._body_needed:
                break
            frame = bytes(buf[: self._body_needed])
            del buf[: self._body_needed]
            self._body_needed = -1
            out.append(frame)

    def _keepalive(self, buf: bytearray, out: list[bytes | KeepAlive]) -> bool:
        """Take the CR/LF bytes that start ``buf`` (between messages); False
        when more bytes are needed to tell what they are.

        CRLFCRLF is a ping, a lone CRLF a pong (RFC 5626 §3.5.1); other CRs
        and LFs before a start line are skipped (§7.5).  A CRLF that ends
        what has arrived is reported as a pong at once, since a client waits
        for it; should the next bytes start with CRLF, the two were a ping cut
        in half, and the second CRLF is reported as that ping.
        """
        if buf.startswith(b"\r\n"):
            if self._after_pong or buf.startswith(b"\r\n\r\n"):
                size = 2 if self._after_pong else 4
                del buf[:size]
                self._after_pong = False
                out.append(KeepAlive(ping=True))
                return True
            if len(buf) == 3 and buf[2] == 0x0D:
                return False  # maybe the start of a ping
            del buf[:2]
            self._after_pong = not buf
            out.append(KeepAlive(ping=False))
            return True
        if len(buf) == 1 and buf[0] == 0x0D:
            return False  # a CR waiting for its LF
        self._after_pong = False
        del buf[:1]  # a lone LF, or a CR without LF: noise
        return True

    def _head_too_large(self, buf: bytearray) -> ParseError:
        """The error for a header section over the limit (the stream stops),
        with the header lines that fit in the limit when they can be read."""
        self.failed = True
        cut = buf.rfind(b"\r\n", 0, self.max_message)
        partial = _partial(bytes(buf[:cut])) if cut > 0 else None
        return ParseError("Header section too large", 413, partial)

    def _content_length(self, head: bytes) -> int:
        m = _CONTENT_LENGTH.search(head)
        if m is None:
            return 0
        text = m.group(1).strip()
        if not text.isdigit() or len(text) > 10:
            self.failed = True
            raise ParseError("Malformed Content-Length", 400, _partial(head))
        return int(text)


def _partial(head: bytes) -> Request | Response | None:
    """What can be read of a message's head, for an error answer."""
    try:
        return parse_message(head)
    except ParseError as e:
        msg = e.message
        return msg if isinstance(msg, (Request, Response)) else None


def check_version(request: Request) -> bool:
    """True when the request speaks SIP/2.0 (else answer 505, §8.2)."""
    return request.version.upper() == "SIP/2.0"


