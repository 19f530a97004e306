"""Voicemail: leaving a message and listening to one's box, with the flow
of Asterisk's ``app_voicemail`` (``VoiceMail`` and ``VoiceMailMain``), on
the in-process AGI API.

Owns :class:`VoicemailContext` (what the scripts need: the
:class:`~telavox.scriptserver.mailbox.MailboxStore`, a user lookup and the
limits), the flows :func:`leave_message` and :func:`check_messages`, the
built-in scripts ``voicemail`` and ``voicemailmain``
(:func:`voicemail_scripts`) and the EXEC applications ``VoiceMail`` and
``VoiceMailMain`` (:func:`voicemail_application`,
:func:`voicemail_main_application`), which run the same flows.

``voicemail`` (arguments: the box, then ``u`` unavailable or ``b`` busy,
``s`` to skip the instructions): answer; the user's greeting, or "the
person at extension <digits> is unavailable / on the phone"; ``vm-intro``
(``#`` during these skips to the beep); the ``beep`` sound (not RECORD FILE's
BEEP, as app_voicemail); record until ``#``,
``max_message`` seconds, ``silence`` seconds of silence or the hang-up;
the message is filed (a hang-up while recording keeps it), or dropped when
shorter than the store's ``min_seconds``; "message saved", goodbye.
``VMSTATUS`` is set to ``SUCCESS`` or ``FAILED`` as Asterisk does.

``voicemailmain`` (argument: the box, else the caller id's when the caller
is a box's own extension, else the box number asked for with
``vm-login``, as Asterisk's VoiceMailMain without a box): the PIN,
``attempts`` tries of ``vm-password`` / ``vm-incorrect``; none is asked
when the box has no PIN and the call comes from the box's own extension, a
box without PIN called from elsewhere never opens.  An unknown box gets the
same prompts as a wrong PIN, so callers cannot probe which boxes exist.
Then "you have N new messages", and the messages, new first (oldest
first in each folder), each after its envelope ("received yesterday at 9
oh 5 A M from phone number 1 0 0 1", :func:`envelope`, as app_voicemail) and followed by
the menu: 1 again, 3 next, 7
delete, 5 record the greeting, ``#`` leave (so does the caller hanging
up, or three rounds of the menu with no key).  A new message moves to Old
once played.  After the last one, ``vm-nomore``; then goodbye.
"""

from __future__ import annotations

import contextlib
import functools
import hmac
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import attrs
from twisted.internet import defer
from twisted.logger import Logger

from telavox.config.model import UserConfig
from telavox.interfaces import ChannelHungUp
from telavox.scriptserver.agi import Reply
from telavox.scriptserver.inprocess import Agi
from telavox.scriptserver.mailbox import (
    INBOX,
    OLD,
    MailboxFullError,
    MailboxStore,
    Message,
    valid_box,
)
from telavox.scriptserver.saying import datetime_files
from telavox.scriptserver.session import AgiSession, environment_for

if TYPE_CHECKING:
    from telavox.scriptserver.runner import BuiltinScript

__all__ = ["VoicemailContext", "check_messages", "leave_message", "parse_mailbox_options",
           "voicemail_application", "voicemail_main_application", "voicemail_scripts"]

log = Logger(namespace="telavox.scriptserver.voicemail")

RATE = 8000
"""Samples per second of ``endpos``."""
MENU_KEYS = "1357#"
"""The keys of the message menu."""
PIN_DIGITS = 8
BOX_DIGITS = 10
"""The longest box number asked for."""
"""Most digits read for a PIN."""
MENU_WAIT = 5000
"""ms to wait for a key after ``vm-options``."""
MENU_ROUNDS = 3
"""Rounds of the menu without a key before the caller is let go."""


@attrs.frozen
class VoicemailContext:
    """What the voicemail scripts need, given by the scriptserver service:
    ``store`` the boxes; ``users`` looks a user up by extension (None: no
    such user, so no such box); ``max_message`` and ``max_greeting`` the
    longest recordings in seconds; ``silence`` the seconds of silence that
    end a recording (0: not checked); ``attempts`` the PIN tries."""

    store: MailboxStore
    users: Callable[[str], UserConfig | None]
    max_message: float = 180.0
    max_greeting: float = 60.0
    silence: int = 10
    attempts: int = 3

    def user(self, box: str) -> UserConfig | None:
        """The user owning ``box``, or None (also for a name no box can have)."""
        return self.users(box) if valid_box(box) else None


# -- small steps ---------------------------------------------------------------------------------


