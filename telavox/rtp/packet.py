"""RTP data packets (RFC 3550 §5.1) and the cheap per-packet views a relay uses.

Owns :class:`RtpPacket` (parse and serialise, exact round trip: CSRC list,
header extension and padding are kept as they came), the fast peeks
:func:`header_fields` and :func:`payload_span` that read a datagram without
building any object, and :func:`is_rtcp`, the RFC 5761 §4 test that tells
RTCP from RTP on a multiplexed port.

Every function here is total on its input: any bytes give a result or an
:class:`~telavox.rtp.errors.RtpError`, never another exception.
"""

from __future__ import annotations

import struct

import attrs

from telavox.rtp.errors import RtpError
from telavox.rtp.extension import HeaderExtension

__all__ = [
    "HEADER",
    "RtpPacket",
    "header_fields",
    "is_rtcp",
    "payload_span",
]

HEADER = struct.Struct("!BBHII")
"""The fixed 12-byte header: V/P/X/CC, M/PT, sequence number, timestamp, SSRC."""

_EXT_HEAD = struct.Struct("!HH")
_CSRCS = [struct.Struct(f"!{n}I") for n in range(16)]


def header_fields(data: bytes) -> tuple[int, bool, int, int, int]:
    """``(payload_type, marker, sequence, timestamp, ssrc)`` of an RTP packet.

    Reads only the fixed header: the cheapest look at a datagram.  Raises
    :class:`RtpError` when there are fewer than 12 bytes or the version is
    not 2; the rest of the packet is not checked.
    """
    try:
        b0, b1, seq, ts, ssrc = HEADER.unpack_from(data)
    except struct.error:
        raise RtpError(f"RTP packet of {len(data)} bytes is shorter than its header") from None
    if b0 & 0xC0 != 0x80:
        raise RtpError(f"RTP version {b0 >> 6}, expected 2")
    return b1 & 0x7F, b1 > 0x7F, seq, ts, ssrc


def payload_span(data: bytes) -> tuple[int, int]:
    """``(start, end)`` of the payload in an RTP packet: past the CSRC list
    and header extension, before any padding.

    Checks the whole structure (version, lengths, padding count) and raises
    :class:`RtpError` where it does not hold; the payload may be empty.
    """
    n = len(data)
    if n < 12:
        raise RtpError(f"RTP packet of {n} bytes is shorter than its header")
    b0 = data[0]
    if b0 & 0xC0 != 0x80:
        raise RtpError(f"RTP version {b0 >> 6}, expected 2")
    start = 12 + 4 * (b0 & 0x0F)
    if b0 & 0x10:
        if start + 4 > n:
            raise RtpError("RTP header extension is cut short")
        start += 4 + 4 * _EXT_HEAD.unpack_from(data, start)[1]
    if start > n:
        raise RtpError("RTP header runs past the end of the packet")
    end = n
    if b0 & 0x20:
        count = data[n - 1]
        if count == 0 or count > n - start:
            raise RtpError(f"RTP padding count {count} does not fit the packet")
        end = n - count
    return start, end


def is_rtcp(data: bytes) -> bool:
    """True when a datagram on an rtcp-mux port is RTCP (RFC 5761 §4).

    RTCP packet types 192–223 occupy the second octet where RTP has the
    marker bit and a payload type of 64–95, which RTP must not use on a
    multiplexed port; so the payload-type bits decide.  A datagram shorter
    than 2 bytes is not RTCP.  STUN and DTLS on the same port (RFC 7983)
    are told apart by the first octet, before this test.
    """
    return len(data) >= 2 and 64 <= (data[1] & 0x7F) <= 95


@attrs.frozen(slots=True)
class RtpPacket:
    """One RTP packet (RFC 3550 §5.1).

    ``padding`` is the padding as sent, its last byte being its own length
    (empty when the P bit is clear); ``extension`` is None when the X bit is
    clear.  ``RtpPacket.parse(data).serialize() == data`` for every ``data``
    that parses.
    """

    payload_type: int
    sequence: int
    timestamp: int
    ssrc: int
    payload: bytes = b""
    marker: bool = False
    csrcs: tuple[int, ...] = ()
    extension: HeaderExtension | None = None
    padding: bytes = b""

    def __attrs_post_init__(self) -> None:
        if not 0 <= self.payload_type <= 127:
            raise RtpError(f"payload type {self.payload_type} is not 7 bits")
        if not 0 <= self.sequence <= 0xFFFF:
            raise RtpError(f"sequence number {self.sequence} is not 16 bits")
        if not 0 <= self.timestamp <= 0xFFFFFFFF:
            raise RtpError(f"timestamp {self.timestamp} is not 32 bits")
        if not 0 <= self.ssrc <= 0xFFFFFFFF:
            raise RtpError(f"SSRC {self.ssrc} is not 32 bits")
        if len(self.csrcs) > 15:
            raise RtpError(f"{len(self.csrcs)} CSRCs, at most 15 fit")
        for csrc in self.csrcs:
            if not 0 <= csrc <= 0xFFFFFFFF:
                raise RtpError(f"CSRC {csrc} is not 32 bits")
        padding = self.padding
        if padding and (len(padding) > 255 or padding[-1] != len(padding)):
            raise RtpError(f"padding of {len(padding)} bytes does not end with its length")

    @classmethod
    def parse(cls, data: bytes) -> RtpPacket:
        """The packet in ``data``; :class:`RtpError` if it is not well formed."""
        n = len(data)
        if n < 12:
            raise RtpError(f"RTP packet of {n} bytes is shorter than its header")
        b0, b1, seq, ts, ssrc = HEADER.unpack_from(data)
        if b0 & 0xC0 != 0x80:
            raise RtpError(f"RTP version {b0 >> 6}, expected 2")
        count = b0 & 0x0F
        pos = 12 + 4 * count
        if pos > n:
            raise RtpError(f"RTP packet of {n} bytes is too short for {count} CSRCs")
        csrcs: tuple[int, ...] = _CSRCS[count].unpack_from(data, 12) if count else ()
        extension = None
        if b0 & 0x10:
            if pos + 4 > n:
                raise RtpError("RTP header extension is cut short")
            profile, words = _EXT_HEAD.unpack_from(data, pos)
            start = pos + 4
            pos = start + 4 * words
            if pos > n:
                raise RtpError(f"RTP header extension of {words} words overruns the packet")
            extension = HeaderExtension(profile, bytes(data[start:pos]))
        end = n
        padding = b""
        if b0 & 0x20:
            pad = data[n - 1]
            if pad == 0 or pad > n - pos:
                raise RtpError(f"RTP padding count {pad} does not fit the packet")
            end = n - pad
            padding = bytes(data[end:])
        return cls(b1 & 0x7F, seq, ts, ssrc, bytes(data[pos:end]), b1 > 0x7F, csrcs,
                   extension, padding)

    def serialize(self) -> bytes:
        """The packet as it goes on the wire."""
        ext = self.extension
        b0 = 0x80 | len(self.csrcs)
        if self.padding:
            b0 |= 0x20
        if ext is not None:
            b0 |= 0x10
        parts = [HEADER.pack(b0, self.payload_type | (0x80 if self.marker else 0),
                             self.sequence, self.timestamp, self.ssrc)]
        if self.csrcs:
            parts.append(_CSRCS[len(self.csrcs)].pack(*self.csrcs))
        if ext is not None:
            parts.append(_EXT_HEAD.pack(ext.profile, len(ext.data) // 4))
            parts.append(ext.data)
        parts.append(self.payload)
        parts.append(self.padding)
        return b"".join(parts)

    __bytes__ = serialize
