"""G.711 tables checked exhaustively against a plain reference written from
the segment definitions of ITU-T G.711 (Tables 1 and 2), the codec objects,
and the static payload-type registry."""

from __future__ import annotations

import numpy as np
import pytest

from telavox.rtp.codecs import PCMA, PCMU, STATIC_PAYLOAD_TYPES, PayloadFormat, codec_by_name
from telavox.rtp.codecs.g711 import ALAW_DECODE, ALAW_ENCODE, ULAW_DECODE, ULAW_ENCODE

# G.711 quantisation, written as the tables describe it: per segment, the
# first decision value and the step between decision values, on the
# magnitude scale of the law (µ-law: 14-bit, 0..8159; A-law: 13-bit as a
# 12-bit magnitude, 0..4095).  µ-law's first interval of segment 0 is one
# unit wide; all others are one step wide.
ULAW_SEGMENTS = [(1, 2), (31, 4), (95, 8), (223, 16), (479, 32), (991, 64), (2015, 128),
                 (4063, 256)]
ALAW_SEGMENTS = [(0, 2), (32, 2), (64, 4), (128, 8), (256, 16), (512, 32), (1024, 64),
                 (2048, 128)]


def magnitude(sample: int, shift: int) -> tuple[bool, int]:
    """Sign and magnitude of a 16-bit sample on a law's scale.  Negative
    samples are taken by their one's complement (ITU-T G.191), which keeps
    the quantiser symmetric: ``x`` and ``-x - 1`` share a magnitude."""
    if sample >= 0:
        return True, sample >> shift
    return False, (-sample - 1) >> shift


