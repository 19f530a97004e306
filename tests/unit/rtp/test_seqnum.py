"""Per-source reception state: RFC 3550 A.1 (probation, wrap, dropout,
misorder, restart), A.3 (expected, lost, fraction lost) and A.8 (jitter),
with the arrival times passed in."""

from __future__ import annotations

import pytest

from telavox.rtp.ntp import ntp_short
from telavox.rtp.rtcp import ReportBlock
from telavox.rtp.seqnum import MAX_DROPOUT, MAX_MISORDER, SeqVerdict, SourceState

V = SeqVerdict


def feed(state: SourceState, seqs: list[int]) -> list[SeqVerdict]:
    """The verdicts for packets 20 ms apart carrying ``seqs`` (timestamps follow seq)."""
    return [state.update(s, s * 160, i * 0.02) for i, s in enumerate(seqs)]


def valid_source(start: int = 1000) -> SourceState:
    """A source that has passed probation at ``start``, ``start + 1``."""
    state = SourceState(0x1234, 8000)
    assert feed(state, [start, start + 1]) == [V.PROBATION, V.IN_ORDER]
    return state


def test_new_source_is_on_probation_until_two_in_sequence() -> None:
    """A.1: the first packet is not counted; the second in sequence makes the
    source valid and becomes the base."""
    state = SourceState(1, 8000)
    assert state.update(500, 0, 0.0) is V.PROBATION
    assert not state.valid and state.expected == 0 and state.received == 0
    assert state.update(501, 160, 0.02) is V.IN_ORDER
    assert state.valid
    assert (state.base_seq, state.max_seq, state.received, state.expected) == (501, 501, 1, 1)


def test_probation_restarts_when_the_sequence_breaks() -> None:
    """A.1: a packet out of sequence during probation starts probation from
    it; the next one in sequence then validates."""
    state = SourceState(1, 8000)
    assert feed(state, [10, 20, 21]) == [V.PROBATION, V.PROBATION, V.IN_ORDER]
    assert state.base_seq == 21


def test_probation_across_the_wrap() -> None:
    """65535 then 0 is in sequence (the A.1 C code compares without masking
    and would miss this)."""
    state = SourceState(1, 8000)
    assert feed(state, [65535, 0]) == [V.PROBATION, V.IN_ORDER]
    assert state.base_seq == 0 and state.cycles == 0


def test_probation_can_be_skipped() -> None:
    """With min_sequential 0 the first packet counts at once (a source known from signalling)."""
    state = SourceState(1, 8000, min_sequential=0)
    assert state.update(7, 0, 0.0) is V.IN_ORDER
    assert (state.base_seq, state.received, state.expected) == (7, 1, 1)


def test_wrap_extends_the_sequence_number() -> None:
    """A.1: a smaller number within MAX_DROPOUT ahead counts a cycle; the
    extended maximum keeps growing."""
    state = valid_source(65533)
    assert feed(state, [65535, 0, 1]) == [V.IN_ORDER] * 3
    assert state.cycles == 65536
    assert state.extended_max == 65536 + 1
    assert state.expected == 65536 + 1 - 65534 + 1 == 4
    assert state.lost == 0


def test_loss_inside_max_dropout_is_counted_as_loss() -> None:
    """A forward gap below MAX_DROPOUT is loss, not a jump."""
    state = valid_source(100)  # highest 101
    ahead = MAX_DROPOUT - 1
    assert state.update(101 + ahead, 0, 1.0) is V.IN_ORDER
    assert state.lost == ahead - 1


def test_dropout_is_a_jump_then_a_restart_if_the_next_follows() -> None:
    """A.1: a jump of MAX_DROPOUT or more is not counted; when the next
    packet follows it the source is taken to have restarted there."""
    state = valid_source(100)
    assert state.update(101 + MAX_DROPOUT, 0, 1.0) is V.JUMP
    assert state.received == 1 and state.max_seq == 101
    assert state.update(102 + MAX_DROPOUT, 160, 1.02) is V.RESTART
    assert state.base_seq == 102 + MAX_DROPOUT and state.received == 1
    assert state.expected == 1 and state.lost == 0


def test_single_stray_jump_does_not_disturb_the_stream() -> None:
    """A lone far-off packet is dropped and the stream goes on as before."""
    state = valid_source(100)
    assert feed(state, [102, 40000, 103]) == [V.IN_ORDER, V.JUMP, V.IN_ORDER]
    assert state.max_seq == 103 and state.received == 3


