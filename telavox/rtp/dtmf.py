"""RFC 4733 telephone events: the payload, a receiver that reports each key
press once, and the packet plan of a sender.

Owns :class:`TelephoneEvent` (the 4-byte payload of §2.3), the digit
spelling of events 0–16 (``0``–``9 * # A``–``D``, and ``!`` for flash),
:class:`EventReceiver` with the records it reports (:class:`DigitStart`,
:class:`DigitEnd`), and :func:`event_packets`.

Theory of operation (receiver, §2.5.2).  All packets of one event carry the
RTP timestamp of the event's start, so the timestamp is the event's
identity: the marker bit may be lost, updates may repeat, and the final
packet (E bit set) comes three times.  A packet with the timestamp of the
open event updates its duration, and ends it when the E bit is set; one
with a new timestamp starts a new event (ending an open one whose end was
lost), even for the same digit.  Timestamps of recently ended events are
remembered, so the redundant end packets and stragglers are ignored; a
packet more than zero but under ``MAX_MISORDER`` sequence numbers behind
the newest seen is ignored unless it belongs to the open event.  An open
event with no packet for ``timeout`` seconds ends by timeout
(:meth:`EventReceiver.next_deadline` / :meth:`EventReceiver.fire`).  Events
longer than the 16-bit duration field arrive as segments (§2.5.1.3): a new
timestamp equal to the open event's plus 0xFFFF continues it.  Event codes
above 16 (RFC 4734 tones) are ignored.
"""

from __future__ import annotations

import enum
from collections import deque

import attrs

from telavox.rtp.errors import RtpError
from telavox.rtp.seqnum import MAX_MISORDER

__all__ = [
    "DIGITS",
    "FLASH",
    "DigitEnd",
    "DigitEvent",
    "DigitStart",
    "EndCause",
    "EventPacket",
    "EventReceiver",
    "TelephoneEvent",
    "digit_of",
    "event_of",
    "event_packets",
]

DIGITS = "0123456789*#ABCD!"
"""The spelling of events 0–16: DTMF 0–9, ``*``, ``#``, A–D, then flash."""
FLASH = "!"
"""The spelling of event 16, hook flash (as SIP INFO dtmf-relay writes it)."""

_MAX_DURATION = 0xFFFF
_U32 = 0xFFFF_FFFF


def event_of(digit: str) -> int:
    """The event code of a digit (``0``–``9 * # A``–``D !``; letters in either case)."""
    code = DIGITS.find(digit.upper()) if len(digit) == 1 else -1
    if code < 0:
        raise ValueError(f"{digit!r} is not a DTMF digit or flash")
    return code


def digit_of(event: int) -> str:
    """The spelling of event code 0–16."""
    if not 0 <= event < len(DIGITS):
        raise ValueError(f"event {event} is not a DTMF digit or flash")
    return DIGITS[event]


@attrs.frozen(slots=True)
class TelephoneEvent:
    """One telephone-event payload (RFC 4733 §2.3).

    ``volume`` is the power level in -dBm0 (0–63); ``duration`` is in
    timestamp units since the event's start; ``reserved`` is the R bit,
    kept so that a payload re-serialises exactly.
    """

    event: int
    end: bool = False
    volume: int = 10
    duration: int = 0
    reserved: bool = False

    def __attrs_post_init__(self) -> None:
        if not 0 <= self.event <= 255:
            raise RtpError(f"event code {self.event} is not 8 bits")
        if not 0 <= self.volume <= 63:
            raise RtpError(f"event volume {self.volume} is not 0-63")
        if not 0 <= self.duration <= _MAX_DURATION:
            raise RtpError(f"event duration {self.duration} is not 16 bits")

    @classmethod
    def parse(cls, payload: bytes) -> TelephoneEvent:
        """The event in a 4-byte payload; :class:`RtpError` for any other length."""
        if len(payload) != 4:
            raise RtpError(f"telephone-event payload of {len(payload)} bytes, not 4")
        flags = payload[1]
        return cls(payload[0], flags > 0x7F, flags & 0x3F, payload[2] << 8 | payload[3],
                   bool(flags & 0x40))

    def serialize(self) -> bytes:
        """The 4-byte payload."""
        flags = self.volume | (0x80 if self.end else 0) | (0x40 if self.reserved else 0)
        return bytes((self.event, flags, self.duration >> 8, self.duration & 0xFF))


