"""RTP packets (RFC 3550 §5.1): parsing hand-built and captured packets,
exact re-serialisation, the fast peeks, rtcp-mux demultiplexing, and the
errors for malformed input."""

from __future__ import annotations

import pytest

from telavox.rtp.errors import RtpError
from telavox.rtp.extension import HeaderExtension
from telavox.rtp.packet import RtpPacket, header_fields, is_rtcp, payload_span

# A PCMU packet as a desk phone sends it: 20 ms of µ-law silence (0xFF).
PCMU_SILENCE = bytes.fromhex(
    "80 00 1a 2b"     # V=2 P=0 X=0 CC=0, M=0 PT=0, seq 6699
    "00 01 f4 00"     # timestamp 128000
    "12 34 56 78"     # SSRC
) + b"\xff" * 160

# An Opus packet from a browser: one-byte header extension with the audio
# level (RFC 6464, ID 1) and abs-send-time (ID 3), marker set.
OPUS_WITH_EXTENSION = bytes.fromhex(
    "90 ef 12 34"     # V=2 X=1, M=1 PT=111, seq 0x1234
    "00 00 3a 98"     # timestamp 15000
    "de ad be ef"     # SSRC
    "be de 00 02"     # RFC 8285 one-byte form, 2 words
    "10 ff"           # ID 1, 1 byte: voice activity, level 127
    "32 aa bb cc"     # ID 3, 3 bytes
    "00 00"           # padding to the word
    "fc ff fe"        # Opus payload (a DTX frame)
)

# A mixer's packet: two CSRCs and 4 bytes of padding.
MIXED_PADDED = bytes.fromhex(
    "a2 08 00 07"     # V=2 P=1 CC=2, PT=8, seq 7
    "00 00 03 20"     # timestamp 800
    "00 00 00 01"     # SSRC 1
    "00 00 00 0a"     # CSRC 10
    "00 00 00 0b"     # CSRC 11
    "d5 d5 d5 d5"     # A-law payload
    "00 00 00 04"     # padding, its count last
)


def test_pcmu_capture_parses_to_its_fields() -> None:
    """A plain PCMU packet yields its header fields and the 160-byte payload."""
    packet = RtpPacket.parse(PCMU_SILENCE)
    assert (packet.payload_type, packet.marker, packet.sequence, packet.timestamp,
            packet.ssrc) == (0, False, 6699, 128000, 0x12345678)
    assert packet.payload == b"\xff" * 160
    assert packet.csrcs == () and packet.extension is None and packet.padding == b""
    assert packet.serialize() == PCMU_SILENCE


def test_extension_capture_keeps_the_extension_and_reads_its_elements() -> None:
    """The header extension is kept raw (exact round trip) and its RFC 8285
    elements can be read from it."""
    packet = RtpPacket.parse(OPUS_WITH_EXTENSION)
    assert packet.marker and packet.payload_type == 111 and packet.sequence == 0x1234
    assert packet.extension == HeaderExtension(0xBEDE, bytes.fromhex("10ff32aabbcc0000"))
    assert packet.payload == bytes.fromhex("fcfffe")
    assert packet.extension.element(1) == b"\xff"
    assert packet.extension.element(3) == bytes.fromhex("aabbcc")
    assert packet.extension.element(2) is None
    assert bytes(packet) == OPUS_WITH_EXTENSION


def test_csrcs_and_padding_are_read_and_kept() -> None:
    """CSRCs come out in order; padding is stripped from the payload but
    kept, as sent, for re-serialisation."""
    packet = RtpPacket.parse(MIXED_PADDED)
    assert packet.csrcs == (10, 11)
    assert packet.payload == b"\xd5" * 4
    assert packet.padding == b"\x00\x00\x00\x04"
    assert packet.serialize() == MIXED_PADDED


def test_built_packet_serialises_with_the_right_bits() -> None:
    """A packet built from values sets V, P, X, CC, M and PT as RFC 3550 lays them out."""
    packet = RtpPacket(payload_type=101, sequence=65535, timestamp=2**32 - 1, ssrc=7,
                       payload=b"\x05\x0a\x00\xa0", marker=True, csrcs=(1,),
                       extension=HeaderExtension(0x1234, b"abcd"), padding=b"\x00\x02")
    data = packet.serialize()
    assert data[0] == 0x80 | 0x20 | 0x10 | 1
    assert data[1] == 0x80 | 101
    assert data[2:12] == bytes.fromhex("ffff ffffffff 00000007")
    assert data[12:16] == b"\x00\x00\x00\x01"
    assert data[16:24] == b"\x12\x34\x00\x01abcd"
    assert RtpPacket.parse(data) == packet


