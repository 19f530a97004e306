"""Errors of the SIP core, each carrying the response it deserves.

Owns: :class:`StatusEnum` (the base of the enums that list every way a
component refuses something, each member a ``(status, reason)`` pair),
:class:`SipError` and its two sides (h11's split): :class:`RemoteSipError`
for something a peer sent wrong (a malformed message: answer it with
``status``/``reason`` when a response is possible, else drop and log) and
:class:`LocalSipError` for misuse of the core by our own code.
"""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from telavox.sip.message import Message


class StatusEnum(enum.Enum):
    """Members are ``(status, reason phrase)`` pairs of a SIP answer."""

    @property
    def status(self) -> int:
        """The SIP status code."""
        return int(self.value[0])

    @property
    def reason(self) -> str:
        """The reason phrase."""
        return str(self.value[1])


class SipError(Exception):
    """Base of the core's errors.  ``status``/``reason`` form the SIP answer."""

    def __init__(self, reason: str, status: int = 400) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status


class RemoteSipError(SipError):
    """A peer sent something that breaks the protocol."""


class ParseError(RemoteSipError):
    """A message that could not be parsed or fails the mandatory checks.

    ``message`` is what could be read of it (start line and headers), enough
    for :func:`telavox.sip.message.make_response` to build the error response
    when ``message`` is a request with a usable top Via; otherwise None and the
    bytes are dropped.
    """

    def __init__(self, reason: str, status: int = 400, message: Message | None = None) -> None:
        super().__init__(reason, status)
        self.message = message
        #: for a stream framing error: the frames complete before the error
        self.frames: list[Any] = []


class LocalSipError(SipError):
    """Our own code tried something the protocol does not allow."""

    def __init__(self, reason: str, status: int = 500) -> None:
        super().__init__(reason, status)
