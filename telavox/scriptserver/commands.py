"""The AGI commands, on an :class:`~telavox.interfaces.IChannel`, with
Asterisk's arguments, result values and reply forms.

Owns :data:`COMMANDS` (command words → :class:`CommandSpec`: handler, usage
text for ``520``, whether it runs on a dead channel, as ``res_agi.c``'s
table says) and the handlers.  A handler gets the session and the whole
word list (``argv[0]`` is the first command word, so indexes match the C
handlers), returns a :class:`~telavox.scriptserver.agi.Reply` and raises
:class:`ShowUsageError` for ``520``.  Sounds are found with the session's
:class:`~telavox.scriptserver.sounds.SoundLibrary`; times on the wire are
milliseconds (``-1``: no limit), channel operations take seconds.

What does not map one to one onto a channel (see the README for the list):
``endpos`` is counted from the start of the file (the channel cannot seek,
so STREAM FILE's sample offset and RECORD FILE's append offset are not
honoured); CONTROL STREAM FILE stops on its stop keys only (no skipping or
pausing); RECORD FILE writes WAV only (another format answers
``-1 (writefile)``); SET CONTEXT/EXTENSION/PRIORITY are accepted and have no
effect (no dial plan follows a script).
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any

import attrs
from twisted.internet import defer

from telavox.interfaces import ChannelHungUp
from telavox.scriptserver.agi import ALL_DIGITS, Reply, atoi, is_true, scan_int
from telavox.scriptserver.apps import NOT_YET
from telavox.scriptserver.saying import (
    DATETIME_FORMAT,
    DIGIT_FILES,
    alpha_files,
    date_files,
    datetime_files,
    number_files,
    phonetic_files,
    time_files,
)
from telavox.scriptserver.sounds import RATE
from telavox.scriptserver.variables import parse_callerid

if TYPE_CHECKING:
    from telavox.scriptserver.session import AgiSession

__all__ = ["COMMANDS", "CommandSpec", "ShowUsageError", "number_files"]

Handler = Callable[["AgiSession", list[str]], Coroutine[Any, Any, Reply]]

_DEFAULT_GET_OPTION_TIMEOUT = 5000
"""ms: GET OPTION's wait after the file without a timeout (Asterisk's dtimeout)."""
_GETDATA_FIRST, _GETDATA_NEXT = 6000, 2000
"""ms: GET DATA's waits for the first and the next digits when its timeout is 0."""
_GETDATA_MAX = 1023


class ShowUsageError(Exception):
    """A handler's arguments are wrong: the reply is ``520`` with the usage."""


@attrs.frozen
class CommandSpec:
    """One AGI command: its words, handler, usage text and whether it runs
    on a dead channel."""

    words: tuple[str, ...]
    handler: Handler
    usage: str
    dead: bool = False


COMMANDS: dict[tuple[str, ...], CommandSpec] = {}
"""Every command we implement, by its upper-case words."""

_WORDS = re.compile(r"[A-Z]+(?: [A-Z]+)*")


def _command(syntax: str, summary: str, *, dead: bool = False) -> Callable[[Handler], Handler]:
    match = _WORDS.match(syntax)
    assert match is not None
    words = tuple(match.group(0).split())
    usage = f" Usage: {syntax}\n\t{summary}\n"

    def register(handler: Handler) -> Handler:
        COMMANDS[words] = CommandSpec(words, handler, usage, dead)
        return handler

    return register


# -- helpers ------------------------------------------------------------------------------------


def _seconds(ms: int) -> float:
    return ms / 1000.0 if ms >= 0 else -1.0


def _code(digit: str) -> int:
    return ord(digit) if digit else 0


def _find(session: AgiSession, name: str) -> str | None:
    path = session.services.sounds.find(name, str(session.channel.language))
    if path is None:
        session.log.warn("{label}: File {name} does not exist in any format (language {lang})",
                         label=session.label, name=name, lang=session.channel.language)
    return path


def _endpos(session: AgiSession, path: str, finished: bool, started: float) -> int:
    """Where playing ``path`` stopped, in samples from its start: its end
    when it played to the end, else the time it played."""
    total = session.services.sounds.samples(path)
    if finished:
        return total
    return min(total, int((session.clock.seconds() - started) * RATE))