def _check(agi: Agi, reply: Reply) -> Reply:
    """Raise ChannelHungUp when ``reply`` is the ``-1`` of a hang-up."""
    if reply.value == -1 and agi.channel.state() == 0:
        raise ChannelHungUp(str(agi.channel.name))
    return reply


async def _play(agi: Agi, name: str, escape: str = "") -> str:
    """Play one sound; the digit of ``escape`` that stopped it, or ``""``."""
    return _check(agi, await agi.stream_file(name, escape)).digit


async def _play_all(agi: Agi, names: Sequence[str], escape: str = "") -> str:
    """Play sounds until one is stopped by a digit; that digit, or ``""``."""
    for name in names:
        digit = await _play(agi, name, escape)
        if digit:
            return digit
    return ""


async def _say_number(agi: Agi, number: int, escape: str = "") -> str:
    return _check(agi, await agi.say_number(number, escape)).digit


async def _record(agi: Agi, path: str, seconds: float, silence: int) -> Reply:
    """Play the ``beep`` sound, then record into the WAV file ``path`` until
    ``#`` (as app_voicemail does, rather than RECORD FILE's BEEP)."""
    await _play(agi, "beep")
    return await agi.record_file(path.removesuffix(".wav"), "wav", "#", int(seconds * 1000),
                                 silence=silence or None)


def _seconds(reply: Reply) -> float | None:
    return reply.endpos / RATE if reply.endpos is not None else None


def _caller(agi: Agi) -> tuple[str, str]:
    """The caller's number and name as the script sees them."""
    return agi.env.get("agi_callerid", "unknown"), agi.env.get("agi_calleridname", "unknown")


# -- leaving a message ---------------------------------------------------------------------------


async def leave_message(context: VoicemailContext, agi: Agi, box: str,
                        flags: str = "") -> str:
    """Asterisk's ``VoiceMail(box,flags)`` (see the module docstring); the
    ``VMSTATUS`` it sets.  Raises ChannelHungUp when the caller hangs up
    (after the message is filed)."""
    store = context.store
    if context.user(box) is None:
        log.warn("voicemail: no mailbox {box!r}", box=box)
        await agi.set_variable("VMSTATUS", "FAILED")
        return "FAILED"
    await agi.answer()
    try:
        path, token = store.new_message_path(box)
    except MailboxFullError:
        log.warn("voicemail {box}: the mailbox is full", box=box)
        await _play(agi, "goodbye")
        await agi.set_variable("VMSTATUS", "FAILED")
        return "FAILED"
    try:
        digit = await _announce_box(context, agi, box, flags)
        if not digit and "s" not in flags:
            await _play(agi, "vm-intro", "#")
        reply = await _record(agi, path, context.max_message, context.silence)
    except BaseException:
        store.discard(box, token)
        raise
    if reply.value == -1 and reply.data == "writefile":
        store.discard(box, token)
        message = None
    else:
        number, name = _caller(agi)
        try:
            message = store.commit(box, token, number, name, _seconds(reply))
        except MailboxFullError:
            message = None
    status = "SUCCESS" if message is not None else "FAILED"
    await agi.set_variable("VMSTATUS", status)
    _check(agi, reply)
    if message is not None:
        await _play(agi, "vm-msgsaved")
    await _play(agi, "goodbye")
    return status


async def _announce_box(context: VoicemailContext, agi: Agi, box: str, flags: str) -> str:
    """The greeting, or "the person at extension … is unavailable/on the
    phone"; ``#`` if the caller skipped it."""
    store = context.store
    if store.has_greeting(box):
        return await _play(agi, str(store.greeting_path(box)).removesuffix(".wav"), "#")
    digit = await _play(agi, "vm-theperson", "#")
    if not digit and box.isdigit():
        digit = _check(agi, await agi.say_digits(box, "#")).digit
    if not digit:
        digit = await _play(agi, "vm-isonphone" if "b" in flags else "vm-isunavail", "#")
    return digit


# -- listening -----------------------------------------------------------------------------------


async def check_messages(context: VoicemailContext, agi: Agi, box: str = "") -> bool:
    """Asterisk's ``VoiceMailMain(box)`` (see the module docstring); True
    when the caller got into the box.  Raises ChannelHungUp when the caller
    hangs up."""
    await agi.answer()
    caller, _ = _caller(agi)
    if not box:
        # the caller's own box, or (from outside, another phone) the one named
        box = caller if context.user(caller) is not None else await _which_box(agi)
    if not await _login(context, agi, box, caller):
        await _play(agi, "goodbye")
        return False
    new, _old = context.store.counts(box)
    await _play(agi, "vm-youhave")
    if new:
        await _say_number(agi, new)
    else:
        await _play(agi, "vm-no")
    await _play_all(agi, ["vm-INBOX", "vm-message" if new == 1 else "vm-messages"])
    await _Menu(context, agi, box).run()
    await _play(agi, "goodbye")
    return True


