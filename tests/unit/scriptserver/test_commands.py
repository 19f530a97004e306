"""Unit tests of :mod:`telavox.scriptserver.commands` and
:mod:`telavox.scriptserver.apps`: each AGI command on a fake channel, with
Asterisk's arguments, result values and reply bytes."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from telavox.scriptserver.agi import ALL_DIGITS
from telavox.scriptserver.apps import dial_target
from telavox.scriptserver.commands import COMMANDS, number_files
from telavox.sounds import SOUNDS_DIR

from .fakechannel import BLOCK, HANGUP, TIMEOUT, FakeChannel
from .support import Harness, first, write_wav

# -- the channel ------------------------------------------------------------------------------


def test_answer(tmp_path: Path) -> None:
    """ANSWER answers a ringing channel once: result 0."""
    h = Harness(tmp_path)
    assert h.run("ANSWER") == b"200 result=0\n"
    assert h.run("answer") == b"200 result=0\n"
    assert h.channel.names() == ["answer"] and h.channel.state() == 6


def test_hangup(tmp_path: Path) -> None:
    """HANGUP hangs up this channel (result 1); another channel's name gives
    -1; more words, 520."""
    h = Harness(tmp_path)
    assert h.run("HANGUP someone/else") == b"200 result=-1\n"
    assert h.run("HANGUP a b").startswith(b"520-")
    assert h.run(f"HANGUP {h.channel.name}") == b"200 result=1\n"
    assert h.channel.names() == ["hangup"] and h.channel.state() == 0


def test_channel_status(tmp_path: Path) -> None:
    """CHANNEL STATUS: 4 ringing, 6 up; another channel -1."""
    h = Harness(tmp_path)
    assert h.run("CHANNEL STATUS") == b"200 result=4\n"
    h.run("ANSWER")
    assert h.run(f"CHANNEL STATUS {h.channel.name}") == b"200 result=6\n"
    assert h.run("CHANNEL STATUS SIP/other") == b"200 result=-1\n"


@pytest.mark.parametrize(("arg", "number", "name"), [
    ('"\\"Bob Smith\\" <+46 (8) 123-45>"', "+46812345", "Bob Smith"),
    ("5551234", "5551234", ""),
    ("Reception", "", "Reception"),
])
def test_set_callerid(tmp_path: Path, arg: str, number: str, name: str) -> None:
    """SET CALLERID parses "Name" <number>, a number or a name (numbers
    shrunk) and always answers 1."""
    h = Harness(tmp_path)
    assert h.run(f"SET CALLERID {arg}") == b"200 result=1\n"
    assert h.channel.calls == [("set_caller_id", number, name)]


def test_set_music(tmp_path: Path) -> None:
    """SET MUSIC ON plays the configured tone, OFF stops it; result 0."""
    h = Harness(tmp_path, music_tone="440/300,0/2700")
    assert h.run("SET MUSIC ON default") == b"200 result=0\n"
    assert h.run("SET MUSIC off") == b"200 result=0\n"
    assert h.run("SET MUSIC").startswith(b"520-")
    assert h.channel.calls == [("play_tone", "440/300,0/2700"), ("stop_tone",)]


def test_set_autohangup(tmp_path: Path) -> None:
    """SET AUTOHANGUP hangs up after the time; 0 cancels it."""
    h = Harness(tmp_path)
    assert h.run("SET AUTOHANGUP 10") == b"200 result=0\n"
    h.clock.advance(9)
    assert h.channel.state() != 0
    h.clock.advance(1)
    assert h.channel.names() == ["hangup"]
    h2 = Harness(tmp_path / "2")
    h2.run("SET AUTOHANGUP 1.5")
    assert h2.run("SET AUTOHANGUP 0") == b"200 result=0\n"
    h2.clock.advance(5)
    assert h2.channel.calls == [] and h2.run("SET AUTOHANGUP soon").startswith(b"520-")


def test_set_context_extension_priority_are_accepted(tmp_path: Path) -> None:
    """SET CONTEXT/EXTENSION/PRIORITY answer 0 (no dial plan follows)."""
    h = Harness(tmp_path)
    for line in ("SET CONTEXT other", "SET EXTENSION 100", "SET PRIORITY 2"):
        assert h.run(line) == b"200 result=0\n"
    assert h.run("SET CONTEXT").startswith(b"520-") and h.channel.calls == []


# -- playing ----------------------------------------------------------------------------------


def test_stream_file_plays_to_the_end(tmp_path: Path) -> None:
    """STREAM FILE name "" plays <dir>/<lang>/name.wav: result 0, endpos = the
    file's length in 8 kHz samples."""
    h = Harness(tmp_path)
    assert h.run('STREAM FILE hello ""') == b"200 result=0 endpos=8000\n"
    assert h.channel.calls == [("play", (h.sound("hello"),), "")]