async def _play(session: AgiSession, paths: list[str], escape: str) -> str:
    return str(await defer.maybeDeferred(session.channel.play, paths, escape))


async def _wait_digit(session: AgiSession, ms: int) -> str:
    return str(await defer.maybeDeferred(session.channel.wait_digit, _seconds(ms)))


def _usage_unless(condition: bool) -> None:
    if not condition:
        raise ShowUsageError()


# -- the channel ------------------------------------------------------------------------------


@_command("ANSWER", "Answers the channel if it is not answered yet.  Returns -1 on channel "
          "failure, or 0 if successful.")
async def answer(session: AgiSession, argv: list[str]) -> Reply:
    if session.channel.state() != 6:
        try:
            await defer.maybeDeferred(session.channel.answer)
        except ChannelHungUp:
            return Reply.success(-1)
    return Reply.success(0)


@_command("HANGUP [<channelname>]", "Hangs up the channel (only this channel can be named).")
async def hangup(session: AgiSession, argv: list[str]) -> Reply:
    _usage_unless(len(argv) <= 2)
    if len(argv) == 2 and argv[1] != session.channel.name:
        return Reply.success(-1)
    await defer.maybeDeferred(session.channel.hangup)
    return Reply.success(1)


@_command("CHANNEL STATUS [<channelname>]", "Returns the state of the channel: 0 down, "
          "4 ringing, 6 up; -1 for another channel's name.")
async def channel_status(session: AgiSession, argv: list[str]) -> Reply:
    _usage_unless(len(argv) in (2, 3))
    if len(argv) == 3 and argv[2] != session.channel.name:
        return Reply.success(-1)
    return Reply.success(int(session.channel.state()))


@_command("SET CALLERID <number>", "Changes the caller ID the channel presents "
          "(\"Name\" <number>, a number or a name).  Always returns 1.")
async def set_callerid(session: AgiSession, argv: list[str]) -> Reply:
    if len(argv) > 2:
        number, name = parse_callerid(argv[2])
        with contextlib.suppress(ChannelHungUp):
            await defer.maybeDeferred(session.channel.set_caller_id, number, name)
    return Reply.success(1)


@_command("SET MUSIC <on|off> [<class>]", "Starts or stops music on hold.  Always returns 0.")
async def set_music(session: AgiSession, argv: list[str]) -> Reply:
    _usage_unless(len(argv) >= 3)
    mode = argv[2].lower()
    channel = session.channel
    try:
        if mode.startswith("on"):
            tone = session.services.options.music_tone
            if tone:
                await defer.maybeDeferred(channel.play_tone, tone)
            else:
                session.log.info("{label}: no music on hold configured", label=session.label)
        elif mode.startswith("off"):
            await defer.maybeDeferred(channel.stop_tone)
    except ChannelHungUp:
        pass
    return Reply.success(0)


@_command("SET AUTOHANGUP <time>", "Hangs the channel up <time> seconds from now (0: never).  "
          "Returns 0.")
async def set_autohangup(session: AgiSession, argv: list[str]) -> Reply:
    _usage_unless(len(argv) == 3)
    match = re.match(r"\s*[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?", argv[2], re.IGNORECASE)
    _usage_unless(match is not None)
    assert match is not None
    session.set_autohangup(max(0.0, float(match.group(0))))
    return Reply.success(0)


async def _accepted(session: AgiSession, argv: list[str]) -> Reply:
    _usage_unless(len(argv) == 3)
    session.log.debug("{label}: {command} has no effect here", label=session.label,
                      command=" ".join(argv[:2]))
    return Reply.success(0)


for _syntax, _summary in (
        ("SET CONTEXT <context>", "Sets the context to continue in after the script."),
        ("SET EXTENSION <extension>", "Sets the extension to continue at after the script."),
        ("SET PRIORITY <priority>", "Sets the priority to continue at after the script.")):
    _command(_syntax, _summary + "  Returns 0 (no dial plan follows a script here).")(_accepted)


# -- playing and listening ---------------------------------------------------------------------


@_command("STREAM FILE <filename> <escape digits> [sample offset]",
          "Plays a file (no extension) until a digit of <escape digits>.  Returns the ASCII "
          "code of the digit pressed, 0, or -1 on error or hang-up, and endpos=<samples>.")
