"""G.711 µ-law (PCMU) and A-law (PCMA) by lookup tables.

Owns the four tables and :class:`G711Codec`.  Decoding indexes a 256-entry
int16 table with the bytes; encoding indexes a 65536-entry uint8 table with
the int16 samples viewed as uint16, so a 20 ms frame costs two numpy
operations.  The tables are built once at import by the bit-level rules of
ITU-T G.711 as its reference software (G.191) applies them to 16-bit
samples: µ-law reads the top 14 bits, A-law the top 13, and a negative
sample is quantised by its one's complement, so ``x`` and ``-x - 1`` differ
only in the sign bit.  Decoded values are the centres of the G.711
quantisation intervals, scaled to 16 bits.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = [
    "ALAW_DECODE",
    "ALAW_ENCODE",
    "PCMA",
    "PCMU",
    "ULAW_DECODE",
    "ULAW_ENCODE",
    "G711Codec",
]

Samples = npt.NDArray[np.int16]


def _samples_by_index() -> npt.NDArray[np.int32]:
    """Every int16 value, at the position of its uint16 view."""
    return np.arange(65536, dtype=np.int32).astype(np.uint16).view(np.int16).astype(np.int32)


def _segment(magnitude: npt.NDArray[np.int32], first: int) -> npt.NDArray[np.int32]:
    """0–7: how many of the thresholds ``first``, ``2*first``, … ``64*first`` are passed."""
    segment = np.zeros_like(magnitude)
    for k in range(7):
        segment += magnitude >= first << k
    return segment


def _ulaw_encode_table() -> npt.NDArray[np.uint8]:
    x = _samples_by_index()
    biased = np.minimum((np.where(x < 0, ~x, x) >> 2) + 33, 0x1FFF)
    segment = _segment(biased, 64)
    code = 0x7F ^ (segment << 4 | (biased >> (segment + 1)) & 0x0F)
    table: npt.NDArray[np.uint8] = (code | np.where(x >= 0, 0x80, 0)).astype(np.uint8)
    return table


def _ulaw_decode_table() -> Samples:
    u = ~np.arange(256, dtype=np.int32) & 0xFF
    magnitude = ((u & 0x0F) << 3 | 0x84) << (u >> 4 & 7)
    return np.where(u & 0x80, 0x84 - magnitude, magnitude - 0x84).astype(np.int16)


def _alaw_encode_table() -> npt.NDArray[np.uint8]:
    x = _samples_by_index()
    magnitude = np.where(x < 0, ~x, x) >> 4  # 0..2047
    segment = _segment(magnitude, 16)
    step = np.where(segment == 0, magnitude, (magnitude >> np.maximum(segment - 1, 0)) - 16)
    code = segment << 4 | step
    table: npt.NDArray[np.uint8] = ((code | np.where(x >= 0, 0x80, 0)) ^ 0x55).astype(np.uint8)
    return table


def _alaw_decode_table() -> Samples:
    a = np.arange(256, dtype=np.int32) ^ 0x55
    segment = a >> 4 & 7
    magnitude = ((a & 0x0F) + np.where(segment > 0, 16, 0)) << 4 | 8
    magnitude = magnitude << np.maximum(segment - 1, 0)
    table: Samples = np.where(a & 0x80, magnitude, -magnitude).astype(np.int16)
    return table


def _frozen(table: npt.NDArray[np.generic]) -> None:
    table.flags.writeable = False


ULAW_ENCODE = _ulaw_encode_table()
"""uint8[65536]: the µ-law code of each int16 sample, indexed by its uint16 view."""
ULAW_DECODE = _ulaw_decode_table()
"""int16[256]: the sample of each µ-law code."""
ALAW_ENCODE = _alaw_encode_table()
"""uint8[65536]: the A-law code of each int16 sample, indexed by its uint16 view."""
ALAW_DECODE = _alaw_decode_table()
"""int16[256]: the sample of each A-law code."""
for _table in (ULAW_ENCODE, ULAW_DECODE, ALAW_ENCODE, ALAW_DECODE):
    _frozen(_table)


class G711Codec:
    """PCMU or PCMA: 8000 Hz, one byte per sample, a static payload type."""

    __slots__ = ("_decode", "_encode", "clock_rate", "name", "payload_type")

    def __init__(self, name: str, payload_type: int, encode: npt.NDArray[np.uint8],
                 decode: Samples) -> None:
        self.name = name
        self.payload_type = payload_type
        self.clock_rate = 8000
        self._encode = encode
        self._decode = decode

    def __repr__(self) -> str:
        return f"<G711Codec {self.name}/{self.clock_rate} pt={self.payload_type}>"

    def encode(self, samples: Samples) -> bytes:
        """The payload of ``samples`` (a 1-D int16 array)."""
        if samples.dtype != np.int16:
            raise TypeError(f"G.711 encodes int16 samples, not {samples.dtype}")
        return self._encode[samples.view(np.uint16)].tobytes()

    def decode(self, payload: bytes) -> Samples:
        """The int16 samples of ``payload`` (a new, writable array)."""
        return self._decode[np.frombuffer(payload, dtype=np.uint8)]

    def samples_per_frame(self, ms: float) -> int:
        """Samples (and payload bytes) in a frame of ``ms`` milliseconds."""
        return round(self.clock_rate * ms / 1000)


PCMU = G711Codec("PCMU", 0, ULAW_ENCODE, ULAW_DECODE)
"""G.711 µ-law, static payload type 0."""
PCMA = G711Codec("PCMA", 8, ALAW_ENCODE, ALAW_DECODE)
"""G.711 A-law, static payload type 8."""
