"""WAV files in and out: the RIFF/WAVE container and the sample encodings a
user's prompt file may carry, and the writers the recorder uses.

Reading is total: any bytes give ``(samples, sample_rate)`` — mono int16,
at the file's own rate — or raise :class:`AudioFormatError` naming what is
wrong; no other exception escapes for any input.  Supported: integer PCM of
8, 16, 24 and 32 bits (and narrower valid bits in those containers), IEEE
float of 32 and 64 bits, G.711 A-law (format tag 6) and µ-law (tag 7), any
of these inside WAVE_FORMAT_EXTENSIBLE, any number of channels (averaged to
mono).  A data chunk whose size is the streaming placeholder 0xFFFFFFFF
runs to the end of the file, so a recording whose writer never closed can
still be read.

Writing produces 16-bit PCM, mono or stereo: :func:`encode_wav` and
:func:`write_wav` for a whole array, :class:`WavWriter` for a recording
taken a chunk at a time (the header's sizes are fixed up on ``close()``).
"""

from __future__ import annotations

import os
import struct
from typing import BinaryIO, Final

import numpy as np
import numpy.typing as npt

from telavox.audio.pcm import MAX_RATE, MIN_RATE, SAMPLE_RATE, Samples, as_samples, to_int16
from telavox.audio.resample import resample
from telavox.rtp.codecs.g711 import ALAW_DECODE, ULAW_DECODE

__all__ = [
    "AudioFormatError",
    "WavWriter",
    "decode_wav",
    "encode_wav",
    "encode_wav_stereo",
    "load_wav",
    "read_wav",
    "write_wav",
]

_PCM: Final = 0x0001
_IEEE_FLOAT: Final = 0x0003
_ALAW: Final = 0x0006
_MULAW: Final = 0x0007
_EXTENSIBLE: Final = 0xFFFE

# the 14 bytes that follow the format tag in a KSDATAFORMAT_SUBTYPE_* GUID
_GUID_TAIL: Final = b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"

_TAG_NAMES: Final = {
    0x0002: "Microsoft ADPCM",
    0x0011: "IMA ADPCM",
    0x0031: "GSM 6.10",
    0x0040: "G.721 ADPCM",
    0x0050: "MPEG",
    0x0055: "MPEG layer 3",
    0x0064: "G.726 ADPCM",
    0x0065: "G.722 ADPCM",
    0x00FF: "AAC",
    0x1610: "HE-AAC",
    0xF1AC: "FLAC",
}

_PLACEHOLDER: Final = 0xFFFFFFFF
_MAX_DATA: Final = 0xFFFFFFFF - 36


class AudioFormatError(ValueError):
    """Bytes that are not a WAV file this module can decode; the message names
    the problem (not RIFF/WAVE, truncated, unsupported encoding, …)."""


# WAV files with format tags 7 and 6 hold G.711 code words: the same
# tables as the RTP codecs.
_ulaw_table: Final = ULAW_DECODE
_alaw_table: Final = ALAW_DECODE


# -- reading --------------------------------------------------------------


def read_wav(source: bytes | bytearray | memoryview | str | os.PathLike[str]
             ) -> tuple[Samples, int]:
    """Decode a WAV file given as bytes or as a path into ``(samples,
    sample_rate)``: mono int16 at the file's own rate.

    Raises :class:`AudioFormatError` for anything that is not a decodable WAV
    file; a path that cannot be opened raises the usual :class:`OSError`.
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        return decode_wav(bytes(source))
    with open(source, "rb") as f:
        return decode_wav(f.read())


def load_wav(source: bytes | bytearray | memoryview | str | os.PathLike[str],
             rate: int = SAMPLE_RATE) -> Samples:
    """Decode a WAV file (as :func:`read_wav`) and resample it to ``rate``:
    what playing a user's prompt into a call needs."""
    samples, file_rate = read_wav(source)
    return resample(samples, file_rate, rate)


