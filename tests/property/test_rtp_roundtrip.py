"""Property tests of the RTP core: RTP and RTCP values survive
serialise∘parse; any bytes parse to a packet that re-serialises exactly or
give RtpError, never another exception (the same for the peeks, SSRC
rewriting, extension elements and event payloads); SSRC rewriting equals
the same mapping done on the parsed values; the DTMF receiver reports each
press once under duplication, adjacent reordering and loss; and a spliced
stream's numbers run on without a gap or a step back."""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable

import attrs
from hypothesis import given, settings
from hypothesis import strategies as st

from telavox.rtp.continuity import StreamRewriter
from telavox.rtp.dtmf import DigitEnd, DigitStart, EventReceiver, TelephoneEvent, event_packets
from telavox.rtp.errors import RtpError
from telavox.rtp.extension import ExtensionElement, HeaderExtension
from telavox.rtp.packet import RtpPacket, header_fields, is_rtcp, payload_span
from telavox.rtp.rtcp import (
    PSFB,
    RTPFB,
    App,
    Feedback,
    Goodbye,
    ReceiverReport,
    ReportBlock,
    RtcpPacket,
    SdesChunk,
    SdesItem,
    SenderReport,
    SourceDescription,
    UnknownRtcp,
    parse_compound,
    serialize_compound,
)
from telavox.rtp.rtcprewrite import rewrite_rtcp

U32 = st.integers(0, 2**32 - 1)
SSRCS = st.sampled_from([0, 1, 0xDEADBEEF, 2**32 - 1]) | U32


def words(max_words: int = 6) -> st.SearchStrategy[bytes]:
    """Bytes of whole 32-bit words."""
    return st.integers(0, max_words).flatmap(lambda n: st.binary(min_size=4 * n,
                                                                 max_size=4 * n))


def paddings(sizes: st.SearchStrategy[int]) -> st.SearchStrategy[bytes]:
    """Padding as sent: any fill, its own length last (empty for none)."""
    def build(n: int) -> st.SearchStrategy[bytes]:
        if n == 0:
            return st.just(b"")
        return st.binary(min_size=n - 1, max_size=n - 1).map(lambda fill: fill + bytes((n,)))
    return sizes.flatmap(build)


EXTENSIONS = st.builds(HeaderExtension, st.sampled_from([0xBEDE, 0x1000, 0x1005]) |
                       st.integers(0, 0xFFFF), words())

RTP_PACKETS = st.builds(
    RtpPacket,
    payload_type=st.integers(0, 127), sequence=st.integers(0, 0xFFFF), timestamp=U32,
    ssrc=SSRCS, payload=st.binary(max_size=200), marker=st.booleans(),
    csrcs=st.lists(U32, max_size=15).map(tuple), extension=st.none() | EXTENSIONS,
    padding=paddings(st.integers(0, 255)),
)

RTCP_PADDING = paddings(st.sampled_from([0, 0, 4, 8]))
REPORT_BLOCKS = st.lists(st.builds(
    ReportBlock, SSRCS, st.integers(0, 255), st.integers(-0x800000, 0x7FFFFF), U32, U32, U32,
    U32), max_size=4).map(tuple)
SDES_ITEMS = st.builds(SdesItem, st.integers(1, 255), st.binary(max_size=40))
SDES_CHUNKS = st.builds(SdesChunk, SSRCS, st.lists(SDES_ITEMS, max_size=4).map(tuple))


def _bye(ssrcs: tuple[int, ...], reason: bytes | None, padding: bytes) -> Goodbye:
    return Goodbye(ssrcs, reason, padding)


RTCP_PACKETS: st.SearchStrategy[RtcpPacket] = st.one_of(
    st.builds(SenderReport, SSRCS, st.integers(0, 2**64 - 1), U32, U32, U32, REPORT_BLOCKS,
              words(3), RTCP_PADDING),
    st.builds(ReceiverReport, SSRCS, REPORT_BLOCKS, words(3), RTCP_PADDING),
    st.builds(SourceDescription, st.lists(SDES_CHUNKS, max_size=3).map(tuple), RTCP_PADDING),
    st.builds(_bye, st.lists(SSRCS, max_size=4).map(tuple), st.none() | st.binary(max_size=30),
              RTCP_PADDING),
    st.builds(App, st.integers(0, 31), SSRCS, st.binary(min_size=4, max_size=4), words(3),
              RTCP_PADDING),
    st.builds(Feedback, st.sampled_from([RTPFB, PSFB]), st.sampled_from([1, 3, 4, 15]) |
              st.integers(0, 31), SSRCS, SSRCS, words(4), RTCP_PADDING),
    st.builds(UnknownRtcp, st.sampled_from([192, 195, 207, 208, 223]), st.integers(0, 31),
              words(4), RTCP_PADDING),
)
COMPOUNDS = st.lists(RTCP_PACKETS, min_size=1, max_size=5).map(tuple)