ENVELOPE_FORMAT = "'vm-received' q 'digits/at' IMp"
"""How app_voicemail says when a message came (English)."""


def envelope(when: float, now: float) -> list[str]:
    """The sounds saying when a message came, as app_voicemail's envelope
    (:data:`ENVELOPE_FORMAT`): nothing more for today, "yesterday", the
    weekday within the last week, else the date; then the time."""
    return datetime_files(when, ENVELOPE_FORMAT, now)


async def _which_box(agi: Agi) -> str:
    """Ask for the box number (``vm-login``), as VoiceMailMain does when it
    is given none and the caller is not a box's own extension."""
    reply = _check(agi, await agi.get_data("vm-login", 0, BOX_DIGITS))
    return reply.result if reply.value != -1 else ""


async def _login(context: VoicemailContext, agi: Agi, box: str, caller: str) -> bool:
    """The PIN check; the same prompts whether or not ``box`` exists."""
    user = context.user(box)
    if user is not None and not user.voicemail_pin and caller == box:
        return True
    for _ in range(context.attempts):
        reply = _check(agi, await agi.get_data("vm-password", 0, PIN_DIGITS))
        pin = reply.result if reply.value != -1 else ""
        if (user is not None and user.voicemail_pin
                and hmac.compare_digest(pin.encode(), user.voicemail_pin.encode())):
            log.info("voicemailmain {box}: logged in from {caller}", box=box, caller=caller)
            return True
        await _play(agi, "vm-incorrect")
    log.warn("voicemailmain {box}: login failed from {caller}", box=box, caller=caller)
    return False


class _Menu:
    """The messages of one box and the menu after each (see the module
    docstring)."""

    def __init__(self, context: VoicemailContext, agi: Agi, box: str) -> None:
        self.context = context
        self.agi = agi
        self.box = box
        store = context.store
        self.messages: list[Message] = store.messages(box, INBOX) + store.messages(box, OLD)
        self.index = 0

    async def run(self) -> None:
        play = bool(self.messages)
        rounds = 0
        digit = ""
        while True:
            if play:
                digit = await self._play_current()
                play = False
            if not digit:
                digit = await _play(self.agi, "vm-options", MENU_KEYS)
            if not digit:
                digit = _check(self.agi, await self.agi.wait_for_digit(MENU_WAIT)).digit
            if not digit:
                rounds += 1
                if rounds >= MENU_ROUNDS:
                    return
                continue
            rounds = 0
            if digit == "#":
                return
            play = await self._act(digit)
            digit = ""

    async def _act(self, digit: str) -> bool:
        """Do what ``digit`` asks; True when the current message (or
        ``vm-nomore``) is to be played next."""
        if digit == "1":
            return True
        if digit == "3":
            self.index = min(self.index + 1, len(self.messages))
            return True
        if digit == "7":
            if self.index < len(self.messages):
                message = self.messages.pop(self.index)
                self.context.store.delete(self.box, message.name, message.folder)
                await _play(self.agi, "vm-deleted")
            return True
        if digit == "5":
            await self._record_greeting()
        return False

    async def _play_current(self) -> str:
        agi = self.agi
        if self.index >= len(self.messages):
            return await _play(agi, "vm-nomore", MENU_KEYS)
        message = self.messages[self.index]
        if self.index == 0:
            digit = await _play_all(agi, ["vm-first", "vm-message"], MENU_KEYS)
        else:
            digit = await _play(agi, "vm-message", MENU_KEYS)
            digit = digit or await _say_number(agi, self.index + 1, MENU_KEYS)
        if digit:  # a key during "message N": the message is not heard
            return digit
        digit = await self._envelope(message)
        if digit:
            return digit
        digit = await _play(agi, message.sound, MENU_KEYS)
        if message.folder == INBOX:
            try:
                self.messages[self.index] = self.context.store.mark_heard(self.box, message.name)
            except KeyError:  # removed meanwhile (another call to the box)
                log.info("voicemailmain {box}: {name} is gone", box=self.box, name=message.name)
        return digit

    async def _envelope(self, message: Message) -> str:
        """When the message came and from whom, as app_voicemail's envelope
        says it: "received today at 9 oh 5 A M from phone number 1 0 0 2"."""
        digit = await _play_all(self.agi, envelope(message.time, self.context.store.clock()),
                                MENU_KEYS)
        if digit:
            return digit
        number = "".join(c for c in message.caller if c.isdigit() or c in "*#")
        if not number:
            return await _play(self.agi, "vm-unknown-caller", MENU_KEYS)
        digit = await _play(self.agi, "vm-from-phonenumber", MENU_KEYS)
        return digit or _check(self.agi, await self.agi.say_digits(number, MENU_KEYS)).digit

    async def _record_greeting(self) -> None:
        store = self.context.store
        path, token = store.new_recording_path(self.box)
        try:
            await _play(self.agi, "vm-rec-greeting")
            reply = _check(self.agi, await _record(self.agi, path, self.context.max_greeting,
                                                   self.context.silence))
        except BaseException:
            store.discard(self.box, token)
            raise
        if reply.value == -1 or not store.save_greeting(self.box, token):
            store.discard(self.box, token)
            return
        log.info("voicemailmain {box}: new greeting", box=self.box)
        await _play(self.agi, "vm-greeting-saved")