async def stream_file(session: AgiSession, argv: list[str]) -> Reply:
    _usage_unless(4 <= len(argv) <= 5)
    offset = scan_int(argv[4]) if len(argv) > 4 else 0
    _usage_unless(offset is not None)
    path = _find(session, argv[2])
    if path is None:
        return Reply.success(-1, endpos=offset)
    session.log.info("{label}: Playing '{name}' (escape_digits={escape}) (sample_offset {offset})",
                     label=session.label, name=argv[2], escape=argv[3], offset=offset)
    started = session.clock.seconds()
    try:
        digit = await _play(session, [path], argv[3])
    except ChannelHungUp:
        return Reply.success(-1, endpos=_endpos(session, path, False, started))
    return Reply.success(_code(digit), endpos=_endpos(session, path, not digit, started))


@_command("CONTROL STREAM FILE <filename> <escape digits> [skipms] [ffchar] [rewchr] "
          "[pausechr] [offsetms]",
          "Plays a file, stopped by a digit of <escape digits>.  Returns the ASCII code of the "
          "digit, 0, or -1; sets CPLAYBACKSTATUS, CPLAYBACKOFFSET and CPLAYBACKSTOPKEY.")
async def control_stream_file(session: AgiSession, argv: list[str]) -> Reply:
    _usage_unless(5 <= len(argv) <= 10)
    _usage_unless(len(argv) <= 5 or scan_int(argv[5]) is not None)
    _usage_unless(len(argv) <= 9 or scan_int(argv[9]) is not None)
    variables = session.variables
    path = _find(session, argv[3])
    if path is None:
        await variables.set("CPLAYBACKSTATUS", "ERROR")
        return Reply.success(-1)
    started = session.clock.seconds()
    try:
        digit = await _play(session, [path], argv[4])
    except ChannelHungUp:
        await variables.set("CPLAYBACKSTATUS", "ERROR")
        return Reply.success(-1)
    if digit:
        await variables.set("CPLAYBACKSTATUS", "USERSTOPPED")
        await variables.set("CPLAYBACKSTOPKEY", digit)
        offset = int((session.clock.seconds() - started) * 1000)
    else:
        await variables.set("CPLAYBACKSTATUS", "SUCCESS")
        offset = -1
    await variables.set("CPLAYBACKOFFSET", str(offset))
    return Reply.success(_code(digit))


@_command("GET OPTION <filename> <escape_digits> [timeout]",
          "Like STREAM FILE, then waits <timeout> ms (default 5000) for a digit of "
          "<escape_digits>.")
async def get_option(session: AgiSession, argv: list[str]) -> Reply:
    _usage_unless(4 <= len(argv) <= 5)
    timeout = atoi(argv[4]) if len(argv) == 5 else _DEFAULT_GET_OPTION_TIMEOUT
    escape = argv[3]
    path = _find(session, argv[2])
    if path is None:
        return Reply.success(-1, endpos=0)
    started = session.clock.seconds()
    try:
        digit = await _play(session, [path], escape)
        endpos = _endpos(session, path, not digit, started)
        if not digit:
            digit = await _wait_digit(session, timeout)
            if digit not in escape:
                digit = ""
    except ChannelHungUp:
        return Reply.success(-1, endpos=_endpos(session, path, False, started))
    return Reply.success(_code(digit), endpos=endpos)


@_command("GET DATA <file to be streamed> [timeout] [max digits]",
          "Plays the file and collects digits until <max digits>, '#' or <timeout> ms "
          "between digits.  Returns the digits, with (timeout) when it timed out.")