@st.composite
def mutated(draw: st.DrawFn, base: st.SearchStrategy[bytes]) -> bytes:
    """Valid bytes with a few edits: bytes changed, inserted, deleted, or cut short."""
    data = bytearray(draw(base))
    for _ in range(draw(st.integers(0, 3))):
        kind = draw(st.sampled_from(["set", "insert", "delete", "truncate"]))
        at = draw(st.integers(0, len(data)))
        if kind == "set" and at < len(data):
            data[at] = draw(st.integers(0, 255))
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=4))
        elif kind == "delete":
            del data[at:at + draw(st.integers(1, 4))]
        else:
            del data[at:]
    return bytes(data)


# version-2 first bytes make random data reach past the version check
RTP_ISH = (st.tuples(st.integers(0, 63), st.binary(max_size=60)).map(
    lambda t: bytes((0x80 | t[0],)) + t[1]) | st.binary(max_size=40) |
    mutated(RTP_PACKETS.map(RtpPacket.serialize)))
RTCP_HEADERS = st.tuples(st.integers(0x80, 0xBF), st.sampled_from(range(192, 224)),
                         st.integers(0, 12)).map(lambda t: bytes((t[0], t[1], 0, t[2])))
RTCP_ISH = (st.lists(RTCP_HEADERS | st.binary(max_size=12), max_size=8).map(b"".join) |
            mutated(COMPOUNDS.map(serialize_compound)))


def total(call: Callable[[], object]) -> object | None:
    """The result of ``call``, or None when it raised RtpError (and nothing else)."""
    with contextlib.suppress(RtpError):
        return call()
    return None


# --- round trips -------------------------------------------------------------------------


@given(RTP_PACKETS)
def test_rtp_packet_serialise_then_parse_is_identity(packet: RtpPacket) -> None:
    """Any RTP packet value comes back equal from its own bytes, and the peeks agree."""
    data = packet.serialize()
    assert RtpPacket.parse(data) == packet
    assert header_fields(data) == (packet.payload_type, packet.marker, packet.sequence,
                                   packet.timestamp, packet.ssrc)
    start, end = payload_span(data)
    assert data[start:end] == packet.payload


@given(COMPOUNDS)
def test_rtcp_compound_serialise_then_parse_is_identity(packets: tuple[RtcpPacket, ...]) -> None:
    """Any sequence of RTCP packet values comes back equal from the compound's bytes."""
    assert parse_compound(serialize_compound(packets)) == packets


@given(st.lists(st.builds(ExtensionElement, st.integers(1, 255), st.binary(max_size=20)),
                max_size=6), st.booleans())
def test_extension_elements_build_then_read_is_identity(elements: list[ExtensionElement],
                                                        two_byte: bool) -> None:
    """Elements written in either RFC 8285 form read back the same."""
    fits_one = all(e.id <= 14 and 1 <= len(e.data) <= 16 for e in elements)
    ext = HeaderExtension.build(elements, two_byte=two_byte or not fits_one)
    assert ext.elements() == tuple(elements)


# --- totality ------------------------------------------------------------------------------


@settings(max_examples=300)
@given(RTP_ISH)
def test_any_bytes_are_an_rtp_packet_that_reserialises_exactly_or_rtp_error(data: bytes) -> None:
    """RTP parsing is total and exact; the peeks and the rewriter are total too."""
    packet = total(lambda: RtpPacket.parse(data))
    if packet is not None:
        assert isinstance(packet, RtpPacket) and packet.serialize() == data
        assert payload_span(data) is not None
    total(lambda: header_fields(data))
    total(lambda: payload_span(data))
    is_rtcp(data)
    stream = StreamRewriter(1, 8000, 0, 0)
    result = total(lambda: stream.rewrite(data, 0.0))
    if packet is not None:
        assert isinstance(result, bytes) and result[12:] == data[12:]
    if packet is not None and packet.extension is not None:
        total(packet.extension.elements)


