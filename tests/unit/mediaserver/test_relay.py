"""Unit tests of the relay in :mod:`telavox.mediaserver.relay`: payload-type
translation, G.711 transcoding, output continuity across source changes,
RFC 4733 reporting, RTCP SSRC rewriting, video, inactivity."""

from __future__ import annotations

import numpy as np
import pytest

from telavox.audio.tones import Tone, dtmf_tone
from telavox.interfaces import MediaError
from telavox.mediaserver.playback import TonePlayer
from telavox.records import MediaDirection
from telavox.rtp.codecs import PCMA as PCMA_CODEC
from telavox.rtp.codecs import PCMU as PCMU_CODEC
from telavox.rtp.dtmf import TelephoneEvent
from telavox.rtp.rtcp import ReceiverReport, ReportBlock, SenderReport, parse_compound

from .support import (
    H264,
    H264_B,
    PCMA,
    PCMU,
    TE96,
    TE101,
    Harness,
    dominant_frequency,
    remote,
    rtp,
    sine,
)

A_FAR = ("192.0.2.10", 4000)
B_FAR = ("192.0.2.20", 6000)
C_FAR = ("192.0.2.30", 8000)


def connected(a_formats=(PCMU, TE101), b_formats=(PCMU, TE101), **options: object
              ) -> Harness:  # type: ignore[no-untyped-def]
    h = Harness(**options)
    h.add("a")
    h.add("b")
    h.core.set_remote("a", [remote(*A_FAR, formats=a_formats)], 0.0)
    h.core.set_remote("b", [remote(*B_FAR, formats=b_formats)], 0.0)
    h.core.connect("a", "b")
    return h


def test_payload_types_are_translated_by_name() -> None:
    """telephone-event is 101 on one side and 96 on the other: each packet
    leaves with the number its receiver uses, both ways; PCMU keeps 0."""
    h = connected(b_formats=(PCMU, TE96))
    event = TelephoneEvent(5, duration=160).serialize()
    h.core.receive_rtp(h.stream("a"), rtp(1, 160, pt=101, payload=event, marker=True), A_FAR,
                       0.0)
    h.core.receive_rtp(h.stream("a"), rtp(2, 160, pt=0), A_FAR, 0.02)
    h.core.receive_rtp(h.stream("b"), rtp(9, 900, ssrc=2, pt=96, payload=event), B_FAR, 0.0)
    to_b = h.wire.packets("b/0/rtp")
    to_a = h.wire.packets("a/0/rtp")
    assert [p.payload_type for p in to_b] == [96, 0]
    assert to_b[0].payload == event
    assert [p.payload_type for p in to_a] == [101]


def test_an_endpoint_connected_to_itself_echoes() -> None:
    """The echo test: what the far end sends comes back to it, payload
    unchanged, on one SSRC/sequence line of our own; disconnecting stops it."""
    h = Harness()
    h.add("a")
    h.core.set_remote("a", [remote(*A_FAR)], 0.0)
    h.core.connect("a", "a")
    for i in range(3):
        h.core.receive_rtp(h.stream("a"), rtp(10 + i, 160 * i, payload=bytes([i]) * 160),
                           A_FAR, i * 0.02)
    back = h.wire.packets("a/0/rtp")
    assert [p.payload[0] for p in back] == [0, 1, 2]
    assert len({p.ssrc for p in back}) == 1
    assert [p.sequence - back[0].sequence for p in back] == [0, 1, 2]
    h.core.disconnect("a")
    h.core.receive_rtp(h.stream("a"), rtp(13, 480), A_FAR, 0.08)
    assert len(h.wire.packets("a/0/rtp")) == 3


def test_pcmu_is_transcoded_to_pcma() -> None:
    """When b's far end took only PCMA, PCMU from a is transcoded: the
    samples b decodes are a's samples to within G.711 quantisation."""
    h = connected(b_formats=(PCMA,))
    original = sine(1000.0, amplitude=12000)
    payload = PCMU_CODEC.encode(original)
    h.core.receive_rtp(h.stream("a"), rtp(1, 160, payload=payload), A_FAR, 0.0)
    [packet] = h.wire.packets("b/0/rtp")
    assert packet.payload_type == 8 and len(packet.payload) == 160
    decoded = PCMA_CODEC.decode(packet.payload).astype(np.int32)
    reference = PCMU_CODEC.decode(payload).astype(np.int32)
    assert np.max(np.abs(decoded - reference)) <= 0.04 * 12000
    assert np.max(np.abs(decoded - original)) <= 0.05 * 12000
    assert h.core.counters["transcoded"] == 1


