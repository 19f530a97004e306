"""RFC 4733 telephone events: the payload, the receiver reporting each key
press exactly once despite redundant, duplicated, reordered and lost
packets, and the sender's packet plan."""

from __future__ import annotations

import pytest

from telavox.rtp.continuity import StreamRewriter
from telavox.rtp.dtmf import (
    DigitEnd,
    DigitStart,
    EndCause,
    EventReceiver,
    TelephoneEvent,
    digit_of,
    event_of,
    event_packets,
)
from telavox.rtp.errors import RtpError
from telavox.rtp.packet import RtpPacket


def payload(event: int, duration: int, end: bool = False, volume: int = 10) -> bytes:
    """A telephone-event payload."""
    return TelephoneEvent(event, end, volume, duration).serialize()


class Phone:
    """Sends RFC 4733 packets the way a desk phone does, numbering them."""

    def __init__(self, receiver: EventReceiver, seq: int = 100) -> None:
        self.receiver = receiver
        self.seq = seq
        self.reports: list[object] = []

    def send(self, event: int, ts: int, duration: int, now: float, *, end: bool = False,
             marker: bool = False, seq: int | None = None) -> list[object]:
        """One packet; returns what the receiver reported for it."""
        if seq is None:
            seq = self.seq
            self.seq += 1
        got: list[object] = list(self.receiver.receive(payload(event, duration, end), ts, seq,
                                                       now, marker=marker))
        self.reports += got
        return got

    def press(self, event: int, ts: int, duration: int, at: float) -> None:
        """A whole key press: marker packet, updates every 50 ms, three end packets."""
        self.send(event, ts, 400, at, marker=True)
        t = 400
        while t < duration:
            t = min(t + 400, duration)
            self.send(event, ts, t, at + t / 8000)
        for i in range(3):
            self.send(event, ts, duration, at + duration / 8000 + 0.02 * i, end=True)


# --- payload -------------------------------------------------------------------------------


def test_payload_fields_from_a_capture() -> None:
    """Digit 5, end bit, volume 10, duration 800 as a phone sends it."""
    event = TelephoneEvent.parse(bytes.fromhex("05 8a 03 20"))
    assert event == TelephoneEvent(5, True, 10, 800)
    assert event.serialize() == bytes.fromhex("05 8a 03 20")


def test_reserved_bit_is_kept_for_an_exact_round_trip() -> None:
    """The R bit is read and written back although it means nothing."""
    event = TelephoneEvent.parse(bytes.fromhex("0b 4f 00 a0"))
    assert event.reserved and not event.end and event.volume == 15 and event.event == 11
    assert event.serialize() == bytes.fromhex("0b 4f 00 a0")


@pytest.mark.parametrize("data", [b"", b"\x05\x8a\x03", b"\x05\x8a\x03\x20\x00"])
def test_payload_of_the_wrong_length_is_refused(data: bytes) -> None:
    """A telephone-event payload is exactly 4 bytes."""
    with pytest.raises(RtpError, match="not 4"):
        TelephoneEvent.parse(data)


def test_digit_spelling() -> None:
    """Events 0–15 are 0–9 * # A–D and 16 is flash, spelt '!'."""
    assert [digit_of(e) for e in range(17)] == list("0123456789*#ABCD!")
    assert event_of("#") == 11 and event_of("d") == 15 and event_of("!") == 16
    with pytest.raises(ValueError):
        event_of("E")
    with pytest.raises(ValueError):
        digit_of(17)


# --- receiver ------------------------------------------------------------------------------


def test_one_press_is_reported_once_despite_three_end_packets() -> None:
    """Marker packet → start; updates → nothing; first end → end with the
    duration in ms; the two redundant ends → nothing."""
    phone = Phone(EventReceiver())
    phone.press(5, ts=16000, duration=1200, at=10.0)
    assert phone.reports == [
        DigitStart("5", 5, 16000, 10),
        DigitEnd("5", 5, 16000, 1200, 150, EndCause.END_PACKET),
    ]


def test_duplicated_packets_change_nothing() -> None:
    """The network duplicating every packet still gives one start and one end."""
    receiver = EventReceiver()
    reports = []
    seq = 1
    for duration, end in [(400, False), (800, False), (800, True), (800, True), (800, True)]:
        for _ in range(2):
            reports += receiver.receive(payload(1, duration, end), 8000, seq, 0.0)
        seq += 1
    assert [type(r) for r in reports] == [DigitStart, DigitEnd]


