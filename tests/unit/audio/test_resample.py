"""Rate conversion: tones keep their frequency and level, what lies above the
new Nyquist frequency is filtered out, and equal rates are a copy."""

from __future__ import annotations

import math

import numpy as np
import pytest

from telavox.audio.pcm import to_int16
from telavox.audio.resample import Resampler, resample

from .signals import sine

PEAK = 16000.0


def level_db(samples: np.ndarray, peak: float = PEAK) -> float:
    """RMS of the steady middle of ``samples`` relative to a sine of ``peak``, in dB."""
    middle = samples[len(samples) // 8: -len(samples) // 8].astype(np.float64)
    rms = math.sqrt(float(np.mean(middle * middle)))
    return 20 * math.log10(max(rms, 1e-9) * math.sqrt(2) / peak)


def dominant_frequency(samples: np.ndarray, rate: int) -> float:
    """The frequency of the largest peak of a windowed spectrum, by
    parabolic interpolation between bins."""
    x = samples.astype(np.float64) * np.hanning(len(samples))
    spectrum = np.abs(np.fft.rfft(x))
    k = int(np.argmax(spectrum))
    a, b, c = np.log(spectrum[k - 1:k + 2])
    offset = 0.5 * (a - c) / (a - 2 * b + c)
    return (k + offset) * rate / len(samples)


@pytest.mark.parametrize("rate", [44100, 48000, 16000, 22050, 11025, 32000])
def test_1khz_tone_survives(rate: int) -> None:
    """A 1 kHz tone converted to 8 kHz stays at 1 kHz (±1 Hz) and keeps its
    amplitude within ±0.5 dB."""
    tone = to_int16(sine(1000, rate, 0.5, PEAK))
    narrow = resample(tone, rate, 8000)
    assert len(narrow) == 4000
    assert abs(dominant_frequency(narrow, 8000) - 1000) < 1.0
    assert abs(level_db(narrow)) < 0.5


def test_6khz_at_48k_is_removed() -> None:
    """A 6 kHz tone at 48 kHz, which would alias to 2 kHz, is at least 40 dB
    down after conversion to 8 kHz."""
    narrow = resample(to_int16(sine(6000, 48000, 0.5, PEAK)), 48000, 8000)
    assert level_db(narrow) < -40


def test_stop_band_edge() -> None:
    """Just above the new Nyquist frequency (4.1 kHz at 16 kHz in) is ≥ 60 dB
    down, while 3.4 kHz (the top of the telephone band) passes within 0.5 dB."""
    assert level_db(resample(to_int16(sine(4100, 16000, 0.5, PEAK)), 16000, 8000)) < -60
    assert abs(level_db(resample(to_int16(sine(3400, 16000, 0.5, PEAK)), 16000, 8000))) < 0.5


def test_upsampling_has_no_images() -> None:
    """8 kHz to 16 kHz keeps a 1 kHz tone and leaves its 7 kHz image ≥ 60 dB down."""
    wide = resample(to_int16(sine(1000, 8000, 0.5, PEAK)), 8000, 16000)
    assert len(wide) == 8000
    assert abs(level_db(wide)) < 0.5
    spectrum = np.abs(np.fft.rfft(wide[1000:-1000] * np.hanning(len(wide) - 2000)))
    freqs = np.fft.rfftfreq(len(wide) - 2000, 1 / 16000)
    image = spectrum[np.abs(freqs - 7000) < 50].max()
    assert 20 * math.log10(image / spectrum.max()) < -60


def test_equal_rates_copy() -> None:
    """Equal rates return an exact copy, not the same array."""
    x = np.arange(-50, 50, dtype=np.int16)
    y = resample(x, 8000, 8000)
    np.testing.assert_array_equal(x, y)
    assert y is not x


def test_dc_and_length() -> None:
    """A constant passes unchanged (each phase has unit gain) away from the
    edges, and the output length is ceil(n · out / in)."""
    x = np.full(4410, 1000, dtype=np.int16)
    y = resample(x, 44100, 8000)
    assert len(y) == 800
    np.testing.assert_array_equal(y[100:-100], 1000)
    assert len(resample(x[:7], 44100, 8000)) == 2
    assert len(resample(np.zeros(0, dtype=np.int16), 44100, 8000)) == 0


def test_odd_rate_is_approximated() -> None:
    """A rate whose exact ratio needs too many phases (44101 Hz) still converts
    a 1 kHz tone to within 0.05 Hz."""
    narrow = resample(to_int16(sine(1000, 44101, 0.5, PEAK)), 44101, 8000)
    assert abs(len(narrow) - 4000) <= 1
    assert abs(dominant_frequency(narrow, 8000) - 1000) < 0.05


def test_streaming_matches_whole() -> None:
    """Resampler fed in frames gives the output of resample on the whole, and
    can be reused after flush()."""
    x = to_int16(sine(700, 48000, 0.2, PEAK) + sine(3000, 48000, 0.2, 3000))
    whole = resample(x, 48000, 16000)
    converter = Resampler(48000, 16000)
    for _ in range(2):
        pieces = [converter.process(x[i:i + 960]) for i in range(0, len(x), 960)]
        pieces.append(converter.flush())
        np.testing.assert_array_equal(np.concatenate(pieces), whole)


def test_rejects_bad_rates() -> None:
    """Rates outside 1000..768000 Hz, or not integers, are refused."""
    for rate in (0, 999, 768001):
        with pytest.raises(ValueError, match="outside"):
            Resampler(rate, 8000)
    with pytest.raises(ValueError, match="outside"):
        Resampler(8000, 44100.0)  # type: ignore[arg-type]