def test_stream_file_interrupted_by_a_digit(tmp_path: Path) -> None:
    """An escape digit stops it: result = its ASCII code, endpos = where it
    stopped (0.5 s here)."""
    h = Harness(tmp_path, ["5"])
    assert h.run("STREAM FILE hello 0123456789") == b"200 result=53 endpos=4000\n"


def test_stream_file_missing_sound(tmp_path: Path) -> None:
    """A sound that exists nowhere: result -1, endpos = the offset given, and
    nothing is played (Asterisk's ast_openstream failure)."""
    h = Harness(tmp_path)
    assert h.run('STREAM FILE nothing-here ""') == b"200 result=-1 endpos=0\n"
    assert h.run('STREAM FILE nothing-here "" 1234') == b"200 result=-1 endpos=1234\n"
    assert h.channel.calls == []


def test_stream_file_syntax(tmp_path: Path) -> None:
    """Missing escape digits or a bad offset is 520 with the usage."""
    h = Harness(tmp_path)
    reply = h.run("STREAM FILE hello")
    assert reply.startswith(b"520-Invalid command syntax.  Proper usage follows:\n")
    assert b" Usage: STREAM FILE <filename> <escape digits> [sample offset]\n" in reply
    assert reply.endswith(b"520 End of proper usage.\n")
    assert h.run('STREAM FILE hello "" x').startswith(b"520-")


def test_stream_file_hang_up_during_play(tmp_path: Path) -> None:
    """The caller hanging up while it plays: result -1."""
    h = Harness(tmp_path, [HANGUP])
    assert h.run('STREAM FILE hello ""') == b"200 result=-1 endpos=0\n"


def test_sound_lookup_language_and_absolute_names(tmp_path: Path) -> None:
    """en_GB falls back to en, then to no language; an absolute name gets
    the language before its last component."""
    h = Harness(tmp_path)
    h.channel.language = "en_GB"
    write_wav(h.sounds / "flat.wav")
    write_wav(tmp_path / "abs" / "en" / "welcome.wav")
    h.run('STREAM FILE hello ""')
    h.run('STREAM FILE flat ""')
    h.run(f'STREAM FILE {tmp_path / "abs" / "welcome"} ""')
    plays = [call[1][0] for call in h.channel.calls]
    assert plays == [h.sound("hello"), str(h.sounds / "flat.wav"),
                     str(tmp_path / "abs" / "en" / "welcome.wav")]


def test_control_stream_file(tmp_path: Path) -> None:
    """CONTROL STREAM FILE stops on its stop keys and sets CPLAYBACK*."""
    h = Harness(tmp_path, ["#"])
    assert h.run('CONTROL STREAM FILE hello "#"') == b"200 result=35\n"
    assert {k: v for k, v in h.channel.variables.items() if k.startswith("CPLAYBACK")} == {
        "CPLAYBACKSTATUS": "USERSTOPPED", "CPLAYBACKSTOPKEY": "#", "CPLAYBACKOFFSET": "500"}
    assert h.run('CONTROL STREAM FILE hello "" 3000 # * 9') == b"200 result=0\n"
    assert h.channel.variables["CPLAYBACKSTATUS"] == "SUCCESS"
    assert h.channel.variables["CPLAYBACKOFFSET"] == "-1"
    assert h.run("CONTROL STREAM FILE nothing x") == b"200 result=-1\n"
    assert h.channel.variables["CPLAYBACKSTATUS"] == "ERROR"
    assert h.run("CONTROL STREAM FILE hello").startswith(b"520-")
    assert h.run("CONTROL STREAM FILE hello # abc").startswith(b"520-")


