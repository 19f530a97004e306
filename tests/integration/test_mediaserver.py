"""The mediaserver over real UDP sockets on loopback: two fake phones talking
through two connected endpoints, latching, a stranger's packets, port-range
exhaustion, release, playback of a tone and recording of a call.

Every wait is bounded; after every scenario the mediaserver has no endpoint
left and every port it used can be bound again (its sockets are closed)."""

from __future__ import annotations

import itertools
import random
import shutil
import socket
import tempfile
import wave
from collections.abc import Generator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from twisted.internet import defer, reactor, task
from twisted.internet.interfaces import IListeningPort
from twisted.internet.protocol import DatagramProtocol
from twisted.trial import unittest
from zope.interface.verify import verifyObject

from telavox.interfaces import IMediaServer, ISubscription, MediaError
from telavox.mediaserver import MediaServer
from telavox.records import MediaEndpoint, MediaEvent, MediaFormat, PlaySource, RemoteStream
from telavox.rtp.codecs import PCMU as PCMU_CODEC
from telavox.rtp.packet import RtpPacket

pytestmark = pytest.mark.integration

PCMU = MediaFormat(0, "PCMU", 8000)
TIMEOUT = 5.0
HOST = "127.0.0.1"


def sleep(seconds: float) -> defer.Deferred[None]:
    return task.deferLater(reactor, seconds, lambda: None)


def port_range(pairs: int) -> tuple[int, int]:
    """A random range of ``pairs`` even/odd pairs that nobody holds, below
    the kernel's ephemeral ports (32768 and up), whose random client ports
    would otherwise land in it."""
    for _ in range(50):
        low = random.randrange(20000, 30000 - 2 * pairs, 2)
        if all(bindable(port) for port in range(low, low + 2 * pairs)):
            return low, low + 2 * pairs - 1
    raise RuntimeError("no free port range")


def bindable(port: int) -> bool:
    """True when a UDP socket can bind 127.0.0.1:``port`` (nobody holds it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.bind((HOST, port))
        except OSError:
            return False
    return True


def dominant_frequency(samples: np.ndarray, rate: int = 8000) -> float:
    x = samples.astype(np.float64) * np.hanning(len(samples))
    spectrum = np.abs(np.fft.rfft(x))
    spectrum[0] = 0
    return float(np.argmax(spectrum) * rate / len(samples))


class Phone(DatagramProtocol):
    """A fake phone: a UDP socket that sends RTP and keeps what it gets."""

    noisy = False

    def __init__(self, host: str = HOST, ssrc: int = 0x1234) -> None:
        self.received: list[tuple[bytes, tuple[str, int]]] = []
        self.ssrc = ssrc
        self.seq = random.randrange(65536)
        self.ts = random.getrandbits(32)
        self.port: IListeningPort = reactor.listenUDP(0, self, interface=host)

    @property
    def number(self) -> int:
        return int(self.port.getHost().port)

    def datagramReceived(self, datagram: bytes, addr: Any) -> None:  # type: ignore[override]
        self.received.append((datagram, addr))

    def send_rtp(self, dest: tuple[str, int], payload: bytes = b"\xff" * 160,
                 tag: int | None = None) -> None:
        if tag is not None:
            payload = bytes([tag]) + payload[1:]
        packet = RtpPacket(0, self.seq, self.ts, self.ssrc, payload).serialize()
        self.seq = (self.seq + 1) & 0xFFFF
        self.ts = (self.ts + 160) & 0xFFFFFFFF
        assert self.transport is not None
        self.transport.write(packet, dest)

    def packets(self) -> list[RtpPacket]:
        return [RtpPacket.parse(data) for data, _ in self.received]

    def describe(self, port: int | None = None) -> RemoteStream:
        """What this phone's SDP says: loopback, its own port (or ``port``)."""
        return RemoteStream(kind="audio", address=HOST, port=port or self.number,
                            formats=(PCMU,), signalling_address=HOST)


