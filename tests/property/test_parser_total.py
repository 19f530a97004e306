"""Property tests of the parser's totality: any bytes give a message or a
:class:`ParseError`, never another exception; and on whatever parses, the
typed views and the endpoint's checks fail only with ``ValueError``s."""

from __future__ import annotations

import contextlib
import pathlib
from collections.abc import Callable

from helpers.sip_strategies import message_bytes
from hypothesis import given, settings
from hypothesis import strategies as st

from telavox.sip.errors import ParseError
from telavox.sip.message import Message, Request, Response, make_response
from telavox.sip.parser import KeepAlive, StreamFramer, parse_message
from telavox.sip.uri import SipUri
from telavox.transport.endpoint import _check_request

# pieces that mean something to the parser, for splicing into messages
FRAGMENTS = (
    b":", b";", b",", b'"', b"<", b">", b"\r\n", b"\r\n ", b"\r\n\r\n", b" ", b"  ", b"\t",
    b"\x00", b"\xff", b"\xc3", b"\xe2\x80", b"%", b"%2", b"[", b"]", b"[::1]", b"@", b"?",
    b"=", b"\\", b"\r", b"\n", b"(", b")", b"SIP/2.0", b"SIP/2.0/UDP ", b"sip:", b"tel:",
    b"Via: ", b"v: ,", b"Content-Length: 99999999999", b"l: -1", b"l: 3", b"CSeq: 1 X",
    b"To: \"", b"From: <sip:", b";tag=", b";branch=", b"4294967296", b"2147483648",
)

_VALID = pathlib.Path(__file__).resolve().parents[1] / "data" / "sip" / "valid"
CORPUS = sorted(p.read_bytes() for p in _VALID.glob("*.msg"))

SIPISH = st.lists(st.sampled_from(FRAGMENTS) | st.binary(min_size=1, max_size=6),
                  max_size=40).map(b"".join)


_CORPUS_BASE = st.sampled_from(CORPUS)
_ANY_BASE = message_bytes() | _CORPUS_BASE
_EDIT = st.sampled_from(("insert", "delete", "replace", "truncate", "dup_line", "drop_line"))
_INSERT = st.sampled_from(FRAGMENTS) | st.binary(min_size=1, max_size=4)


@st.composite
def mutated_messages(draw: st.DrawFn, drawn: bool = True) -> bytes:
    """A valid message (drawn at random, or from the corpus) with a few byte-level edits."""
    data = bytearray(draw(_ANY_BASE if drawn else _CORPUS_BASE))
    for _ in range(draw(st.integers(1, 4))):
        op = draw(_EDIT)
        at = draw(st.integers(0, len(data)))
        if op == "insert":
            data[at:at] = draw(_INSERT)
        elif op == "delete":
            del data[at : at + draw(st.integers(1, 8))]
        elif op == "replace" and at < len(data):
            data[at] = draw(st.integers(0, 255))
        elif op == "truncate":
            del data[at:]
        else:
            lines = bytes(data).split(b"\r\n")
            i = draw(st.integers(0, len(lines) - 1))
            if op == "dup_line":
                lines.insert(i, lines[i])
            else:
                del lines[i]
            data = bytearray(b"\r\n".join(lines))
    return bytes(data)


def _views(msg: Request | Response) -> list[Callable[[], object]]:
    views: list[Callable[[], object]] = [
        lambda: msg.top_via, lambda: msg.vias, lambda: msg.cseq, lambda: msg.call_id,
        lambda: msg.from_, lambda: msg.to, lambda: msg.from_tag, lambda: msg.to_tag,
        lambda: msg.contacts, lambda: msg.contact_star, lambda: msg.route_set(),
        lambda: msg.route_set("Record-Route"), lambda: msg.content_type,
        lambda: msg.int_header("Max-Forwards"), lambda: msg.int_header("Expires"),
        lambda: msg.option_tags("Supported"), lambda: [(v.branch, v.rport, v.sent_by)
                                                       for v in msg.vias],
    ]
    if isinstance(msg, Request):
        views += [lambda: msg.uri, msg.uri_valid, lambda: _uri_parts(msg)]
    return views


