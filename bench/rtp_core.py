"""Sans-IO RTP core: CPU per packet on the relay's hot path, and G.711.

No sockets, no reactor: what is measured is pure Python work per packet on
one core.  The relay peeks at every packet's header and rewrites it onto the
outgoing stream; full parsing, RTCP and the per-source statistics are the
slower paths it takes less often.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from bench.measure import cpu_loop, median_of
from telavox.rtp import (
    RtpPacket,
    SourceState,
    StreamRewriter,
    header_fields,
    parse_compound,
    rewrite_rtcp,
)
from telavox.rtp.codecs import PCMA, PCMU
from telavox.rtp.rtcp import SdesChunk, SdesItem, SdesType, SenderReport, SourceDescription

SSRC = 0x5F1C2A3B
COUNT = 50_000
# a PCMU stream as a phone sends it: 20 ms packets, 160 bytes of payload (172 on the wire)
STREAM = [RtpPacket(0, (4000 + i) & 0xFFFF, (160_000 + 160 * i) & 0xFFFF_FFFF, SSRC,
                    bytes((i + j) & 0xFF for j in range(160))).serialize() for i in range(COUNT)]
TIMES = [0.02 * i for i in range(COUNT)]
PACKET = STREAM[0]
COMPOUND = (SenderReport(SSRC, 0xE89A4B2C_40000000, 691200, 250, 40000).serialize()
            + SourceDescription((SdesChunk(SSRC, (
                SdesItem(SdesType.CNAME, b"user@192.0.2.10"),
                SdesItem(SdesType.TOOL, b"baresip v3.9.0"))),)).serialize())
FRAME = (8000 * np.sin(2 * np.pi * 440 * np.arange(160) / 8000)).astype(np.int16)


def _per_packet(run: Callable[[list[bytes], list[float]], object]) -> float:
    """CPU seconds per packet of ``run`` over the whole stream."""
    start = time.process_time()
    run(STREAM, TIMES)
    return (time.process_time() - start) / COUNT


def _peek(packets: list[bytes], _: list[float]) -> None:
    for data in packets:
        header_fields(data)


def _parse(packets: list[bytes], _: list[float]) -> None:
    for data in packets:
        RtpPacket.parse(data)


def _rewrite(packets: list[bytes], times: list[float]) -> None:
    rewrite = StreamRewriter(0xCAFE0001, 8000, 1000, 50000).rewrite
    for data, now in zip(packets, times, strict=True):
        rewrite(data, now)


def _statistics(packets: list[bytes], times: list[float]) -> None:
    state = SourceState(SSRC, 8000)
    update = state.update
    for data, now in zip(packets, times, strict=True):
        _, _, seq, ts, _ = header_fields(data)
        update(seq, ts, now)


def _g711(codec_encode: Callable[[np.ndarray], bytes],
          codec_decode: Callable[[bytes], np.ndarray]) -> float:
    payload = codec_encode(FRAME)
    return cpu_loop(lambda: codec_encode(codec_decode(payload)), 20000)


def run(runs: int = 5) -> list[tuple[str, str, str]]:
    """Rows (what, figure, detail) of the RTP core benchmark."""
    size = len(PACKET)
    peek, _ = median_of(runs, lambda: _per_packet(_peek))
    parse, _ = median_of(runs, lambda: _per_packet(_parse))
    rewrite, _ = median_of(runs, lambda: _per_packet(_rewrite))
    stats, _ = median_of(runs, lambda: _per_packet(_statistics))
    ulaw, _ = median_of(runs, lambda: _g711(PCMU.encode, PCMU.decode))
    alaw, _ = median_of(runs, lambda: _g711(PCMA.encode, PCMA.decode))
    rtcp, _ = median_of(runs, lambda: cpu_loop(lambda: parse_compound(COMPOUND), 20000))
    remap = {SSRC: 0xCAFE0001}
    rtcp_rewrite, _ = median_of(runs, lambda: cpu_loop(lambda: rewrite_rtcp(COMPOUND, remap),
                                                       20000))
    return [
        (f"header peek of a {size}-byte PCMU packet", f"{peek * 1e6:.2f} µs",
         "header_fields(): pt, marker, seq, ts, SSRC"),
        (f"full parse of a {size}-byte PCMU packet", f"{parse * 1e6:.2f} µs",
         "RtpPacket.parse(), payload copied"),
        (f"relay rewrite of a {size}-byte PCMU packet", f"{rewrite * 1e6:.2f} µs",
         f"StreamRewriter.rewrite(); {1 / rewrite:,.0f} packets per second on one core "
         f"= {1 / rewrite / 50 / 2:,.0f} two-way calls at 20 ms"),
        ("reception statistics per packet", f"{stats * 1e6:.2f} µs",
         "header peek + SourceState.update() (RFC 3550 A.1, A.8)"),
        ("G.711 µ-law decode + encode, 20 ms frame", f"{ulaw * 1e6:.2f} µs",
         "160 samples through the numpy lookup tables"),
        ("G.711 A-law decode + encode, 20 ms frame", f"{alaw * 1e6:.2f} µs",
         "160 samples through the numpy lookup tables"),
        (f"RTCP SR + SDES parse ({len(COMPOUND)} bytes)", f"{rtcp * 1e6:.2f} µs",
         "parse_compound()"),
        ("RTCP SR + SDES SSRC rewrite", f"{rtcp_rewrite * 1e6:.2f} µs", "rewrite_rtcp()"),
    ]


if __name__ == "__main__":
    for row in run():
        print(" | ".join(row))
