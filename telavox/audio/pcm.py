"""What "audio" means inside the platform: the sample format, the frame, and
the level reference every other module of :mod:`telavox.audio` shares.

Audio is 16-bit signed linear PCM, mono, held in one-dimensional numpy
``int16`` arrays, at 8000 Hz (narrowband telephony) unless a function says
otherwise; a frame is 20 ms.

Levels.  ``dBFS`` follows AES17: 0 dBFS is the RMS of a sine whose peaks
touch full scale (±32768), so a full-scale sine reads 0 dBFS and a
full-scale square wave +3.01 dBFS.  ``dBm0`` follows ITU-T G.711: the
largest sine µ-law can carry (peaks at its overload point) is +3.17 dBm0.
Taking 16-bit full scale as that overload point, a 0 dBm0 sine has peak
``32768 · 10^(−3.17/20) ≈ 22748`` and ``dBm0 = dBFS + 3.17``.  (A-law's
maximum is +3.14 dBm0; we use the µ-law figure throughout, as North
American and most VoIP practice does; the 0.03 dB difference is below any
tolerance that matters here.)
"""

from __future__ import annotations

import math
from typing import Final

import numpy as np
import numpy.typing as npt

__all__ = [
    "DBM0_PEAK",
    "FRAME_MS",
    "FRAME_SAMPLES",
    "FULL_SCALE",
    "MAX_RATE",
    "MIN_RATE",
    "MULAW_MAX_DBM0",
    "SAMPLE_RATE",
    "WIDEBAND_RATE",
    "Samples",
    "as_samples",
    "dbfs_to_dbm0",
    "dbm0_to_dbfs",
    "dbm0_to_peak",
    "frame_samples",
    "to_int16",
]

Samples = npt.NDArray[np.int16]
"""A one-dimensional ``int16`` array of mono PCM samples."""

SAMPLE_RATE: Final = 8000
"""Narrowband telephony sample rate (Hz): the platform's default."""

WIDEBAND_RATE: Final = 16000
"""Wideband (G.722, Opus-wb) sample rate (Hz)."""

MIN_RATE: Final = 1000
"""Lowest sample rate (Hz) the package accepts (from a WAV file or a caller)."""

MAX_RATE: Final = 768000
"""Highest sample rate (Hz) the package accepts."""

FRAME_MS: Final = 20
"""One frame of audio, in milliseconds (the usual RTP packetisation)."""

FRAME_SAMPLES: Final = SAMPLE_RATE * FRAME_MS // 1000
"""Samples in one 20 ms frame at 8000 Hz (160)."""

FULL_SCALE: Final = 32768.0
"""Magnitude of 16-bit full scale, the reference of dBFS."""

MULAW_MAX_DBM0: Final = 3.17
"""Level of a full-scale sine in µ-law (ITU-T G.711), in dBm0."""

DBM0_PEAK: Final = FULL_SCALE * math.pow(10.0, -MULAW_MAX_DBM0 / 20.0)
"""Peak amplitude of a 0 dBm0 sine in 16-bit linear PCM (≈ 22748)."""


def frame_samples(sample_rate: int = SAMPLE_RATE) -> int:
    """Samples in one 20 ms frame at ``sample_rate`` (160 at 8 kHz, 320 at 16 kHz)."""
    return sample_rate * FRAME_MS // 1000


def dbm0_to_peak(level_dbm0: float) -> float:
    """Peak amplitude (16-bit units) of a sine at ``level_dbm0``."""
    return DBM0_PEAK * math.pow(10.0, level_dbm0 / 20.0)


def dbfs_to_dbm0(level_dbfs: float) -> float:
    """The dBm0 figure for an RMS level given in dBFS (AES17)."""
    return level_dbfs + MULAW_MAX_DBM0


def dbm0_to_dbfs(level_dbm0: float) -> float:
    """The dBFS figure (AES17) for a level given in dBm0."""
    return level_dbm0 - MULAW_MAX_DBM0


def to_int16(values: npt.ArrayLike) -> Samples:
    """Round ``values`` to the nearest integer (ties to even) and saturate them
    to the int16 range; NaN becomes 0 and ±inf full scale."""
    array = np.asarray(values, dtype=np.float64)
    if not np.all(np.isfinite(array)):
        array = np.nan_to_num(array, nan=0.0, posinf=32767.0, neginf=-32768.0)
    return np.clip(np.rint(array), -32768.0, 32767.0).astype(np.int16)


def as_samples(samples: object, name: str = "samples") -> Samples:
    """``samples`` as a one-dimensional int16 array (no copy when it already is).

    Raises :class:`TypeError` for anything that is not an int16 array, and
    :class:`ValueError` for an int16 array that is not one-dimensional: the
    functions of this package never convert silently between sample formats.
    """
    if not isinstance(samples, np.ndarray) or samples.dtype != np.int16:
        kind = samples.dtype if isinstance(samples, np.ndarray) else type(samples).__name__
        raise TypeError(f"{name} must be an int16 numpy array, not {kind}")
    if samples.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, not shape {samples.shape}")
    return samples
