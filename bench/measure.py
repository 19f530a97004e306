"""Measuring helpers: CPU time of a process, medians, timed loops."""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def process_cpu(pid: int) -> float:
    """utime+stime of process ``pid`` in seconds (from /proc/<pid>/stat)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


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
