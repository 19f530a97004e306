"""Unit tests of conference rooms (:mod:`telavox.mediaserver.conference`
driven through :class:`~telavox.mediaserver.relay.MediaCore`): who hears
whom, muting, codecs, joining and leaving, pacing, bounded queues, and how
rooms live with playback, DTMF, recording, latching and hold.

Every participant's far end sends a sine of its own frequency; what each far
end receives is decoded and looked at with an FFT."""

from __future__ import annotations

import itertools
import wave
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from telavox.audio.tones import Tone
from telavox.interfaces import MediaError
from telavox.mediaserver.conference import FRAME, MAX_QUEUED, SampleQueue, mix
from telavox.mediaserver.formats import DECODERS
from telavox.mediaserver.playback import TonePlayer
from telavox.mediaserver.recording import Recorder
from telavox.records import MediaDirection, MediaFormat
from telavox.rtp.codecs import PCMA as PCMA_CODEC
from telavox.rtp.codecs import PCMU as PCMU_CODEC
from telavox.rtp.dtmf import TelephoneEvent
from telavox.rtp.packet import RtpPacket

from .support import PCMA, PCMU, TE101, Harness, remote, rtp, sine

G722 = MediaFormat(9, "G722", 8000)
TICK = 0.02


def power(samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Frequencies and power of the (Hann-windowed) spectrum of ``samples``."""
    x = samples.astype(np.float64) * np.hanning(len(samples))
    return np.fft.rfftfreq(len(samples), 1 / 8000), np.abs(np.fft.rfft(x)) ** 2


def band(samples: np.ndarray, freq: float, width: float = 25.0) -> float:
    """Power of ``samples`` within ``width`` Hz of ``freq``."""
    freqs, spectrum = power(samples)
    return float(spectrum[np.abs(freqs - freq) <= width].sum())


class Room:
    """A harness whose endpoints' far ends each send a tone."""

    def __init__(self, **options: object) -> None:
        self.h = Harness(**options)
        self.core = self.h.core
        self.far: dict[str, tuple[str, int]] = {}
        self.freq: dict[str, float] = {}
        self.codec: dict[str, MediaFormat] = {}
        self.sent: dict[str, int] = {}
        self.t = 0.0

    def add(self, name: str, freq: float, formats: Sequence[MediaFormat] = (PCMU, TE101),
            room: str | None = "r", muted: bool = False) -> None:
        n = len(self.far)
        far = (f"192.0.2.{10 + n}", 4000 + 2 * n)
        self.far[name] = far
        self.freq[name] = freq
        self.codec[name] = formats[0]
        self.sent[name] = 0
        self.h.add(name)
        self.core.set_remote(name, [remote(*far, formats=formats)], self.t)
        if room is not None:
            self.core.join_room(room, name, muted)

    def send(self, name: str, amplitude: float = 4000.0) -> None:
        """One 20 ms packet of ``name``'s tone from its far end, now."""
        i = self.sent[name]
        self.sent[name] += 1
        fmt = self.codec[name]
        codec = PCMA_CODEC if fmt.name == "PCMA" else PCMU_CODEC
        payload = codec.encode(sine(self.freq[name], start=FRAME * i, amplitude=amplitude))
        self.core.receive_rtp(self.h.stream(name),
                              rtp(i, FRAME * i, ssrc=0x1000, pt=fmt.payload_type,
                                  payload=payload),
                              self.far[name], self.t)

    def run(self, ticks: int, speakers: Sequence[str] = (), per_tick: int = 1) -> None:
        """``ticks`` rounds: each speaker sends, then the pacer ticks."""
        for _ in range(ticks):
            for name in speakers:
                for _ in range(per_tick):
                    self.send(name)
            self.core.tick(self.t)
            self.t += TICK

    def packets(self, name: str) -> list[RtpPacket]:
        return self.h.wire.packets(f"{name}/0/rtp")

    def heard(self, name: str, skip: int = 0) -> np.ndarray:
        """What ``name``'s far end decoded (PCMU or PCMA by payload type)."""
        out = []
        for p in self.packets(name)[skip:]:
            codec = PCMA_CODEC if p.payload_type == 8 else PCMU_CODEC
            out.append(codec.decode(p.payload))
        return np.concatenate(out) if out else np.zeros(0, dtype=np.int16)

    def assert_hears(self, name: str, present: Sequence[str], absent: Sequence[str],
                     skip: int = 0) -> None:
        samples = self.heard(name, skip)
        assert len(samples) >= 10 * FRAME
        total = float(power(samples)[1].sum())
        for other in present:  # each present tone has a fair share of the power
            assert band(samples, self.freq[other]) > 0.3 * total / len(present), (name, other)
        for other in absent:
            assert band(samples, self.freq[other]) <= 1e-3 * total, (name, other)


def three(**formats: Sequence[MediaFormat]) -> Room:
    room = Room()
    for name, freq in (("a", 400.0), ("b", 700.0), ("c", 1100.0)):
        room.add(name, freq, formats.get(name, (PCMU, TE101)))
    return room


def test_mix_minus_is_total_minus_own_clipped() -> None:
    """mix(): each row gets the sum of the other rows, clipped to int16."""
    frames = np.array([[1000, 30000, -30000], [2000, 10000, -10000], [-500, 0, 0]],
                      dtype=np.int16)
    out = mix(frames)
    assert out.dtype == np.int16
    assert out.tolist() == [[1500, 10000, -10000], [500, 30000, -30000],
                            [3000, 32767, -32768]]


def test_each_hears_the_others_and_not_itself() -> None:
    """Three far ends send 400, 700 and 1100 Hz: each receives the other
    two tones and (almost) nothing at its own frequency, one frame per tick
    on one SSRC/sequence/timestamp line with the marker on the first."""
    room = three()
    room.run(50, "abc")
    for name, others in (("a", "bc"), ("b", "ac"), ("c", "ab")):
        packets = room.packets(name)
        assert len(packets) == 50
        assert len({p.ssrc for p in packets}) == 1
        pairs = list(itertools.pairwise(packets))
        assert [(q.sequence - p.sequence) & 0xFFFF for p, q in pairs] == [1] * 49
        assert [(q.timestamp - p.timestamp) & 0xFFFFFFFF for p, q in pairs] == [160] * 49
        assert [p.marker for p in packets] == [True] + [False] * 49
        assert {p.payload_type for p in packets} == {0}
        room.assert_hears(name, present=others, absent=name)
    stats = room.core.stats()
    assert (stats["rooms"], stats["participants"]) == (1, 3)
    assert stats["mixed_frames"] == 150 and stats["mixed_in"] == 150
    assert stats["dropped_unconnected"] == 0


def test_a_muted_participant_is_not_heard_but_hears() -> None:
    """b muted: a and c do not hear its tone; b still hears both.  Unmuted,
    it is heard again."""
    room = three()
    room.core.mute("b", True)
    room.run(40, "abc")
    room.assert_hears("a", present="c", absent="ab")
    room.assert_hears("c", present="a", absent="bc")
    room.assert_hears("b", present="ac", absent="b")
    room.core.mute("b", False)
    room.run(40, "abc")
    room.assert_hears("a", present="bc", absent="a", skip=41)


def test_joining_muted() -> None:
    """join_room(muted=True) keeps the participant out of the mix."""
    room = Room()
    room.add("a", 400.0)
    room.add("b", 700.0, muted=True)
    room.run(30, "ab")
    room.assert_hears("a", present="", absent="ab")
    room.assert_hears("b", present="a", absent="b")


def test_a_pcma_participant_hears_pcma() -> None:
    """b's far end takes only PCMA: it is sent PCMA (its payload type) and
    its PCMA tone reaches the PCMU participants."""
    room = three(b=(PCMA,))
    room.run(40, "abc")
    assert {p.payload_type for p in room.packets("b")} == {8}
    assert {p.payload_type for p in room.packets("a")} == {0}
    room.assert_hears("b", present="ac", absent="b")
    room.assert_hears("a", present="bc", absent="a")


def test_the_far_ends_first_g711_format_is_used() -> None:
    """A far end listing PCMA before PCMU gets PCMA, with its own number."""
    room = Room()
    room.add("a", 400.0, formats=(MediaFormat(8, "PCMA", 8000), PCMU))
    room.add("b", 700.0)
    room.run(5, "ab")
    assert {p.payload_type for p in room.packets("a")} == {8}


def test_a_far_end_without_g711_stays_deaf_and_is_reported_once() -> None:
    """A participant whose far end takes only G.722 is sent nothing (one
    notice), while the others still hear each other."""
    notices: list[tuple[str, dict[str, object]]] = []
    room = Room(notice=lambda what, **fields: notices.append((what, fields)))
    room.add("a", 400.0)
    room.add("b", 700.0)
    room.add("g", 1100.0, formats=(G722,))
    room.run(30, "ab")
    assert room.packets("g") == []
    assert notices == [("deaf", {"endpoint_id": "g", "room": "r", "formats": "G722"})]
    room.assert_hears("a", present="b", absent="a")


def test_leaving_and_release() -> None:
    """A participant that leaves is no longer sent the mix nor heard in it;
    releasing an endpoint takes it out of its room; the last one out
    removes the room; leaving when in none answers 0."""
    room = three()
    room.run(10, "abc")
    assert room.core.leave_room("c") == 2
    assert room.core.leave_room("c") == 0
    before = len(room.packets("c"))
    room.run(40, "abc")
    assert len(room.packets("c")) == before
    room.assert_hears("a", present="b", absent="ac", skip=11)
    assert room.core.stats()["participants"] == 2
    room.core.remove_endpoint("b", room.t)
    assert room.core.stats()["participants"] == 1
    room.core.remove_endpoint("a", room.t)
    assert room.core.stats()["rooms"] == 0
    assert room.core.conference.rooms == {}


def test_silence_frames_keep_flowing_when_nobody_speaks() -> None:
    """Nobody sends (not even latched yet): each far end is still sent one
    frame of encoded silence per tick, at its SDP address: its jitter
    buffer stays fed."""
    room = three(b=(PCMA,))
    room.run(20)
    for name in "abc":
        packets = room.packets(name)
        assert len(packets) == 20
        silence = b"\xd5" * FRAME if name == "b" else b"\xff" * FRAME
        assert {p.payload for p in packets} == {silence}
        assert {addr for _, addr in room.h.wire.datagrams(f"{name}/0/rtp")} == {room.far[name]}


def test_mix_goes_to_the_latched_address() -> None:
    """A far end behind a NAT sends from another port: the mix follows the
    latch, as relayed media does."""
    room = Room()
    room.add("a", 400.0)
    room.add("b", 700.0)
    nat = (room.far["a"][0], 31000)
    room.far["a"] = nat
    room.run(5, "ab")
    assert room.h.wire.datagrams("a/0/rtp")[-1][1] == nat


def test_a_fast_sender_does_not_drift() -> None:
    """A far end sending two frames per tick fills its queue to the bound
    and no further; the others still get one frame per tick; when it stops,
    its voice is gone within the queue's length."""
    room = Room()
    room.add("a", 400.0)
    room.add("b", 700.0)
    room.run(100, "a", per_tick=2)
    participant = room.h.stream("a").participant
    assert participant is not None
    assert participant.queue.queued <= MAX_QUEUED
    assert room.core.counters["mix_overflow"] > 0
    assert len(room.packets("b")) == 100
    room.run(MAX_QUEUED // FRAME)
    room.run(10)
    tail = room.heard("b")[-10 * FRAME:]
    assert not np.any(np.abs(tail) > 8)


def test_a_queue_is_bounded_and_takes_frames() -> None:
    """SampleQueue: a frame at a time, None when less than a frame waits,
    oldest samples dropped beyond the limit."""
    queue = SampleQueue(limit=400)
    assert queue.take() is None
    assert queue.push(np.arange(100, dtype=np.int16)) == 0
    assert queue.take() is None
    assert queue.push(np.arange(100, 500, dtype=np.int16)) == 100
    frame = queue.take()
    assert frame is not None and frame[0] == 100 and len(frame) == FRAME
    assert queue.queued == 240


def test_joining_disconnects_a_peer() -> None:
    """An endpoint connected to another is disconnected when it joins: its
    old peer gets nothing more from it; connecting it again takes it out of
    the room."""
    room = Room()
    room.add("a", 400.0, room=None)
    room.add("x", 900.0, room=None)
    room.core.connect("a", "x")
    room.run(3, "a")
    assert len(room.packets("x")) == 3
    room.add("b", 700.0)
    assert room.core.join_room("r", "a") == 2
    assert room.core.endpoints["x"].peer is None
    room.run(10, "ab")
    assert len(room.packets("x")) == 3
    room.assert_hears("b", present="a", absent="b")
    room.core.connect("a", "x")
    assert room.core.room_of("a") is None
    assert room.core.stats()["participants"] == 1


def test_joining_another_room_leaves_the_first() -> None:
    """An endpoint is in one room at a time; joining its own room again
    only changes whether it is muted."""
    room = three()
    assert room.core.join_room("other", "c") == 1
    assert room.core.stats()["rooms"] == 2
    assert room.core.join_room("r", "a", muted=True) == 2
    room.run(30, "abc")
    room.assert_hears("b", present="", absent="abc")
    assert len(room.packets("c")) == 30


def test_playback_takes_precedence_over_the_mix() -> None:
    """While a tone plays to a, it gets the tone and no mix frames; when the
    tone ends the mix comes back with the marker, on the same line."""
    room = three()
    room.run(5, "abc")
    room.core.play("a", TonePlayer("p1", Tone.parse("!1000/200"), PCMU_CODEC, 0), room.t)
    room.run(30, "abc")
    packets = room.packets("a")
    assert len(packets) == 35
    assert len({p.ssrc for p in packets}) == 1
    assert all((q.sequence - p.sequence) & 0xFFFF == 1 for p, q in itertools.pairwise(packets))
    tone = np.concatenate([PCMU_CODEC.decode(p.payload) for p in packets[6:14]])
    assert band(tone, 1000.0) > 100 * (band(tone, 700.0) + band(tone, 1100.0))
    assert [e.detail for e in room.h.kinds("play_done")] == ["finished"]
    resumed = [i for i, p in enumerate(packets) if p.marker]
    assert resumed[0] == 0 and len(resumed) == 3  # mix, tone, mix again
    room.assert_hears("a", present="bc", absent="a", skip=resumed[2] + 1)
    room.assert_hears("b", present="ac", absent="b")


def test_dtmf_from_a_participant_is_reported() -> None:
    """A participant's RFC 4733 key press is a dtmf event (a script can
    offer mute/leave keys) and is not mixed as audio."""
    room = three()
    events = [TelephoneEvent(5, False, 10, d).serialize() for d in (160, 320, 480)]
    events += [TelephoneEvent(5, True, 10, 640).serialize()] * 3
    stream = room.h.stream("a")
    for i, payload in enumerate(events):
        room.core.receive_rtp(stream, rtp(100 + i, 8000, pt=101, payload=payload,
                                          marker=i == 0), room.far["a"], room.t)
        room.run(1)
    [event] = room.h.kinds("dtmf")
    assert (event.endpoint_id, event.digit, event.source) == ("a", "5", "rfc4733")
    assert {p.payload for p in room.packets("b")} == {b"\xff" * FRAME}


def test_recording_a_participant(tmp_path: Path) -> None:
    """A recording of a participant has what its far end sends on the left
    and the mix it hears on the right."""
    room = three()
    path = tmp_path / "a.wav"
    room.core.record("a", Recorder.open("rec", "a", str(path), DECODERS, room.t), room.t)
    room.run(40, "abc")
    room.core.stop_record("rec", room.t)
    with wave.open(str(path), "rb") as f:
        frames = np.frombuffer(f.readframes(f.getnframes()), dtype="<i2").reshape(-1, 2)
    left, right = frames[FRAME:, 0], frames[FRAME:, 1]
    assert band(left, 400.0) > 1000 * band(left, 700.0)
    assert band(right, 700.0) > 1000 * band(right, 400.0)
    assert band(right, 1100.0) > 1000 * band(right, 400.0)


def test_hold_pauses_the_mix_and_resume_marks_it() -> None:
    """A far end on hold (sendonly) is sent nothing; after it resumes, the
    mix comes back with the marker bit, still hearing the others."""
    room = three()
    room.run(5, "abc")
    room.core.set_remote("a", [remote(*room.far["a"], direction=MediaDirection.SENDONLY)],
                         room.t)
    room.run(10, "bc")
    assert len(room.packets("a")) == 5
    room.core.set_remote("a", [remote(*room.far["a"])], room.t)
    room.run(20, "abc")
    packets = room.packets("a")
    assert len(packets) == 25 and packets[5].marker
    assert (packets[5].timestamp - packets[4].timestamp) & 0xFFFFFFFF >= 10 * FRAME


def test_a_stall_catches_up_a_few_frames() -> None:
    """After a long pause of the pacer a tick sends at most a few frames,
    then the room carries on at one frame per tick."""
    room = Room()
    room.add("a", 400.0)
    room.add("b", 700.0)
    room.run(3)
    room.t += 1.0
    room.run(3)
    assert 6 < len(room.packets("a")) <= 3 + 5 + 3


def test_errors() -> None:
    """Unknown endpoints are 404 for join, leave and mute; an endpoint
    without audio is 488; an empty room name 400; muting an endpoint in no
    room does nothing."""
    room = Room()
    room.add("a", 400.0, room=None)
    room.h.add("v", kinds=("video",))
    for call in (lambda: room.core.join_room("r", "nope"),
                 lambda: room.core.leave_room("nope"),
                 lambda: room.core.mute("nope", True)):
        with pytest.raises(MediaError) as caught:
            call()
        assert caught.value.status == 404
    with pytest.raises(MediaError) as caught:
        room.core.join_room("r", "v")
    assert caught.value.status == 488
    with pytest.raises(MediaError) as caught:
        room.core.join_room("", "a")
    assert caught.value.status == 400
    room.core.mute("a", True)
    assert room.core.room_of("a") is None


def test_fifty_participants() -> None:
    """A room of 50, each far end a tone of its own (100 + 70k Hz): every
    one hears its neighbours and not itself."""
    room = Room()
    names = [f"p{k}" for k in range(50)]
    for k, name in enumerate(names):
        room.add(name, 100.0 + 70.0 * k)
    for _ in range(25):
        for name in names:
            room.send(name, amplitude=600.0)
        room.core.tick(room.t)
        room.t += TICK
    for k, name in enumerate(names):
        samples = room.heard(name)
        assert len(samples) == 25 * FRAME
        own = band(samples, room.freq[name])
        neighbour = band(samples, room.freq[names[(k + 1) % 50]])
        assert neighbour > 100 * own, name
    assert room.core.stats()["mixed_frames"] == 50 * 25
