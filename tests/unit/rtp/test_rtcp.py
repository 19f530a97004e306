"""RTCP (RFC 3550 §6, RFC 4585): compound packets captured from phones
parse to their fields and re-serialise exactly, values build the bytes
RFC 3550 lays out, malformed packets give RtpError, and SSRC rewriting
touches only the SSRC fields."""

from __future__ import annotations

import pytest

from telavox.rtp.errors import RtpError
from telavox.rtp.ntp import NTP_UNIX_OFFSET, ntp_from_unix, ntp_short, ntp_to_unix
from telavox.rtp.rtcp import (
    PSFB,
    RTPFB,
    App,
    Feedback,
    Goodbye,
    ReceiverReport,
    ReportBlock,
    SdesChunk,
    SdesItem,
    SdesType,
    SenderReport,
    SourceDescription,
    UnknownRtcp,
    parse_compound,
    serialize_compound,
)
from telavox.rtp.rtcprewrite import rewrite_rtcp

PHONE = 0x5F1C2A3B
PEER = 0x0A0B0C0D

# A softphone's regular report while it sends: SR without report blocks,
# then SDES with CNAME and TOOL.
SOFTPHONE_SR_SDES = bytes.fromhex(
    "80 c8 00 06"      # SR, RC=0, 7 words
    "5f 1c 2a 3b"      # sender SSRC
    "e8 9a 4b 2c"      # NTP seconds
    "40 00 00 00"      # NTP fraction (0.25 s)
    "00 0a 8c 00"      # RTP timestamp 691200
    "00 00 00 fa"      # 250 packets
    "00 00 9c 40"      # 40000 octets
    "81 ca 00 0a"      # SDES, SC=1, 11 words
    "5f 1c 2a 3b"
) + b"\x01\x0fuser@192.0.2.10" + b"\x06\x0ebaresip v3.9.0" + b"\x00\x00\x00"

# The other side's answer: RR with one report block about the softphone,
# then its own SDES.
PHONE_RR_SDES = bytes.fromhex(
    "81 c9 00 07"      # RR, RC=1, 8 words
    "0a 0b 0c 0d"      # reporter SSRC
    "5f 1c 2a 3b"      # about the softphone
    "05 ff ff fe"      # fraction lost 5/256, cumulative lost -2 (duplicates)
    "00 01 1a 2b"      # extended highest sequence number (one wrap)
    "00 00 00 1c"      # jitter 28
    "4b 2c 40 00"      # LSR: the middle of the SR's NTP timestamp
    "00 00 80 00"      # DLSR 0.5 s
    "81 ca 00 05"      # SDES, SC=1, 6 words
    "0a 0b 0c 0d"
) + b"\x01\x0bbob@pbx.lan" + b"\x00\x00\x00"

# Hanging up: an empty RR, then BYE with a reason.
RR_BYE = bytes.fromhex(
    "80 c9 00 01"      # RR, RC=0
    "0a 0b 0c 0d"
    "81 cb 00 03"      # BYE, SC=1
    "0a 0b 0c 0d"
) + b"\x06hangup\x00"

PLI = bytes.fromhex("81 ce 00 02  0a0b0c0d 5f1c2a3b")
NACK = bytes.fromhex("81 cd 00 03  0a0b0c0d 5f1c2a3b  1234 0005")
FIR = bytes.fromhex("84 ce 00 04  0a0b0c0d 00000000  5f1c2a3b 07000000")
APP_PACKET = bytes.fromhex("82 cc 00 03  0a0b0c0d") + b"TELX" + b"\x01\x02\x03\x04"
XR = bytes.fromhex("80 cf 00 02  0a0b0c0d 04000000")
PADDED_RR = bytes.fromhex("a0 c9 00 02  0a0b0c0d 00000004")


def test_softphone_sender_report_and_sdes() -> None:
    """The SR's sender info and the SDES items come out as sent."""
    sr, sdes = parse_compound(SOFTPHONE_SR_SDES)
    assert sr == SenderReport(PHONE, 0xE89A4B2C_40000000, 691200, 250, 40000)
    assert isinstance(sdes, SourceDescription)
    (chunk,) = sdes.chunks
    assert chunk.ssrc == PHONE
    assert chunk.cname == "user@192.0.2.10"
    assert chunk.item(SdesType.TOOL) == b"baresip v3.9.0"
    assert chunk.items[1].text == "baresip v3.9.0"
    assert serialize_compound((sr, sdes)) == SOFTPHONE_SR_SDES


