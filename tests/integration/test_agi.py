"""The scriptserver's AGI against real scripts on loopback: a pyst2 script
(a third-party AGI library written for Asterisk) behind a FastAGI server
and as an AGI program, and scripts that crash, send garbage or hang.

Each scenario checks what the fake channel was asked to do, in order, and
that nothing leaks: the runner's Deferred fires, the AGI program has been
reaped, the FastAGI connection is closed (and trial finds no socket,
process or timer left in the reactor).  Every wait is bounded.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
from helpers.agi import AGI_SCRIPTS, FastAgiServer
from twisted.internet import defer, reactor
from twisted.trial import unittest
from unit.scriptserver.fakechannel import FakeChannel
from unit.scriptserver.support import make_sounds

from telavox.scriptserver import AgiOptions, ScriptRunner

pytestmark = pytest.mark.integration


PROGRAM = str(AGI_SCRIPTS / "process_agi.py")
TIMEOUT = 20.0


class AgiTests(unittest.TestCase):
    """Real scripts on the real reactor."""

    timeout = 60

    def setUp(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="agi-"))
        self.addCleanup(shutil.rmtree, self.folder, True)
        self.sounds = make_sounds(self.folder / "sounds")
        self.runner = self.make_runner(idle_timeout=15.0)

    def make_runner(self, idle_timeout: float) -> ScriptRunner:
        """A runner on our sounds; slow starts under load stay well inside
        ``idle_timeout`` except where a test wants it to expire."""
        options = AgiOptions(sound_dirs=(str(self.sounds),), idle_timeout=idle_timeout,
                             kill_after=1.0, connect_timeout=5.0)
        return ScriptRunner(reactor, options=options, interpreters={".py": (sys.executable,)})

    def sound(self, name: str) -> str:
        return str(self.sounds / "en" / f"{name}.wav")

    def fastagi(self) -> FastAgiServer:
        server = FastAgiServer()
        self.addCleanup(server.stop)
        return server

    @defer.inlineCallbacks
    def run_script(self, script: str, channel: FakeChannel, args: tuple[str, ...] = ()) -> Any:
        """Run and wait (bounded); check nothing is left running."""
        d = self.runner.run(script, channel, args)
        d.addTimeout(TIMEOUT, reactor)
        result = yield d
        self.assertIsNone(result)
        self.assertEqual(self.runner.running, 0)
        self.assertEqual(self.runner.processes.running, {})
        self.assertEqual(self.runner.fastagi.connections, set())

    def check_pyst_calls(self, channel: FakeChannel) -> None:
        """What the pyst2 scenario asks of the channel, in order."""
        self.assertEqual(channel.calls, [
            ("answer",),
            ("play", (self.sound("hello"),), ""),
            ("play", (self.sound("enter-number"),), "0123456789#*ABCD"),
            ("wait_digit", 3.0),
            ("wait_digit", 3.0),
            ("hangup",),
        ])
        self.assertEqual(channel.variables["DIGITS"], "123")

    # -- pyst2 --------------------------------------------------------------------------------

    @defer.inlineCallbacks
    def test_pyst2_over_fastagi(self) -> Any:
        """A pyst2 script behind a FastAGI server answers, plays, collects
        digits, sets a variable and hangs up; it gets the HANGUP line after
        its HANGUP's reply, and the connection closes."""
        server = self.fastagi()
        channel = FakeChannel(["1", "2", "3"])
        yield self.run_script(f"agi://127.0.0.1:{server.port}/pyst", channel, ("a", "b"))
        self.check_pyst_calls(channel)
        self.assertEqual(channel.variables["PYST_ARGS"], "a,b")
        self.assertEqual(server.readline(), "pyst: done, then b'HANGUP\\n'")

    @defer.inlineCallbacks
    def test_pyst2_as_agi_program(self) -> Any:
        """The same pyst2 script as an AGI program (spawned with our Python),
        its arguments given as agi_arg_N; it exits and is reaped."""
        channel = FakeChannel(["1", "2", "3"])
        yield self.run_script(PROGRAM, channel, ("pyst", "b"))
        self.check_pyst_calls(channel)
        self.assertEqual(channel.variables["PYST_ARGS"], "pyst,b")

    # -- misbehaving scripts ------------------------------------------------------------------

    @defer.inlineCallbacks
    def test_program_crashing_mid_session(self) -> Any:
        """A program that dies with half a command written: the session
        ends cleanly, the process is reaped, the channel is left to tproxy."""
        channel = FakeChannel()
        yield self.run_script(PROGRAM, channel, ("crash",))
        self.assertEqual(channel.names(), ["answer"])

    @defer.inlineCallbacks
    def test_fastagi_server_crashing_mid_session(self) -> Any:
        """A FastAGI server that resets the connection mid-session."""
        server = self.fastagi()
        channel = FakeChannel()
        yield self.run_script(f"agi://127.0.0.1:{server.port}/crash", channel)
        self.assertEqual(channel.names(), ["answer"])
        self.assertEqual(server.readline(), "crash: crashed")

    @defer.inlineCallbacks
    def test_program_sending_garbage_goes_on(self) -> Any:
        """Junk gets 510, an unknown application -2, and the program goes on
        (it checks each reply itself and records that it survived)."""
        channel = FakeChannel()
        yield self.run_script(PROGRAM, channel, ("garbage",))
        self.assertEqual(channel.names(), ["answer"])
        self.assertEqual(channel.variables.get("GARBAGE"), "survived")

    @defer.inlineCallbacks
    def test_fastagi_garbage_goes_on(self) -> Any:
        """The same over FastAGI; at the end the server gets HANGUP."""
        server = self.fastagi()
        channel = FakeChannel()
        yield self.run_script(f"agi://127.0.0.1:{server.port}/garbage", channel)
        self.assertEqual(channel.variables.get("GARBAGE"), "survived")
        self.assertTrue(server.readline().startswith("garbage: done"))

    @defer.inlineCallbacks
    def test_hanging_program_is_timed_out_and_killed(self) -> Any:
        """A program that answers then says nothing (and ignores SIGHUP):
        after the idle timeout the channel is hung up and the program is
        killed and reaped."""
        self.runner = self.make_runner(idle_timeout=3.0)
        channel = FakeChannel()
        yield self.run_script(PROGRAM, channel, ("hang",))
        self.assertEqual(channel.names(), ["answer", "hangup"])

    @defer.inlineCallbacks
    def test_hanging_fastagi_server_is_timed_out(self) -> Any:
        """A FastAGI server that stops talking: after the idle timeout the
        channel is hung up and the connection closed (the server sees its
        end, after a HANGUP line)."""
        self.runner = self.make_runner(idle_timeout=3.0)
        server = self.fastagi()
        channel = FakeChannel()
        yield self.run_script(f"agi://127.0.0.1:{server.port}/hang", channel)
        self.assertEqual(channel.names(), ["answer", "hangup"])
        self.assertEqual(server.readline(), "hang: done, then b'HANGUP\\n'")

    # -- nothing to run ------------------------------------------------------------------------

    @defer.inlineCallbacks
    def test_connection_refused(self) -> Any:
        """Nobody listening: run fires, the channel untouched."""
        server = FastAgiServer()
        port = server.port
        server.stop()
        channel = FakeChannel()
        yield self.run_script(f"agi://127.0.0.1:{port}/pyst", channel)
        self.assertEqual(channel.calls, [])

    @defer.inlineCallbacks
    def test_program_not_found(self) -> Any:
        """A missing program: run fires, the channel untouched."""
        channel = FakeChannel()
        yield self.run_script(str(self.folder / "missing.py"), channel)
        self.assertEqual(channel.calls, [])
        self.assertFalse(os.path.exists(self.folder / "missing.py"))