def _uri_parts(msg: Request) -> object:
    uri = msg.uri
    if isinstance(uri, SipUri):
        return uri.user_unescaped, uri.transport, uri.lr, uri.host_bare, uri.equivalent(uri)
    return uri.equivalent(uri)


def exercise(msg: Message) -> None:
    """Read everything a proxy might read; only ValueErrors may come out."""
    assert isinstance(msg, (Request, Response))
    for view in _views(msg):
        with contextlib.suppress(ValueError):
            view()
    if isinstance(msg, Request):
        problem = _check_request(msg)
        assert problem is None or problem[0] in (400, 505)
    assert parse_message(msg.serialize()) == msg


def parse_or_error(data: bytes) -> None:
    """``data`` parses (and its views behave) or raises a ParseError that can
    be answered when it carries a request."""
    try:
        msg = parse_message(data)
    except ParseError as e:
        assert e.status in (400, 413, 505) and e.reason
        partial = e.message
        assert partial is None or isinstance(partial, (Request, Response))
        if isinstance(partial, Request):
            # the reason becomes the answer's reason phrase: one line of text
            assert "\r" not in e.reason and "\n" not in e.reason
            answer = make_response(partial, e.status, e.reason).serialize()
            assert answer.startswith(f"SIP/2.0 {e.status} {e.reason}\r\n".encode())
            for view in _views(partial):
                with contextlib.suppress(ValueError, KeyError):
                    view()
        return
    exercise(msg)


@settings(max_examples=200)
@given(st.binary(max_size=600))
def test_arbitrary_bytes_parse_or_raise_parse_error(data: bytes) -> None:
    """Random bytes give a message or a ParseError, nothing else."""
    parse_or_error(data)


@settings(max_examples=200)
@given(SIPISH)
def test_sip_like_fragments_parse_or_raise_parse_error(data: bytes) -> None:
    """Strings of SIP punctuation and keywords give a message or a ParseError."""
    parse_or_error(data)
    parse_or_error(b"OPTIONS sip:x SIP/2.0\r\n" + data)
    parse_or_error(b"SIP/2.0 200 OK\r\n" + data)


SKELETON = (
    ("Via", "SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK1"), ("Max-Forwards", "70"),
    ("From", "<sip:a@example.test>;tag=1"), ("To", "<sip:b@example.test>"),
    ("Call-ID", "fuzz@192.0.2.1"), ("CSeq", "1 OPTIONS"), ("Contact", "<sip:a@192.0.2.1>"),
    ("Route", "<sip:p.example.test;lr>"), ("Content-Length", "0"),
)


@settings(max_examples=200)
@given(st.sampled_from([name for name, _ in SKELETON]), st.sampled_from(["replace", "append"]),
       SIPISH)
def test_fuzzed_header_value_parses_or_raises_parse_error(name: str, how: str,
                                                          fuzz: bytes) -> None:
    """A request with one header value fuzzed gives a message or a ParseError."""
    lines = [b"OPTIONS sip:b@example.test SIP/2.0"]
    for field, value in SKELETON:
        raw = value.encode()
        if field == name:
            raw = fuzz if how == "replace" else raw + fuzz
        lines.append(field.encode() + b": " + raw)
    parse_or_error(b"\r\n".join(lines) + b"\r\n\r\n")


@given(mutated_messages())
def test_mutated_messages_parse_or_raise_parse_error(data: bytes) -> None:
    """Valid messages with byte-level and line-level edits give a message or a ParseError."""
    parse_or_error(data)


@given(st.lists(mutated_messages(drawn=False) | SIPISH, min_size=1, max_size=3)
       .map(b"".join))
def test_stream_framer_frames_or_raises_parse_error(stream: bytes) -> None:
    """A damaged stream gives frames that parse or fail cleanly, or a ParseError."""
    framer = StreamFramer(4096)
    try:
        frames = framer.feed(stream)
    except ParseError as e:
        assert e.status in (400, 413) and framer.failed
        assert framer.feed(b"\r\n\r\n") == []
        return
    for frame in frames:
        if not isinstance(frame, KeepAlive):
            parse_or_error(frame)
