"""WAV files: every supported encoding decodes to the expected int16 mono
samples, anything else is an AudioFormatError that names the problem, and
the writers produce files that read back unchanged."""

from __future__ import annotations

import io
import pathlib
import struct

import numpy as np
import pytest

from telavox.audio.wavfile import (
    AudioFormatError,
    WavWriter,
    _alaw_table,
    _ulaw_table,
    decode_wav,
    encode_wav,
    encode_wav_stereo,
    load_wav,
    read_wav,
    write_wav,
)

from .signals import sine, wav_bytes

RAMP = np.array([0, 1, -1, 32767, -32768, 1234, -4321, 256], dtype=np.int16)


def test_mono_16_bit_round_trip() -> None:
    """encode_wav then decode_wav gives back the samples and rate exactly."""
    samples, rate = decode_wav(encode_wav(RAMP, 16000))
    assert rate == 16000
    assert samples.dtype == np.int16
    np.testing.assert_array_equal(samples, RAMP)


def test_canonical_header() -> None:
    """The writer's header is the 44-byte canonical PCM header with exact sizes."""
    data = encode_wav(RAMP)
    assert len(data) == 44 + 2 * len(RAMP)
    assert data[:4] == b"RIFF" and data[8:16] == b"WAVEfmt "
    assert struct.unpack_from("<I", data, 4)[0] == len(data) - 8
    assert struct.unpack_from("<HHIIHH", data, 20) == (1, 1, 8000, 16000, 2, 16)
    assert data[36:40] == b"data" and struct.unpack_from("<I", data, 40)[0] == 2 * len(RAMP)


def test_pcm_8_bit_is_unsigned() -> None:
    """8-bit PCM is unsigned around 128 and scales by 256."""
    samples, _ = decode_wav(wav_bytes(bytes([128, 0, 255, 129]), bits=8))
    np.testing.assert_array_equal(samples, [0, -32768, 32512, 256])


def test_pcm_24_bit_rounds_to_16() -> None:
    """24-bit PCM keeps its top 16 bits, rounding the low byte (ties to even)."""
    values = [0x7FFFFF, -0x800000, 0x000180, -0x000180, 0x1234C0, 0x123440]
    body = b"".join(v.to_bytes(3, "little", signed=True) for v in values)
    samples, _ = decode_wav(wav_bytes(body, bits=24))
    np.testing.assert_array_equal(samples, [32767, -32768, 2, -2, 0x1235, 0x1234])


def test_pcm_32_bit() -> None:
    """32-bit PCM is scaled by 2^-16 and rounded."""
    body = np.array([2**31 - 1, -(2**31), 65536 * 5 + 40000], dtype="<i4").tobytes()
    samples, _ = decode_wav(wav_bytes(body, bits=32))
    np.testing.assert_array_equal(samples, [32767, -32768, 6])


@pytest.mark.parametrize("dtype, bits", [("<f4", 32), ("<f8", 64)])
def test_float_clips_and_cleans(dtype: str, bits: int) -> None:
    """IEEE float maps ±1.0 to full scale, clips beyond, and turns NaN into 0
    and ±inf into full scale."""
    body = np.array([0.5, -0.5, 1.0, -1.0, 3.0, np.nan, np.inf, -np.inf],
                    dtype=dtype).tobytes()
    samples, _ = decode_wav(wav_bytes(body, tag=3, bits=bits))
    np.testing.assert_array_equal(samples, [16384, -16384, 32767, -32768, 32767, 0,
                                            32767, -32768])


def test_ulaw_table_known_codes() -> None:
    """µ-law (G.711) decodes the end and near-zero codes to the standard values,
    and the table is odd-symmetric and monotonic in each half."""
    assert [_ulaw_table[c] for c in (0xFF, 0x7F, 0xFE, 0x7E, 0x80, 0x00)] == [
        0, 0, 8, -8, 32124, -32124]
    np.testing.assert_array_equal(_ulaw_table[:128], -_ulaw_table[128:])
    assert np.all(np.diff(_ulaw_table[128:].astype(int)) < 0)