def test_same_digit_twice_is_two_presses() -> None:
    """Pressing 7 twice gives two events, told apart by their timestamps."""
    phone = Phone(EventReceiver())
    phone.press(7, ts=1000, duration=800, at=0.0)
    phone.press(7, ts=5000, duration=800, at=0.5)
    assert [(type(r).__name__, r.timestamp) for r in phone.reports] == [  # type: ignore[attr-defined]
        ("DigitStart", 1000), ("DigitEnd", 1000), ("DigitStart", 5000), ("DigitEnd", 5000)]


def test_lost_first_packet_starts_on_the_first_update() -> None:
    """Without the marker packet the event starts on whatever arrives first."""
    phone = Phone(EventReceiver())
    assert phone.send(3, 100, 800, 0.1) == [DigitStart("3", 3, 100, 10)]


def test_only_end_packets_arriving_give_start_and_end_at_once() -> None:
    """A short press whose earlier packets were lost is still reported whole."""
    phone = Phone(EventReceiver())
    got = phone.send(9, 100, 640, 0.0, end=True)
    assert got == [DigitStart("9", 9, 100, 10), DigitEnd("9", 9, 100, 640, 80,
                                                         EndCause.END_PACKET)]
    assert phone.send(9, 100, 640, 0.02, end=True) == []


def test_all_end_packets_lost_ends_by_timeout() -> None:
    """With every end packet lost, the event ends when the deadline passes
    (now in, next_deadline out); end packets arriving after are ignored."""
    receiver = EventReceiver(timeout=0.5)
    phone = Phone(receiver)
    phone.send(2, 100, 400, 1.0, marker=True)
    phone.send(2, 100, 800, 1.05)
    assert receiver.next_deadline() == pytest.approx(1.55)
    assert receiver.fire(1.54) == []
    assert receiver.fire(1.55) == [DigitEnd("2", 2, 100, 800, 100, EndCause.TIMEOUT)]
    assert receiver.next_deadline() is None
    assert phone.send(2, 100, 1200, 1.6, end=True) == []


def test_timeout_is_applied_on_the_next_packet_too() -> None:
    """If the adapter has not called fire(), the next packet ends the stale event first."""
    receiver = EventReceiver(timeout=0.5)
    phone = Phone(receiver)
    phone.send(2, 100, 400, 1.0, marker=True)
    got = phone.send(4, 9000, 400, 3.0, marker=True)
    assert got == [DigitEnd("2", 2, 100, 400, 50, EndCause.TIMEOUT), DigitStart("4", 4, 9000, 10)]


def test_new_event_before_the_end_ends_the_previous_one() -> None:
    """A new timestamp while an event is open ends it (its end packets were lost)."""
    phone = Phone(EventReceiver())
    phone.send(1, 100, 400, 0.0, marker=True)
    got = phone.send(2, 2000, 400, 0.2, marker=True)
    assert got == [DigitEnd("1", 1, 100, 400, 50, EndCause.NEXT_EVENT),
                   DigitStart("2", 2, 2000, 10)]


def test_reordered_update_after_the_end_is_ignored() -> None:
    """An update overtaken by the end packet does not reopen the event."""
    phone = Phone(EventReceiver())
    phone.send(6, 100, 400, 0.0, seq=10, marker=True)
    phone.send(6, 100, 1200, 0.15, seq=12, end=True)
    assert phone.send(6, 100, 800, 0.16, seq=11) == []
    assert [type(r) for r in phone.reports] == [DigitStart, DigitEnd]


def test_late_packet_of_an_earlier_event_is_ignored() -> None:
    """A packet of an older event (lower sequence number, other timestamp)
    arriving during a newer one starts nothing."""
    receiver = EventReceiver(memory=1)
    phone = Phone(receiver)
    phone.press(1, 100, 800, 0.0)  # seq 100-104
    phone.press(2, 3000, 800, 0.4)  # seq 105-109, leaves 1 out of the memory
    phone.send(3, 6000, 400, 0.8, marker=True)  # seq 110
    assert phone.send(1, 100, 800, 0.81, seq=101) == []


def test_reused_timestamp_with_marker_and_newer_seq_is_a_new_press() -> None:
    """A sender that reuses the timestamp for the next press (seen in the
    field) is recognised by the marker on a newer packet."""
    phone = Phone(EventReceiver())
    phone.press(8, 100, 800, 0.0)
    phone.press(8, 100, 800, 0.5)
    assert [type(r) for r in phone.reports] == [DigitStart, DigitEnd] * 2


def test_retransmitted_marker_packet_is_not_a_new_press() -> None:
    """The first packet sent again (with the marker, same timestamp) while the
    event is open, or arriving late after its end, is the same press."""
    phone = Phone(EventReceiver())
    phone.send(0, 100, 400, 0.0, seq=1, marker=True)
    phone.send(0, 100, 400, 0.01, seq=2, marker=True)
    phone.send(0, 100, 800, 0.1, seq=4, end=True)
    phone.send(0, 100, 400, 0.11, seq=3, marker=True)
    assert [type(r) for r in phone.reports] == [DigitStart, DigitEnd]


