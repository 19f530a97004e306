"""The in-band DTMF detector: it hears every digit across the level range in
noise, decodes dialled sequences exactly, keeps to the Q.24 timing and twist
limits, and stays silent on speech, noise and silence."""

from __future__ import annotations

import numpy as np
import pytest

from telavox.audio.dtmfdetect import (
    ANALYSED_FREQUENCIES,
    DigitEvent,
    DtmfDetector,
    goertzel_power,
)
from telavox.audio.pcm import dbm0_to_peak, to_int16
from telavox.audio.tones import DTMF_DIGITS, DTMF_FREQUENCIES, dtmf_sequence, dtmf_tone

from .signals import speech_like, with_noise


def detect(samples: np.ndarray, chunk: int = 160) -> list[DigitEvent]:
    """All events of a fresh detector fed ``samples`` in frames, then finished."""
    detector = DtmfDetector()
    events: list[DigitEvent] = []
    for start in range(0, len(samples), chunk):
        events += detector.feed(samples[start:start + chunk])
    return events + detector.finish()


def digits(samples: np.ndarray) -> str:
    """The digits detected in ``samples``, as a string."""
    return "".join(event.digit for event in detect(samples))


@pytest.mark.parametrize("level", [-10, -15, -20, -25, -30])
def test_every_digit_in_noise(level: int) -> None:
    """Each of the 16 digits, 60 ms at `level` dBm0 per tone with white noise
    20 dB below the signal, is detected once and as itself."""
    for i, digit in enumerate(DTMF_DIGITS):
        signal = with_noise(dtmf_tone(digit, 60, level), 20.0, 400 + 7 * i, seed=i - level)
        assert digits(signal) == digit, (digit, level)


def test_sequence_50ms_tones_50ms_gaps() -> None:
    """"1234567890*#ABCD" dialled with 50 ms tones and 50 ms pauses decodes
    exactly, each event starting within one block of its tone."""
    sequence = "1234567890*#ABCD"
    events = detect(dtmf_sequence(sequence, 50, 50))
    assert "".join(e.digit for e in events) == sequence
    for i, event in enumerate(events):
        assert abs(event.start - 800 * i) < 102
        assert 300 <= event.duration <= 510


def test_repeated_digit_needs_a_40ms_pause() -> None:
    """The same key pressed twice with a 40 ms pause gives two digits, at any
    alignment of the tones against the analysis blocks."""
    for offset in range(0, 102, 17):
        signal = np.concatenate([np.zeros(offset, np.int16),
                                 dtmf_sequence("55", 40, 40)])
        assert digits(signal) == "55", offset


def test_minimum_duration() -> None:
    """A 40 ms tone is accepted and a 10 ms tone never is, at any alignment."""
    for offset in range(0, 102, 3):
        lead = np.zeros(offset, np.int16)
        assert digits(np.concatenate([lead, dtmf_tone("9", 40), np.zeros(400, np.int16)])) == "9"
        assert digits(np.concatenate([lead, dtmf_tone("9", 10), np.zeros(400, np.int16)])) == ""


def test_twist_limits() -> None:
    """Normal twist up to 8 dB (high tone weaker) and reverse twist up to 4 dB
    are accepted for every digit; 12 dB and 8 dB respectively are rejected."""
    for digit in DTMF_DIGITS:
        for twist, expected in ((-8.0, digit), (4.0, digit), (-12.0, ""), (8.0, "")):
            signal = with_noise(dtmf_tone(digit, 60, -10, twist_db=twist), 30.0, 300, seed=1)
            assert digits(signal) == expected, (digit, twist)


def test_frequency_tolerance() -> None:
    """Both tones 1.5 % off frequency are still accepted (Q.24); 3.5 % off are not."""
    n = np.arange(480)
    peak = dbm0_to_peak(-15)
    for digit, (low, high) in DTMF_FREQUENCIES.items():
        for factor, expected in ((1.015, digit), (0.985, digit), (1.035, ""), (0.965, "")):
            signal = to_int16(peak * (np.sin(2 * np.pi * low * factor * n / 8000)
                                      + np.sin(2 * np.pi * high * factor * n / 8000)))
            assert digits(np.concatenate([signal, np.zeros(300, np.int16)])) == expected


def test_level_threshold() -> None:
    """Tones at -40 dBm0 are below the signal threshold and ignored."""
    assert digits(dtmf_sequence("159#", 80, 80, level_dbm0=-40)) == ""


def test_no_digits_in_speech_noise_or_silence() -> None:
    """Ten seconds of speech-like voice, ten of loud white noise and ten of
    silence give no digit."""
    assert detect(speech_like(10.0, seed=0), chunk=800) == []
    noise = to_int16(np.random.default_rng(5).normal(0, 3000, 80000))
    assert detect(noise, chunk=800) == []
    assert detect(np.zeros(80000, np.int16), chunk=800) == []


def test_speech_between_digits() -> None:
    """Digits dialled over a speech-like background (digits 10 dB louder) are
    all found and nothing else is."""
    voice = speech_like(1.6, seed=3).astype(np.float64) * 10 ** (-10 / 20)
    keys = dtmf_sequence("2468", 80, 320, level_dbm0=-8).astype(np.float64)
    assert digits(to_int16(voice + keys)) == "2468"


def test_current_digit_and_events() -> None:
    """While a key is held, `current` names it and its start; the event comes
    when it ends, with the start and duration in samples."""
    detector = DtmfDetector()
    assert detector.feed(np.zeros(1020, np.int16)) == []
    assert detector.feed(dtmf_tone("#", 100)) == []
    assert detector.current == ("#", 1020)
    events = detector.feed(np.zeros(800, np.int16))
    assert events == [DigitEvent("#", 1020, 816)]
    assert detector.current is None
    assert detector.finish() == []


def test_finish_ends_a_held_key() -> None:
    """finish() reports a digit still sounding at the end of the stream."""
    detector = DtmfDetector()
    assert detector.feed(dtmf_tone("7", 200)) == []
    assert [e.digit for e in detector.finish()] == ["7"]


def test_goertzel_equals_the_direct_sum() -> None:
    """The detector's block powers are the Goertzel recurrence's, to rounding."""
    detector = DtmfDetector()
    blocks = np.random.default_rng(9).integers(-20000, 20000, (3, 102)).astype(np.float64)
    reference = goertzel_power(blocks, ANALYSED_FREQUENCIES)
    np.testing.assert_allclose(detector._powers(blocks), reference, rtol=1e-9, atol=1e-3)


def test_wideband_rate() -> None:
    """At 16 kHz the block doubles and digits are still found."""
    detector = DtmfDetector(16000)
    assert detector.block == 204
    signal = dtmf_sequence("0A", 60, 60, sample_rate=16000)
    assert [e.digit for e in detector.feed(signal) + detector.finish()] == ["0", "A"]


def test_bad_arguments() -> None:
    """Rates below 8 kHz and zero hit counts are refused; input must be int16."""
    with pytest.raises(ValueError):
        DtmfDetector(4000)
    with pytest.raises(ValueError):
        DtmfDetector(hits_to_start=0)
    with pytest.raises(TypeError):
        DtmfDetector().feed(np.zeros(10))  # type: ignore[arg-type]
