"""Property tests of telavox.audio: the WAV reader is total, writing then
reading is the identity, and every streaming component (WAV writer,
resampler, tone generator, DTMF detector) gives the same result however
its input or output is chunked; the mixers equal a saturated exact sum."""

from __future__ import annotations

import io
import itertools
import struct

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from telavox.audio.dtmfdetect import DtmfDetector
from telavox.audio.level import mix, mix_minus
from telavox.audio.pcm import to_int16
from telavox.audio.resample import Resampler, resample
from telavox.audio.tones import DTMF_DIGITS, Tone, ToneElement, dtmf_tone
from telavox.audio.wavfile import (
    AudioFormatError,
    WavWriter,
    decode_wav,
    encode_wav,
    encode_wav_stereo,
)

SAMPLES = hnp.arrays(np.int16, st.integers(0, 300))
FAST = settings(max_examples=60, deadline=None,
                suppress_health_check=[HealthCheck.too_slow])


def cuts(length: int) -> st.SearchStrategy[list[int]]:
    """Sorted cut points splitting ``range(length)`` into chunks (some empty)."""
    return st.lists(st.integers(0, length), max_size=12).map(sorted)


def split(array: np.ndarray, points: list[int]) -> list[np.ndarray]:
    """``array`` cut at ``points``."""
    bounds = [0, *points, len(array)]
    return [array[a:b] for a, b in itertools.pairwise(bounds)]


def _total_decode(data: bytes) -> None:
    try:
        samples, rate = decode_wav(data)
    except AudioFormatError:
        return
    assert samples.dtype == np.int16 and samples.ndim == 1
    assert 1000 <= rate <= 768000


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=120))
def test_any_bytes_decode_or_fail_cleanly(data: bytes) -> None:
    """Arbitrary bytes (also behind a valid RIFF/WAVE tag) give samples or
    AudioFormatError, never another exception."""
    _total_decode(data)
    _total_decode(b"RIFF\xff\xff\xff\xffWAVE" + data)


_FIELDS = {  # offset in the canonical header → struct format
    20: "<H", 22: "<H", 24: "<I", 32: "<H", 34: "<H", 16: "<I", 40: "<I", 4: "<I",
}


@settings(max_examples=300, deadline=None)
@given(SAMPLES, st.lists(st.tuples(st.sampled_from(sorted(_FIELDS)), st.integers(0, 2**32 - 1)),
                         max_size=3),
       st.lists(st.tuples(st.integers(0, 400), st.integers(0, 255)), max_size=3),
       st.integers(0, 800))
def test_damaged_wav_decodes_or_fails_cleanly(samples: np.ndarray,
                                               fields: list[tuple[int, int]],
                                               flips: list[tuple[int, int]],
                                               keep: int) -> None:
    """A valid file with header fields overwritten (format tag, channels,
    rate, block align, bits, chunk sizes), bytes changed and the end cut off
    still gives samples or AudioFormatError."""
    data = bytearray(encode_wav(samples))
    for offset, value in fields:
        fmt = _FIELDS[offset]
        struct.pack_into(fmt, data, offset, value % (1 << (8 * struct.calcsize(fmt))))
    for offset, value in flips:
        if offset < len(data):
            data[offset] = value
    _total_decode(bytes(data[:keep]))
    _total_decode(bytes(data))


@FAST
@given(SAMPLES, st.sampled_from([8000, 16000, 44100, 48000]))
def test_write_then_read_is_identity(samples: np.ndarray, rate: int) -> None:
    """Mono files read back as written, at their rate; stereo files read back
    as the rounded mean of the two sides."""
    assert decode_wav(encode_wav(samples, rate))[0].tolist() == samples.tolist()
    assert decode_wav(encode_wav(samples, rate))[1] == rate
    other = samples[::-1].copy()
    mean = to_int16((samples.astype(np.float64) + other) / 2)
    np.testing.assert_array_equal(decode_wav(encode_wav_stereo(samples, other))[0], mean)


