"""Tones: the indications.conf notation parses and prints back, the generator
plays cadences with the right timing, frequency and level, continuously
across frames, and DTMF digits have the Q.23 frequencies at the asked level."""

from __future__ import annotations

import numpy as np
import pytest

from telavox.audio.pcm import DBM0_PEAK, FRAME_SAMPLES, dbm0_to_peak
from telavox.audio.tones import (
    DTMF_DIGITS,
    DTMF_FREQUENCIES,
    TONE_PLANS,
    Tone,
    ToneElement,
    ToneError,
    ToneGenerator,
    dtmf_sequence,
    dtmf_tone,
    tone_plan,
)


def spectrum_peaks(samples: np.ndarray, rate: int = 8000, count: int = 2) -> list[float]:
    """The ``count`` strongest frequencies (Hz, 1 Hz resolution for 1 s)."""
    spectrum = np.abs(np.fft.rfft(samples.astype(np.float64)))
    freqs = np.fft.rfftfreq(len(samples), 1 / rate)
    return sorted(float(f) for f in freqs[np.argsort(spectrum)[-count:]])


def test_parse_the_example() -> None:
    """The brief's example parses into its four elements and prints back the same."""
    text = "!350+440/100,!0/100,440/500,0/500"
    tone = Tone.parse(text)
    assert tone.elements == (
        ToneElement(350, 440, duration_ms=100, once=True),
        ToneElement(0, duration_ms=100, once=True),
        ToneElement(440, duration_ms=500),
        ToneElement(0, duration_ms=500),
    )
    assert tone.repeat_from == 2
    assert str(tone) == text


def test_parse_forms() -> None:
    """Modulation, missing durations, blanks, and the '|' separator are accepted."""
    tone = Tone.parse(" 425*25/400 | 350+440 | 0 ")
    assert tone.elements == (ToneElement(425, 25, modulate=True, duration_ms=400),
                             ToneElement(350, 440), ToneElement(0))
    assert str(tone) == "425*25/400,350+440,0"
    assert Tone.parse("!425/100,!0/100").repeat_from is None


@pytest.mark.parametrize("text", ["", "abc", "425/", "425+", "!", "425,,0", "M60",
                                  "-425", "425/100/100", "425+440+480", "1000000"])
def test_parse_errors(text: str) -> None:
    """Malformed tone lists raise ToneError."""
    with pytest.raises(ToneError):
        Tone.parse(text)


def test_frequency_above_nyquist_refused() -> None:
    """A generator refuses a frequency it cannot represent at its rate."""
    with pytest.raises(ToneError, match="10000 Hz"):
        ToneGenerator(Tone.parse("1000/400,10000/400"))
    ToneGenerator(Tone.parse("7000"), sample_rate=16000)


def test_cadence_timing_us_busy() -> None:
    """US busy (480+620, 500 ms on / 500 ms off) repeats with exact timing:
    frames 0–24 carry the tone, 25–49 are silent, then it starts again."""
    generator = tone_plan("us").busy.generator()
    frames = [generator.next_frame() for _ in range(100)]
    assert all(len(f) == FRAME_SAMPLES for f in frames)
    loud = [bool(np.any(f)) for f in frames]
    assert loud == ([True] * 25 + [False] * 25) * 2
    assert not generator.finished
    assert spectrum_peaks(np.concatenate(frames[:25])) == [480.0, 620.0]


def test_frames_are_phase_continuous() -> None:
    """Frames concatenate into the same signal as one long request, which is a
    clean sine: no phase jump at frame boundaries."""
    tone = Tone.parse("425")
    generator = tone.generator()
    framed = np.concatenate([generator.next_frame() for _ in range(50)])
    whole = tone.generator().samples(50 * FRAME_SAMPLES)
    np.testing.assert_array_equal(framed, whole)
    ideal = dbm0_to_peak(-10) * np.sin(2 * np.pi * 425 * np.arange(len(whole)) / 8000)
    assert np.max(np.abs(whole - ideal)) <= 0.5


def test_level_per_component() -> None:
    """Each component plays at the asked level in dBm0 (peak ≈ 22748 · 10^(L/20))."""
    samples = Tone.parse("1000").generator(level_dbm0=0.0).samples(8000)
    assert abs(int(np.max(samples)) - round(DBM0_PEAK)) <= 1
    quiet = Tone.parse("1000").generator(level_dbm0=-20.0).samples(8000)
    assert abs(float(np.max(quiet)) - DBM0_PEAK / 10) <= 1