def test_receiver_report_block_fields_including_negative_loss() -> None:
    """A report block's cumulative loss is signed 24 bits; LSR/DLSR are 16.16."""
    rr, sdes = parse_compound(PHONE_RR_SDES)
    assert isinstance(rr, ReceiverReport) and rr.ssrc == PEER
    assert rr.reports == (ReportBlock(PHONE, 5, -2, 0x11A2B, 28, 0x4B2C4000, 0x8000),)
    assert isinstance(sdes, SourceDescription) and sdes.chunks[0].cname == "bob@pbx.lan"
    assert serialize_compound((rr, sdes)) == PHONE_RR_SDES


def test_round_trip_time_from_a_report_block() -> None:
    """RFC 3550 §6.4.1: RTT = A - LSR - DLSR, here 0.1 s after a 0.5 s delay."""
    (rr, _) = parse_compound(PHONE_RR_SDES)
    assert isinstance(rr, ReceiverReport)
    block = rr.reports[0]
    sent = ntp_to_unix(0xE89A4B2C_40000000)
    arrival = ntp_from_unix(sent + 0.6)
    assert block.round_trip_time(arrival) == pytest.approx(0.1, abs=1e-4)
    assert ReportBlock(PHONE).round_trip_time(arrival) is None


def test_bye_with_reason() -> None:
    """BYE lists its SSRCs and carries its reason; the fill after it is zeros."""
    rr, bye = parse_compound(RR_BYE)
    assert rr == ReceiverReport(PEER)
    assert bye == Goodbye((PEER,), b"hangup")
    assert isinstance(bye, Goodbye) and bye.reason_text == "hangup"
    assert serialize_compound((rr, bye)) == RR_BYE


def test_bye_without_reason_and_with_an_empty_reason_differ() -> None:
    """No reason means no bytes; an empty reason is a zero length octet and fill."""
    assert Goodbye((1,)).serialize() == bytes.fromhex("81cb0001 00000001")
    assert Goodbye((1,), b"").serialize() == bytes.fromhex("81cb0002 00000001 00000000")
    assert parse_compound(Goodbye((1,), b"").serialize()) == (Goodbye((1,), b""),)


def test_feedback_messages_keep_their_fci_raw() -> None:
    """RFC 4585 PLI, generic NACK and FIR: header read, FCI kept as bytes."""
    assert parse_compound(PLI) == (Feedback(PSFB, 1, PEER, PHONE),)
    assert parse_compound(NACK) == (Feedback(RTPFB, 1, PEER, PHONE, bytes.fromhex("12340005")),)
    (fir,) = parse_compound(FIR)
    assert isinstance(fir, Feedback) and fir.fmt == 4 and fir.media_ssrc == 0
    for data in (PLI, NACK, FIR):
        assert serialize_compound(parse_compound(data)) == data


def test_app_and_unknown_types_are_kept_raw() -> None:
    """APP keeps subtype, name and data; XR (207) is carried as an unknown packet."""
    assert parse_compound(APP_PACKET) == (App(2, PEER, b"TELX", b"\x01\x02\x03\x04"),)
    assert parse_compound(XR) == (UnknownRtcp(207, 0, bytes.fromhex("0a0b0c0d04000000")),)
    assert serialize_compound(parse_compound(APP_PACKET + XR)) == APP_PACKET + XR


def test_padding_is_kept_on_its_packet() -> None:
    """A padded packet keeps its padding; the content is read without it."""
    (rr,) = parse_compound(PADDED_RR)
    assert rr == ReceiverReport(PEER, padding=b"\x00\x00\x00\x04")
    assert rr.serialize() == PADDED_RR


def test_built_sender_report_with_blocks_matches_the_layout() -> None:
    """An SR built from values has RC, length and the blocks where §6.4.1 puts them."""
    block = ReportBlock(0xAABBCCDD, fraction_lost=128, cumulative_lost=-1,
                        highest_sequence=70000, jitter=12, last_sr=1, delay_since_last_sr=2)
    sr = SenderReport(1, 2, 3, 4, 5, (block, block), extension=b"EXTN")
    data = sr.serialize()
    assert data[:4] == bytes.fromhex("82 c8 00 13")
    assert data[28:32] == bytes.fromhex("aabbccdd")
    assert data[32:36] == bytes.fromhex("80ffffff")
    assert data[-4:] == b"EXTN"
    assert parse_compound(data) == (sr,)