class EndCause(enum.Enum):
    """Why an event was reported ended."""

    END_PACKET = "end"
    """A packet with the E bit arrived."""
    TIMEOUT = "timeout"
    """No packet for the receiver's timeout: the end packets were lost."""
    NEXT_EVENT = "next-event"
    """A new event started before any end packet arrived."""


@attrs.frozen(slots=True)
class DigitStart:
    """A key press began: its digit, event code, RTP timestamp and volume (-dBm0)."""

    digit: str
    event: int
    timestamp: int
    volume: int


@attrs.frozen(slots=True)
class DigitEnd:
    """A key press ended: ``duration`` in timestamp units, ``duration_ms`` rounded."""

    digit: str
    event: int
    timestamp: int
    duration: int
    duration_ms: int
    cause: EndCause


DigitEvent = DigitStart | DigitEnd
"""What :class:`EventReceiver` reports."""


class _Open:
    """The event being received."""

    __slots__ = ("before", "duration", "event", "last_at", "last_seq", "segment_ts", "start_ts")

    def __init__(self, event: int, timestamp: int, seq: int, duration: int, now: float) -> None:
        self.event = event
        self.start_ts = timestamp
        self.segment_ts = timestamp  # the timestamp of the current segment
        self.before = 0  # duration of the finished segments
        self.duration = duration  # within the current segment
        self.last_seq = seq
        self.last_at = now


class EventReceiver:
    """Turns the telephone-event packets of one stream into digit events.

    ``clock_rate`` is the telephone-event clock (8000 unless SDP says
    otherwise); ``timeout`` is how long an open event may go without a packet
    before it is ended; ``memory`` is how many finished events (and passed
    segments) are remembered to recognise their late packets.
    """

    __slots__ = ("_done", "_max_seq", "_open", "clock_rate", "timeout")

    def __init__(self, clock_rate: int = 8000, *, timeout: float = 0.5,
                 memory: int = 8) -> None:
        if clock_rate <= 0:
            raise ValueError(f"clock rate {clock_rate} is not positive")
        self.clock_rate = clock_rate
        self.timeout = timeout
        self._open: _Open | None = None
        self._max_seq: int | None = None
        # (timestamp, event, last sequence number) of finished events and segments
        self._done: deque[tuple[int, int, int]] = deque(maxlen=memory)

    def next_deadline(self) -> float | None:
        """When :meth:`fire` would end the open event by timeout, or None."""
        current = self._open
        return None if current is None else current.last_at + self.timeout

    def fire(self, now: float) -> list[DigitEvent]:
        """End the open event if its timeout has passed by ``now``."""
        current = self._open
        if current is not None and now >= current.last_at + self.timeout:
            return [self._finish(current, EndCause.TIMEOUT)]
        return []

    def receive(self, payload: bytes, timestamp: int, seq: int, now: float, *,
                marker: bool = False) -> list[DigitEvent]:
        """Account for one telephone-event packet (its payload and RTP
        header fields) arrived at ``now``; returns what it started or ended,
        usually nothing.  Raises :class:`RtpError` for a malformed payload,
        before changing any state."""
        packet = TelephoneEvent.parse(payload)
        reports = self.fire(now)
        if packet.event >= len(DIGITS):
            return reports
        newest = self._max_seq
        late = newest is not None and 0 < (newest - seq) & 0xFFFF < MAX_MISORDER
        if not late:
            self._max_seq = seq
        current = self._open
        if current is not None and packet.event == current.event:
            if timestamp == current.segment_ts:
                return reports + self._update(current, packet, seq, now)
            if (current.duration == _MAX_DURATION
                    and timestamp == (current.segment_ts + _MAX_DURATION) & _U32):
                # the next segment of a long event (RFC 4733 §2.5.1.3)
                self._done.append((current.segment_ts, current.event, current.last_seq))
                current.before += _MAX_DURATION
                current.segment_ts = timestamp
                current.duration = 0
                return reports + self._update(current, packet, seq, now)
        for done_ts, done_event, done_seq in self._done:
            if done_ts == timestamp and done_event == packet.event:
                newer = 0 < (seq - done_seq) & 0xFFFF < 0x8000
                if not (marker and newer and not packet.end):
                    return reports  # a straggler of a finished event
                break  # the sender reused the timestamp for a new press
        if late:
            return reports  # from an event before the open one
        if current is not None:
            reports.append(self._finish(current, EndCause.NEXT_EVENT))
        current = self._open = _Open(packet.event, timestamp, seq, packet.duration, now)
        reports.append(DigitStart(DIGITS[packet.event], packet.event, timestamp, packet.volume))
        if packet.end:
            reports.append(self._finish(current, EndCause.END_PACKET))
        return reports

    def _update(self, current: _Open, packet: TelephoneEvent, seq: int,
                now: float) -> list[DigitEvent]:
        current.duration = max(current.duration, packet.duration)
        current.last_at = now
        if 0 < (seq - current.last_seq) & 0xFFFF < 0x8000:
            current.last_seq = seq
        if packet.end:
            return [self._finish(current, EndCause.END_PACKET)]
        return []

    def _finish(self, current: _Open, cause: EndCause) -> DigitEnd:
        self._open = None
        self._done.append((current.segment_ts, current.event, current.last_seq))
        total = current.before + current.duration
        return DigitEnd(DIGITS[current.event], current.event, current.start_ts, total,
                        round(total * 1000 / self.clock_rate), cause)


