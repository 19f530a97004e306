"""One continuous outgoing RTP stream spliced from changing sources.

Owns :class:`StreamRewriter`: the relay's sending side of one stream, with
its own fixed SSRC, sequence numbers and timestamps, fed by relayed packets
(:meth:`~StreamRewriter.rewrite`) and by packets the media server makes
itself (:meth:`~StreamRewriter.next_packet`: prompts, tones, RFC 4733
events).

Theory of operation.  The rewriter follows one *source* at a time: an
incoming SSRC, or the local generator.  While it follows an incoming SSRC it
maps that source's sequence numbers and timestamps by fixed offsets, so
loss, reordering and timing pass through unchanged.  When the source
changes (another SSRC after a transfer, the same SSRC jumping by more than
RFC 3550's ``MAX_DROPOUT`` packets, ``MAX_MISORDER`` back, or
``max_jump`` seconds of timestamp, a switch between relaying and playing)
the rewriter *splices*: the new source's first packet gets the next
sequence number, and a timestamp that continues from the last one sent by
the time elapsed since (``now`` in, times the clock rate), never less than
the end of the last packet sent, and by default the marker bit, so that the
receiver's jitter buffer re-syncs.  The receiver sees one source whose
stream never restarts, which every jitter buffer can play.

Local packets follow each other by their stated lengths (``n_samples``);
they start from the elapsed time again at a splice and whenever the caller
sets the marker (a talkspurt after silence).  An RFC 4733 event's packets
all advance by 0, so they share the event's timestamp, and the last one by
the event's duration.

Late packets of the current source pass with their mapped numbers, except
those from before the splice, which :meth:`~StreamRewriter.rewrite` drops
(returns None) because their numbers already belong to the previous source;
so are late packets of the source followed before the splice, which would
otherwise splice back to it for one packet.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping

from telavox.rtp.errors import RtpError
from telavox.rtp.packet import HEADER, payload_span
from telavox.rtp.seqnum import MAX_DROPOUT, MAX_MISORDER

__all__ = ["StreamRewriter"]

_LOCAL = -1  # the source key of locally made packets
_NONE = -2  # no source yet, or forgotten: the next packet splices
_U32 = 0xFFFF_FFFF
_HALF = 0x8000_0000


class StreamRewriter:
    """The sending state of one outgoing RTP stream with a fixed SSRC.

    ``first_sequence`` and ``first_timestamp`` are what the first packet
    gets (RFC 3550 wants them random; the caller draws them).
    ``payload_types`` maps incoming payload types to outgoing ones (for a
    relay between legs that numbered a dynamic type differently).
    ``max_jump`` is the largest timestamp step, in seconds, that a source
    may take without being spliced.  ``mark_splices`` sets the marker bit on
    the first packet after each splice.
    """

    __slots__ = (
        "_anchor_time", "_anchor_ts", "_in_seq", "_in_ts", "_local_last", "_mark", "_max_step",
        "_next_ts", "_prev_seq", "_prev_source", "_pt_map", "_seq", "_seq_off", "_source",
        "_splice_seq", "_started", "_step", "_ts", "_ts_off", "_ts_window", "clock_rate",
        "octets_sent", "packets_sent", "ssrc",
    )

    def __init__(self, ssrc: int, clock_rate: int, first_sequence: int, first_timestamp: int,
                 *, payload_types: Mapping[int, int] | None = None, max_jump: float = 10.0,
                 mark_splices: bool = True) -> None:
        if not 0 <= ssrc <= _U32:
            raise RtpError(f"SSRC {ssrc} is not 32 bits")
        if clock_rate <= 0:
            raise ValueError(f"clock rate {clock_rate} is not positive")
        self.ssrc = ssrc
        self.clock_rate = clock_rate
        self._pt_map = dict(payload_types or {})
        self._ts_window = max(1, min(_HALF - 1, round(max_jump * clock_rate)))
        self._mark = mark_splices
        self._started = False
        self._seq = (first_sequence - 1) & 0xFFFF  # last sequence number sent
        self._ts = first_timestamp & _U32  # last timestamp sent
        self._next_ts = first_timestamp & _U32  # the earliest the next splice may take
        self._anchor_ts = first_timestamp & _U32  # a timestamp and the time it stood for
        self._anchor_time = 0.0
        self._step = max(1, clock_rate // 50)  # a relayed source's packet length (20 ms)
        self._max_step = max(1, clock_rate // 5)  # the longest packet believed (200 ms)
        self._source = _NONE
        self._local_last = False  # whether the last packet sent was made locally
        self._in_seq = 0
        self._in_ts = 0
        self._seq_off = 0
        self._ts_off = 0
        self._splice_seq = 0
        self._prev_source = _NONE  # the relayed source followed before the last splice
        self._prev_seq = 0  # and its last sequence number
        self.packets_sent = 0
        """Packets sent on this stream (for the sender report)."""
        self.octets_sent = 0
        """Payload octets sent on this stream (for the sender report)."""

    # -- what the relay reads -------------------------------------------------------

    @property
    def last_sequence(self) -> int:
        """The sequence number of the last packet sent."""
        return self._seq

    @property
    def last_timestamp(self) -> int:
        """The timestamp of the last packet sent."""
        return self._ts

    def mapping(self) -> tuple[int, int, int] | None:
        """``(incoming SSRC, sequence offset, timestamp offset)`` of the
        relayed source being followed, or None while playing locally."""
        if self._source < 0:
            return None
        return self._source, self._seq_off, self._ts_off

    def forget_source(self) -> None:
        """Splice at the next packet even if it continues the current source."""
        self._leave_source()
        self._source = _NONE

    # -- relaying -----------------------------------------------------------------

    def rewrite(self, data: bytes, now: float) -> bytes | None:
        """``data`` as a packet of this stream, or None to drop it (a late
        packet from before the last splice).

        Only the fixed header changes (SSRC, sequence number, timestamp,
        payload type, and the marker at a splice); CSRCs, extension, payload
        and padding are copied.  Raises :class:`RtpError` for a datagram
        shorter than the header or not version 2.
        """
        try:
            b0, b1, seq, ts, ssrc = HEADER.unpack_from(data)
        except struct.error:
            raise RtpError(f"RTP packet of {len(data)} bytes is shorter than its header") from None
        if b0 & 0xC0 != 0x80:
            raise RtpError(f"RTP version {b0 >> 6}, expected 2")
        size = len(data) - 12 if b0 == 0x80 else _payload_size(data)
        if self._pt_map:
            pt = b1 & 0x7F
            b1 = (b1 & 0x80) | self._pt_map.get(pt, pt)
        if ssrc == self._source:
            dseq = (seq - self._in_seq) & 0xFFFF
            if dseq < MAX_DROPOUT:
                dts = (ts - self._in_ts) & _U32
                window = self._ts_window
                if dts <= window or dts >= _U32 + 1 - window:  # the same source goes on
                    if dseq == 1 and 0 < dts <= self._max_step:
                        self._step = dts
                    self._in_seq = seq
                    self._in_ts = ts
                    out_seq = self._seq = (seq + self._seq_off) & 0xFFFF
                    out_ts = (ts + self._ts_off) & _U32
                    if out_ts != self._ts:
                        self._ts = self._anchor_ts = out_ts
                        self._anchor_time = now
                    self.packets_sent += 1
                    self.octets_sent += size
                    return HEADER.pack(b0, b1, out_seq, out_ts, self.ssrc) + data[12:]
            elif dseq > 0xFFFF - MAX_MISORDER:  # late: numbered as it was, unless pre-splice
                out_seq = (seq + self._seq_off) & 0xFFFF
                if (out_seq - self._splice_seq) & 0x8000:
                    return None
                self.packets_sent += 1
                self.octets_sent += size
                out_ts = (ts + self._ts_off) & _U32
                return HEADER.pack(b0, b1, out_seq, out_ts, self.ssrc) + data[12:]
        if ssrc == self._prev_source and (self._prev_seq - seq) & 0xFFFF < MAX_MISORDER:
            return None  # a straggler of the source followed before the last splice
        # a splice: this source continues the stream from where it stands
        self._leave_source()
        out_seq = self._splice_seq = self._seq = (self._seq + 1) & 0xFFFF
        out_ts = self._splice_timestamp(now)
        if self._mark and self._started:
            b1 |= 0x80
        self._started = True
        self._local_last = False
        self._source = ssrc
        self._in_seq = seq
        self._in_ts = ts
        self._seq_off = (out_seq - seq) & 0xFFFF
        self._ts_off = (out_ts - ts) & _U32
        self._ts = self._anchor_ts = out_ts
        self._anchor_time = now
        self.packets_sent += 1
        self.octets_sent += size
        return HEADER.pack(b0, b1, out_seq, out_ts, self.ssrc) + data[12:]

    def _leave_source(self) -> None:
        """Remember the relayed source being left, to recognise its stragglers."""
        if self._source >= 0:
            self._prev_source = self._source
            self._prev_seq = self._in_seq

    def _splice_timestamp(self, now: float) -> int:
        """The timestamp for a source taking over at ``now``."""
        if not self._started:
            return self._ts
        ts = (self._anchor_ts + round((now - self._anchor_time) * self.clock_rate)) & _U32
        # never before the end of the last packet sent
        floor = self._next_ts if self._local_last else (self._ts + self._step) & _U32
        return floor if (ts - floor) & _HALF else ts

    # -- local packets -------------------------------------------------------------

    def next_header(self, payload_type: int, marker: bool, n_samples: int, now: float,
                    *, payload_size: int = 0) -> bytes:
        """The 12-byte header of the next locally made packet, sent at ``now``.

        Its timestamp follows the previous local packet by that packet's
        ``n_samples``; at a splice (the previous packet was relayed) or when
        ``marker`` is set it is taken from the elapsed time instead.
        ``n_samples`` is how far this packet moves the timestamp on: the
        frame length for audio, 0 for an RFC 4733 event packet but the last
        of the event, which gives the event's duration.  ``payload_size``
        feeds the octet count of sender reports.
        """
        if not 0 <= payload_type <= 127:
            raise RtpError(f"payload type {payload_type} is not 7 bits")
        if self._source == _LOCAL and not marker:
            ts = self._next_ts
            if ts != self._ts:
                self._anchor_ts = ts
                self._anchor_time = now
        else:
            self._leave_source()
            ts = self._anchor_ts = self._splice_timestamp(now)
            self._anchor_time = now
            if self._source != _LOCAL and self._mark and self._started:
                marker = True
        self._source = _LOCAL
        self._started = True
        self._local_last = True
        seq = self._seq = (self._seq + 1) & 0xFFFF
        self._ts = ts
        self._next_ts = (ts + n_samples) & _U32
        self.packets_sent += 1
        self.octets_sent += payload_size
        return HEADER.pack(0x80, payload_type | (0x80 if marker else 0), seq, ts, self.ssrc)

    def next_packet(self, payload_type: int, marker: bool, n_samples: int, payload: bytes,
                    now: float) -> bytes:
        """The next locally made packet carrying ``payload`` (see :meth:`next_header`)."""
        return self.next_header(payload_type, marker, n_samples, now,
                                payload_size=len(payload)) + payload


def _payload_size(data: bytes) -> int:
    """Payload octets of a packet with CSRCs, extension or padding (checks them)."""
    start, end = payload_span(data)
    return end - start
