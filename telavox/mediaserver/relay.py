"""The sans-IO media core of a mediaserver: endpoints, latching, relay,
DTMF and inactivity, conference rooms, and the pacing of players, rooms
and recorders.

Owns :class:`MediaCore`.  It does no I/O and reads no clock: every entry
point takes ``now`` (seconds), datagrams leave through the send functions
each :class:`~telavox.mediaserver.stream.Stream` was given, and
:class:`~telavox.records.MediaEvent` records go to the ``emit`` callable.
The Twisted adapter (:mod:`telavox.mediaserver.server`) feeds it the
datagrams of its sockets and calls :meth:`MediaCore.tick` every 20 ms.

Theory of operation.

*Receiving* (:meth:`MediaCore.receive_rtp`).  A datagram from an address
other than the latched one either latches the stream (before latching, from
the SDP or signalling IP; see :mod:`.stream`) or is dropped and counted.
Then the header is peeked (no packet object), the stream's RFC 3550 A.1/A.8
source state updated, telephone-events fed to the stream's RFC 4733
receiver (one ``dtmf`` event per key press, when it ends), and, for a far
end that did not negotiate telephone-event, G.711 payloads fed to the
batched in-band detector (:mod:`.inband`).

*Relaying.*  Each connected stream has a route table (:mod:`.formats`)
built at ``connect``/``set_remote`` time, indexed by the payload type that
arrives: the packet is dropped when the peer cannot take its format, when
the peer's far end does not receive (hold) or while a prompt plays to it;
otherwise its payload type is rewritten, G.711 transcoded by a byte table
if needed, and the peer stream's
:class:`~telavox.rtp.continuity.StreamRewriter` gives it the peer's own
SSRC, sequence and timestamp line.  That rewriter is the peer stream's for
its whole life, so whatever feeds it (this endpoint, another one after a
re-connect or transfer, a prompt) the far end sees one stream.

*Conference rooms* (:mod:`.conference`).  An endpoint that joins a room is
disconnected from its peer and its audio stream gets a ``participant``: what
arrives on it (after latching, source state, DTMF and recording, as for
relayed media) is decoded into the participant's queue instead of relayed,
and the pacer mixes and sends the room's frames.  Connecting an endpoint
takes it out of its room.

*RTCP* is relayed to the peer's far end with SSRCs rewritten the same way:
the sender's SSRC becomes the peer stream's SSRC, the SSRC our far end
reports about becomes the one the peer's far end sends with, and a sender
report's RTP timestamp moves by the peer rewriter's offset.  With rtcp-mux
(RFC 5761) RTCP shares the RTP port and latch.

*Inactivity.*  A stream whose far end should be sending (sendrecv, a real
address and port) and from which neither RTP nor RTCP arrived for
``inactivity_timeout`` seconds gets one ``inactive`` event; it is re-armed
when media comes back or the remote description changes.
"""

from __future__ import annotations

import random
import struct
from collections.abc import Callable, Sequence

from telavox.interfaces import MediaError
from telavox.mediaserver.conference import Conference, Notice
from telavox.mediaserver.formats import (
    NO_ROUTES,
    Route,
    build_routes,
    codec_table,
    telephone_event,
)
from telavox.mediaserver.inband import InbandDtmf
from telavox.mediaserver.playback import Player
from telavox.mediaserver.recording import Recorder
from telavox.mediaserver.stream import Address, Endpoint, SendFunction, Stream
from telavox.records import (
    LocalStream,
    MediaEndpointStats,
    MediaEvent,
    RemoteStream,
    StreamStats,
)
from telavox.rtp.continuity import StreamRewriter
from telavox.rtp.dtmf import DigitEnd, EventReceiver
from telavox.rtp.errors import RtpError
from telavox.rtp.packet import HEADER, payload_span
from telavox.rtp.rtcprewrite import rewrite_rtcp
from telavox.rtp.seqnum import SourceState

__all__ = ["COUNTERS", "FRAME_INTERVAL", "SWEEP_INTERVAL", "MediaCore"]

#: The pacing interval of players and recorders (seconds).
FRAME_INTERVAL = 0.02

#: Seconds between two looks for inactive streams (an inactive event comes
#: at most this late).
SWEEP_INTERVAL = 0.5

