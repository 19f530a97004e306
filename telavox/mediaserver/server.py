"""The mediaserver of a SIP server: :class:`MediaServer`, the provider of
:class:`~telavox.interfaces.IMediaServer`, over Twisted UDP ports.

Owns the Twisted edge: one UDP socket per RTP and per RTCP port of every
stream (an :class:`~telavox.transport.rtpsocket.RtpSocket` on ``bind_host``:
no Twisted Port object, no log line per open and close), each with a thin
protocol handing datagrams to the sans-IO :class:`~telavox.mediaserver.relay.MediaCore`
with the reactor's time; send functions writing a stream's socket directly;
the one 20 ms ``LoopingCall`` that paces every playback, conference room
and recording and drives the core's sweeps; the port-pair pool; prompt loading; and the
delivery of :class:`~telavox.records.MediaEvent` records to subscribers
(always in a later reactor turn, never inside the call that caused them).
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from twisted.internet import defer, task
from twisted.internet.interfaces import IDelayedCall
from twisted.internet.protocol import DatagramProtocol
from twisted.logger import Logger
from zope.interface import implementer

from telavox.interfaces import IMediaServer, ISubscription, MediaError
from telavox.mediaserver.formats import DECODERS
from telavox.mediaserver.playback import make_player
from telavox.mediaserver.ports import DEFAULT_QUARANTINE, PortPool
from telavox.mediaserver.prompts import PromptCache
from telavox.mediaserver.recording import Recorder
from telavox.mediaserver.relay import FRAME_INTERVAL, MediaCore
from telavox.mediaserver.stream import Address, SendFunction, Stream
from telavox.records import (
    LocalStream,
    MediaEndpoint,
    MediaEndpointStats,
    MediaEvent,
    PlaySource,
    RemoteStream,
)
from telavox.transport.rtpsocket import RtpSocket

__all__ = ["MediaServer", "MediaSubscription"]

EventCallback = Callable[[MediaEvent], object]

_log = Logger(namespace="telavox.mediaserver")


class _MediaPort(DatagramProtocol):
    """One RTP or RTCP socket of a stream: every datagram goes to the core."""

    noisy = False

    def __init__(self, receive: Callable[[Stream, bytes, Address, float], None],
                 seconds: Callable[[], float]) -> None:
        self.receive = receive
        self.seconds = seconds
        self.stream: Stream | None = None

    def datagramReceived(self, datagram: bytes, addr: Address) -> None:
        stream = self.stream
        if stream is not None:
            self.receive(stream, datagram, addr, self.seconds())


def _sender(port: RtpSocket, counters: dict[str, int]) -> SendFunction:
    """A send function writing the socket of ``port`` directly (Twisted's
    ``write`` would parse the address on every datagram).  Errors (full
    buffer, ICMP port unreachable, no route) drop the datagram and count."""
    sendto = port.socket.sendto

    def send(data: bytes | bytearray, addr: Address) -> None:
        try:
            sendto(data, addr)
        except OSError:
            counters["send_errors"] += 1

    return send


@implementer(ISubscription)
class MediaSubscription:
    """A subscriber's handle on a mediaserver's events (see
    :meth:`MediaServer.subscribe`)."""

    def __init__(self, server: MediaServer, callback: EventCallback) -> None:
        self._server: MediaServer | None = server
        self.callback = callback
        self.delivered = 0
        self.dropped = 0

    @property
    def queued(self) -> int:
        """Events waiting for delivery (to every subscriber)."""
        server = self._server
        return 0 if server is None else len(server._pending)

    def cancel(self) -> None:
        """Stop delivery.  Idempotent."""
        server = self._server
        if server is not None:
            self._server = None
            server._subscriptions = [s for s in server._subscriptions if s is not self]


@implementer(IMediaServer)
class MediaServer:
    """RTP endpoints of the SIP server ``name`` on UDP ports of ``rtp_ports``.

    ``address`` is advertised in the endpoints' streams (what goes into SDP);
    ``bind_host`` is where the sockets listen (default: ``address``).
    ``inactivity_timeout`` (seconds; 0 disables) and latching are described
    in :mod:`.relay` and :mod:`.stream`; ``country`` is the tone plan used
    for a tone name when the play source gives no country.  ``quarantine``
    is how long a released port pair rests before reuse.  Call
    :meth:`start` before allocating; :meth:`stop` releases everything.
    """

    def __init__(self, reactor: Any, name: str, address: str, bind_host: str | None = None,
                 rtp_ports: tuple[int, int] = (10000, 20000),
                 inactivity_timeout: float = 60.0, country: str = "us", *,
                 quarantine: float = DEFAULT_QUARANTINE, inband_dtmf: bool = True,
                 max_queue: int = 10000,
                 logs: Callable[[str], bool] = lambda level: level != "debug") -> None:
        self.name = name
        self.logs = logs
        """``logs(level)``: whether lines at ``level`` are wanted (per-endpoint
        lines are debug, latching info; busy paths check before logging)."""
        self.address = address
        self.bind_host = bind_host if bind_host is not None else address
        self.rtp_ports = rtp_ports
        self.country = country
        self._reactor = reactor
        self.pool = PortPool(rtp_ports[0], rtp_ports[1], quarantine)
        self.core = MediaCore(self._emitted, inactivity_timeout=inactivity_timeout,
                              inband_dtmf=inband_dtmf, notice=self._notice)
        self.prompts = PromptCache()
        self.counters: dict[str, int] = {"send_errors": 0, "allocated": 0,
                                         "allocate_failures": 0, "released": 0}
        self._sockets: dict[str, list[tuple[int, RtpSocket, RtpSocket]]] = {}
        self._ids = itertools.count(1)
        self._pacer = task.LoopingCall(self._tick)
        self._pacer.clock = reactor
        self._subscriptions: list[MediaSubscription] = []
        self._pending: deque[MediaEvent] = deque()
        self._max_queue = max_queue
        self._drain_call: IDelayedCall | None = None
        self.running = False

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        """Start the 20 ms pacer; endpoints can be allocated from now on."""
        if self.running:
            return
        self.running = True
        self._pacer.start(FRAME_INTERVAL, now=False)
        _log.info("Mediaserver {name} on {address} (bound to {bind_host}), "
                  "RTP ports {low}-{high}", name=self.name, address=self.address,
                  bind_host=self.bind_host, low=self.rtp_ports[0], high=self.rtp_ports[1])

    def stop(self) -> defer.Deferred[None]:
        """Release every endpoint and stop the pacer; fires once every socket
        is closed.  The events this causes (``play_done``, ``record_done``)
        are delivered before it returns."""
        self.running = False
        if self._pacer.running:
            self._pacer.stop()
        releases = [self.release(eid) for eid in list(self.core.endpoints)]
        if self._drain_call is not None and self._drain_call.active():
            self._drain_call.cancel()
        self._drain()  # the last play_done and record_done events, now
        done: defer.Deferred[Any] = defer.gatherResults(releases, consumeErrors=True)
        return done.addCallback(lambda _: None)

    def _now(self) -> float:
        seconds: float = self._reactor.seconds()
        return seconds

    def _tick(self) -> None:
        self.core.tick(self._now())

    # -- IMediaServer --------------------------------------------------------------------

    def allocate(self, owner: str, kinds: Sequence[str] = ("audio",)
                 ) -> defer.Deferred[MediaEndpoint]:
        """A new endpoint with one stream per kind (see
        :meth:`telavox.interfaces.IMediaServer.allocate`)."""
        if not self.running:
            return defer.fail(MediaError(f"mediaserver {self.name} is not running", 503))
        if not kinds or isinstance(kinds, str):
            return defer.fail(MediaError("an endpoint needs a sequence of media kinds", 488))
        now = self._now()
        bound: list[tuple[int, RtpSocket, RtpSocket, _MediaPort, _MediaPort]] = []
        try:
            for _ in kinds:
                rtp_port, pair = self.pool.acquire(now, self._bind_pair)
                bound.append((rtp_port, *pair))
        except MediaError as e:
            for rtp_port, rtp, rtcp, _, _ in bound:
                rtp.stopListening()
                rtcp.stopListening()
                self.pool.release(rtp_port, now)
            self.counters["allocate_failures"] += 1
            _log.warn("Mediaserver {name}: cannot allocate an endpoint for {owner}: {reason}",
                      name=self.name, owner=owner, reason=e.reason)
            return defer.fail(e)
        endpoint_id = f"{self.name}-{next(self._ids)}"
        locals_ = [LocalStream(kind=kind, address=self.address, rtp_port=rtp_port,
                               rtcp_port=rtp_port + 1)
                   for kind, (rtp_port, *_) in zip(kinds, bound, strict=True)]
        senders = [(_sender(rtp, self.counters), _sender(rtcp, self.counters))
                   for _, rtp, rtcp, _, _ in bound]
        endpoint = self.core.add_endpoint(endpoint_id, owner, locals_, senders, now)
        for stream, (_, _, _, rtp_proto, rtcp_proto) in zip(endpoint.streams, bound,
                                                            strict=True):
            rtp_proto.stream = stream
            rtcp_proto.stream = stream
        self._sockets[endpoint_id] = [(rtp_port, rtp, rtcp) for rtp_port, rtp, rtcp, _, _ in bound]
        self.counters["allocated"] += 1
        if self.logs("debug"):
            _log.debug("Endpoint {endpoint_id} of {owner}: {streams}",
                       endpoint_id=endpoint_id, owner=owner,
                       streams=[f"{s.kind}:{s.rtp_port}" for s in locals_])
        return defer.succeed(MediaEndpoint(endpoint_id=endpoint_id, owner=owner,
                                           streams=tuple(locals_)))

    def _bind_pair(self, rtp_port: int, rtcp_port: int
                   ) -> tuple[RtpSocket, RtpSocket, _MediaPort, _MediaPort]:
        """Listen on both ports of a pair; OSError when either is taken."""
        core = self.core
        rtp_proto = _MediaPort(core.receive_rtp, self._reactor.seconds)
        rtcp_proto = _MediaPort(core.receive_rtcp, self._reactor.seconds)
        rtp = RtpSocket(self._reactor, self.bind_host, rtp_port, rtp_proto)
        try:
            rtcp = RtpSocket(self._reactor, self.bind_host, rtcp_port, rtcp_proto)
        except OSError:
            rtp.stopListening()
            raise
        return rtp, rtcp, rtp_proto, rtcp_proto

    def set_remote(self, endpoint_id: str, streams: Sequence[RemoteStream]
                   ) -> defer.Deferred[None]:
        """Take the far end's description (see the interface)."""
        return self._call(self.core.set_remote, endpoint_id, tuple(streams), self._now())

    def connect(self, endpoint_a: str, endpoint_b: str) -> defer.Deferred[None]:
        """Relay between two endpoints (see the interface)."""
        return self._call(self.core.connect, endpoint_a, endpoint_b)

    def disconnect(self, endpoint_id: str) -> defer.Deferred[None]:
        """Stop relaying to and from ``endpoint_id``."""
        return self._call(self.core.disconnect, endpoint_id)

    def play(self, endpoint_id: str, source: PlaySource) -> defer.Deferred[str]:
        """Play ``source`` to the endpoint's far end; fires with the playback id."""
        try:
            endpoint = self.core.endpoint(endpoint_id)
            stream = endpoint.audio()
            if stream is None:
                raise MediaError(f"endpoint {endpoint_id!r} has no audio stream", 488)
            playback_id = f"{endpoint_id}-play{next(self._ids)}"
            player = make_player(playback_id, source, stream.remote, self.prompts.load,
                                 self.country)
            self.core.play(endpoint_id, player, self._now())
        except MediaError as e:
            return defer.fail(e)
        if self.logs("debug"):
            _log.debug("Endpoint {endpoint_id} plays {playback_id}: {source}",
                       endpoint_id=endpoint_id, playback_id=playback_id, source=source)
        return defer.succeed(playback_id)

    def stop_play(self, endpoint_id: str) -> defer.Deferred[None]:
        """Stop the endpoint's playback (no error when none)."""
        return self._call(self.core.stop_play, endpoint_id, self._now())

    def record(self, endpoint_id: str, path: str, received_only: bool = False
               ) -> defer.Deferred[str]:
        """Record the endpoint to a stereo WAV at ``path`` (mono, the far
        end only, with ``received_only``); fires with the recording id.
        ``MediaError(500)`` when the file cannot be created."""
        try:
            self.core.endpoint(endpoint_id)
            recording_id = f"{endpoint_id}-rec{next(self._ids)}"
            now = self._now()
            try:
                recorder = Recorder.open(recording_id, endpoint_id, path, DECODERS, now,
                                         received_only=received_only)
            except OSError as e:
                raise MediaError(f"cannot record to {path!r}: {e.strerror or e}", 500) from None
            self.core.record(endpoint_id, recorder, now)
        except MediaError as e:
            return defer.fail(e)
        if self.logs("debug"):
            _log.debug("Endpoint {endpoint_id} recorded to {path} ({recording_id})",
                       endpoint_id=endpoint_id, path=path, recording_id=recording_id)
        return defer.succeed(recording_id)

    def stop_record(self, recording_id: str) -> defer.Deferred[str]:
        """Finish the recording; fires with the WAV file's path."""
        return self._call(self.core.stop_record, recording_id, self._now())

    def release(self, endpoint_id: str) -> defer.Deferred[MediaEndpointStats]:
        """Free the endpoint's ports; fires with its stats once its sockets
        are closed (empty stats for an unknown id)."""
        now = self._now()
        stats = self.core.remove_endpoint(endpoint_id, now)
        sockets = self._sockets.pop(endpoint_id, [])
        closing = []
        for rtp_port, rtp, rtcp in sockets:
            closing.append(defer.maybeDeferred(rtp.stopListening))
            closing.append(defer.maybeDeferred(rtcp.stopListening))
            self.pool.release(rtp_port, now)
        if sockets:
            self.counters["released"] += 1
        if sockets and self.logs("debug"):
            _log.debug("Endpoint {endpoint_id} released: {stats}",
                       endpoint_id=endpoint_id, stats=stats)
        done: defer.Deferred[Any] = defer.gatherResults(closing, consumeErrors=True)
        return done.addCallback(lambda _: stats)

    def join_room(self, room: str, endpoint_id: str, muted: bool = False
                  ) -> defer.Deferred[int]:
        """Put the endpoint into conference ``room``; fires with the number of
        participants now in it (see the interface and :mod:`.conference`)."""
        try:
            count = self.core.join_room(room, endpoint_id, muted)
        except MediaError as e:
            return defer.fail(e)
        if self.logs("debug"):
            _log.debug("Endpoint {endpoint_id} joined room {room}{muted} ({count} in it)",
                       endpoint_id=endpoint_id, room=room, count=count,
                       muted=" muted" if muted else "")
        return defer.succeed(count)

    def leave_room(self, endpoint_id: str) -> defer.Deferred[int]:
        """Take the endpoint out of its room; fires with the number of
        participants left there (0 when it was in none)."""
        try:
            room = self.core.room_of(endpoint_id)
            count = self.core.leave_room(endpoint_id)
        except MediaError as e:
            return defer.fail(e)
        if room is not None and self.logs("debug"):
            _log.debug("Endpoint {endpoint_id} left room {room} ({count} left)",
                       endpoint_id=endpoint_id, room=room, count=count)
        return defer.succeed(count)

    def mute(self, endpoint_id: str, muted: bool) -> defer.Deferred[None]:
        """Keep the endpoint's audio out of its room's mix (or put it back)."""
        return self._call(self.core.mute, endpoint_id, muted)

    def subscribe(self, callback: EventCallback) -> MediaSubscription:
        """Call ``callback(event)`` with every event of this mediaserver's
        endpoints, in a later reactor turn; returns the subscription."""
        subscription = MediaSubscription(self, callback)
        self._subscriptions.append(subscription)
        return subscription

    def endpoint_ids(self) -> list[str]:
        """The ids of the endpoints allocated now."""
        return list(self.core.endpoints)

    def stats(self) -> dict[str, float]:
        """Counters and gauges: the core's (``endpoints``, ``rtp_relayed``,
        ``dropped_*``, ...), the port pool's and the send errors."""
        pool = self.pool
        pool.expire(self._now())
        stats: dict[str, float] = dict(self.core.stats())
        stats.update(self.counters)
        stats.update(ports_in_use=pool.in_use, ports_available=pool.available,
                     ports_quarantined=pool.quarantined, port_bind_failures=pool.bind_failures,
                     events_queued=len(self._pending), subscribers=len(self._subscriptions))
        return stats

    # -- helpers ----------------------------------------------------------------------------

    def _call(self, method: Callable[..., Any], *args: Any) -> defer.Deferred[Any]:
        """``method(*args)`` as a Deferred: its result, or its MediaError."""
        try:
            result = method(*args)
        except MediaError as e:
            return defer.fail(e)
        return defer.succeed(result)

    def _notice(self, what: str, **fields: Any) -> None:
        """Something from the core worth a log line but no event."""
        if what == "deaf":
            _log.warn("Endpoint {endpoint_id} in room {room} hears nothing: its far end "
                      "takes neither PCMU nor PCMA ({formats})", **fields)
        else:
            _log.info("Mediaserver {name}: {what} {fields}", name=self.name, what=what,
                      fields=fields)

    def _emitted(self, event: MediaEvent) -> None:
        """An event from the core: log it, queue it for the subscribers."""
        kind = event.kind
        if kind == "latched":
            if self.logs("info"):
                _log.info("Endpoint {endpoint_id} latched to {address}",
                          endpoint_id=event.endpoint_id, address=event.detail)
        elif kind == "inactive":
            _log.info("Endpoint {endpoint_id} ({owner}): no {stream} media received",
                      endpoint_id=event.endpoint_id, owner=event.owner, stream=event.detail)
        elif self.logs("debug"):
            _log.debug("Endpoint {endpoint_id} event {kind} {digit}{detail}",
                       endpoint_id=event.endpoint_id, kind=kind, digit=event.digit,
                       detail=event.detail)
        if not self._subscriptions:
            return
        if len(self._pending) >= self._max_queue:
            for subscription in self._subscriptions:
                subscription.dropped += 1
            return
        self._pending.append(event)
        if self._drain_call is None:
            self._drain_call = self._reactor.callLater(0, self._drain)

    def _drain(self) -> None:
        """Hand the queued events to every subscriber."""
        self._drain_call = None
        pending = self._pending
        while pending:
            event = pending.popleft()
            for subscription in list(self._subscriptions):
                if subscription._server is None:
                    continue
                subscription.delivered += 1
                try:
                    subscription.callback(event)
                except Exception:
                    _log.failure("Media event subscriber {callback!r} failed on {kind}",
                                 callback=subscription.callback, kind=event.kind)
