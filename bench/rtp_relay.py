"""The mediaserver's RTP relay under load: N concurrent two-way G.711 calls
relayed by one :class:`telavox.mediaserver.MediaServer` process, beside a
bare Twisted UDP relay carrying the same load (the floor).

Each call is two endpoints connected to each other; each of their far ends
sends 50 packets/s of 172-byte PCMU RTP (12-byte header, 160 bytes of
payload) toward its endpoint, so 100 packets/s are relayed per call.  The
far ends are bench/c/rtpload.c, compiled here with ``gcc -O2`` (a Python
generator cannot drive this load on a small box); it also receives what the
relay forwards and reports loss, duplicates, reordering and the jitter the
relay added (from send times carried in the payload and kernel arrival
times).  The relay runs in a process of its own (bench/mediaserver_runner.py,
or bench/rtp_echo_floor.py for the floor), so its CPU time can be read from
/proc.

The figure that travels between machines is the relay process's CPU time
per relayed packet: utime+stime over the measured window (after a warm-up
that latches every stream), divided by the packets received by the far
ends.  At :data:`FIXED_CALLS` calls both relays run :data:`RUNS` times, taking
turns, and the medians are compared.  The stepped search raises the calls
through :data:`STEPS` (the two relays taking turns at each step) until a
step fails twice in a row; a step passes with less than :data:`MAX_LOSS_PCT`
loss and a 99th percentile of added jitter (the variation of the transit
time between consecutive packets of a stream: the deviation of the
inter-arrival time from the 20 ms the packets were sent apart) below
:data:`MAX_JITTER_MS`, the generator having sent its whole load.  The relay
is pinned to one CPU and the generator to the others (so that the scheduler
does not put both on one core and leave the other idle).  Every external
program runs under coreutils ``timeout`` and is stopped in ``finally``;
loopback only.

Run ``python -m bench.rtp_relay`` (a few minutes) or with ``--quick``
(about a minute).
"""

from __future__ import annotations

import argparse
import json
import os
import select
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.measure import CLOCK_TICKS, free_udp_ports, process_cpu, stop_process

ROOT = Path(__file__).resolve().parents[1]
SOURCE = Path(__file__).with_name("c") / "rtpload.c"
HOST = "127.0.0.1"

TELAVOX = "telavox"
FLOOR = "floor"
MODULES = {TELAVOX: "bench.mediaserver_runner", FLOOR: "bench.rtp_echo_floor"}

RTP_PORTS = (21000, 25999)
"""The mediaserver's RTP range (2,500 pairs, taken at random; apart from the
platform's default 10000-20000 and from the kernel's ephemeral ports)."""
FAR_LOW, FAR_HIGH = 26000, 31999
"""The far ends' ports are taken from here."""

PACKETS_PER_CALL = 100
"""Packets relayed per second and call (50 each way)."""
WARMUP = 2.0
DRAIN = 0.5
MAX_LOSS_PCT = 0.1
MAX_JITTER_MS = 5.0
MAX_CALLS = 1200

FIXED_CALLS = 100
RUNS = 3
STEPS = (50, 100, 200, 300, 400, 500, 600, 800, 1000)
QUICK_STEPS = (100, 300, 450, 600, 800, 1000)