def decode_wav(data: bytes) -> tuple[Samples, int]:
    """Decode the bytes of a WAV file into ``(samples, sample_rate)``.

    Total: returns or raises :class:`AudioFormatError`, for any ``data``.
    """
    if len(data) < 12:
        raise AudioFormatError(f"truncated: {len(data)} bytes is too short for a WAV header")
    magic, _, wave = struct.unpack_from("<4sI4s", data, 0)
    if magic in (b"RIFX", b"RF64", b"BW64"):
        raise AudioFormatError(f"unsupported container {magic.decode('ascii')!r} "
                               "(only little-endian RIFF is read)")
    if magic != b"RIFF" or wave != b"WAVE":
        raise AudioFormatError("not a WAV file: no RIFF/WAVE header")
    fmt, payload = _find_chunks(data)
    return _decode(fmt, payload)


def _find_chunks(data: bytes) -> tuple[bytes, bytes]:
    """The body of the first ``fmt `` chunk and of the first ``data`` chunk."""
    fmt: bytes | None = None
    pos = 12
    end = len(data)
    while True:
        if end - pos < 8:
            missing = "fmt " if fmt is None else "data"
            raise AudioFormatError(f"truncated or incomplete: no {missing!r} chunk")
        chunk_id, size = struct.unpack_from("<4sI", data, pos)
        body = pos + 8
        if chunk_id == b"data":
            if size == _PLACEHOLDER:
                size = end - body
            elif size > end - body:
                raise AudioFormatError(f"truncated: data chunk declares {size} bytes, "
                                       f"{end - body} present")
            if fmt is None:
                raise AudioFormatError("data chunk before any 'fmt ' chunk")
            return fmt, data[body:body + size]
        if size > end - body:
            name = chunk_id.decode("latin-1")
            raise AudioFormatError(f"truncated: {name!r} chunk declares {size} bytes, "
                                   f"{end - body} present")
        if chunk_id == b"fmt " and fmt is None:
            fmt = data[body:body + size]
        pos = body + size + (size & 1)


def _decode(fmt: bytes, payload: bytes) -> tuple[Samples, int]:
    """Decode ``payload`` as the samples the ``fmt `` chunk body describes."""
    if len(fmt) < 16:
        raise AudioFormatError(f"'fmt ' chunk of {len(fmt)} bytes is shorter than 16")
    tag, channels, rate, _, block_align, bits = struct.unpack_from("<HHIIHH", fmt, 0)
    if tag == _EXTENSIBLE:
        tag = _extensible_subformat(fmt)
    if channels == 0:
        raise AudioFormatError("zero channels")
    if not MIN_RATE <= rate <= MAX_RATE:
        raise AudioFormatError(f"sample rate {rate} Hz is outside {MIN_RATE}..{MAX_RATE}")
    width = _sample_width(tag, bits)
    if block_align != width * channels:
        raise AudioFormatError(f"block align {block_align} does not match {channels} "
                               f"channel(s) of {width} byte(s)")
    frames = len(payload) // block_align  # a partial last frame is dropped
    raw = payload[:frames * block_align]
    values = _to_float(tag, width, raw)
    mono = values.reshape(frames, channels).mean(axis=1) if channels > 1 else values
    return to_int16(mono), rate


def _extensible_subformat(fmt: bytes) -> int:
    """The format tag inside a WAVE_FORMAT_EXTENSIBLE ``fmt `` body."""
    if len(fmt) < 40:
        raise AudioFormatError(f"WAVE_FORMAT_EXTENSIBLE 'fmt ' chunk of {len(fmt)} bytes "
                               "is shorter than 40")
    (cb_size,) = struct.unpack_from("<H", fmt, 16)
    if cb_size < 22:
        raise AudioFormatError(f"WAVE_FORMAT_EXTENSIBLE extension of {cb_size} bytes "
                               "is shorter than 22")
    (sub_tag,) = struct.unpack_from("<H", fmt, 24)
    if fmt[26:40] != _GUID_TAIL:
        raise AudioFormatError(f"unsupported WAVE_FORMAT_EXTENSIBLE sub-format "
                               f"{fmt[24:40].hex()}")
    return int(sub_tag)