@settings(max_examples=300)
@given(RTCP_ISH, st.dictionaries(U32, U32, max_size=3))
def test_any_bytes_are_rtcp_that_reserialises_exactly_or_rtp_error(
        data: bytes, mapping: dict[int, int]) -> None:
    """Compound parsing is total and exact; SSRC rewriting is total, keeps the
    length, and succeeds on whatever parses."""
    packets = total(lambda: parse_compound(data))
    if packets is not None:
        assert serialize_compound(packets) == data  # type: ignore[arg-type]
    rewritten = total(lambda: rewrite_rtcp(data, mapping))
    if packets is not None:
        assert isinstance(rewritten, bytes) and len(rewritten) == len(data)
        assert rewrite_rtcp(data, {}) == data


@given(st.binary(max_size=8), st.integers(0, 2**32 - 1), st.integers(0, 0xFFFF))
def test_event_payload_parsing_and_the_receiver_are_total(data: bytes, ts: int,
                                                          seq: int) -> None:
    """Any payload is an event that re-serialises exactly, or RtpError; the
    receiver likewise reports or raises RtpError."""
    event = total(lambda: TelephoneEvent.parse(data))
    if event is not None:
        assert isinstance(event, TelephoneEvent) and event.serialize() == data
    receiver = EventReceiver()
    total(lambda: receiver.receive(data, ts, seq, 0.0))


@given(st.sampled_from([0xBEDE, 0x1000]), st.binary(max_size=24))
def test_extension_element_reading_is_total(profile: int, data: bytes) -> None:
    """Reading RFC 8285 elements from any data gives elements or RtpError."""
    data += bytes(-len(data) % 4)
    total(HeaderExtension(profile, data).elements)


# --- SSRC rewriting equals the mapping on values --------------------------------------------


