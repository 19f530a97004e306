"""RTCP packets (RFC 3550 §6) and compound packets.

Owns the packet values and their wire form: :class:`SenderReport` and
:class:`ReceiverReport` with their :class:`ReportBlock` list (§6.4),
:class:`SourceDescription` with chunks of items (§6.5; CNAME read by name,
every other item kept), :class:`Goodbye` with its optional reason (§6.6),
:class:`App` kept raw (§6.7), :class:`Feedback` for the RFC 4585 transport
and payload-specific messages (types 205 and 206: header read, FCI kept
raw), and :class:`UnknownRtcp` for any other type (XR, …).

:func:`parse_compound` reads every packet of a compound datagram and
:func:`serialize_compound` writes them back; for any input that parses the
two are exact inverses.  The parser is total: any bytes give packets or an
:class:`~telavox.rtp.errors.RtpError`.  Padding is kept, as sent, on the
packet whose P bit carried it.  The rules on what a compound must start with
(SR or RR, unless RFC 5506 reduced-size RTCP is in use) are left to the
caller, as are SSRC rewrites (:mod:`telavox.rtp.rtcprewrite`).
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Callable, Iterable, Iterator
from typing import ClassVar

import attrs

from telavox.rtp.errors import RtpError
from telavox.rtp.ntp import ntp_short, short_seconds

__all__ = [
    "APP",
    "BYE",
    "PSFB",
    "RR",
    "RTPFB",
    "SDES",
    "SR",
    "App",
    "Feedback",
    "Goodbye",
    "ReceiverReport",
    "ReportBlock",
    "RtcpPacket",
    "SdesChunk",
    "SdesItem",
    "SdesType",
    "SenderReport",
    "SourceDescription",
    "UnknownRtcp",
    "iter_packets",
    "parse_compound",
    "serialize_compound",
]

SR = 200
RR = 201
SDES = 202
BYE = 203
APP = 204
RTPFB = 205
"""RFC 4585 transport-layer feedback (generic NACK is FMT 1)."""
PSFB = 206
"""RFC 4585 payload-specific feedback (PLI is FMT 1, FIR FMT 4)."""

COMMON = struct.Struct("!BBH")
"""The 4-byte common header: V/P/count, packet type, length in words minus one."""
SENDER_INFO = struct.Struct("!IQIII")
"""SR after the common header: SSRC, NTP timestamp, RTP timestamp, packets, octets."""
REPORT_BLOCK = struct.Struct("!IIIIII")
"""A report block: SSRC, fraction/cumulative lost, highest seq, jitter, LSR, DLSR."""
_WORD = struct.Struct("!I")
_TWO_WORDS = struct.Struct("!II")
_U32 = 0xFFFF_FFFF


class SdesType(enum.IntEnum):
    """SDES item types (RFC 3550 §6.5)."""

    CNAME = 1
    NAME = 2
    EMAIL = 3
    PHONE = 4
    LOC = 5
    TOOL = 6
    NOTE = 7
    PRIV = 8


def _u32(value: int, what: str) -> None:
    if not 0 <= value <= _U32:
        raise RtpError(f"{what} {value} is not 32 bits")


def _check_padding(padding: bytes) -> None:
    if padding and (len(padding) > 255 or padding[-1] != len(padding)):
        raise RtpError(f"padding of {len(padding)} bytes does not end with its length")


def _frame(packet_type: int, count: int, content: bytes, padding: bytes) -> bytes:
    """Common header + content + padding, checking the 32-bit alignment."""
    total = 4 + len(content) + len(padding)
    if total % 4:
        raise RtpError(f"RTCP packet type {packet_type} of {total} bytes is not whole words")
    if total > 4 * 0x10000:
        raise RtpError(f"RTCP packet type {packet_type} of {total} bytes is too long")
    b0 = 0xA0 | count if padding else 0x80 | count
    return COMMON.pack(b0, packet_type, total // 4 - 1) + content + padding


@attrs.frozen(slots=True)
class ReportBlock:
    """Reception statistics about one source (RFC 3550 §6.4.1).

    ``cumulative_lost`` is signed (duplicates can make it negative);
    ``last_sr`` and ``delay_since_last_sr`` are 16.16 fixed-point values.
    """

    ssrc: int
    fraction_lost: int = 0
    cumulative_lost: int = 0
    highest_sequence: int = 0
    jitter: int = 0
    last_sr: int = 0
    delay_since_last_sr: int = 0

    def __attrs_post_init__(self) -> None:
        _u32(self.ssrc, "report block SSRC")
        if not 0 <= self.fraction_lost <= 255:
            raise RtpError(f"fraction lost {self.fraction_lost} is not 8 bits")
        if not -0x800000 <= self.cumulative_lost <= 0x7FFFFF:
            raise RtpError(f"cumulative lost {self.cumulative_lost} is not 24 bits signed")
        _u32(self.highest_sequence, "highest sequence number")
        _u32(self.jitter, "jitter")
        _u32(self.last_sr, "LSR")
        _u32(self.delay_since_last_sr, "DLSR")

    def serialize(self) -> bytes:
        """The 24 bytes of the block."""
        return REPORT_BLOCK.pack(
            self.ssrc, self.fraction_lost << 24 | (self.cumulative_lost & 0xFFFFFF),
            self.highest_sequence, self.jitter, self.last_sr, self.delay_since_last_sr)

    def round_trip_time(self, arrival_ntp: int) -> float | None:
        """Seconds of round trip seen by a sender that got this block at NTP
        time ``arrival_ntp`` (RFC 3550 §6.4.1: A - LSR - DLSR), or None when
        the reporter has had no sender report yet (LSR 0)."""
        if self.last_sr == 0:
            return None
        rtt = (ntp_short(arrival_ntp) - self.last_sr - self.delay_since_last_sr) & _U32
        return short_seconds(rtt) if rtt < 0x8000_0000 else 0.0


def _report_blocks(data: bytes, pos: int, count: int) -> tuple[ReportBlock, ...]:
    blocks = []
    for _ in range(count):
        ssrc, lost, highest, jitter, lsr, dlsr = REPORT_BLOCK.unpack_from(data, pos)
        cumulative = lost & 0xFFFFFF
        if cumulative & 0x800000:
            cumulative -= 0x1000000
        blocks.append(ReportBlock(ssrc, lost >> 24, cumulative, highest, jitter, lsr, dlsr))
        pos += 24
    return tuple(blocks)


def _check_reports(reports: tuple[ReportBlock, ...]) -> None:
    if len(reports) > 31:
        raise RtpError(f"{len(reports)} report blocks, at most 31 fit")


@attrs.frozen(slots=True)
class SenderReport:
    """SR (RFC 3550 §6.4.1): sender info, report blocks, and any
    profile-specific extension kept raw."""

    packet_type: ClassVar[int] = SR

    ssrc: int
    ntp_timestamp: int
    rtp_timestamp: int
    packet_count: int
    octet_count: int
    reports: tuple[ReportBlock, ...] = ()
    extension: bytes = b""
    padding: bytes = b""

    def __attrs_post_init__(self) -> None:
        _u32(self.ssrc, "SSRC")
        if not 0 <= self.ntp_timestamp < 2**64:
            raise RtpError(f"NTP timestamp {self.ntp_timestamp} is not 64 bits")
        _u32(self.rtp_timestamp, "RTP timestamp")
        _u32(self.packet_count, "packet count")
        _u32(self.octet_count, "octet count")
        _check_reports(self.reports)
        _check_padding(self.padding)

    def serialize(self) -> bytes:
        """The packet on the wire."""
        content = SENDER_INFO.pack(self.ssrc, self.ntp_timestamp, self.rtp_timestamp,
                                   self.packet_count, self.octet_count)
        content += b"".join(r.serialize() for r in self.reports) + self.extension
        return _frame(SR, len(self.reports), content, self.padding)


@attrs.frozen(slots=True)
class ReceiverReport:
    """RR (RFC 3550 §6.4.2): the reporter's SSRC, report blocks, extension."""

    packet_type: ClassVar[int] = RR

    ssrc: int
    reports: tuple[ReportBlock, ...] = ()
    extension: bytes = b""
    padding: bytes = b""

    def __attrs_post_init__(self) -> None:
        _u32(self.ssrc, "SSRC")
        _check_reports(self.reports)
        _check_padding(self.padding)

    def serialize(self) -> bytes:
        """The packet on the wire."""
        content = _WORD.pack(self.ssrc) + b"".join(r.serialize() for r in self.reports)
        return _frame(RR, len(self.reports), content + self.extension, self.padding)


