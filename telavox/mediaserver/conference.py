"""Conference rooms: every participant hears the sum of the others.

Owns :class:`Conference` (the rooms of one mediaserver), :class:`Room`,
:class:`Participant`, :class:`SampleQueue` and :func:`mix`.  Sans-IO: the
relay core (:mod:`telavox.mediaserver.relay`) hands each RTP payload a
participant's far end sends to :meth:`Participant.received` and calls
:meth:`Conference.tick` from the shared 20 ms pacer with ``now``; packets
leave through each participant's audio
:class:`~telavox.mediaserver.stream.Stream` (its send function and its
continuity rewriter).

Theory of operation.

*In.*  Each participant has a :class:`SampleQueue` of decoded 16-bit
samples (G.711 by the 256-entry tables of :data:`.formats.DECODERS`; other
payloads, telephone-events, comfort noise, are not audio here and add
nothing).  A queue keeps at most :data:`MAX_QUEUED` samples (100 ms),
dropping the oldest, so a far end whose clock runs fast (or a burst after a
network stall) cannot make its voice lag further and further behind: the
lag it can build is bounded by the queue.  A muted participant's audio is
not queued at all, and its queue is emptied when it is muted.

*Mix.*  Each room has its own frame deadline, aligned to the pacer's tick
on the first tick after the room is created; a tick mixes every frame due
within half a frame of ``now`` (at most :data:`MAX_CATCH_UP` after a
stall, then it skips ahead).  A frame takes 160 samples from every
unmuted participant holding at least that many (silence for the others)
into one ``(n, 160)`` int16 array, sums it once in int32, subtracts each
row from the total (a participant never hears itself), clips to int16 and
encodes all rows with the 65536-entry G.711 tables: a few numpy operations
per room whatever its size, so the per-participant cost is the Python that
builds and sends one packet.

*Out.*  Each participant gets its row encoded in its far end's first G.711
format (PCMU or PCMA in its order of preference; a far end taking neither
stays deaf, reported once per description through ``notice``) as one packet
through its stream's :class:`~telavox.rtp.continuity.StreamRewriter`: one
SSRC and sequence line with whatever was sent before (relayed media, a
prompt), the timestamp moving 160 per frame, the marker bit on the first
frame and on the first after a pause.  Nothing is sent while a playback
plays to the participant (it takes precedence; the mix resumes with a
marker when it ends), nor where the stream has no destination (no address
yet, hold).  When nobody speaks the frames still go, as encoded silence:
the far end's jitter buffer stays fed and its NAT binding open, and its
voice activity detection (if any) is left to decide what to do with them.
A recording of a participant gets what it is sent, the mix, on its right
channel.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from telavox.mediaserver.formats import (
    CODEC_OTHER,
    CODEC_PCMA,
    DECODERS,
    codec_of,
    preferred_g711,
)
from telavox.records import RemoteStream
from telavox.rtp.codecs.g711 import ALAW_ENCODE, ULAW_ENCODE

if TYPE_CHECKING:
    from telavox.mediaserver.stream import Stream

__all__ = [
    "FRAME",
    "MAX_CATCH_UP",
    "MAX_QUEUED",
    "Conference",
    "Notice",
    "Participant",
    "Room",
    "SampleQueue",
    "mix",
]

#: Samples per 20 ms frame at 8 kHz.
FRAME = 160

#: Most samples a participant's queue keeps (100 ms).
MAX_QUEUED = 800

#: Most frames one tick mixes after a stall before it skips ahead.
MAX_CATCH_UP = 5

_INTERVAL = 0.02

Samples = npt.NDArray[np.int16]

Notice = Callable[..., object]
"""``notice(what, **fields)``: something worth one log line (``deaf``:
``endpoint_id``, ``room``, ``formats``)."""

_SILENCE: Samples = np.zeros(FRAME, dtype=np.int16)
_SILENCE.flags.writeable = False


def mix(frames: Samples) -> Samples:
    """Each row's mix-minus: the sum of every row but its own, clipped to
    int16.  ``frames`` is ``(n, FRAME)`` int16; so is the result."""
    total = frames.sum(axis=0, dtype=np.int32)
    others = total - frames  # int32, broadcast over the rows
    np.clip(others, -32768, 32767, out=others)
    return others.astype(np.int16)


class SampleQueue:
    """Decoded samples of one participant waiting for their frame; at most
    ``limit`` (the oldest are dropped and counted in ``dropped``)."""

    __slots__ = ("chunks", "dropped", "limit", "queued")

    def __init__(self, limit: int = MAX_QUEUED) -> None:
        self.chunks: list[Samples] = []
        self.queued = 0
        self.dropped = 0
        self.limit = limit

    def push(self, samples: Samples) -> int:
        """Queue ``samples``; returns how many old ones were dropped."""
        self.chunks.append(samples)
        self.queued += len(samples)
        dropped = 0
        while self.queued > self.limit:
            excess = self.queued - self.limit
            head = self.chunks[0]
            if len(head) <= excess:
                self.chunks.pop(0)
                self.queued -= len(head)
                dropped += len(head)
            else:
                self.chunks[0] = head[excess:]
                self.queued -= excess
                dropped += excess
        self.dropped += dropped
        return dropped

    def take(self) -> Samples | None:
        """One frame of samples, or None when fewer than a frame are waiting."""
        if self.queued < FRAME:
            return None
        chunks = self.chunks
        out = chunks[0] if len(chunks) == 1 else np.concatenate(chunks)
        rest = out[FRAME:]
        self.chunks = [rest] if len(rest) else []
        self.queued = len(rest)
        return out[:FRAME]

    def clear(self) -> None:
        """Forget everything queued."""
        self.chunks = []
        self.queued = 0


class Participant:
    """One endpoint's audio stream in a room: its queue, whether it is
    muted, and what its far end takes (refreshed whenever the stream's
    remote description changes)."""

    __slots__ = ("codec", "deaf_reported", "fresh", "muted", "pt", "queue", "remote",
                 "room", "stream")

    def __init__(self, room: Room, stream: Stream, muted: bool = False) -> None:
        self.room = room
        self.stream = stream
        self.muted = muted
        self.queue = SampleQueue()
        self.fresh = True  # the next frame sent starts a talkspurt (marker)
        self.remote: RemoteStream | None = None
        self.codec = CODEC_OTHER  # CODEC_PCMU or CODEC_PCMA once the far end takes one
        self.pt = 0
        self.deaf_reported = False
        self.refresh()

    @property
    def endpoint_id(self) -> str:
        """The id of the participant's endpoint."""
        return self.stream.endpoint.endpoint_id

    def refresh(self) -> None:
        """Take the stream's (new) remote description: the format to send."""
        remote = self.remote = self.stream.remote
        fmt = preferred_g711(remote)
        self.codec = codec_of(fmt)
        self.pt = fmt.payload_type if fmt is not None else 0
        self.deaf_reported = False

    def received(self, codec: int, data: bytes | bytearray, start: int, end: int) -> int:
        """The far end sent ``data[start:end]``, a payload of ``codec``
        (a ``CODEC_*`` number): queue its samples unless muted.  Returns
        the samples the queue dropped to stay bounded."""
        if self.muted or end <= start:
            return 0
        table = DECODERS.get(codec)
        if table is None:
            return 0
        codes = np.frombuffer(data, dtype=np.uint8, count=end - start, offset=start)
        return self.queue.push(table[codes])