def test_pcma_is_transcoded_to_pcmu() -> None:
    """And the other way round."""
    h = connected(a_formats=(PCMA, TE101))
    original = sine(440.0)
    h.core.receive_rtp(h.stream("a"), rtp(1, 160, pt=8, payload=PCMA_CODEC.encode(original)),
                       A_FAR, 0.0)
    [packet] = h.wire.packets("b/0/rtp")
    assert packet.payload_type == 0
    assert abs(dominant_frequency(PCMU_CODEC.decode(packet.payload)) - 440) < 60


def test_a_format_the_peer_cannot_take_is_dropped() -> None:
    """G.729 from a when b took only PCMU: dropped and counted; so is
    telephone-event to a far end that did not negotiate it."""
    h = connected(b_formats=(PCMU,))
    h.core.receive_rtp(h.stream("a"), rtp(1, 160, pt=18, payload=b"\x00" * 20), A_FAR, 0.0)
    h.core.receive_rtp(h.stream("a"), rtp(2, 160, pt=101,
                                          payload=TelephoneEvent(1).serialize()), A_FAR, 0.02)
    assert h.wire.packets("b/0/rtp") == []
    assert h.core.counters["dropped_format"] == 2


def test_output_keeps_one_line_when_the_peer_changes() -> None:
    """c hears a, then (re-connect, as after a transfer) b: what c's far end
    receives has one SSRC, consecutive sequence numbers, a timestamp that
    advances by the time elapsed, and the marker on the first packet of b."""
    h = connected()
    h.add("c")
    h.core.set_remote("c", [remote(*C_FAR)], 0.0)
    h.core.connect("c", "a")
    a, b = h.stream("a"), h.stream("b")
    for i in range(5):
        h.core.receive_rtp(a, rtp(100 + i, 5000 + 160 * i, ssrc=0xA), A_FAR, 0.02 * i)
    h.core.connect("c", "b")
    assert h.core.endpoints["a"].peer is None
    for i in range(5):
        h.core.receive_rtp(b, rtp(60000 + i, 9_000_000 + 160 * i, ssrc=0xB), B_FAR,
                           0.5 + 0.02 * i)
    out = h.wire.packets("c/0/rtp")
    assert len(out) == 10
    assert len({p.ssrc for p in out}) == 1
    assert out[0].ssrc not in (0xA, 0xB)
    seqs = [p.sequence for p in out]
    assert all((seqs[i + 1] - seqs[i]) & 0xFFFF == 1 for i in range(9))
    ts = [p.timestamp for p in out]
    assert all((ts[i + 1] - ts[i]) & 0xFFFFFFFF == 160 for i in range(4))
    assert (ts[5] - ts[4]) & 0xFFFFFFFF == round((0.5 - 0.08) * 8000)
    assert out[5].marker and not any(p.marker for p in out[1:5])


def test_output_keeps_one_line_around_a_prompt() -> None:
    """While a tone plays to b's far end, a's media for it is dropped; the
    tone and the relayed media before and after form one stream; the tone
    finishes with play_done."""
    h = connected()
    a = h.stream("a")
    t = 0.0
    seq = 0
    for _ in range(3):
        h.core.receive_rtp(a, rtp(seq, seq * 160, ssrc=0xA), A_FAR, t)
        seq += 1
        t += 0.02
    player = TonePlayer("p1", Tone.parse("!1000/100"), PCMU_CODEC, 0)
    h.core.play("b", player, t)
    for _ in range(8):
        h.core.receive_rtp(a, rtp(seq, seq * 160, ssrc=0xA), A_FAR, t)
        seq += 1
        t += 0.02
        h.core.tick(t)
    assert [e.detail for e in h.kinds("play_done")] == ["finished"]
    assert h.kinds("play_done")[0].source == "p1"
    for _ in range(3):
        h.core.receive_rtp(a, rtp(seq, seq * 160, ssrc=0xA), A_FAR, t)
        seq += 1
        t += 0.02
    out = h.wire.packets("b/0/rtp")
    assert len({p.ssrc for p in out}) == 1
    seqs = [p.sequence for p in out]
    assert all((seqs[i + 1] - seqs[i]) & 0xFFFF == 1 for i in range(len(seqs) - 1))
    ts = [p.timestamp for p in out]
    assert all(0 < (ts[i + 1] - ts[i]) & 0xFFFFFFFF < 8000 for i in range(len(ts) - 1))
    tone = np.concatenate([PCMU_CODEC.decode(p.payload) for p in out[3:8]])
    assert abs(dominant_frequency(tone) - 1000) < 20
    assert h.core.counters["dropped_playing"] >= 4
    assert out[3].marker


