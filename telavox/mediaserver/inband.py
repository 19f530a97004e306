"""In-band DTMF detection of one received stream, in batches.

Owns :class:`InbandDtmf`: the G.711 payloads of a far end that did not
negotiate telephone-event are collected as they arrive and handed to the
Goertzel detector (:class:`telavox.audio.dtmfdetect.DtmfDetector`)
:data:`BATCH` samples at a time, because one numpy pass over 100 ms costs
about what a pass over 20 ms does.  A digit is therefore reported up to
100 ms later than a per-packet detector would.

A batch whose samples all stay below :data:`QUIET` (the peak of one tone at
−35 dBm0, the detector's lowest accepted level) cannot hold a digit, and is
not analysed while no digit is being heard: in a call, the half of the time
one side listens costs next to nothing.  Sans-IO.
"""

from __future__ import annotations

import numpy as np

from telavox.audio.dtmfdetect import DigitEvent, DtmfDetector
from telavox.audio.pcm import dbm0_to_peak
from telavox.mediaserver.formats import DECODERS

__all__ = ["BATCH", "QUIET", "InbandDtmf"]

#: Samples (payload bytes) collected before the detector runs: 100 ms.
BATCH = 800

#: Peak (16-bit linear) under which a batch is silence to the detector.
QUIET = int(dbm0_to_peak(-35.0))


class InbandDtmf:
    """The detector of one stream and the payload bytes waiting for it."""

    __slots__ = ("_codec", "_detector", "_pending", "skipped")

    def __init__(self) -> None:
        self._detector = DtmfDetector()
        self._pending = bytearray()
        self._codec = -1
        self.skipped = 0

    def feed(self, codec: int, data: bytes, start: int, end: int) -> list[DigitEvent]:
        """Take the payload ``data[start:end]`` of ``codec`` (a ``CODEC_*``
        number; other than G.711 is ignored); returns the digits that
        ended."""
        if codec not in DECODERS or end <= start:
            return []
        found: list[DigitEvent] = []
        if codec != self._codec:
            found = self.flush()
            self._codec = codec
        pending = self._pending
        pending += memoryview(data)[start:end]
        if len(pending) >= BATCH:
            found += self.flush()
        return found

    def flush(self) -> list[DigitEvent]:
        """Run the detector on what is waiting."""
        pending = self._pending
        if not pending:
            return []
        samples = DECODERS[self._codec][np.frombuffer(pending, dtype=np.uint8)]
        pending.clear()
        detector = self._detector
        if (detector.current is None and int(samples.max()) < QUIET
                and int(samples.min()) > -QUIET):
            self.skipped += 1
            return []
        return detector.feed(samples)