@attrs.frozen(slots=True)
class SdesItem:
    """One SDES item: its type (:class:`SdesType` or another value 1–255) and
    its value as sent (UTF-8 text; for PRIV, the prefix length and prefix
    come first)."""

    type: int
    value: bytes

    def __attrs_post_init__(self) -> None:
        if not 1 <= self.type <= 255:
            raise RtpError(f"SDES item type {self.type} is not 1-255")
        if len(self.value) > 255:
            raise RtpError(f"SDES item of {len(self.value)} bytes, at most 255 fit")

    @property
    def text(self) -> str:
        """The value decoded as UTF-8 (undecodable bytes replaced)."""
        return self.value.decode("utf-8", "replace")


@attrs.frozen(slots=True)
class SdesChunk:
    """The items describing one SSRC or CSRC."""

    ssrc: int
    items: tuple[SdesItem, ...] = ()

    def __attrs_post_init__(self) -> None:
        _u32(self.ssrc, "SDES chunk SSRC")

    def item(self, item_type: int) -> bytes | None:
        """The value of the first item of ``item_type``, or None."""
        for item in self.items:
            if item.type == item_type:
                return item.value
        return None

    @property
    def cname(self) -> str | None:
        """The CNAME, or None when the chunk has none."""
        value = self.item(SdesType.CNAME)
        return None if value is None else value.decode("utf-8", "replace")

    def serialize(self) -> bytes:
        """The chunk with its null terminator, padded to a 32-bit boundary."""
        body = b"".join(bytes((i.type, len(i.value))) + i.value for i in self.items)
        return _WORD.pack(self.ssrc) + body + bytes(4 - len(body) % 4)