def test_alaw_table_known_codes() -> None:
    """A-law (G.711) decodes 0xD5/0x55 to ±8 and 0xAA/0x2A to ±32256, and every
    magnitude appears once with each sign."""
    assert [_alaw_table[c] for c in (0xD5, 0x55, 0xAA, 0x2A)] == [8, -8, 32256, -32256]
    positive = np.sort(_alaw_table[_alaw_table > 0])
    np.testing.assert_array_equal(positive, np.sort(-_alaw_table[_alaw_table < 0]))
    assert len(np.unique(positive)) == 128


@pytest.mark.parametrize("tag, table", [(7, _ulaw_table), (6, _alaw_table)])
def test_g711_wav(tag: int, table: np.ndarray) -> None:
    """µ-law (tag 7) and A-law (tag 6) WAV files decode through the tables."""
    codes = bytes(range(256))
    samples, rate = decode_wav(wav_bytes(codes, tag=tag, bits=8))
    assert rate == 8000
    np.testing.assert_array_equal(samples, table)


def test_extensible_pcm_and_float() -> None:
    """WAVE_FORMAT_EXTENSIBLE wrapping PCM or float decodes like the plain tag."""
    pcm = decode_wav(wav_bytes(RAMP.tobytes(), extensible_tag=1))[0]
    np.testing.assert_array_equal(pcm, RAMP)
    body = np.array([0.25, -0.25], dtype="<f4").tobytes()
    floats = decode_wav(wav_bytes(body, bits=32, extensible_tag=3))[0]
    np.testing.assert_array_equal(floats, [8192, -8192])


def test_stereo_is_averaged() -> None:
    """Channels are averaged to mono (rounded, ties to even)."""
    pairs = np.array([[1000, 3000], [-32768, -32768], [32767, 32767], [1, 2]], dtype="<i2")
    samples, _ = decode_wav(wav_bytes(pairs.tobytes(), channels=2))
    np.testing.assert_array_equal(samples, [2000, -32768, 32767, 2])


def test_chunks_skipped_and_padding() -> None:
    """Unknown chunks (with the pad byte of an odd size) before the data are skipped."""
    extra = b"LIST" + struct.pack("<I", 3) + b"abc\x00" + b"fact" + struct.pack("<I", 4) + b"\0" * 4
    samples, _ = decode_wav(wav_bytes(RAMP.tobytes(), extra_chunks=extra))
    np.testing.assert_array_equal(samples, RAMP)


def test_partial_last_frame_dropped() -> None:
    """A data chunk ending inside a sample frame gives the whole frames only."""
    samples, _ = decode_wav(wav_bytes(RAMP.tobytes() + b"\x01"))
    np.testing.assert_array_equal(samples, RAMP)


@pytest.mark.parametrize("data, words", [
    (b"", "too short"),
    (b"RIFX" + b"\0" * 40, "RIFX"),
    (b"RIFF\0\0\0\0AVI " + b"\0" * 40, "not a WAV"),
    (wav_bytes(b"\0" * 8)[:30], "truncated"),
    (wav_bytes(b"\0" * 8, data_size=100), "truncated: data chunk declares 100"),
    (b"RIFF\x04\0\0\0WAVE" + b"data" + struct.pack("<I", 2) + b"\0\0", "before any 'fmt '"),
    (wav_bytes(b"\0" * 8, tag=0x11, bits=4), "IMA ADPCM"),
    (wav_bytes(b"\0" * 8, tag=0x1234), "format tag 0x1234"),
    (wav_bytes(b"\0" * 8, channels=0), "zero channels"),
    (wav_bytes(b"\0" * 8, rate=300), "sample rate 300"),
    (wav_bytes(b"\0" * 8, block_align=3), "block align 3"),
    (wav_bytes(b"\0" * 8, bits=40), "40 bits"),
    (wav_bytes(b"\0" * 8, tag=3, bits=16), "float sample size of 16"),
    (wav_bytes(b"\0" * 8, tag=7, bits=16), "G.711 samples must be 8 bits"),
    (wav_bytes(b"\0" * 8)[:12] + b"fmt " + struct.pack("<I", 4) + b"\0" * 4
     + b"data" + struct.pack("<I", 0), "shorter than 16"),
])
def test_errors_name_the_problem(data: bytes, words: str) -> None:
    """Unsupported or damaged input raises AudioFormatError with a telling message."""
    with pytest.raises(AudioFormatError, match=words.replace("(", r"\(").replace(".", r"\.")):
        decode_wav(data)