def test_a_new_play_stops_the_old_one() -> None:
    """A play replacing one in progress ends it with play_done stopped;
    stop_play ends the new one the same way."""
    h = connected()
    h.core.play("b", TonePlayer("p1", Tone.parse("440"), PCMU_CODEC, 0), 0.0)
    h.core.play("b", TonePlayer("p2", Tone.parse("440"), PCMU_CODEC, 0), 0.1)
    h.core.stop_play("b", 0.2)
    h.core.stop_play("b", 0.3)
    assert [(e.source, e.detail) for e in h.kinds("play_done")] == [
        ("p1", "stopped"), ("p2", "stopped")]


def test_dtmf_is_reported_once_per_press() -> None:
    """A key press (start with marker, updates, three redundant end packets)
    is one dtmf event with its digit and duration; every packet is still
    relayed."""
    h = connected(b_formats=(PCMU, TE96))
    a = h.stream("a")
    packets = [TelephoneEvent(11, False, 10, d).serialize() for d in (160, 320, 480, 640)]
    packets += [TelephoneEvent(11, True, 10, 800).serialize()] * 3
    for i, payload in enumerate(packets):
        h.core.receive_rtp(a, rtp(10 + i, 16000, pt=101, payload=payload, marker=i == 0),
                           A_FAR, 0.02 * i)
    [event] = h.kinds("dtmf")
    assert (event.digit, event.duration_ms, event.source) == ("#", 100, "rfc4733")
    assert len(h.wire.packets("b/0/rtp")) == 7
    # a second press of the same key with a new timestamp is a new event
    for i, payload in enumerate(packets):
        h.core.receive_rtp(a, rtp(20 + i, 32000, pt=101, payload=payload, marker=i == 0),
                           A_FAR, 1.0 + 0.02 * i)
    assert [e.digit for e in h.kinds("dtmf")] == ["#", "#"]


def test_dtmf_whose_end_was_lost_ends_by_timeout() -> None:
    """A press whose end packets are all lost is reported by the sweep."""
    h = connected()
    a = h.stream("a")
    for i in range(3):
        h.core.receive_rtp(a, rtp(i, 800, pt=101, marker=i == 0,
                                  payload=TelephoneEvent(7, False, 10, 160 * (i + 1)).serialize()),
                           A_FAR, 0.02 * i)
    h.core.tick(0.1)
    assert h.kinds("dtmf") == []
    h.core.tick(1.0)
    [event] = h.kinds("dtmf")
    assert event.digit == "7"


