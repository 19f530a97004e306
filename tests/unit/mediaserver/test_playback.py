"""Unit tests of :mod:`telavox.mediaserver.playback` and
:mod:`telavox.mediaserver.prompts`: what each play source becomes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from telavox.audio.wavfile import write_wav
from telavox.interfaces import MediaError
from telavox.mediaserver.playback import (
    EncodedPlayer,
    EventPlayer,
    TonePlayer,
    make_player,
)
from telavox.mediaserver.prompts import PromptCache
from telavox.records import MediaFormat, PlaySource
from telavox.rtp.codecs import PCMA, PCMU
from telavox.rtp.dtmf import TelephoneEvent

from .support import PCMA as PCMA_FORMAT
from .support import PCMU as PCMU_FORMAT
from .support import TE101, dominant_frequency, remote

G729 = MediaFormat(18, "G729", 8000)


def no_prompts(path: str, codec: object) -> bytes:
    raise AssertionError("no file expected")


def test_digits_as_telephone_events() -> None:
    """Digits to a far end with telephone-event: per digit, a marked first
    packet, updates every 20 ms, three end packets sharing the event's
    timestamp, then a 100 ms pause."""
    player = make_player("p", PlaySource(digits="1#"), remote(formats=(PCMU_FORMAT, TE101)),
                         no_prompts)
    assert isinstance(player, EventPlayer)
    slots = []
    while (frame := player.next_frame()) is not None:
        slots.append(frame)
    assert len(slots) == 2 * (8 + 5)
    first = slots[0][0]
    assert first[0] == 101 and first[1] and first[2] == 0
    events = [TelephoneEvent.parse(p[3]) for slot in slots[:8] for p in slot]
    assert [e.end for e in events] == [False] * 5 + [True] * 3
    assert events[-1].duration == 800 and events[0].event == 1
    assert [p[2] for slot in slots[:8] for p in slot] == [0] * 7 + [800]
    assert all(slot == [] for slot in slots[8:13])
    assert TelephoneEvent.parse(slots[13][0][3]).event == 11


def test_digits_in_band_without_telephone_event() -> None:
    """Without telephone-event the digits are DTMF tones in the far end's
    law."""
    player = make_player("p", PlaySource(digits="5"), remote(formats=(PCMA_FORMAT,)),
                         no_prompts)
    assert isinstance(player, EncodedPlayer)
    frame = player.next_frame()
    assert frame is not None and frame[0][0] == 8 and len(frame[0][3]) == 160


def test_tone_by_name_and_by_indications() -> None:
    """A tone name comes from the country's plan; an indications string is
    played as written, encoded with the far end's first G.711 law."""
    ring = make_player("p", PlaySource(tone="ring", country="se"), remote(), no_prompts)
    assert isinstance(ring, TonePlayer)
    player = make_player("p", PlaySource(tone="1000"), remote(formats=(PCMA_FORMAT,)),
                         no_prompts)
    frames = [player.next_frame() for _ in range(10)]
    payload = b"".join(f[0][3] for f in frames if f)
    assert frames[0] is not None and frames[0][0][0] == 8
    assert abs(dominant_frequency(PCMA.decode(payload)) - 1000) < 10


def test_a_tone_that_ends_finishes_unless_looped() -> None:
    """``!``-only tones end (None), and loop makes them repeat."""
    once = make_player("p", PlaySource(tone="!440/40"), remote(), no_prompts)
    assert [once.next_frame() is None for _ in range(3)] == [False, False, True]
    looped = make_player("p", PlaySource(tone="!440/40", loop=True), remote(), no_prompts)
    assert all(looped.next_frame() is not None for _ in range(10))


@pytest.mark.parametrize(("source", "status"), [
    (PlaySource(), 400),
    (PlaySource(tone="440", digits="1"), 400),
    (PlaySource(tone="nosuchtone"), 400),
    (PlaySource(tone="ring", country="xx"), 400),
    (PlaySource(tone="5000"), 400),
    (PlaySource(digits="1x"), 400),
])
def test_bad_sources_are_400(source: PlaySource, status: int) -> None:
    """A source naming nothing, several things or something unknown is refused."""
    with pytest.raises(MediaError) as caught:
        make_player("p", source, remote(), no_prompts)
    assert caught.value.status == status


def test_no_g711_is_488_but_events_still_work() -> None:
    """A G.729-only far end cannot hear a tone (488), but can get digits as
    telephone-events."""
    with pytest.raises(MediaError) as caught:
        make_player("p", PlaySource(tone="440"), remote(formats=(G729,)), no_prompts)
    assert caught.value.status == 488
    player = make_player("p", PlaySource(digits="9"), remote(formats=(G729, TE101)), no_prompts)
    assert isinstance(player, EventPlayer)


def test_prompt_files_are_converted_once(tmp_path: Path) -> None:
    """A 16 kHz prompt is resampled and encoded once per codec; the same
    unchanged file comes from the cache; looping restarts it."""
    path = tmp_path / "hello.wav"
    samples = (8000 * np.sin(2 * np.pi * 440 * np.arange(16000) / 16000)).astype(np.int16)
    write_wav(str(path), samples, 16000)
    cache = PromptCache()
    payload = cache.load(str(path), PCMU)
    assert len(payload) == 8000
    assert abs(dominant_frequency(PCMU.decode(payload)) - 440) < 5
    assert cache.load(str(path), PCMU) is payload and cache.hits == 1
    player = make_player("p", PlaySource(path=str(path), loop=True), remote(), cache.load)
    frames = [player.next_frame() for _ in range(60)]
    assert all(f is not None and len(f[0][3]) == 160 for f in frames)
    assert frames[50] == [(0, False, 160, payload[:160], 1)]


def test_missing_and_bad_prompts(tmp_path: Path) -> None:
    """A missing file is 404, a file that is not WAV 415."""
    cache = PromptCache()
    with pytest.raises(MediaError) as caught:
        cache.load(str(tmp_path / "none.wav"), PCMU)
    assert caught.value.status == 404
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not a wav file at all")
    with pytest.raises(MediaError) as caught:
        cache.load(str(bad), PCMU)
    assert caught.value.status == 415
