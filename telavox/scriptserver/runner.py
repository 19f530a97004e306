"""The scriptserver's :class:`~telavox.interfaces.IScriptServer`: which kind
of script runs how.

Owns :class:`ScriptRunner` and :data:`BuiltinScript`.  ``run`` dispatches on
the script's form: ``agi://…`` → :class:`~telavox.scriptserver.fastagi.FastAgiClient`,
an absolute path → :class:`~telavox.scriptserver.process.ProcessAgi`, any
other name → a built-in Python script registered with :meth:`ScriptRunner.register`,
which gets an :class:`~telavox.scriptserver.inprocess.Agi` and its
arguments.  An unknown name is logged and ``run`` fires at once.  Every
kind shares one :class:`~telavox.scriptserver.services.AgiServices`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from twisted.internet import defer
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from telavox.interfaces import ChannelHungUp, IScriptServer
from telavox.scriptserver.apps import Application
from telavox.scriptserver.fastagi import FastAgiClient
from telavox.scriptserver.inprocess import Agi
from telavox.scriptserver.interfaces import IAstDB
from telavox.scriptserver.process import ProcessAgi
from telavox.scriptserver.services import AgiOptions, AgiServices
from telavox.scriptserver.session import AgiSession, EndReason, environment_for

__all__ = ["BuiltinScript", "ScriptRunner"]

BuiltinScript = Callable[[Agi, tuple[str, ...]], Any]
"""A built-in script: ``fn(agi, args)``, returning a Deferred (or a value)
that fires when the script is done."""


@implementer(IScriptServer)
class ScriptRunner:
    """Runs scripts on channels (see the module docstring).  ``options``,
    ``astdb`` and ``applications`` make the shared
    :class:`~telavox.scriptserver.services.AgiServices`; ``interpreters``
    and ``env`` go to :class:`~telavox.scriptserver.process.ProcessAgi`."""

    log = Logger()

    def __init__(self, reactor: Any, *, options: AgiOptions | None = None,
                 astdb: IAstDB | None = None,
                 applications: Mapping[str, Application] | None = None,
                 interpreters: Mapping[str, Sequence[str]] | None = None,
                 env: Mapping[str, str] | None = None) -> None:
        self.reactor = reactor
        self.services = AgiServices.create(options, astdb, applications)
        self.fastagi = FastAgiClient(reactor, self.services)
        self.processes = ProcessAgi(reactor, self.services, interpreters=interpreters, env=env)
        self.scripts: dict[str, BuiltinScript] = {}
        self.running = 0
        """Scripts running now."""

    def register(self, name: str, fn: BuiltinScript) -> None:
        """Make ``fn`` the built-in script called ``name`` (replacing one)."""
        if not name or "/" in name or name.lower().startswith("agi:"):
            raise ValueError(f"not a built-in script name: {name!r}")
        self.scripts[name] = fn

    def run(self, script: str, channel: Any, args: Sequence[str] = ()) -> defer.Deferred[None]:
        """IScriptServer: run ``script`` on ``channel``; fires (never fails)
        when it is done."""
        arguments = tuple(str(a) for a in args)
        if script[:6].lower() == "agi://":
            d = self.fastagi.run(script, channel, arguments)
        elif os.path.isabs(script):
            d = self.processes.run(script, channel, arguments)
        elif script in self.scripts:
            d = self._run_builtin(script, self.scripts[script], channel, arguments)
        else:
            self.log.error("No script {script} (not agi://, not an absolute path, not built in)",
                           script=script)
            return defer.succeed(None)
        self.running += 1
        return d.addBoth(self._done, script, channel)

    def _done(self, result: object, script: str, channel: Any) -> None:
        self.running -= 1
        if isinstance(result, Failure):
            self.log.failure("Script {script} on {channel} failed", result, script=script,
                             channel=channel.name)

    def _run_builtin(self, name: str, fn: BuiltinScript, channel: Any,
                     args: tuple[str, ...]) -> defer.Deferred[None]:
        session = AgiSession(channel, self.services, self.reactor, label=name)
        env = environment_for(channel, name, args, self.services.options.version)
        agi = Agi(session, env)

        def finished(result: object) -> None:
            if isinstance(result, Failure):
                if result.check(ChannelHungUp):
                    self.log.info("{name}: ended by the hang-up ({error})", name=name,
                                  error=result.getErrorMessage())
                else:
                    self.log.failure("Built-in script {name} failed", result, name=name)
            session.stop(EndReason.RETURNED)

        return defer.maybeDeferred(fn, agi, args).addBoth(finished)
