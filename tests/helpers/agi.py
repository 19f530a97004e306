"""The tests' FastAGI server: tests/integration/agi/fastagi_server.py (pyst2
scenarios) in a subprocess."""

from __future__ import annotations

import select
import subprocess
import sys
from pathlib import Path

AGI_SCRIPTS = Path(__file__).resolve().parents[1] / "integration" / "agi"
"""The folder of the AGI scripts and scenarios the tests run."""


class FastAgiServer:
    """tests/integration/agi/fastagi_server.py in a subprocess."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, str(AGI_SCRIPTS / "fastagi_server.py")], stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL, text=True)
        self.port = int(self.readline())

    def readline(self, timeout: float = 10.0) -> str:
        """The next line the server prints (bounded wait)."""
        assert self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            raise AssertionError("the FastAGI server printed nothing")
        return self.proc.stdout.readline().strip()

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
