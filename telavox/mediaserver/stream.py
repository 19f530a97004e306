"""One media stream of an endpoint: where its far end is, whether it may be
believed, and what the stream counted.

Owns :class:`Stream` and :class:`Endpoint`, plain slotted state objects the
relay core (:mod:`telavox.mediaserver.relay`) works on.  Nothing here does
I/O or reads a clock: times are passed in.

Latching (symmetric RTP, RFC 4961; Asterisk ``strictrtp``, rtpengine's
"learning"):

- Before the stream is latched, a packet may latch it only when its source
  IP is the far end's SDP ``address`` or its ``signalling_address`` (the IP
  its SIP came from, which is the right one behind a NAT).  The first such
  packet latches the source IP *and port*; any other packet is dropped and
  counted (``unlatched``).
- After latching, packets from any other source (IP or port) are dropped and
  counted (``stranger``): nobody can hijack the stream.
- :meth:`Stream.set_remote` with a different address, port or signalling
  address (a re-INVITE moving the media) forgets the latch and opens
  learning again; the same description again (a codec change, hold and
  resume) keeps it.
- RTCP latches on its own socket by the same rules.

Sending: RTP goes to the latched source, else to the SDP address and port;
nothing is sent when the address is missing, ``0.0.0.0``/``::`` or not an IP
literal (and nothing has latched), the port is 0, or the far end's direction
says it does not receive (``sendonly``, ``inactive``).  RTCP goes to the
latched RTCP source, else to the SDP ``rtcp_port`` (RTP port + 1 without
one); with ``rtcp_mux`` it goes where RTP goes.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import TYPE_CHECKING

from telavox.mediaserver.formats import NO_FORMATS, NO_ROUTES, Route, format_map
from telavox.mediaserver.inband import InbandDtmf
from telavox.records import LocalStream, MediaDirection, MediaFormat, RemoteStream
from telavox.rtp.continuity import StreamRewriter
from telavox.rtp.dtmf import EventReceiver
from telavox.rtp.seqnum import SourceState

if TYPE_CHECKING:
    from telavox.mediaserver.conference import Participant
    from telavox.mediaserver.playback import Player
    from telavox.mediaserver.recording import Recorder

__all__ = ["Address", "Endpoint", "SendFunction", "Stream", "ip_literal"]

Address = tuple[str, int]

SendFunction = Callable[[bytes | bytearray, Address], object]
"""Write one datagram to an address (the socket of a stream's port)."""

_UNSPECIFIED = ("0.0.0.0", "::")


def ip_literal(address: str | None) -> str | None:
    """``address`` when it is a usable IP literal, else None (None, empty,
    ``0.0.0.0``/``::`` or a host name, which is never resolved here)."""
    if not address or address in _UNSPECIFIED:
        return None
    known = _IP_LITERALS.get(address)
    if known is None:
        try:
            ipaddress.ip_address(address)
            known = True
        except ValueError:
            known = False
        if len(_IP_LITERALS) < 65536:
            _IP_LITERALS[address] = known
    return address if known else None


_IP_LITERALS: dict[str, bool] = {}
"""Answers of ip_literal, remembered (bounded): the same addresses recur."""


def _drop_send(data: bytes | bytearray, addr: Address) -> None:
    """The send function of a stream whose socket is gone."""


class Stream:
    """A stream of an endpoint (one m-line): the far end's description, the
    latch, where to send, the relay link and the counters.

    ``send_rtp``/``send_rtcp`` write to the stream's own RTP/RTCP sockets.
    ``routes`` and ``peer`` are set by the relay core when the endpoint is
    connected: packets received here leave through ``peer`` (the connected
    endpoint's stream of the same index), translated by ``routes``.
    ``participant`` is set instead while the stream is in a conference
    room (:mod:`.conference`): what arrives goes into the room's mix.
    ``output`` is the continuity rewriter of everything this stream sends
    (relayed, mixed or played), for the stream's whole life.
    """

    __slots__ = (
        "allowed",
        "codecs",
        "dest",
        "dest_rtcp",
        "detector",
        "dtmf",
        "endpoint",
        "event_pt",
        "expects_media",
        "formats",
        "inactive_reported",
        "index",
        "kind",
        "last_rx",
        "latched",
        "latched_rtcp",
        "local",
        "lost_before",
        "mux",
        "octets_in",
        "octets_out",
        "output",
        "packets_in",
        "packets_out",
        "participant",
        "peer",
        "remote",
        "routes",
        "rtcp_in",
        "rtcp_out",
        "rx",
        "rx_codec",
        "send_rtcp",
        "send_rtp",
    )

    def __init__(self, endpoint: Endpoint, index: int, local: LocalStream,
                 output: StreamRewriter, send_rtp: SendFunction = _drop_send,
                 send_rtcp: SendFunction = _drop_send, now: float = 0.0) -> None:
        self.endpoint = endpoint
        self.index = index
        self.kind = local.kind
        self.local = local
        self.send_rtp = send_rtp
        self.send_rtcp = send_rtcp
        self.remote: RemoteStream | None = None
        self.allowed: frozenset[str] = frozenset()
        self.latched: Address | None = None
        self.latched_rtcp: Address | None = None
        self.dest: Address | None = None
        self.dest_rtcp: Address | None = None
        self.formats: tuple[MediaFormat | None, ...] = NO_FORMATS
        self.codecs: tuple[int, ...] = (0,) * 128
        self.mux = False
        self.event_pt = -1
        self.expects_media = False
        self.last_rx = now
        self.inactive_reported = False
        self.peer: Stream | None = None
        self.participant: Participant | None = None
        self.routes: tuple[Route | None, ...] = NO_ROUTES
        self.output = output
        self.rx: SourceState | None = None
        self.dtmf: EventReceiver | None = None
        self.detector: InbandDtmf | None = None
        self.rx_codec = ""
        self.lost_before = 0
        self.packets_in = 0
        self.packets_out = 0
        self.octets_in = 0
        self.octets_out = 0
        self.rtcp_in = 0
        self.rtcp_out = 0

    def set_remote(self, remote: RemoteStream | None, now: float) -> bool:
        """Take the far end's (new) description; returns True when the latch
        was forgotten (the media moved).  Restarts the inactivity clock."""
        old = self.remote
        self.remote = remote
        moved = (old is None or remote is None or old.address != remote.address
                 or old.port != remote.port
                 or old.signalling_address != remote.signalling_address
                 or old.rtcp_port != remote.rtcp_port or old.rtcp_mux != remote.rtcp_mux)
        forgot = moved and (self.latched is not None or self.latched_rtcp is not None)
        if moved:
            self.latched = None
            self.latched_rtcp = None
        self.formats = format_map(remote)
        if remote is None:
            self.allowed = frozenset()
            self.expects_media = False
        else:
            self.allowed = frozenset(
                ip for ip in (ip_literal(remote.address), ip_literal(remote.signalling_address))
                if ip is not None)
            self.expects_media = (remote.port != 0
                                  and remote.direction is MediaDirection.SENDRECV
                                  and ip_literal(remote.address) is not None)
        self.last_rx = now
        self.inactive_reported = False
        self.update_destinations()
        return forgot

    def update_destinations(self) -> None:
        """Recompute where RTP and RTCP go (after a latch or a new remote)."""
        remote = self.remote
        if remote is None or remote.port == 0 or not remote.direction.receives:
            self.dest = self.dest_rtcp = None
            return
        address = ip_literal(remote.address)
        if address is None:
            # RFC 2543 hold (c=0.0.0.0) or no usable address: send nothing.
            self.dest = self.dest_rtcp = None
            return
        self.dest = self.latched if self.latched is not None else (address, remote.port)
        if remote.rtcp_mux:
            self.dest_rtcp = self.dest
        elif self.latched_rtcp is not None:
            self.dest_rtcp = self.latched_rtcp
        else:
            self.dest_rtcp = (address, remote.rtcp_port or remote.port + 1)

    def may_latch(self, addr: Address) -> bool:
        """True when a packet from ``addr`` may latch the stream (its IP is
        the SDP or signalling address)."""
        return addr[0] in self.allowed

    def latch(self, addr: Address) -> None:
        """Latch RTP to ``addr``."""
        self.latched = addr
        self.update_destinations()

    def latch_rtcp(self, addr: Address) -> None:
        """Latch RTCP to ``addr``."""
        self.latched_rtcp = addr
        self.update_destinations()

    def close(self) -> None:
        """Forget the sockets: nothing is sent any more."""
        self.send_rtp = self.send_rtcp = _drop_send
        self.dest = self.dest_rtcp = None


class Endpoint:
    """An allocated endpoint: id, owner, streams, the connected peer, the
    playback in progress and the recording."""

    __slots__ = ("endpoint_id", "owner", "peer", "player", "recorder", "streams")

    def __init__(self, endpoint_id: str, owner: str) -> None:
        self.endpoint_id = endpoint_id
        self.owner = owner
        self.streams: list[Stream] = []
        self.peer: Endpoint | None = None
        self.player: Player | None = None
        self.recorder: Recorder | None = None

    def audio(self) -> Stream | None:
        """The first audio stream (what is played into and recorded)."""
        for stream in self.streams:
            if stream.kind == "audio":
                return stream
        return None
