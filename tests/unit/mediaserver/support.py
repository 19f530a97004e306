"""Helpers of the mediaserver unit tests: a core with fake sends, far-end
descriptions and RTP packets."""

from __future__ import annotations

import random
from collections.abc import Sequence

import numpy as np

from telavox.mediaserver.relay import MediaCore
from telavox.mediaserver.stream import Address, Endpoint, Stream
from telavox.records import (
    LocalStream,
    MediaDirection,
    MediaEvent,
    MediaFormat,
    RemoteStream,
)
from telavox.rtp.packet import RtpPacket

PCMU = MediaFormat(0, "PCMU", 8000)
PCMA = MediaFormat(8, "PCMA", 8000)
TE101 = MediaFormat(101, "telephone-event", 8000, fmtp="0-16")
TE96 = MediaFormat(96, "telephone-event", 8000, fmtp="0-16")
H264 = MediaFormat(97, "H264", 90000)
H264_B = MediaFormat(120, "H264", 90000)

SILENCE_U = b"\xff" * 160


class Wire:
    """Everything the core sent, as ``(label, bytes, address)``."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, Address]] = []

    def sender(self, label: str):  # type: ignore[no-untyped-def]
        def send(data: bytes | bytearray, addr: Address) -> None:
            self.sent.append((label, bytes(data), addr))
        return send

    def packets(self, label: str) -> list[RtpPacket]:
        """The RTP packets sent on ``label`` (``<endpoint>/<index>/rtp``)."""
        return [RtpPacket.parse(data) for lab, data, _ in self.sent if lab == label]

    def datagrams(self, label: str) -> list[tuple[bytes, Address]]:
        return [(data, addr) for lab, data, addr in self.sent if lab == label]

    def clear(self) -> None:
        self.sent.clear()


class Harness:
    """A :class:`MediaCore` with fake sockets and the events it emitted."""

    def __init__(self, **options: object) -> None:
        self.events: list[MediaEvent] = []
        self.wire = Wire()
        self.core = MediaCore(self.events.append, rng=random.Random(7), **options)  # type: ignore[arg-type]
        self._port = 20000

    def add(self, endpoint_id: str, kinds: Sequence[str] = ("audio",), now: float = 0.0
            ) -> Endpoint:
        locals_ = []
        senders = []
        for index, kind in enumerate(kinds):
            locals_.append(LocalStream(kind=kind, address="203.0.113.1", rtp_port=self._port,
                                       rtcp_port=self._port + 1))
            self._port += 2
            senders.append((self.wire.sender(f"{endpoint_id}/{index}/rtp"),
                            self.wire.sender(f"{endpoint_id}/{index}/rtcp")))
        return self.core.add_endpoint(endpoint_id, f"call-{endpoint_id}", locals_, senders, now)

    def stream(self, endpoint_id: str, index: int = 0) -> Stream:
        return self.core.endpoints[endpoint_id].streams[index]

    def kinds(self, kind: str) -> list[MediaEvent]:
        return [e for e in self.events if e.kind == kind]


def remote(address: str | None = "192.0.2.10", port: int = 4000,
           formats: Sequence[MediaFormat] = (PCMU, TE101),
           direction: MediaDirection = MediaDirection.SENDRECV,
           signalling: str | None = None, kind: str = "audio",
           rtcp_mux: bool = False) -> RemoteStream:
    return RemoteStream(kind=kind, address=address, port=port, formats=tuple(formats),
                        direction=direction, signalling_address=signalling,
                        rtcp_mux=rtcp_mux)


def rtp(seq: int, ts: int, ssrc: int = 0x1111, pt: int = 0, payload: bytes = SILENCE_U,
        marker: bool = False) -> bytes:
    return RtpPacket(pt, seq & 0xFFFF, ts & 0xFFFFFFFF, ssrc, payload, marker).serialize()


def sine(freq: float, count: int = 160, start: int = 0, amplitude: float = 8000.0
         ) -> np.ndarray:
    n = np.arange(start, start + count)
    return (amplitude * np.sin(2 * np.pi * freq * n / 8000)).astype(np.int16)


def dominant_frequency(samples: np.ndarray, rate: int = 8000) -> float:
    """The frequency of the strongest FFT bin (Hann window)."""
    x = samples.astype(np.float64) * np.hanning(len(samples))
    spectrum = np.abs(np.fft.rfft(x))
    spectrum[0] = 0
    return float(np.argmax(spectrum) * rate / len(samples))
