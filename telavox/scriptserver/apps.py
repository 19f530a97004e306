"""The dial-plan applications AGI's EXEC runs, with Asterisk's arguments
(``,``-separated) and return values.

Owns :data:`Application` (the type of one), :func:`default_applications`
and :data:`NOT_YET`.  Built in: ``Answer``, ``Hangup``, ``Playback``
(``file[&file…][,skip|noanswer]``, sets PLAYBACKSTATUS), ``Dial``
(``tech/target[&…][,timeout[,options]]``, sets DIALSTATUS), ``Echo``,
``SendDTMF``, ``Set``, ``NoOp``, ``Wait`` and ``ConfBridge`` (``MeetMe``
the same: the caller joins a room of this SIP server).  Names are matched
without regard to case.

``VoiceMail`` and ``VoiceMailMain`` need the voicemail boxes:
:func:`voicemail_applications` makes them on a
:class:`~telavox.scriptserver.voicemail.VoicemailContext`, and the
scriptserver service passes them to its runner; they run the flows of
:mod:`telavox.scriptserver.voicemail`.  Without them (a bare runner), and
for any other application, EXEC answers ``-2``, as Asterisk does for an
application whose module is not loaded, with a log line saying so.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from twisted.internet import defer

from telavox.interfaces import ChannelHungUp

if TYPE_CHECKING:
    from telavox.scriptserver.session import AgiSession
    from telavox.scriptserver.voicemail import VoicemailContext

__all__ = ["NOT_YET", "Application", "default_applications", "dial_target",
           "voicemail_applications"]

Application = Callable[["AgiSession", str], Awaitable[int]]
"""An EXEC application: ``(session, options)`` → its result (0 goes on,
-1 means the caller is gone or the call should end)."""

NOT_YET = {
    "voicemail": "VoiceMail (the voicemail application, given by the scriptserver service)",
    "voicemailmain": "VoiceMailMain (the voicemail application, given by the scriptserver "
                     "service)",
}
"""Asterisk applications that are not among the defaults: provided by the
scriptserver service (voicemail)."""


async def answer(session: AgiSession, options: str) -> int:
    """``Answer()``: 0, or -1 when the caller is gone."""
    channel = session.channel
    if channel.state() != 6:
        await defer.maybeDeferred(channel.answer)
    return 0


async def hangup(session: AgiSession, options: str) -> int:
    """``Hangup()``: hangs up; returns -1 as Asterisk's does."""
    await defer.maybeDeferred(session.channel.hangup)
    return -1


async def playback(session: AgiSession, options: str) -> int:
    """``Playback(file[&file…][,options])``: plays each file that exists
    (a missing one is logged and skipped); PLAYBACKSTATUS is SUCCESS when all
    played, FAILED otherwise.  Returns 0 even then, as Asterisk does."""
    files, _, flags = options.partition(",")
    channel = session.channel
    failed = False
    if channel.state() != 6:
        if "skip" in flags:
            return 0
        if "noanswer" not in flags:
            try:
                await defer.maybeDeferred(channel.answer)
            except ChannelHungUp:
                failed = True
    for name in files.split("&") if not failed else ():
        path = session.services.sounds.find(name, str(channel.language))
        if path is None:
            session.log.warn("{label}: Playback failed for {name}: no such sound",
                             label=session.label, name=name)
            failed = True
            continue
        try:
            await defer.maybeDeferred(channel.play, [path], "")
        except ChannelHungUp:
            failed = True
            break
    await session.variables.set("PLAYBACKSTATUS", "FAILED" if failed else "SUCCESS")
    return 0


def dial_target(dialstring: str) -> str:
    """The extension or number in one Asterisk dial string: ``SIP/1001`` →
    ``1001``, ``PJSIP/0123@trunk`` and ``SIP/trunk/0123`` → ``0123``,
    ``Local/1001@default/n`` → ``1001``."""
    tech, slash, rest = dialstring.strip().partition("/")
    if not slash:
        rest = tech
    elif tech.lower() == "local":
        rest = rest.split("/", 1)[0]
    else:
        rest = rest.rsplit("/", 1)[-1]
    return rest.split("@", 1)[0]


