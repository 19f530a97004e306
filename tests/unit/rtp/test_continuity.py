"""Stream continuity for the relay: one outgoing SSRC whose sequence
numbers and timestamps run on across a change of incoming SSRC, a jump of
the same SSRC, and a locally played prompt or RFC 4733 event in between."""

from __future__ import annotations

import pytest

from telavox.rtp.continuity import StreamRewriter
from telavox.rtp.dtmf import event_packets
from telavox.rtp.errors import RtpError
from telavox.rtp.extension import HeaderExtension
from telavox.rtp.packet import RtpPacket, header_fields
from telavox.rtp.rtcp import SenderReport, parse_compound
from telavox.rtp.rtcprewrite import rewrite_rtcp

OUT = 0xCAFE0001
A = 0x0000AAAA
B = 0x0000BBBB


def rtp(ssrc: int, seq: int, ts: int, *, pt: int = 0, marker: bool = False,
        payload: bytes = b"\xff" * 160) -> bytes:
    """A PCMU packet from ``ssrc``."""
    return RtpPacket(pt, seq & 0xFFFF, ts & 0xFFFFFFFF, ssrc, payload, marker).serialize()


def out(data: bytes | None) -> tuple[int, bool, int, int, int]:
    """The header fields of a rewritten packet (which must not be dropped)."""
    assert data is not None
    return header_fields(data)


def rewriter(**kw: object) -> StreamRewriter:
    """A stream starting at sequence 1000 and timestamp 50000, 8000 Hz."""
    return StreamRewriter(OUT, 8000, 1000, 50000, **kw)  # type: ignore[arg-type]


def test_first_source_is_mapped_by_fixed_offsets() -> None:
    """The first packet gets the stream's first numbers; later ones keep their
    spacing, so loss shows as the same gap and no marker is added."""
    s = rewriter()
    assert out(s.rewrite(rtp(A, 7, 90000), 0.0)) == (0, False, 1000, 50000, OUT)
    assert out(s.rewrite(rtp(A, 8, 90160), 0.02)) == (0, False, 1001, 50160, OUT)
    assert out(s.rewrite(rtp(A, 10, 90480), 0.06)) == (0, False, 1003, 50480, OUT)
    assert s.mapping() == (A, 993, (50000 - 90000) & 0xFFFFFFFF)


def test_ssrc_change_continues_sequence_and_timestamp() -> None:
    """After a transfer the new SSRC's first packet is the next sequence
    number, its timestamp the last plus the elapsed time, with the marker;
    its later packets follow by its own spacing."""
    s = rewriter()
    for i in range(5):
        s.rewrite(rtp(A, 100 + i, 160 * i), 0.02 * i)  # last: seq 1004, ts 50640 at 0.08
    assert out(s.rewrite(rtp(B, 40000, 3_000_000), 0.30)) == (0, True, 1005, 50640 + 1760, OUT)
    assert out(s.rewrite(rtp(B, 40001, 3_000_160), 0.32)) == (0, False, 1006, 52560, OUT)
    assert s.mapping() == (B, (1005 - 40000) & 0xFFFF, (52400 - 3_000_000) & 0xFFFFFFFF)


def test_splice_never_goes_back_before_the_end_of_the_last_packet() -> None:
    """A source taking over at once (no time elapsed) starts after the last
    packet's length, not on top of it."""
    s = rewriter()
    s.rewrite(rtp(A, 1, 0), 1.0)
    s.rewrite(rtp(A, 2, 160), 1.02)
    assert out(s.rewrite(rtp(B, 9, 777), 1.02))[2:4] == (1002, 50320)


def test_splice_marker_can_be_left_off() -> None:
    """With mark_splices False the incoming marker passes unchanged."""
    s = rewriter(mark_splices=False)
    s.rewrite(rtp(A, 1, 0), 0.0)
    assert out(s.rewrite(rtp(B, 1, 0), 0.02))[1] is False