def test_get_option(tmp_path: Path) -> None:
    """GET OPTION plays then waits for a digit; a digit that is not an
    option gives 0."""
    h = Harness(tmp_path, [TIMEOUT, "1", "2"])
    assert h.run("GET OPTION hello 12 2000") == b"200 result=0 endpos=8000\n"
    assert h.run("GET OPTION hello 12") == b"200 result=49 endpos=4000\n"
    assert h.run("GET OPTION hello 3") == b"200 result=0 endpos=8000\n"
    assert h.channel.names() == ["play", "wait_digit", "play", "play", "wait_digit"]
    assert h.channel.calls[1][1] == 2.0 and h.channel.calls[4][1] == 5.0
    assert h.run("GET OPTION nothing 12") == b"200 result=-1 endpos=0\n"


# -- collecting digits -------------------------------------------------------------------------


def test_get_data_collects_up_to_max_digits(tmp_path: Path) -> None:
    """GET DATA: the first digit may interrupt the prompt; the digits come
    back as the result when max digits are in."""
    h = Harness(tmp_path, ["1", "2", "3"])
    assert h.run("GET DATA enter-number 3000 3") == b"200 result=123\n"
    assert h.channel.calls == [("play", (h.sound("enter-number"),), ALL_DIGITS),
                               ("wait_digit", 3.0), ("wait_digit", 3.0)]


def test_get_data_ends_on_pound(tmp_path: Path) -> None:
    """'#' ends the input and is not part of it; '#' first gives an empty
    result."""
    h = Harness(tmp_path, ["4", "*", "#"])
    assert h.run("GET DATA enter-number 3000 10") == b"200 result=4*\n"
    h.channel.inputs.extend(["#"])
    assert h.run("GET DATA enter-number") == b"200 result=\n"


def test_get_data_timeout(tmp_path: Path) -> None:
    """A timeout gives the digits so far with (timeout); no digit at all
    gives 'result= (timeout)'.  Timeout 0 means 6 s for the first digit and
    2 s for the next."""
    h = Harness(tmp_path, [TIMEOUT])
    assert h.run("GET DATA enter-number") == b"200 result= (timeout)\n"
    assert h.channel.calls[-1] == ("wait_digit", 6.0)
    h.channel.inputs.extend(["7", TIMEOUT])
    assert h.run("GET DATA enter-number") == b"200 result=7 (timeout)\n"
    assert h.channel.calls[-1] == ("wait_digit", 2.0)


def test_get_data_without_prompt_and_failures(tmp_path: Path) -> None:
    """An empty prompt waits at once; a missing prompt, max 0 and a hang-up
    give -1; no file name is 520."""
    h = Harness(tmp_path, ["9"])
    assert h.run('GET DATA "" -1 1') == b"200 result=9\n"
    assert h.channel.calls == [("wait_digit", -1.0)]
    assert h.run("GET DATA missing-prompt") == b"200 result=-1\n"
    assert h.run("GET DATA enter-number 100 0") == b"200 result=-1\n"
    h.channel.inputs.extend([HANGUP])
    assert h.run("GET DATA enter-number") == b"200 result=-1\n"
    assert Harness(tmp_path / "2").run("GET DATA").startswith(b"520-")


def test_wait_for_digit(tmp_path: Path) -> None:
    """WAIT FOR DIGIT: the digit's code, 0 on timeout, -1 on hang-up; the
    timeout is in ms and -1 waits for ever."""
    h = Harness(tmp_path, ["#", TIMEOUT, HANGUP])
    assert h.run("WAIT FOR DIGIT").startswith(b"520-")
    assert h.run("WAIT FOR DIGIT soon").startswith(b"520-")
    assert h.run("WAIT FOR DIGIT 5000") == b"200 result=35\n"
    assert h.run("WAIT FOR DIGIT 1500") == b"200 result=0\n"
    assert h.run("WAIT FOR DIGIT -1") == b"200 result=-1\n"
    assert [c[1] for c in h.channel.calls] == [5.0, 1.5, -1.0]


# -- saying ------------------------------------------------------------------------------------


def test_say_digits(tmp_path: Path) -> None:
    """SAY DIGITS plays digits/N for each digit (missing sounds skipped);
    result 0 or the escape digit's code."""
    h = Harness(tmp_path)
    assert h.run('SAY DIGITS 1203 ""') == b"200 result=0\n"
    assert h.channel.calls == [("play", tuple(h.sound(f"digits/{d}") for d in "1203"), "")]
    h.channel.inputs.extend(["5"])
    assert h.run("SAY DIGITS 0 5") == b"200 result=53\n"
    assert h.run("SAY DIGITS abc 5").startswith(b"520-")