@dataclass(frozen=True)
class Step:
    """One run of ``calls`` calls through ``target`` for ``seconds`` seconds."""

    target: str
    calls: int
    seconds: float
    cpu_seconds: float
    report: dict[str, Any]
    box_busy: float = 0.0
    """User and system CPU seconds of the whole box over the window."""

    @property
    def other_load(self) -> float:
        """Cores' worth of user and system time of other programs over the
        window: the noise under the figures."""
        ours = self.cpu_seconds + float(self.report["generator_cpu_s"])
        return max(0.0, self.box_busy - ours) / self.seconds

    @property
    def relayed(self) -> int:
        """Packets the far ends received in the measured window."""
        return int(self.report["received"])

    @property
    def cpu_per_packet(self) -> float:
        """Relay CPU seconds per relayed packet (inf when none arrived)."""
        return self.cpu_seconds / self.relayed if self.relayed else float("inf")

    @property
    def loss_pct(self) -> float:
        return float(self.report["loss_pct"])

    @property
    def jitter_ms(self) -> float:
        """99th percentile of the added jitter |D| (ms)."""
        return float(self.report["delta_p99_ms"])

    @property
    def generator_late(self) -> bool:
        """The generator itself sent more than 1% of its packets over 1 ms
        late (host stalls, or it could not keep up): the relay got bursts."""
        return int(self.report["late_sends"]) > 0.01 * max(1, int(self.report["sent"]))

    @property
    def complete(self) -> bool:
        """The generator sent the whole load of the window (it catches up
        after a stall, so the rate is kept even when it was late)."""
        expected = self.calls * PACKETS_PER_CALL * self.seconds
        return int(self.report["sent"]) >= 0.99 * expected

    @property
    def passed(self) -> bool:
        """< :data:`MAX_LOSS_PCT` loss and added jitter p99 < :data:`MAX_JITTER_MS`."""
        return (self.loss_pct < MAX_LOSS_PCT and self.jitter_ms < MAX_JITTER_MS
                and self.complete)

    def summary(self) -> str:
        """CPU per packet, loss and jitter in a few words."""
        r = self.report
        text = (f"{self.cpu_per_packet * 1e6:.1f} µs, {self.cpu_seconds / self.seconds:.0%} "
                f"of a core, loss {self.loss_pct:.3f}%, jitter p99 {self.jitter_ms:.2f} ms "
                f"(RFC 3550 mean {r['jitter_avg_ms']:.2f}, worst {r['jitter_max_ms']:.2f} ms), "
                f"transit p99 {r['transit_p99_ms']:.2f} ms; generator "
                f"{float(r['generator_cpu_s']) / self.seconds:.0%} of a core")
        extra = [f"{r[key]} {key.replace('_', ' ')}"
                 for key in ("duplicates", "out_of_order", "misrouted") if r[key]]
        if self.generator_late:
            extra.append(f"generator late by > 1 ms on {r['late_sends']} packets, "
                         f"p99.9 {r['late_p999_ms']:.1f} ms")
        if not self.complete:
            extra.append(f"only {r['sent']} packets sent")
        if self.other_load > 0.15:
            extra.append(f"other work on the box: {self.other_load:.0%} of a core")
        return text + (f" ({', '.join(extra)})" if extra else "")


# --- processes ------------------------------------------------------------------


def cpu_sets() -> tuple[set[int] | None, set[int] | None]:
    """CPUs for the relay (the first one this process may use) and for the
    generator (the others); (None, None) on a single CPU: no pinning."""
    available = sorted(os.sched_getaffinity(0))
    if len(available) < 2:
        return None, None
    return {available[0]}, set(available[1:])


def _pinned(cpus: set[int] | None) -> Any:
    """A ``preexec_fn`` pinning the child (and what it runs) to ``cpus``."""
    if cpus is None:
        return None
    return lambda: os.sched_setaffinity(0, cpus)


def build(folder: Path) -> Path | None:
    """rtpload compiled into ``folder``; None without gcc."""
    gcc = shutil.which("gcc")
    if gcc is None:
        return None
    binary = folder / "rtpload"
    result = subprocess.run(["timeout", "120", gcc, "-O2", "-Wall", "-o", str(binary),
                             str(SOURCE)], capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"gcc failed on {SOURCE}:\n{result.stderr[-2000:]}")
    return binary


def free_far_ports(count: int) -> list[int]:
    """``count`` UDP ports on 127.0.0.1 in the far ends' range, free right now."""
    return free_udp_ports(HOST, FAR_LOW, FAR_HIGH, count)


def _readline(proc: subprocess.Popen[bytes], deadline: float, what: str) -> str:
    """The next line of ``proc``'s (unbuffered) stdout before ``deadline``."""
    assert proc.stdout is not None
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise RuntimeError(f"{what}: no output in time")
        ready, _, _ = select.select([proc.stdout], [], [], remaining)
        if ready:
            line = proc.stdout.readline()
            if not line:
                raise RuntimeError(f"{what} exited with {proc.wait(5)}")
            return line.decode(errors="replace").strip()


def box_busy() -> float:
    """CPU seconds of user and system time of every process on the box since
    boot (/proc/stat; interrupt and softirq time left out: the relay's own
    packets cause much of it)."""
    with open("/proc/stat") as f:
        fields = [int(v) for v in f.readline().split()[1:4]]
    return sum(fields) / CLOCK_TICKS


def _tail(path: Path) -> str:
    try:
        return path.read_text(errors="replace")[-1500:]
    except FileNotFoundError:
        return ""


