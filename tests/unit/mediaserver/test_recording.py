"""Unit tests of :mod:`telavox.mediaserver.recording`: the stereo layout,
silence filling and incremental writing."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np

from telavox.mediaserver.formats import CODEC_EVENT, CODEC_PCMA, CODEC_PCMU, DECODERS
from telavox.mediaserver.recording import Recorder
from telavox.rtp.codecs import PCMA, PCMU

from .support import dominant_frequency, rtp, sine


def read_stereo(path: Path) -> tuple[np.ndarray, np.ndarray]:
    with wave.open(str(path), "rb") as f:
        assert (f.getnchannels(), f.getsampwidth(), f.getframerate()) == (2, 2, 8000)
        frames = np.frombuffer(f.readframes(f.getnframes()), dtype="<i2").reshape(-1, 2)
    return frames[:, 0], frames[:, 1]


def test_left_is_received_right_is_sent(tmp_path: Path) -> None:
    """Received audio lands in the left channel, sent audio in the right,
    each decoded from its own law; slots without packets are silent."""
    path = tmp_path / "call.wav"
    recorder = Recorder.open("r1", "e1", str(path), DECODERS, 0.0)
    t = 0.0
    for i in range(25):
        left = PCMU.encode(sine(500.0, start=160 * i))
        right = PCMA.encode(sine(1500.0, start=160 * i))
        recorder.received(CODEC_PCMU, rtp(i, 160 * i, payload=left), 12, 172)
        recorder.sent(CODEC_PCMA, rtp(i, 160 * i, pt=8, payload=right), 12, 172)
        t += 0.02
        recorder.tick(t)
    for _ in range(10):  # nothing arrives: silence
        t += 0.02
        recorder.tick(t)
    assert recorder.close() == str(path)
    left, right = read_stereo(path)
    assert len(left) == 35 * 160
    assert abs(dominant_frequency(left[:4000]) - 500) < 10
    assert abs(dominant_frequency(right[:4000]) - 1500) < 10
    assert not left[25 * 160:].any() and not right[25 * 160:].any()
    assert recorder.silent_slots == 10


def test_received_only_is_mono_of_the_far_end(tmp_path: Path) -> None:
    """A received-only recording (a message, a greeting) is a mono file of
    what the far end sent; what it was sent (a prompt) is left out."""
    path = tmp_path / "message.wav"
    recorder = Recorder.open("r1", "e1", str(path), DECODERS, 0.0, received_only=True)
    t = 0.0
    for i in range(25):
        heard = PCMU.encode(sine(700.0, start=160 * i))
        recorder.received(CODEC_PCMU, rtp(i, 160 * i, payload=heard), 12, 172)
        prompt = PCMU.encode(sine(1500.0, start=160 * i))
        recorder.sent(CODEC_PCMU, rtp(i, 160 * i, payload=prompt), 12, 172)
        t += 0.02
        recorder.tick(t)
    recorder.close()
    with wave.open(str(path), "rb") as f:
        assert (f.getnchannels(), f.getsampwidth(), f.getframerate()) == (1, 2, 8000)
        samples = np.frombuffer(f.readframes(f.getnframes()), dtype="<i2")
    assert len(samples) == 25 * 160
    assert abs(dominant_frequency(samples) - 700) < 10


def test_file_grows_while_recording(tmp_path: Path) -> None:
    """Slots are written as they come due, not held until the end."""
    path = tmp_path / "call.wav"
    recorder = Recorder.open("r1", "e1", str(path), DECODERS, 0.0)
    recorder.tick(1.0)
    recorder._file.flush()  # what a reader sees mid-call
    assert path.stat().st_size >= 44 + 50 * 160 * 4
    recorder.close()
    recorder.close()


def test_non_g711_payloads_are_silence(tmp_path: Path) -> None:
    """A telephone-event payload is not audio: its slot stays silent."""
    path = tmp_path / "call.wav"
    recorder = Recorder.open("r1", "e1", str(path), DECODERS, 0.0)
    recorder.received(CODEC_EVENT, b"\x80" + bytes(15), 12, 16)
    recorder.tick(0.02)
    recorder.close()
    left, _ = read_stereo(path)
    assert len(left) == 160 and not left.any()


def test_a_fast_sender_cannot_make_a_channel_drift(tmp_path: Path) -> None:
    """A burst of many packets keeps at most 200 ms queued."""
    path = tmp_path / "call.wav"
    recorder = Recorder.open("r1", "e1", str(path), DECODERS, 0.0)
    for i in range(100):
        recorder.received(CODEC_PCMU, rtp(i, 160 * i), 12, 172)
    assert recorder._left.queued == 1600
    recorder.close()
