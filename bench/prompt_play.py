"""Prompts played to concurrent callers: CPU per played packet, and how many
callers one mediaserver process keeps on time.

Each caller hears telavox/sounds/en/ivr-main-menu.wav looped (PCMU, one
172-byte packet every 20 ms: 50 packets/s per caller), sent by the 20 ms
pacer (:meth:`telavox.mediaserver.relay.MediaCore.tick`) through the
stream's continuity rewriter.  The callers send nothing.

(a) The sans-IO core: N endpoints in a :class:`MediaCore` whose send
functions drop the datagrams (as bench/conference_mix.py), each playing the
prompt through :func:`~telavox.mediaserver.playback.make_player` (the
:class:`~telavox.mediaserver.prompts.PromptCache` encodes it once), and
``tick(now)`` called every 20 ms of fake time for :data:`SECONDS`; CPU per
packet sent (``time.process_time``), median of :data:`RUNS`, for N = 50,
200 and 500.

(b) The real :class:`telavox.mediaserver.MediaServer` in a process of its
own (``python -m bench.prompt_play serve ...``: sockets, the reactor, its
20 ms ``LoopingCall``), pinned to one CPU, playing the prompt to N UDP sinks
on 127.0.0.1 (a Python sink process pinned to the other CPUs: it sleeps
5 ms at a time, then drains every ready socket with ``recvmsg``, and takes
arrival times from the kernel, SO_TIMESTAMPNS, so its own scheduling does
not show).  CPU per packet: the server's utime+stime (/proc) over the
measured window divided by the packets the sinks received in it.  A step
passes when the sinks received ≥ 99.9% of 50·N packets per second: every
20 ms frame still sent (the pacer catches up at most 5 frames after a
stall, so a server that cannot keep up loses frames).  The share of
inter-arrival gaps over 30 ms (a frame more than 10 ms late) is reported
beside it.  The callers are raised through :data:`STEPS` until a step fails
twice in a row.

Targets (from the issue): ≤ 12 µs CPU per played packet and ≥ 500
concurrent prompts per core; floor: 100 concurrent prompts per core.

Run: ``.venv/bin/python -m bench.prompt_play`` (one to two minutes) or with
``--quick`` (under a minute).  Loopback only; every child process runs
under coreutils ``timeout`` and is stopped in ``finally``.
"""

from __future__ import annotations

import argparse
import json
import random
import select
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.measure import free_udp_ports, process_cpu, stop_process
from bench.rtp_relay import _pinned, _readline, _tail, box_busy, cpu_sets
from telavox.mediaserver.playback import make_player
from telavox.mediaserver.prompts import PromptCache
from telavox.mediaserver.relay import MediaCore
from telavox.records import LocalStream, MediaFormat, PlaySource, RemoteStream
from telavox.sounds import SOUNDS_DIR

ROOT = Path(__file__).resolve().parents[1]
PROMPT = str(SOUNDS_DIR / "en" / "ivr-main-menu.wav")
PCMU = MediaFormat(0, "PCMU", 8000)
HOST = "127.0.0.1"
PACKETS_PER_CALLER = 50

SECONDS = 5
RUNS = 3
SIZES = (50, 200, 500)

TARGET_US = 12.0
TARGET_CALLERS = 500
FLOOR_CALLERS = 100

RTP_PORTS = (20000, 27999)
"""The server's RTP range in (b) (4,000 pairs; apart from the kernel's
ephemeral ports)."""
SINK_LOW, SINK_HIGH = 28000, 32767
"""The sinks' ports are taken from here."""
WARMUP = 2.0
MEASURE = 5.0
MIN_RECEIVED = 0.999
LATE_GAP = 0.030
STEPS = (100, 250, 500, 1000, 1500, 2000, 2500, 3000, 3500)
QUICK_STEPS = (500, 1000, 2000, 3000)


# --- (a) the sans-IO core ---------------------------------------------------------


def _drop(data: bytes | bytearray, addr: tuple[str, int]) -> None:
    """A send function that sends nothing."""


