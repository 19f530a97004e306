"""In-band DTMF detection: digits heard in a stream of samples.

Theory of operation.  The stream is cut into blocks of 102 samples
(12.75 ms at 8 kHz; the block grid starts at the first sample fed).  For
each block we take the Goertzel power ``|X(f)|²`` at the eight DTMF
frequencies and at their second harmonics, and the block's energy.  The
Goertzel recurrence yields exactly ``|Σ x[n]·e^(−j2πfn/rate)|²``; we compute
that sum directly, as one numpy product over all blocks and frequencies,
because a Python-level loop over the 102 steps of the recurrence costs
twenty times more (≈ 240 µs against 12 µs for two blocks);
:func:`goertzel_power` is the recurrence, kept as the reference the tests
compare against.  Scaled by ``2/N`` the power of a sine at the
analysed frequency equals that sine's energy in the block, so it compares
directly with the block energy.

A block *hits* a digit when, for the strongest row (low-group) and the
strongest column (high-group) frequency, the checks of ITU-T Q.24 hold:

* level: each tone at least ``min_level_dbm0`` (default −35 dBm0);
* twist: the high tone at most 4 dB above the low one ("reverse twist")
  and at most 8 dB below it ("normal twist", as line loss tilts it).  These
  are the twists always accepted: the check allows 2 dB more, since at this
  block length each tone's estimate is off by up to about 1.7 dB when the
  other, stronger tone leaks into it (measured: 10 dB normal twist passes
  about half the time, 11 dB never);
* relative peak: every other row, and every other column, at least 6 dB
  below the strongest one;
* purity: the two tones carry at least 75 % of the block's energy, which
  rejects most voiced speech, noise, and blocks a tone only partly covers,
  yet accepts tones 1.5 % off frequency (their estimate loses up to 1.5 dB);
* second harmonic: the power at twice each tone's frequency is at least
  15 dB (column) or 3 dB (row) below it, against signals rich in harmonics.
  The row limit is mild because, at this block length, a column tone leaks
  into the harmonic bins of rows 1–2 (1336 Hz is 58 Hz from 2 × 697 Hz).

Timing: a digit starts after 2 consecutive hits (25.5 ms; any tone of
38 ms or more covers two whole blocks) and ends after 2 consecutive blocks
without it, so a pause of 40 ms or more always separates two presses of
the same key.  Tones under 19 ms are never accepted; a 20 ms tone can be,
at about one alignment in eight, when it straddles two blocks almost evenly
(Q.24 leaves 20–40 ms to the administration).  Each digit is reported once, when it ends, as a
:class:`DigitEvent` carrying its start and duration in samples counted from
the first sample fed (both quantised to blocks).  Since blocks sit on a
fixed grid and each is judged alone, the events do not depend on how the
stream was chunked.
"""

from __future__ import annotations

from typing import Final

import attrs
import numpy as np
import numpy.typing as npt

from telavox.audio.pcm import SAMPLE_RATE, Samples, as_samples, dbm0_to_peak
from telavox.audio.tones import DTMF_COLUMNS, DTMF_DIGITS, DTMF_ROWS

__all__ = ["ANALYSED_FREQUENCIES", "DigitEvent", "DtmfDetector", "goertzel_power"]

_BLOCK_AT_8K: Final = 102
_FREQUENCIES: Final = (*DTMF_ROWS, *DTMF_COLUMNS)

ANALYSED_FREQUENCIES: Final = (*_FREQUENCIES, *(2 * f for f in _FREQUENCIES))
"""The 16 frequencies (Hz) of each block's analysis: the four rows,
the four columns, then the second harmonic of each, in that order."""

_NO_DIGIT: Final = -1
_TWIST_TOLERANCE_DB: Final = 2.0


@attrs.frozen(slots=True)
class DigitEvent:
    """A DTMF digit heard: ``start`` and ``duration`` in samples, counted from
    the first sample the detector was fed."""

    digit: str
    start: int
    duration: int