# -- built-in scripts and EXEC applications ------------------------------------------------------


async def _voicemail_script(context: VoicemailContext, agi: Agi, args: tuple[str, ...]) -> None:
    box = parse_mailbox_options(args[0])[0] if args else ""
    if not box:
        log.error("voicemail: no mailbox given (args = [\"<extension>\", \"u\"])")
        return
    await leave_message(context, agi, box, args[1] if len(args) > 1 else "")
    await _hangup(agi)


async def _voicemail_main_script(context: VoicemailContext, agi: Agi,
                                 args: tuple[str, ...]) -> None:
    await check_messages(context, agi, parse_mailbox_options(args[0])[0] if args else "")
    await _hangup(agi)


async def _hangup(agi: Agi) -> None:
    with contextlib.suppress(ChannelHungUp):
        await agi.hangup()


def voicemail_scripts(context: VoicemailContext) -> dict[str, BuiltinScript]:
    """The built-in scripts ``voicemail`` and ``voicemailmain`` on ``context``."""

    def script(flow: Callable[[VoicemailContext, Agi, tuple[str, ...]], Any]) -> BuiltinScript:
        def run(agi: Agi, args: tuple[str, ...]) -> defer.Deferred[None]:
            return defer.ensureDeferred(flow(context, agi, args))
        return run

    return {"voicemail": script(_voicemail_script),
            "voicemailmain": script(_voicemail_main_script)}


def parse_mailbox_options(options: str) -> tuple[str, str]:
    """``(box, flags)`` of Asterisk's ``box[@context][&box2…][,flags]``
    (only the first box; the context is ignored)."""
    first, _, flags = options.partition(",")
    box = first.split("&", 1)[0].split("@", 1)[0].strip()
    return box, flags.strip()


def _child_agi(session: AgiSession, application: str, options: str) -> Agi:
    """An in-process AGI on ``session``'s channel for an application that
    EXEC runs while ``session`` itself is busy with that EXEC."""
    child = AgiSession(session.channel, session.services, session.clock,
                       label=f"{session.label}/{application}")
    env = environment_for(session.channel, application, (options,),
                          session.services.options.version)
    return Agi(child, env)


async def _run_application(session: AgiSession, application: str, options: str,
                           flow: Callable[[Agi], Any]) -> int:
    agi = _child_agi(session, application, options)
    try:
        await flow(agi)
    except ChannelHungUp:
        return -1
    finally:
        agi.session.stop()
    return 0


async def voicemail_application(context: VoicemailContext, session: AgiSession,
                                options: str) -> int:
    """EXEC ``VoiceMail(box[,flags])``: 0, or -1 when the caller hung up."""
    box, flags = parse_mailbox_options(options)
    return await _run_application(session, "VoiceMail", options,
                                  functools.partial(_leave, context, box, flags))


async def voicemail_main_application(context: VoicemailContext, session: AgiSession,
                                     options: str) -> int:
    """EXEC ``VoiceMailMain([box])``: 0, or -1 when the caller hung up."""
    box, flags = parse_mailbox_options(options)
    if flags:
        log.info("VoiceMailMain: options {flags!r} ignored", flags=flags)
    return await _run_application(session, "VoiceMailMain", options,
                                  functools.partial(_check_box, context, box))


async def _leave(context: VoicemailContext, box: str, flags: str, agi: Agi) -> None:
    await leave_message(context, agi, box, flags)


async def _check_box(context: VoicemailContext, box: str, agi: Agi) -> None:
    await check_messages(context, agi, box)