def _core(n: int, now: float) -> MediaCore:
    """A core with ``n`` endpoints, each playing the prompt looped from ``now``."""
    core = MediaCore(lambda event: None, rng=random.Random(1))
    prompts = PromptCache()
    source = PlaySource(path=PROMPT, loop=True)
    for k in range(n):
        eid = f"c{k}"
        local = LocalStream(kind="audio", address=HOST, rtp_port=10000 + 2 * k,
                            rtcp_port=10001 + 2 * k)
        core.add_endpoint(eid, "bench", [local], [(_drop, _drop)], now)
        remote = RemoteStream(kind="audio", address=f"10.0.{k // 250}.{k % 250 + 1}",
                              port=4000, formats=(PCMU,))
        core.set_remote(eid, [remote], now)
        stream = core.endpoints[eid].streams[0]
        core.play(eid, make_player(f"{eid}-play", source, stream.remote, prompts.load), now)
    return core


def measure_core(n: int, seconds: float = SECONDS) -> float:
    """CPU seconds per packet played by the pacer to ``n`` callers over
    ``seconds`` of fake time."""
    core = _core(n, 0.0)
    played = core.counters["played_packets"]
    tick = core.tick
    frames = int(50 * seconds)
    start = time.process_time()
    for i in range(1, frames + 1):
        tick(0.02 * i)
    cpu = time.process_time() - start
    sent = core.counters["played_packets"] - played
    if sent != n * frames:
        raise RuntimeError(f"{sent} packets played to {n} callers in {frames} ticks")
    return cpu / sent


# --- (b) the real mediaserver ---------------------------------------------------------


def serve(sink_file: str, low: int, high: int) -> int:
    """The server process of (b): one endpoint per sink port, each playing
    the prompt looped to it; prints ``{"pid", "ports"}`` and serves until
    SIGTERM."""
    from twisted.internet import reactor
    from twisted.logger import globalLogBeginner

    from bench.measure import raise_nofile, serve_ports
    from bench.mediaserver_runner import _fired
    from telavox.mediaserver import MediaServer

    with open(sink_file) as f:
        sinks = [int(p) for p in f.read().split()]
    raise_nofile()
    globalLogBeginner.beginLoggingTo([], redirectStandardIO=False)
    server = MediaServer(reactor, name="bench", address=HOST, rtp_ports=(low, high),
                         inactivity_timeout=0, inband_dtmf=False)
    server.start()
    ports = []
    source = PlaySource(path=PROMPT, loop=True)
    for index, sink in enumerate(sinks):
        endpoint = _fired(server.allocate(f"bench-caller-{index}"))
        _fired(server.set_remote(endpoint.endpoint_id, [RemoteStream(
            kind="audio", address=HOST, port=sink, formats=(PCMU,),
            signalling_address=HOST)]))
        _fired(server.play(endpoint.endpoint_id, source))
        ports.append(endpoint.streams[0].rtp_port)
    return serve_ports(reactor, ports)


_TIMESTAMP = struct.Struct("ll")
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
"""Linux's SO_TIMESTAMPNS (Python < 3.12 does not name it)."""