def test_same_ssrc_jump_is_spliced() -> None:
    """A jump of MAX_DROPOUT or more in the same SSRC, or of more than
    max_jump seconds of timestamp, is treated as a new source."""
    s = rewriter()
    s.rewrite(rtp(A, 1, 0), 0.0)
    assert out(s.rewrite(rtp(A, 5001, 160), 0.02))[1:4] == (True, 1001, 50160)
    assert out(s.rewrite(rtp(A, 5002, 8000 * 60), 0.04))[1:4] == (True, 1002, 50320)
    assert out(s.rewrite(rtp(A, 5003, 8000 * 60 + 160), 0.06))[1:4] == (False, 1003, 50480)


def test_silence_gap_in_the_same_source_keeps_its_timestamps() -> None:
    """A source that stops sending (silence suppression) keeps its own
    timestamps: a gap below max_jump is passed through, not re-anchored."""
    s = rewriter()
    s.rewrite(rtp(A, 1, 0), 0.0)
    assert out(s.rewrite(rtp(A, 2, 8000 * 3, marker=True), 3.5))[1:4] == (True, 1001, 74000)


def test_late_packets_keep_their_place_but_not_from_before_a_splice() -> None:
    """A reordered packet gets its mapped numbers; one that predates the
    splice, or comes from the previous source, is dropped."""
    s = rewriter()
    s.rewrite(rtp(A, 10, 1600), 0.0)
    s.rewrite(rtp(A, 12, 1920), 0.04)
    assert out(s.rewrite(rtp(A, 11, 1760), 0.045))[2:4] == (1001, 50160)
    assert out(s.rewrite(rtp(B, 500, 0), 0.06))[2] == 1003
    assert s.rewrite(rtp(B, 499, -160), 0.07) is None  # B's own, from before the splice
    assert s.rewrite(rtp(A, 9, 1440), 0.07) is None  # a straggler of A
    assert out(s.rewrite(rtp(B, 501, 160), 0.08))[1:3] == (False, 1004)


def test_prompt_interlude_between_relayed_packets() -> None:
    """Relay, then a local prompt, then relay again: sequence numbers run on
    by one; the prompt starts by elapsed time with the marker and follows
    its own frame length; the phone's return is spliced by elapsed time."""
    s = rewriter()
    for i in range(3):
        s.rewrite(rtp(A, 100 + i, 160 * i), 0.02 * i)  # last: 1002, ts 50320 at 0.04
    prompt = [s.next_packet(0, False, 160, b"\x7f" * 160, 0.06 + 0.02 * i) for i in range(4)]
    assert [header_fields(p)[1:4] for p in prompt] == [
        (True, 1003, 50480), (False, 1004, 50640), (False, 1005, 50800), (False, 1006, 50960)]
    assert s.mapping() is None
    # the phone has gone on sending meanwhile: its timestamps moved 1 s on
    assert out(s.rewrite(rtp(A, 150, 8000 + 320), 0.20))[1:4] == (True, 1007, 51600)
    assert out(s.rewrite(rtp(A, 151, 8000 + 480), 0.22))[1:4] == (False, 1008, 51760)


def test_prompt_after_a_pause_restarts_by_elapsed_time_when_marked() -> None:
    """A local talkspurt marked as such is placed by elapsed time; unmarked
    it follows the previous frame."""
    s = rewriter()
    s.next_packet(0, True, 160, b"", 1.0)
    assert header_fields(s.next_header(0, False, 160, 5.0))[3] == 50160
    assert header_fields(s.next_header(0, True, 160, 6.0))[3] == 50160 + 8000


def test_local_dtmf_event_shares_one_timestamp_and_audio_resumes_after_it() -> None:
    """RFC 4733 packets from event_packets() all carry the event's start
    timestamp; the next audio packet follows it by the event's duration."""
    s = rewriter()
    s.next_packet(0, True, 160, b"\xff" * 160, 0.0)  # ts 50000
    start = 0.02
    sent = [s.next_packet(101, p.marker, p.advance, p.payload, start + p.offset)
            for p in event_packets("5", 100)]
    fields = [header_fields(p) for p in sent]
    assert {f[3] for f in fields} == {50160}
    assert [f[1] for f in fields] == [True] + [False] * (len(fields) - 1)
    assert [f[2] for f in fields] == list(range(1001, 1001 + len(fields)))
    after = s.next_packet(0, False, 160, b"\xff" * 160, start + 0.3)
    assert header_fields(after)[3] == 50160 + 800