@pytest.mark.parametrize(("number", "files"), [
    (0, ["0"]), (7, ["7"]), (20, ["20"]), (23, ["20", "3"]), (100, ["1", "hundred"]),
    (1234, ["1", "thousand", "2", "hundred", "30", "4"]),
    (-5, ["minus", "5"]), (2_000_017, ["2", "million", "17"]),
])
def test_number_files(number: int, files: list[str]) -> None:
    """English numbers are said as Asterisk's ast_say_number_full_en says them."""
    assert number_files(number) == [f"digits/{f}" for f in files]


def test_say_number(tmp_path: Path) -> None:
    """SAY NUMBER plays the files that exist; too big a number gives -1."""
    h = Harness(tmp_path)
    assert h.run('SAY NUMBER 120 ""') == b"200 result=0\n"
    assert h.channel.calls == [("play", (h.sound("digits/1"), h.sound("digits/hundred"),
                                         h.sound("digits/20")), "")]
    assert h.run('SAY NUMBER 1000000000 ""') == b"200 result=-1\n"
    assert h.run('SAY NUMBER twelve ""').startswith(b"520-")


# -- recording ---------------------------------------------------------------------------------


def test_record_file_until_dtmf(tmp_path: Path) -> None:
    """RECORD FILE: a relative name goes to the record folder with the
    format as extension; an escape digit ends it: result = its code (dtmf),
    endpos = the samples recorded."""
    h = Harness(tmp_path, ["#"], record_dir=str(tmp_path))
    assert h.run("RECORD FILE msg wav # 5000") == b"200 result=35 (dtmf) endpos=8000\n"
    assert h.channel.calls == [("record", str(tmp_path / "msg.wav"), "#", 5.0, 0.0, False)]
    assert os.path.isfile(tmp_path / "msg.wav")


def test_record_file_options(tmp_path: Path) -> None:
    """Offset, BEEP and s=silence are read as Asterisk reads them; a timeout
    gives result 0 (timeout)."""
    h = Harness(tmp_path, record_dir=str(tmp_path))
    target = tmp_path / "abs"
    assert h.run(f'RECORD FILE {target} wav "#" -1 0 BEEP s=3') == \
        b"200 result=0 (timeout) endpos=8000\n"
    assert h.run("RECORD FILE x wav # 1000 BEEP") == b"200 result=0 (timeout) endpos=8000\n"
    assert h.run("RECORD FILE y wav # 1000 s=2") == b"200 result=0 (timeout) endpos=8000\n"
    assert [call[3:] for call in h.channel.calls] == [(-1.0, 3.0, True), (1.0, 0.0, True),
                                                    (1.0, 2.0, False)]
    assert h.channel.calls[0][1] == f"{target}.wav"


def test_record_file_failures(tmp_path: Path) -> None:
    """A format other than wav or a missing folder gives -1 (writefile); a
    hang-up gives -1 (hangup); too few words, 520."""
    h = Harness(tmp_path, [HANGUP], record_dir=str(tmp_path))
    assert h.run("RECORD FILE msg gsm # 1000") == b"200 result=-1 (writefile)\n"
    assert h.run("RECORD FILE no/such/dir/msg wav # 1000") == b"200 result=-1 (writefile)\n"
    assert h.run("RECORD FILE msg wav # 1000") == b"200 result=-1 (hangup) endpos=8000\n"
    assert Harness(tmp_path / "2").run("RECORD FILE msg wav #").startswith(b"520-")


# -- variables, database, EXEC ----------------------------------------------------------------


def test_set_and_get_variable(tmp_path: Path) -> None:
    """SET VARIABLE then GET VARIABLE gives result=1 (value); unset gives 0;
    an empty value removes; _-prefixed names are found without the marks."""
    h = Harness(tmp_path)
    assert h.run('SET VARIABLE greeting "hello world"') == b"200 result=1\n"
    assert h.run("GET VARIABLE greeting") == b"200 result=1 (hello world)\n"
    assert h.run("GET VARIABLE nothing") == b"200 result=0\n"
    assert h.run('SET VARIABLE greeting ""') == b"200 result=1\n"
    assert h.run("GET VARIABLE greeting") == b"200 result=0\n"
    h.run("SET VARIABLE __INHERIT yes")
    assert h.run("GET VARIABLE INHERIT") == b"200 result=1 (yes)\n"
    assert h.run("SET VARIABLE onlyname").startswith(b"520-")
    assert h.run("GET VARIABLE").startswith(b"520-")


