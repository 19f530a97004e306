"""What a mediaserver plays into a call: prompts, tones and DTMF digits, as
20 ms frames of RTP payload.

Owns the players and :func:`make_player`, which turns a
:class:`~telavox.records.PlaySource` and the far end's description into one.
A player knows nothing of time or sockets: the relay core asks it for the
packets of the next 20 ms slot (:meth:`Player.next_frame`) each time one is
due and sends them through the stream's continuity rewriter.  A packet is
:data:`PlayPacket` ``(payload_type, marker, n_samples, payload, codec)``.

- :class:`EncodedPlayer`: G.711 bytes encoded once (a prompt file, in-band
  DTMF), 160 bytes a frame.
- :class:`TonePlayer`: an Asterisk indications tone, generated and encoded a
  frame at a time.
- :class:`EventPlayer`: RFC 4733 telephone-events, one packet a slot (the
  marker on the first, three end packets), 100 ms per digit and 100 ms
  apart.

Audio is encoded with the far end's first G.711 format (PCMU or PCMA, in its
order of preference); digits go as telephone-events when the far end
negotiated them, else in band.
"""

from __future__ import annotations

from collections.abc import Callable

from telavox.audio.tones import Tone, ToneError, ToneGenerator, dtmf_sequence, tone_plan
from telavox.interfaces import MediaError
from telavox.mediaserver.formats import (
    CODEC_EVENT,
    codec_of,
    encoder,
    preferred_g711,
    telephone_event,
)
from telavox.records import MediaFormat, PlaySource, RemoteStream
from telavox.rtp.codecs import G711Codec
from telavox.rtp.dtmf import event_of, event_packets

__all__ = [
    "DIGIT_GAP_MS",
    "DIGIT_MS",
    "EncodedPlayer",
    "EventPlayer",
    "PlayPacket",
    "Player",
    "PromptLoader",
    "TonePlayer",
    "make_player",
]

PlayPacket = tuple[int, bool, int, bytes, int]
"""``(payload_type, marker, n_samples, payload, codec)``: one packet to send;
``n_samples`` is how far it moves the stream's timestamp on, ``codec`` a
``CODEC_*`` number of :mod:`.formats` (for the recorder)."""

PromptLoader = Callable[[str, G711Codec], bytes]
"""Loads a prompt file as G.711 bytes of a codec (``MediaError`` when it cannot)."""

#: Length of each DTMF digit played, and the pause after it (ms).
DIGIT_MS = 100
DIGIT_GAP_MS = 100

_FRAME = 160
_SLOT_MS = 20
_DEFAULT_FORMAT = MediaFormat(0, "PCMU", 8000)


class Player:
    """One playback: an id, the time its next frame is due (kept by the
    relay core) and its frames."""

    def __init__(self, playback_id: str) -> None:
        self.playback_id = playback_id
        self.next_due = 0.0

    def next_frame(self) -> list[PlayPacket] | None:
        """The packets of the next 20 ms slot (maybe none), or None when the
        playback has finished."""
        raise NotImplementedError


class EncodedPlayer(Player):
    """Plays G.711 ``payload`` (160 bytes a frame, the last one maybe
    shorter) with payload type ``pt``; ``loop`` starts again at the end."""

    def __init__(self, playback_id: str, payload: bytes, pt: int, codec: int,
                 loop: bool = False) -> None:
        super().__init__(playback_id)
        self._payload = payload
        self._pt = pt
        self._codec = codec
        self._loop = loop and bool(payload)
        self._pos = 0
        self._first = True

    def next_frame(self) -> list[PlayPacket] | None:
        """The next 160 bytes."""
        if self._pos >= len(self._payload):
            if not self._loop:
                return None
            self._pos = 0
        chunk = self._payload[self._pos:self._pos + _FRAME]
        self._pos += _FRAME
        marker, self._first = self._first, False
        return [(self._pt, marker, len(chunk), chunk, self._codec)]


