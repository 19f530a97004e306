"""AGI for built-in Python scripts: the same commands, without a wire.

Owns :class:`Agi` and :class:`AgiCommandError`.  Each method formats an
AGI command line (arguments quoted) and runs it through the session's
:meth:`~telavox.scriptserver.session.AgiSession.execute`, so a built-in
script and an external one take one code path and get the same values:
every method fires with the :class:`~telavox.scriptserver.agi.Reply` a
script would read (``reply.result``, ``reply.data``, ``reply.endpos``,
``reply.digit``).  Timeouts are milliseconds (``-1``: none), as on the wire.

Where a library would raise, so does :class:`Agi`: a ``511`` (the caller
hung up and the command needs a live channel) fails with
:class:`~telavox.interfaces.ChannelHungUp`, a ``510``/``520`` fails with
:class:`AgiCommandError`.  :meth:`Agi.command` runs a raw line and never
fails.  Calls made while a command runs wait their turn.
"""

from __future__ import annotations

from typing import Any

from twisted.internet import defer

from telavox.interfaces import ChannelHungUp
from telavox.scriptserver.agi import AgiEnvironment, Reply, ReplyCode, format_command
from telavox.scriptserver.session import AgiSession

__all__ = ["Agi", "AgiCommandError"]


class AgiCommandError(Exception):
    """A command was refused: ``reply`` is its ``510`` or ``520``."""

    def __init__(self, line: str, reply: Reply) -> None:
        super().__init__(f"{line!r}: {reply.to_bytes().decode(errors='replace').strip()}")
        self.line = line
        self.reply = reply


