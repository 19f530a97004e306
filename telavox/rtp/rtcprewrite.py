"""SSRC rewriting in compound RTCP, for a relay that changes stream SSRCs.

Owns :func:`rewrite_rtcp`: a copy of a compound datagram with every SSRC
field found in the mapping replaced, edited in place in the bytes without
building packet objects, so that packets this package does not model are
carried through untouched.  The fields rewritten are the sender SSRC of SR,
RR, APP and RFC 4585 feedback, the source SSRC of every report block, SDES
chunk and BYE entry, the media SSRC of feedback, and the SSRC of each FCI
entry of FIR (PSFB FMT 4) and TMMBR/TMMBN (RTPFB FMT 3 and 4).  Optionally
the RTP timestamp of a sender report moves by the same offset the relay
applies to that sender's RTP packets
(:meth:`telavox.rtp.continuity.StreamRewriter.mapping`).

Statistics inside report blocks (highest sequence number, lost counts) are
left as they are: a relay that also renumbers sequence numbers should
answer for the stream itself rather than forward them.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping

from telavox.rtp.errors import RtpError
from telavox.rtp.rtcp import APP, BYE, PSFB, RR, RTPFB, SDES, SR, iter_packets

__all__ = ["rewrite_rtcp"]

_WORD = struct.Struct("!I")
_FCI_SSRC_FORMATS = {(PSFB, 4), (RTPFB, 3), (RTPFB, 4)}  # FIR, TMMBR, TMMBN


def rewrite_rtcp(data: bytes, ssrcs: Mapping[int, int],
                 timestamp_offsets: Mapping[int, int] | None = None) -> bytes:
    """``data`` with each SSRC that is a key of ``ssrcs`` replaced by its value.

    ``timestamp_offsets`` maps an SR sender's original SSRC to the offset
    (mod 2**32) to add to that SR's RTP timestamp.  Raises
    :class:`~telavox.rtp.errors.RtpError` when the datagram is not well
    formed enough to find its SSRC fields.
    """
    buf = bytearray(data)
    for packet_type, count, start, end, _ in iter_packets(buf):
        pos = start + 4
        if packet_type == SR:
            _need(packet_type, end - pos, 24 + 24 * count)
            if timestamp_offsets:
                offset = timestamp_offsets.get(_WORD.unpack_from(buf, pos)[0])
                if offset:
                    ts = _WORD.unpack_from(buf, pos + 12)[0]
                    _WORD.pack_into(buf, pos + 12, (ts + offset) & 0xFFFF_FFFF)
            _map(buf, pos, ssrcs)
            _map_blocks(buf, pos + 24, count, ssrcs)
        elif packet_type == RR:
            _need(packet_type, end - pos, 4 + 24 * count)
            _map(buf, pos, ssrcs)
            _map_blocks(buf, pos + 4, count, ssrcs)
        elif packet_type == SDES:
            _map_chunks(buf, pos, end, count, ssrcs)
        elif packet_type == BYE:
            _need(packet_type, end - pos, 4 * count)
            for i in range(count):
                _map(buf, pos + 4 * i, ssrcs)
        elif packet_type == APP:
            _need(packet_type, end - pos, 8)
            _map(buf, pos, ssrcs)
        elif packet_type in (RTPFB, PSFB):
            _need(packet_type, end - pos, 8)
            _map(buf, pos, ssrcs)
            _map(buf, pos + 4, ssrcs)
            if (packet_type, count) in _FCI_SSRC_FORMATS:
                for entry in range(pos + 8, end - 7, 8):
                    _map(buf, entry, ssrcs)
    return bytes(buf)


def _need(packet_type: int, have: int, want: int) -> None:
    if have < want:
        raise RtpError(f"RTCP packet type {packet_type} has {have} bytes of content, "
                       f"needs {want}")


def _map(buf: bytearray, pos: int, ssrcs: Mapping[int, int]) -> None:
    old = _WORD.unpack_from(buf, pos)[0]
    new = ssrcs.get(old)
    if new is not None:
        _WORD.pack_into(buf, pos, new)


def _map_blocks(buf: bytearray, pos: int, count: int, ssrcs: Mapping[int, int]) -> None:
    for i in range(count):
        _map(buf, pos + 24 * i, ssrcs)


def _map_chunks(buf: bytearray, pos: int, end: int, count: int,
                ssrcs: Mapping[int, int]) -> None:
    for _ in range(count):
        _need(SDES, end - pos, 8)
        _map(buf, pos, ssrcs)
        pos += 4
        start = pos
        while pos < end and buf[pos]:
            if pos + 2 > end:
                raise RtpError("SDES item overruns the packet")
            pos += 2 + buf[pos + 1]
        if pos >= end:
            raise RtpError("SDES chunk without its null terminator")
        pos = start + (pos - start) // 4 * 4 + 4
