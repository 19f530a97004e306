"""OPTIONS keep-alives answered by the running platform, driven by SIPp over
UDP, beside Kamailio answering the same load (transaction-stateful, ``tm``).

The figure that travels between machines is the server's CPU time per
answered OPTIONS (utime+stime from /proc over the run, divided by the
successful transactions).  Each run is bounded: ``rate`` per second for
``seconds`` seconds, and a ``timeout`` around SIPp.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.measure import median_of, process_cpu
from tests.helpers.process import PlatformProcess, free_port

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = ROOT / "tests" / "integration" / "sipp" / "options.xml"
KAMAILIO_MODULES = "/usr/lib/x86_64-linux-gnu/kamailio/modules"

KAMAILIO_CFG = Path(__file__).with_name("kamailio-options.cfg")


def _successful(output: str) -> int:
    match = re.findall(r"Successful call\s+\|\s+\d+\s+\|\s+(\d+)", output)
    return int(match[-1]) if match else 0


def _achieved_rate(output: str) -> float:
    """SIPp's cumulative call rate (calls per second actually placed)."""
    match = re.findall(r"Call Rate\s+\|\s+[\d.]+ cps\s+\|\s+([\d.]+) cps", output)
    return float(match[-1]) if match else 0.0


def _sipp(port: int, rate: int, seconds: int) -> tuple[int, str]:
    sipp = shutil.which("sipp")
    if sipp is None:
        raise RuntimeError("sipp not found: install the Debian package sip-tester")
    total = rate * seconds
    with tempfile.TemporaryDirectory() as folder:
        result = subprocess.run(
            ["timeout", str(seconds * 3 + 30), sipp, "-sf", str(SCENARIO), "-r", str(rate),
             "-m", str(total), "-t", "u1", "-i", "127.0.0.1", "-p", "0",
             "-cp", str(free_port()), "-buff_size", "4194304", "-nostdin",
             "-timeout", f"{seconds * 3 + 10}s", f"127.0.0.1:{port}"],
            capture_output=True, cwd=folder, text=True)
    return _successful(result.stdout), result.stdout


def _children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def _run_against(pids: list[int], port: int, rate: int, seconds: int,
                 strict: bool = True) -> float:
    """CPU seconds of ``pids`` per answered OPTIONS for one step."""
    before = sum(process_cpu(p) for p in pids)
    ok, output = _sipp(port, rate, seconds)
    after = sum(process_cpu(p) for p in pids)
    if ok < rate * seconds * 0.999 or _achieved_rate(output) < rate * 0.95:
        if strict:
            raise RuntimeError(f"{ok} of {rate * seconds} OPTIONS answered, "
                               f"{_achieved_rate(output):.0f}/s of {rate}/s:\n"
                               f"{output[-1500:]}")
        return -1.0
    return (after - before) / ok


def _platform(log_level: str) -> tuple[PlatformProcess, int, tempfile.TemporaryDirectory[str]]:
    folder = tempfile.TemporaryDirectory()
    port = free_port()
    process = PlatformProcess(Path(folder.name), f"""
[platform]
data_dir = "{folder.name}/var"
log_level = "{log_level}"
[sipproxy]
listen = ["udp:127.0.0.1:{port}"]
# all load comes from one address: keep the per-source limit out of the way
rate_limit = 1000000.0
rate_burst = 10000000
[tlb]
http_listen = ""
""")
    process.start()
    return process, port, folder


def telavox_options(rate: int, seconds: int, runs: int,
                    log_level: str) -> tuple[float, list[float]]:
    """Median CPU seconds per OPTIONS of the platform."""
    process, port, folder = _platform(log_level)
    try:
        assert process.proc is not None
        pid = process.proc.pid
        return median_of(runs, lambda: _run_against([pid], port, rate, seconds))
    finally:
        process.stop()
        folder.cleanup()