#: Counter names of :meth:`MediaCore.stats` (all start at 0).
COUNTERS = (
    "rtp_in", "rtp_relayed", "rtcp_in", "rtcp_relayed", "played_packets",
    "dropped_stranger", "dropped_unlatched", "dropped_malformed", "dropped_format",
    "dropped_unconnected", "dropped_hold", "dropped_playing", "dropped_late",
    "latched", "relearned", "dtmf_rfc4733", "dtmf_inband", "inactive",
    "transcoded", "mixed_frames", "mixed_in", "mix_overflow",
)

EventSink = Callable[[MediaEvent], object]

_CLOCKS = {"audio": 8000, "video": 90000}


class MediaCore:
    """Every endpoint of one mediaserver and the packets between them.

    ``emit`` receives each :class:`MediaEvent` (stamped with ``now``).
    ``inactivity_timeout`` (seconds, 0 disables) is described in the module
    docstring; ``inband_dtmf`` turns on Goertzel DTMF detection for far ends
    that did not negotiate telephone-event; ``rng`` draws SSRCs and initial
    sequence numbers and timestamps; ``notice(what, **fields)`` gets what
    deserves a log line but is no event (a conference participant whose
    far end takes no G.711: ``deaf``).
    """

    def __init__(self, emit: EventSink, *, inactivity_timeout: float = 60.0,
                 inband_dtmf: bool = True, rng: random.Random | None = None,
                 notice: Notice = lambda what, **fields: None) -> None:
        self.emit = emit
        self.inactivity_timeout = inactivity_timeout
        self.inband_dtmf = inband_dtmf
        self.endpoints: dict[str, Endpoint] = {}
        self.counters: dict[str, int] = dict.fromkeys(COUNTERS, 0)
        self._rng = rng if rng is not None else random.SystemRandom()
        self._playing: dict[str, Endpoint] = {}
        self._recorders: dict[str, Recorder] = {}
        self._dtmf_open: set[Stream] = set()
        self._next_sweep = 0.0
        self.conference = Conference(self.counters, notice)

    # -- endpoints -----------------------------------------------------------------

    def endpoint(self, endpoint_id: str) -> Endpoint:
        """The endpoint ``endpoint_id``; ``MediaError(404)`` when unknown."""
        try:
            return self.endpoints[endpoint_id]
        except KeyError:
            raise MediaError(f"no endpoint {endpoint_id!r}", status=404) from None

    def add_endpoint(self, endpoint_id: str, owner: str, streams: Sequence[LocalStream],
                     senders: Sequence[tuple[SendFunction, SendFunction]],
                     now: float) -> Endpoint:
        """Create an endpoint with ``streams``, each writing through its
        ``(send_rtp, send_rtcp)`` pair of ``senders``."""
        if endpoint_id in self.endpoints:
            raise ValueError(f"endpoint {endpoint_id!r} exists")
        endpoint = Endpoint(endpoint_id, owner)
        for index, (local, (send_rtp, send_rtcp)) in enumerate(zip(streams, senders,
                                                                    strict=True)):
            output = self._rewriter(_CLOCKS.get(local.kind, 90000))
            stream = Stream(endpoint, index, local, output, send_rtp, send_rtcp, now)
            endpoint.streams.append(stream)
        self.endpoints[endpoint_id] = endpoint
        return endpoint

    def _rewriter(self, clock_rate: int, after: StreamRewriter | None = None) -> StreamRewriter:
        rng = self._rng
        if after is None:
            return StreamRewriter(rng.getrandbits(32), clock_rate, rng.randrange(65536),
                                  rng.getrandbits(32))
        return StreamRewriter(after.ssrc, clock_rate, after.last_sequence + 1,
                              after.last_timestamp + clock_rate // 50)

    def remove_endpoint(self, endpoint_id: str, now: float) -> MediaEndpointStats:
        """Forget the endpoint: disconnect it, take it out of its room, stop
        its playback (``play_done`` stopped) and recording (``record_done``),
        and return its stats.  Unknown ids give empty stats."""
        endpoint = self.endpoints.get(endpoint_id)
        if endpoint is None:
            return MediaEndpointStats(endpoint_id=endpoint_id)
        self.disconnect(endpoint_id)
        self.leave_room(endpoint_id)
        self._stop_player(endpoint, now, "stopped")
        recorder = endpoint.recorder
        if recorder is not None:
            self.stop_record(recorder.recording_id, now)
        for stream in endpoint.streams:
            self._dtmf_open.discard(stream)
            stream.close()
        del self.endpoints[endpoint_id]
        stats = self.endpoint_stats(endpoint)
        # each stream points back at its endpoint: without the cycle both are
        # freed now rather than by the cyclic collector
        endpoint.streams = []
        return stats

    def endpoint_stats(self, endpoint: Endpoint) -> MediaEndpointStats:
        """The counters of ``endpoint`` as a record."""
        return MediaEndpointStats(endpoint_id=endpoint.endpoint_id,
                                  streams=tuple(_stream_stats(s) for s in endpoint.streams))

    def set_remote(self, endpoint_id: str, remotes: Sequence[RemoteStream], now: float) -> None:
        """Take the far end's description (index for index; missing streams
        go idle).  ``MediaError(488)`` for more streams than the endpoint has
        or a kind that does not match; nothing changes then."""
        endpoint = self.endpoint(endpoint_id)
        if len(remotes) > len(endpoint.streams):
            raise MediaError(f"{len(remotes)} streams described, endpoint has "
                             f"{len(endpoint.streams)}", status=488)
        for stream, described in zip(endpoint.streams, remotes, strict=False):
            if described.kind != stream.kind:
                raise MediaError(f"stream {stream.index} is {stream.kind}, "
                                 f"not {described.kind}", status=488)
        for stream in endpoint.streams:
            remote = remotes[stream.index] if stream.index < len(remotes) else None
            self._set_stream_remote(stream, remote, now)
        self._relink(endpoint)

    def _set_stream_remote(self, stream: Stream, remote: RemoteStream | None,
                           now: float) -> None:
        if stream.set_remote(remote, now):
            self.counters["relearned"] += 1
        stream.mux = remote is not None and remote.rtcp_mux
        stream.codecs = codec_table(remote)
        event = telephone_event(remote)
        stream.event_pt = event.payload_type if event is not None else -1
        if event is not None and stream.dtmf is None:
            stream.dtmf = EventReceiver(event.clock_rate)
        if remote is not None and remote.formats:
            clock = remote.formats[0].clock_rate
            if clock != stream.output.clock_rate:
                stream.output = self._rewriter(clock, stream.output)
        wants_inband = (self.inband_dtmf and stream.kind == "audio" and remote is not None
                        and event is None)
        if wants_inband and stream.detector is None:
            stream.detector = InbandDtmf()
        elif not wants_inband:
            stream.detector = None

    # -- connections -----------------------------------------------------------------

    def connect(self, a_id: str, b_id: str) -> None:
        """Relay between two endpoints, stream for stream (same index and
        kind); each one's old peer is disconnected first, and each leaves
        its conference room.  An endpoint connected to itself echoes what
        its far end sends (the echo test)."""
        a = self.endpoint(a_id)
        b = self.endpoint(b_id)
        self.leave_room(a_id)
        self.leave_room(b_id)
        if a.peer is b:
            return
        self.disconnect(a_id)
        self.disconnect(b_id)
        a.peer = b
        b.peer = a
        for sa, sb in zip(a.streams, b.streams, strict=False):
            if sa.kind == sb.kind:
                sa.peer = sb
                sb.peer = sa
        self._relink(a)

    def disconnect(self, endpoint_id: str) -> None:
        """Stop relaying between ``endpoint_id`` and its peer (if any)."""
        endpoint = self.endpoint(endpoint_id)
        peer = endpoint.peer
        if peer is None:
            return
        endpoint.peer = peer.peer = None
        for stream in (*endpoint.streams, *peer.streams):
            stream.peer = None
            stream.routes = NO_ROUTES

    def _relink(self, endpoint: Endpoint) -> None:
        """Rebuild the route tables both ways between ``endpoint`` and its peer."""
        for stream in endpoint.streams:
            peer = stream.peer
            if peer is None:
                stream.routes = NO_ROUTES
                continue
            stream.routes = build_routes(stream.remote, peer.remote)
            peer.routes = build_routes(peer.remote, stream.remote)

    # -- the hot path ----------------------------------------------------------------

    def receive_rtp(self, stream: Stream, data: bytes, addr: Address, now: float) -> None:
        """One datagram arrived on the RTP port of ``stream`` from ``addr``."""
        counters = self.counters
        if addr != stream.latched:
            if stream.latched is not None:
                counters["dropped_stranger"] += 1
                return
            if not stream.may_latch(addr):
                counters["dropped_unlatched"] += 1
                return
            if len(data) < 12 or data[0] & 0xC0 != 0x80:
                counters["dropped_malformed"] += 1
                return
            self._latch(stream, addr, now)
        if stream.mux and len(data) > 1 and 64 <= data[1] & 0x7F <= 95:
            self._rtcp(stream, data, now)
            return
        try:
            b0, b1, seq, ts, ssrc = HEADER.unpack_from(data)
        except struct.error:
            counters["dropped_malformed"] += 1
            return
        if b0 & 0xC0 != 0x80:
            counters["dropped_malformed"] += 1
            return
        pt = b1 & 0x7F
        counters["rtp_in"] += 1
        stream.packets_in += 1
        stream.octets_in += len(data)
        stream.last_rx = now
        rx = stream.rx
        if rx is None or rx.ssrc != ssrc:
            rx = self._new_source(stream, ssrc, pt)
        rx.update(seq, ts, now)
        if pt == stream.event_pt:
            self._telephone_event(stream, data, ts, seq, b1 > 0x7F, now)
        elif stream.detector is not None:
            self._inband(stream, stream.detector, data, pt, now)
        recorder = stream.endpoint.recorder
        if recorder is not None and stream.kind == "audio":
            start, end = _span(data)
            recorder.received(stream.codecs[pt], data, start, end)
        participant = stream.participant
        if participant is not None:
            start, end = _span(data)
            counters["mixed_in"] += 1
            counters["mix_overflow"] += participant.received(stream.codecs[pt], data,
                                                             start, end)
            return
        peer = stream.peer
        if peer is None:
            counters["dropped_unconnected"] += 1
            return
        route = stream.routes[pt]
        if route is None:
            counters["dropped_format"] += 1
            return
        dest = peer.dest
        if dest is None:
            counters["dropped_hold"] += 1
            return
        if peer.endpoint.player is not None and peer.kind == "audio":
            counters["dropped_playing"] += 1
            return
        self._relay(peer, data, b1, route, dest, now)

    def _relay(self, peer: Stream, data: bytes, b1: int, route: Route, dest: Address,
               now: float) -> None:
        out_pt, xlate, out_codec = route
        if xlate is not None or out_pt != b1 & 0x7F:
            buf = bytearray(data)
            buf[1] = (b1 & 0x80) | out_pt
            if xlate is not None:
                start, end = _span(data)
                buf[start:end] = data[start:end].translate(xlate)
                self.counters["transcoded"] += 1
            data = buf  # type: ignore[assignment]  # the rewriter copies it anyway
        out = peer.output.rewrite(data, now)
        if out is None:
            self.counters["dropped_late"] += 1
            return
        peer.send_rtp(out, dest)
        peer.packets_out += 1
        peer.octets_out += len(out)
        self.counters["rtp_relayed"] += 1
        recorder = peer.endpoint.recorder
        if recorder is not None and peer.kind == "audio":
            start, end = _span(out)
            recorder.sent(out_codec, out, start, end)

    def _latch(self, stream: Stream, addr: Address, now: float) -> None:
        stream.latch(addr)
        self.counters["latched"] += 1
        self._event(stream.endpoint, "latched", now, detail=f"{addr[0]}:{addr[1]}")

    def _new_source(self, stream: Stream, ssrc: int, pt: int) -> SourceState:
        """A new SSRC from the far end: start its A.1 state (min_sequential 1:
        a relay counts from the first packet)."""
        old = stream.rx
        if old is not None:
            stream.lost_before += max(0, old.lost)
        fmt = stream.formats[pt]
        clock = fmt.clock_rate if fmt is not None else stream.output.clock_rate
        rx = stream.rx = SourceState(ssrc, clock, min_sequential=1)
        if fmt is not None:
            stream.rx_codec = fmt.name
        return rx

    # -- RTCP ------------------------------------------------------------------------

    def receive_rtcp(self, stream: Stream, data: bytes, addr: Address, now: float) -> None:
        """One datagram arrived on the RTCP port of ``stream`` from ``addr``."""
        counters = self.counters
        if addr != stream.latched_rtcp:
            if stream.latched_rtcp is not None:
                counters["dropped_stranger"] += 1
                return
            if not stream.may_latch(addr):
                counters["dropped_unlatched"] += 1
                return
            if len(data) < 8 or data[0] & 0xC0 != 0x80:
                counters["dropped_malformed"] += 1
                return
            stream.latch_rtcp(addr)
        self._rtcp(stream, data, now)

    def _rtcp(self, stream: Stream, data: bytes, now: float) -> None:
        """Account for an RTCP datagram from a latched source and relay it."""
        counters = self.counters
        counters["rtcp_in"] += 1
        stream.rtcp_in += 1
        stream.last_rx = now
        peer = stream.peer
        if peer is None:
            counters["dropped_unconnected"] += 1
            return
        dest = peer.dest_rtcp
        if dest is None:
            counters["dropped_hold"] += 1
            return
        ssrcs: dict[int, int] = {}
        offsets: dict[int, int] = {}
        if stream.rx is not None:
            ssrcs[stream.rx.ssrc] = peer.output.ssrc
        followed = stream.output.mapping()
        if followed is not None:
            ssrcs[stream.output.ssrc] = followed[0]
        feeding = peer.output.mapping()
        if feeding is not None:
            offsets[feeding[0]] = feeding[2]
        try:
            out = rewrite_rtcp(data, ssrcs, offsets)
        except RtpError:
            counters["dropped_malformed"] += 1
            return
        (peer.send_rtp if peer.mux else peer.send_rtcp)(out, dest)
        peer.rtcp_out += 1
        counters["rtcp_relayed"] += 1

    # -- DTMF ------------------------------------------------------------------------

    def _telephone_event(self, stream: Stream, data: bytes, ts: int, seq: int,
                         marker: bool, now: float) -> None:
        receiver = stream.dtmf
        if receiver is None:
            return
        start, end = _span(data)
        try:
            reports = receiver.receive(data[start:end], ts, seq, now, marker=marker)
        except RtpError:
            self.counters["dropped_malformed"] += 1
            return
        if receiver.next_deadline() is None:
            self._dtmf_open.discard(stream)
        else:
            self._dtmf_open.add(stream)
        for report in reports:
            if isinstance(report, DigitEnd):
                self.counters["dtmf_rfc4733"] += 1
                self._event(stream.endpoint, "dtmf", now, digit=report.digit,
                            duration_ms=report.duration_ms, source="rfc4733")

    def _inband(self, stream: Stream, detector: InbandDtmf, data: bytes, pt: int,
                now: float) -> None:
        start, end = _span(data)
        for found in detector.feed(stream.codecs[pt], data, start, end):
            self.counters["dtmf_inband"] += 1
            self._event(stream.endpoint, "dtmf", now, digit=found.digit,
                        duration_ms=found.duration // 8, source="inband")

    # -- conference rooms --------------------------------------------------------------

    def join_room(self, room: str, endpoint_id: str, muted: bool = False) -> int:
        """Put the endpoint's audio stream into conference ``room`` (created
        on first join), disconnecting it from its peer and taking it out of
        another room; joining its own room again only sets ``muted``.
        Returns the participants now in the room.  ``MediaError``: 404 for
        an unknown endpoint, 488 for one without audio, 400 for an empty
        room name."""
        endpoint = self.endpoint(endpoint_id)
        stream = endpoint.audio()
        if stream is None:
            raise MediaError(f"endpoint {endpoint_id!r} has no audio stream", status=488)
        if not room or not isinstance(room, str):
            raise MediaError(f"{room!r} is not a room name", status=400)
        self.disconnect(endpoint_id)
        return self.conference.join(room, stream, muted)

    def leave_room(self, endpoint_id: str) -> int:
        """Take the endpoint out of its room (nothing when in none; a room
        left empty is removed); returns the participants left in the room
        (0 when it was in none).  ``MediaError(404)`` for an unknown
        endpoint."""
        stream = self.endpoint(endpoint_id).audio()
        return 0 if stream is None else self.conference.leave(stream)

    def mute(self, endpoint_id: str, muted: bool) -> None:
        """Keep the endpoint's audio out of its room's mix, or put it back
        (nothing for an endpoint in no room).  ``MediaError(404)`` for an
        unknown endpoint."""
        stream = self.endpoint(endpoint_id).audio()
        if stream is not None:
            self.conference.mute(stream, muted)

    def room_of(self, endpoint_id: str) -> str | None:
        """The name of the endpoint's room, or None."""
        endpoint = self.endpoints.get(endpoint_id)
        stream = endpoint.audio() if endpoint is not None else None
        participant = stream.participant if stream is not None else None
        return participant.room.name if participant is not None else None

    # -- playback ----------------------------------------------------------------------

    def play(self, endpoint_id: str, player: Player, now: float) -> None:
        """Play ``player`` into the endpoint's audio stream in place of relayed
        media, replacing (``play_done`` stopped) a playback in progress.  The
        first frame is sent at once."""
        endpoint = self.endpoint(endpoint_id)
        if endpoint.audio() is None:
            raise MediaError(f"endpoint {endpoint_id!r} has no audio stream", status=488)
        self._stop_player(endpoint, now, "stopped")
        endpoint.player = player
        self._playing[endpoint_id] = endpoint
        player.next_due = now
        self._play_due(endpoint, player, now)

    def stop_play(self, endpoint_id: str, now: float) -> None:
        """Stop the endpoint's playback, if any (``play_done`` stopped)."""
        self._stop_player(self.endpoint(endpoint_id), now, "stopped")

    def _stop_player(self, endpoint: Endpoint, now: float, detail: str) -> None:
        player = endpoint.player
        if player is None:
            return
        endpoint.player = None
        self._playing.pop(endpoint.endpoint_id, None)
        self._event(endpoint, "play_done", now, detail=detail,
                    source=player.playback_id)

    def _play_due(self, endpoint: Endpoint, player: Player, now: float) -> None:
        """Send every frame of ``player`` due by ``now`` (catching up at most
        a few after a stall)."""
        stream = endpoint.audio()
        assert stream is not None
        frames = 0
        while player.next_due <= now + 1e-6:
            if frames == 5:
                player.next_due = now + FRAME_INTERVAL
                break
            frames += 1
            player.next_due += FRAME_INTERVAL
            packets = player.next_frame()
            if packets is None:
                self._stop_player(endpoint, now, "finished")
                return
            dest = stream.dest
            for pt, marker, n_samples, payload, codec in packets:
                packet = stream.output.next_packet(pt, marker, n_samples, payload, now)
                self.counters["played_packets"] += 1
                if dest is not None:
                    stream.send_rtp(packet, dest)
                    stream.packets_out += 1
                    stream.octets_out += len(packet)
                recorder = endpoint.recorder
                if recorder is not None:
                    recorder.sent(codec, packet, 12, len(packet))

    # -- recording ---------------------------------------------------------------------

    def record(self, endpoint_id: str, recorder: Recorder, now: float) -> None:
        """Record the endpoint with ``recorder`` (an existing recording of it
        is finished first, with its ``record_done`` event)."""
        endpoint = self.endpoint(endpoint_id)
        if endpoint.recorder is not None:
            self.stop_record(endpoint.recorder.recording_id, now)
        endpoint.recorder = recorder
        self._recorders[recorder.recording_id] = recorder

    def stop_record(self, recording_id: str, now: float) -> str:
        """Finish a recording (writing the slots due by ``now``); returns its
        path.  ``MediaError(404)`` for an unknown or finished recording."""
        recorder = self._recorders.pop(recording_id, None)
        if recorder is None:
            raise MediaError(f"no recording {recording_id!r}", status=404)
        recorder.tick(now)
        path = recorder.close()
        endpoint = self.endpoints.get(recorder.endpoint_id)
        if endpoint is not None:
            if endpoint.recorder is recorder:
                endpoint.recorder = None
            self._event(endpoint, "record_done", now, detail=path)
        return path

    # -- time ----------------------------------------------------------------------------

    def tick(self, now: float) -> None:
        """The 20 ms pacer: send the frames of every playback and of every
        conference room and write the slots of every recording that are
        due, end RFC 4733 events whose end packets were lost, and every
        :data:`SWEEP_INTERVAL` look for inactive streams."""
        for endpoint in list(self._playing.values()):
            player = endpoint.player
            if player is not None:
                self._play_due(endpoint, player, now)
        if self.conference.rooms:
            self.conference.tick(now)
        for recorder in self._recorders.values():
            recorder.tick(now)
        if self._dtmf_open:
            self._expire_dtmf(now)
        if now >= self._next_sweep:
            self._next_sweep = now + SWEEP_INTERVAL
            self._sweep(now)

    def _expire_dtmf(self, now: float) -> None:
        for stream in list(self._dtmf_open):
            receiver = stream.dtmf
            if receiver is None:
                self._dtmf_open.discard(stream)
                continue
            for report in receiver.fire(now):
                if isinstance(report, DigitEnd):
                    self.counters["dtmf_rfc4733"] += 1
                    self._event(stream.endpoint, "dtmf", now, digit=report.digit,
                                duration_ms=report.duration_ms, source="rfc4733")
            if receiver.next_deadline() is None:
                self._dtmf_open.discard(stream)

    def _sweep(self, now: float) -> None:
        """Report streams that went quiet (once each) and re-arm those that
        came back."""
        timeout = self.inactivity_timeout
        if timeout <= 0:
            return
        for endpoint in self.endpoints.values():
            for stream in endpoint.streams:
                if not stream.expects_media:
                    continue
                idle = now - stream.last_rx >= timeout
                if idle and not stream.inactive_reported:
                    stream.inactive_reported = True
                    self.counters["inactive"] += 1
                    self._event(endpoint, "inactive", now, detail=stream.kind)
                elif not idle:
                    stream.inactive_reported = False

    # -- reporting -----------------------------------------------------------------------

    def _event(self, endpoint: Endpoint, kind: str, now: float, **fields: object) -> None:
        self.emit(MediaEvent(endpoint_id=endpoint.endpoint_id, owner=endpoint.owner,
                             kind=kind, timestamp=now, **fields))  # type: ignore[arg-type]

    @property
    def playing(self) -> int:
        """Number of playbacks in progress."""
        return len(self._playing)

    @property
    def recording(self) -> int:
        """Number of recordings in progress."""
        return len(self._recorders)

    def stats(self) -> dict[str, int]:
        """The core's counters plus gauges ``endpoints``, ``connected``
        (endpoint pairs), ``playing``, ``recording``, ``rooms`` and
        ``participants``."""
        stats = dict(self.counters)
        stats["endpoints"] = len(self.endpoints)
        stats["connected"] = sum(1 for e in self.endpoints.values() if e.peer is not None) // 2
        stats["playing"] = len(self._playing)
        stats["recording"] = len(self._recorders)
        stats["rooms"] = len(self.conference.rooms)
        stats["participants"] = self.conference.participants
        return stats


def _span(data: bytes | bytearray) -> tuple[int, int]:
    """The payload of an RTP packet; the fast case is a bare 12-byte header."""
    if data[0] == 0x80:
        return 12, len(data)
    try:
        return payload_span(data)  # type: ignore[arg-type]
    except RtpError:
        return 12, 12


def _stream_stats(stream: Stream) -> StreamStats:
    rx = stream.rx
    lost = stream.lost_before + (max(0, rx.lost) if rx is not None else 0)
    jitter_ms = rx.jitter * 1000.0 / rx.clock_rate if rx is not None else 0.0
    latched = f"{stream.latched[0]}:{stream.latched[1]}" if stream.latched else ""
    return StreamStats(kind=stream.kind, packets_in=stream.packets_in,
                       packets_out=stream.packets_out, octets_in=stream.octets_in,
                       octets_out=stream.octets_out, packets_lost=lost,
                       jitter_ms=round(jitter_ms, 3), latched=latched, codec=stream.rx_codec)