def goertzel_power(samples: npt.ArrayLike, freqs: npt.ArrayLike,
                   sample_rate: int = SAMPLE_RATE) -> npt.NDArray[np.float64]:
    """The Goertzel power ``|X(f)|²`` of ``samples`` (shape ``(..., N)``) at each
    of ``freqs`` (Hz), by the Goertzel recurrence; shape ``(..., len(freqs))``.

    ``s[n] = x[n] + 2·cos(ω)·s[n−1] − s[n−2]``, and after the last sample
    ``|X|² = s[N−1]² + s[N−2]² − 2·cos(ω)·s[N−1]·s[N−2]``.
    """
    x = np.asarray(samples, dtype=np.float64)
    omega = 2.0 * np.pi * np.asarray(freqs, dtype=np.float64) / sample_rate
    coeff = 2.0 * np.cos(omega)
    s1 = np.zeros((*x.shape[:-1], len(omega)))
    s2 = np.zeros_like(s1)
    for n in range(x.shape[-1]):
        s1, s2 = x[..., n, None] + coeff * s1 - s2, s1
    power: npt.NDArray[np.float64] = s1 * s1 + s2 * s2 - coeff * s1 * s2
    return power


class DtmfDetector:
    """Finds DTMF digits in a stream fed through :meth:`feed` in chunks of any
    size; see the module docstring for the method and the limits."""

    def __init__(self, sample_rate: int = SAMPLE_RATE, *, min_level_dbm0: float = -35.0,
                 normal_twist_db: float = 8.0, reverse_twist_db: float = 4.0,
                 relative_peak_db: float = 6.0, min_purity: float = 0.75,
                 row_harmonic_db: float = 3.0, column_harmonic_db: float = 15.0,
                 hits_to_start: int = 2, misses_to_end: int = 2) -> None:
        """A detector for audio at ``sample_rate`` (8000 Hz or more) with the
        given acceptance limits (the defaults follow Q.24; see the module)."""
        if sample_rate < SAMPLE_RATE:
            raise ValueError(f"DTMF detection needs at least {SAMPLE_RATE} Hz")
        if hits_to_start < 1 or misses_to_end < 1:
            raise ValueError("hits_to_start and misses_to_end must be at least 1")
        self.sample_rate = sample_rate
        self.block = round(_BLOCK_AT_8K * sample_rate / SAMPLE_RATE)
        freqs = np.array(ANALYSED_FREQUENCIES, dtype=np.float64)
        phase = 2.0 * np.pi * np.outer(freqs, np.arange(self.block)) / sample_rate
        self._basis = np.concatenate([np.cos(phase), np.sin(phase)])  # (32, block)
        self._min_power = dbm0_to_peak(min_level_dbm0) ** 2 * self.block / 2.0
        self._normal_twist = 10.0 ** ((normal_twist_db + _TWIST_TOLERANCE_DB) / 10.0)
        self._reverse_twist = 10.0 ** ((reverse_twist_db + _TWIST_TOLERANCE_DB) / 10.0)
        self._relative_peak = 10.0 ** (relative_peak_db / 10.0)
        self._min_purity = min_purity
        self._row_harmonic = 10.0 ** (row_harmonic_db / 10.0)
        self._column_harmonic = 10.0 ** (column_harmonic_db / 10.0)
        self._hits_to_start = hits_to_start
        self._misses_to_end = misses_to_end
        self._pending: Samples = np.zeros(0, dtype=np.int16)
        self._next_block = 0        # stream offset of the next block
        self._run = _NO_DIGIT       # what the latest blocks hit, and since when
        self._run_length = 0
        self._run_start = 0
        self._digit = _NO_DIGIT     # the digit being heard, if any
        self._start = 0
        self._last_hit_end = 0
        self._misses = 0

    @property
    def current(self) -> tuple[str, int] | None:
        """``(digit, start)`` of the digit being heard now (already confirmed,
        not yet ended), or None: for a prompt to stop as soon as a key is
        pressed, without waiting for the key's release."""
        if self._digit == _NO_DIGIT:
            return None
        return DTMF_DIGITS[self._digit], self._start

    def feed(self, samples: Samples) -> list[DigitEvent]:
        """Take the next ``samples`` of the stream; return the digits that ended."""
        samples = as_samples(samples)
        data = np.concatenate([self._pending, samples]) if len(self._pending) else samples
        count = len(data) // self.block
        self._pending = data[count * self.block:].copy()
        if count == 0:
            return []
        hits = self._classify(data[:count * self.block].reshape(count, self.block))
        events: list[DigitEvent] = []
        for hit in hits:
            self._step(hit, events)
            self._next_block += self.block
        return events

    def finish(self) -> list[DigitEvent]:
        """End of the stream: report the digit being heard, if any, as ended.
        (Samples short of a whole block are not analysed.)"""
        events: list[DigitEvent] = []
        if self._digit != _NO_DIGIT:
            self._end_digit(events)
        self._run, self._run_length = _NO_DIGIT, 0
        return events

    def _step(self, hit: int, events: list[DigitEvent]) -> None:
        """Advance the timing state machine by one block that hit ``hit``."""
        block_start = self._next_block
        if hit == self._run:
            self._run_length += 1
        else:
            self._run, self._run_length, self._run_start = hit, 1, block_start
        if self._digit != _NO_DIGIT:
            if hit == self._digit:
                self._misses = 0
                self._last_hit_end = block_start + self.block
                return
            self._misses += 1
            if self._misses < self._misses_to_end:
                return
            self._end_digit(events)
        if hit != _NO_DIGIT and self._run_length >= self._hits_to_start:
            self._digit, self._start, self._misses = hit, self._run_start, 0
            self._last_hit_end = block_start + self.block

    def _end_digit(self, events: list[DigitEvent]) -> None:
        events.append(DigitEvent(DTMF_DIGITS[self._digit], self._start,
                                 self._last_hit_end - self._start))
        self._digit = _NO_DIGIT

    def _classify(self, blocks: Samples) -> list[int]:
        """For each row of ``blocks``, the index in DTMF_DIGITS it hits, or −1."""
        x = blocks.astype(np.float64)
        power = self._powers(x) * (2.0 / self.block)
        energy = np.sum(x * x, axis=1)
        return [self._judge(p, e) for p, e in zip(power.tolist(), energy.tolist(), strict=True)]

    def _powers(self, x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """``|X(f)|²`` of each block (row of ``x``) at the 8 DTMF frequencies and
        their 8 second harmonics, as :func:`goertzel_power` gives them."""
        # elementwise product and sum: each block's result is independent of
        # how many blocks are analysed together (a BLAS product is not)
        projections = np.sum(x[:, None, :] * self._basis[None, :, :], axis=2)
        squares = projections * projections
        half = len(self._basis) // 2
        power: npt.NDArray[np.float64] = squares[:, :half] + squares[:, half:]
        return power

    def _judge(self, power: list[float], energy: float) -> int:
        """The digit one block hits, from its 16 tone powers and its energy."""
        rows, columns = power[0:4], power[4:8]
        low = max(rows)
        high = max(columns)
        if (low < self._min_power or high < self._min_power
                or high > low * self._reverse_twist or low > high * self._normal_twist
                or low + high < self._min_purity * energy):
            return _NO_DIGIT
        row = rows.index(low)
        column = columns.index(high)
        peak_row = low / self._relative_peak
        peak_column = high / self._relative_peak
        if (any(p > peak_row for i, p in enumerate(rows) if i != row)
                or any(p > peak_column for i, p in enumerate(columns) if i != column)
                or power[8 + row] * self._row_harmonic > low
                or power[12 + column] * self._column_harmonic > high):
            return _NO_DIGIT
        return 4 * row + column