def test_extensible_with_unknown_guid() -> None:
    """An extensible file whose sub-format GUID is not the KSDATAFORMAT family fails."""
    data = bytearray(wav_bytes(RAMP.tobytes(), extensible_tag=1))
    data[20 + 26] ^= 0xFF  # a byte of the GUID tail, inside the fmt body
    with pytest.raises(AudioFormatError, match="sub-format"):
        decode_wav(bytes(data))


def test_writer_streams_the_same_file() -> None:
    """WavWriter fed in chunks writes exactly what encode_wav writes for the whole."""
    samples = np.arange(-1000, 1000, 3, dtype=np.int16)
    out = io.BytesIO()
    with WavWriter(out, 8000) as writer:
        for start in range(0, len(samples), 97):
            writer.write(samples[start:start + 97])
        assert writer.frames_written == len(samples)
    assert writer.closed
    assert out.getvalue() == encode_wav(samples)


def test_unclosed_recording_still_reads() -> None:
    """Before close() the header carries the 0xFFFFFFFF placeholder, which the
    reader takes as "data to the end of the file"; a half-written sample is dropped."""
    out = io.BytesIO()
    writer = WavWriter(out)
    writer.write(RAMP)
    partial = out.getvalue() + b"\x07"
    assert struct.unpack_from("<I", partial, 40)[0] == 0xFFFFFFFF
    np.testing.assert_array_equal(decode_wav(partial)[0], RAMP)


def test_writer_at_an_offset() -> None:
    """A writer started mid-file fixes up its own header, not the file's start."""
    out = io.BytesIO()
    out.write(b"prefix")
    with WavWriter(out) as writer:
        writer.write(RAMP)
    assert out.getvalue() == b"prefix" + encode_wav(RAMP)


def test_stereo_writer_and_encoder() -> None:
    """Stereo files interleave left and right; the streaming writer and the
    one-shot encoder agree, and reading averages the two sides."""
    left = np.array([100, 200, 300, -400], dtype=np.int16)
    right = np.array([-100, 0, 301, -400], dtype=np.int16)
    whole = encode_wav_stereo(left, right)
    assert struct.unpack_from("<H", whole, 22)[0] == 2
    assert np.frombuffer(whole[44:], dtype="<i2").tolist() == [100, -100, 200, 0, 300, 301,
                                                              -400, -400]
    out = io.BytesIO()
    with WavWriter(out, channels=2) as writer:
        writer.write_stereo(left[:1], right[:1])
        writer.write_stereo(left[1:], right[1:])
    assert out.getvalue() == whole
    np.testing.assert_array_equal(decode_wav(whole)[0], [0, 100, 300, -400])


def test_writer_misuse() -> None:
    """The writer refuses a wrong channel call, unaligned sides, wrong dtype,
    writing after close, and an unseekable file."""
    out = io.BytesIO()
    writer = WavWriter(out)
    with pytest.raises(ValueError, match="write_stereo"):
        writer.write_stereo(RAMP, RAMP)
    with pytest.raises(TypeError, match="int16"):
        writer.write(RAMP.astype(np.int32))  # type: ignore[arg-type]
    writer.close()
    writer.close()
    with pytest.raises(ValueError, match="closed"):
        writer.write(RAMP)
    stereo = WavWriter(io.BytesIO(), channels=2)
    with pytest.raises(ValueError, match="differ in length"):
        stereo.write_stereo(RAMP, RAMP[:-1])

    class Pipe(io.RawIOBase):
        def writable(self) -> bool:
            return True

    with pytest.raises(ValueError, match="seekable"):
        WavWriter(Pipe())  # type: ignore[arg-type]


def test_paths(tmp_path: pathlib.Path) -> None:
    """write_wav and read_wav work on paths; load_wav resamples to 8 kHz."""
    path = tmp_path / "prompt.wav"
    tone = np.rint(sine(1000, 16000, 0.1, 8000)).astype(np.int16)
    write_wav(path, tone, 16000)
    samples, rate = read_wav(path)
    assert rate == 16000
    np.testing.assert_array_equal(samples, tone)
    narrow = load_wav(str(path))
    assert len(narrow) == 800
    assert abs(int(np.abs(narrow[100:-100]).max()) - 8000) < 80