def test_long_event_segments_are_one_press() -> None:
    """RFC 4733 §2.5.1.3: past 0xFFFF the event goes on under timestamp
    + 0xFFFF; the receiver adds the segments into one press."""
    phone = Phone(EventReceiver())
    phone.send(11, 1000, 64800, 8.1)  # the earlier updates are not needed here
    for _ in range(3):
        phone.send(11, 1000, 0xFFFF, 8.19)
    phone.send(11, 1000 + 0xFFFF, 400, 8.25)
    phone.send(11, 1000, 0xFFFF, 8.26)  # a late repeat of the first segment's final packet
    for _ in range(3):
        phone.send(11, 1000 + 0xFFFF, 1600, 8.4, end=True)
    assert phone.reports == [DigitStart("#", 11, 1000, 10),
                             DigitEnd("#", 11, 1000, 0xFFFF + 1600, 8392, EndCause.END_PACKET)]


def test_non_dtmf_events_are_ignored() -> None:
    """RFC 4734 tones (event 32 and up) start nothing and leave DTMF alone."""
    phone = Phone(EventReceiver())
    assert phone.send(36, 100, 400, 0.0, marker=True) == []
    assert phone.send(16, 200, 400, 0.1, marker=True) == [DigitStart("!", 16, 200, 10)]


def test_malformed_payload_raises_before_changing_state() -> None:
    """A bad payload gives RtpError, and the open event is untouched."""
    receiver = EventReceiver()
    receiver.receive(payload(1, 400), 100, 1, 0.0)
    with pytest.raises(RtpError):
        receiver.receive(b"\x01", 100, 2, 5.0)
    assert receiver.next_deadline() == pytest.approx(0.5)


def test_wideband_clock_rate_for_duration_ms() -> None:
    """With a 16 kHz telephone-event clock, 3200 units are 200 ms."""
    receiver = EventReceiver(clock_rate=16000)
    reports = receiver.receive(payload(4, 3200, True), 1, 1, 0.0)
    assert isinstance(reports[1], DigitEnd) and reports[1].duration_ms == 200


# --- sender --------------------------------------------------------------------------------


def test_sender_packet_plan_for_a_200_ms_digit() -> None:
    """Marker on the first, an update every 50 ms up to the duration, then
    the end packet three times 50 ms apart; only the last advances the stream."""
    plan = event_packets("5", 200)
    events = [TelephoneEvent.parse(p.payload) for p in plan]
    assert [p.offset for p in plan] == [0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3]
    assert [p.marker for p in plan] == [True] + [False] * 6
    assert [e.duration for e in events] == [400, 800, 1200, 1600, 1600, 1600, 1600]
    assert [e.end for e in events] == [False] * 4 + [True] * 3
    assert {e.event for e in events} == {5} and {e.volume for e in events} == {10}
    assert [p.advance for p in plan] == [0] * 6 + [1600]


def test_sender_duration_not_a_multiple_of_the_interval() -> None:
    """The last update reports the full duration, which the end packets repeat."""
    plan = event_packets("#", 120, volume=6, interval_ms=50)
    durations = [TelephoneEvent.parse(p.payload).duration for p in plan]
    assert durations == [400, 800, 960, 960, 960, 960]


def test_sender_refuses_what_one_segment_cannot_hold() -> None:
    """Zero, negative and longer-than-0xFFFF durations and unknown digits are refused."""
    for bad in (0, -5, 8200):
        with pytest.raises(ValueError):
            event_packets("1", bad)
    with pytest.raises(ValueError):
        event_packets("X", 100)


def test_sender_through_the_stream_into_the_receiver() -> None:
    """Packets planned by event_packets(), numbered by a StreamRewriter and
    parsed again, give the receiver exactly one press of the right length."""
    stream = StreamRewriter(1, 8000, 65530, 2**32 - 500)
    receiver = EventReceiver()
    reports = []
    for digit in "1!":
        for p in event_packets(digit, 160):
            data = stream.next_packet(101, p.marker, p.advance, p.payload, 3.0 + p.offset)
            packet = RtpPacket.parse(data)
            reports += receiver.receive(packet.payload, packet.timestamp, packet.sequence,
                                        3.0 + p.offset, marker=packet.marker)
    assert [(type(r).__name__, r.digit) for r in reports] == [
        ("DigitStart", "1"), ("DigitEnd", "1"), ("DigitStart", "!"), ("DigitEnd", "!")]
    ends = [r for r in reports if isinstance(r, DigitEnd)]
    assert [r.duration_ms for r in ends] == [160, 160]