async def get_data(session: AgiSession, argv: list[str]) -> Reply:
    _usage_unless(len(argv) >= 3)
    timeout = atoi(argv[3]) if len(argv) >= 4 else 0
    max_digits = min(atoi(argv[4]) if len(argv) >= 5 else 1024, _GETDATA_MAX)
    if timeout > 0:
        first = following = timeout
    elif timeout < 0:
        first = following = -1
    else:
        first, following = _GETDATA_FIRST, _GETDATA_NEXT
    if max_digits == 0:
        return Reply.success(-1)
    digits = ""
    try:
        digit = ""
        if argv[2]:
            path = _find(session, argv[2])
            if path is None:
                return Reply.success(-1)
            digit = await _play(session, [path], ALL_DIGITS)
        if not digit:
            digit = await _wait_digit(session, first)
        while True:
            if not digit:
                return Reply.success(digits, data="timeout")
            if digit != "#":
                digits += digit
            if digit == "#" or len(digits) >= max_digits:
                return Reply.success(digits)
            digit = await _wait_digit(session, following)
    except ChannelHungUp:
        return Reply.success(-1)


@_command("WAIT FOR DIGIT <timeout>", "Waits up to <timeout> ms (-1: no limit) for a digit.  "
          "Returns its ASCII code, 0 on timeout, -1 on hang-up.")
async def wait_for_digit(session: AgiSession, argv: list[str]) -> Reply:
    _usage_unless(len(argv) == 4)
    timeout = scan_int(argv[3])
    _usage_unless(timeout is not None)
    assert timeout is not None
    try:
        return Reply.success(_code(await _wait_digit(session, timeout)))
    except ChannelHungUp:
        return Reply.success(-1)


async def _say(session: AgiSession, names: list[str], escape: str) -> Reply:
    """Play the sounds that exist (Asterisk skips missing ones)."""
    paths = [p for p in (session.services.sounds.find(n, str(session.channel.language))
                         for n in names) if p is not None]
    if len(paths) < len(names):
        session.log.info("{label}: {missing} of the sounds {names} are missing",
                         label=session.label, missing=len(names) - len(paths), names=names)
    if not paths:
        return Reply.success(0)
    try:
        return Reply.success(_code(await _play(session, paths, escape)))
    except ChannelHungUp:
        return Reply.success(-1)


@_command("SAY DIGITS <number> <escape digits>", "Says a digit string, stopped by a digit of "
          "<escape digits>.  Returns the ASCII code of the digit, 0, or -1 on hang-up.")
async def say_digits(session: AgiSession, argv: list[str]) -> Reply:
    _usage_unless(len(argv) == 4 and scan_int(argv[2]) is not None)
    names = [DIGIT_FILES[c] for c in argv[2] if c in DIGIT_FILES]
    return await _say(session, names, argv[3])


@_command("SAY NUMBER <number> <escape digits> [gender]", "Says a number, stopped by a digit "
          "of <escape digits>.  Returns the ASCII code of the digit, 0, or -1.")
async def say_number(session: AgiSession, argv: list[str]) -> Reply:
    _usage_unless(4 <= len(argv) <= 5)
    number = scan_int(argv[2])
    _usage_unless(number is not None)
    assert number is not None
    names = number_files(number)
    if names is None:
        session.log.info("{label}: Number '{number}' is too big to say", label=session.label,
                         number=number)
        return Reply.success(-1)
    return await _say(session, names, argv[3])


@_command("SAY ALPHA <string> <escape digits>", "Says a string letter by letter, stopped "
          "by a digit of <escape digits>.  Returns the digit's code, 0, or -1.")
async def say_alpha(session: AgiSession, argv: list[str]) -> Reply:
    _usage_unless(len(argv) == 4)
    return await _say(session, alpha_files(argv[2]), argv[3])


@_command("SAY PHONETIC <string> <escape digits>", "Says a string with the NATO phonetic "
          "alphabet (alfa, bravo...), stopped by a digit of <escape digits>.  Returns the "
          "digit's code, 0, or -1.")
async def say_phonetic(session: AgiSession, argv: list[str]) -> Reply:
    _usage_unless(len(argv) == 4)
    return await _say(session, phonetic_files(argv[2]), argv[3])


def _epoch(word: str) -> int:
    value = scan_int(word)
    _usage_unless(value is not None)
    assert value is not None
    return value


@_command("SAY DATE <date> <escape digits>", "Says the date <date> (seconds since the "
          "epoch): weekday, month, day and year.  Returns the digit's code, 0, or -1.")
async def say_date(session: AgiSession, argv: list[str]) -> Reply:
    _usage_unless(len(argv) == 4)
    return await _say(session, date_files(_epoch(argv[2])), argv[3])