def telavox_max_rate(steps: tuple[int, ...], seconds: int) -> tuple[int, float]:
    """The highest step rate answered in full, and the CPU per OPTIONS there."""
    process, port, folder = _platform("info")
    best = (0, 0.0)
    try:
        assert process.proc is not None
        pid = process.proc.pid
        for rate in steps:
            cost = _run_against([pid], port, rate, seconds, strict=False)
            if cost < 0:
                break
            best = (rate, cost)
    finally:
        process.stop()
        folder.cleanup()
    return best


def floor_options(rate: int, seconds: int, runs: int) -> tuple[float, list[float]]:
    """Median CPU seconds per OPTIONS of the canned-200 Twisted protocol."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, str(Path(__file__).with_name("sip_echo_floor.py")),
                             str(port)])
    try:
        time.sleep(1.0)
        return median_of(runs, lambda: _run_against([proc.pid], port, rate, seconds))
    finally:
        proc.terminate()
        proc.wait(10)


def kamailio_options(rate: int, seconds: int, runs: int) -> tuple[float, list[float]] | None:
    """Median CPU seconds per OPTIONS of Kamailio (None when not installed)."""
    kamailio = shutil.which("kamailio") or (
        "/usr/sbin/kamailio" if Path("/usr/sbin/kamailio").exists() else None)
    if kamailio is None:
        return None
    with tempfile.TemporaryDirectory() as folder:
        port = free_port()
        cfg = Path(folder) / "kamailio.cfg"
        cfg.write_text(KAMAILIO_CFG.read_text().replace("@MODULES@", KAMAILIO_MODULES)
                       .replace("@PORT@", str(port)))
        proc = subprocess.Popen([kamailio, "-f", str(cfg), "-DD", "-E", "-x", "tlsf",
                                 "-m", "1024", "-M", "64", "-P", f"{folder}/k.pid"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            time.sleep(1.5)
            pids = [proc.pid, *_children(proc.pid)]
            return median_of(runs, lambda: _run_against(pids, port, rate, seconds))
        finally:
            proc.terminate()
            proc.wait(10)


def _runs(values: list[float]) -> str:
    return ", ".join(f"{v * 1e6:.0f}" for v in values)


def run(rate: int = 2000, seconds: int = 10, runs: int = 3) -> list[tuple[str, str, str]]:
    """Rows (what, figure, detail) of the OPTIONS load benchmark."""
    detail = f"SIPp UDP, {rate}/s for {seconds} s, median of {runs}"
    info, info_runs = telavox_options(rate, seconds, runs, "info")
    warn, warn_runs = telavox_options(rate, seconds, runs, "warn")
    floor, floor_runs = floor_options(rate, seconds, runs)
    rows = [
        ("telavox: OPTIONS answered (log_level=info, default)", f"{info * 1e6:.0f} µs CPU",
         f"{detail}; runs {_runs(info_runs)} µs"),
        ("telavox: OPTIONS answered (log_level=warn)", f"{warn * 1e6:.0f} µs CPU",
         f"{detail}; runs {_runs(warn_runs)} µs"),
        ("floor: Twisted UDP protocol answering a canned 200", f"{floor * 1e6:.0f} µs CPU",
         f"{detail}; runs {_runs(floor_runs)} µs (bench/sip_echo_floor.py)"),
    ]
    kam = kamailio_options(rate, seconds, runs)
    if kam is not None:
        k, k_runs = kam
        rows.append(("Kamailio 5.6 (t_newtran + t_reply), reference", f"{k * 1e6:.0f} µs CPU",
                     f"{detail}; runs {_runs(k_runs)} µs"))
        rows.append(("ratio telavox (info) / Kamailio", f"{info / k:.1f}×", "same run"))
    steps = (2000, 3000, 4000, 5000, 6000, 7000, 8000, 10000)
    top, cost = telavox_max_rate(steps, 8)
    rows.append(("telavox: highest OPTIONS rate answered in full", f"{top:,}/s",
                 f"steps {', '.join(map(str, steps))}/s of 8 s; a step passes with ≥ 99.9% "
                 f"answered and ≥ 95% of the rate placed; {cost * 1e6:.0f} µs CPU per "
                 "OPTIONS there"))
    return rows
