"""The shared sample format and level reference."""

from __future__ import annotations

import numpy as np
import pytest

from telavox.audio.pcm import (
    DBM0_PEAK,
    FRAME_SAMPLES,
    as_samples,
    dbfs_to_dbm0,
    dbm0_to_dbfs,
    dbm0_to_peak,
    frame_samples,
    to_int16,
)


def test_reference_values() -> None:
    """0 dBm0 peaks 3.17 dB below 16-bit full scale (≈ 22748); frames are 20 ms."""
    assert round(DBM0_PEAK) == 22748
    assert abs(dbm0_to_peak(3.17) - 32768) < 1e-6
    assert abs(dbm0_to_peak(-20) - DBM0_PEAK / 10) < 1e-9
    assert abs(dbfs_to_dbm0(dbm0_to_dbfs(-13.0)) + 13.0) < 1e-12
    assert abs(dbm0_to_dbfs(0.0) + 3.17) < 1e-12
    assert FRAME_SAMPLES == 160 and frame_samples(16000) == 320 and frame_samples(48000) == 960


def test_to_int16_rounds_and_saturates() -> None:
    """to_int16 rounds half to even, saturates, and maps NaN to 0 and ±inf to full scale."""
    values = [0.5, 1.5, -0.5, -2.5, 40000.0, -40000.0, np.nan, np.inf, -np.inf]
    np.testing.assert_array_equal(to_int16(values), [0, 2, 0, -2, 32767, -32768, 0, 32767,
                                                     -32768])


def test_as_samples_is_strict() -> None:
    """Only one-dimensional int16 arrays pass, unchanged and uncopied."""
    x = np.zeros(4, np.int16)
    assert as_samples(x) is x
    with pytest.raises(TypeError, match="float64"):
        as_samples(np.zeros(4))
    with pytest.raises(TypeError, match="list"):
        as_samples([1, 2])
    with pytest.raises(ValueError, match="one-dimensional"):
        as_samples(np.zeros((2, 2), np.int16))
