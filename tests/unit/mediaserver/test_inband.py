"""Unit tests of :mod:`telavox.mediaserver.inband`: batched in-band DTMF
detection on G.711 payloads."""

from __future__ import annotations

import numpy as np

from telavox.audio.tones import dtmf_sequence
from telavox.mediaserver.formats import CODEC_EVENT, CODEC_PCMA, CODEC_PCMU
from telavox.mediaserver.inband import InbandDtmf
from telavox.rtp.codecs import PCMA, PCMU


def feed_all(detector: InbandDtmf, samples: np.ndarray, codec: int = CODEC_PCMU) -> list[str]:
    law = PCMU if codec == CODEC_PCMU else PCMA
    digits = []
    for i in range(0, len(samples) - 159, 160):
        payload = law.encode(samples[i:i + 160])
        digits += [d.digit for d in detector.feed(codec, payload, 0, 160)]
    return digits


def test_digits_after_silence_are_heard() -> None:
    """Quiet batches are skipped, and digits after them are still detected,
    each once."""
    detector = InbandDtmf()
    silence = np.zeros(8000, dtype=np.int16)
    samples = np.concatenate([silence, dtmf_sequence("159#", 100, 100), silence])
    assert feed_all(detector, samples) == ["1", "5", "9", "#"]
    assert detector.skipped >= 15


def test_a_law_and_a_codec_change() -> None:
    """A-law is decoded with its own table; a change of law flushes what was
    waiting under the old one (the digit spans the change)."""
    detector = InbandDtmf()
    tone = dtmf_sequence("3", 100, 0)
    assert feed_all(detector, tone[:480], CODEC_PCMA) == []
    assert len(detector._pending) == 480
    assert feed_all(detector, tone[480:], CODEC_PCMU) == []
    assert feed_all(detector, np.zeros(1600, dtype=np.int16)) == ["3"]


def test_other_payloads_are_ignored() -> None:
    """Telephone-event payloads are not audio."""
    detector = InbandDtmf()
    assert detector.feed(CODEC_EVENT, b"\x01\x0a\x00\xa0", 0, 4) == []
    assert detector.flush() == []
