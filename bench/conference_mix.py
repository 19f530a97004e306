"""Conference mixing in the sans-IO media core: CPU per participant per
second of mixed audio.

No sockets, no reactor: a :class:`~telavox.mediaserver.relay.MediaCore`
whose send functions drop the datagrams, rooms of 3, 10, 50 and 200
participants, every far end sending one 20 ms PCMU packet per tick (so
every row of the mix is live), and the 20 ms pacer called with explicit
time.  Reported: the receive side (latched packet in, decoded, queued), the
mix side (collect, sum, mix-minus, encode, one packet out per participant
through the continuity rewriter), both per participant per second of audio
(50 frames), and the share of one core that is.

Run: ``.venv/bin/python -m bench.conference_mix``
"""

from __future__ import annotations

import random
import time

import numpy as np

from telavox.mediaserver.relay import MediaCore
from telavox.mediaserver.stream import Stream
from telavox.records import LocalStream, MediaFormat, RemoteStream
from telavox.rtp.codecs import PCMU
from telavox.rtp.packet import RtpPacket

SECONDS = 10
FRAMES = 50 * SECONDS
SIZES = (3, 10, 50, 200)


def _drop(data: bytes | bytearray, addr: tuple[str, int]) -> None:
    """A send function that sends nothing."""


def _room(n: int) -> tuple[MediaCore, list[tuple[Stream, tuple[str, int]]]]:
    core = MediaCore(lambda event: None, inactivity_timeout=0, inband_dtmf=False,
                     rng=random.Random(1))
    streams = []
    for k in range(n):
        eid = f"p{k}"
        far = (f"10.0.{k // 250}.{k % 250 + 1}", 4000)
        local = LocalStream(kind="audio", address="127.0.0.1", rtp_port=10000 + 2 * k,
                            rtcp_port=10001 + 2 * k)
        core.add_endpoint(eid, "bench", [local], [(_drop, _drop)], 0.0)
        core.set_remote(eid, [RemoteStream(kind="audio", address=far[0], port=far[1],
                                           formats=(MediaFormat(0, "PCMU", 8000),))], 0.0)
        core.join_room("bench", eid)
        streams.append((core.endpoints[eid].streams[0], far))
    return core, streams


def _packets(k: int) -> list[bytes]:
    n = np.arange(160 * FRAMES)
    tone = (3000 * np.sin(2 * np.pi * (200 + 37 * k) * n / 8000)).astype(np.int16)
    payload = PCMU.encode(tone)
    return [RtpPacket(0, i & 0xFFFF, 160 * i, 0x1000 + k, payload[160 * i:160 * (i + 1)]
                      ).serialize() for i in range(FRAMES)]


def measure(n: int) -> tuple[float, float]:
    """CPU seconds (receive, mix) per participant per second of audio."""
    core, streams = _room(n)
    packets = [_packets(k % 50) for k in range(n)]
    receive = core.receive_rtp
    rx = mix = 0.0
    for i in range(FRAMES):
        now = 0.02 * i
        start = time.process_time()
        for (stream, far), mine in zip(streams, packets, strict=True):
            receive(stream, mine[i], far, now)
        middle = time.process_time()
        core.tick(now)
        rx += middle - start
        mix += time.process_time() - middle
    assert core.counters["mixed_frames"] == n * FRAMES
    return rx / n / SECONDS, mix / n / SECONDS


TARGET_SHARE = 0.25
"""Target: 100 participants mixed in at most a quarter of one core."""


def run(runs: int = 3) -> list[tuple[str, str, str]]:
    """Rows (what, figure, detail): CPU per participant per second of mixed
    audio for rooms of 3, 10 and 50 (median of ``runs``), and the verdict
    for 100 participants against the target."""
    rows = []
    per_participant = 0.0
    for n in (3, 10, 50):
        totals = sorted(sum(measure(n)) for _ in range(runs))
        total = totals[len(totals) // 2]
        per_participant = max(per_participant, total)
        rows.append((f"mediaserver: conference room of {n}, receive + mix",
                     f"{total * 1e6:.0f} µs CPU",
                     f"per participant per second of audio; median of {runs}; "
                     f"{total * n * 100:.2f}% of one core for the room"))
    share = per_participant * 100
    verdict = "met" if share <= TARGET_SHARE else "not met"
    rows.append(("mediaserver: 100 participants mixed (worst per-participant cost above)",
                 f"{share * 100:.1f}% of one core",
                 f"target ≤ {TARGET_SHARE * 100:.0f}%: {verdict}; floor: 30 participants "
                 "in real time"))
    return rows


def main() -> None:
    print(f"{'participants':>12} {'receive µs':>11} {'mix µs':>9} {'total µs':>9} "
          f"{'core %':>7}   (CPU per participant per second of audio)")
    for n in SIZES:
        rx, mx = measure(n)
        total = rx + mx
        print(f"{n:>12} {rx * 1e6:>11.0f} {mx * 1e6:>9.0f} {total * 1e6:>9.0f} "
              f"{total * n * 100:>7.2f}")


if __name__ == "__main__":
    main()