def test_builtin_variables_and_functions(tmp_path: Path) -> None:
    """Built-ins (CHANNEL, EXTEN, UNIQUEID...) and functions
    (CALLERID(num), LEN(...)); unknown functions read as unset."""
    h = Harness(tmp_path)
    assert h.run("GET VARIABLE CHANNEL") == f"200 result=1 ({h.channel.name})\n".encode()
    assert h.run("GET VARIABLE EXTEN") == b"200 result=1 (800)\n"
    assert h.run("GET VARIABLE CALLERID(num)") == b"200 result=1 (1001)\n"
    assert h.run("GET VARIABLE CALLERID(all)") == b'200 result=1 ("Alice" <1001>)\n'
    assert h.run("GET VARIABLE LEN(hello)") == b"200 result=1 (5)\n"
    assert h.run("GET VARIABLE NOSUCHFUNC(x)") == b"200 result=0\n"
    assert h.run('SET VARIABLE CALLERID(name) "Bob"') == b"200 result=1\n"
    assert h.channel.calls[-1] == ("set_caller_id", "1001", "Bob")


def test_get_full_variable_expands(tmp_path: Path) -> None:
    """GET FULL VARIABLE substitutes ${...}, nested and with substrings;
    another channel's name gives 0."""
    h = Harness(tmp_path, channel=FakeChannel(variables={"A": "B", "B": "deep",
                                                         "NUM": "0123456789"}))
    assert h.run('GET FULL VARIABLE "${A}-${${A}}-${NUM:2:3}-${NUM:-2}-${X}"') == \
        b"200 result=1 (B-deep-234-89-)\n"
    assert h.run('GET FULL VARIABLE "${CALLERID(num):0:2} at ${EXTEN}"') == \
        b"200 result=1 (10 at 800)\n"
    assert h.run("GET FULL VARIABLE ${A} SIP/other") == b"200 result=0\n"
    assert h.run(f"GET FULL VARIABLE ${{A}} {h.channel.name}") == b"200 result=1 (B)\n"


def test_database(tmp_path: Path) -> None:
    """DATABASE PUT/GET/DEL/DELTREE on the AstDB with Asterisk's results."""
    h = Harness(tmp_path)
    assert h.run("DATABASE PUT cf 1001 5551234") == b"200 result=1\n"
    assert h.run("DATABASE PUT cf 1002/x y") == b"200 result=1\n"
    assert h.run("DATABASE GET cf 1001") == b"200 result=1 (5551234)\n"
    assert h.run("DATABASE GET cf 9999") == b"200 result=0\n"
    assert h.run("DATABASE DEL cf 1001") == b"200 result=1\n"
    assert h.run("DATABASE GET cf 1001") == b"200 result=0\n"
    assert h.run("DATABASE DELTREE cf") == b"200 result=1\n"
    assert h.run("DATABASE DELTREE cf") == b"200 result=0\n"
    assert h.run("DATABASE GET cf").startswith(b"520-")
    assert h.astdb.data == {}


def test_database_failure_answers_zero(tmp_path: Path) -> None:
    """A store that fails answers result=0, as Asterisk does."""
    h = Harness(tmp_path)

    def broken(*args: object) -> None:
        raise OSError("disk gone")

    h.astdb.put = broken  # type: ignore[method-assign,assignment]
    h.astdb.get = broken  # type: ignore[method-assign,assignment]
    assert h.run("DATABASE PUT f k v") == b"200 result=0\n"
    assert h.run("DATABASE GET f k") == b"200 result=0\n"


def test_verbose_and_noop(tmp_path: Path) -> None:
    """VERBOSE answers 1, NOOP 0."""
    h = Harness(tmp_path)
    assert h.run('VERBOSE "hello there" 3') == b"200 result=1\n"
    assert h.run("NOOP anything") == b"200 result=0\n"
    assert h.run("VERBOSE").startswith(b"520-")