def _mapped(packet: RtcpPacket, m: Callable[[int], int]) -> RtcpPacket:
    """``packet`` with its SSRC fields mapped, as rewrite_rtcp documents them."""
    if isinstance(packet, SenderReport | ReceiverReport):
        reports = tuple(attrs.evolve(r, ssrc=m(r.ssrc)) for r in packet.reports)
        return attrs.evolve(packet, ssrc=m(packet.ssrc), reports=reports)
    if isinstance(packet, SourceDescription):
        return attrs.evolve(packet, chunks=tuple(attrs.evolve(c, ssrc=m(c.ssrc))
                                                 for c in packet.chunks))
    if isinstance(packet, Goodbye):
        return attrs.evolve(packet, ssrcs=tuple(m(s) for s in packet.ssrcs))
    if isinstance(packet, App):
        return attrs.evolve(packet, ssrc=m(packet.ssrc))
    if isinstance(packet, Feedback):
        fci = packet.fci
        if (packet.packet_type, packet.fmt) in {(PSFB, 4), (RTPFB, 3), (RTPFB, 4)}:
            fci = b"".join(m(int.from_bytes(fci[i:i + 4], "big")).to_bytes(4, "big")
                           + fci[i + 4:i + 8] for i in range(0, len(fci) - 7, 8)) + \
                fci[len(fci) // 8 * 8:]
        return attrs.evolve(packet, sender_ssrc=m(packet.sender_ssrc),
                            media_ssrc=m(packet.media_ssrc), fci=fci)
    return packet


@given(COMPOUNDS, st.data())
def test_rewrite_equals_mapping_the_parsed_values(packets: tuple[RtcpPacket, ...],
                                                  data: st.DataObject) -> None:
    """Rewriting the bytes gives what mapping every SSRC field of the values gives."""
    seen = sorted({v for p in packets for v in _ssrcs(p)})
    keys = data.draw(st.lists(st.sampled_from(seen), unique=True) if seen else st.just([]))
    mapping = {k: data.draw(U32) for k in keys}

    def m(ssrc: int) -> int:
        return mapping.get(ssrc, ssrc)

    rewritten = parse_compound(rewrite_rtcp(serialize_compound(packets), mapping))
    assert rewritten == tuple(_mapped(p, m) for p in packets)


def _ssrcs(packet: RtcpPacket) -> list[int]:
    found: list[int] = []
    _mapped(packet, lambda s: found.append(s) or s)  # type: ignore[func-returns-value]
    return found


# --- DTMF under a bad network ---------------------------------------------------------------


@st.composite
def event_traffic(draw: st.DrawFn) -> tuple[str, list[tuple[bytes, int, int, bool, float]]]:
    """Key presses as sent, then duplicated, swapped with a neighbour, and
    thinned (at least one packet of each press survives): (digits,
    arrivals as (payload, timestamp, seq, marker, time))."""
    digits = draw(st.text("0123456789*#ABCD!", min_size=1, max_size=4))
    sent = []
    seq = draw(st.integers(0, 0xFFFF))
    ts = draw(U32)
    at = 0.0
    for index, digit in enumerate(digits):
        duration = draw(st.integers(40, 400))
        plan = event_packets(digit, duration)
        keep = draw(st.lists(st.booleans(), min_size=len(plan), max_size=len(plan)))
        keep[draw(st.integers(0, len(plan) - 1))] = True
        for packet, kept in zip(plan, keep, strict=True):
            if kept:
                copies = draw(st.integers(1, 2))
                arrival = (packet.payload, ts, seq, packet.marker, at + packet.offset, index)
                sent += [arrival] * copies
            seq = (seq + 1) & 0xFFFF
        at += plan[-1].offset + draw(st.floats(0.05, 1.0))
        ts = (ts + round(at * 8000)) & 0xFFFFFFFF
    for i in range(len(sent) - 1):
        # swap neighbours, but never move a packet before an earlier press's
        if sent[i][5] == sent[i + 1][5] and draw(st.booleans()):
            sent[i], sent[i + 1] = sent[i + 1], sent[i]
    arrivals = []
    clock = 0.0
    for payload, t, s, marker, when, _ in sent:
        clock = max(clock, when)
        arrivals.append((payload, t, s, marker, clock))
    return digits, arrivals


@settings(max_examples=200)
@given(event_traffic())
def test_each_press_is_reported_once_through_a_bad_network(
        traffic: tuple[str, list[tuple[bytes, int, int, bool, float]]]) -> None:
    """One start and one end per press, in order, whatever was duplicated,
    swapped or lost, provided something of each press arrived."""
    digits, arrivals = traffic
    receiver = EventReceiver()
    reports = []
    for payload, ts, seq, marker, now in arrivals:
        reports += receiver.receive(payload, ts, seq, now, marker=marker)
    reports += receiver.fire(arrivals[-1][4] + 10)
    starts = [r.digit for r in reports if isinstance(r, DigitStart)]
    ends = [r.digit for r in reports if isinstance(r, DigitEnd)]
    assert starts == list(digits) and ends == list(digits)
    assert [type(r) for r in reports] == [DigitStart, DigitEnd] * len(digits)


# --- continuity ----------------------------------------------------------------------------

SEGMENTS = st.lists(st.tuples(st.sampled_from(["A", "B", "C", "local"]), st.integers(1, 6),
                              st.floats(0.0, 2.0)), min_size=1, max_size=8)


@given(SEGMENTS, st.integers(0, 0xFFFF), U32)
def test_spliced_stream_runs_on_without_gap_or_step_back(
        segments: list[tuple[str, int, float]], first_seq: int, first_ts: int) -> None:
    """Feeding in-order packets from changing sources and local packets gives
    consecutive sequence numbers, timestamps that never step back, and the
    marker exactly where the source changes."""
    stream = StreamRewriter(7, 8000, first_seq, first_ts)
    counters = {"A": [0xFFF0, 1000], "B": [5, 2**32 - 320], "C": [30000, 0]}
    now = 0.0
    out = []
    previous = None
    for source, count, pause in segments:
        now += pause
        for _ in range(count):
            if source == "local":
                data = stream.next_packet(0, False, 160, b"\xff" * 160, now)
            else:
                seq, ts = counters[source]
                counters[source] = [(seq + 1) & 0xFFFF, (ts + 160) & 0xFFFFFFFF]
                packet = RtpPacket(0, seq, ts, {"A": 1, "B": 2, "C": 3}[source], b"\xff" * 160)
                result = stream.rewrite(packet.serialize(), now)
                assert result is not None
                data = result
            _, marker, seq_out, ts_out, ssrc = header_fields(data)
            assert ssrc == 7
            out.append((marker, seq_out, ts_out, source != previous and previous is not None))
            previous = source
            now += 0.02
    for (_, s0, t0, _), (marker, s1, t1, spliced) in itertools.pairwise(out):
        assert s1 == (s0 + 1) & 0xFFFF
        assert (t1 - t0) & 0xFFFFFFFF < 2**31
        assert marker == spliced