class MediaServerTests(unittest.TestCase):
    """Scenarios against one MediaServer on loopback."""

    def make(self, pairs: int = 8, **options: Any) -> MediaServer:
        options.setdefault("inactivity_timeout", 0)
        options.setdefault("quarantine", 0.2)
        server = MediaServer(reactor, "sip1", HOST, rtp_ports=port_range(pairs), **options)
        server.start()
        self.used_ports: set[int] = set()
        self.addCleanup(self.check_clean, server)
        return server

    @defer.inlineCallbacks
    def check_clean(self, server: MediaServer) -> Generator[Any, Any, None]:
        yield server.stop()
        self.assertEqual(server.endpoint_ids(), [])
        yield sleep(0)
        for port in sorted(self.used_ports):
            self.assertTrue(bindable(port), f"port {port} left open")

    def phone(self, host: str = HOST, ssrc: int = 0x1234) -> Phone:
        phone = Phone(host, ssrc)
        self.addCleanup(phone.port.stopListening)
        return phone

    @defer.inlineCallbacks
    def allocate(self, server: MediaServer, owner: str = "call") -> Generator[Any, Any, Any]:
        endpoint = yield server.allocate(owner)
        assert isinstance(endpoint, MediaEndpoint)
        for stream in endpoint.streams:
            self.used_ports.update((stream.rtp_port, stream.rtcp_port))
        return endpoint

    @defer.inlineCallbacks
    def until(self, condition: Any, timeout: float = TIMEOUT) -> Generator[Any, Any, None]:
        """Wait (bounded) until ``condition()`` is true."""
        deadline = reactor.seconds() + timeout
        while not condition():
            if reactor.seconds() > deadline:
                self.fail("timed out waiting")
            yield sleep(0.01)

    @defer.inlineCallbacks
    def call(self, server: MediaServer) -> Generator[Any, Any, Any]:
        """Two phones, two endpoints described and connected."""
        pa, pb = self.phone(ssrc=0xAAAA), self.phone(ssrc=0xBBBB)
        a = yield self.allocate(server, "call-a")
        b = yield self.allocate(server, "call-b")
        yield server.set_remote(a.endpoint_id, (pa.describe(),))
        yield server.set_remote(b.endpoint_id, (pb.describe(),))
        yield server.connect(a.endpoint_id, b.endpoint_id)
        return pa, pb, a, b

    def check_line(self, packets: list[RtpPacket], original_ssrc: int) -> None:
        """One SSRC (the relay's), consecutive sequence numbers, 160 apart."""
        self.assertEqual(len({p.ssrc for p in packets}), 1)
        self.assertNotEqual(packets[0].ssrc, original_ssrc)
        for before, after in itertools.pairwise(packets):
            self.assertEqual((after.sequence - before.sequence) & 0xFFFF, 1)
            self.assertEqual((after.timestamp - before.timestamp) & 0xFFFFFFFF, 160)

    def test_provides_the_interface(self) -> None:
        """MediaServer provides IMediaServer, its subscriptions ISubscription."""
        server = self.make()
        self.assertTrue(verifyObject(IMediaServer, server))
        subscription = server.subscribe(lambda event: None)
        self.assertTrue(verifyObject(ISubscription, subscription))
        subscription.cancel()

    @defer.inlineCallbacks
    def test_two_phones_talk_through_the_relay(self) -> Generator[Any, Any, None]:
        """G.711 flows both ways through two connected endpoints; every packet
        arrives from the endpoint's advertised port with the relay's own
        SSRC and consecutive sequence numbers and timestamps."""
        server = self.make()
        pa, pb, a, b = yield self.call(server)
        a_port = a.streams[0].rtp_port
        b_port = b.streams[0].rtp_port
        for i in range(20):
            pa.send_rtp((HOST, a_port), tag=i)
            pb.send_rtp((HOST, b_port), tag=100 + i)
            yield sleep(0.002)
        yield self.until(lambda: len(pa.received) == 20 and len(pb.received) == 20)
        self.assertEqual({addr for _, addr in pb.received}, {(HOST, b_port)})
        self.assertEqual({addr for _, addr in pa.received}, {(HOST, a_port)})
        to_b, to_a = pb.packets(), pa.packets()
        self.check_line(to_b, 0xAAAA)
        self.check_line(to_a, 0xBBBB)
        self.assertEqual([p.payload[0] for p in to_b], list(range(20)))
        stats = server.stats()
        self.assertEqual(stats["rtp_relayed"], 40)
        self.assertEqual(stats["endpoints"], 2)
        released = yield server.release(a.endpoint_id)
        self.assertEqual(released.streams[0].packets_in, 20)
        self.assertEqual(released.streams[0].packets_out, 20)
        self.assertEqual(released.streams[0].latched, f"{HOST}:{pa.number}")

    @defer.inlineCallbacks
    def test_phone_sending_from_another_port_is_latched(self) -> Generator[Any, Any, None]:
        """A phone whose SDP names one port but which sends from another
        (NAT) is latched: media for it goes to the port it sends from."""
        server = self.make()
        events: list[MediaEvent] = []
        server.subscribe(events.append)
        pa, pb, a, b = yield self.call(server)
        decoy = self.phone()
        yield server.set_remote(a.endpoint_id, (pa.describe(port=decoy.number),))
        pb.send_rtp((HOST, b.streams[0].rtp_port))
        yield self.until(lambda: len(decoy.received) == 1)
        pa.send_rtp((HOST, a.streams[0].rtp_port))
        yield self.until(lambda: len(pb.received) == 1)
        pb.send_rtp((HOST, b.streams[0].rtp_port))
        yield self.until(lambda: len(pa.received) == 1)
        self.assertEqual(len(decoy.received), 1)
        yield self.until(lambda: any(e.kind == "latched" and e.endpoint_id == a.endpoint_id
                                     for e in events))
        latched = [e for e in events if e.kind == "latched" and e.endpoint_id == a.endpoint_id]
        self.assertEqual(latched[0].detail, f"{HOST}:{pa.number}")

    @defer.inlineCallbacks
    def test_a_stranger_never_reaches_the_other_phone(self) -> Generator[Any, Any, None]:
        """Packets from a stranger (another IP before latching; another IP or
        port after) never reach the other phone."""
        server = self.make()
        pa, pb, a, _b = yield self.call(server)
        a_rtp = (HOST, a.streams[0].rtp_port)
        outsider = self.phone("127.0.0.2", ssrc=0x6666)
        insider = self.phone(HOST, ssrc=0x7777)
        for _ in range(5):
            outsider.send_rtp(a_rtp, tag=0xEE)
        yield sleep(0.05)
        for i in range(5):
            pa.send_rtp(a_rtp, tag=i)
            yield sleep(0.002)
        yield self.until(lambda: len(pb.received) == 5)
        for _ in range(5):
            outsider.send_rtp(a_rtp, tag=0xEE)
            insider.send_rtp(a_rtp, tag=0xEE)
        pa.send_rtp(a_rtp, tag=5)
        yield self.until(lambda: len(pb.received) == 6)
        yield sleep(0.05)
        self.assertEqual([p.payload[0] for p in pb.packets()], list(range(6)))
        stats = server.stats()
        self.assertEqual(stats["dropped_unlatched"], 5)
        self.assertEqual(stats["dropped_stranger"], 10)

    @defer.inlineCallbacks
    def test_exhaustion_fails_allocate_but_the_call_flows(self) -> Generator[Any, Any, None]:
        """With every pair in use the next allocate fails with 503, and the
        existing relay keeps flowing."""
        server = self.make(pairs=2)
        pa, pb, a, _b = yield self.call(server)
        with self.assertRaises(MediaError) as caught:
            yield server.allocate("call-c")
        self.assertEqual(caught.exception.status, 503)
        for i in range(5):
            pa.send_rtp((HOST, a.streams[0].rtp_port), tag=i)
            yield sleep(0.002)
        yield self.until(lambda: len(pb.received) == 5)
        self.assertEqual(server.stats()["allocate_failures"], 1)

    @defer.inlineCallbacks
    def test_release_frees_the_ports(self) -> Generator[Any, Any, None]:
        """release closes the sockets at once (the ports can be bound again)
        and is idempotent; the pair comes back to the pool after the
        quarantine; unknown endpoints are 404."""
        server = self.make(pairs=1)
        a = yield self.allocate(server)
        rtp_port = a.streams[0].rtp_port
        self.assertFalse(bindable(rtp_port))
        yield server.release(a.endpoint_id)
        self.assertTrue(bindable(rtp_port) and bindable(rtp_port + 1))
        again = yield server.release(a.endpoint_id)
        self.assertEqual(again.streams, ())
        with self.assertRaises(MediaError) as caught:
            yield server.allocate("next")
        self.assertEqual(caught.exception.status, 503)
        with self.assertRaises(MediaError) as caught:
            yield server.connect(a.endpoint_id, "nope")
        self.assertEqual(caught.exception.status, 404)
        yield sleep(0.25)
        b = yield self.allocate(server)
        self.assertEqual(b.streams[0].rtp_port, rtp_port)

    @defer.inlineCallbacks
    def test_port_held_by_another_program_is_skipped(self) -> Generator[Any, Any, None]:
        """A pair whose port another program holds is skipped."""
        server = self.make(pairs=2)
        low = server.rtp_ports[0]
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as squatter:
            squatter.bind((HOST, low + 1))
            a = yield self.allocate(server)
            self.assertEqual(a.streams[0].rtp_port, low + 2)
            with self.assertRaises(MediaError):
                yield server.allocate("more")

    @defer.inlineCallbacks
    def test_play_a_tone(self) -> Generator[Any, Any, None]:
        """A 1 kHz tone played to an endpoint reaches its phone as PCMU at
        1 kHz, paced at 20 ms; stop_play ends it with play_done stopped."""
        server = self.make()
        events: list[MediaEvent] = []
        server.subscribe(events.append)
        phone = self.phone()
        a = yield self.allocate(server)
        yield server.set_remote(a.endpoint_id, (phone.describe(),))
        playback_id = yield server.play(a.endpoint_id, PlaySource(tone="1000"))
        started = reactor.seconds()
        yield self.until(lambda: len(phone.received) >= 20)
        elapsed = reactor.seconds() - started
        yield server.stop_play(a.endpoint_id)
        packets = phone.packets()
        self.assertTrue(0.3 <= elapsed <= 1.5, elapsed)
        samples = np.concatenate([PCMU_CODEC.decode(p.payload) for p in packets[:20]])
        self.assertAlmostEqual(dominant_frequency(samples), 1000.0, delta=10)
        self.check_line(packets[:20], 0)
        yield self.until(lambda: any(e.kind == "play_done" for e in events))
        [done] = [e for e in events if e.kind == "play_done"]
        self.assertEqual((done.detail, done.source), ("stopped", playback_id))
        count = len(phone.received)
        yield sleep(0.1)
        self.assertEqual(len(phone.received), count)

    @defer.inlineCallbacks
    def test_record_a_call(self) -> Generator[Any, Any, None]:
        """Recording an endpoint while its phone sends a 700 Hz tone and the
        other phone a 1500 Hz one gives a stereo WAV whose left channel holds
        the first (what the far end sent) and the right one the second (what
        it was sent); stop_record fires with the path and a record_done
        event follows."""
        server = self.make()
        events: list[MediaEvent] = []
        server.subscribe(events.append)
        pa, pb, a, b = yield self.call(server)
        folder = tempfile.mkdtemp(prefix="telavox-mediaserver-")
        self.addCleanup(shutil.rmtree, folder, True)
        path = str(Path(folder) / "call.wav")
        recording_id = yield server.record(a.endpoint_id, path)
        n = np.arange(8000)
        tone = (10000 * np.sin(2 * np.pi * 700 * n / 8000)).astype(np.int16)
        other = (10000 * np.sin(2 * np.pi * 1500 * n / 8000)).astype(np.int16)
        a_rtp = (HOST, a.streams[0].rtp_port)
        b_rtp = (HOST, b.streams[0].rtp_port)
        for i in range(25):
            pa.send_rtp(a_rtp, PCMU_CODEC.encode(tone[160 * i:160 * (i + 1)]))
            pb.send_rtp(b_rtp, PCMU_CODEC.encode(other[160 * i:160 * (i + 1)]))
            yield sleep(0.02)
        yield self.until(lambda: len(pb.received) == 25 and len(pa.received) == 25)
        yield sleep(0.06)
        done = yield server.stop_record(recording_id)
        self.assertEqual(done, path)
        with wave.open(path, "rb") as f:
            self.assertEqual((f.getnchannels(), f.getframerate(), f.getsampwidth()), (2, 8000, 2))
            frames = f.readframes(f.getnframes())
        pcm = np.frombuffer(frames, dtype="<i2").reshape(-1, 2)
        left, right = pcm[:, 0], pcm[:, 1]
        self.assertGreater(len(left), 20 * 160)
        self.assertGreater(int(np.abs(left).max()), 5000)
        self.assertAlmostEqual(dominant_frequency(left), 700.0, delta=10)
        self.assertGreater(int(np.abs(right).max()), 5000)
        self.assertAlmostEqual(dominant_frequency(right), 1500.0, delta=10)
        yield self.until(lambda: any(e.kind == "record_done" for e in events))
        with self.assertRaises(MediaError) as caught:
            yield server.stop_record(recording_id)
        self.assertEqual(caught.exception.status, 404)

    @defer.inlineCallbacks
    def test_three_phones_in_a_conference_room(self) -> Generator[Any, Any, None]:
        """Three phones send 400, 700 and 1100 Hz into one room: each gets
        20 ms frames from its endpoint's port on one SSRC line, holding the
        other two tones and not its own.  Muting, leaving and release work
        through the interface; unknown endpoints are 404."""
        server = self.make()
        freqs = (400.0, 700.0, 1100.0)
        phones = [self.phone(ssrc=0x100 + i) for i in range(3)]
        endpoints = []
        counts = []
        for phone in phones:
            endpoint = yield self.allocate(server, "conf")
            yield server.set_remote(endpoint.endpoint_id, (phone.describe(),))
            count = yield server.join_room("room-1", endpoint.endpoint_id)
            endpoints.append(endpoint)
            counts.append(count)
        self.assertEqual(counts, [1, 2, 3])
        n = np.arange(160 * 60)
        tones = [(6000 * np.sin(2 * np.pi * f * n / 8000)).astype(np.int16) for f in freqs]
        for i in range(60):
            for phone, endpoint, tone in zip(phones, endpoints, tones, strict=True):
                phone.send_rtp((HOST, endpoint.streams[0].rtp_port),
                               PCMU_CODEC.encode(tone[160 * i:160 * (i + 1)]))
            yield sleep(0.02)
        yield self.until(lambda: all(len(p.received) >= 50 for p in phones))
        for k, (phone, endpoint) in enumerate(zip(phones, endpoints, strict=True)):
            self.assertEqual({addr for _, addr in phone.received},
                             {(HOST, endpoint.streams[0].rtp_port)})
            packets = phone.packets()
            self.assertEqual(len({p.ssrc for p in packets}), 1)
            self.assertEqual({p.payload_type for p in packets}, {0})
            heard = np.concatenate([PCMU_CODEC.decode(p.payload) for p in packets[5:50]])
            x = heard.astype(np.float64) * np.hanning(len(heard))
            spectrum = np.abs(np.fft.rfft(x)) ** 2
            bins = np.fft.rfftfreq(len(heard), 1 / 8000)
            total = spectrum.sum()
            for j, f in enumerate(freqs):
                share = spectrum[np.abs(bins - f) <= 25].sum() / total
                if j == k:
                    self.assertLess(share, 0.01, (k, f))
                else:
                    self.assertGreater(share, 0.15, (k, f))
        stats = server.stats()
        self.assertEqual((stats["rooms"], stats["participants"]), (1, 3))
        self.assertGreater(stats["mixed_frames"], 150)
        yield server.mute(endpoints[0].endpoint_id, True)
        left = yield server.leave_room(endpoints[2].endpoint_id)
        self.assertEqual(left, 2)
        yield server.release(endpoints[1].endpoint_id)
        self.assertEqual(server.stats()["participants"], 1)
        for call in (lambda: server.join_room("room-1", "nope"),
                     lambda: server.leave_room("nope"), lambda: server.mute("nope", True)):
            with self.assertRaises(MediaError) as caught:
                yield call()
            self.assertEqual(caught.exception.status, 404)