def run_step(binary: Path, target: str, calls: int, seconds: float) -> Step:
    """``calls`` calls through a fresh ``target`` relay process for ``seconds``
    (after :data:`WARMUP`); the relay's CPU time over the measured window."""
    if not 0 < calls <= MAX_CALLS or not 0 < seconds <= 30:
        raise ValueError("at most 1200 calls and 30 s per step")
    budget = int(WARMUP + seconds + DRAIN + 60)
    with tempfile.TemporaryDirectory(prefix="telavox-bench-rtp-") as name:
        folder = Path(name)
        far = free_far_ports(2 * calls)
        far_file = folder / "far-ports"
        far_file.write_text(" ".join(map(str, far)))
        command = ["timeout", "-k", "5", str(budget), sys.executable, "-m", MODULES[target],
                   str(far_file)]
        if target == TELAVOX:
            command += [*map(str, RTP_PORTS), str(folder / "mediaserver.log")]
        errors = folder / "relay.err"
        relay_cpus, generator_cpus = cpu_sets()
        with open(errors, "wb") as err:
            relay = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=err, cwd=ROOT,
                                     bufsize=0, preexec_fn=_pinned(relay_cpus))
        generator: subprocess.Popen[bytes] | None = None
        try:
            try:
                started = json.loads(_readline(relay, time.monotonic() + 60, target))
            except (RuntimeError, ValueError) as e:
                raise RuntimeError(f"{e}:\n{_tail(errors)}") from None
            pid, ports = int(started["pid"]), started["ports"]
            legs = folder / "legs"
            legs.write_text("".join(f"{mine} {HOST} {theirs}\n"
                                    for mine, theirs in zip(far, ports, strict=True)))
            with open(folder / "rtpload.err", "wb") as err:
                generator = subprocess.Popen(
                    ["timeout", "-k", "2", str(budget), str(binary), str(legs), str(WARMUP),
                     str(seconds), str(DRAIN)],
                    stdout=subprocess.PIPE, stderr=err, bufsize=0,
                    preexec_fn=_pinned(generator_cpus))
            deadline = time.monotonic() + budget
            try:
                if _readline(generator, deadline, "rtpload") != "measure":
                    raise RuntimeError("rtpload: unexpected output")
                before, busy_before = process_cpu(pid), box_busy()
                if _readline(generator, deadline, "rtpload") != "end":
                    raise RuntimeError("rtpload: unexpected output")
                after, busy_after = process_cpu(pid), box_busy()
                report = json.loads(_readline(generator, deadline, "rtpload"))
            except (RuntimeError, ValueError) as e:
                raise RuntimeError(f"{e}:\n{_tail(folder / 'rtpload.err')}") from None
            if relay.poll() is not None:
                raise RuntimeError(f"the {target} relay died:\n{_tail(errors)}")
            return Step(target, calls, seconds, after - before, report,
                        busy_after - busy_before)
        finally:
            if generator is not None:
                stop_process(generator)
            stop_process(relay)


def median_step(binary: Path, calls: int, seconds: float, runs: int,
                progress: Callable[[str], object] = lambda line: None
                ) -> dict[str, tuple[float, list[Step]]]:
    """Median CPU per relayed packet of each target at ``calls`` calls over
    ``runs`` runs (the targets alternate, so drift hits both alike)."""
    done: dict[str, list[Step]] = {TELAVOX: [], FLOOR: []}
    for _ in range(runs):
        for target in (FLOOR, TELAVOX):
            step = run_step(binary, target, calls, seconds)
            progress(" | ".join(_step_row(step)))
            done[target].append(step)
    return {target: (statistics.median(s.cpu_per_packet for s in steps), steps)
            for target, steps in done.items()}


def search(binary: Path, targets: Sequence[str], steps: Sequence[int], seconds: float,
           progress: Callable[[str], object] = lambda line: None
           ) -> dict[str, tuple[Step | None, list[Step]]]:
    """Raise the calls through ``steps`` for each target until a step fails
    twice in a row (a stall of the host can spoil one run on a small shared
    box); the targets take turns at each step, so that what they are
    compared on was measured at about the same time.  The last passing step
    and every step run, per target."""
    best: dict[str, Step | None] = dict.fromkeys(targets)
    done: dict[str, list[Step]] = {target: [] for target in targets}
    searching = list(targets)
    for calls in steps:
        for target in list(searching):
            for _ in range(2):
                result = run_step(binary, target, calls, seconds)
                progress(" | ".join(_step_row(result)))
                done[target].append(result)
                if result.passed:
                    best[target] = result
                    break
            else:
                searching.remove(target)
        if not searching:
            break
    return {target: (best[target], done[target]) for target in targets}