def test_late_and_duplicate_packets_count_as_received() -> None:
    """A.1: up to MAX_MISORDER behind is late (counted); the same number again
    is a duplicate (counted too, so loss can go negative)."""
    state = valid_source(100)
    assert feed(state, [103, 102, 103, 103 - MAX_MISORDER + 1]) == [
        V.IN_ORDER, V.LATE, V.DUPLICATE, V.LATE]
    assert state.received == 5
    assert state.expected == 3
    assert state.lost == -2


def test_too_late_is_a_jump() -> None:
    """More than MAX_MISORDER behind is outside the window: a jump."""
    state = valid_source(1000)
    assert state.update(1001 - MAX_MISORDER, 0, 1.0) is V.JUMP


def test_late_packet_across_the_wrap_extends_to_the_previous_cycle() -> None:
    """extend() puts a late pre-wrap packet in the cycle before the maximum."""
    state = valid_source(65534)
    feed(state, [65535, 0, 1])
    assert state.extend(65535) == 65535
    assert state.extend(2) == 65536 + 2


def test_verdict_says_whether_the_packet_counts() -> None:
    """Only probation and jumps are not counted."""
    assert [v for v in V if not v.accepted] == [V.PROBATION, V.JUMP]


def test_fraction_lost_per_interval_and_cumulative_loss() -> None:
    """A.3: 2 of 10 expected lost gives 2*256/10 = 51; a clean second
    interval gives 0 while the cumulative count stays 2."""
    state = valid_source(0)  # base 1
    feed(state, [2, 3, 5, 6, 7, 9, 10])
    assert (state.expected, state.received) == (10, 8)
    assert state.report_loss() == (51, 2)
    feed(state, [11, 12, 13])
    assert state.report_loss() == (0, 2)


def test_duplicates_give_no_negative_fraction() -> None:
    """A.3: more received than expected in an interval reports fraction 0
    and a negative cumulative loss."""
    state = valid_source(0)
    feed(state, [2, 2, 2])
    assert state.report_loss() == (0, -2)


def test_cumulative_loss_is_clamped_to_24_bits() -> None:
    """The cumulative count saturates rather than wrapping in its 24-bit field."""
    state = valid_source(0)
    state.cycles = 2**30  # as if a great many packets had been missed
    assert state.report_loss()[1] == 0x7FFFFF


def test_jitter_against_a_hand_computation() -> None:
    """A.8 with 8000 Hz and 160-sample packets arriving at 0, 20, 45, 60 ms:
    D = 0, 40, 40 units, so J = 0, 2.5, 2.5 + (40 - 2.5)/16 = 4.84375."""
    state = SourceState(1, 8000, min_sequential=0)
    arrivals = [0.0, 0.020, 0.045, 0.060]
    expected = [0.0, 0.0, 2.5, 4.84375]
    for i, (at, jitter) in enumerate(zip(arrivals, expected, strict=True)):
        state.update(i, 1000 + 160 * i, at)
        assert state.jitter == pytest.approx(jitter)


def test_jitter_ignores_the_timestamp_wrap() -> None:
    """Timestamps wrapping past 2**32 do not show as a huge transit jump."""
    state = SourceState(1, 8000, min_sequential=0)
    state.update(0, 2**32 - 80, 0.0)
    state.update(1, 80, 0.02)
    assert state.jitter == 0.0


def test_report_block_carries_lsr_and_dlsr() -> None:
    """The report block gives the middle bits of the last SR's NTP time and
    the delay since it in 1/65536 s."""
    state = valid_source(0)
    ntp = 0xE89A4B2C_40000000
    state.sender_report(ntp, now=10.0)
    block = state.report_block(now=10.5)
    assert block == ReportBlock(0x1234, 0, 0, 1, 0, ntp_short(ntp), 32768)


def test_report_block_before_any_sender_report() -> None:
    """Without an SR, LSR and DLSR are 0 (RFC 3550 §6.4.1)."""
    block = valid_source(0).report_block(now=3.0)
    assert block.last_sr == 0 and block.delay_since_last_sr == 0


def test_clock_rate_must_be_positive() -> None:
    """A zero clock rate is refused at construction."""
    with pytest.raises(ValueError):
        SourceState(1, 0)
