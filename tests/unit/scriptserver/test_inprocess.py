"""Unit tests of :class:`telavox.scriptserver.inprocess.Agi` and the
built-in script path of :class:`telavox.scriptserver.runner.ScriptRunner`:
the in-process API gives the very replies a script reads on the wire, and
raises where a library would."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from twisted.internet import defer
from twisted.internet.task import Clock
from zope.interface.verify import verifyObject

from telavox.interfaces import ChannelHungUp, IScriptServer
from telavox.scriptserver import (
    Agi,
    AgiCommandError,
    AgiOptions,
    AgiSession,
    IAstDB,
    MemoryAstDB,
    Reply,
    ScriptRunner,
)
from telavox.scriptserver.session import environment_for

from .fakechannel import HANGUP, TIMEOUT, FakeChannel
from .support import Harness, first, make_sounds

INPUTS = ["1", "2", "#", TIMEOUT, "9", "#"]

# (in-process call, the same command as a script would send it)
SAME: list[tuple[Callable[[Agi], defer.Deferred[Reply]], bytes]] = [
    (lambda a: a.answer(), b"ANSWER"),
    (lambda a: a.stream_file("hello", "0123456789"), b'STREAM FILE hello "0123456789"'),
    (lambda a: a.get_data("enter-number", 3000, 4), b"GET DATA enter-number 3000 4"),
    (lambda a: a.wait_for_digit(1000), b"WAIT FOR DIGIT 1000"),
    (lambda a: a.say_number(23, "9"), b"SAY NUMBER 23 9"),
    (lambda a: a.say_digits("120", ""), b'SAY DIGITS 120 ""'),
    (lambda a: a.record_file("msg", "wav", "#", 2000, beep=True),
     b"RECORD FILE msg wav # 2000 0 BEEP"),
    (lambda a: a.set_variable("X", "a b"), b'SET VARIABLE X "a b"'),
    (lambda a: a.get_variable("X"), b"GET VARIABLE X"),
    (lambda a: a.get_full_variable("${X}!"), b'GET FULL VARIABLE "${X}!"'),
    (lambda a: a.database_put("f", "k", "v"), b"DATABASE PUT f k v"),
    (lambda a: a.database_get("f", "k"), b"DATABASE GET f k"),
    (lambda a: a.database_del("f", "k"), b"DATABASE DEL f k"),
    (lambda a: a.database_deltree("f"), b"DATABASE DELTREE f"),
    (lambda a: a.exec_("Playback", "hello"), b"EXEC Playback hello"),
    (lambda a: a.exec_("VoiceMail", "1001"), b"EXEC VoiceMail 1001"),
    (lambda a: a.channel_status(), b"CHANNEL STATUS"),
    (lambda a: a.set_callerid('"Bob" <42>'), b'SET CALLERID "\\"Bob\\" <42>"'),
    (lambda a: a.verbose("hi", 2), b"VERBOSE hi 2"),
    (lambda a: a.noop(), b"NOOP"),
    (lambda a: a.hangup(), b"HANGUP"),
]


def test_in_process_replies_equal_wire_replies(tmp_path: Path) -> None:
    """The same commands, once through Agi and once as wire lines on an
    identical channel, give byte-identical replies and channel calls."""
    wire = Harness(tmp_path / "wire", INPUTS, record_dir=str(tmp_path))
    wire.session.start(environment_for(wire.channel, "x", (), "v", threadid=1))
    wire.take()
    for _, line in SAME:
        wire.session.data_received(line + b"\n")
    wire_replies = wire.take().replace(b"HANGUP\n", b"")

    local = Harness(tmp_path / "local", INPUTS, record_dir=str(tmp_path))
    agi = Agi(local.session, environment_for(local.channel, "x", (), "v", threadid=1))
    replies = [first(call(agi)) for call, _ in SAME]
    assert b"".join(r.to_bytes() for r in replies) == wire_replies
    assert str(local.channel.calls).replace("/local/", "/wire/") == str(wire.channel.calls)
    assert replies[1].digit == "1" and replies[2].result == "2"
    assert replies[3].data is None and replies[15].value == -2


def test_dead_channel_raises_channel_hung_up(tmp_path: Path) -> None:
    """After the hang-up, a command needing a live channel (511) fails with
    ChannelHungUp; dead-safe commands still answer."""
    h = Harness(tmp_path, [HANGUP])
    agi = Agi(h.session, environment_for(h.channel, "x", (), "v"))
    assert first(agi.wait_for_digit(-1)).result == "-1"
    with pytest.raises(ChannelHungUp):
        first(agi.stream_file("hello"))
    assert first(agi.set_variable("A", "1")).result == "1"


def test_refused_commands_raise_agi_command_error(tmp_path: Path) -> None:
    """510 and 520 fail with AgiCommandError carrying the reply; command()
    gives them back as they are."""
    h = Harness(tmp_path)
    agi = Agi(h.session, environment_for(h.channel, "x", (), "v"))
    with pytest.raises(AgiCommandError) as unknown:
        first(agi.execute("FLY TO", "moon"))
    assert unknown.value.reply.code == 510
    with pytest.raises(AgiCommandError) as syntax:
        first(agi.execute("WAIT FOR DIGIT"))
    assert syntax.value.reply.code == 520
    assert first(agi.command("FLY")).to_bytes() == b"510 Invalid or unknown command\n"


def test_calls_made_together_run_one_at_a_time(tmp_path: Path) -> None:
    """Two calls without waiting: the second runs after the first."""
    h = Harness(tmp_path, [TIMEOUT])
    agi = Agi(h.session, environment_for(h.channel, "x", (), "v"))
    h.channel.inputs.appendleft("<block>")
    got: list[str] = []
    agi.wait_for_digit(-1).addCallback(lambda r: got.append(r.result))
    agi.noop().addCallback(lambda r: got.append(r.result))
    assert got == [] and h.channel.names() == ["wait_digit"]
    assert h.channel.blocked is not None
    h.channel.blocked.callback("5")
    assert sorted(got) == ["0", "53"] and h.session.commands == 2


def test_agi_env_is_what_a_library_parses(tmp_path: Path) -> None:
    """agi.env has the agi_* variables as strings."""
    h = Harness(tmp_path)
    agi = Agi(h.session, environment_for(h.channel, "menu", ("a", "b"), "v"))
    assert agi.env["agi_request"] == "menu" and agi.env["agi_arg_2"] == "b"
    assert agi.env["agi_callerid"] == "1001" and agi.channel is h.channel


# -- ScriptRunner with built-in scripts ---------------------------------------------------------


def runner(tmp_path: Path, **kwargs: Any) -> tuple[ScriptRunner, Clock]:
    clock = Clock()
    sounds = make_sounds(tmp_path / "sounds")
    return ScriptRunner(clock, options=AgiOptions(sound_dirs=(str(sounds),)), **kwargs), clock


def test_runner_provides_iscriptserver(tmp_path: Path) -> None:
    """ScriptRunner is an IScriptServer; MemoryAstDB an IAstDB."""
    assert verifyObject(IScriptServer, runner(tmp_path)[0])
    assert verifyObject(IAstDB, MemoryAstDB())


def test_runner_runs_a_registered_script(tmp_path: Path) -> None:
    """A built-in gets an Agi and the arguments; run fires when it is done."""
    scripts, _ = runner(tmp_path)
    seen: list[Any] = []

    @defer.inlineCallbacks
    def greet(agi: Agi, args: tuple[str, ...]) -> Any:
        yield agi.answer()
        reply = yield agi.stream_file("hello", "")
        seen.append((args, reply.endpos, agi.env["agi_request"]))

    scripts.register("greet", greet)
    channel = FakeChannel()
    done = scripts.run("greet", channel, ["x", 2])  # type: ignore[list-item]
    assert first(done) is None and scripts.running == 0
    assert seen == [(("x", "2"), 8000, "greet")]
    assert channel.names() == ["answer", "play"]


def test_runner_survives_failing_scripts(tmp_path: Path) -> None:
    """A built-in that raises, or dies on the hang-up, still lets run fire
    with None; an unknown script fires at once."""
    scripts, _ = runner(tmp_path)

    def broken(agi: Agi, args: tuple[str, ...]) -> None:
        raise RuntimeError("bug")

    @defer.inlineCallbacks
    def stubborn(agi: Agi, args: tuple[str, ...]) -> Any:
        yield agi.wait_for_digit(100)
        yield agi.stream_file("hello")  # 511 → ChannelHungUp

    scripts.register("broken", broken)
    scripts.register("stubborn", stubborn)
    assert first(scripts.run("broken", FakeChannel())) is None
    assert first(scripts.run("stubborn", FakeChannel([HANGUP]))) is None
    assert first(scripts.run("no-such-script", FakeChannel())) is None
    assert scripts.running == 0


def test_runner_rejects_bad_builtin_names(tmp_path: Path) -> None:
    """Names that look like paths or URLs cannot be registered."""
    scripts, _ = runner(tmp_path)
    for name in ("", "a/b", "agi://x"):
        with pytest.raises(ValueError):
            scripts.register(name, lambda agi, args: None)


def test_runner_missing_program_and_bad_url(tmp_path: Path) -> None:
    """A program that does not exist or cannot run, and a bad agi:// URL:
    run fires at once, the channel untouched."""
    scripts, _ = runner(tmp_path)
    channel = FakeChannel()
    plain = tmp_path / "not-executable.sh"
    plain.write_text("#!/bin/sh\n")
    for script in (str(tmp_path / "nothing.py"), str(plain), "agi://:99/x"):
        assert first(scripts.run(script, channel)) is None
    assert channel.calls == [] and scripts.processes.running == {}


def test_session_is_stopped_after_a_builtin(tmp_path: Path) -> None:
    """A built-in that set an autohangup leaves no timer behind."""
    scripts, clock = runner(tmp_path)
    sessions: list[AgiSession] = []

    @defer.inlineCallbacks
    def timed(agi: Agi, args: tuple[str, ...]) -> Any:
        sessions.append(agi.session)
        yield agi.set_autohangup(30)

    scripts.register("timed", timed)
    first(scripts.run("timed", FakeChannel()))
    assert sessions[0].ended and clock.getDelayedCalls() == []