def ulaw_reference_encode(sample: int) -> int:
    """µ-law code of a 16-bit sample: find the interval, invert the bits."""
    positive, m = magnitude(sample, 2)
    if m < 1:
        segment, step = 0, 0
    else:
        segment = max(s for s, (first, _) in enumerate(ULAW_SEGMENTS) if m >= first)
        first, width = ULAW_SEGMENTS[segment]
        step = min(15, (m - first) // width + (1 if segment == 0 else 0))
    code = segment << 4 | step
    return (0x80 if positive else 0) | (0x7F ^ code)


def ulaw_reference_decode(code: int) -> int:
    """The 16-bit value of a µ-law code: the centre of its interval, times 4."""
    u = code ^ 0xFF
    segment, step = u >> 4 & 7, u & 15
    if segment == 0:
        centre = 2 * step  # intervals [0,1), [1,3), [3,5), ...: centres 0, 2, 4, ...
    else:
        first, width = ULAW_SEGMENTS[segment]
        centre = first + width * step + width // 2
    value = centre * 4
    return -value if u & 0x80 else value


def alaw_reference_encode(sample: int) -> int:
    """A-law code of a 16-bit sample: find the interval, invert the even bits."""
    positive, m = magnitude(sample, 3)
    segment = max(s for s, (first, _) in enumerate(ALAW_SEGMENTS) if m >= first)
    first, width = ALAW_SEGMENTS[segment]
    code = segment << 4 | (m - first) // width
    return ((0x80 if positive else 0) | code) ^ 0x55


def alaw_reference_decode(code: int) -> int:
    """The 16-bit value of an A-law code: the centre of its interval, times 8."""
    a = code ^ 0x55
    first, width = ALAW_SEGMENTS[a >> 4 & 7]
    value = (first + width * (a & 15) + width // 2) * 8
    return value if a & 0x80 else -value


ALL_SAMPLES = range(-32768, 32768)


def test_ulaw_encode_table_matches_the_reference_for_all_65536_samples() -> None:
    """Every int16 sample, looked up by its uint16 view, gets the reference µ-law code."""
    expected = [ulaw_reference_encode(x) for x in ALL_SAMPLES]
    got = ULAW_ENCODE[np.arange(-32768, 32768, dtype=np.int16).view(np.uint16)]
    assert got.tolist() == expected


def test_alaw_encode_table_matches_the_reference_for_all_65536_samples() -> None:
    """Every int16 sample, looked up by its uint16 view, gets the reference A-law code."""
    expected = [alaw_reference_encode(x) for x in ALL_SAMPLES]
    got = ALAW_ENCODE[np.arange(-32768, 32768, dtype=np.int16).view(np.uint16)]
    assert got.tolist() == expected


def test_decode_tables_match_the_reference_for_all_256_codes() -> None:
    """Each code decodes to the centre of its G.711 interval."""
    assert ULAW_DECODE.tolist() == [ulaw_reference_decode(c) for c in range(256)]
    assert ALAW_DECODE.tolist() == [alaw_reference_decode(c) for c in range(256)]
    assert ULAW_DECODE.dtype == np.int16 and ALAW_DECODE.dtype == np.int16


def test_well_known_values() -> None:
    """Silence and full scale: µ-law 0 → 0xFF, A-law 0 → 0xD5, extremes ±32124 / ±32256."""
    assert ULAW_ENCODE[0] == 0xFF and ULAW_ENCODE[0xFFFF] == 0x7F  # 0 and -1
    assert ULAW_ENCODE[0x7FFF] == 0x80 and ULAW_ENCODE[0x8000] == 0x00
    assert ALAW_ENCODE[0] == 0xD5 and ALAW_ENCODE[0xFFFF] == 0x55
    assert ALAW_ENCODE[0x7FFF] == 0xAA and ALAW_ENCODE[0x8000] == 0x2A
    assert (ULAW_DECODE[0x80], ULAW_DECODE[0x00], ULAW_DECODE[0xFF]) == (32124, -32124, 0)
    assert (ALAW_DECODE[0xAA], ALAW_DECODE[0x2A], ALAW_DECODE[0xD5]) == (32256, -32256, 8)


def test_decoding_then_encoding_gives_the_code_back() -> None:
    """Each decoded value lies in its own interval; only µ-law's negative
    zero (0x7F) comes back as positive zero (0xFF)."""
    codes = np.arange(256, dtype=np.uint8)
    ulaw = ULAW_ENCODE[ULAW_DECODE.view(np.uint16)]
    assert np.flatnonzero(ulaw != codes).tolist() == [0x7F]
    assert ulaw[0x7F] == 0xFF
    assert (ALAW_ENCODE[ALAW_DECODE.view(np.uint16)] == codes).all()


def test_tables_are_read_only() -> None:
    """The shared tables cannot be changed by a caller by mistake."""
    with pytest.raises(ValueError):
        ULAW_DECODE[0] = 1


def test_codec_round_trip_of_a_20_ms_frame() -> None:
    """encode() gives one byte per sample; decode() gives int16 samples
    within the law's quantisation error of the input."""
    t = np.arange(160)
    samples = (8000 * np.sin(2 * np.pi * 440 * t / 8000)).astype(np.int16)
    for codec, error in ((PCMU, 0.04), (PCMA, 0.04)):
        encoded = codec.encode(samples)
        assert isinstance(encoded, bytes) and len(encoded) == 160
        decoded = codec.decode(encoded)
        assert decoded.dtype == np.int16 and decoded.shape == (160,)
        assert np.all(np.abs(decoded.astype(int) - samples) <= np.abs(samples) * error + 16)
        assert codec.encode(decoded) == encoded


def test_codec_refuses_samples_that_are_not_int16() -> None:
    """Wider samples are not silently wrapped: the caller converts them."""
    with pytest.raises(TypeError):
        PCMU.encode(np.zeros(160, dtype=np.int32))


def test_codec_properties_and_frame_sizes() -> None:
    """Names, static payload types, 8000 Hz, 160 samples per 20 ms."""
    assert (PCMU.name, PCMU.payload_type, PCMU.clock_rate) == ("PCMU", 0, 8000)
    assert (PCMA.name, PCMA.payload_type, PCMA.clock_rate) == ("PCMA", 8, 8000)
    assert PCMU.samples_per_frame(20) == 160 and PCMA.samples_per_frame(30) == 240


def test_codec_by_name() -> None:
    """Lookup is case-insensitive; names without an implementation raise LookupError."""
    assert codec_by_name("PCMU") is PCMU and codec_by_name("pcma") is PCMA
    for name in ("G722", "G729", "opus"):
        with pytest.raises(LookupError):
            codec_by_name(name)


def test_static_payload_types() -> None:
    """RFC 3551 numbers and clock rates, including G.722's 8000 Hz RTP clock."""
    assert STATIC_PAYLOAD_TYPES[0] == PayloadFormat(0, "PCMU", 8000)
    assert STATIC_PAYLOAD_TYPES[8] == PayloadFormat(8, "PCMA", 8000)
    assert STATIC_PAYLOAD_TYPES[9] == PayloadFormat(9, "G722", 8000)
    assert STATIC_PAYLOAD_TYPES[13].name == "CN"
    assert STATIC_PAYLOAD_TYPES[18].name == "G729"
    assert sorted(STATIC_PAYLOAD_TYPES) == [0, 8, 9, 13, 18]
