"""Run the platform as a real ``twistd telavox`` process for integration tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def free_port(host: str = "127.0.0.1") -> int:
    """A port free for both UDP and TCP on ``host`` right now."""
    for _ in range(50):
        tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        tcp.bind((host, 0))
        port = tcp.getsockname()[1]
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            udp.bind((host, port))
        except OSError:
            continue
        finally:
            udp.close()
            tcp.close()
        return port
    raise RuntimeError("no free port")


def twistd_command(*args: str) -> list[str]:
    """``twistd`` of the running interpreter, without a pid file."""
    return [str(Path(sys.executable).parent / "twistd"), "--pidfile=", "-n", "telavox", *args]


class PlatformProcess:
    """``twistd -n telavox --config <file>`` in a subprocess; output to a log file."""

    def __init__(self, folder: Path, config_text: str) -> None:
        self.folder = folder
        self.config = folder / "telavox.toml"
        self.config.write_text(config_text)
        self.log_path = folder / "twistd.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, ready: str = "telavox started", timeout: float = 20.0) -> None:
        """Start and wait until the log shows ``ready``."""
        log = open(self.log_path, "wb")  # noqa: SIM115
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        self.proc = subprocess.Popen(twistd_command("--config", str(self.config)),
                                     stdout=log, stderr=subprocess.STDOUT, cwd=self.folder,
                                     env=env)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if ready in self.log():
                return
            if self.proc.poll() is not None:
                raise RuntimeError(f"telavox exited with {self.proc.returncode}:\n{self.log()}")
            time.sleep(0.05)
        raise RuntimeError(f"telavox did not start in {timeout}s:\n{self.log()}")

    def log(self) -> str:
        """Everything the process wrote so far."""
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def wait_for_log(self, text: str, timeout: float = 10.0, after: int = 0) -> None:
        """Wait until ``text`` appears in the log after offset ``after``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in self.log()[after:]:
                return
            time.sleep(0.05)
        raise AssertionError(f"{text!r} not logged in {timeout}s:\n{self.log()[after:]}")

    def signal(self, signum: int) -> None:
        """Send a signal to the process."""
        assert self.proc is not None
        self.proc.send_signal(signum)

    def alive(self) -> bool:
        """True while the process runs."""
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 15.0) -> int:
        """SIGTERM and wait; returns the exit status (kills it if it hangs)."""
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
                raise AssertionError(f"telavox did not stop on SIGTERM:\n{self.log()}") from None
        return self.proc.returncode

    def stop_clean(self) -> None:
        """Stop it and check that it stopped as asked and logged no traceback."""
        status = self.stop()
        log = self.log()
        assert "Traceback" not in log, log
        assert status in (0, -15), log


def udp_exchange(port: int, data: bytes, timeout: float = 3.0,
                 host: str = "127.0.0.1") -> bytes | None:
    """Send one datagram and return the first answer (None on timeout)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        sock.bind((host, 0))
        sock.sendto(data, (host, port))
        try:
            return sock.recv(65535)
        except TimeoutError:
            return None


def local_port_of(sock: socket.socket) -> int:
    """The local port a socket is bound to."""
    return int(sock.getsockname()[1])
