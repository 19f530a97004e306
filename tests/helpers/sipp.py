"""Running SIPp scenarios from tests."""

from __future__ import annotations

import subprocess
from pathlib import Path

from helpers.process import free_port
from helpers.tools import require_tool

ROOT = Path(__file__).resolve().parents[2]
TEST_SCENARIOS = ROOT / "tests" / "integration" / "sipp"
BENCH_SCENARIOS = ROOT / "bench" / "sipp"


class Sipp:
    """One SIPp process (foreground with :meth:`run`, or background with
    :meth:`start` / :meth:`wait`)."""

    def __init__(self, scenario: Path, target: str, *, folder: Path, host: str = "127.0.0.1",
                 port: int = 0, calls: int = 1, rate: float = 10, transport: str = "u1",
                 extra: tuple[str, ...] = (), timeout: float = 60) -> None:
        self.folder = folder
        self.timeout = timeout
        self.errors = folder / f"{scenario.stem}-{port}-errors.log"
        self.command = [
            "timeout", str(int(timeout)), require_tool("sipp", "sip-tester"),
            "-sf", str(scenario), "-i", host, "-p", str(port), "-cp", str(free_port()),
            "-m", str(calls), "-r", str(rate), "-t", transport, "-nostdin",
            "-timeout", f"{int(timeout) - 5}s", "-recv_timeout", "10s",
            "-default_behaviors", "all,-abortunexp",
            "-trace_err", "-error_file", str(self.errors), *extra, target]
        self.proc: subprocess.Popen[bytes] | None = None
        self.output = b""

    def start(self) -> Sipp:
        """Run in the background."""
        self.proc = subprocess.Popen(self.command, cwd=self.folder, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT)
        return self

    def wait(self, timeout: float | None = None) -> int:
        """Wait for the end; returns the exit status (0: every call passed)."""
        assert self.proc is not None
        self.output, _ = self.proc.communicate(timeout=timeout or self.timeout + 10)
        return self.proc.returncode

    def run(self) -> int:
        """Run to the end in the foreground."""
        return self.start().wait()

    def stop(self) -> None:
        """Kill a background SIPp."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.communicate(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.communicate()

    def report(self) -> str:
        """The end of SIPp's screen and its error log, for assertion messages."""
        errors = self.errors.read_text(errors="replace") if self.errors.exists() else ""
        return self.output.decode(errors="replace")[-3000:] + "\n" + errors[-3000:]