def test_sdes_for_cname_and_padding_to_the_word() -> None:
    """A CNAME-only SDES pads its chunk with 1–4 null octets to a word boundary."""
    for cname in ("a", "ab", "abc", "abcd"):
        data = SourceDescription.for_cname(7, cname).serialize()
        assert len(data) % 4 == 0
        assert data[-1] == 0
        (sdes,) = parse_compound(data)
        assert isinstance(sdes, SourceDescription) and sdes.chunks[0].cname == cname


def test_sdes_keeps_unknown_and_priv_items() -> None:
    """Items beyond CNAME, PRIV and types this code does not name survive a round trip."""
    chunk = SdesChunk(9, (SdesItem(SdesType.NAME, "Zoë".encode()),
                          SdesItem(SdesType.PRIV, b"\x03abcvalue"), SdesItem(42, b"x")))
    sdes = SourceDescription((chunk, SdesChunk(10)))
    assert parse_compound(sdes.serialize()) == (sdes,)
    assert chunk.cname is None


@pytest.mark.parametrize("data, problem", [
    (b"", "empty"),
    (PLI + b"\x80\xc9", "stray bytes"),
    (b"\x40" + PLI[1:], "version 1"),
    (bytes.fromhex("80 c9 00 05 0a0b0c0d"), "overruns"),
    (bytes.fromhex("a0 c9 00 01 0a0b0c0d")[:-1] + b"\x00", "padding count 0"),
    (bytes.fromhex("a0 c9 00 01 0a0b0c09"), "padding count 9"),
    (bytes.fromhex("81 c8 00 06") + bytes(24), "needs 48"),
    (bytes.fromhex("81 c9 00 01 0a0b0c0d"), "needs 28"),
    (bytes.fromhex("81 ca 00 02 0a0b0c0d 01026869"), "null terminator"),
    (bytes.fromhex("81 ca 00 02 0a0b0c0d 01046869"), "overruns"),
    (bytes.fromhex("81 ca 00 03 0a0b0c0d 01016800 00000000"), "after the SDES chunks"),
    (bytes.fromhex("81 ca 00 02 0a0b0c0d 00000001"), "null octets"),
    (bytes.fromhex("81 cb 00 02 0a0b0c0d 05616263"), "BYE reason"),
    (bytes.fromhex("81 cb 00 02 0a0b0c0d 01610001"), "BYE reason"),
    (bytes.fromhex("80 cc 00 01 0a0b0c0d"), "needs 8"),
    (bytes.fromhex("81 cd 00 01 0a0b0c0d"), "needs 8"),
])
def test_malformed_compounds_raise_rtp_error_naming_the_problem(data: bytes,
                                                                problem: str) -> None:
    """Each malformed compound gives RtpError with a message naming the fault."""
    with pytest.raises(RtpError, match=problem):
        parse_compound(data)


@pytest.mark.parametrize("build", [
    lambda: ReportBlock(1, fraction_lost=256),
    lambda: ReportBlock(1, cumulative_lost=0x800000),
    lambda: SenderReport(1, 2**64, 0, 0, 0),
    lambda: ReceiverReport(1, (ReportBlock(1),) * 32),
    lambda: SdesItem(0, b""),
    lambda: SdesItem(1, b"x" * 256),
    lambda: Goodbye((2**32,)),
    lambda: App(32, 1, b"ABCD"),
    lambda: App(0, 1, b"ABC"),
    lambda: Feedback(200, 1, 1, 1),
    lambda: UnknownRtcp(207, 32),
    lambda: ReceiverReport(1, padding=b"\x00\x01\x00"),
])
def test_values_out_of_range_are_refused(build: object) -> None:
    """A packet cannot be built with a field that does not fit its bits."""
    with pytest.raises(RtpError):
        build()  # type: ignore[operator]