@_command("SAY TIME <time> <escape digits>", "Says the time <time> (seconds since the "
          "epoch).  Returns the digit's code, 0, or -1.")
async def say_time(session: AgiSession, argv: list[str]) -> Reply:
    _usage_unless(len(argv) == 4)
    return await _say(session, time_files(_epoch(argv[2])), argv[3])


@_command("SAY DATETIME <time> <escape digits> [format] [timezone]", "Says <time> (seconds "
          "since the epoch) as <format> says (default \"ABdY 'digits/at' IMp\"), in "
          "<timezone> (an IANA name; default the platform's).  Returns the digit's code, 0, or -1.")
async def say_datetime(session: AgiSession, argv: list[str]) -> Reply:
    _usage_unless(4 <= len(argv) <= 6)
    fmt = argv[4] if len(argv) > 4 and argv[4] else DATETIME_FORMAT
    zone = argv[5] if len(argv) > 5 else None
    return await _say(session, datetime_files(_epoch(argv[2]), fmt, zone=zone), argv[3])


def _record_options(argv: list[str]) -> tuple[int, bool, float]:
    """RECORD FILE's optional words as Asterisk reads them: ``(offset,
    beep, silence seconds)``."""
    silence = 0
    for word in argv[6:9]:
        at = word.find("s")
        if at >= 0:
            text = word[at:]
            if len(text) > 2 and text.startswith("s="):
                silence = max(0, atoi(text[2:]))
            break
    offset = 0
    beep = False
    if len(argv) > 6:
        scanned = scan_int(argv[6])
        if scanned is not None:
            offset = scanned
        elif "=" not in argv[6]:
            beep = True
    if len(argv) > 7 and "=" not in argv[7]:
        beep = True
    return offset, beep, float(silence)


@_command("RECORD FILE <filename> <format> <escape digits> <timeout> [offset samples] [BEEP] "
          "[s=silence]",
          "Records until a digit of <escape digits>, <timeout> ms (-1: none) or <silence> "
          "seconds of silence.  Returns the digit (dtmf), 0 (timeout) or -1 (hangup), and "
          "endpos=<samples>.")
async def record_file(session: AgiSession, argv: list[str]) -> Reply:
    _usage_unless(len(argv) >= 6)
    timeout = scan_int(argv[5])
    _usage_unless(timeout is not None)
    assert timeout is not None
    offset, beep, silence = _record_options(argv)
    name, fmt, escape = argv[2], argv[3], argv[4]
    folder = session.services.options.recordings
    path = (name if os.path.isabs(name) else os.path.join(folder, name)) + "." + fmt
    if fmt.lower() != "wav" or not os.path.isdir(os.path.dirname(path) or "."):
        session.log.warn("{label}: cannot record to {path} (only wav, in an existing folder)",
                         label=session.label, path=path)
        return Reply.success(-1, data="writefile")
    if offset:
        session.log.info("{label}: RECORD FILE offset {offset} ignored: the file is rewritten",
                         label=session.label, offset=offset)
    try:
        digit = str(await defer.maybeDeferred(session.channel.record, path, escape,
                                              _seconds(timeout), silence, beep))
    except ChannelHungUp:
        digit = ""
    samples = session.services.sounds.samples(path)
    if digit:
        return Reply.success(_code(digit), data="dtmf", endpos=samples)
    if session.channel.state() == 0:
        return Reply.success(-1, data="hangup", endpos=samples)
    return Reply.success(0, data="timeout", endpos=samples)


# -- variables, database, applications ---------------------------------------------------------


@_command("SET VARIABLE <variablename> <value>", "Sets a channel variable.  Returns 1.",
          dead=True)
async def set_variable(session: AgiSession, argv: list[str]) -> Reply:
    _usage_unless(len(argv) == 4)
    await session.variables.set(argv[2], argv[3])
    return Reply.success(1)


@_command("GET VARIABLE <variablename>", "Returns 1 and the value in parentheses, or 0 when "
          "it is not set.", dead=True)
async def get_variable(session: AgiSession, argv: list[str]) -> Reply:
    _usage_unless(len(argv) == 3)
    value = session.variables.get(argv[2])
    return Reply.success(0) if value is None else Reply.success(1, data=value)


