"""AGI scripts of the integration tests (tests/integration/test_agi.py),
run both as AGI programs (process_agi.py) and behind a FastAGI server
(fastagi_server.py).

``pyst`` is written with pyst2, a third-party AGI library, to prove that a
library written for Asterisk works unchanged.  The others speak raw AGI to
misbehave on purpose: ``crash`` dies in the middle of its session,
``garbage`` sends junk (and checks it gets 510 and can go on), ``hang``
answers and then says nothing.  Each raw one gives back what it heard
besides its replies.
"""

from __future__ import annotations

import signal
import sys
import time
from typing import BinaryIO

from asterisk.agi import AGI


class CrashError(Exception):
    """The script dies here (the runner of the scenario exits abruptly)."""


class PreparsedAGI(AGI):
    """pyst2's AGI on an environment block the server has already read."""

    def __init__(self, env: dict[str, str], stdin, stdout, stderr) -> None:  # type: ignore[no-untyped-def]
        self._preparsed = env
        super().__init__(stdin=stdin, stdout=stdout, stderr=stderr)

    def _get_agi_env(self) -> None:
        self.env = dict(self._preparsed)


def read_env(rfile: BinaryIO) -> dict[str, str]:
    """The environment block, up to its empty line."""
    env = {}
    while True:
        line = rfile.readline().decode().strip()
        if not line:
            return env
        name, _, value = line.partition(":")
        env[name.strip()] = value.strip()


def pyst(agi: AGI) -> None:
    """Answer, play a prompt, collect three digits, keep them in a channel
    variable, say goodbye in the log and hang up — with pyst2."""
    agi.answer()
    agi.stream_file("hello")
    digits = agi.get_data("enter-number", 3000, 3)
    agi.set_variable("DIGITS", digits)
    agi.set_variable("PYST_ARGS", ",".join(v for k, v in sorted(agi.env.items())
                                           if k.startswith("agi_arg_")))
    agi.verbose(f"collected {digits}")
    agi.hangup()


def _command(rfile: BinaryIO, wfile: BinaryIO, line: bytes) -> bytes:
    wfile.write(line + b"\n")
    wfile.flush()
    reply = rfile.readline()
    sys.stderr.write(f"sent {line!r}, got {reply!r}\n")
    return reply


def crash(env: dict[str, str], rfile: BinaryIO, wfile: BinaryIO) -> bytes:
    """Answer, then die with a half-written command."""
    _command(rfile, wfile, b"ANSWER")
    wfile.write(b"STREAM FI")
    wfile.flush()
    raise CrashError("mid-session")


def garbage(env: dict[str, str], rfile: BinaryIO, wfile: BinaryIO) -> bytes:
    """Junk and unknown commands get 510 (an unknown application -2); the
    session goes on, and the script records that it did."""
    expected = [
        (b"\x00\xff\xfe garbage \x01\x02", b"510 Invalid or unknown command\n"),
        (b"FLY ME TO THE MOON", b"510 Invalid or unknown command\n"),
        (b"EXEC NoSuchApplication", b"200 result=-2\n"),
        (b"ANSWER", b"200 result=0\n"),
    ]
    for line, reply in expected:
        got = _command(rfile, wfile, line)
        if got != reply:
            raise SystemExit(f"{line!r}: expected {reply!r}, got {got!r}")
    _command(rfile, wfile, b"SET VARIABLE GARBAGE survived")
    return b""


def hang(env: dict[str, str], rfile: BinaryIO, wfile: BinaryIO) -> bytes:
    """Answer, then say nothing (ignoring SIGHUP) until the other side
    closes (FastAGI: gives what it sent meanwhile) or a long time passes."""
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    _command(rfile, wfile, b"ANSWER")
    heard = b""
    if env.get("agi_network") == "yes":
        while chunk := rfile.read(1):  # the client must close the connection
            heard += chunk
        return heard
    time.sleep(600)
    return heard


RAW = {"crash": crash, "garbage": garbage, "hang": hang}