def test_serialising_unaligned_content_is_refused() -> None:
    """RTCP lengths count words: content that is not whole words cannot be sent."""
    with pytest.raises(RtpError, match="whole words"):
        App(0, 1, b"ABCD", b"xyz").serialize()


def test_ntp_conversions() -> None:
    """Unix time maps onto the NTP era-0 timestamp and back; LSR takes the middle bits."""
    assert ntp_from_unix(0.0) == NTP_UNIX_OFFSET << 32
    assert ntp_from_unix(1.5) == (NTP_UNIX_OFFSET + 1) << 32 | 0x8000_0000
    assert ntp_to_unix(ntp_from_unix(1_700_000_000.25)) == 1_700_000_000.25
    assert ntp_short(0xE89A4B2C_40000000) == 0x4B2C4000


# --- SSRC rewriting ----------------------------------------------------------------------

MAP = {PHONE: 0x11111111, PEER: 0x22222222}


def test_rewrite_maps_sender_chunk_and_report_block_ssrcs() -> None:
    """Sender SSRCs, SDES chunk SSRCs and report-block sources are mapped;
    every other field is left as it was."""
    data = rewrite_rtcp(SOFTPHONE_SR_SDES + PHONE_RR_SDES, MAP)
    sr, sdes, rr, sdes2 = parse_compound(data)
    assert isinstance(sr, SenderReport) and sr.ssrc == 0x11111111
    assert sr.rtp_timestamp == 691200 and sr.packet_count == 250
    assert isinstance(sdes, SourceDescription) and sdes.chunks[0].ssrc == 0x11111111
    assert sdes.chunks[0].cname == "user@192.0.2.10"
    assert isinstance(rr, ReceiverReport) and rr.ssrc == 0x22222222
    assert rr.reports[0] == ReportBlock(0x11111111, 5, -2, 0x11A2B, 28, 0x4B2C4000, 0x8000)
    assert isinstance(sdes2, SourceDescription) and sdes2.chunks[0].ssrc == 0x22222222
    assert len(data) == len(SOFTPHONE_SR_SDES + PHONE_RR_SDES)


def test_rewrite_shifts_the_sender_report_timestamp_by_the_relay_offset() -> None:
    """The SR's RTP timestamp moves by the offset given for its original sender."""
    data = rewrite_rtcp(SOFTPHONE_SR_SDES, MAP, {PHONE: 2**32 - 200})
    sr = parse_compound(data)[0]
    assert isinstance(sr, SenderReport) and sr.rtp_timestamp == 691000


def test_rewrite_maps_bye_app_and_feedback_ssrcs() -> None:
    """BYE entries, the APP SSRC, feedback sender and media SSRCs, and FIR's
    FCI SSRC are mapped; unknown packet types pass untouched."""
    data = rewrite_rtcp(RR_BYE + APP_PACKET + PLI + FIR + XR, MAP)
    rr, bye, app, pli, fir, xr = parse_compound(data)
    assert rr == ReceiverReport(0x22222222)
    assert isinstance(bye, Goodbye) and bye.ssrcs == (0x22222222,) and bye.reason == b"hangup"
    assert isinstance(app, App) and app.ssrc == 0x22222222
    assert pli == Feedback(PSFB, 1, 0x22222222, 0x11111111)
    assert isinstance(fir, Feedback) and fir.fci == bytes.fromhex("11111111 07000000")
    assert xr == parse_compound(XR)[0]


def test_rewrite_without_matches_changes_nothing() -> None:
    """SSRCs not in the mapping stay; the bytes come back equal."""
    data = SOFTPHONE_SR_SDES + PHONE_RR_SDES + RR_BYE
    assert rewrite_rtcp(data, {1: 2}) == data


@pytest.mark.parametrize("data", [
    b"", bytes.fromhex("81 c9 00 01 0a0b0c0d"),
    bytes.fromhex("81 ca 00 02 0a0b0c0d 01026869"),
    bytes.fromhex("81 ca 00 01 0a0b0c0d"),
    bytes.fromhex("81 cb 00 00"),
    bytes.fromhex("80 ce 00 01 0a0b0c0d"),
])
def test_rewrite_of_malformed_compounds_raises(data: bytes) -> None:
    """When SSRC fields cannot be found, rewriting gives RtpError."""
    with pytest.raises(RtpError):
        rewrite_rtcp(data, MAP)