class Room:
    """A conference room: its participants in the order they joined, and
    the deadline of its next frame (None until the first tick)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.participants: list[Participant] = []
        self.next_due: float | None = None
        self.frames = 0
        self._buffer: Samples = np.zeros((0, FRAME), dtype=np.int16)

    def __len__(self) -> int:
        return len(self.participants)

    def collect(self) -> Samples:
        """One frame of every participant, as an ``(n, FRAME)`` array (a
        muted participant's row, and one with less than a frame queued, is
        silence).  The array is reused by the next call."""
        participants = self.participants
        n = len(participants)
        frames = self._buffer
        if len(frames) != n:
            frames = self._buffer = np.zeros((n, FRAME), dtype=np.int16)
        for i, participant in enumerate(participants):
            samples = participant.queue.take() if not participant.muted else None
            frames[i] = _SILENCE if samples is None else samples
        return frames

    def encode(self, mixed: Samples) -> bytes:
        """Every row of ``mixed`` encoded in its participant's format (PCMU
        for a deaf one), as one byte string of ``FRAME`` bytes a row."""
        indices = mixed.view(np.uint16)
        codes = ULAW_ENCODE[indices]
        alaw = [i for i, p in enumerate(self.participants) if p.codec == CODEC_PCMA]
        if alaw:
            codes[alaw] = ALAW_ENCODE[indices[alaw]]
        return codes.tobytes()


class Conference:
    """The conference rooms of one relay core.

    ``counters`` is the core's counter dict (``mixed_frames``,
    ``mixed_in``, ``mix_overflow``); ``notice`` gets what is worth a log
    line (see :data:`Notice`).
    """

    def __init__(self, counters: dict[str, int], notice: Notice = lambda what, **f: None
                 ) -> None:
        self.rooms: dict[str, Room] = {}
        self.counters = counters
        self.notice = notice

    @property
    def participants(self) -> int:
        """Participants in every room."""
        return sum(len(room) for room in self.rooms.values())

    def join(self, name: str, stream: Stream, muted: bool = False) -> int:
        """Put ``stream`` into room ``name`` (leaving the one it is in, if
        another; joining its own room again only sets ``muted``).  Returns
        the number of participants in the room."""
        current = stream.participant
        if current is not None and current.room.name == name:
            self.mute(stream, muted)
            return len(current.room)
        self.leave(stream)
        room = self.rooms.get(name)
        if room is None:
            room = self.rooms[name] = Room(name)
        participant = Participant(room, stream, muted)
        room.participants.append(participant)
        stream.participant = participant
        return len(room)

    def leave(self, stream: Stream) -> int:
        """Take ``stream`` out of its room (a room left empty is removed);
        returns the participants left there (0 when it was in none)."""
        participant = stream.participant
        if participant is None:
            return 0
        stream.participant = None
        room = participant.room
        room.participants.remove(participant)
        if not room.participants:
            del self.rooms[room.name]
        return len(room)

    def mute(self, stream: Stream, muted: bool) -> bool:
        """Keep ``stream``'s audio out of its room's mix (or put it back);
        False when it is in no room."""
        participant = stream.participant
        if participant is None:
            return False
        if muted and not participant.muted:
            participant.queue.clear()
        participant.muted = muted
        return True

    # -- time ---------------------------------------------------------------------------

    def tick(self, now: float) -> None:
        """Mix and send every frame due by ``now`` in every room."""
        for room in self.rooms.values():
            due = room.next_due
            if due is None:
                due = now
            frames = 0
            while due <= now + _INTERVAL / 2:
                if frames == MAX_CATCH_UP:
                    due = now + _INTERVAL
                    for participant in room.participants:
                        participant.fresh = True
                    break
                frames += 1
                due += _INTERVAL
                self._frame(room, now)
            room.next_due = due

    def _frame(self, room: Room, now: float) -> None:
        """Mix one frame of ``room`` and send each participant its part."""
        participants = room.participants
        for participant in participants:
            if participant.stream.remote is not participant.remote:
                participant.refresh()
        payloads = room.encode(mix(room.collect()))
        room.frames += 1
        counters = self.counters
        start = 0
        for participant in participants:
            end = start + FRAME
            codec = participant.codec
            stream = participant.stream
            dest = stream.dest
            if codec == CODEC_OTHER or dest is None or stream.endpoint.player is not None:
                participant.fresh = True
                if codec == CODEC_OTHER and participant.remote is not None:
                    self._deaf(participant)
                start = end
                continue
            packet = stream.output.next_packet(participant.pt, participant.fresh, FRAME,
                                               payloads[start:end], now)
            start = end
            participant.fresh = False
            stream.send_rtp(packet, dest)
            stream.packets_out += 1
            stream.octets_out += len(packet)
            counters["mixed_frames"] += 1
            recorder = stream.endpoint.recorder
            if recorder is not None:
                recorder.sent(codec, packet, 12, len(packet))

    def _deaf(self, participant: Participant) -> None:
        if participant.deaf_reported:
            return
        participant.deaf_reported = True
        remote = participant.remote
        formats = " ".join(f.name for f in remote.formats) if remote is not None else ""
        self.notice("deaf", endpoint_id=participant.endpoint_id, room=participant.room.name,
                    formats=formats)