@_command("GET FULL VARIABLE <expression> [<channel name>]", "Returns 1 and the expression "
          "with ${...} substituted, or 0 for another channel.", dead=True)
async def get_full_variable(session: AgiSession, argv: list[str]) -> Reply:
    _usage_unless(len(argv) in (4, 5))
    if len(argv) == 5 and argv[4] != session.channel.name:
        return Reply.success(0)
    return Reply.success(1, data=session.variables.expand(argv[3]))


@_command("EXEC <application> <options>", "Runs a dial-plan application.  Returns what it "
          "returns, or -2 when there is no such application.", dead=True)
async def exec_(session: AgiSession, argv: list[str]) -> Reply:
    _usage_unless(len(argv) >= 2)
    name = argv[1]
    options = argv[2] if len(argv) >= 3 else ""
    session.log.info("{label}: AGI Script Executing Application: ({app}) Options: ({options})",
                     label=session.label, app=name, options=options)
    if is_true(session.variables.get("AGIEXECFULL")):
        options = session.variables.expand(options)
    application = session.services.applications.get(name.lower())
    if application is None:
        later = NOT_YET.get(name.lower())
        session.log.warn("{label}: Could not find application ({app}){why}", label=session.label,
                         app=name, why=f": {later} is not available yet" if later else "")
        return Reply.success(-2)
    try:
        result = await application(session, options)
    except ChannelHungUp:
        result = -1
    return Reply.success(result)


async def _db(session: AgiSession, operation: Callable[..., Any],
              *args: str) -> tuple[bool, Any]:
    """Run an AstDB operation: ``(True, its value)``, or ``(False, None)``
    when the store failed (logged; Asterisk then answers ``result=0``)."""
    try:
        return True, await defer.maybeDeferred(operation, *args)
    except Exception as e:  # any store failure is a 0 result
        session.log.warn("{label}: {operation} failed: {error}", label=session.label,
                         operation=getattr(operation, "__name__", "database"), error=e)
        return False, None


@_command("DATABASE GET <family> <key>", "Returns 1 and the value in parentheses, or 0.",
          dead=True)
async def database_get(session: AgiSession, argv: list[str]) -> Reply:
    _usage_unless(len(argv) == 4)
    _, value = await _db(session, session.services.astdb.get, argv[2], argv[3])
    return Reply.success(0) if value is None else Reply.success(1, data=str(value))


@_command("DATABASE PUT <family> <key> <value>", "Sets a value.  Returns 1, or 0 on failure.",
          dead=True)
async def database_put(session: AgiSession, argv: list[str]) -> Reply:
    _usage_unless(len(argv) == 5)
    ok, _ = await _db(session, session.services.astdb.put, argv[2], argv[3], argv[4])
    return Reply.success(1 if ok else 0)


@_command("DATABASE DEL <family> <key>", "Removes a key.  Returns 1, or 0 on failure.",
          dead=True)
async def database_del(session: AgiSession, argv: list[str]) -> Reply:
    _usage_unless(len(argv) == 4)
    ok, _ = await _db(session, session.services.astdb.delete, argv[2], argv[3])
    return Reply.success(1 if ok else 0)


@_command("DATABASE DELTREE <family> [keytree]", "Removes a family or a key tree.  Returns 1 "
          "when something was removed, else 0.", dead=True)
async def database_deltree(session: AgiSession, argv: list[str]) -> Reply:
    _usage_unless(len(argv) in (3, 4))
    _, removed = await _db(session, session.services.astdb.deltree, argv[2],
                           argv[3] if len(argv) == 4 else "")
    return Reply.success(1 if removed else 0)


@_command("VERBOSE <message> <level>", "Logs a message.  Returns 1.", dead=True)
async def verbose(session: AgiSession, argv: list[str]) -> Reply:
    _usage_unless(len(argv) >= 2)
    level = (scan_int(argv[2]) or 0) if len(argv) > 2 else 0
    session.log.info("{label}: {message}", label=session.label, message=argv[1],
                     verbose_level=level)
    return Reply.success(1)


@_command("NOOP", "Does nothing.  Returns 0.", dead=True)
async def noop(session: AgiSession, argv: list[str]) -> Reply:
    return Reply.success(0)
