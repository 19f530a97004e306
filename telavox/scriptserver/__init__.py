"""scriptserver: runs scripts on calls the way Asterisk's AGI does, so that
AGI programs, FastAGI servers and AGI libraries written for Asterisk work
unchanged, and built-in Python scripts use the same commands in process.
:mod:`.agi` is the sans-IO wire format (environment block, tokenizer,
replies, line framing); :mod:`.commands` and :mod:`.apps` implement the
commands and EXEC applications on an :class:`~telavox.interfaces.IChannel`;
:mod:`.session` is one conversation (Asterisk's ``run_agi``);
:mod:`.inprocess` the API of built-in scripts; :mod:`.fastagi` and
:mod:`.process` the Twisted edges; :mod:`.runner` provides
:class:`~telavox.interfaces.IScriptServer`.  See README.md for the Asterisk
behaviours mirrored and where we differ.
"""

from __future__ import annotations

from telavox.scriptserver.agi import AgiEnvironment, LineFeeder, Reply, ReplyCode, tokenize
from telavox.scriptserver.astdb import MemoryAstDB, StoreAstDB
from telavox.scriptserver.fastagi import FastAgiClient
from telavox.scriptserver.inprocess import Agi, AgiCommandError
from telavox.scriptserver.interfaces import IAstDB
from telavox.scriptserver.process import ProcessAgi
from telavox.scriptserver.runner import BuiltinScript, ScriptRunner
from telavox.scriptserver.services import AgiOptions, AgiServices
from telavox.scriptserver.session import AgiSession, EndReason, environment_for
from telavox.scriptserver.sounds import SoundLibrary

__all__ = [
    "Agi",
    "AgiCommandError",
    "AgiEnvironment",
    "AgiOptions",
    "AgiServices",
    "AgiSession",
    "BuiltinScript",
    "EndReason",
    "FastAgiClient",
    "IAstDB",
    "LineFeeder",
    "MemoryAstDB",
    "ProcessAgi",
    "Reply",
    "ReplyCode",
    "ScriptRunner",
    "SoundLibrary",
    "StoreAstDB",
    "environment_for",
    "tokenize",
]