def sink(ports_file: str, warmup: float, seconds: float) -> int:
    """The sink process of (b): binds the ports, prints ``ready``, waits for
    a line on stdin (the server is playing), then prints ``measure`` after
    ``warmup`` seconds and ``end`` after ``seconds`` more, then one JSON line
    with what arrived in the window.

    The window is taken on the kernel's arrival times (SO_TIMESTAMPNS), so
    how late the sink reads changes nothing; it is a whole number of 20 ms
    frames long, so each caller's packets in it are the frames of the window
    exactly.  The sink's own CPU share is reported (it must keep up)."""
    import resource

    from bench.measure import raise_nofile

    with open(ports_file) as f:
        ports = [int(p) for p in f.read().split()]
    raise_nofile()
    socks = []
    for port in ports:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 18)
        s.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        s.bind((HOST, port))
        s.setblocking(False)
        socks.append(s)
    poller = select.epoll()
    for s in socks:
        poller.register(s.fileno(), select.EPOLLIN)
    readers = {s.fileno(): (index, s.recvmsg) for index, s in enumerate(socks)}
    last = [0.0] * len(socks)
    counts = [0] * len(socks)
    gaps = late = 0
    worst_gap = 0.0
    control = socket.CMSG_SPACE(_TIMESTAMP.size)
    unpack = _TIMESTAMP.unpack_from
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    sys.stdin.readline()
    start = time.monotonic()
    seconds = round(seconds * 50) / 50
    begin = end = float("inf")
    measure_at, end_at = start + warmup, start + warmup + seconds
    phase = 0
    cpu_before = sink_cpu = 0.0
    while True:
        now = time.monotonic()
        if phase == 0 and now >= measure_at:
            phase = 1
            begin = time.time()
            end = begin + seconds
            usage = resource.getrusage(resource.RUSAGE_SELF)
            cpu_before = usage.ru_utime + usage.ru_stime
            sys.stdout.write("measure\n")
            sys.stdout.flush()
        elif phase == 1 and now >= end_at:
            phase = 2
            usage = resource.getrusage(resource.RUSAGE_SELF)
            sink_cpu = usage.ru_utime + usage.ru_stime - cpu_before
            sys.stdout.write("end\n")
            sys.stdout.flush()
        elif phase == 2 and now >= end_at + 0.1:
            break
        time.sleep(0.005)
        for fd, _ in poller.poll(0):
            index, recvmsg = readers[fd]
            previous = last[index]
            while True:
                try:
                    _, ancdata, _, _ = recvmsg(64, control)
                except BlockingIOError:
                    break
                if not ancdata:
                    continue
                sec, nsec = unpack(ancdata[0][2])
                arrival = sec + nsec * 1e-9
                if begin <= arrival < end:
                    counts[index] += 1
                    if previous >= begin:
                        gap = arrival - previous
                        gaps += 1
                        if gap > LATE_GAP:
                            late += 1
                            worst_gap = max(worst_gap, gap)
                previous = arrival
            last[index] = previous
    sys.stdout.write(json.dumps({"received": sum(counts), "fewest": min(counts),
                                 "gaps": gaps, "late": late, "worst_gap_ms": worst_gap * 1000,
                                 "window_s": seconds, "sink_cpu_s": sink_cpu}) + "\n")
    sys.stdout.flush()
    return 0


