"""Unit tests of :class:`telavox.scriptserver.session.AgiSession` on the
wire path: what it writes for the bytes a script sends, when it tells the
script about a hang-up, dead-channel replies, and every way a session ends
(the script closing, ``failure``, the idle timeout, a line too long,
AGIEXITONHANGUP) — on a fake channel and a fake clock."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from telavox.scriptserver import AgiEnvironment, EndReason, environment_for

from .fakechannel import BLOCK, FakeChannel
from .support import Harness, first

ENV = AgiEnvironment(request="test", channel="SIP/1001-0000002a", threadid=1)


def started(tmp_path: Path, inputs: list[str] | None = None, **options: Any) -> Harness:
    h = Harness(tmp_path, inputs or [], **options)
    h.session.start(ENV)
    assert h.take() == ENV.to_bytes()
    return h


def ended(h: Harness) -> EndReason | None:
    return first(h.session.done) if h.session.done.called else None


def test_commands_in_any_chunks_get_replies_in_order(tmp_path: Path) -> None:
    """Lines split and joined arbitrarily are answered one reply each, in
    order, after the environment block."""
    h = started(tmp_path)
    for chunk in (b"ANS", b"WER\nNOOP\nSET VARIABLE x", b" 1\nGET VARIABLE x\n"):
        h.session.data_received(chunk)
    assert h.take() == b"200 result=0\n200 result=0\n200 result=1\n200 result=1 (1)\n"


def test_unknown_command_and_garbage_get_510_and_the_session_goes_on(tmp_path: Path) -> None:
    """An unknown command, an empty line and binary junk each get 510; the
    next command still runs."""
    h = started(tmp_path)
    h.session.data_received(b"FOO BAR\n\n\xff\xfe junk \x01\nANSWER\n")
    assert h.take() == b"510 Invalid or unknown command\n" * 3 + b"200 result=0\n"
    assert not h.session.ended


def test_bad_syntax_gets_the_multi_line_520(tmp_path: Path) -> None:
    """Wrong arguments get Asterisk's 520 block with the usage."""
    h = started(tmp_path)
    h.session.data_received(b"WAIT FOR DIGIT\n")
    assert h.take() == (b"520-Invalid command syntax.  Proper usage follows:\n"
                        b" Usage: WAIT FOR DIGIT <timeout>\n"
                        b"\tWaits up to <timeout> ms (-1: no limit) for a digit.  Returns its "
                        b"ASCII code, 0 on timeout, -1 on hang-up.\n"
                        b"520 End of proper usage.\n")


def test_commands_wait_for_the_one_in_progress(tmp_path: Path) -> None:
    """A line sent while a command runs is answered after it."""
    h = started(tmp_path, [BLOCK])
    h.session.data_received(b"WAIT FOR DIGIT -1\nNOOP\n")
    assert h.take() == b"" and h.session.busy
    assert h.channel.blocked is not None
    h.channel.blocked.callback("1")
    assert h.take() == b"200 result=49\n200 result=0\n"


def test_hangup_while_idle_sends_hangup_then_dead_commands_get_511(tmp_path: Path) -> None:
    """The caller hanging up between commands: HANGUP is written at once;
    commands needing a live channel then get 511 (HANGUP and CHANNEL STATUS
    included), the others still run."""
    h = started(tmp_path)
    h.channel.caller_hangs_up()
    assert h.take() == b"HANGUP\n" and h.session.dead
    h.session.data_received(b"STREAM FILE hello \"\"\nHANGUP\nCHANNEL STATUS\n"
                            b"SET VARIABLE a b\nGET VARIABLE a\nDATABASE PUT f k v\n"
                            b"VERBOSE bye\nNOOP\n")
    assert h.take() == (b"511 Command Not Permitted on a dead channel\n" * 3 +
                        b"200 result=1\n200 result=1 (b)\n200 result=1\n200 result=1\n"
                        b"200 result=0\n")
    assert h.channel.calls == [] and h.notices == 1


def test_hangup_during_a_command_is_told_after_its_reply(tmp_path: Path) -> None:
    """A hang-up while a command runs: its reply (-1) first, then HANGUP."""
    h = started(tmp_path, [BLOCK])
    h.session.data_received(b"WAIT FOR DIGIT -1\n")
    h.channel.caller_hangs_up()
    assert h.take() == b"200 result=-1\nHANGUP\n"


def test_hangup_command_is_followed_by_the_hangup_notice(tmp_path: Path) -> None:
    """The script's own HANGUP: 200 result=1, then HANGUP (as Asterisk's
    soft hang-up is noticed by its AGI loop)."""
    h = started(tmp_path)
    h.session.data_received(b"HANGUP\n")
    assert h.take() == b"200 result=1\nHANGUP\n"


def test_agisighup_no_keeps_quiet(tmp_path: Path) -> None:
    """AGISIGHUP=no: no HANGUP line; the session still goes dead."""
    channel = FakeChannel(variables={"AGISIGHUP": "no"})
    h = Harness(tmp_path, channel=channel)
    h.session.start(ENV)
    h.take()
    channel.caller_hangs_up()
    assert h.take() == b"" and h.session.dead and h.session.send_sighup is False