@attrs.frozen(slots=True)
class EventPacket:
    """One packet of an event to send: when (``offset`` seconds after the
    event's start), with which marker, how far it moves the stream's
    timestamp on (``advance``, the ``n_samples`` of
    :meth:`telavox.rtp.continuity.StreamRewriter.next_packet`), and its
    payload."""

    offset: float
    marker: bool
    advance: int
    payload: bytes


def event_packets(digit: str, duration_ms: int, *, clock_rate: int = 8000, volume: int = 10,
                  interval_ms: int = 50, end_repeats: int = 3) -> tuple[EventPacket, ...]:
    """The packets of one key press (RFC 4733 §2.5.1): the first with the
    marker, one every ``interval_ms`` each reporting the duration up to the
    end of its interval, then the final packet (E bit, whole duration)
    ``end_repeats`` times, ``interval_ms`` apart.  All share one RTP
    timestamp: every ``advance`` is 0 but the last, which is the duration.

    Raises ValueError for an unknown digit, a duration that is not positive
    or does not fit one 16-bit segment (8.19 s at 8000 Hz).
    """
    code = event_of(digit)
    if interval_ms <= 0 or end_repeats <= 0:
        raise ValueError("the update interval and end repeats must be positive")
    total = round(duration_ms * clock_rate / 1000)
    if not 0 < total <= _MAX_DURATION:
        raise ValueError(f"event duration of {duration_ms} ms does not fit one segment")
    step = round(interval_ms * clock_rate / 1000)
    packets = []
    at = 0
    while at < total:
        payload = TelephoneEvent(code, False, volume, min(at + step, total)).serialize()
        packets.append(EventPacket(at / clock_rate, at == 0, 0, payload))
        at += step
    final = TelephoneEvent(code, True, volume, total).serialize()
    for i in range(end_repeats):
        packets.append(EventPacket((total + i * step) / clock_rate, False,
                                   total if i == end_repeats - 1 else 0, final))
    return tuple(packets)
