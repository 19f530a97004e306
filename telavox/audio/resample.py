"""Sample-rate conversion: a prompt recorded at 44.1 or 48 kHz, or a wideband
stream at 16 kHz, brought to the 8 kHz of narrowband calls (or to 16 kHz).

Theory of operation.  Conversion from ``rate_in`` to ``rate_out`` is
rational: with ``g = gcd``, ``L = rate_out/g`` and ``M = rate_in/g``,
output sample ``n`` sits at input position ``n·M/L``.  It is the input
convolved with a windowed-sinc low-pass ``h`` evaluated at that position::

    y[n] = Σ_i x[i] · h(n·M/L − i)

``h`` is a Kaiser-windowed sinc (80 dB stop band) whose cut-off lies below
half the lower of the two rates, so nothing above the new Nyquist frequency
folds back (decimation) and no spectral images appear (interpolation).  Its
length is 100 taps counted at the lower rate: the pass band is flat to 0.45
of the lower rate (3.6 kHz at 8 kHz) and the stop band starts at its
Nyquist frequency.  Because ``n·M mod L`` takes only ``L`` values, ``h`` is
tabulated once as ``L`` phases of ``K`` taps (a polyphase filter bank),
each phase normalised to unit DC gain.  Output is aligned with input
(no group delay): sample 0 of each is at time 0.

Rare rates whose ``L`` would need too large a table (e.g. 44101 Hz) use the
nearest ratio with ``L`` ≤ 1024 (and a table of at most 2²⁰ taps); the
resulting speed error is below 1.5 parts in 10⁴ (a quarter of a cent in
pitch, half a second per hour).  All common rates (8, 11.025, 16, 22.05,
32, 44.1, 48, 96 kHz, …) are exact.  Equal rates are an exact copy.

The arithmetic is per output sample and independent of how the input was
chunked, so :class:`Resampler` fed in any pieces gives exactly what
:func:`resample` gives for the whole.
"""

from __future__ import annotations

import functools
import math
from fractions import Fraction
from typing import Final

import attrs
import numpy as np
import numpy.typing as npt

from telavox.audio.pcm import MAX_RATE, MIN_RATE, SAMPLE_RATE, Samples, as_samples, to_int16

__all__ = ["Resampler", "resample"]

_STOP_DB: Final = 80.0
_TAPS_AT_LOW_RATE: Final = 100
_MAX_PHASES: Final = 1024
_MAX_COEFFICIENTS: Final = 1 << 20
_BLOCK_ELEMENTS: Final = 1 << 18  # outputs × taps computed at once


@attrs.frozen(slots=True)
class _Bank:
    """A polyphase filter bank: ``taps[p]`` are the ``K`` weights applied to
    input samples ``q−W+1 … q+W`` for an output at position ``q + p/L``."""

    up: int
    down: int
    half: int
    taps: npt.NDArray[np.float64]


def _check_rate(name: str, rate: int) -> None:
    if not isinstance(rate, int) or not MIN_RATE <= rate <= MAX_RATE:
        raise ValueError(f"{name} {rate!r} Hz is outside {MIN_RATE}..{MAX_RATE}")


