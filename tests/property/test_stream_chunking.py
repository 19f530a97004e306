"""The stream framer (RFC 3261 §18.3, RFC 5626 §3.5.1 keep-alives): however
a TCP byte stream is cut into reads, it gives the frames that reading it
whole gives; and the limits stop the stream with a ParseError."""

from __future__ import annotations

import pathlib

import pytest
from helpers.sip_strategies import message_bytes
from hypothesis import given, settings
from hypothesis import strategies as st

from telavox.sip.errors import ParseError
from telavox.sip.message import Request
from telavox.sip.parser import KeepAlive, StreamFramer, parse_message

PING = KeepAlive(ping=True)
PONG = KeepAlive(ping=False)

_VALID = pathlib.Path(__file__).resolve().parents[1] / "data" / "sip" / "valid"
# corpus messages that are stream frames as they stand (a Content-Length,
# nothing before or after)
FIXED = [
    (_VALID / name).read_bytes()
    for name in ("compact_forms.msg", "folded_odd_whitespace.msg", "binary_body.msg",
                 "response_multi_via.msg", "multipart_body.msg", "ipv6.msg")
]

Frame = bytes | KeepAlive

# mostly corpus messages: drawing a new one costs ten times as much
_FIXED = st.sampled_from(FIXED)
_MESSAGE = st.one_of(_FIXED, _FIXED, _FIXED, message_bytes(stream=True))


def _stream_of(items: list[Frame]) -> bytes:
    return b"".join(i if isinstance(i, bytes) else b"\r\n\r\n" if i.ping else b"\r\n"
                    for i in items)


@st.composite
def server_streams(draw: st.DrawFn) -> list[Frame]:
    """What a server reads: messages and CRLFCRLF pings."""
    return draw(st.lists(_MESSAGE | st.just(PING), min_size=1, max_size=4))


@st.composite
def client_streams(draw: st.DrawFn) -> list[Frame]:
    """What a client reads: messages, each maybe preceded by a CRLF pong."""
    items: list[Frame] = []
    for message in draw(st.lists(_MESSAGE, min_size=1, max_size=3)):
        if draw(st.booleans()):
            items.append(PONG)
        items.append(message)
    if draw(st.booleans()):
        items.append(PONG)
    return items


def feed_in_chunks(data: bytes, cuts: list[int]) -> tuple[list[Frame], StreamFramer]:
    framer = StreamFramer()
    out: list[Frame] = []
    start = 0
    for cut in sorted(set(cuts)):
        out += framer.feed(data[start:cut])
        start = cut
    out += framer.feed(data[start:])
    return out, framer


def _cuts(data_len: int) -> st.SearchStrategy[list[int]]:
    return st.lists(st.integers(0, data_len), max_size=12)


@given(server_streams().flatmap(lambda items: st.tuples(
    st.just(items), _cuts(len(_stream_of(items))))))
def test_server_stream_frames_do_not_depend_on_reads(case: tuple[list[Frame], list[int]]) -> None:
    """Messages and pings come out the same however a stream is cut (split pings add a pong)."""
    items, cuts = case
    data = _stream_of(items)
    whole = StreamFramer().feed(data)
    assert whole == items
    chunked, framer = feed_in_chunks(data, cuts)
    assert [f for f in chunked if f != PONG] == whole
    for i, frame in enumerate(chunked):
        if frame == PONG:
            assert chunked[i + 1] == PING
    assert framer.buffered == 0


@given(client_streams().flatmap(lambda items: st.tuples(
    st.just(items), _cuts(len(_stream_of(items))))))
def test_client_stream_frames_do_not_depend_on_reads(case: tuple[list[Frame], list[int]]) -> None:
    """Messages and pongs between them come out exactly the same however a stream is cut."""
    items, cuts = case
    data = _stream_of(items)
    whole = StreamFramer().feed(data)
    assert whole == items
    chunked, framer = feed_in_chunks(data, cuts)
    assert chunked == whole
    assert framer.buffered == 0


