"""The built-in scripts: Python scripts on the in-process AGI API, so they
behave exactly as the same script would over FastAGI.

Owns :data:`BUILTINS` (the scripts that need nothing but their call:
``echo``) and :func:`make_builtins`, which adds the scripts that need the
platform's context (``voicemail`` and ``voicemailmain`` on a
:class:`~telavox.scriptserver.voicemail.VoicemailContext`).
:class:`~telavox.scriptserver.service.ScriptServerService` registers what
:func:`make_builtins` gives.  Bind one to a number with ``[[dialplan]]
number = "*43"``, ``app = "echo"``.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping

from twisted.internet import defer
from twisted.logger import Logger

from telavox.config.model import IvrConfig
from telavox.scriptserver.inprocess import Agi
from telavox.scriptserver.ivr import make_ivr
from telavox.scriptserver.runner import BuiltinScript
from telavox.scriptserver.voicemail import VoicemailContext, voicemail_scripts

__all__ = ["BUILTINS", "conference", "echo", "make_builtins", "ringgroup"]

_log = Logger()


@defer.inlineCallbacks
def echo(agi: Agi, args: tuple[str, ...]):  # type: ignore[no-untyped-def]
    """The echo test: answer, explain, echo the caller's media back until
    ``#``, say it ended, hang up."""
    yield agi.answer()
    yield agi.stream_file("demo-echotest")
    yield agi.exec_("Echo")
    yield agi.stream_file("demo-echodone")
    yield agi.hangup()


@defer.inlineCallbacks
def conference(agi: Agi, args: tuple[str, ...]):  # type: ignore[no-untyped-def]
    """A conference room: ``args`` = (room[, PIN]).  With a PIN the caller
    has three tries to enter it; then the caller joins the room (``*``
    mutes and unmutes, ``#`` leaves) and is told goodbye."""
    room = args[0] if args else ""
    pin = args[1] if len(args) > 1 else ""
    yield agi.answer()
    if pin:
        for _ in range(3):
            reply = yield agi.get_data("conf-getpin", 5000, 8)
            if reply.result == pin:
                break
            yield agi.stream_file("conf-invalidpin")
        else:
            yield agi.stream_file("goodbye")
            yield agi.hangup()
            return
    yield agi.exec_("ConfBridge", room or "default")
    yield agi.stream_file("goodbye")
    yield agi.hangup()


@defer.inlineCallbacks
def ringgroup(agi: Agi, args: tuple[str, ...]):  # type: ignore[no-untyped-def]
    """A ring group: ``args`` = (``all`` or ``order``, seconds, member...).
    ``all`` rings every member at once, the first to answer takes the call;
    ``order`` rings one member after the other for the given seconds each,
    until one answers."""
    if len(args) < 3:
        _log.error("ringgroup needs (all|order, seconds, member...), not {args!r}", args=args)
        return
    strategy, seconds, members = args[0], args[1], args[2:]
    if strategy == "all":
        yield agi.exec_("Dial", "&".join(f"SIP/{m}" for m in members) + f",{seconds}")
    else:
        for member in members:
            yield agi.exec_("Dial", f"SIP/{member},{seconds}")
            status = yield agi.get_variable("DIALSTATUS")
            if status.data in ("ANSWER", "CANCEL"):
                break
    yield agi.hangup()


BUILTINS: Mapping[str, BuiltinScript] = {"echo": echo, "conference": conference,
                                         "ringgroup": ringgroup}
"""The built-in scripts by name."""


def make_builtins(voicemail: VoicemailContext | None = None,
                  menus: Callable[[str], IvrConfig | None] | None = None,
                  extensions: Callable[[], Collection[str]] = tuple
                  ) -> dict[str, BuiltinScript]:
    """The built-in scripts by name: :data:`BUILTINS`, with ``voicemail``
    and ``voicemailmain`` when a ``voicemail`` context is given, and
    ``ivr`` when a ``menus`` lookup is (``extensions`` for direct dial)."""
    scripts = dict(BUILTINS)
    if voicemail is not None:
        scripts.update(voicemail_scripts(voicemail))
    if menus is not None:
        scripts["ivr"] = make_ivr(menus, extensions, scripts)
    return scripts
