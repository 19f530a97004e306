"""Levels and mixing: how loud a frame is, whether anyone is talking, and
the saturating sums a conference bridge needs.

Owns frame energy (:func:`level_dbfs`, :func:`level_dbm0`, references in
:mod:`telavox.audio.pcm`), the voice-activity / silence detector used for
inactivity and "silence on the line" detection (:class:`ActivityDetector`),
and the mixers :func:`mix` and :func:`mix_minus`, which add in int32 and
saturate to int16 once, at the end.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from telavox.audio.pcm import (
    FULL_SCALE,
    SAMPLE_RATE,
    Samples,
    as_samples,
    dbfs_to_dbm0,
    to_int16,
)

__all__ = [
    "ActivityDetector",
    "apply_gain",
    "level_dbfs",
    "level_dbm0",
    "mix",
    "mix_minus",
    "rms",
]

_LOWEST_FLOOR = -100.0  # dBm0; digital silence does not drag the floor to −inf


def rms(samples: Samples) -> float:
    """Root-mean-square of ``samples`` in 16-bit units (0.0 when empty)."""
    samples = as_samples(samples)
    if len(samples) == 0:
        return 0.0
    x = samples.astype(np.float64)
    return math.sqrt(float(np.dot(x, x)) / len(x))


def level_dbfs(samples: Samples) -> float:
    """RMS level in dBFS (AES17: a full-scale sine is 0 dBFS); −inf for
    digital silence or no samples."""
    value = rms(samples)
    return 20.0 * math.log10(value * math.sqrt(2.0) / FULL_SCALE) if value else -math.inf


def level_dbm0(samples: Samples) -> float:
    """RMS level in dBm0 (a sine of peak ≈ 22748 is 0 dBm0); −inf for silence."""
    return dbfs_to_dbm0(level_dbfs(samples))


def apply_gain(samples: Samples, gain_db: float) -> Samples:
    """``samples`` scaled by ``gain_db``, rounded and saturated to int16."""
    samples = as_samples(samples)
    return to_int16(samples.astype(np.float64) * 10.0 ** (gain_db / 20.0))


class ActivityDetector:
    """Tells voice from silence, frame by frame, with a hangover.

    A frame is *loud* when its level reaches ``threshold_dbm0`` and, with
    ``noise_margin_db`` set, also stands that far above a tracked
    noise floor (which follows quiet frames down at once and creeps up by
    ``floor_rise_db_per_s``, so steady background noise stops counting as
    voice).  The line is *active* from a loud frame until ``hangover_ms``
    after the last one, which bridges the gaps between words.  Frames may
    be of any length; time is counted in samples fed.
    """

    def __init__(self, threshold_dbm0: float = -40.0, hangover_ms: int = 300, *,
                 noise_margin_db: float | None = None, floor_rise_db_per_s: float = 3.0,
                 sample_rate: int = SAMPLE_RATE) -> None:
        """A detector that has heard nothing yet (inactive, no silence counted)."""
        self.threshold_dbm0 = threshold_dbm0
        self.noise_margin_db = noise_margin_db
        self.sample_rate = sample_rate
        self._hangover = hangover_ms * sample_rate // 1000
        self._rise_per_sample = floor_rise_db_per_s / sample_rate
        self._floor = None if noise_margin_db is None else threshold_dbm0 - noise_margin_db
        self._fed = 0                        # samples fed in all
        self._since_loud: int | None = None  # samples since the last loud frame ended

    @property
    def active(self) -> bool:
        """True from a loud frame until the hangover after the last one ends."""
        return self._since_loud is not None and self._since_loud <= self._hangover

    @property
    def silence_samples(self) -> int:
        """Samples fed since the last loud frame (all of them if none was loud)."""
        return self._fed if self._since_loud is None else self._since_loud

    @property
    def silence_ms(self) -> int:
        """:attr:`silence_samples` in milliseconds: for "silent for 30 s" checks."""
        return self.silence_samples * 1000 // self.sample_rate

    @property
    def noise_floor_dbm0(self) -> float | None:
        """The tracked noise floor in dBm0 (with ``noise_margin_db`` set), else None."""
        return self._floor

    def update(self, frame: Samples) -> bool:
        """Take the next frame; return :attr:`active` after it."""
        frame = as_samples(frame, "frame")
        level = level_dbm0(frame)
        loud = level >= self.threshold_dbm0
        if self.noise_margin_db is not None:
            above_floor = self._track_floor(level, len(frame))  # quiet frames count too
            loud = loud and above_floor
        self._fed += len(frame)
        if loud:
            self._since_loud = 0
        elif self._since_loud is not None:
            self._since_loud += len(frame)
        return self.active

    def _track_floor(self, level: float, count: int) -> bool:
        """True if a frame at ``level`` stands ``noise_margin_db`` above the noise
        floor; then let the floor follow the frame (down at once, up slowly)."""
        assert self._floor is not None and self.noise_margin_db is not None
        floor = self._floor
        if level < floor:
            self._floor = max(level, _LOWEST_FLOOR)
        else:
            self._floor = min(level, floor + self._rise_per_sample * count)
        return level >= floor + self.noise_margin_db


def _sum(frames: Sequence[Samples]) -> npt.NDArray[np.int32]:
    """The int32 sum of equally long frames (ValueError if none or unequal)."""
    if not frames:
        raise ValueError("nothing to mix")
    arrays = [as_samples(frame, "frame") for frame in frames]
    length = len(arrays[0])
    if any(len(a) != length for a in arrays):
        raise ValueError(f"frames differ in length: {sorted({len(a) for a in arrays})}")
    total = np.zeros(length, dtype=np.int32)
    for a in arrays:
        total += a
    return total


def mix(frames: Sequence[Samples]) -> Samples:
    """The sum of equally long ``frames``, saturated to int16 (the int32
    intermediate is exact for up to 65536 frames)."""
    return np.clip(_sum(frames), -32768, 32767).astype(np.int16)


def mix_minus(frames: Sequence[Samples]) -> list[Samples]:
    """For each participant's frame, the saturated sum of all the *other*
    frames: what that participant hears in a conference (never their own
    voice).  A single participant hears silence."""
    total = _sum(frames)
    return [np.clip(total - frame, -32768, 32767).astype(np.int16) for frame in frames]
