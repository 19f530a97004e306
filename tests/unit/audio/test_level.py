"""Levels, the activity detector and the mixers: known signals read their
known levels, the detector's hangover and silence count behave, and mixing
saturates instead of wrapping."""

from __future__ import annotations

import math

import numpy as np
import pytest

from telavox.audio.level import (
    ActivityDetector,
    apply_gain,
    level_dbfs,
    level_dbm0,
    mix,
    mix_minus,
    rms,
)
from telavox.audio.pcm import dbm0_to_peak, to_int16

from .signals import sine


def tone_frame(level_dbm0: float, count: int = 160) -> np.ndarray:
    """``count`` samples of a 1 kHz sine at ``level_dbm0``."""
    return to_int16(sine(1000, 8000, count / 8000, dbm0_to_peak(level_dbm0)))


def test_levels_of_known_signals() -> None:
    """A full-scale sine is 0 dBFS and +3.17 dBm0; a 0 dBm0 sine is 0 dBm0;
    a full-scale square wave is +3 dBFS; silence is −inf."""
    full = to_int16(sine(1000, 8000, 0.1, 32767))
    assert abs(level_dbfs(full)) < 0.01
    assert abs(level_dbm0(full) - 3.17) < 0.01
    assert abs(level_dbm0(tone_frame(0.0, 800))) < 0.01
    assert abs(level_dbm0(tone_frame(-30.0, 800)) + 30) < 0.02
    square = np.tile(np.array([32767, -32768], dtype=np.int16), 80)
    assert abs(level_dbfs(square) - 10 * math.log10(2)) < 0.01
    assert level_dbfs(np.zeros(160, np.int16)) == -math.inf
    assert rms(np.zeros(0, np.int16)) == 0.0


def test_apply_gain_saturates() -> None:
    """apply_gain scales by dB and saturates rather than wrapping."""
    x = np.array([1000, -1000, 20000, -20000], dtype=np.int16)
    np.testing.assert_array_equal(apply_gain(x, -20 * math.log10(2)), [500, -500, 10000, -10000])
    np.testing.assert_array_equal(apply_gain(x, 6.0), [1995, -1995, 32767, -32768])


def test_activity_and_hangover() -> None:
    """Voice turns the detector on at once; it stays on through the hangover
    (300 ms = 15 frames of silence) and then goes off; silence_ms counts from
    the last loud frame."""
    detector = ActivityDetector(threshold_dbm0=-40.0, hangover_ms=300)
    quiet = tone_frame(-50.0)
    assert not detector.update(quiet)
    assert detector.silence_ms == 20
    assert detector.update(tone_frame(-20.0))
    assert detector.silence_samples == 0
    states = [detector.update(quiet) for _ in range(20)]
    assert states == [True] * 15 + [False] * 5
    assert detector.silence_ms == 400


def test_silence_on_the_line() -> None:
    """Thirty seconds of low noise after speech reads as 30 s of silence."""
    detector = ActivityDetector()
    detector.update(tone_frame(-15.0))
    rng = np.random.default_rng(0)
    for _ in range(1500):
        detector.update(to_int16(rng.normal(0, 20, 160)))
    assert detector.silence_ms == 30_000 and not detector.active


def test_adaptive_noise_floor() -> None:
    """With a noise margin, steady loud background noise stops counting as
    voice once the floor has risen to it, while speech above it still counts."""
    detector = ActivityDetector(threshold_dbm0=-40.0, hangover_ms=0, noise_margin_db=10.0,
                                floor_rise_db_per_s=10.0)
    rng = np.random.default_rng(1)
    noise = [to_int16(rng.normal(0, 800, 160)) for _ in range(300)]  # ≈ −26 dBm0
    assert detector.update(noise[0])
    for frame in noise[1:]:
        detector.update(frame)
    assert not detector.active
    floor = detector.noise_floor_dbm0
    assert floor is not None and abs(floor - level_dbm0(noise[-1])) < 3
    assert detector.update(tone_frame(-5.0))
    for _ in range(5):  # quiet frames pull the floor straight down
        detector.update(tone_frame(-70.0))
    floor = detector.noise_floor_dbm0
    assert floor is not None and abs(floor + 70) < 0.5
    assert ActivityDetector().noise_floor_dbm0 is None


def test_mix_saturates() -> None:
    """mix adds in int32 and clips once, so loud sums saturate and
    cancellations are exact."""
    a = np.array([30000, -30000, 100, 5], dtype=np.int16)
    b = np.array([30000, -30000, -100, 6], dtype=np.int16)
    np.testing.assert_array_equal(mix([a, b]), [32767, -32768, 0, 11])
    np.testing.assert_array_equal(mix([a, b, -b]), a)
    np.testing.assert_array_equal(mix([a]), a)


def test_mix_minus() -> None:
    """Each participant hears the others and never themselves; one alone hears silence."""
    a = np.array([1, 2, 3], dtype=np.int16)
    b = np.array([10, 20, 30], dtype=np.int16)
    c = np.array([32767, 100, -32768], dtype=np.int16)
    out_a, out_b, out_c = mix_minus([a, b, c])
    np.testing.assert_array_equal(out_a, [32767, 120, -32738])
    np.testing.assert_array_equal(out_b, [32767, 102, -32765])
    np.testing.assert_array_equal(out_c, [11, 22, 33])
    np.testing.assert_array_equal(mix_minus([a])[0], [0, 0, 0])


def test_mixer_errors() -> None:
    """Nothing to mix, unequal lengths or a wrong dtype are refused."""
    with pytest.raises(ValueError, match="nothing"):
        mix([])
    with pytest.raises(ValueError, match="differ"):
        mix_minus([np.zeros(3, np.int16), np.zeros(4, np.int16)])
    with pytest.raises(TypeError):
        mix([np.zeros(3, np.int32)])  # type: ignore[list-item]