def test_header_fields_peek_matches_the_full_parse() -> None:
    """The peek gives (pt, marker, seq, ts, ssrc) without building a packet."""
    assert header_fields(PCMU_SILENCE) == (0, False, 6699, 128000, 0x12345678)
    assert header_fields(OPUS_WITH_EXTENSION) == (111, True, 0x1234, 15000, 0xDEADBEEF)


def test_payload_span_skips_csrcs_extension_and_padding() -> None:
    """The payload bounds skip CSRCs and the extension, and stop before padding."""
    assert payload_span(PCMU_SILENCE) == (12, 172)
    start, end = payload_span(OPUS_WITH_EXTENSION)
    assert OPUS_WITH_EXTENSION[start:end] == bytes.fromhex("fcfffe")
    start, end = payload_span(MIXED_PADDED)
    assert MIXED_PADDED[start:end] == b"\xd5" * 4


@pytest.mark.parametrize("data, problem", [
    (b"", "shorter than its header"),
    (PCMU_SILENCE[:11], "shorter than its header"),
    (b"\x40" + PCMU_SILENCE[1:], "version 1"),
    (b"\x00" + PCMU_SILENCE[1:], "version 0"),
    (b"\x8f" + PCMU_SILENCE[1:40], "15 CSRCs"),
    (b"\x90" + PCMU_SILENCE[1:14], "extension is cut short"),
    (b"\x90" + PCMU_SILENCE[1:12] + b"\xbe\xde\x00\x09" + b"\0" * 8, "overruns"),
    (b"\xa0" + PCMU_SILENCE[1:-1] + b"\x00", "padding count 0"),
    (b"\xa0" + PCMU_SILENCE[1:-1] + b"\xa1", "padding count 161"),
])
def test_malformed_packets_raise_rtp_error_naming_the_problem(data: bytes,
                                                              problem: str) -> None:
    """Every malformed packet gives RtpError, and its message says what is wrong."""
    with pytest.raises(RtpError, match=problem):
        RtpPacket.parse(data)
    if len(data) >= 12 and data[0] >> 6 == 2:
        header_fields(data)  # the peek reads only the fixed header
    else:
        with pytest.raises(RtpError):
            header_fields(data)
    with pytest.raises(RtpError):
        payload_span(data)


def test_padding_filling_the_whole_payload_is_allowed() -> None:
    """A padding count equal to everything after the header leaves an empty payload."""
    data = b"\xa0" + PCMU_SILENCE[1:12] + b"\x00\x00\x00\x04"
    packet = RtpPacket.parse(data)
    assert packet.payload == b"" and packet.padding == b"\x00\x00\x00\x04"


@pytest.mark.parametrize("kwargs", [
    {"payload_type": 128}, {"sequence": 65536}, {"timestamp": -1}, {"ssrc": 2**32},
    {"csrcs": tuple(range(16))}, {"csrcs": (2**32,)}, {"padding": b"\x00\x03"},
])
def test_values_out_of_range_are_refused(kwargs: dict[str, object]) -> None:
    """A packet cannot be built with a field that does not fit its bits."""
    fields: dict[str, object] = {"payload_type": 0, "sequence": 0, "timestamp": 0, "ssrc": 0}
    fields.update(kwargs)
    with pytest.raises(RtpError):
        RtpPacket(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize("second_byte, rtcp", [
    (200, True), (201, True), (202, True), (203, True), (204, True), (205, True),
    (206, True), (207, True), (192, True), (223, True),
    (0, False), (8, False), (0x80 | 8, False), (101, False), (0x80 | 101, False),
    (0x80 | 96, False), (224, False), (191, False),
])
def test_rtcp_mux_demultiplexing_by_the_second_octet(second_byte: int, rtcp: bool) -> None:
    """RFC 5761 §4: packet types 192–223 are RTCP; RTP payload types, with
    or without the marker, are not."""
    assert is_rtcp(bytes((0x80, second_byte)) + b"\0" * 10) is rtcp


def test_too_short_datagram_is_not_rtcp() -> None:
    """A datagram of fewer than two bytes is not taken for RTCP."""
    assert not is_rtcp(b"") and not is_rtcp(b"\x80")
