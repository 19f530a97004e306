"""Process AGI: an AGI program spawned for a call, AGI over its stdin/stdout.

Owns :class:`ProcessAgi`.  As Asterisk's ``launch_script``: the program
(an absolute path) gets the AGI arguments as its own arguments and
inherits our environment; the environment block and the replies go to its
stdin, its stdout carries commands, and what it writes to stderr is logged
line by line.  A program that does not exist (or is not executable) is not
started: ``run`` fires at once after a log line, leaving the channel for
the caller to hang up.  ``interpreters`` maps a file suffix to the command
that runs such files (``{".py": ["/usr/bin/python3"]}``), for scripts that
are not executable or whose ``#!`` line would pick the wrong interpreter.

The end: when the caller hangs up the program gets SIGHUP (unless
``AGISIGHUP`` is false); when the session ends other than by the program
closing its stdout (idle timeout, a line too long, ``failure``,
``AGIEXITONHANGUP``) it gets SIGHUP again, its stdin is closed, and a
program still running ``kill_after`` seconds later is killed (SIGKILL).
``run`` fires once the session is over and the process has been reaped.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping, Sequence
from typing import Any

from twisted.internet import defer, error
from twisted.internet.interfaces import IDelayedCall, IReactorProcess, IReactorTime
from twisted.internet.protocol import ProcessProtocol
from twisted.logger import Logger
from twisted.python.failure import Failure

from telavox.scriptserver.agi import AgiEnvironment
from telavox.scriptserver.services import AgiServices
from telavox.scriptserver.session import AgiSession, EndReason, environment_for

__all__ = ["ProcessAgi"]

_MAX_STDERR_LINE = 4096


class _AgiProcess(ProcessProtocol):
    """One running AGI program and its session."""

    log = Logger()

    def __init__(self, owner: ProcessAgi, channel: Any, env: AgiEnvironment, label: str) -> None:
        self.owner = owner
        self.env = env
        self.label = label
        self.session = AgiSession(channel, owner.services, owner.reactor, label=label,
                                  write=self._write, notify_hangup=self._hangup)
        self.finished: defer.Deferred[None] = defer.Deferred()
        self.pid: int | None = None
        self._reaped = False
        self._stdin_open = True
        self._kill_timer: IDelayedCall | None = None
        self._stderr = bytearray()
        self.session.done.addCallback(self._session_done)

    # -- the process ----------------------------------------------------------------------

    def connectionMade(self) -> None:
        assert self.transport is not None
        self.pid = self.transport.pid
        self.session.producer = self.transport  # type: ignore[assignment]
        self.session.start(self.env)

    def childDataReceived(self, childFD: int, data: bytes) -> None:  # noqa: N803
        if childFD == 1:
            self.session.data_received(data)
        elif childFD == 2:
            self._stderr += data
            self._log_stderr(final=False)

    def childConnectionLost(self, childFD: int) -> None:  # noqa: N803
        if childFD == 0:
            self._stdin_open = False
        elif childFD == 1:
            self.session.input_ended()

    def processEnded(self, reason: Failure) -> None:
        self._reaped = True
        self._log_stderr(final=True)
        if self._kill_timer is not None and self._kill_timer.active():
            self._kill_timer.cancel()
        value = reason.value
        if isinstance(value, error.ProcessTerminated):
            self.log.info("{label}: AGI program exited (code {code}, signal {signal})",
                          label=self.label, code=value.exitCode, signal=value.signal)
        self.session.input_ended()
        self.session.stop(EndReason.CLOSED)
        self.owner.running.pop(self.pid or 0, None)
        if not self.finished.called:
            self.finished.callback(None)

    def _log_stderr(self, final: bool) -> None:
        buffer = self._stderr
        while True:
            end = buffer.find(b"\n")
            if end < 0:
                if len(buffer) > _MAX_STDERR_LINE or (final and buffer):
                    end = len(buffer)
                else:
                    return
            line = bytes(buffer[:end]).decode(errors="replace").rstrip("\r")
            del buffer[: end + 1]
            self.log.info("{label} stderr: {line}", label=self.label, line=line)

    # -- what the session asks ------------------------------------------------------------

    def _write(self, data: bytes) -> None:
        if self._stdin_open and not self._reaped and self.transport is not None:
            self.transport.write(data)

    def _signal(self, name: str) -> None:
        if self._reaped or self.transport is None:
            return
        with contextlib.suppress(error.ProcessExitedAlready, OSError):
            self.transport.signalProcess(name)

    def _hangup(self) -> None:
        self._signal("HUP")

    def _session_done(self, reason: EndReason) -> EndReason:
        if self._reaped:
            return reason
        if reason != EndReason.CLOSED and self.session.send_sighup:
            self._signal("HUP")
        if self.transport is not None:
            self.transport.closeStdin()
        self._stdin_open = False
        clock: IReactorTime = self.owner.reactor
        self._kill_timer = clock.callLater(self.owner.services.options.kill_after, self._kill)
        return reason

    def _kill(self) -> None:
        self._kill_timer = None
        if self._reaped:
            return
        self.log.warn("{label}: AGI program still running {seconds} s after its session "
                      "ended; killing it", label=self.label,
                      seconds=self.owner.services.options.kill_after)
        self._signal("KILL")
        if self.transport is not None:
            self.transport.loseConnection()


class ProcessAgi:
    """Runs AGI programs on channels (see the module docstring)."""

    log = Logger()

    def __init__(self, reactor: Any, services: AgiServices, *,
                 interpreters: Mapping[str, Sequence[str]] | None = None,
                 env: Mapping[str, str] | None = None) -> None:
        self.reactor = reactor
        self.services = services
        self.interpreters = {suffix: tuple(cmd) for suffix, cmd in (interpreters or {}).items()}
        self.env = dict(env or {})
        self.running: dict[int, _AgiProcess] = {}
        """The programs running now, by pid."""

    def command(self, path: str) -> list[str] | None:
        """The command line that runs the program at ``path`` (without its
        arguments), or None (logged) when it cannot be run."""
        if not os.path.isfile(path):
            self.log.warn("Failed to execute '{path}': File does not exist.", path=path)
            return None
        for suffix, prefix in self.interpreters.items():
            if path.endswith(suffix):
                return [*prefix, path]
        if not os.access(path, os.X_OK):
            self.log.warn("Failed to execute '{path}': Permission denied.", path=path)
            return None
        return [path]

    def run(self, path: str, channel: Any, args: Sequence[str] = ()) -> defer.Deferred[None]:
        """Run the program at ``path`` on ``channel``; fires (never fails)
        when its session is over and it has been reaped."""
        argv = self.command(path)
        if argv is None:
            return defer.succeed(None)
        args = tuple(args)
        env = environment_for(channel, path, args, self.services.options.version)
        label = f"AGI {os.path.basename(path)} on {channel.name}"
        protocol = _AgiProcess(self, channel, env, label)
        spawner: IReactorProcess = self.reactor
        try:
            spawner.spawnProcess(protocol, argv[0], [*argv, *args],
                                 env={**os.environ, **self.env},
                                 childFDs={0: "w", 1: "r", 2: "r"})
        except OSError as e:
            self.log.warn("Failed to execute '{path}': {error}", path=path, error=e)
            protocol.session.stop(EndReason.CLOSED)
            return defer.succeed(None)
        self.log.info("Launched AGI Script {path} (pid {pid})", path=path, pid=protocol.pid)
        if protocol.pid is not None:
            self.running[protocol.pid] = protocol
        return protocol.finished
