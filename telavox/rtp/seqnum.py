"""Reception state of one RTP source: RFC 3550 Appendix A.1 (sequence
number validation and extension), A.3 (expected and lost packets) and A.8
(interarrival jitter).

Owns :class:`SourceState` and the verdicts it gives each packet
(:class:`SeqVerdict`).

Theory of operation.  A.1 keeps the highest sequence number seen
(``max_seq``) and counts 16-bit wraps (``cycles``), giving the extended
32-bit sequence number.  A new source is on probation until
``min_sequential`` packets arrive in sequence.  A packet up to
``MAX_DROPOUT`` ahead moves ``max_seq`` (a smaller value means the counter
wrapped); one up to ``MAX_MISORDER`` behind is late or a duplicate and
counts as received; anything else is a jump, dropped unless the next packet
follows it, in which case the source is taken to have restarted and the
state starts again from there.  A.3 derives expected and lost counts and
the fraction lost since the previous report; A.8 smooths the difference in
transit time of successive packets with gain 1/16, in timestamp units.
Arrival times are passed in (``now``, seconds on any monotonic clock).
"""

from __future__ import annotations

import enum

from telavox.rtp.ntp import ntp_short
from telavox.rtp.rtcp import ReportBlock

__all__ = [
    "MAX_DROPOUT",
    "MAX_MISORDER",
    "MIN_SEQUENTIAL",
    "SeqVerdict",
    "SourceState",
]

MAX_DROPOUT = 3000
"""Largest forward gap taken as loss rather than a jump (A.1)."""
MAX_MISORDER = 100
"""Largest backward distance taken as a late packet rather than a jump (A.1)."""
MIN_SEQUENTIAL = 2
"""In-sequence packets needed before a new source is valid (A.1)."""

_SEQ_MOD = 1 << 16


class SeqVerdict(enum.Enum):
    """What :meth:`SourceState.update` made of one packet."""

    PROBATION = "probation"
    """The source is not yet valid; the packet is not counted."""
    IN_ORDER = "in-order"
    """Ahead of the highest sequence number (a gap means loss); counted."""
    DUPLICATE = "duplicate"
    """The same sequence number as the highest; counted, as A.1 does."""
    LATE = "late"
    """Behind the highest by at most MAX_MISORDER (reordered or duplicated); counted."""
    JUMP = "jump"
    """Too far from the highest; not counted.  If the next packet follows
    it, that one is :attr:`RESTART`."""
    RESTART = "restart"
    """The second packet in sequence after a jump: the state was reset to it; counted."""

    @property
    def accepted(self) -> bool:
        """True when the packet counts as received (A.1's ``update_seq`` returned 1)."""
        return self not in (SeqVerdict.PROBATION, SeqVerdict.JUMP)


