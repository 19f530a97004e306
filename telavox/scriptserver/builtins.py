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

from collections.abc import Mapping

from twisted.internet import defer

from telavox.scriptserver.inprocess import Agi
from telavox.scriptserver.runner import BuiltinScript
from telavox.scriptserver.voicemail import VoicemailContext, voicemail_scripts

__all__ = ["BUILTINS", "echo", "make_builtins"]


@defer.inlineCallbacks
def echo(agi: Agi, args: tuple[str, ...]):  # type: ignore[no-untyped-def]
    """The echo test: answer, explain, echo the caller's media back until
    ``#``, say it ended, hang up."""
    yield agi.answer()
    yield agi.stream_file("demo-echotest")
    yield agi.exec_("Echo")
    yield agi.stream_file("demo-echodone")
    yield agi.hangup()


BUILTINS: Mapping[str, BuiltinScript] = {"echo": echo}
"""The built-in scripts by name."""


def make_builtins(voicemail: VoicemailContext | None = None) -> dict[str, BuiltinScript]:
    """The built-in scripts by name: :data:`BUILTINS`, with ``voicemail``
    and ``voicemailmain`` when a ``voicemail`` context is given."""
    scripts = dict(BUILTINS)
    if voicemail is not None:
        scripts.update(voicemail_scripts(voicemail))
    return scripts