def run_step(callers: int, warmup: float = WARMUP, seconds: float = MEASURE
             ) -> dict[str, Any]:
    """``callers`` prompts played by a fresh server process to a sink
    process for ``seconds`` after ``warmup``: the server's CPU and what the
    sinks received in the window."""
    budget = int(warmup + seconds + 60)
    server_cpus, sink_cpus = cpu_sets()
    with tempfile.TemporaryDirectory(prefix="telavox-bench-prompt-") as name:
        folder = Path(name)
        sink_ports = free_far_ports_in(callers)
        ports_file = folder / "sinks"
        ports_file.write_text(" ".join(map(str, sink_ports)))
        procs: list[subprocess.Popen[bytes]] = []
        try:
            with open(folder / "sink.err", "wb") as err:
                sink_proc = subprocess.Popen(
                    ["timeout", "-k", "5", str(budget), sys.executable, "-m", "bench.prompt_play",
                     "sink", str(ports_file), str(warmup), str(seconds)],
                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, cwd=ROOT,
                    bufsize=0, preexec_fn=_pinned(sink_cpus))
            procs.append(sink_proc)
            deadline = time.monotonic() + budget
            try:
                if _readline(sink_proc, time.monotonic() + 30, "sink") != "ready":
                    raise RuntimeError("sink: unexpected output")
            except RuntimeError as e:
                raise RuntimeError(f"{e}:\n{_tail(folder / 'sink.err')}") from None
            with open(folder / "server.err", "wb") as err:
                server = subprocess.Popen(
                    ["timeout", "-k", "5", str(budget), sys.executable, "-m", "bench.prompt_play",
                     "serve", str(ports_file), *map(str, RTP_PORTS)],
                    stdout=subprocess.PIPE, stderr=err, cwd=ROOT, bufsize=0,
                    preexec_fn=_pinned(server_cpus))
            procs.append(server)
            try:
                started = json.loads(_readline(server, time.monotonic() + 60, "server"))
                pid = int(started["pid"])
            except (RuntimeError, ValueError) as e:
                raise RuntimeError(f"{e}:\n{_tail(folder / 'server.err')}") from None
            assert sink_proc.stdin is not None
            sink_proc.stdin.write(b"go\n")
            sink_proc.stdin.close()
            try:
                line = _readline(sink_proc, deadline, "sink")
                if line != "measure":
                    raise RuntimeError(f"sink: unexpected output {line!r}")
                before, busy_before = process_cpu(pid), box_busy()
                line = _readline(sink_proc, deadline, "sink")
                after, busy_after = process_cpu(pid), box_busy()
                if line != "end":
                    raise RuntimeError(f"sink: unexpected output {line!r}")
                report = json.loads(_readline(sink_proc, deadline, "sink"))
            except (RuntimeError, ValueError) as e:
                raise RuntimeError(f"{e}:\n{_tail(folder / 'sink.err')}") from None
            if server.poll() is not None:
                raise RuntimeError(f"the server died:\n{_tail(folder / 'server.err')}")
        finally:
            for proc in reversed(procs):
                stop_process(proc)
    expected = PACKETS_PER_CALLER * callers * seconds
    received = int(report["received"])
    others = busy_after - busy_before - (after - before) - float(report["sink_cpu_s"])
    report.update(callers=callers, cpu_s=after - before, expected=expected,
                  other_load=max(0.0, others) / seconds,
                  ratio=received / expected,
                  cpu_per_packet=(after - before) / received if received else float("inf"),
                  passed=received >= MIN_RECEIVED * expected)
    return report


def free_far_ports_in(count: int) -> list[int]:
    """``count`` free UDP ports on 127.0.0.1 in the sinks' range."""
    return free_udp_ports(HOST, SINK_LOW, SINK_HIGH, count)


def _step_text(step: dict[str, Any]) -> str:
    late = step["late"] / step["gaps"] if step["gaps"] else 0.0
    return (f"{'pass' if step['passed'] else 'FAIL'}: {step['cpu_per_packet'] * 1e6:.1f} µs "
            f"per packet, {step['cpu_s'] / step['window_s']:.0%} of a core; "
            f"{step['ratio']:.2%} of {PACKETS_PER_CALLER * step['callers']:,} packets/s "
            f"received; gaps > {LATE_GAP * 1000:.0f} ms {late:.3%}, worst "
            f"{step['worst_gap_ms']:.0f} ms"
            + (f" (other work on the box: {step['other_load']:.0%} of a core)"
               if step["other_load"] > 0.15 else ""))


def search(steps: tuple[int, ...], seconds: float,
           progress: Callable[[str], object] = lambda line: None
           ) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """Raise the callers through ``steps`` until a step fails twice in a
    row; the last passing step and every step run."""
    best = None
    done = []
    for callers in steps:
        for _ in range(2):
            try:
                step = run_step(callers, seconds=seconds)
            except RuntimeError as e:  # a port taken meanwhile by another program, ...
                progress(f"{callers} callers: run again after {e}")
                step = run_step(callers, seconds=seconds)
            progress(f"{callers} callers: {_step_text(step)}")
            done.append(step)
            if step["passed"]:
                best = step
                break
        else:
            break
    return best, done


# --- report ---------------------------------------------------------------------------


def _verdict(ok: bool) -> str:
    return "met" if ok else "not met"