def test_once_only_tone_finishes() -> None:
    """A tone whose elements are all '!' plays once, to the sample, then gives
    silence and reports finished."""
    generator = Tone.parse("!1001/30,!0/10,!1001/30").generator()
    frames = [generator.next_frame()]
    frames += [generator.next_frame(), generator.next_frame()]
    assert not generator.finished  # 480 of its 560 samples played
    frames.append(generator.next_frame())
    assert generator.finished
    whole = np.concatenate(frames)
    assert np.count_nonzero(whole[1:240]) == 239 and np.count_nonzero(whole[321:560]) == 239
    assert not np.any(whole[240:320]) and not np.any(whole[560:])
    assert not np.any(generator.next_frame())


def test_repeat_starts_after_the_once_elements() -> None:
    """Playback returns to the first element without '!', as Asterisk does."""
    generator = Tone.parse("!1000/20,500/20,0/20").generator()
    frames = [generator.next_frame() for _ in range(5)]
    assert [spectrum_peaks(f, count=1)[0] if np.any(f) else 0 for f in frames] == [
        1000.0, 500.0, 0, 500.0, 0]


def test_modulated_tone() -> None:
    """f1*f2 is f1 amplitude-modulated by f2: sidebands at f1 ± f2 and a peak
    no higher than the level's."""
    samples = Tone.parse("400*50").generator(level_dbm0=-10).samples(8000)
    assert spectrum_peaks(samples, count=3) == [350.0, 400.0, 450.0]
    assert np.max(np.abs(samples)) <= dbm0_to_peak(-10) + 1


def test_tone_plans() -> None:
    """The required countries are present with all five tones, at the values
    Asterisk's indications.conf gives."""
    for country in ("us", "uk", "se", "de", "fr", "nl"):
        plan = tone_plan(country.upper())
        for name in ("dial", "ringback", "busy", "congestion", "callwaiting"):
            assert isinstance(plan.tone(name), Tone)
            ToneGenerator(plan.tone(name))
    assert str(TONE_PLANS["se"].congestion) == "425/250,0/750"
    assert str(TONE_PLANS["uk"].ringback) == "400+450/400,0/200,400+450/400,0/2000"
    assert str(TONE_PLANS["us"].ringback) == "440+480/2000,0/4000"
    assert str(TONE_PLANS["de"].busy) == "425/480,0/480"
    assert str(TONE_PLANS["fr"].dial) == "440"
    assert str(TONE_PLANS["nl"].callwaiting) == "425/500,0/9500"
    assert tone_plan("uk").tone("ring") == tone_plan("uk").ringback
    with pytest.raises(ToneError, match="known"):
        tone_plan("xx")
    with pytest.raises(ToneError, match="no tone named"):
        tone_plan("se").tone("info")


def test_dtmf_frequencies_and_level() -> None:
    """Every digit carries its row and column frequency, each at -10 dBm0 by default."""
    assert DTMF_FREQUENCIES["1"] == (697, 1209) and DTMF_FREQUENCIES["D"] == (941, 1633)
    for digit in DTMF_DIGITS:
        samples = dtmf_tone(digit, 1000)
        assert len(samples) == 8000
        assert spectrum_peaks(samples) == [float(f) for f in DTMF_FREQUENCIES[digit]]
        power = np.abs(np.fft.rfft(samples.astype(np.float64))) * 2 / len(samples)
        assert abs(power.max() - dbm0_to_peak(-10)) < 2


def test_dtmf_twist_and_errors() -> None:
    """twist_db raises the high tone relative to the low; unknown digits fail."""
    samples = dtmf_tone("5", 1000, -20, twist_db=3.0).astype(np.float64)
    spectrum = np.abs(np.fft.rfft(samples))
    assert abs(20 * np.log10(spectrum[1336] / spectrum[770]) - 3.0) < 0.05
    assert np.array_equal(dtmf_tone("a"), dtmf_tone("A"))
    for bad in ("E", "", "12", " "):
        with pytest.raises(ToneError):
            dtmf_tone(bad)


def test_dtmf_sequence_layout() -> None:
    """dtmf_sequence lays digits out as tone then gap, each of the asked length."""
    samples = dtmf_sequence("12", 50, 30)
    assert len(samples) == 2 * (400 + 240)
    assert np.count_nonzero(samples[400:640]) == 0 and np.count_nonzero(samples[:400]) > 390
    assert len(dtmf_sequence("")) == 0