def test_inband_dtmf_is_detected_without_telephone_event() -> None:
    """A far end without telephone-event that plays a DTMF tone in band is
    heard by the Goertzel detector: one dtmf event, source inband."""
    h = connected(a_formats=(PCMU,), b_formats=(PCMU,))
    samples = np.concatenate([dtmf_tone("5", 120), np.zeros(800, dtype=np.int16)])
    a = h.stream("a")
    for i in range(len(samples) // 160):
        payload = PCMU_CODEC.encode(samples[i * 160:(i + 1) * 160])
        h.core.receive_rtp(a, rtp(i, i * 160, payload=payload), A_FAR, 0.02 * i)
    [event] = h.kinds("dtmf")
    assert (event.digit, event.source) == ("5", "inband")
    assert 90 <= event.duration_ms <= 130


def test_rtcp_is_relayed_with_ssrcs_rewritten() -> None:
    """An RR from a's far end reaches b's far end sent by the SSRC b's far
    end hears, and reporting about the SSRC b's far end sends with (the one
    a's far end heard was the relay's)."""
    h = connected()
    a, b = h.stream("a"), h.stream("b")
    h.core.receive_rtp(a, rtp(1, 160, ssrc=0xAAAA), A_FAR, 0.0)
    h.core.receive_rtp(b, rtp(1, 160, ssrc=0xBBBB), B_FAR, 0.0)
    [to_a] = h.wire.packets("a/0/rtp")
    rr = ReceiverReport(0xAAAA, (ReportBlock(to_a.ssrc, 0, 0, 1, 0, 0, 0),)).serialize()
    h.core.receive_rtcp(a, rr, ("192.0.2.10", 4001), 0.5)
    [(data, addr)] = h.wire.datagrams("b/0/rtcp")
    assert addr == ("192.0.2.20", 6001)
    [packet] = parse_compound(data)
    assert isinstance(packet, ReceiverReport)
    assert packet.ssrc == b.output.ssrc
    assert packet.reports[0].ssrc == 0xBBBB
    assert h.core.counters["rtcp_relayed"] == 1


def test_sender_report_timestamp_follows_the_rewrite() -> None:
    """An SR's RTP timestamp moves by the offset the relay applies to that
    sender's RTP, so lip sync and RTT stay right at the other end."""
    h = connected()
    a = h.stream("a")
    h.core.receive_rtp(a, rtp(1, 1000, ssrc=0xAAAA), A_FAR, 0.0)
    [relayed] = h.wire.packets("b/0/rtp")
    sr = SenderReport(0xAAAA, 0, 1000, 1, 160).serialize()
    h.core.receive_rtcp(a, sr, ("192.0.2.10", 4001), 0.1)
    [(data, _)] = h.wire.datagrams("b/0/rtcp")
    [packet] = parse_compound(data)
    assert isinstance(packet, SenderReport)
    assert packet.rtp_timestamp == relayed.timestamp


def test_rtcp_mux_shares_the_rtp_port() -> None:
    """With rtcp-mux, RTCP arrives on the RTP port under the RTP latch and
    leaves on the peer's RTP port when the peer muxes too."""
    h = Harness()
    h.add("a")
    h.add("b")
    h.core.set_remote("a", [remote(*A_FAR, rtcp_mux=True)], 0.0)
    h.core.set_remote("b", [remote(*B_FAR, rtcp_mux=True)], 0.0)
    h.core.connect("a", "b")
    a = h.stream("a")
    h.core.receive_rtp(a, rtp(1, 160, ssrc=0xAAAA), A_FAR, 0.0)
    rr = ReceiverReport(0xAAAA).serialize()
    h.core.receive_rtp(a, rr, A_FAR, 0.1)
    datagrams = h.wire.datagrams("b/0/rtp")
    assert len(datagrams) == 2
    assert datagrams[1][1] == B_FAR
    assert isinstance(parse_compound(datagrams[1][0])[0], ReceiverReport)


def test_video_is_relayed_codec_agnostic() -> None:
    """A video stream is relayed with its payload type translated by name
    (H264 97 → 120) and its payload untouched."""
    h = Harness()
    h.add("a", ("audio", "video"))
    h.add("b", ("audio", "video"))
    h.core.set_remote("a", [remote(*A_FAR), remote("192.0.2.10", 4100, formats=(H264,),
                                                   kind="video")], 0.0)
    h.core.set_remote("b", [remote(*B_FAR), remote("192.0.2.20", 6100, formats=(H264_B,),
                                                   kind="video")], 0.0)
    h.core.connect("a", "b")
    nal = bytes(range(200))
    h.core.receive_rtp(h.stream("a", 1), rtp(1, 90000, pt=97, payload=nal, marker=True),
                       ("192.0.2.10", 4100), 0.0)
    [packet] = h.wire.packets("b/1/rtp")
    assert (packet.payload_type, packet.payload) == (120, nal)
    assert h.wire.packets("b/0/rtp") == []


def run_ticks(h: Harness, start: float, end: float, step: float = 0.1) -> None:
    for i in range(round((end - start) / step) + 1):
        h.core.tick(start + i * step)


def test_inactivity_is_reported_once() -> None:
    """No RTP or RTCP for the timeout on a sendrecv stream: one inactive
    event (at most one sweep interval late); none again until media came
    back and stopped again."""
    h = Harness(inactivity_timeout=10.0)
    h.add("a")
    h.core.set_remote("a", [remote(*A_FAR)], 0.0)
    run_ticks(h, 0.0, 9.9)
    assert h.kinds("inactive") == []
    run_ticks(h, 10.0, 19.9)
    [event] = h.kinds("inactive")
    assert (event.endpoint_id, event.detail) == ("a", "audio")
    assert 10.0 <= event.timestamp <= 10.5
    h.core.receive_rtp(h.stream("a"), rtp(1, 160), A_FAR, 20.0)
    run_ticks(h, 20.0, 29.9)
    assert len(h.kinds("inactive")) == 1
    run_ticks(h, 30.0, 31.0)
    assert len(h.kinds("inactive")) == 2


@pytest.mark.parametrize("direction", [MediaDirection.SENDONLY, MediaDirection.RECVONLY,
                                       MediaDirection.INACTIVE])
def test_no_inactivity_on_hold(direction: MediaDirection) -> None:
    """A stream on hold or inactive expects no media: no inactive event."""
    h = Harness(inactivity_timeout=10.0)
    h.add("a")
    h.core.set_remote("a", [remote(*A_FAR, direction=direction)], 0.0)
    h.core.tick(100.0)
    assert h.kinds("inactive") == []


def test_rtcp_counts_as_activity() -> None:
    """RTCP alone keeps a stream from being inactive."""
    h = Harness(inactivity_timeout=10.0)
    h.add("a")
    h.core.set_remote("a", [remote(*A_FAR)], 0.0)
    rr = ReceiverReport(0xAAAA).serialize()
    for t in range(1, 30, 5):
        h.core.receive_rtcp(h.stream("a"), rr, ("192.0.2.10", 4001), float(t))
        h.core.tick(t + 0.5)
    assert h.kinds("inactive") == []


def test_errors_carry_statuses() -> None:
    """Unknown endpoints are 404, a description that does not fit is 488."""
    h = Harness()
    h.add("a")
    with pytest.raises(MediaError) as caught:
        h.core.connect("a", "nope")
    assert caught.value.status == 404
    with pytest.raises(MediaError) as caught:
        h.core.set_remote("a", [remote(), remote()], 0.0)
    assert caught.value.status == 488
    with pytest.raises(MediaError) as caught:
        h.core.set_remote("a", [remote(kind="video", formats=(H264,))], 0.0)
    assert caught.value.status == 488


def test_release_gives_stats_and_stops_everything() -> None:
    """Removing an endpoint disconnects its peer and returns its counters
    (packets, latch, codec, loss)."""
    h = connected()
    a = h.stream("a")
    for seq in (1, 2, 4, 5):  # seq 3 lost
        h.core.receive_rtp(a, rtp(seq, seq * 160), A_FAR, seq * 0.02)
    stats = h.core.remove_endpoint("a", 1.0)
    [s] = stats.streams
    assert (s.kind, s.packets_in, s.packets_lost, s.latched, s.codec) == (
        "audio", 4, 1, "192.0.2.10:4000", "PCMU")
    assert h.core.endpoints["b"].peer is None
    assert h.core.remove_endpoint("a", 1.0).streams == ()


def test_a_removed_endpoint_is_freed_without_the_cyclic_collector() -> None:
    """Its streams pointed back at it; once removed, nothing of it is left
    in a reference cycle (a SIP server removes two endpoints per call)."""
    import gc

    gc.collect()
    gc.disable()
    try:
        h = connected()
        a = h.stream("a")
        h.core.receive_rtp(a, rtp(1, 160), A_FAR, 0.02)
        del a
        h.core.remove_endpoint("a", 1.0)
        h.core.remove_endpoint("b", 1.0)
        assert gc.collect() == 0
    finally:
        gc.enable()


def test_stats_have_the_counters() -> None:
    """stats() has the relay counters and the gauges."""
    h = connected()
    h.core.receive_rtp(h.stream("a"), rtp(1, 160), A_FAR, 0.0)
    stats = h.core.stats()
    assert stats["rtp_relayed"] == 1 and stats["endpoints"] == 2 and stats["connected"] == 1


def test_late_packet_from_before_a_splice_is_dropped() -> None:
    """A late packet of a source from before the splice would reuse a
    sequence number: dropped."""
    h = connected()
    a = h.stream("a")
    h.core.receive_rtp(a, rtp(10, 1600), A_FAR, 0.0)
    h.core.receive_rtp(a, rtp(11, 1760), A_FAR, 0.02)
    h.core.play("b", TonePlayer("p", Tone.parse("!440/20"), PCMU_CODEC, 0), 0.04)
    h.core.tick(0.06)
    h.core.receive_rtp(a, rtp(12, 1920), A_FAR, 0.08)
    h.core.receive_rtp(a, rtp(9, 1440), A_FAR, 0.09)  # older than the splice
    assert h.core.counters["dropped_late"] == 1
    assert len(h.wire.packets("b/0/rtp")) == 4
