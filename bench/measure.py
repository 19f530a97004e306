"""Measuring helpers: CPU time of a process, medians, timed loops."""

from __future__ import annotations

import os
import resource
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import suppress

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def process_times(pid: int) -> tuple[float, float]:
    """(utime, stime) of process ``pid`` in seconds (from /proc/<pid>/stat):
    its own code and the kernel's work for it (system calls, loopback)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) / CLOCK_TICKS, int(fields[12]) / CLOCK_TICKS


def process_cpu(pid: int) -> float:
    """utime+stime of process ``pid`` in seconds (from /proc/<pid>/stat)."""
    return sum(process_times(pid))


def cpu_loop(fn: Callable[[], object], n: int) -> float:
    """CPU seconds per call of ``fn`` over ``n`` calls (this process)."""
    start = time.process_time()
    for _ in range(n):
        fn()
    return (time.process_time() - start) / n


def median_of(runs: int, fn: Callable[[], float]) -> tuple[float, list[float]]:
    """Median and all values of ``runs`` calls of ``fn``."""
    values = [fn() for _ in range(runs)]
    return statistics.median(values), values


def machine() -> str:
    """A one-line description of this machine."""
    model = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{os.cpu_count()} cores, {model}"


def serve_ports(reactor: object, ports: list[int]) -> int:
    """The end of a benchmark server process: the collector tuned as the
    platform tunes it, the ports it relays on announced as one JSON line on
    stdout (with its pid), then the reactor run until the process is killed."""
    import gc
    import json
    import os
    import sys

    from telavox.platform import GC_THRESHOLDS

    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
    sys.stdout.write(json.dumps({"pid": os.getpid(), "ports": ports}) + "\n")
    sys.stdout.flush()
    reactor.run()  # type: ignore[attr-defined]
    return 0


def descendants(pid: int) -> list[int]:
    """``pid`` and every process below it (from /proc)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """SIGTERM (``timeout`` passes it on to its child), then SIGKILL if needed."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            for pid in reversed(descendants(proc.pid)):
                with suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            proc.wait(5)


def raise_nofile() -> None:
    """Raise this process's open-file limit to the hard limit (servers with
    two sockets per media endpoint need thousands)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def read_far_ports(path: str) -> list[int] | None:
    """The far ends' ports of a relay benchmark (pairs, whitespace-separated),
    or None (said on stderr) when the file does not hold an even, non-zero
    number of them."""
    with open(path) as f:
        ports = [int(p) for p in f.read().split()]
    if not ports or len(ports) % 2:
        print("need an even, non-zero number of far-end ports", file=sys.stderr)
        return None
    return ports


def free_udp_ports(host: str, low: int, high: int, count: int) -> list[int]:
    """``count`` UDP ports on ``host`` in ``low``..``high``, free right now
    (RuntimeError when the range has fewer)."""
    found: list[int] = []
    for port in range(low, high + 1):
        if len(found) == count:
            return found
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.bind((host, port))
            found.append(port)
        except OSError:
            pass
        finally:
            sock.close()
    if len(found) < count:
        raise RuntimeError(f"only {len(found)} free ports in {low}-{high}")
    return found
