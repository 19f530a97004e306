"""Frozen values that cross component boundaries.

Everything a component hands to another one (through the interfaces in
:mod:`telavox.interfaces`) is one of these records or a value from a core
package: never a dict, never a live object.
"""

from __future__ import annotations

import enum
import os
from typing import ClassVar

import attrs


class HealthStatus(enum.Enum):
    """How well a base application is doing."""

    OK = "ok"
    DEGRADED = "degraded"
    DOWN = "down"


@attrs.frozen
class Health:
    """A base application's health: a status and, unless OK, why."""

    status: HealthStatus
    reason: str = ""

    @classmethod
    def ok(cls) -> Health:
        return cls(HealthStatus.OK)

    @classmethod
    def degraded(cls, reason: str) -> Health:
        return cls(HealthStatus.DEGRADED, reason)

    @classmethod
    def down(cls, reason: str) -> Health:
        return cls(HealthStatus.DOWN, reason)


class ReconfigureError(Exception):
    """A component refused a new configuration section; the old one stays.

    ``restart_keys`` names the keys whose change needs a restart (for example
    ``listen``); ``message`` says what is wrong in words.
    """

    def __init__(self, message: str, restart_keys: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.restart_keys = restart_keys


def new_correlation_id() -> str:
    """A fresh call-correlation id: 16 random bytes as 32 hex digits."""
    return os.urandom(16).hex()


@attrs.frozen(kw_only=True)
class Event:
    """Base of every event on the event bus.

    ``correlation_id`` is shared by every leg and hop of one call (empty for
    events that are not about a call); ``timestamp`` is wall-clock seconds
    since the epoch, stamped by the publisher.  Subclasses set ``topic``.
    """

    topic: ClassVar[str] = "event"
    correlation_id: str = ""
    timestamp: float = 0.0


@attrs.frozen(kw_only=True)
class ComponentEvent(Event):
    """A base application changed state (started, stopped, reconfigured)."""

    topic: ClassVar[str] = "component"
    component: str
    what: str
    detail: str = ""


# --- store records ----------------------------------------------------------


@attrs.frozen(kw_only=True)
class UserRecord:
    """A user as the store keeps it: digest HA1 values, never a password.

    ``ha1_md5``/``ha1_sha256`` are hex digests of ``user:realm:password``
    for ``realm``; ``attributes`` holds further per-user settings as sorted
    ``(key, value)`` string pairs.
    """

    extension: str
    display_name: str = ""
    realm: str = ""
    ha1_md5: str = ""
    ha1_sha256: str = ""
    attributes: tuple[tuple[str, str], ...] = ()


@attrs.frozen(kw_only=True)
class BindingRecord:
    """One registered contact of an address-of-record (RFC 3261 §10).

    ``expires_at`` is wall-clock seconds since the epoch.  ``source`` is
    ``transport:host:port`` of the REGISTER's sender, ``connection`` an
    opaque id of the flow it came over (empty for UDP).
    """

    aor: str
    contact: str
    expires_at: float
    q: float = 1.0
    call_id: str = ""
    cseq: int = 0
    source: str = ""
    connection: str = ""
    user_agent: str = ""
    instance: str = ""
    reg_id: int = 0
    path: tuple[str, ...] = ()


@attrs.frozen(kw_only=True)
class CdrRecord:
    """A finished call's record.  Times are wall-clock epoch seconds; an
    unanswered call has ``answer_time`` None."""

    correlation_id: str
    call_id: str
    caller: str
    callee: str
    start_time: float
    answer_time: float | None
    end_time: float
    disposition: str
    codec: str = ""
    sip_server: str = ""
    hangup_cause: str = ""


@attrs.frozen(kw_only=True)
class VoicemailRecord:
    """Metadata of one voicemail message; the audio lives in ``path``."""

    id: int | None
    box: str
    caller: str
    created_at: float
    duration: float
    path: str
    folder: str = "INBOX"
    read: bool = False


@attrs.frozen(kw_only=True)
class ConfigVersion:
    """One stored version of the configuration file's text."""

    version: int
    created_at: float
    source: str
    text: str
    sha256: str


# --- users, locations and routing --------------------------------------------------


@attrs.frozen(kw_only=True)
class RegistrationEvent(Event):
    """A binding changed: ``what`` is registered, refreshed, removed or expired."""

    topic: ClassVar[str] = "registration"
    aor: str
    contact: str
    what: str
    expires: int = 0
    source: str = ""
    user_agent: str = ""


@attrs.frozen
class PoolMember:
    """A SIP server of the pool (or a gateway) as tlb sees it.

    ``address`` is ``transport:host:port``; ``up`` is the health verdict of
    the OPTIONS probes; ``drained`` members take no new calls.
    """

    name: str
    address: str
    up: bool = True
    drained: bool = False

    @property
    def available(self) -> bool:
        """True when new calls may go there."""
        return self.up and not self.drained


@attrs.frozen(kw_only=True)
class MemberEvent(Event):
    """A pool member or gateway went up, down, or was drained/undrained."""

    topic: ClassVar[str] = "pool"
    name: str
    what: str
    reason: str = ""
