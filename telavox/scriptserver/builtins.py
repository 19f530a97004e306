"""The built-in scripts: Python scripts on the in-process AGI API, so they
behave exactly as the same script would over FastAGI.

Owns :data:`BUILTINS` (name → script), registered by
:class:`~telavox.scriptserver.service.ScriptServerService`.  Bind one to a
number with ``[[dialplan]] number = "*43"``, ``app = "echo"``.
"""

from __future__ import annotations

from collections.abc import Mapping

from twisted.internet import defer

from telavox.scriptserver.inprocess import Agi
from telavox.scriptserver.runner import BuiltinScript

__all__ = ["BUILTINS", "echo"]


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