@attrs.frozen(slots=True)
class SourceDescription:
    """SDES (RFC 3550 §6.5): one chunk per described source."""

    packet_type: ClassVar[int] = SDES

    chunks: tuple[SdesChunk, ...] = ()
    padding: bytes = b""

    def __attrs_post_init__(self) -> None:
        if len(self.chunks) > 31:
            raise RtpError(f"{len(self.chunks)} SDES chunks, at most 31 fit")
        _check_padding(self.padding)

    @classmethod
    def for_cname(cls, ssrc: int, cname: str) -> SourceDescription:
        """An SDES with the single CNAME item of ``ssrc``."""
        return cls((SdesChunk(ssrc, (SdesItem(SdesType.CNAME, cname.encode()),)),))

    def serialize(self) -> bytes:
        """The packet on the wire."""
        content = b"".join(c.serialize() for c in self.chunks)
        return _frame(SDES, len(self.chunks), content, self.padding)


@attrs.frozen(slots=True)
class Goodbye:
    """BYE (RFC 3550 §6.6): the sources leaving and an optional reason."""

    packet_type: ClassVar[int] = BYE

    ssrcs: tuple[int, ...] = ()
    reason: bytes | None = None
    padding: bytes = b""

    def __attrs_post_init__(self) -> None:
        if len(self.ssrcs) > 31:
            raise RtpError(f"{len(self.ssrcs)} SSRCs in a BYE, at most 31 fit")
        for ssrc in self.ssrcs:
            _u32(ssrc, "BYE SSRC")
        if self.reason is not None and len(self.reason) > 255:
            raise RtpError(f"BYE reason of {len(self.reason)} bytes, at most 255 fit")
        _check_padding(self.padding)

    @property
    def reason_text(self) -> str | None:
        """The reason decoded as UTF-8 (undecodable bytes replaced), or None."""
        return None if self.reason is None else self.reason.decode("utf-8", "replace")

    def serialize(self) -> bytes:
        """The packet on the wire."""
        content = b"".join(_WORD.pack(s) for s in self.ssrcs)
        if self.reason is not None:
            text = bytes((len(self.reason),)) + self.reason
            content += text + bytes(-len(text) % 4)
        return _frame(BYE, len(self.ssrcs), content, self.padding)


@attrs.frozen(slots=True)
class App:
    """APP (RFC 3550 §6.7), kept raw: subtype, SSRC, 4-byte name, data."""

    packet_type: ClassVar[int] = APP

    subtype: int
    ssrc: int
    name: bytes
    data: bytes = b""
    padding: bytes = b""

    def __attrs_post_init__(self) -> None:
        if not 0 <= self.subtype <= 31:
            raise RtpError(f"APP subtype {self.subtype} is not 5 bits")
        _u32(self.ssrc, "APP SSRC")
        if len(self.name) != 4:
            raise RtpError(f"APP name of {len(self.name)} bytes, not 4")
        _check_padding(self.padding)

    def serialize(self) -> bytes:
        """The packet on the wire."""
        content = _WORD.pack(self.ssrc) + self.name + self.data
        return _frame(APP, self.subtype, content, self.padding)