class SourceState:
    """Sequence, loss and jitter bookkeeping for one SSRC.

    Feed every packet of the source to :meth:`update`; read the counters,
    or take a :meth:`report_block` per RTCP interval.  ``clock_rate`` is the
    RTP clock of the payload (jitter is in its units).
    """

    __slots__ = (
        "_expected_prior", "_last_arrival", "_last_timestamp", "_lsr", "_lsr_at",
        "_min_sequential", "_received_prior", "_started", "bad_seq", "base_seq",
        "clock_rate", "cycles", "jitter", "max_seq", "probation", "received", "ssrc",
    )

    def __init__(self, ssrc: int, clock_rate: int, *,
                 min_sequential: int = MIN_SEQUENTIAL) -> None:
        if clock_rate <= 0:
            raise ValueError(f"clock rate {clock_rate} is not positive")
        self.ssrc = ssrc
        self.clock_rate = clock_rate
        self._min_sequential = min_sequential
        self._started = False
        self.base_seq = 0
        self.max_seq = 0
        self.bad_seq = _SEQ_MOD + 1
        self.cycles = 0
        self.received = 0
        self.probation = min_sequential
        self._received_prior = 0
        self._expected_prior = 0
        self.jitter = 0.0
        """Interarrival jitter estimate (A.8), in timestamp units."""
        self._last_arrival: float | None = None
        self._last_timestamp = 0
        self._lsr = 0
        self._lsr_at = 0.0

    def _init_seq(self, seq: int) -> None:
        self.base_seq = seq
        self.max_seq = seq
        self.bad_seq = _SEQ_MOD + 1
        self.cycles = 0
        self.received = 0
        self._received_prior = 0
        self._expected_prior = 0

    def update(self, seq: int, timestamp: int, now: float) -> SeqVerdict:
        """Account for a packet with sequence number ``seq`` and RTP
        ``timestamp`` that arrived at ``now``; the verdict says whether it
        counts and why."""
        if not self._started:
            self._started = True
            self._init_seq(seq)
            if self.probation <= 0:
                self.probation = 0
                self.received = 1
                self._jitter(timestamp, now)
                return SeqVerdict.IN_ORDER
            self.max_seq = (seq - 1) & 0xFFFF
        udelta = (seq - self.max_seq) & 0xFFFF
        if self.probation:
            if udelta == 1:
                self.probation -= 1
                self.max_seq = seq
                if self.probation == 0:
                    self._init_seq(seq)
                    self.received = 1
                    self._jitter(timestamp, now)
                    return SeqVerdict.IN_ORDER
            else:
                self.probation = self._min_sequential - 1
                self.max_seq = seq
            return SeqVerdict.PROBATION
        if udelta < MAX_DROPOUT:
            if udelta == 0:
                verdict = SeqVerdict.DUPLICATE
            else:
                if seq < self.max_seq:
                    self.cycles += _SEQ_MOD
                self.max_seq = seq
                verdict = SeqVerdict.IN_ORDER
        elif udelta <= _SEQ_MOD - MAX_MISORDER:
            if seq != self.bad_seq:
                self.bad_seq = (seq + 1) & 0xFFFF
                return SeqVerdict.JUMP
            self._init_seq(seq)
            self._last_arrival = None  # the timestamps restart too
            verdict = SeqVerdict.RESTART
        else:
            verdict = SeqVerdict.LATE
        self.received += 1
        self._jitter(timestamp, now)
        return verdict

    def _jitter(self, timestamp: int, now: float) -> None:
        last = self._last_arrival
        if last is not None:
            # D(i-1, i) = (R_i - R_{i-1}) - (S_i - S_{i-1}), timestamps mod 2**32
            sent = ((timestamp - self._last_timestamp + 0x8000_0000) & 0xFFFF_FFFF) - 0x8000_0000
            d = abs((now - last) * self.clock_rate - sent)
            self.jitter += (d - self.jitter) / 16
        self._last_arrival = now
        self._last_timestamp = timestamp

    # -- A.3 -----------------------------------------------------------------------

    @property
    def valid(self) -> bool:
        """True once the source has passed probation."""
        return self._started and self.probation == 0

    @property
    def extended_max(self) -> int:
        """The highest extended (32-bit) sequence number received."""
        return (self.cycles + self.max_seq) & 0xFFFF_FFFF

    @property
    def expected(self) -> int:
        """Packets expected since the base (A.3); 0 while on probation."""
        if not self.valid:
            return 0
        return self.cycles + self.max_seq - self.base_seq + 1

    @property
    def lost(self) -> int:
        """Packets lost since the base (negative when duplicates outnumber losses)."""
        return self.expected - self.received

    def extend(self, seq: int) -> int:
        """The extended sequence number of ``seq`` nearest to the highest
        received: a late packet from before a wrap gets the previous cycle."""
        delta = ((seq - self.max_seq + 0x8000) & 0xFFFF) - 0x8000
        return self.cycles + self.max_seq + delta

    def report_loss(self) -> tuple[int, int]:
        """``(fraction_lost, cumulative_lost)`` for a report block (A.3).

        The fraction (0–255, in 1/256) covers the packets since the previous
        call; the cumulative count is clamped to 24 bits signed.
        """
        expected = self.expected
        expected_interval = expected - self._expected_prior
        self._expected_prior = expected
        received_interval = self.received - self._received_prior
        self._received_prior = self.received
        lost_interval = expected_interval - received_interval
        if expected_interval <= 0 or lost_interval <= 0:
            fraction = 0
        else:
            fraction = min(255, (lost_interval << 8) // expected_interval)
        lost = max(-0x800000, min(0x7FFFFF, expected - self.received))
        return fraction, lost

    def sender_report(self, ntp_timestamp: int, now: float) -> None:
        """Note an SR from this source, arrived at ``now``, for LSR and DLSR."""
        self._lsr = ntp_short(ntp_timestamp)
        self._lsr_at = now

    def report_block(self, now: float) -> ReportBlock:
        """The report block about this source for an RR or SR sent at
        ``now``; starts a new interval for the fraction lost."""
        fraction, lost = self.report_loss()
        dlsr = 0
        if self._lsr:
            dlsr = min(0xFFFF_FFFF, max(0, round((now - self._lsr_at) * 65536)))
        return ReportBlock(self.ssrc, fraction, lost, self.extended_max,
                           min(0xFFFF_FFFF, int(self.jitter)), self._lsr, dlsr)