def test_agiexitonhangup_ends_the_session(tmp_path: Path) -> None:
    """AGIEXITONHANGUP=yes: the session ends when the hang-up is noticed."""
    h = Harness(tmp_path, channel=FakeChannel(variables={"AGIEXITONHANGUP": "yes"}))
    h.session.start(ENV)
    h.channel.caller_hangs_up()
    assert ended(h) == EndReason.HANGUP


def test_channel_down_at_start_runs_dead_without_notice(tmp_path: Path) -> None:
    """A channel already down: dead from the start (DeadAGI), no HANGUP."""
    h = Harness(tmp_path, channel=FakeChannel(state=0))
    h.session.start(ENV)
    h.session.data_received(b"ANSWER\nNOOP\n")
    assert h.take() == ENV.to_bytes() + b"511 Command Not Permitted on a dead channel\n" \
        b"200 result=0\n"
    assert h.notices == 0


def test_script_closing_ends_after_the_last_line(tmp_path: Path) -> None:
    """At the end of input an unterminated last line still runs; then the
    session ends, the channel untouched."""
    h = started(tmp_path)
    h.session.data_received(b"NOOP\nANSWER")
    h.session.input_ended()
    assert h.take() == b"200 result=0\n200 result=0\n"
    assert ended(h) == EndReason.CLOSED and h.channel.names() == ["answer"]


def test_closing_while_a_command_runs_waits_for_it(tmp_path: Path) -> None:
    """The script's side closing during a command: the session ends once
    the command is done."""
    h = started(tmp_path, [BLOCK])
    h.session.data_received(b"WAIT FOR DIGIT -1\n")
    h.session.input_ended()
    assert not h.session.ended
    assert h.channel.blocked is not None
    h.channel.blocked.callback("")
    assert ended(h) == EndReason.CLOSED


def test_failure_line_ends_the_session(tmp_path: Path) -> None:
    """'failure' (what Asterisk's child writes when exec fails) ends it."""
    h = started(tmp_path)
    h.session.data_received(b"FAILURE\nANSWER\n")
    assert ended(h) == EndReason.FAILURE and h.take() == b""


def test_idle_timeout_ends_the_session_and_hangs_up(tmp_path: Path) -> None:
    """No command for idle_timeout seconds: the session ends and the
    channel is hung up; a command in time re-arms the timer."""
    h = started(tmp_path, idle_timeout=30)
    h.clock.advance(29)
    h.session.data_received(b"NOOP\n")
    h.clock.advance(29)
    assert not h.session.ended
    h.clock.advance(1)
    assert ended(h) == EndReason.TIMEOUT and h.channel.names() == ["hangup"]
    assert h.take() == b"200 result=0\n"  # no HANGUP line: the end is the adapter's
    assert h.clock.getDelayedCalls() == []


def test_no_timeout_while_a_command_runs(tmp_path: Path) -> None:
    """The idle timer only runs while we wait for the script."""
    h = started(tmp_path, [BLOCK], idle_timeout=5)
    h.session.data_received(b"WAIT FOR DIGIT -1\n")
    h.clock.advance(60)
    assert not h.session.ended


def test_line_too_long_gets_510_and_ends(tmp_path: Path) -> None:
    """Megabytes without a newline: 510, and the session ends."""
    h = started(tmp_path, max_line=2048)
    h.session.data_received(b"NOOP\n")
    for _ in range(4):
        h.session.data_received(b"A" * 1000)
    assert h.take() == b"200 result=0\n510 Invalid or unknown command\n"
    assert ended(h) == EndReason.LINE_TOO_LONG
    h.session.data_received(b"\nNOOP\n")
    assert h.take() == b""


def test_reading_pauses_when_commands_pile_up(tmp_path: Path) -> None:
    """More than max_pending bytes waiting behind a command pause the
    producer; it resumes once they are worked off."""

    class Producer:
        paused = 0
        resumed = 0

        def pauseProducing(self) -> None:
            self.paused += 1

        def resumeProducing(self) -> None:
            self.resumed += 1

        def stopProducing(self) -> None:
            pass

    h = started(tmp_path, [BLOCK], max_pending=100)
    producer = Producer()
    h.session.producer = producer  # type: ignore[assignment]
    h.session.data_received(b"WAIT FOR DIGIT -1\n" + b"NOOP\n" * 40)
    assert producer.paused == 1
    assert h.channel.blocked is not None
    h.channel.blocked.callback("")
    assert producer.resumed == 1 and h.take().count(b"200 result=0\n") == 41


def test_stop_ends_a_session_once(tmp_path: Path) -> None:
    """stop() ends the session; later bytes are ignored."""
    h = started(tmp_path)
    h.session.stop()
    h.session.stop(EndReason.TIMEOUT)
    h.session.data_received(b"NOOP\n")
    assert ended(h) == EndReason.STOPPED and h.take() == b""


def test_environment_for_a_channel(tmp_path: Path) -> None:
    """environment_for takes Asterisk's values from the channel."""
    channel = FakeChannel(name="SIP/1001-0000002a", caller_id="", caller_name="")
    env = environment_for(channel, "agi://h/x", ("a",), "v1", network_script="x", threadid=3)
    assert env == AgiEnvironment(request="agi://h/x", channel="SIP/1001-0000002a",
                                 type="SIP", uniqueid="1700000000.42", version="v1",
                                 callerid="unknown", calleridname="unknown", dnid="800",
                                 extension="800", threadid=3, args=("a",), network=True,
                                 network_script="x")