# --- report -----------------------------------------------------------------------


def _us(seconds: float) -> str:
    return f"{seconds * 1e6:.1f} µs CPU"


NAMES = {TELAVOX: "telavox mediaserver", FLOOR: "floor: bare Twisted UDP relay"}


def _step_row(step: Step) -> tuple[str, str, str]:
    return (f"{NAMES[step.target]}: {step.calls} calls "
            f"({step.calls * PACKETS_PER_CALL:,} packets/s)", _us(step.cpu_per_packet),
            f"{'pass' if step.passed else 'FAIL'}: {step.summary()}")


def run(quick: bool = False, progress: Callable[[str], object] = lambda line: None
        ) -> list[tuple[str, str, str]]:
    """Rows (what, figure, detail) of the RTP relay benchmark; ``progress``
    gets a line per run as it ends."""
    with tempfile.TemporaryDirectory(prefix="telavox-bench-rtpload-") as folder:
        binary = build(Path(folder))
        if binary is None:
            return [("RTP relay under load", "not measured", "gcc missing")]
        runs, seconds = (1, 5.0) if quick else (RUNS, 10.0)
        steps = QUICK_STEPS if quick else STEPS
        rows: list[tuple[str, str, str]] = []
        fixed = median_step(binary, FIXED_CALLS, seconds, runs, progress)
        rate = FIXED_CALLS * PACKETS_PER_CALL
        for target in (TELAVOX, FLOOR):
            value, done = fixed[target]
            middle = sorted(done, key=lambda s: s.cpu_per_packet)[len(done) // 2]
            rows.append((
                f"{NAMES[target]}: CPU per relayed packet, {FIXED_CALLS} two-way G.711 calls",
                _us(value),
                f"{rate:,} packets/s of 172 bytes relayed, {seconds:.0f} s after {WARMUP:.0f} s "
                f"of warm-up, median of {runs}; runs "
                f"{', '.join(f'{s.cpu_per_packet * 1e6:.1f}' for s in done)} µs; median run: "
                f"{middle.summary()}"))
        ours, floor = fixed[TELAVOX][0], fixed[FLOOR][0]
        rows.append(("efficiency of the mediaserver relative to the floor",
                     f"{floor / ours:.2f}×",
                     f"floor µs / mediaserver µs per packet at {FIXED_CALLS} calls, same run "
                     f"(the mediaserver spends {ours / floor:.1f}× the floor's CPU); target "
                     "≥ 0.7× and ≤ 12 µs per packet"))
        searched = search(binary, (TELAVOX,) if quick else (TELAVOX, FLOOR), steps, seconds,
                          progress)
        for target, (best, done) in searched.items():
            rows += [_step_row(step) for step in done]
            tried = ", ".join(f"{s.calls}{'' if s.passed else ' (failed)'}" for s in done)
            figure = f"{best.calls:,} calls" if best else f"< {steps[0]} calls"
            cost = f"; {_us(best.cpu_per_packet)} per packet there" if best else ""
            rows.append((f"{NAMES[target]}: highest concurrent calls relayed", figure,
                         f"steps of {seconds:.0f} s: {tried}; a step passes with < "
                         f"{MAX_LOSS_PCT}% loss and added jitter p99 < {MAX_JITTER_MS:.0f} ms "
                         f"(a failed step is run once more){cost}; target ≥ 800 calls"))
        if FLOOR in searched:
            floor_at = {s.calls: s for s in searched[FLOOR][1] if s.passed}
            pairs = [(s.calls, floor_at[s.calls].cpu_per_packet / s.cpu_per_packet)
                     for s in searched[TELAVOX][1] if s.passed and s.calls in floor_at]
            if pairs:
                rows.append(("efficiency of the mediaserver relative to the floor, by load",
                             f"{pairs[-1][1]:.2f}× at {pairs[-1][0]} calls",
                             "floor µs / mediaserver µs per packet at each step both passed: "
                             + ", ".join(f"{calls} calls {ratio:.2f}×"
                                         for calls, ratio in pairs)))
        return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a shorter run (about a minute)")
    args = parser.parse_args(argv)
    for row in run(quick=args.quick,
                   progress=lambda line: print(f"... {line}", file=sys.stderr, flush=True)):
        print(" | ".join(row), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