class TonePlayer(Player):
    """Plays a :class:`~telavox.audio.tones.Tone` encoded with ``codec``.
    A tone that ends (every element ``!``) finishes, unless ``loop``."""

    def __init__(self, playback_id: str, tone: Tone, codec: G711Codec, pt: int,
                 loop: bool = False) -> None:
        super().__init__(playback_id)
        self._tone = tone
        self._generator = ToneGenerator(tone)
        self._codec = codec
        self._codec_number = codec_of(MediaFormat(pt, codec.name, 8000))
        self._pt = pt
        self._loop = loop
        self._first = True

    def next_frame(self) -> list[PlayPacket] | None:
        """The next 20 ms of the tone."""
        if self._generator.finished:
            if not self._loop:
                return None
            self._generator = ToneGenerator(self._tone)
        payload = self._codec.encode(self._generator.next_frame())
        marker, self._first = self._first, False
        return [(self._pt, marker, len(payload), payload, self._codec_number)]


class EventPlayer(Player):
    """Plays ``digits`` as RFC 4733 telephone-events with payload type
    ``pt`` (clock 8000): :data:`DIGIT_MS` each, :data:`DIGIT_GAP_MS` apart."""

    def __init__(self, playback_id: str, digits: str, pt: int, clock_rate: int = 8000) -> None:
        super().__init__(playback_id)
        slots: list[list[PlayPacket]] = []
        for digit in digits:
            start = len(slots)
            for packet in event_packets(digit, DIGIT_MS, clock_rate=clock_rate,
                                        interval_ms=_SLOT_MS):
                index = start + round(packet.offset * 1000 / _SLOT_MS)
                while len(slots) <= index:
                    slots.append([])
                slots[index].append((pt, packet.marker, packet.advance, packet.payload,
                                     CODEC_EVENT))
            slots.extend([] for _ in range(DIGIT_GAP_MS // _SLOT_MS))
        self._slots = slots
        self._index = 0

    def next_frame(self) -> list[PlayPacket] | None:
        """The event packets of the next slot (none in the pauses)."""
        if self._index >= len(self._slots):
            return None
        packets = self._slots[self._index]
        self._index += 1
        return packets


def make_player(playback_id: str, source: PlaySource, remote: RemoteStream | None,
                load_prompt: PromptLoader, country: str = "us") -> Player:
    """The player for ``source`` into a stream whose far end is ``remote``.

    A tone name is looked up in the plan of ``source.country``, or of
    ``country`` when the source gives none.

    Raises :class:`MediaError`: 400 for a source naming none or several of
    ``path``/``tone``/``digits``, an unknown tone, country or digit; 488
    when the far end takes neither PCMU nor PCMA (and digits cannot go as
    telephone-events); whatever ``load_prompt`` raises for a file.  Before
    the far end is described, PCMU/0 is assumed.
    """
    given = [name for name in ("path", "tone", "digits") if getattr(source, name)]
    if len(given) != 1:
        raise MediaError("a play source needs exactly one of path, tone and digits, "
                         f"not {given or 'none'}", status=400)
    if source.digits:
        for digit in source.digits:
            try:
                event_of(digit)
            except ValueError:
                raise MediaError(f"{digit!r} is not a DTMF digit", status=400) from None
        event = telephone_event(remote)
        if event is not None:
            return EventPlayer(playback_id, source.digits, event.payload_type,
                               event.clock_rate)
    fmt = _audio_format(remote)
    codec = encoder(fmt)
    number = codec_of(fmt)
    if source.digits:
        try:
            samples = dtmf_sequence(source.digits, DIGIT_MS, DIGIT_GAP_MS)
        except ToneError as e:
            raise MediaError(str(e), status=400) from None
        return EncodedPlayer(playback_id, codec.encode(samples), fmt.payload_type, number)
    if source.tone:
        tone = _tone(source.tone, source.country or country)
        return TonePlayer(playback_id, tone, codec, fmt.payload_type, source.loop)
    return EncodedPlayer(playback_id, load_prompt(source.path, codec), fmt.payload_type,
                         number, source.loop)


def _audio_format(remote: RemoteStream | None) -> MediaFormat:
    if remote is None:
        return _DEFAULT_FORMAT
    fmt = preferred_g711(remote)
    if fmt is None:
        raise MediaError("the far end takes neither PCMU nor PCMA", status=488)
    return fmt


def _tone(text: str, country: str) -> Tone:
    """A tone-plan name (``ring``, ``busy``, ...) of ``country``, or an
    indications string."""
    text = text.strip()
    try:
        if text.isalpha():
            return tone_plan(country).tone(text.lower())
        tone = Tone.parse(text)
        ToneGenerator(tone)  # checks the frequencies
        return tone
    except ToneError as e:
        raise MediaError(str(e), status=400) from None
