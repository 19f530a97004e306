"""A scripted :class:`~telavox.interfaces.IChannel` for scriptserver tests.

The caller's side is a list of ``inputs`` consumed in order by the
operations that listen: a digit (``"5"``), :data:`HANGUP` (the caller hangs
up at that point), :data:`TIMEOUT` (nothing comes: a wait times out) or
:data:`BLOCK` (the operation stays pending in :attr:`FakeChannel.blocked`
until the test fires it or hangs up).  Every call is recorded in
:attr:`FakeChannel.calls` as a tuple, in order.  Plays that a digit
interrupts advance ``clock`` (when given) by :attr:`FakeChannel.interrupt_after`
seconds, so positions can be checked; recordings write
:attr:`FakeChannel.record_seconds` of silence as an 8 kHz WAV file.
"""

from __future__ import annotations

import os
import wave
from collections import deque
from collections.abc import Iterable
from typing import Any

from twisted.internet import defer
from twisted.internet.task import Clock
from zope.interface import implementer

from telavox.interfaces import ChannelHungUp, IChannel

HANGUP = "<hangup>"
TIMEOUT = "<timeout>"
BLOCK = "<block>"


@implementer(IChannel)
class FakeChannel:
    """See the module docstring."""

    def __init__(self, inputs: Iterable[str] = (), *, clock: Clock | None = None,
                 name: str = "SIP/1001-0000002a", caller_id: str = "1001",
                 caller_name: str = "Alice", extension: str = "800",
                 language: str = "en", state: int = 4,
                 variables: dict[str, str] | None = None) -> None:
        self.inputs: deque[str] = deque(inputs)
        self.clock = clock
        self.name = name
        self.unique_id = "1700000000.42"
        self.caller_id = caller_id
        self.caller_name = caller_name
        self.extension = extension
        self.context = "default"
        self.language = language
        self.variables: dict[str, str] = dict(variables or {})
        self.hung_up: defer.Deferred[None] = defer.Deferred()
        self._state = state
        self.calls: list[tuple[Any, ...]] = []
        self.blocked: defer.Deferred[str] | None = None
        self.dial_status = "ANSWER"
        self.interrupt_after = 0.5
        self.record_seconds = 1.0
        self.hangups = 0
        if state == 0:
            self.hung_up.callback(None)

    # -- test controls ------------------------------------------------------------------------

    def names(self) -> list[str]:
        """The names of the calls made, in order."""
        return [call[0] for call in self.calls]

    def caller_hangs_up(self) -> None:
        """The caller hangs up: pending and later operations fail."""
        if self._state == 0:
            return
        self._state = 0
        blocked, self.blocked = self.blocked, None
        if blocked is not None and not blocked.called:
            blocked.errback(ChannelHungUp(self.name))
        self.hung_up.callback(None)

    def _listen(self, accept: str | None,
                waiting: bool = False) -> defer.Deferred[str] | str | None:
        """The next input for an operation accepting ``accept`` digits (any
        with None): a digit, "" for a timeout (only for a ``waiting``
        operation), a Deferred for BLOCK, None when nothing is scripted for
        it; raises ChannelHungUp for HANGUP."""
        if not self.inputs:
            return None
        head = self.inputs[0]
        if head == HANGUP:
            self.inputs.popleft()
            self.caller_hangs_up()
            raise ChannelHungUp(self.name)
        if head == TIMEOUT:
            if not waiting:
                return None
            self.inputs.popleft()
            return ""
        if head == BLOCK:
            self.inputs.popleft()
            self.blocked = defer.Deferred()
            return self.blocked
        if accept is None or head in accept:
            self.inputs.popleft()
            return head
        return None

    def _live(self) -> None:
        if self._state == 0:
            raise ChannelHungUp(self.name)

    # -- IChannel -----------------------------------------------------------------------------

    def state(self) -> int:
        return self._state

    def answer(self) -> defer.Deferred[None]:
        self.calls.append(("answer",))
        if self._state == 0:
            return defer.fail(ChannelHungUp(self.name))
        self._state = 6
        return defer.succeed(None)

    def hangup(self) -> defer.Deferred[None]:
        self.calls.append(("hangup",))
        self.hangups += 1
        self.caller_hangs_up()
        return defer.succeed(None)

    def play(self, paths: Iterable[str], escape_digits: str = "") -> defer.Deferred[str]:
        self.calls.append(("play", tuple(paths), escape_digits))
        try:
            self._live()
            self._state = 6
            got = self._listen(escape_digits)
        except ChannelHungUp as e:
            return defer.fail(e)
        if isinstance(got, defer.Deferred):
            return got
        if got and self.clock is not None:
            self.clock.advance(self.interrupt_after)
        return defer.succeed(got or "")

    def play_tone(self, tone: str) -> defer.Deferred[None]:
        self.calls.append(("play_tone", tone))
        return defer.fail(ChannelHungUp(self.name)) if self._state == 0 else defer.succeed(None)

    def stop_tone(self) -> defer.Deferred[None]:
        self.calls.append(("stop_tone",))
        return defer.succeed(None)

    def wait_digit(self, timeout: float) -> defer.Deferred[str]:
        self.calls.append(("wait_digit", timeout))
        try:
            self._live()
            got = self._listen(None, waiting=True)
        except ChannelHungUp as e:
            return defer.fail(e)
        if isinstance(got, defer.Deferred):
            return got
        if got is None:
            if timeout < 0:
                self.blocked = defer.Deferred()
                return self.blocked
            got = ""
        if not got and self.clock is not None and timeout > 0:
            self.clock.advance(timeout)
        return defer.succeed(got)

    def record(self, path: str, escape_digits: str = "", timeout: float = -1.0,
               silence: float = 0.0, beep: bool = False) -> defer.Deferred[str]:
        self.calls.append(("record", path, escape_digits, timeout, silence, beep))
        try:
            self._live()
            self._state = 6
            _write_silence(path, self.record_seconds)
            got = self._listen(escape_digits)
        except ChannelHungUp as e:
            return defer.fail(e)
        if isinstance(got, defer.Deferred):
            return got
        return defer.succeed(got or "")

    def send_digits(self, digits: str) -> defer.Deferred[None]:
        self.calls.append(("send_digits", digits))
        return defer.fail(ChannelHungUp(self.name)) if self._state == 0 else defer.succeed(None)

    def echo(self, escape_digits: str = "#") -> defer.Deferred[str]:
        self.calls.append(("echo", escape_digits))
        try:
            self._live()
            self._state = 6
            while self.inputs:
                got = self._listen(escape_digits)
                if got is None:
                    self.inputs.popleft()  # a digit the echo ignores
                    continue
                if isinstance(got, defer.Deferred):
                    return got
                return defer.succeed(got)
        except ChannelHungUp as e:
            return defer.fail(e)
        self.blocked = defer.Deferred()
        return self.blocked

    def conference(self, room: str, muted: bool = False, leave_digits: str = "#",
                   mute_digits: str = "*") -> defer.Deferred[str]:
        self.calls.append(("conference", room))
        if self._state == 0:
            return defer.fail(ChannelHungUp(self.name))
        return defer.succeed("#")

    def dial(self, target: str, timeout: float) -> defer.Deferred[str]:
        self.calls.append(("dial", target, timeout))
        if self._state == 0:
            return defer.fail(ChannelHungUp(self.name))
        return defer.succeed(self.dial_status)

    def set_caller_id(self, number: str, name: str = "") -> defer.Deferred[None]:
        self.calls.append(("set_caller_id", number, name))
        self.caller_id = number
        if name:
            self.caller_name = name
        return defer.succeed(None)


def _write_silence(path: str, seconds: float) -> None:
    if not os.path.isdir(os.path.dirname(path) or "."):
        return
    with wave.open(path, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(8000)
        out.writeframes(b"\0\0" * int(seconds * 8000))
