"""Call-progress tones and DTMF, generated as int16 frames.

Owns the tone-list notation of Asterisk's ``indications.conf`` (parsed into
a frozen :class:`Tone`), the generator that plays a tone a frame at a time
(:class:`ToneGenerator`), the per-country tone plans (:data:`TONE_PLANS`),
and DTMF digit synthesis (:func:`dtmf_tone`, :func:`dtmf_sequence`).

The notation: a tone is a comma-separated list of elements
``[!]f1[+f2|*f2][/ms]``.  ``f1+f2`` sums two sines, ``f1*f2`` is ``f1``
amplitude-modulated by ``f2`` at 90 % depth, a frequency of 0 is silence,
``/ms`` is the element's duration (none, or 0, means "until stopped"), and a
leading ``!`` marks an element played once: playback repeats from the first
element without ``!``, and a tone whose elements all carry ``!`` ends.
Unlike Asterisk, which logs and skips an element it cannot parse, we reject
the whole tone; and element durations are exact to the sample, where
Asterisk rounds them up to whole frames.

Levels are in dBm0 per frequency component (see :mod:`telavox.audio.pcm`
for the reference).  Phases follow from the absolute sample index, so a
tone is phase-continuous across frames and elements and the samples do not
depend on how they are requested.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType
from typing import Final

import attrs
import numpy as np
import numpy.typing as npt

from telavox.audio.pcm import SAMPLE_RATE, Samples, dbm0_to_peak, frame_samples, to_int16

__all__ = [
    "DEFAULT_DTMF_LEVEL",
    "DEFAULT_TONE_LEVEL",
    "DTMF_COLUMNS",
    "DTMF_DIGITS",
    "DTMF_FREQUENCIES",
    "DTMF_ROWS",
    "TONE_PLANS",
    "Tone",
    "ToneElement",
    "ToneError",
    "ToneGenerator",
    "TonePlan",
    "dtmf_sequence",
    "dtmf_tone",
    "tone_plan",
]

DEFAULT_TONE_LEVEL: Final = -10.0
"""Level of each component of a call-progress tone, dBm0 (Asterisk plays
tones at amplitude 7219, which is −10 dBm0 on our reference)."""

DEFAULT_DTMF_LEVEL: Final = -10.0
"""Level of each of the two DTMF frequencies, dBm0."""

_MODULATION_DEPTH: Final = 0.9
_MAX_FREQUENCY: Final = 100_000
_MAX_DURATION_MS: Final = 3_600_000
_ELEMENT = re.compile(r"(!?)([0-9]{1,9})(?:([+*])([0-9]{1,9}))?(?:/([0-9]{1,9}))?")


class ToneError(ValueError):
    """A tone list, country or digit that cannot be played; the message says why."""


def _in_range(limit: int, unit: str) -> Callable[[object, attrs.Attribute[int], int], None]:
    """An attrs validator: an int from 0 to ``limit``, else :class:`ToneError`."""
    def check(_instance: object, attribute: attrs.Attribute[int], value: int) -> None:
        if not 0 <= value <= limit:
            raise ToneError(f"{attribute.name} {value} {unit} is outside 0..{limit}")
    return check


@attrs.frozen(slots=True)
class ToneElement:
    """One element of a tone list: one or two frequencies (Hz) for
    ``duration_ms`` (0 = until stopped), summed or, with ``modulate``,
    ``freq1`` modulated by ``freq2``; ``once`` is the ``!`` prefix."""

    freq1: int = attrs.field(validator=_in_range(_MAX_FREQUENCY, "Hz"))
    freq2: int = attrs.field(default=0, validator=_in_range(_MAX_FREQUENCY, "Hz"))
    modulate: bool = False
    duration_ms: int = attrs.field(default=0, validator=_in_range(_MAX_DURATION_MS, "ms"))
    once: bool = False

    @classmethod
    def parse(cls, text: str) -> ToneElement:
        """Parse ``[!]f1[+f2|*f2][/ms]`` (surrounding blanks allowed)."""
        match = _ELEMENT.fullmatch(text.strip())
        if match is None:
            raise ToneError(f"bad tone element {text.strip()[:40]!r}")
        once, f1, op, f2, ms = match.groups()
        try:
            return cls(freq1=int(f1), freq2=int(f2) if f2 else 0, modulate=op == "*",
                       duration_ms=int(ms) if ms else 0, once=bool(once))
        except ToneError as e:
            raise ToneError(f"{e} in {text.strip()!r}") from None

    def __str__(self) -> str:
        text = ("!" if self.once else "") + str(self.freq1)
        if self.freq2 or self.modulate:
            text += ("*" if self.modulate else "+") + str(self.freq2)
        if self.duration_ms:
            text += f"/{self.duration_ms}"
        return text


def _as_elements(elements: Iterable[ToneElement]) -> tuple[ToneElement, ...]:
    return tuple(elements)


@attrs.frozen(slots=True)
class Tone:
    """A tone list: elements played in order, repeating as the notation says."""

    elements: tuple[ToneElement, ...] = attrs.field(converter=_as_elements)

    @elements.validator
    def _check(self, _attribute: object, value: tuple[ToneElement, ...]) -> None:
        if not value:
            raise ToneError("a tone needs at least one element")

    @classmethod
    def parse(cls, text: str) -> Tone:
        """Parse a tone list such as ``"!350+440/100,!0/100,440/500,0/500"``.

        Elements are separated by ``,`` (or by ``|`` when the text contains
        one, as Asterisk allows).  Raises :class:`ToneError`.
        """
        separator = "|" if "|" in text else ","
        return cls(tuple(ToneElement.parse(part) for part in text.split(separator)))

    def __str__(self) -> str:
        return ",".join(str(element) for element in self.elements)

    @property
    def repeat_from(self) -> int | None:
        """Index of the element playback returns to after the last one, or
        None when every element is marked ``!`` (the tone ends)."""
        return next((i for i, e in enumerate(self.elements) if not e.once), None)

    def generator(self, level_dbm0: float = DEFAULT_TONE_LEVEL,
                  sample_rate: int = SAMPLE_RATE) -> ToneGenerator:
        """A :class:`ToneGenerator` playing this tone."""
        return ToneGenerator(self, level_dbm0=level_dbm0, sample_rate=sample_rate)


class ToneGenerator:
    """Plays a :class:`Tone`: successive frames of samples, with the cadence
    repeated as the tone list says.  After a tone that ends (all elements
    ``!``) the frames are silence and :attr:`finished` is true."""

    def __init__(self, tone: Tone, *, level_dbm0: float = DEFAULT_TONE_LEVEL,
                 sample_rate: int = SAMPLE_RATE) -> None:
        """Prepare to play ``tone`` with each component at ``level_dbm0``.

        Raises :class:`ToneError` when a frequency is not below half of
        ``sample_rate``.
        """
        for element in tone.elements:
            for freq in (element.freq1, element.freq2):
                if 2 * freq >= sample_rate:
                    raise ToneError(f"{freq} Hz cannot be played at {sample_rate} Hz")
        self.tone = tone
        self.sample_rate = sample_rate
        self.frame_samples = frame_samples(sample_rate)
        self._peak = dbm0_to_peak(level_dbm0)
        self._lengths = [max(1, round(e.duration_ms * sample_rate / 1000))
                         if e.duration_ms else None for e in tone.elements]
        self._repeat_from = tone.repeat_from
        self._index = 0     # element playing
        self._offset = 0    # samples of it already played
        self._clock = 0     # samples since the start, for the phases
        self._finished = False

    @property
    def finished(self) -> bool:
        """True once a tone that does not repeat has played to its end."""
        return self._finished

    def next_frame(self) -> Samples:
        """The next 20 ms of the tone."""
        return self.samples(self.frame_samples)

    def samples(self, count: int) -> Samples:
        """The next ``count`` samples of the tone."""
        out = np.zeros(count, dtype=np.float64)
        pos = 0
        while pos < count and not self._finished:
            element = self.tone.elements[self._index]
            length = self._lengths[self._index]
            take = count - pos if length is None else min(count - pos, length - self._offset)
            out[pos:pos + take] = self._render(element, take)
            pos += take
            self._clock += take
            self._offset += take
            if length is not None and self._offset >= length:
                self._advance()
        return to_int16(out)

    def _advance(self) -> None:
        self._offset = 0
        self._index += 1
        if self._index == len(self.tone.elements):
            if self._repeat_from is None:
                self._finished = True
            else:
                self._index = self._repeat_from

    def _render(self, element: ToneElement, count: int) -> npt.NDArray[np.float64]:
        """``count`` samples of ``element`` from the current clock."""
        clock = np.arange(self._clock, self._clock + count, dtype=np.int64)
        first = _sine(element.freq1, clock, self.sample_rate)
        second = _sine(element.freq2, clock, self.sample_rate)
        if element.modulate:
            envelope = (1.0 + _MODULATION_DEPTH * second) / (1.0 + _MODULATION_DEPTH)
            return self._peak * first * envelope
        return self._peak * (first + second)


def _sine(freq: int, clock: npt.NDArray[np.int64], rate: int) -> npt.NDArray[np.float64]:
    """``sin(2π·freq·n/rate)`` for the sample indices ``clock``, with the phase
    reduced exactly in integers so it never drifts."""
    if freq == 0:
        return np.zeros(len(clock), dtype=np.float64)
    cycles = (clock * freq) % rate
    result: npt.NDArray[np.float64] = np.sin(cycles * (2.0 * np.pi / rate))
    return result


# -- country tone plans -----------------------------------------------------


@attrs.frozen(slots=True)
class TonePlan:
    """The call-progress tones of one country."""

    country: str
    description: str
    dial: Tone
    ringback: Tone
    busy: Tone
    congestion: Tone
    callwaiting: Tone

    def tone(self, name: str) -> Tone:
        """The tone called ``name``: ``dial``, ``ringback`` (or Asterisk's
        ``ring``), ``busy``, ``congestion`` or ``callwaiting``."""
        key = "ringback" if name == "ring" else name
        if key not in _PLAN_TONES:
            raise ToneError(f"no tone named {name!r}; known: {', '.join(_PLAN_TONES)}")
        tone: Tone = getattr(self, key)
        return tone


_PLAN_TONES: Final = ("dial", "ringback", "busy", "congestion", "callwaiting")

# Values as in Asterisk's configs/samples/indications.conf.sample, whose
# European entries follow "Various tones used in national networks
# (according to ITU-T Recommendation E.180)", the ITU-T E.180 Supplement 2
# list as republished in the Annex to ITU Operational Bulletin No. 781
# (1.II.2003).  The UK entry is from BT SIN 350 and the US one is the North
# American precise tone plan, as Asterisk's comments say.  Asterisk calls
# ringback "ring", and spells France's call-waiting key "callwait".
_PLANS: Final = (
    ("de", "Germany", "425", "425/1000,0/4000", "425/480,0/480", "425/240,0/240",
     "!425/200,!0/200,!425/200,!0/5000,!425/200,!0/200,!425/200,!0/5000,"
     "!425/200,!0/200,!425/200,!0/5000,!425/200,!0/200,!425/200,!0/5000,"
     "!425/200,!0/200,!425/200,0"),
    ("dk", "Denmark", "425", "425/1000,0/4000", "425/500,0/500", "425/200,0/200",
     "!425/200,!0/600,!425/200,!0/3000,!425/200,!0/200,!425/200,0"),
    ("fi", "Finland", "425", "425/1000,0/4000", "425/300,0/300", "425/200,0/200",
     "425/150,0/150,425/150,0/8000"),
    ("fr", "France", "440", "440/1500,0/3500", "440/500,0/500", "440/250,0/250",
     "440/300,0/10000"),
    ("nl", "Netherlands", "425", "425/1000,0/4000", "425/500,0/500", "425/250,0/250",
     "425/500,0/9500"),
    ("no", "Norway", "425", "425/1000,0/4000", "425/500,0/500", "425/200,0/200",
     "425/200,0/600,425/200,0/10000"),
    ("se", "Sweden", "425", "425/1000,0/5000", "425/250,0/250", "425/250,0/750",
     "425/200,0/500,425/200,0/9100"),
    ("uk", "United Kingdom", "350+440", "400+450/400,0/200,400+450/400,0/2000",
     "400/375,0/375", "400/400,0/350,400/225,0/525", "400/100,0/4000"),
    ("us", "United States / North America", "350+440", "440+480/2000,0/4000",
     "480+620/500,0/500", "480+620/250,0/250", "440/300,0/10000"),
)

TONE_PLANS: Final[Mapping[str, TonePlan]] = MappingProxyType({
    code: TonePlan(code, description, *(Tone.parse(text) for text in tones))
    for code, description, *tones in _PLANS
})
"""Tone plans by lower-case country code (``us``, ``uk``, ``se``, ``de``, …)."""


def tone_plan(country: str) -> TonePlan:
    """The tone plan of ``country`` (a code such as ``"se"``; case-insensitive)."""
    plan = TONE_PLANS.get(country.lower())
    if plan is None:
        raise ToneError(f"no tone plan for country {country!r}; "
                        f"known: {', '.join(sorted(TONE_PLANS))}")
    return plan


# -- DTMF -------------------------------------------------------------------

DTMF_ROWS: Final = (697, 770, 852, 941)
"""The low-group frequencies (Hz), one per keypad row."""

DTMF_COLUMNS: Final = (1209, 1336, 1477, 1633)
"""The high-group frequencies (Hz), one per keypad column."""

DTMF_DIGITS: Final = "123A456B789C*0#D"
"""The sixteen keys, row by row: key ``DTMF_DIGITS[4·r + c]`` is row r, column c."""

DTMF_FREQUENCIES: Final[Mapping[str, tuple[int, int]]] = MappingProxyType({
    digit: (DTMF_ROWS[i // 4], DTMF_COLUMNS[i % 4]) for i, digit in enumerate(DTMF_DIGITS)
})
"""``digit → (low, high)`` frequencies in Hz (ITU-T Q.23)."""


def dtmf_tone(digit: str, duration_ms: int = 100, level_dbm0: float = DEFAULT_DTMF_LEVEL,
              *, twist_db: float = 0.0, sample_rate: int = SAMPLE_RATE) -> Samples:
    """The two-frequency signal of ``digit`` (0–9, ``*``, ``#``, A–D; a–d too)
    for ``duration_ms``, the low tone at ``level_dbm0`` and the high tone
    ``twist_db`` above it.  Raises :class:`ToneError` for another character."""
    freqs = DTMF_FREQUENCIES.get(digit.upper()) if len(digit) == 1 else None
    if freqs is None:
        raise ToneError(f"{digit!r} is not a DTMF digit")
    count = round(duration_ms * sample_rate / 1000)
    clock = np.arange(count, dtype=np.int64)
    low = dbm0_to_peak(level_dbm0) * _sine(freqs[0], clock, sample_rate)
    high = dbm0_to_peak(level_dbm0 + twist_db) * _sine(freqs[1], clock, sample_rate)
    return to_int16(low + high)


def dtmf_sequence(digits: str, tone_ms: int = 100, gap_ms: int = 100,
                  level_dbm0: float = DEFAULT_DTMF_LEVEL,
                  sample_rate: int = SAMPLE_RATE) -> Samples:
    """``digits`` dialled in turn: each tone for ``tone_ms`` followed by
    ``gap_ms`` of silence."""
    gap = np.zeros(round(gap_ms * sample_rate / 1000), dtype=np.int16)
    parts: list[Samples] = []
    for digit in digits:
        parts += [dtmf_tone(digit, tone_ms, level_dbm0, sample_rate=sample_rate), gap]
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int16)