def _sample_width(tag: int, bits: int) -> int:
    """Bytes per sample of one channel for ``tag`` at ``bits``, or raise."""
    if tag == _PCM:
        if not 1 <= bits <= 32:
            raise AudioFormatError(f"unsupported PCM sample size of {bits} bits")
        return (bits + 7) // 8
    if tag == _IEEE_FLOAT:
        if bits not in (32, 64):
            raise AudioFormatError(f"unsupported float sample size of {bits} bits")
        return bits // 8
    if tag in (_ALAW, _MULAW):
        if bits != 8:
            raise AudioFormatError(f"G.711 samples must be 8 bits, not {bits}")
        return 1
    name = _TAG_NAMES.get(tag)
    described = f"format tag 0x{tag:04X}" + (f" ({name})" if name else "")
    raise AudioFormatError(f"unsupported WAV encoding: {described}")


def _to_float(tag: int, width: int, raw: bytes) -> npt.NDArray[np.float64]:
    """The samples in ``raw`` as float64 in 16-bit units (±32768 full scale)."""
    if tag == _MULAW:
        return _ulaw_table[np.frombuffer(raw, dtype=np.uint8)].astype(np.float64)
    if tag == _ALAW:
        return _alaw_table[np.frombuffer(raw, dtype=np.uint8)].astype(np.float64)
    if tag == _IEEE_FLOAT:
        floats = np.frombuffer(raw, dtype="<f4" if width == 4 else "<f8").astype(np.float64)
        floats = np.nan_to_num(floats, nan=0.0, posinf=1.0, neginf=-1.0)
        return np.clip(floats, -1.0, 1.0) * 32768.0
    if width == 1:  # 8-bit WAV is unsigned, centred on 128
        return (np.frombuffer(raw, dtype=np.uint8).astype(np.float64) - 128.0) * 256.0
    if width == 2:
        return np.frombuffer(raw, dtype="<i2").astype(np.float64)
    if width == 3:
        triples = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
        joined = triples[:, 0] | (triples[:, 1] << 8) | (triples[:, 2] << 16)
        signed = np.where(joined & 0x800000, joined - 0x1000000, joined)
        return signed.astype(np.float64) / 256.0
    return np.frombuffer(raw, dtype="<i4").astype(np.float64) / 65536.0


# -- writing --------------------------------------------------------------


def _header(sample_rate: int, channels: int, data_size: int) -> bytes:
    """A 44-byte canonical header for 16-bit PCM with ``data_size`` bytes of data
    (``_PLACEHOLDER`` for a recording still in progress)."""
    riff_size = _PLACEHOLDER if data_size == _PLACEHOLDER else 36 + data_size
    block_align = 2 * channels
    return struct.pack("<4sI4s4sIHHIIHH4sI", b"RIFF", riff_size, b"WAVE", b"fmt ", 16,
                       _PCM, channels, sample_rate, sample_rate * block_align,
                       block_align, 16, b"data", data_size)


def _check_rate(sample_rate: int) -> None:
    if not MIN_RATE <= sample_rate <= MAX_RATE:
        raise ValueError(f"sample rate {sample_rate} Hz is outside {MIN_RATE}..{MAX_RATE}")


def encode_wav(samples: Samples, sample_rate: int = SAMPLE_RATE) -> bytes:
    """A complete mono 16-bit PCM WAV file holding ``samples``."""
    samples = as_samples(samples)
    _check_rate(sample_rate)
    body = samples.astype("<i2", copy=False).tobytes()
    if len(body) > _MAX_DATA:
        raise ValueError("audio too long for a WAV file (4 GiB limit)")
    return _header(sample_rate, 1, len(body)) + body