@attrs.frozen(slots=True)
class Feedback:
    """An RFC 4585 feedback message (RTPFB 205 or PSFB 206): the format
    (FMT), the sender and media SSRCs, and the feedback control
    information kept raw."""

    packet_type: int
    fmt: int
    sender_ssrc: int
    media_ssrc: int
    fci: bytes = b""
    padding: bytes = b""

    def __attrs_post_init__(self) -> None:
        if self.packet_type not in (RTPFB, PSFB):
            raise RtpError(f"feedback packet type {self.packet_type} is not 205 or 206")
        if not 0 <= self.fmt <= 31:
            raise RtpError(f"feedback FMT {self.fmt} is not 5 bits")
        _u32(self.sender_ssrc, "sender SSRC")
        _u32(self.media_ssrc, "media SSRC")
        _check_padding(self.padding)

    def serialize(self) -> bytes:
        """The packet on the wire."""
        content = _TWO_WORDS.pack(self.sender_ssrc, self.media_ssrc) + self.fci
        return _frame(self.packet_type, self.fmt, content, self.padding)


@attrs.frozen(slots=True)
class UnknownRtcp:
    """An RTCP packet of a type this module does not read (XR, …): the
    5-bit count field and the body after the common header, kept raw."""

    packet_type: int
    count: int
    body: bytes = b""
    padding: bytes = b""

    def __attrs_post_init__(self) -> None:
        if not 0 <= self.packet_type <= 255:
            raise RtpError(f"RTCP packet type {self.packet_type} is not 8 bits")
        if not 0 <= self.count <= 31:
            raise RtpError(f"RTCP count {self.count} is not 5 bits")
        _check_padding(self.padding)

    def serialize(self) -> bytes:
        """The packet on the wire."""
        return _frame(self.packet_type, self.count, self.body, self.padding)


RtcpPacket = (SenderReport | ReceiverReport | SourceDescription | Goodbye | App | Feedback
              | UnknownRtcp)
"""Any one packet of a compound."""


def iter_packets(data: bytes | bytearray) -> Iterator[tuple[int, int, int, int, int]]:
    """Walk the packets of a compound: ``(packet_type, count, start, content_end,
    end)`` each, where the content runs from ``start + 4`` to ``content_end``
    and any padding from there to ``end``.

    Checks version, lengths and padding counts only; raises :class:`RtpError`
    when they do not hold (for an empty datagram, too).
    """
    n = len(data)
    if n == 0:
        raise RtpError("empty RTCP datagram")
    pos = 0
    while pos < n:
        if n - pos < 4:
            raise RtpError(f"{n - pos} stray bytes after the RTCP packets")
        b0, packet_type, length = COMMON.unpack_from(data, pos)
        if b0 & 0xC0 != 0x80:
            raise RtpError(f"RTCP version {b0 >> 6}, expected 2")
        end = pos + 4 * (length + 1)
        if end > n:
            raise RtpError(f"RTCP packet type {packet_type} of {4 * (length + 1)} bytes "
                           f"overruns the datagram ({n - pos} left)")
        content_end = end
        if b0 & 0x20:
            pad = data[end - 1]
            if pad == 0 or pad > end - pos - 4:
                raise RtpError(f"RTCP padding count {pad} does not fit packet type "
                               f"{packet_type}")
            content_end = end - pad
        yield packet_type, b0 & 0x1F, pos, content_end, end
        pos = end


def parse_compound(data: bytes) -> tuple[RtcpPacket, ...]:
    """Every packet of a compound RTCP datagram, in order.

    Raises :class:`RtpError` if any packet is malformed or does not fill its
    length exactly; ``serialize_compound(parse_compound(data)) == data``.
    """
    packets: list[RtcpPacket] = []
    for packet_type, count, start, content_end, end in iter_packets(data):
        padding = bytes(data[content_end:end])
        parser = _PARSERS.get(packet_type, _parse_unknown)
        packets.append(parser(packet_type, count, data, start + 4, content_end, padding))
    return tuple(packets)


def serialize_compound(packets: Iterable[RtcpPacket]) -> bytes:
    """The datagram holding ``packets`` in order."""
    return b"".join(p.serialize() for p in packets)