class Agi:
    """The AGI of one built-in script run (see the module docstring)."""

    def __init__(self, session: AgiSession, env: AgiEnvironment) -> None:
        self.session = session
        self.env = env.as_dict()
        """The ``agi_*`` variables, as a script library parses them."""
        self._lock = defer.DeferredLock()

    @property
    def channel(self) -> Any:
        """The :class:`~telavox.interfaces.IChannel` the script runs on."""
        return self.session.channel

    def command(self, line: str) -> defer.Deferred[Reply]:
        """Run a raw command line; fires with its reply whatever it is."""
        return self._lock.run(self._execute, line)

    def _execute(self, line: str) -> defer.Deferred[Reply]:
        if self.session.ended:
            return defer.fail(ChannelHungUp(f"the script's session is over: {line}"))
        return self.session.execute(line)

    def execute(self, command: str, *args: object) -> defer.Deferred[Reply]:
        """Run ``command`` (its words, e.g. ``"STREAM FILE"``) with ``args``
        quoted; fires with a 200 reply (see the module docstring)."""
        line = format_command(command.split(), args)

        def check(reply: Reply) -> Reply:
            if reply.code == ReplyCode.DEAD:
                raise ChannelHungUp(line)
            if reply.code != ReplyCode.SUCCESS:
                raise AgiCommandError(line, reply)
            return reply

        return self.command(line).addCallback(check)

    # -- the channel ---------------------------------------------------------------------------

    def answer(self) -> defer.Deferred[Reply]:
        """ANSWER: result 0, or -1."""
        return self.execute("ANSWER")

    def hangup(self) -> defer.Deferred[Reply]:
        """HANGUP: result 1."""
        return self.execute("HANGUP")

    def channel_status(self) -> defer.Deferred[Reply]:
        """CHANNEL STATUS: result 4 ringing, 6 up."""
        return self.execute("CHANNEL STATUS")

    def set_callerid(self, callerid: str) -> defer.Deferred[Reply]:
        """SET CALLERID (``"Name" <number>`` or a number): result 1."""
        return self.execute("SET CALLERID", callerid)

    def set_music(self, on: bool, music_class: str | None = None) -> defer.Deferred[Reply]:
        """SET MUSIC ON/OFF: result 0."""
        args = ["on" if on else "off"] + ([music_class] if music_class else [])
        return self.execute("SET MUSIC", *args)

    def set_autohangup(self, seconds: float) -> defer.Deferred[Reply]:
        """SET AUTOHANGUP (0: cancel): result 0."""
        return self.execute("SET AUTOHANGUP", seconds)

    # -- playing and listening -----------------------------------------------------------------

    def stream_file(self, name: str, escape_digits: str = "",
                    offset: int | None = None) -> defer.Deferred[Reply]:
        """STREAM FILE: result = the digit's code or 0 (-1: no such sound or
        hang-up), endpos."""
        extra = [] if offset is None else [offset]
        return self.execute("STREAM FILE", name, escape_digits, *extra)

    def control_stream_file(self, name: str, escape_digits: str = "", skipms: int = 3000,
                            ffchar: str = "#", rewchar: str = "*",
                            pausechar: str = "") -> defer.Deferred[Reply]:
        """CONTROL STREAM FILE: result = the digit's code, 0 or -1."""
        return self.execute("CONTROL STREAM FILE", name, escape_digits, skipms, ffchar,
                            rewchar, pausechar)

    def get_option(self, name: str, escape_digits: str = "",
                   timeout: int | None = None) -> defer.Deferred[Reply]:
        """GET OPTION: STREAM FILE, then up to ``timeout`` ms for a digit."""
        extra = [] if timeout is None else [timeout]
        return self.execute("GET OPTION", name, escape_digits, *extra)

    def get_data(self, name: str, timeout: int = 0,
                 max_digits: int = 1024) -> defer.Deferred[Reply]:
        """GET DATA: result = the digits; data ``timeout`` when it timed out."""
        return self.execute("GET DATA", name, timeout, max_digits)

    def wait_for_digit(self, timeout: int = -1) -> defer.Deferred[Reply]:
        """WAIT FOR DIGIT: result = the digit's code, 0 on timeout, -1."""
        return self.execute("WAIT FOR DIGIT", timeout)

    def say_digits(self, digits: str, escape_digits: str = "") -> defer.Deferred[Reply]:
        """SAY DIGITS: result = the digit's code, 0 or -1."""
        return self.execute("SAY DIGITS", digits, escape_digits)

    def say_number(self, number: int, escape_digits: str = "") -> defer.Deferred[Reply]:
        """SAY NUMBER: result = the digit's code, 0 or -1."""
        return self.execute("SAY NUMBER", number, escape_digits)

    def record_file(self, name: str, fmt: str = "wav", escape_digits: str = "#",
                    timeout: int = -1, offset: int | None = None, beep: bool = False,
                    silence: int | None = None) -> defer.Deferred[Reply]:
        """RECORD FILE: result = the digit's code (data ``dtmf``), 0
        (``timeout``) or -1 (``hangup``/``writefile``), endpos."""
        extra: list[object] = [] if offset is None and not beep else [offset or 0]
        if beep:
            extra.append("BEEP")
        if silence is not None:
            extra.append(f"s={silence}")
        return self.execute("RECORD FILE", name, fmt, escape_digits, timeout, *extra)

    # -- variables, database, applications -----------------------------------------------------

    def set_variable(self, name: str, value: str) -> defer.Deferred[Reply]:
        """SET VARIABLE: result 1."""
        return self.execute("SET VARIABLE", name, value)

    def get_variable(self, name: str) -> defer.Deferred[Reply]:
        """GET VARIABLE: result 1 and data = the value, or result 0."""
        return self.execute("GET VARIABLE", name)

    def get_full_variable(self, expression: str) -> defer.Deferred[Reply]:
        """GET FULL VARIABLE: result 1 and data = the expression expanded."""
        return self.execute("GET FULL VARIABLE", expression)

    def exec_(self, application: str, options: str = "") -> defer.Deferred[Reply]:
        """EXEC: result = what the application returns, -2 for none."""
        return self.execute("EXEC", application, options)

    def database_get(self, family: str, key: str) -> defer.Deferred[Reply]:
        """DATABASE GET: result 1 and data = the value, or result 0."""
        return self.execute("DATABASE GET", family, key)

    def database_put(self, family: str, key: str, value: str) -> defer.Deferred[Reply]:
        """DATABASE PUT: result 1 (0: failure)."""
        return self.execute("DATABASE PUT", family, key, value)

    def database_del(self, family: str, key: str) -> defer.Deferred[Reply]:
        """DATABASE DEL: result 1 (0: failure)."""
        return self.execute("DATABASE DEL", family, key)

    def database_deltree(self, family: str, keytree: str = "") -> defer.Deferred[Reply]:
        """DATABASE DELTREE: result 1 when something was removed."""
        extra = [keytree] if keytree else []
        return self.execute("DATABASE DELTREE", family, *extra)

    def verbose(self, message: str, level: int = 1) -> defer.Deferred[Reply]:
        """VERBOSE: result 1."""
        return self.execute("VERBOSE", message, level)

    def noop(self) -> defer.Deferred[Reply]:
        """NOOP: result 0."""
        return self.execute("NOOP")