def encode_wav_stereo(left: Samples, right: Samples, sample_rate: int = SAMPLE_RATE) -> bytes:
    """A complete stereo 16-bit PCM WAV file: ``left`` on the left channel,
    ``right`` on the right (e.g. the two sides of a call).  The two arrays
    must be aligned, i.e. of equal length (else :class:`ValueError`)."""
    _check_rate(sample_rate)
    body = _interleave(left, right)
    if len(body) > _MAX_DATA:
        raise ValueError("audio too long for a WAV file (4 GiB limit)")
    return _header(sample_rate, 2, len(body)) + body


def write_wav(target: str | os.PathLike[str] | BinaryIO, samples: Samples,
              sample_rate: int = SAMPLE_RATE) -> None:
    """Write ``samples`` as a mono 16-bit PCM WAV file to a path or binary file."""
    data = encode_wav(samples, sample_rate)
    if isinstance(target, (str, os.PathLike)):
        with open(target, "wb") as f:
            f.write(data)
    else:
        target.write(data)


def _interleave(left: Samples, right: Samples) -> bytes:
    """Little-endian interleaved bytes of two aligned channels."""
    left = as_samples(left, "left")
    right = as_samples(right, "right")
    if len(left) != len(right):
        raise ValueError(f"left and right differ in length ({len(left)} != {len(right)})")
    pairs = np.empty((len(left), 2), dtype="<i2")
    pairs[:, 0] = left
    pairs[:, 1] = right
    return pairs.tobytes()


class WavWriter:
    """A 16-bit PCM WAV file written a chunk of samples at a time, so a long
    call is recorded without holding it in memory.

    The header is written at construction with placeholder sizes (readable by
    :func:`read_wav` even if the writer never closes) and fixed up by
    :meth:`close`; the file object must therefore be seekable.  The writer
    does not close the file object it was given.
    """

    def __init__(self, file: BinaryIO, sample_rate: int = SAMPLE_RATE,
                 channels: int = 1) -> None:
        """Start a WAV file in ``file`` at its current position."""
        _check_rate(sample_rate)
        if channels not in (1, 2):
            raise ValueError(f"channels must be 1 or 2, not {channels}")
        if not file.seekable():
            raise ValueError("WavWriter needs a seekable file to fix up the header")
        self._file = file
        self._rate = sample_rate
        self._channels = channels
        self._start = file.tell()
        self._data_size = 0
        self._closed = False
        file.write(_header(sample_rate, channels, _PLACEHOLDER))

    @property
    def channels(self) -> int:
        """1 (mono) or 2 (stereo)."""
        return self._channels

    @property
    def sample_rate(self) -> int:
        """The rate written in the header (Hz)."""
        return self._rate

    @property
    def frames_written(self) -> int:
        """Sample frames (one sample per channel) written so far."""
        return self._data_size // (2 * self._channels)

    @property
    def closed(self) -> bool:
        """True once :meth:`close` has run."""
        return self._closed

    def write(self, samples: Samples) -> None:
        """Append ``samples`` to a mono file."""
        if self._channels != 1:
            raise ValueError("write() is for mono files; use write_stereo()")
        samples = as_samples(samples)
        self._append(samples.astype("<i2", copy=False).tobytes())

    def write_stereo(self, left: Samples, right: Samples) -> None:
        """Append two aligned chunks (equal lengths) to a stereo file."""
        if self._channels != 2:
            raise ValueError("write_stereo() is for stereo files; use write()")
        self._append(_interleave(left, right))

    def _append(self, body: bytes) -> None:
        if self._closed:
            raise ValueError("write to a closed WavWriter")
        if self._data_size + len(body) > _MAX_DATA:
            raise ValueError("recording too long for a WAV file (4 GiB limit)")
        self._file.write(body)
        self._data_size += len(body)

    def close(self) -> None:
        """Write the final RIFF and data sizes into the header; the file
        position is left at the end of the data.  Closing twice is harmless."""
        if self._closed:
            return
        self._closed = True
        end = self._file.tell()
        self._file.seek(self._start)
        self._file.write(_header(self._rate, self._channels, self._data_size))
        self._file.seek(end)

    def __enter__(self) -> WavWriter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