_Parser = Callable[[int, int, bytes, int, int, bytes], RtcpPacket]


def _need(packet_type: int, have: int, want: int) -> None:
    if have < want:
        raise RtpError(f"RTCP packet type {packet_type} has {have} bytes of content, "
                       f"needs {want}")


def _parse_sr(pt: int, count: int, data: bytes, pos: int, end: int,
              padding: bytes) -> RtcpPacket:
    _need(pt, end - pos, 24 + 24 * count)
    ssrc, ntp, rtp_ts, packets, octets = SENDER_INFO.unpack_from(data, pos)
    reports = _report_blocks(data, pos + 24, count)
    extension = bytes(data[pos + 24 + 24 * count:end])
    return SenderReport(ssrc, ntp, rtp_ts, packets, octets, reports, extension, padding)


def _parse_rr(pt: int, count: int, data: bytes, pos: int, end: int,
              padding: bytes) -> RtcpPacket:
    _need(pt, end - pos, 4 + 24 * count)
    ssrc = _WORD.unpack_from(data, pos)[0]
    reports = _report_blocks(data, pos + 4, count)
    return ReceiverReport(ssrc, reports, bytes(data[pos + 4 + 24 * count:end]), padding)


def _parse_sdes(pt: int, count: int, data: bytes, pos: int, end: int,
                padding: bytes) -> RtcpPacket:
    chunks = []
    for _ in range(count):
        _need(pt, end - pos, 8)
        ssrc = _WORD.unpack_from(data, pos)[0]
        pos += 4
        start = pos
        items = []
        while True:
            if pos >= end:
                raise RtpError("SDES chunk without its null terminator")
            item_type = data[pos]
            if item_type == 0:
                break
            if pos + 2 > end or pos + 2 + data[pos + 1] > end:
                raise RtpError(f"SDES item type {item_type} overruns the packet")
            length = data[pos + 1]
            items.append(SdesItem(item_type, bytes(data[pos + 2:pos + 2 + length])))
            pos += 2 + length
        stop = start + (pos - start) // 4 * 4 + 4  # terminator and fill to the boundary
        if stop > end or any(data[pos:stop]):
            raise RtpError("SDES chunk not ended by null octets to a 32-bit boundary")
        pos = stop
        chunks.append(SdesChunk(ssrc, tuple(items)))
    if pos != end:
        raise RtpError(f"{end - pos} bytes after the SDES chunks")
    return SourceDescription(tuple(chunks), padding)


def _parse_bye(pt: int, count: int, data: bytes, pos: int, end: int,
               padding: bytes) -> RtcpPacket:
    _need(pt, end - pos, 4 * count)
    ssrcs = tuple(_WORD.unpack_from(data, pos + 4 * i)[0] for i in range(count))
    pos += 4 * count
    reason = None
    if pos < end:
        length = data[pos]
        stop = pos + 1 + length
        fill = stop + (-(1 + length) % 4)
        if fill != end or any(data[stop:fill]):
            raise RtpError("BYE reason does not fill the packet to a 32-bit boundary")
        reason = bytes(data[pos + 1:stop])
    return Goodbye(ssrcs, reason, padding)


def _parse_app(pt: int, count: int, data: bytes, pos: int, end: int,
               padding: bytes) -> RtcpPacket:
    _need(pt, end - pos, 8)
    ssrc = _WORD.unpack_from(data, pos)[0]
    return App(count, ssrc, bytes(data[pos + 4:pos + 8]), bytes(data[pos + 8:end]), padding)


def _parse_feedback(pt: int, count: int, data: bytes, pos: int, end: int,
                    padding: bytes) -> RtcpPacket:
    _need(pt, end - pos, 8)
    sender, media = _TWO_WORDS.unpack_from(data, pos)
    return Feedback(pt, count, sender, media, bytes(data[pos + 8:end]), padding)


def _parse_unknown(pt: int, count: int, data: bytes, pos: int, end: int,
                   padding: bytes) -> RtcpPacket:
    return UnknownRtcp(pt, count, bytes(data[pos:end]), padding)


_PARSERS: dict[int, _Parser] = {
    SR: _parse_sr, RR: _parse_rr, SDES: _parse_sdes, BYE: _parse_bye, APP: _parse_app,
    RTPFB: _parse_feedback, PSFB: _parse_feedback,
}