@FAST
@given(st.data())
def test_writer_any_chunking(data: st.DataObject) -> None:
    """WavWriter fed any chunking of the samples writes encode_wav's bytes."""
    samples = data.draw(SAMPLES)
    out = io.BytesIO()
    with WavWriter(out) as writer:
        for chunk in split(samples, data.draw(cuts(len(samples)))):
            writer.write(chunk)
    assert out.getvalue() == encode_wav(samples)


@FAST
@given(st.data(), st.sampled_from([(48000, 8000), (44100, 8000), (8000, 16000),
                                   (16000, 8000), (11025, 16000), (22050, 8000)]))
def test_resampler_any_chunking(data: st.DataObject, rates: tuple[int, int]) -> None:
    """Resampler fed any chunking gives exactly resample() of the whole."""
    samples = data.draw(hnp.arrays(np.int16, st.integers(0, 1500)))
    converter = Resampler(*rates)
    pieces = [converter.process(chunk)
              for chunk in split(samples, data.draw(cuts(len(samples))))]
    pieces.append(converter.flush())
    np.testing.assert_array_equal(np.concatenate(pieces), resample(samples, *rates))


_ELEMENTS = st.builds(
    ToneElement,
    freq1=st.integers(0, 3999), freq2=st.integers(0, 3999), modulate=st.booleans(),
    duration_ms=st.integers(0, 60), once=st.booleans(),
)
_TONES = st.lists(_ELEMENTS, min_size=1, max_size=4).map(lambda e: Tone(tuple(e)))


@FAST
@given(_TONES)
def test_tone_text_round_trip(tone: Tone) -> None:
    """A tone prints as a tone list that parses back to an equal tone
    (modulation by 0 Hz prints as "*0" and stays modulation)."""
    assert Tone.parse(str(tone)) == tone


@FAST
@given(_TONES, st.lists(st.integers(0, 400), min_size=1, max_size=8))
def test_tone_any_request_sizes(tone: Tone, sizes: list[int]) -> None:
    """The samples a generator gives do not depend on how they are requested."""
    pieced = tone.generator()
    parts = [pieced.samples(n) for n in sizes]
    whole = tone.generator().samples(sum(sizes))
    np.testing.assert_array_equal(np.concatenate(parts), whole)


@st.composite
def dialled(draw: st.DrawFn) -> np.ndarray:
    """Digits of random length and spacing, over faint noise."""
    parts = [np.zeros(draw(st.integers(0, 300)), np.int16)]
    for digit in draw(st.lists(st.sampled_from(DTMF_DIGITS), max_size=4)):
        parts.append(dtmf_tone(digit, draw(st.integers(10, 90)), draw(st.floats(-30, -5))))
        parts.append(np.zeros(draw(st.integers(0, 500)), np.int16))
    clean = np.concatenate(parts).astype(np.float64)
    seed = draw(st.integers(0, 2**16))
    return to_int16(clean + np.random.default_rng(seed).normal(0, 30, len(clean)))


@FAST
@given(st.data())
def test_dtmf_any_chunking(data: st.DataObject) -> None:
    """The detector finds the same digits at the same offsets however the
    stream is cut into chunks."""
    signal = data.draw(dialled())
    whole = DtmfDetector()
    expected = whole.feed(signal) + whole.finish()
    chunked = DtmfDetector()
    events = []
    for chunk in split(signal, data.draw(cuts(len(signal)))):
        events += chunked.feed(chunk)
    assert events + chunked.finish() == expected


@FAST
@given(st.integers(1, 5).flatmap(
    lambda n: st.lists(hnp.arrays(np.int16, 16), min_size=n, max_size=n)))
def test_mixers_are_saturated_sums(frames: list[np.ndarray]) -> None:
    """mix is the exact sum clipped to int16; mix_minus gives each the mix of
    the others."""
    exact = np.sum([f.astype(np.int64) for f in frames], axis=0)
    np.testing.assert_array_equal(mix(frames), np.clip(exact, -32768, 32767))
    for i, heard in enumerate(mix_minus(frames)):
        others = [f for j, f in enumerate(frames) if j != i]
        expected = mix(others) if others else np.zeros(16, np.int16)
        np.testing.assert_array_equal(heard, expected)
