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

from telavox.sip.sdp.model import Direction


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


@attrs.frozen(kw_only=True)
class TrunkEvent(Event):
    """A gateway's carrier trunk went ``up`` or ``down`` (OPTIONS keep-alive,
    registration, answers to calls); ``reason`` says what showed it."""

    topic: ClassVar[str] = "trunk"
    gateway: str
    trunk: str
    what: str
    reason: str = ""


# -- media: what tproxy and the mediaserver exchange (IMediaServer) -----------------------


MediaDirection = Direction
"""An SDP direction attribute (RFC 3264 §5.1, §8.4), seen from the side that
wrote it: the SDP core's :class:`~telavox.sip.sdp.model.Direction` (with
``sends``, ``receives`` and ``reverse()``), under the name the media records
use."""


@attrs.frozen
class MediaFormat:
    """One payload format of a media stream (an SDP rtpmap entry, or a
    static payload type's defaults): ``name`` is the encoding name in
    canonical case (``PCMU``, ``PCMA``, ``telephone-event``, ``H264``)."""

    payload_type: int
    name: str
    clock_rate: int
    channels: int = 1
    fmtp: str = ""


@attrs.frozen(kw_only=True)
class RemoteStream:
    """One media stream (one m-line) as the far end described it in SDP.

    ``address``/``port`` are where the far end wants RTP (``port`` 0: the
    stream is refused or removed; ``address`` None or ``0.0.0.0``: the old
    RFC 2543 hold, nothing is sent).  ``formats`` are the negotiated formats
    in the far end's order of preference, including ``telephone-event``.
    ``direction`` is as the far end wrote it.  ``signalling_address`` is the
    IP address the far end's SIP came from (its public address behind NAT):
    RTP from it, or from ``address``, may latch the stream.
    """

    kind: str
    address: str | None
    port: int
    formats: tuple[MediaFormat, ...]
    direction: MediaDirection = MediaDirection.SENDRECV
    rtcp_port: int | None = None
    rtcp_mux: bool = False
    ptime: int | None = None
    signalling_address: str | None = None


@attrs.frozen(kw_only=True)
class LocalStream:
    """One media stream of a mediaserver endpoint: where the far end must
    send (the advertised address, an even RTP port, RTCP on the next one)."""

    kind: str
    address: str
    rtp_port: int
    rtcp_port: int


@attrs.frozen(kw_only=True)
class MediaEndpoint:
    """A mediaserver endpoint: its id, owner (a call id) and its streams, in
    the order of the media kinds asked for."""

    endpoint_id: str
    owner: str
    streams: tuple[LocalStream, ...]


@attrs.frozen(kw_only=True)
class StreamStats:
    """Counters of one stream of an endpoint (RTP packets and octets both
    ways, what was lost by RFC 3550 A.3, interarrival jitter in ms, whether
    the source was latched and where, and the codec last received)."""

    kind: str
    packets_in: int = 0
    packets_out: int = 0
    octets_in: int = 0
    octets_out: int = 0
    packets_lost: int = 0
    jitter_ms: float = 0.0
    latched: str = ""
    codec: str = ""


@attrs.frozen(kw_only=True)
class MediaEndpointStats:
    """What an endpoint did over its life (returned by ``release``)."""

    endpoint_id: str
    streams: tuple[StreamStats, ...] = ()


@attrs.frozen(kw_only=True)
class PlaySource:
    """What to play into an endpoint: a WAV file (``path``, any common
    format; it is converted to the stream's codec) or a tone (``tone``: an
    Asterisk indications string such as ``"440/500,0/500"`` or the name of a
    tone of ``country``'s plan: ``ring``, ``busy``, ``congestion``, ``dial``,
    ``callwaiting``; empty: the mediaserver's configured country), or DTMF
    ``digits`` sent as RFC 4733 events when the far end negotiated them, else
    as in-band tones.  ``loop`` repeats the file or tone until stopped."""

    path: str = ""
    tone: str = ""
    digits: str = ""
    country: str = ""
    loop: bool = False


@attrs.frozen(kw_only=True)
class MediaEvent(Event):
    """Something a mediaserver endpoint saw, delivered to its owner.

    ``kind`` is ``dtmf`` (``digit`` and ``duration_ms``, ``source`` =
    ``rfc4733`` or ``inband``), ``inactive`` (no RTP or RTCP for the
    configured time), ``latched`` (``detail`` = the address learned),
    ``play_done`` (``detail`` = ``finished`` or ``stopped``) or
    ``record_done`` (``detail`` = the path)."""

    topic: ClassVar[str] = "media"
    endpoint_id: str
    owner: str
    kind: str
    digit: str = ""
    duration_ms: int = 0
    source: str = ""
    detail: str = ""


@attrs.frozen(kw_only=True)
class CallEvent(Event):
    """A call on a SIP server changed state: ``what`` is ``created``,
    ``ringing``, ``answered``, ``held``, ``resumed``, ``transferred`` or
    ``ended``; ``legs`` are the Call-IDs of its legs, A first."""

    topic: ClassVar[str] = "call"
    what: str
    call_id: str
    caller: str
    callee: str
    sip_server: str
    legs: tuple[str, ...] = ()
    detail: str = ""