@settings(max_examples=20)
@given(server_streams())
def test_stream_fed_byte_by_byte(items: list[Frame]) -> None:
    """Fed one byte at a time, a stream gives every message and ping, and the frames parse."""
    data = _stream_of(items)
    chunked, _ = feed_in_chunks(data, list(range(len(data))))
    frames = [f for f in chunked if f != PONG]
    assert frames == items
    for frame, item in zip(frames, items, strict=True):
        if isinstance(frame, bytes):
            assert parse_message(frame) == parse_message(item)  # type: ignore[arg-type]


# --- keep-alives and limits, case by case ------------------------------------------------


def test_ping_cut_in_half_is_still_a_ping() -> None:
    """A ping split over two reads is still reported as a ping, after a pong for its half."""
    framer = StreamFramer()
    assert framer.feed(b"\r\n") == [PONG]
    assert framer.feed(b"\r\n") == [PING]
    assert framer.feed(b"\r\n") == [PONG]


def test_lone_cr_waits_for_its_lf() -> None:
    """A CR at the end of a read is kept until the next byte says what it is."""
    framer = StreamFramer()
    assert framer.feed(b"\r") == []
    assert framer.buffered == 1
    assert framer.feed(b"\n\r\n") == [PING]
    assert framer.feed(b"\r\n\r") == []
    assert framer.feed(b"\n") == [PING]


def test_noise_before_a_start_line_is_skipped() -> None:
    """Lone LFs and CRs not followed by LF between messages are dropped."""
    msg = FIXED[0]
    assert StreamFramer().feed(b"\n\r\r" + msg + b"\n" + msg) == [msg, msg]


def test_missing_content_length_on_a_stream_means_no_body() -> None:
    """Without Content-Length a stream message ends at its blank line."""
    head = b"OPTIONS sip:a@example.test SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\n\r\n"
    assert StreamFramer().feed(head + head) == [head, head]


def test_header_section_over_the_limit_stops_the_stream_with_413() -> None:
    """A header section over the limit stops the stream with 413 and an answerable partial."""
    head = (b"OPTIONS sip:a@example.test SIP/2.0\r\n"
            b"Via: SIP/2.0/TCP 192.0.2.1;branch=z9hG4bK1\r\n"
            b"From: <sip:b@example.test>;tag=1\r\nTo: <sip:a@example.test>\r\n"
            b"Call-ID: big\r\nCSeq: 1 OPTIONS\r\n")
    framer = StreamFramer(1024)
    assert framer.feed(head) == []
    with pytest.raises(ParseError) as info:
        framer.feed(b"X-Filler: " + b"x" * 2000)
    assert info.value.status == 413 and "Header section too large" in info.value.reason
    partial = info.value.message
    assert isinstance(partial, Request) and partial.top_via.branch == "z9hG4bK1"
    assert framer.failed and framer.feed(b"\r\n\r\n" + FIXED[0]) == []


def test_declared_body_over_the_limit_stops_the_stream_with_413() -> None:
    """A Content-Length beyond the limit stops the stream with 413 before the body comes."""
    msg = (b"MESSAGE sip:a@example.test SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK2\r\n"
           b"From: <sip:b@example.test>;tag=1\r\nTo: <sip:a@example.test>\r\n"
           b"Call-ID: body\r\nCSeq: 1 MESSAGE\r\nContent-Length: 102400\r\n\r\n")
    framer = StreamFramer()
    with pytest.raises(ParseError) as info:
        framer.feed(msg)
    assert info.value.status == 413 and "body too large" in info.value.reason
    assert isinstance(info.value.message, Request)
    assert framer.feed(b"x" * 100) == []


def test_malformed_content_length_stops_the_stream_with_400() -> None:
    """A stream cannot be framed past a Content-Length that is not a number."""
    msg = (b"OPTIONS sip:a@example.test SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK3\r\n"
           b"From: <sip:b@example.test>;tag=1\r\nTo: <sip:a@example.test>\r\n"
           b"Call-ID: cl\r\nCSeq: 1 OPTIONS\r\nl: twelve\r\n\r\n")
    framer = StreamFramer()
    with pytest.raises(ParseError) as info:
        framer.feed(msg)
    assert info.value.status == 400 and "Content-Length" in info.value.reason
    assert isinstance(info.value.message, Request) and framer.failed
