"""AGI command round trips over FastAGI: commands per second and the
platform's CPU per command.

A FastAGI server (``python -m bench.agi_rate server``: plain Python
sockets, no AGI library) listens on 127.0.0.1; for each connection it reads
the environment block, then sends :data:`COMMANDS` commands one at a time,
alternating ``NOOP`` and ``GET VARIABLE BENCH``, reading each reply line
before the next command (checking it is ``200 result=...``), and closes.
It times the command loop (wall clock) and prints it.

The platform side (``python -m bench.agi_rate client PORT COMMANDS RUNS``)
is our :class:`~telavox.scriptserver.runner.ScriptRunner`, whose
:class:`~telavox.scriptserver.fastagi.FastAgiClient` runs
``agi://127.0.0.1:PORT/bench`` on a
:class:`tests.unit.scriptserver.fakechannel.FakeChannel` (a live, answered
channel with the variable ``BENCH`` set), under the real reactor; the
collector set up as the platform sets it up.  Its CPU time
(``time.process_time``) from ``run`` to the session's end (connection made
and closed included) is divided by the commands.  Each runs in its own
process, pinned to its own CPU when there are two, as a script server on
another host would be; medians of :data:`RUNS`.

Run: ``.venv/bin/python -m bench.agi_rate`` (``--quick``: 5,000 commands,
one run).  Loopback only; both processes run under coreutils ``timeout``
and are stopped in ``finally``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.measure import descendants, process_cpu, stop_process
from bench.rtp_relay import _pinned, _readline, box_busy, cpu_sets

ROOT = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"
COMMANDS = 20_000
RUNS = 3
LINES = (b"NOOP\n", b"GET VARIABLE BENCH\n")


# --- the FastAGI server (its own process) ------------------------------------------------


def server() -> int:
    """Listen on 127.0.0.1, print the port, then serve connections one after
    another: read the block, take the command count from its first
    argument (``agi_arg_1``), run the loop, print one JSON line."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((HOST, 0))
    listener.listen(4)
    sys.stdout.write(f"{listener.getsockname()[1]}\n")
    sys.stdout.flush()
    while True:
        conn, _ = listener.accept()
        with conn:
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            rfile = conn.makefile("rb")
            env = {}
            while True:
                line = rfile.readline()
                if not line.strip():
                    break
                name, _, value = line.decode().partition(":")
                env[name.strip()] = value.strip()
            count = int(env.get("agi_arg_1", "0"))
            send = conn.sendall
            readline = rfile.readline
            bad = 0
            start = time.perf_counter()
            for i in range(count):
                send(LINES[i & 1])
                if not readline().startswith(b"200 result="):
                    bad += 1
            seconds = time.perf_counter() - start
            conn.shutdown(socket.SHUT_WR)
            rest = rfile.read()
        sys.stdout.write(json.dumps({"commands": count, "seconds": seconds, "bad": bad,
                                     "script": env.get("agi_network_script", ""),
                                     "after": rest.decode(errors="replace")}) + "\n")
        sys.stdout.flush()


# --- the platform side (its own process) -------------------------------------------------


def client(port: int, commands: int, runs: int) -> int:
    """Run the FastAGI script ``runs`` times on fresh fake channels; print a
    JSON line per run with the CPU seconds and wall seconds it took."""
    import gc

    from twisted.internet import defer, reactor
    from twisted.logger import globalLogBeginner

    from telavox.platform import GC_THRESHOLDS
    from telavox.scriptserver.runner import ScriptRunner
    from tests.unit.scriptserver.fakechannel import FakeChannel

    globalLogBeginner.beginLoggingTo([], redirectStandardIO=False)
    runner = ScriptRunner(reactor)
    url = f"agi://{HOST}:{port}/bench"
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
    failed: list[BaseException] = []

    @defer.inlineCallbacks
    def all_runs() -> Any:
        try:
            for _ in range(runs):
                channel = FakeChannel(variables={"BENCH": "value"}, state=6)
                cpu, wall = time.process_time(), time.perf_counter()
                yield runner.run(url, channel, [str(commands)])
                cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
                sys.stdout.write(json.dumps({"cpu": cpu, "wall": wall}) + "\n")
                sys.stdout.flush()
        except BaseException as e:  # report it and stop
            failed.append(e)
        finally:
            reactor.stop()  # type: ignore[attr-defined]

    reactor.callWhenRunning(all_runs)  # type: ignore[attr-defined]
    reactor.run()  # type: ignore[attr-defined]
    if failed:
        print(f"failed: {failed[0]!r}", file=sys.stderr)
        return 1
    return 0