async def dial(session: AgiSession, options: str) -> int:
    """``Dial(tech/target[&…][,timeout[,options]])``: rings every target at
    once (the first to answer wins) for ``timeout`` seconds (none: no
    limit, passed as -1) and sets DIALSTATUS.  Returns -1 when the caller
    hung up and after an answered call (unless option ``g``), else 0."""
    parts = options.split(",")
    targets = [t for t in parts[0].split("&") if t.strip()]
    channel = session.channel
    if not targets:
        session.log.warn("{label}: Dial requires an argument (destination)", label=session.label)
        return -1
    timeout_text = parts[1].strip() if len(parts) > 1 else ""
    timeout = float(timeout_text) if timeout_text.isdigit() else -1.0
    flags = parts[2] if len(parts) > 2 else ""
    try:
        status = str(await defer.maybeDeferred(
            channel.dial, "&".join(dial_target(t) for t in targets), timeout))
    except ChannelHungUp:
        status = "CANCEL"
    await session.variables.set("DIALSTATUS", status)
    if status == "CANCEL" or channel.state() == 0:
        return -1
    if status == "ANSWER":
        return 0 if "g" in flags else -1
    return 0


async def echo(session: AgiSession, options: str) -> int:
    """``Echo()``: the caller hears itself until ``#``; 0, or -1 on hang-up."""
    await defer.maybeDeferred(session.channel.echo, "#")
    return 0


async def confbridge(session: AgiSession, options: str) -> int:
    """``ConfBridge(room)`` (and ``MeetMe(room)``): the caller joins the
    room of this SIP server until it presses ``#`` (``*`` toggles mute);
    0, or -1 on hang-up."""
    room = options.split(",", 1)[0].strip()
    if not room:
        session.log.warn("{label}: ConfBridge needs a room", label=session.label)
        return -1
    await defer.maybeDeferred(session.channel.conference, room)
    return 0


async def send_dtmf(session: AgiSession, options: str) -> int:
    """``SendDTMF(digits[,…])``: 0, or -1 when the caller is gone."""
    digits = options.split(",", 1)[0]
    await defer.maybeDeferred(session.channel.send_digits, digits)
    return 0


async def set_(session: AgiSession, options: str) -> int:
    """``Set(name=value)``: 0."""
    name, equals, value = options.partition("=")
    if not equals or not name.strip():
        session.log.warn("{label}: Set requires name=value, not {options!r}",
                         label=session.label, options=options)
        return 0
    await session.variables.set(name.strip(), value)
    return 0


async def noop(session: AgiSession, options: str) -> int:
    """``NoOp(text)``: 0."""
    return 0


async def wait(session: AgiSession, options: str) -> int:
    """``Wait(seconds)``: 0 after the time, -1 if the caller hangs up."""
    try:
        seconds = max(0.0, float(options.strip() or 0))
    except ValueError:
        seconds = 0.0
    channel = session.channel
    if channel.state() == 0:
        return -1
    done: defer.Deferred[int] = defer.Deferred()

    def finish(result: int) -> None:
        if not done.called:
            done.callback(result)

    timer = session.clock.callLater(seconds, finish, 0)

    def hung_up(result: object) -> object:
        if timer.active():
            timer.cancel()
        finish(-1)
        return result

    channel.hung_up.addBoth(hung_up)
    return await done


def default_applications() -> dict[str, Application]:
    """The built-in applications by lower-case name (a new dict)."""
    return {"answer": answer, "hangup": hangup, "playback": playback, "dial": dial,
            "echo": echo, "senddtmf": send_dtmf, "set": set_, "noop": noop, "wait": wait,
            "confbridge": confbridge, "meetme": confbridge}


def voicemail_applications(context: VoicemailContext) -> dict[str, Application]:
    """``VoiceMail(box[,flags])`` and ``VoiceMailMain([box])`` on the boxes
    of ``context``, by lower-case name: they run the flows of the built-in
    scripts ``voicemail`` and ``voicemailmain``
    (:mod:`telavox.scriptserver.voicemail`) on the EXEC's channel and
    return 0, or -1 when the caller hung up."""
    # imported here: voicemail needs the session, which needs this module
    from telavox.scriptserver import voicemail

    return {"voicemail": functools.partial(voicemail.voicemail_application, context),
            "voicemailmain": functools.partial(voicemail.voicemail_main_application, context)}
