"""One AGI conversation on one channel: Asterisk's ``run_agi`` loop.

Owns :class:`AgiSession`, :func:`environment_for` and :class:`EndReason`.

Theory of operation.  A session runs one command at a time against its
:class:`~telavox.interfaces.IChannel` (:meth:`AgiSession.execute` gives the
:class:`~telavox.scriptserver.agi.Reply`; built-in scripts call it through
:class:`~telavox.scriptserver.inprocess.Agi`).  A wire adapter (FastAGI or
process) also feeds it the script's bytes (:meth:`AgiSession.data_received`)
and gives it ``write`` and ``notify_hangup`` callables; the session then
sends the environment block, frames the bytes into command lines, runs
them in order and writes each reply, as ``run_agi`` does:

* The hang-up of the caller is *noticed* while no command runs: at once
  when idle, otherwise right after the reply of the command in progress
  (which itself answers ``-1`` because its channel operation failed).  From
  then on the session is *dead*: commands that need a live channel get
  ``511``, the others (variables, DATABASE, EXEC, VERBOSE, NOOP) still run.
* When the hang-up is noticed, and unless the channel variable
  ``AGISIGHUP`` is false, the adapter's ``notify_hangup`` runs: FastAGI
  writes ``HANGUP\\n``, a process gets SIGHUP.  ``AGIEXITONHANGUP`` true
  ends the session there.  Both variables are read when the session starts,
  as Asterisk does.  A channel already down at the start runs dead from the
  start (Asterisk's DeadAGI) and gets no notification.
* A line starting with ``failure`` ends the session (what Asterisk's
  forked child writes when ``exec`` fails).
* Our additions, not Asterisk's: a script that sends no complete line for
  ``idle_timeout`` seconds while we wait for one ends the session and the
  channel is hung up; a line longer than ``max_line`` is answered ``510``
  and ends the session (Asterisk would cut it into 2047-byte commands);
  reading pauses while more than ``max_pending`` bytes of commands wait.

The session never hangs up the channel except on the idle timeout, HANGUP
and SET AUTOHANGUP: when it ends, the runner's caller (tproxy) does.
"""

from __future__ import annotations

import enum
import itertools
from collections.abc import Callable, Sequence
from typing import Any

from twisted.internet import defer
from twisted.internet.interfaces import IDelayedCall, IPushProducer, IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from telavox.interfaces import ChannelHungUp
from telavox.scriptserver.agi import (
    AgiEnvironment,
    LineFeeder,
    LineTooLongError,
    Reply,
    is_false,
    is_true,
    match_command,
    tokenize,
)
from telavox.scriptserver.commands import COMMANDS, ShowUsageError
from telavox.scriptserver.services import AgiServices
from telavox.scriptserver.variables import ChannelVariables

__all__ = ["AgiSession", "EndReason", "environment_for"]

_thread_ids = itertools.count(1)


class EndReason(enum.StrEnum):
    """Why a session ended (the value :attr:`AgiSession.done` fires with)."""

    CLOSED = "script closed its side"
    FAILURE = "script reported failure"
    TIMEOUT = "script sent no command in time"
    LINE_TOO_LONG = "command line too long"
    HANGUP = "caller hung up (AGIEXITONHANGUP)"
    RETURNED = "built-in script returned"
    STOPPED = "stopped"


def environment_for(channel: Any, request: str, args: Sequence[str], version: str,
                    *, network_script: str | None = None,
                    threadid: int | None = None) -> AgiEnvironment:
    """The environment block for ``channel`` (an IChannel) running
    ``request`` with ``args``; ``network_script`` not None makes it a
    FastAGI block.  ``agi_type`` is the technology of the channel's name
    (``SIP/…``), ``agi_dnid`` the number dialled."""
    name = str(channel.name)
    tech = name.split("/", 1)[0] if "/" in name else "SIP"
    return AgiEnvironment(
        request=request, channel=name, language=str(channel.language), type=tech,
        uniqueid=str(channel.unique_id), version=version,
        callerid=str(channel.caller_id or "unknown"),
        calleridname=str(channel.caller_name or "unknown"),
        dnid=str(channel.extension or "unknown"), context=str(channel.context),
        extension=str(channel.extension),
        threadid=next(_thread_ids) if threadid is None else threadid,
        args=tuple(args), network=network_script is not None,
        network_script=network_script or "")