def test_exec_applications(tmp_path: Path) -> None:
    """EXEC runs Playback, Answer, Set, SendDTMF, Echo and Dial with Asterisk's
    results; ConfBridge joins the room; an unknown application gives -2,
    and so does VoiceMail on a runner without mailboxes."""
    h = Harness(tmp_path, ["#"])
    channel = h.channel
    assert h.run('EXEC Playback "hello&nothing"') == b"200 result=0\n"
    assert channel.variables["PLAYBACKSTATUS"] == "FAILED"
    assert h.run("EXEC playback hello") == b"200 result=0\n"
    assert channel.variables["PLAYBACKSTATUS"] == "SUCCESS"
    assert h.run('EXEC Set "COLOUR=blue"') == b"200 result=0\n"
    assert channel.variables["COLOUR"] == "blue"
    assert h.run("EXEC SendDTMF 123") == b"200 result=0\n"
    assert h.run("EXEC Echo") == b"200 result=0\n"
    assert h.run('EXEC Dial "SIP/1002,20"') == b"200 result=-1\n"
    assert channel.variables["DIALSTATUS"] == "ANSWER"
    assert h.run('EXEC Dial "SIP/1002,20,g"') == b"200 result=0\n"
    channel.dial_status = "BUSY"
    assert h.run('EXEC Dial "PJSIP/0701234567@trunk"') == b"200 result=0\n"
    assert channel.variables["DIALSTATUS"] == "BUSY"
    assert h.run("EXEC NoOp whatever") == b"200 result=0\n"
    for app in ("NoSuchApp", "VoiceMail"):
        assert h.run(f"EXEC {app} 1001") == b"200 result=-2\n"
    assert h.run("EXEC ConfBridge 900") == b"200 result=0\n"
    assert ("conference", "900") in channel.calls
    assert [c for c in channel.calls if c[0] in ("dial", "echo", "send_digits")] == [
        ("send_digits", "123"), ("echo", "#"), ("dial", "1002", 20.0), ("dial", "1002", 20.0),
        ("dial", "0701234567", -1.0)]
    assert h.run("EXEC").startswith(b"520-")


def test_exec_answer_hangup_wait(tmp_path: Path) -> None:
    """Answer gives 0, Wait waits on the clock, Hangup gives -1 (Asterisk's
    Hangup returns -1)."""
    h = Harness(tmp_path)
    assert h.run("EXEC Answer") == b"200 result=0\n"
    waiting = h.session.execute("EXEC Wait 2")
    assert not waiting.called
    h.clock.advance(2)
    assert first(waiting).to_bytes() == b"200 result=0\n"
    assert h.run("EXEC Hangup") == b"200 result=-1\n"
    assert h.channel.names() == ["answer", "hangup"]


def test_exec_expands_variables_with_agiexecfull(tmp_path: Path) -> None:
    """With AGIEXECFULL=yes the options are substituted first."""
    h = Harness(tmp_path, channel=FakeChannel(variables={"AGIEXECFULL": "yes",
                                                         "WHO": "1003"}))
    assert h.run("EXEC Dial SIP/${WHO}") == b"200 result=-1\n"
    assert h.channel.calls[-1] == ("dial", "1003", -1.0)


@pytest.mark.parametrize(("dialstring", "target"), [
    ("SIP/1001", "1001"), ("PJSIP/0123@trunk", "0123"), ("SIP/trunk/0123", "0123"),
    ("Local/1001@default/n", "1001"), ("1001", "1001"),
])
def test_dial_target(dialstring: str, target: str) -> None:
    """The number dialled is taken out of Asterisk dial strings."""
    assert dial_target(dialstring) == target


def test_every_command_has_usage_that_cannot_end_a_520() -> None:
    """No usage line starts with '520', which would end the multi-line reply
    early for libraries that read until a '520' line."""
    for spec in COMMANDS.values():
        assert spec.usage.startswith(" Usage: ")
        assert not any(line.startswith("520") for line in spec.usage.splitlines())