@functools.lru_cache(maxsize=16)
def _bank(rate_in: int, rate_out: int) -> _Bank:
    """The filter bank converting ``rate_in`` to ``rate_out`` (cached)."""
    low = min(rate_in, rate_out)
    transition = (_STOP_DB - 7.95) / (14.36 * (_TAPS_AT_LOW_RATE - 1))  # of the low rate
    cutoff = (0.5 - transition / 2.0) * low / rate_in  # cycles per input sample
    width = _TAPS_AT_LOW_RATE / 2.0 * rate_in / low    # window half-width, input samples
    half = math.ceil(width)
    taps_per_phase = 2 * half
    g = math.gcd(rate_in, rate_out)
    up, down = rate_out // g, rate_in // g
    max_phases = max(1, min(_MAX_PHASES, _MAX_COEFFICIENTS // taps_per_phase))
    if up > max_phases:
        ratio = Fraction(rate_in, rate_out).limit_denominator(max_phases)
        up, down = ratio.denominator, ratio.numerator
    beta = 0.1102 * (_STOP_DB - 8.7)
    phase = np.arange(up, dtype=np.float64)[:, None] / up
    offset = (half - 1 - np.arange(taps_per_phase, dtype=np.float64))[None, :]
    tau = phase + offset                     # h is evaluated at τ = p/L + W − 1 − j
    inside = np.abs(tau) <= width
    window = np.i0(beta * np.sqrt(np.clip(1.0 - (tau / width) ** 2, 0.0, 1.0))) / np.i0(beta)
    taps = 2.0 * cutoff * np.sinc(2.0 * cutoff * tau) * window * inside
    taps /= taps.sum(axis=1, keepdims=True)
    taps.setflags(write=False)
    return _Bank(up=up, down=down, half=half, taps=taps)


def resample(samples: Samples, rate_in: int, rate_out: int = SAMPLE_RATE) -> Samples:
    """``samples`` at ``rate_in`` converted to ``rate_out`` (default 8000 Hz).

    The result has ``ceil(len(samples) · rate_out / rate_in)`` samples and
    starts at the same instant; equal rates return an exact copy.  Rates must
    lie in 1000..768000 Hz (else :class:`ValueError`).
    """
    converter = Resampler(rate_in, rate_out)
    head = converter.process(samples)
    tail = converter.flush()
    return np.concatenate([head, tail]) if len(tail) else head


class Resampler:
    """A stream converted from ``rate_in`` to ``rate_out`` piece by piece.

    :meth:`process` takes input of any length and returns the output samples
    it now has enough input for (the filter holds back about 50 samples at
    the lower rate); :meth:`flush` ends the stream, returning the rest as if
    silence followed, and makes the converter ready for a new stream.  Any
    chunking gives exactly the output of :func:`resample` on the whole.
    """

    def __init__(self, rate_in: int, rate_out: int = SAMPLE_RATE) -> None:
        """A converter from ``rate_in`` to ``rate_out`` (Hz, 1000..768000)."""
        _check_rate("rate_in", rate_in)
        _check_rate("rate_out", rate_out)
        self.rate_in = rate_in
        self.rate_out = rate_out
        self._bank = None if rate_in == rate_out else _bank(rate_in, rate_out)
        self._reset()

    def _reset(self) -> None:
        half = self._bank.half if self._bank is not None else 0
        self._buf: Samples = np.zeros(half, dtype=np.int16)  # leading silence
        self._base = -half    # input index of self._buf[0]
        self._received = 0    # input samples received in this stream
        self._next = 0        # index of the next output sample

    def process(self, samples: Samples) -> Samples:
        """Feed input ``samples``; return the output now computable."""
        samples = as_samples(samples)
        if self._bank is None:
            return samples.copy()
        self._buf = np.concatenate([self._buf, samples])
        self._received += len(samples)
        bank = self._bank
        ready = -(-(self._received - bank.half) * bank.up // bank.down)
        return self._emit(max(ready, self._next))

    def flush(self) -> Samples:
        """End the stream: the remaining output, computed as if silence followed."""
        if self._bank is None:
            return np.zeros(0, dtype=np.int16)
        bank = self._bank
        total = -(-self._received * bank.up // bank.down)
        self._buf = np.concatenate([self._buf, np.zeros(bank.half + 1, dtype=np.int16)])
        out = self._emit(total)
        self._reset()
        return out

    def _emit(self, end: int) -> Samples:
        """Output samples ``self._next … end−1``; then drop input no longer needed."""
        bank = self._bank
        assert bank is not None
        pieces = [np.zeros(0, dtype=np.int16)]
        if end > self._next:
            taps_per_phase = bank.taps.shape[1]
            windows = np.lib.stride_tricks.sliding_window_view(self._buf, taps_per_phase)
            step = max(1, _BLOCK_ELEMENTS // taps_per_phase)
            for first in range(self._next, end, step):
                n = np.arange(first, min(first + step, end), dtype=np.int64)
                position = n * bank.down
                whole = position // bank.up
                phase = position - whole * bank.up
                rows = windows[whole - bank.half + 1 - self._base]
                weights = bank.taps[0] if bank.up == 1 else bank.taps[phase]
                pieces.append(to_int16(np.sum(rows * weights, axis=1)))
            self._next = end
        keep_from = (self._next * bank.down) // bank.up - bank.half + 1
        if keep_from > self._base:
            self._buf = self._buf[keep_from - self._base:]
            self._base = keep_from
        return pieces[0] if len(pieces) == 1 else np.concatenate(pieces)