def run(quick: bool = False, progress: Callable[[str], object] = lambda line: None
        ) -> list[tuple[str, str, str]]:
    """Rows (what, figure, detail) of both parts."""
    rows: list[tuple[str, str, str]] = []
    seconds, runs = (2, 1) if quick else (SECONDS, RUNS)
    worst = 0.0
    for n in SIZES:
        values = [measure_core(n, seconds) for _ in range(runs)]
        value = statistics.median(values)
        worst = max(worst, value)
        rows.append((f"sans-IO core: prompt played to {n} callers",
                     f"{value * 1e6:.2f} µs CPU",
                     f"per packet sent by the 20 ms pacer (send dropped), {seconds} s of fake "
                     f"time, median of {runs}; {n * PACKETS_PER_CALLER * value:.1%} of one "
                     f"core; target ≤ {TARGET_US:.0f} µs: {_verdict(value * 1e6 <= TARGET_US)}"))
        progress(" | ".join(rows[-1]))
    per_core = int(1 / (worst * PACKETS_PER_CALLER))
    rows.append(("sans-IO core: concurrent prompts per core (worst cost above)",
                 f"{per_core:,}", f"1 s / (50 packets × {worst * 1e6:.2f} µs); target ≥ "
                 f"{TARGET_CALLERS}: {_verdict(per_core >= TARGET_CALLERS)}; floor "
                 f"{FLOOR_CALLERS}: {_verdict(per_core >= FLOOR_CALLERS)}"))
    try:
        best, done = search(QUICK_STEPS if quick else STEPS, 3.0 if quick else MEASURE,
                            progress)
    except RuntimeError as e:
        rows.append(("mediaserver process: prompts to UDP sinks", "not measured",
                     str(e).splitlines()[0]))
        return rows
    for step in done:
        rows.append((f"mediaserver process: prompt played to {step['callers']:,} callers",
                     f"{step['cpu_per_packet'] * 1e6:.1f} µs CPU", _step_text(step)))
    tried = ", ".join(f"{s['callers']}{'' if s['passed'] else ' (failed)'}" for s in done)
    figure = f"{best['callers']:,} callers" if best else f"< {done[0]['callers']} callers"
    ok = best is not None and best["callers"] >= TARGET_CALLERS
    floor = best is not None and best["callers"] >= FLOOR_CALLERS
    cost = (f"; {best['cpu_per_packet'] * 1e6:.1f} µs per packet there, "
            f"{best['cpu_s'] / best['window_s']:.0%} of its core" if best else "")
    rows.append(("mediaserver process: highest concurrent prompts on time (one core)",
                 figure,
                 f"steps of {done[0]['window_s']:.0f} s: {tried}; a step passes with ≥ "
                 f"{MIN_RECEIVED:.1%} of 50·N packets/s received (a failed step is run once "
                 f"more){cost}; target ≥ {TARGET_CALLERS}: {_verdict(ok)}; floor "
                 f"{FLOOR_CALLERS}: {_verdict(floor)}"))
    passed = [s for s in done if s["passed"]]
    if passed:
        at = min(passed, key=lambda s: abs(s["callers"] - TARGET_CALLERS))
        value = at["cpu_per_packet"] * 1e6
        rows.append((f"mediaserver process: CPU per played packet at {at['callers']} callers",
                     f"{value:.1f} µs CPU",
                     f"server utime+stime (/proc) / packets received, sockets and reactor "
                     f"included; target ≤ {TARGET_US:.0f} µs: {_verdict(value <= TARGET_US)}"))
    return rows


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["serve"] and len(argv) == 4:
        return serve(argv[1], int(argv[2]), int(argv[3]))
    if argv[:1] == ["sink"] and len(argv) == 4:
        return sink(argv[1], float(argv[2]), float(argv[3]))
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a shorter run (under a minute)")
    args = parser.parse_args(argv)
    for row in run(quick=args.quick,
                   progress=lambda line: print(f"... {line}", file=sys.stderr, flush=True)):
        print(" | ".join(row), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