def test_a_blocked_command_waits(tmp_path: Path) -> None:
    """A command whose channel operation is pending keeps the session busy
    until it fires."""
    h = Harness(tmp_path, [BLOCK])
    d = h.session.execute("WAIT FOR DIGIT -1")
    assert h.session.busy and not d.called
    assert h.channel.blocked is not None
    h.channel.blocked.callback("3")
    assert first(d).to_bytes() == b"200 result=51\n" and not h.session.busy


def test_command_names_fit_the_matcher() -> None:
    """match_command looks at most _MAX_COMMAND_WORDS words: every command
    name fits, and the longest name wins over a shorter one."""
    from telavox.scriptserver.agi import _MAX_COMMAND_WORDS, match_command
    from telavox.scriptserver.commands import COMMANDS

    assert max(len(name) for name in COMMANDS) <= _MAX_COMMAND_WORDS
    assert match_command(["get", "full", "variable", "${X}"], COMMANDS) == (
        "GET", "FULL", "VARIABLE")
    assert match_command(["GET", "VARIABLE", "X"], list(COMMANDS)) == ("GET", "VARIABLE")
    assert match_command(["FLY"], COMMANDS) is None


def _said(h: Harness, line: str) -> list[str]:
    """The shipped sounds one SAY command played, by name."""
    h.channel.calls.clear()
    assert h.run(line) == b"200 result=0\n"
    [(_, paths, _)] = h.channel.calls
    return [str(Path(p).relative_to(SOUNDS_DIR / "en").with_suffix("")) for p in paths]


def test_say_alpha(tmp_path: Path) -> None:
    """Letters, digits and the symbols with a sound, others passed over."""
    h = Harness(tmp_path, sound_dirs=(str(SOUNDS_DIR),))
    assert _said(h, 'SAY ALPHA "Ab1@x.y-z!" ""') == [
        "letters/a", "letters/b", "digits/1", "letters/at", "letters/x", "letters/dot",
        "letters/y", "letters/dash", "letters/z"]


def test_say_phonetic(tmp_path: Path) -> None:
    """Letters as the NATO alphabet's words, the rest as SAY ALPHA; every
    letter's prompt ships."""
    h = Harness(tmp_path, sound_dirs=(str(SOUNDS_DIR),))
    assert _said(h, 'SAY PHONETIC "Tx-9" ""') == [
        "phonetic/t_p", "phonetic/x_p", "letters/dash", "digits/9"]
    assert len(_said(h, 'SAY PHONETIC "abcdefghijklmnopqrstuvwxyz" ""')) == 26


def test_say_date_time_and_datetime(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """As Asterisk's say.c in English, in the platform's time zone."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    try:
        h = Harness(tmp_path, sound_dirs=(str(SOUNDS_DIR),))
        when = 1_700_000_000  # Tuesday 14 November 2023, 22:13:20
        year = ["digits/2", "digits/thousand", "digits/20", "digits/3"]
        assert _said(h, f'SAY DATE {when} ""') == [
            "digits/day-2", "digits/mon-10", "digits/14", *year]
        assert _said(h, f'SAY TIME {when} ""') == ["digits/10", "digits/13", "digits/p-m"]
        assert _said(h, f'SAY TIME {when - 13 * 60 + 5 * 60} ""') == [
            "digits/10", "digits/oh", "digits/5", "digits/p-m"]
        assert _said(h, f'SAY DATETIME {when} ""') == [
            "digits/day-2", "digits/mon-10", "digits/h-14", *year, "digits/at", "digits/10",
            "digits/13", "digits/p-m"]
        assert _said(h, f'SAY DATETIME {when} "" "HM"') == ["digits/20", "digits/2",
                                                             "digits/13"]
        # in a zone of its own (New York: 17:13 the same day; Tokyo: 07:13
        # the next), in the platform's for a zone the system does not know
        assert _said(h, f'SAY DATETIME {when} "" "AdHM" America/New_York') == [
            "digits/day-2", "digits/h-14", "digits/17", "digits/13"]
        assert _said(h, f'SAY DATETIME {when} "" "AdHM" Asia/Tokyo') == [
            "digits/day-3", "digits/h-15", "digits/0", "digits/7", "digits/13"]
        assert _said(h, f'SAY DATETIME {when} "" "HM" Mars/Olympus_Mons') == [
            "digits/20", "digits/2", "digits/13"]
        assert h.run('SAY DATE soon ""').startswith(b"520-")
    finally:
        monkeypatch.undo()
        time.tzset()
