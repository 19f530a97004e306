"""Recording an endpoint to a WAV file, written as the call goes.

Owns :class:`Recorder`.  In stereo the left channel is what the endpoint's
far end sends, the right channel what it is sent (relayed media and playback
alike); a mono recording (``received_only``: voicemail, a caller's greeting)
keeps just what the far end sends.  Samples are
both decoded from G.711 to 16-bit linear at 8 kHz.  The relay core hands
every received and every sent payload to :meth:`Recorder.received` /
:meth:`Recorder.sent`; the shared 20 ms pacer calls :meth:`Recorder.tick`,
which writes one 20 ms stereo frame per slot that has come due: the samples
waiting in each channel's queue, or silence where nothing arrived in time.
A queue holds at most :data:`MAX_QUEUED` samples (older ones are dropped),
so a sender running fast cannot make one channel drift behind the other.

Payloads that are not G.711 (telephone-event, comfort noise, other codecs)
are not decoded: that slot is silent.  Nothing here reads a clock; the file
is written through a :class:`telavox.audio.wavfile.WavWriter` (header sizes
fixed up when the recording is closed).
"""

from __future__ import annotations

from typing import BinaryIO

import numpy as np
import numpy.typing as npt

from telavox.audio.wavfile import WavWriter

__all__ = ["FRAME", "MAX_QUEUED", "Recorder"]

#: Samples per 20 ms slot at 8 kHz.
FRAME = 160

#: Most samples a channel queue keeps (200 ms).
MAX_QUEUED = 1600

_INTERVAL = 0.02

#: Most slots one tick writes after a stall before it skips ahead.
_MAX_CATCH_UP = 250

Samples = npt.NDArray[np.int16]


class _Channel:
    """The decoded samples of one direction waiting for their slot."""

    __slots__ = ("chunks", "dropped", "queued")

    def __init__(self) -> None:
        self.chunks: list[Samples] = []
        self.queued = 0
        self.dropped = 0

    def push(self, samples: Samples) -> None:
        self.chunks.append(samples)
        self.queued += len(samples)
        while self.queued > MAX_QUEUED:
            excess = self.queued - MAX_QUEUED
            head = self.chunks[0]
            if len(head) <= excess:
                self.chunks.pop(0)
                self.queued -= len(head)
                self.dropped += len(head)
            else:
                self.chunks[0] = head[excess:]
                self.queued -= excess
                self.dropped += excess

    def take(self, silence: Samples) -> Samples:
        """One slot of samples; silence when fewer than a slot are waiting."""
        if self.queued < FRAME:
            return silence
        out = np.concatenate(self.chunks) if len(self.chunks) > 1 else self.chunks[0]
        rest = out[FRAME:]
        self.chunks = [rest] if len(rest) else []
        self.queued = len(rest)
        return out[:FRAME]


class Recorder:
    """A stereo WAV recording of one endpoint (see the module docstring).

    ``decoders`` maps the ``CODEC_*`` numbers of :mod:`.formats` (PCMU and
    PCMA) to 256-entry int16 decoding tables.  The first slot is due 20 ms
    after ``now``.
    """

    def __init__(self, recording_id: str, endpoint_id: str, path: str, file: BinaryIO,
                 decoders: dict[int, Samples], now: float, *,
                 received_only: bool = False) -> None:
        self.recording_id = recording_id
        self.endpoint_id = endpoint_id
        self.path = path
        self._file = file
        self.received_only = received_only
        self._writer = WavWriter(file, 8000, channels=1 if received_only else 2)
        self._decoders = decoders
        self._left = _Channel()
        self._right = _Channel()
        self._silence: Samples = np.zeros(FRAME, dtype=np.int16)
        self.next_due = now + _INTERVAL
        self.slots = 0
        self.silent_slots = 0
        self.closed = False

    @classmethod
    def open(cls, recording_id: str, endpoint_id: str, path: str,
             decoders: dict[int, Samples], now: float, *,
             received_only: bool = False) -> Recorder:
        """A recorder writing a new file at ``path`` (OSError when it cannot
        be created)."""
        file = open(path, "wb")  # noqa: SIM115 - closed by close()
        try:
            return cls(recording_id, endpoint_id, path, file, decoders, now,
                       received_only=received_only)
        except BaseException:
            file.close()
            raise

    def _decode(self, codec: int, data: bytes | bytearray, start: int, end: int
                ) -> Samples | None:
        table = self._decoders.get(codec)
        if table is None or end <= start:
            return None
        codes = np.frombuffer(data, dtype=np.uint8, count=end - start, offset=start)
        return table[codes]

    def received(self, codec: int, data: bytes | bytearray, start: int, end: int) -> None:
        """The far end sent ``data[start:end]`` (a payload of ``codec``)."""
        samples = self._decode(codec, data, start, end)
        if samples is not None:
            self._left.push(samples)

    def sent(self, codec: int, data: bytes | bytearray, start: int, end: int) -> None:
        """The far end was sent ``data[start:end]`` (a payload of ``codec``)."""
        if self.received_only:
            return
        samples = self._decode(codec, data, start, end)
        if samples is not None:
            self._right.push(samples)

    def tick(self, now: float) -> None:
        """Write every slot that has come due by ``now``."""
        if self.closed:
            return
        written = 0
        while self.next_due <= now + 1e-6:
            if written == _MAX_CATCH_UP:
                self.next_due = now + _INTERVAL
                break
            self._write_slot()
            written += 1
            self.next_due += _INTERVAL

    def _write_slot(self) -> None:
        silence = self._silence
        left = self._left.take(silence)
        if self.received_only:
            if left is silence:
                self.silent_slots += 1
            self._writer.write(left)
            self.slots += 1
            return
        right = self._right.take(silence)
        if left is silence and right is silence:
            self.silent_slots += 1
        self._writer.write_stereo(left, right)
        self.slots += 1

    def close(self) -> str:
        """Finish the file (header sizes fixed, file closed); returns the
        path.  Closing twice is harmless."""
        if not self.closed:
            self.closed = True
            try:
                self._writer.close()
            finally:
                self._file.close()
        return self.path