class AgiSession:
    """An AGI session (see the module docstring).  ``clock`` is the reactor
    (timers and ``EPOCH``); ``label`` names the script in logs; ``write``
    and ``notify_hangup`` come from a wire adapter (None for built-ins)."""

    log = Logger()

    def __init__(self, channel: Any, services: AgiServices, clock: IReactorTime, *,
                 label: str = "", write: Callable[[bytes], None] | None = None,
                 notify_hangup: Callable[[], None] | None = None) -> None:
        self.channel = channel
        self.services = services
        self.clock = clock
        self.label = label
        self.variables = ChannelVariables(channel, clock.seconds)
        settings = channel.variables
        self.send_sighup = not is_false(settings.get("AGISIGHUP"))
        self.exit_on_hangup = is_true(settings.get("AGIEXITONHANGUP"))
        self.dead = channel.state() == 0 or bool(channel.hung_up.called)
        self.done: defer.Deferred[EndReason] = defer.Deferred()
        self.end_reason: EndReason | None = None
        self.producer: IPushProducer | None = None
        self.commands = 0
        self._write = write
        self._notify = notify_hangup
        self._feeder = LineFeeder(services.options.max_line)
        self._busy = False
        self._hangup_pending = False
        self._eof = False
        self._pumping = False
        self._paused = False
        self._idle: IDelayedCall | None = None
        self._autohangup: IDelayedCall | None = None
        channel.hung_up.addBoth(self._caller_hung_up)

    def __repr__(self) -> str:
        state = "ended" if self.ended else "dead" if self.dead else "live"
        return f"<AgiSession {self.label} on {self.channel.name} {state}>"

    @property
    def ended(self) -> bool:
        """True once the session is over."""
        return self.end_reason is not None

    @property
    def busy(self) -> bool:
        """True while a command runs."""
        return self._busy

    # -- commands ----------------------------------------------------------------------------

    def execute(self, line: str) -> defer.Deferred[Reply]:
        """Run one command line and fire with its reply (never fails).
        Raises RuntimeError when a command is running or the session is
        over."""
        return self._run(line).addCallback(self._after)

    def _after(self, reply: Reply) -> Reply:
        self._command_done()
        return reply

    def _run(self, line: str) -> defer.Deferred[Reply]:
        if self._busy:
            raise RuntimeError("an AGI session runs one command at a time")
        if self.ended:
            raise RuntimeError(f"the AGI session is over ({self.end_reason})")
        self._busy = True
        self.commands += 1
        argv = tokenize(line)
        name = match_command(argv, COMMANDS)
        if name is None:
            self.log.info("{label}: invalid or unknown command {line!r}", label=self.label,
                          line=line[:200])
            return defer.succeed(Reply.invalid())
        spec = COMMANDS[name]
        if self.dead and not spec.dead:
            return defer.succeed(Reply.dead())
        d = defer.ensureDeferred(spec.handler(self, argv))
        return d.addErrback(self._command_failed, spec.usage, line)

    def _command_failed(self, failure: Failure, usage: str, line: str) -> Reply:
        if failure.check(ShowUsageError):
            return Reply.bad_syntax(usage)
        if not failure.check(ChannelHungUp):
            self.log.failure("{label}: command {line!r} failed", failure, label=self.label,
                             line=line[:200])
        return Reply.success(-1)

    def _command_done(self) -> None:
        self._busy = False
        if self._hangup_pending:
            self._hangup_pending = False
            self._notice_hangup()

    # -- the caller hanging up ---------------------------------------------------------------

    def _caller_hung_up(self, result: object) -> object:
        if not self.ended and not self.dead:
            if self._busy:
                self._hangup_pending = True
            else:
                self._notice_hangup()
        return result

    def _notice_hangup(self) -> None:
        if self.dead or self.ended:
            return
        self.dead = True
        self.log.info("{label}: {channel} hung up", label=self.label, channel=self.channel.name)
        if self.send_sighup and self._notify is not None:
            self._notify()
        if self.exit_on_hangup:
            self._end(EndReason.HANGUP)

    def set_autohangup(self, seconds: float) -> None:
        """SET AUTOHANGUP: hang the channel up ``seconds`` from now (0: never)."""
        if self._autohangup is not None and self._autohangup.active():
            self._autohangup.cancel()
        self._autohangup = None
        if seconds > 0:
            self._autohangup = self.clock.callLater(seconds, self._hangup_channel)

    def _hangup_channel(self) -> None:
        defer.maybeDeferred(self.channel.hangup).addErrback(
            lambda f: self.log.failure("{label}: hangup failed", f, label=self.label))

    # -- the wire ----------------------------------------------------------------------------

    def start(self, env: AgiEnvironment) -> None:
        """Send the environment block and wait for the first command."""
        self._send(env.to_bytes())
        self._arm_idle()

    def data_received(self, data: bytes) -> None:
        """Bytes from the script."""
        if self.ended:
            return
        self._feeder.feed(data)
        if self._feeder.overflow:
            self._line_too_long()
            return
        self._flow_control()
        self._pump()

    def input_ended(self) -> None:
        """The script closed its side (or the connection was lost): run
        what it sent, then end."""
        if self.ended:
            return
        self._eof = True
        self._pump()

    def stop(self, reason: EndReason = EndReason.STOPPED) -> None:
        """End the session now (a command in progress finishes unheard)."""
        self._end(reason)

    def _pump(self) -> None:
        if self._pumping:
            return
        self._pumping = True
        try:
            while not self.ended and not self._busy:
                try:
                    line = self._feeder.next_line()
                except LineTooLongError:
                    self._line_too_long()
                    return
                if line is None and self._eof:
                    line = self._feeder.flush()
                    if line is None:
                        self._end(EndReason.CLOSED)
                        return
                if line is None:
                    return
                self._flow_control()
                self._cancel_idle()
                if line[:7].lower() == "failure":
                    self.log.warn("{label}: script reported failure", label=self.label)
                    self._end(EndReason.FAILURE)
                    return
                self._run(line).addCallback(self._replied)
        finally:
            self._pumping = False

    def _replied(self, reply: Reply) -> None:
        if self.ended:
            return
        self._send(reply.to_bytes())
        self._command_done()
        if not self.ended:
            self._arm_idle()
            self._pump()

    def _send(self, data: bytes) -> None:
        if self._write is not None:
            self._write(data)

    def _line_too_long(self) -> None:
        self.log.warn("{label}: command line longer than {max} bytes; ending", label=self.label,
                      max=self._feeder.max_line)
        self._send(Reply.invalid().to_bytes())
        self._end(EndReason.LINE_TOO_LONG)

    def _flow_control(self) -> None:
        producer = self.producer
        if producer is None:
            return
        pending = self._feeder.pending
        limit = self.services.options.max_pending
        if not self._paused and pending > limit:
            self._paused = True
            producer.pauseProducing()
        elif self._paused and pending <= limit // 2:
            self._paused = False
            producer.resumeProducing()

    def _arm_idle(self) -> None:
        self._cancel_idle()
        self._idle = self.clock.callLater(self.services.options.idle_timeout, self._idle_timeout)

    def _cancel_idle(self) -> None:
        if self._idle is not None and self._idle.active():
            self._idle.cancel()
        self._idle = None

    def _idle_timeout(self) -> None:
        self._idle = None
        self.log.warn("{label}: no command for {seconds} s; ending the session",
                      label=self.label, seconds=self.services.options.idle_timeout)
        was_dead = self.dead
        self._end(EndReason.TIMEOUT)
        if not was_dead:
            self._hangup_channel()

    def _end(self, reason: EndReason) -> None:
        if self.ended:
            return
        self.end_reason = reason
        self._cancel_idle()
        self.set_autohangup(0)
        self.log.info("{label}: AGI session ended: {reason} ({commands} commands)",
                      label=self.label, reason=reason.value, commands=self.commands)
        self.done.callback(reason)