# --- the benchmark -----------------------------------------------------------------------------


def _tree_cpu(pid: int) -> float:
    """CPU seconds of ``pid`` and its descendants (``timeout`` and its child)."""
    total = 0.0
    for p in descendants(pid):
        with contextlib.suppress(OSError):
            total += process_cpu(p)
    return total


def measure(commands: int, runs: int) -> list[dict[str, float]]:
    """``runs`` sessions of ``commands`` commands: per run the server's wall
    seconds for the loop, the platform's CPU and wall seconds, and the
    other work on the box (cores' worth of CPU time of other programs)."""
    budget = str(int(60 + runs * commands / 1000))
    client_cpus, server_cpus = cpu_sets()
    procs: list[subprocess.Popen[bytes]] = []
    try:
        srv = subprocess.Popen(["timeout", "-k", "5", budget, sys.executable, "-m",
                                "bench.agi_rate", "server"], stdout=subprocess.PIPE,
                               cwd=ROOT, bufsize=0, preexec_fn=_pinned(server_cpus))
        procs.append(srv)
        port = int(_readline(srv, time.monotonic() + 30, "FastAGI server"))
        cli = subprocess.Popen(["timeout", "-k", "5", budget, sys.executable, "-m",
                                "bench.agi_rate", "client", str(port), str(commands),
                                str(runs)], stdout=subprocess.PIPE, cwd=ROOT, bufsize=0,
                               preexec_fn=_pinned(client_cpus))
        procs.append(cli)
        deadline = time.monotonic() + int(budget)
        results = []
        for _ in range(runs):
            busy, mine, wall = box_busy(), _tree_cpu(srv.pid) + _tree_cpu(cli.pid), time.monotonic()
            served = json.loads(_readline(srv, deadline, "FastAGI server"))
            ours = json.loads(_readline(cli, deadline, "platform side"))
            busy, mine = box_busy() - busy, _tree_cpu(srv.pid) + _tree_cpu(cli.pid) - mine
            other = max(0.0, busy - mine) / (time.monotonic() - wall)
            if served["commands"] != commands or served["bad"]:
                raise RuntimeError(f"FastAGI run went wrong: {served}")
            results.append({"server_wall": served["seconds"], "cpu": ours["cpu"],
                            "wall": ours["wall"], "other": other})
        if cli.wait(30) != 0:
            raise RuntimeError(f"the platform side exited with {cli.returncode}")
        return results
    finally:
        for proc in reversed(procs):
            stop_process(proc)


def run(quick: bool = False) -> list[tuple[str, str, str]]:
    """Rows (what, figure, detail): commands per second and CPU per command."""
    commands, runs = (5_000, 1) if quick else (COMMANDS, RUNS)
    results = measure(commands, runs)
    rates = [commands / r["server_wall"] for r in results]
    cpus = [r["cpu"] / commands for r in results]
    rate = statistics.median(rates)
    cpu = statistics.median(cpus)
    other = max(r["other"] for r in results)
    busy = (f"; other work on the box: up to {other:.0%} of a core" if other > 0.15 else "")
    detail = (f"{commands:,} commands (NOOP and GET VARIABLE alternating) over one FastAGI "
              f"connection on loopback, one at a time; median of {runs}")
    return [
        ("AGI round trips over FastAGI", f"{rate:,.0f} commands/s",
         f"{detail}; runs {', '.join(f'{r:,.0f}' for r in rates)}/s; wall clock of the "
         f"server's command loop (a plain-socket Python server in its own process){busy}"),
        ("platform CPU per AGI command (FastAgiClient + AgiSession)", f"{cpu * 1e6:.1f} µs CPU",
         f"{detail}; runs {', '.join(f'{c * 1e6:.1f}' for c in cpus)} µs; process_time of the "
         f"platform side, connection set-up and close included; {1 / cpu:,.0f} commands/s "
         f"per core{busy}"),
    ]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv == ["server"]:
        return server()
    if argv[:1] == ["client"] and len(argv) == 4:
        return client(int(argv[1]), int(argv[2]), int(argv[3]))
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="5,000 commands, one run")
    args = parser.parse_args(argv)
    for row in run(quick=args.quick):
        print(" | ".join(row), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