def test_relay_after_a_local_event_is_placed_by_time_since_the_event_start() -> None:
    """A relayed source taking over after an event is anchored at the event's
    start plus the elapsed time, not at the last (repeated) end packet."""
    s = rewriter()
    for p in event_packets("1", 100):
        s.next_packet(101, p.marker, p.advance, p.payload, 1.0 + p.offset)
    assert out(s.rewrite(rtp(A, 1, 0), 1.5))[3] == 50000 + 4000


def test_payload_type_mapping_and_the_rest_of_the_packet_is_copied() -> None:
    """Payload types are renumbered through the map; CSRCs, extension,
    payload and padding are copied byte for byte."""
    s = rewriter(payload_types={96: 101})
    packet = RtpPacket(96, 5, 6, A, b"\x01\x0a\x00\xa0", True, (1, 2),
                       HeaderExtension(0xBEDE, b"\x10\xff\x00\x00"), b"\x00\x02")
    again = RtpPacket.parse(s.rewrite(packet.serialize(), 0.0) or b"")
    assert again.payload_type == 101 and again.marker
    assert (again.csrcs, again.extension, again.payload, again.padding) == (
        packet.csrcs, packet.extension, packet.payload, packet.padding)
    assert out(s.rewrite(rtp(A, 6, 166, pt=0), 0.02))[0] == 0


def test_counts_for_the_sender_report() -> None:
    """Packets and payload octets (padding and header excluded) are counted."""
    s = rewriter()
    s.rewrite(rtp(A, 1, 0), 0.0)
    s.rewrite(RtpPacket(0, 2, 160, A, b"x" * 10, padding=b"\x00\x02").serialize(), 0.02)
    s.next_packet(0, False, 160, b"y" * 20, 0.04)
    s.next_header(13, False, 0, 0.06, payload_size=1)
    assert (s.packets_sent, s.octets_sent) == (4, 160 + 10 + 20 + 1)


def test_forget_source_splices_the_same_source() -> None:
    """forget_source() makes the next packet a splice even from the same SSRC."""
    s = rewriter()
    s.rewrite(rtp(A, 1, 0), 0.0)
    s.forget_source()
    assert out(s.rewrite(rtp(A, 2, 160), 0.02))[1] is True


def test_sender_report_timestamp_follows_the_mapping() -> None:
    """The mapping's offsets fed to rewrite_rtcp put a relayed SR on the
    outgoing stream's SSRC and timeline."""
    s = rewriter()
    s.rewrite(rtp(A, 1, 90000), 0.0)
    mapping = s.mapping()
    assert mapping is not None
    source, _, ts_offset = mapping
    sr = SenderReport(A, 1 << 32, 90000 + 800, 10, 1600).serialize()
    (again,) = parse_compound(rewrite_rtcp(sr, {A: OUT}, {source: ts_offset}))
    assert isinstance(again, SenderReport)
    assert (again.ssrc, again.rtp_timestamp) == (OUT, 50800)


@pytest.mark.parametrize("data", [b"", b"\x80" * 11, b"\x40" + bytes(11),
                                  b"\xa0" + bytes(11) + b"\x00"])
def test_malformed_packets_raise_and_leave_the_state(data: bytes) -> None:
    """A datagram that is not RTP gives RtpError and changes nothing."""
    s = rewriter()
    with pytest.raises(RtpError):
        s.rewrite(data, 0.0)
    assert (s.packets_sent, s.last_sequence) == (0, 999)


def test_bad_construction_and_payload_types_are_refused() -> None:
    """An SSRC beyond 32 bits, a zero clock, or a payload type beyond 7 bits is refused."""
    with pytest.raises(RtpError):
        StreamRewriter(2**32, 8000, 0, 0)
    with pytest.raises(ValueError):
        StreamRewriter(1, 0, 0, 0)
    with pytest.raises(RtpError):
        rewriter().next_header(128, False, 160, 0.0)
