"""Test signals for the audio tests: tones, noise, a speech-like voice, and
WAV files built by hand (so the reader is checked against bytes it did not
write itself)."""

from __future__ import annotations

import struct

import numpy as np
import numpy.typing as npt

from telavox.audio.pcm import Samples, dbm0_to_peak, to_int16

SUBFORMAT_TAIL = b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"


def sine(freq: float, rate: int, seconds: float, peak: float) -> npt.NDArray[np.float64]:
    """A sine of ``peak`` amplitude, as floats."""
    n = np.arange(round(rate * seconds))
    result: npt.NDArray[np.float64] = peak * np.sin(2 * np.pi * freq * n / rate)
    return result


def with_noise(signal: Samples, snr_db: float, pad: int, seed: int) -> Samples:
    """``signal`` between ``pad`` samples of silence on each side, plus white
    noise ``snr_db`` below the signal's mean power, throughout."""
    rng = np.random.default_rng(seed)
    x = signal.astype(np.float64)
    power = float(np.mean(x * x))
    padded = np.concatenate([np.zeros(pad), x, np.zeros(pad)])
    noise = rng.normal(0.0, np.sqrt(power / 10 ** (snr_db / 10)), len(padded))
    return to_int16(padded + noise)


def _resonance(f: npt.NDArray[np.float64], centre: npt.NDArray[np.float64],
               bandwidth: float) -> npt.NDArray[np.float64]:
    """Magnitude response of a two-pole resonator (a formant) at ``f``."""
    result: npt.NDArray[np.float64] = 1.0 / np.sqrt(
        (1 - (f / centre) ** 2) ** 2 + (f * bandwidth / centre**2) ** 2)
    return result


def speech_like(seconds: float, seed: int, rate: int = 8000) -> Samples:
    """Voiced syllables: a glottal pulse train (harmonics of a gliding pitch
    between 80 and 260 Hz, falling 6 dB per octave) through three moving
    formant resonators, at −25 to −8 dBm0, with pauses between syllables."""
    rng = np.random.default_rng(seed)
    total = round(seconds * rate)
    out = np.zeros(total)
    pos = 0
    while pos < total:
        length = min(round(rng.uniform(0.08, 0.35) * rate), total - pos)
        t = np.arange(length) / length
        pitch = rng.uniform(80, 260) * (1 + rng.uniform(-0.25, 0.25) * t)
        formants = [np.linspace(*rng.uniform(lo, hi, 2), length)
                    for lo, hi in ((250, 950), (850, 2500), (2000, 3400))]
        bandwidths = (rng.uniform(50, 120), rng.uniform(70, 150), rng.uniform(100, 250))
        phase = 2 * np.pi * np.cumsum(pitch) / rate
        voice = np.zeros(length)
        for k in range(1, int(3900 / pitch.min()) + 1):
            harmonic = k * pitch
            gain = np.prod([_resonance(harmonic, f, b)
                            for f, b in zip(formants, bandwidths, strict=True)], axis=0) / k
            voice += np.where(harmonic < 3900, gain * np.sin(k * phase), 0.0)
        voice *= np.sin(np.pi * t) ** 0.5
        level = dbm0_to_peak(rng.uniform(-25, -8))
        out[pos:pos + length] = voice / np.max(np.abs(voice)) * level * 2
        pos += length + round(rng.uniform(0.03, 0.2) * rate)
    return to_int16(out)


def wav_bytes(body: bytes, *, tag: int = 1, channels: int = 1, rate: int = 8000,
              bits: int = 16, block_align: int | None = None, extensible_tag: int | None = None,
              extra_chunks: bytes = b"", data_size: int | None = None) -> bytes:
    """A WAV file written field by field: a ``fmt `` chunk (plain, or
    WAVE_FORMAT_EXTENSIBLE around ``extensible_tag``), ``extra_chunks``, then
    a data chunk holding ``body`` (declaring ``data_size`` if given)."""
    width = (bits + 7) // 8
    align = block_align if block_align is not None else width * channels
    if extensible_tag is None:
        fmt = struct.pack("<HHIIHH", tag, channels, rate, rate * align, align, bits)
    else:
        fmt = struct.pack("<HHIIHHHHI", 0xFFFE, channels, rate, rate * align, align, bits,
                          22, bits, 0) + struct.pack("<H", extensible_tag) + SUBFORMAT_TAIL
    chunks = (b"fmt " + struct.pack("<I", len(fmt)) + fmt + extra_chunks + b"data"
              + struct.pack("<I", len(body) if data_size is None else data_size) + body)
    return b"RIFF" + struct.pack("<I", 4 + len(chunks)) + b"WAVE" + chunks
