"""The offer/answer model (RFC 3264) as pure functions over the SDP model.

Owns what the local side supports (:class:`Codec`, :class:`MediaCapabilities`),
making offers (§5) and answers (§6), checking an answer against our offer
(§7), the per-stream outcome (:class:`NegotiatedStream`) and the next version
of a local description for re-offers (§8).

Conventions: one capability record per media type; an answer accepts at most
one stream per media type (the first it can serve); only RTP protos listed in
the capabilities are accepted; telephone-event is RFC 4733 (events 0-15 when
the offer gives no fmtp, §7.1.1); direction follows RFC 3264 §6.1, and
``c=0.0.0.0`` (RFC 2543 hold, RFC 3264 §8.4) counts as "does not receive".
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence

import attrs

from telavox.sip.sdp.model import (
    STATIC_PAYLOAD_TYPES,
    Attribute,
    Connection,
    Direction,
    MediaDescription,
    Origin,
    RtpMap,
    SessionDescription,
)

__all__ = [
    "AUXILIARY_ENCODINGS",
    "Codec",
    "MediaCapabilities",
    "NegotiatedStream",
    "Negotiation",
    "OfferAnswerError",
    "create_answer",
    "create_offer",
    "negotiate_answer",
    "next_version",
    "reoffer",
    "set_direction",
]

#: Encodings (lower case) that ride along a codec but are never the codec chosen.
AUXILIARY_ENCODINGS = frozenset({"cn", "telephone-event", "red", "ulpfec", "flexfec-03", "rtx"})
_TELEPHONE_EVENT = "telephone-event"
_DEFAULT_EVENTS = "0-15"
_FIRST_DYNAMIC = 96


class OfferAnswerError(ValueError):
    """An answer that does not fit its offer (RFC 3264 §6, §7)."""


def _positive(_inst: object, attribute: attrs.Attribute[int], value: int) -> None:
    if value < 1:
        raise ValueError(f"{attribute.name} must be positive, not {value}")


def _optional_pt(_inst: object, attribute: attrs.Attribute[int | None], value: int | None) -> None:
    if value is not None and not 0 <= value <= 127:
        raise ValueError(f"{attribute.name} {value} out of range 0-127")


@attrs.frozen
class Codec:
    """A codec the local side can use: its ``rtpmap`` identity, the ``fmtp``
    it wants to receive with, and the payload type to prefer in offers (None:
    the RFC 3551 static one if any, else a dynamic one from 96)."""

    encoding: str
    clock_rate: int = attrs.field(validator=_positive)
    channels: int = attrs.field(default=1, validator=_positive)
    fmtp: str | None = None
    payload_type: int | None = attrs.field(default=None, validator=_optional_pt)

    def matches(self, rtpmap: RtpMap) -> bool:
        """True when ``rtpmap`` names this codec (name ignoring case, rate, channels)."""
        return (
            self.clock_rate == rtpmap.clock_rate
            and self.channels == rtpmap.channels
            and self.encoding.lower() == rtpmap.encoding.lower()
        )


@attrs.frozen(kw_only=True)
class MediaCapabilities:
    """What the local side supports for one media type.

    ``codecs`` in preference order; ``telephone_events`` is the RFC 4733
    event list we handle (e.g. ``"0-16"``), None when telephone-event is not
    supported; ``ptime`` is the packet time we want to receive (None: say
    nothing); ``protos`` are the transport protocols we accept, the first one
    used in offers.
    """

    media: str = "audio"
    codecs: tuple[Codec, ...] = attrs.field(validator=attrs.validators.min_len(1))
    telephone_events: str | None = None
    telephone_event_rate: int = attrs.field(default=8000, validator=_positive)
    telephone_event_payload_type: int | None = attrs.field(default=None, validator=_optional_pt)
    ptime: int | None = None
    protos: tuple[str, ...] = attrs.field(
        default=("RTP/AVP",), validator=attrs.validators.min_len(1)
    )

    @functools.cached_property
    def _index(self) -> dict[tuple[str, int, int], tuple[int, Codec]]:
        index: dict[tuple[str, int, int], tuple[int, Codec]] = {}
        for rank, codec in enumerate(self.codecs):
            key = (codec.encoding.lower(), codec.clock_rate, codec.channels)
            index.setdefault(key, (rank, codec))
        return index

    def rank(self, rtpmap: RtpMap) -> int | None:
        """Our preference rank of the codec ``rtpmap`` names (0 best), or None."""
        found = self._index.get((rtpmap.encoding.lower(), rtpmap.clock_rate, rtpmap.channels))
        return None if found is None else found[0]

    def codec_for(self, rtpmap: RtpMap) -> Codec | None:
        """Our codec that ``rtpmap`` names (Codec.matches), or None."""
        found = self._index.get((rtpmap.encoding.lower(), rtpmap.clock_rate, rtpmap.channels))
        return None if found is None else found[1]


@attrs.frozen(kw_only=True)
class NegotiatedStream:
    """The outcome of offer/answer for one m= line, seen from the local side.

    ``remote_*`` describe where to send (media-level ``c=`` over session
    level; RTCP from ``a=rtcp`` else port + 1).  ``payload_type``/``rtpmap``/
    ``fmtp`` are the first common codec (the one to send), ``codecs`` every
    common codec in the answer's order, ``telephone_event`` the RFC 4733
    payload type with the agreed ``telephone_events``.  ``ptime`` is the one
    the remote side asked for.  ``remote_hold`` is True when the remote side
    put us on hold (it stopped receiving).  ``reason`` says why a stream was
    rejected.
    """

    index: int
    media: str
    proto: str
    accepted: bool
    local_port: int = 0
    remote_address: str | None = None
    remote_port: int = 0
    remote_rtcp_port: int | None = None
    payload_type: int | None = None
    rtpmap: RtpMap | None = None
    fmtp: str | None = None
    codecs: tuple[RtpMap, ...] = ()
    telephone_event: int | None = None
    telephone_events: str | None = None
    direction: Direction = Direction.INACTIVE
    ptime: int | None = None
    remote_hold: bool = False
    reason: str = ""


@attrs.frozen
class Negotiation:
    """The outcome of one offer/answer exchange, one entry per m= line."""

    streams: tuple[NegotiatedStream, ...]

    @property
    def accepted(self) -> tuple[NegotiatedStream, ...]:
        """The streams both sides accepted, in m= line order."""
        return tuple(s for s in self.streams if s.accepted)

    def first(self, media: str = "audio") -> NegotiatedStream | None:
        """The first accepted stream of a media type, or None."""
        for stream in self.streams:
            if stream.accepted and stream.media == media:
                return stream
        return None


# --- helpers ---------------------------------------------------------------------


def _caps_list(
    caps: MediaCapabilities | Iterable[MediaCapabilities],
) -> dict[str, MediaCapabilities]:
    items = (caps,) if isinstance(caps, MediaCapabilities) else caps
    found: dict[str, MediaCapabilities] = {}
    for cap in items:
        found.setdefault(cap.media, cap)
    return found


def _connection(address: str) -> Connection:
    return Connection("IN", "IP6" if ":" in address else "IP4", address)


def _parse_events(text: str) -> frozenset[int]:
    events: set[int] = set()
    for part in text.replace(" ", "").split(","):
        low, dash, high = part.partition("-")
        if not (low.isascii() and low.isdigit() and len(low) <= 3):
            continue
        if dash and not (high.isascii() and high.isdigit() and len(high) <= 3):
            continue
        first = int(low)
        last = int(high) if dash else first
        if first <= last <= 255:
            events.update(range(first, last + 1))
    return frozenset(events)


def _format_events(events: Iterable[int]) -> str:
    parts: list[str] = []
    ordered = sorted(events)
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        parts.append(str(ordered[i]) if i == j else f"{ordered[i]}-{ordered[j]}")
        i = j + 1
    return ",".join(parts)


def _intersect_events(ours: str, theirs: str | None) -> str:
    common = _parse_events(ours) & _parse_events(theirs or _DEFAULT_EVENTS)
    return _format_events(common)


def _is_telephone_event(rtpmap: RtpMap) -> bool:
    return rtpmap.encoding.lower() == _TELEPHONE_EVENT


def _media_attributes(
    maps: Sequence[tuple[RtpMap, str | None]], ptime: int | None, direction: Direction
) -> tuple[Attribute, ...]:
    out: list[Attribute] = []
    for rtpmap, fmtp in maps:
        out.append(Attribute("rtpmap", rtpmap.value))
        if fmtp:
            out.append(Attribute("fmtp", f"{rtpmap.pt} {fmtp}"))
    if ptime is not None:
        out.append(Attribute("ptime", str(ptime)))
    out.append(Attribute(direction.value))
    return tuple(out)


def _description(
    address: str,
    session_id: int,
    version: int,
    username: str,
    session_name: str,
    media: Iterable[MediaDescription],
) -> SessionDescription:
    connection = _connection(address)
    origin = Origin(username, session_id, version, "IN", connection.addrtype, address)
    return SessionDescription(
        origin=origin, session_name=session_name, connection=connection, media=tuple(media)
    )


def _payload_type(fmt: str) -> int | None:
    """The RTP payload type a format names (0-127), or None."""
    if fmt.isascii() and fmt.isdigit() and len(fmt) <= 3 and int(fmt) <= 127:
        return int(fmt)
    return None


def _format_texts(media: MediaDescription, pts: Iterable[int]) -> tuple[str, ...]:
    """The offer's own spelling of each payload type (e.g. ``096``)."""
    spelling: dict[int | None, str] = {}
    for fmt in media.formats:
        spelling.setdefault(_payload_type(fmt), fmt)
    return tuple(spelling.get(pt, str(pt)) for pt in pts)


def _common_codecs(
    cap: MediaCapabilities, offered: Iterable[RtpMap], honour_offerer_order: bool
) -> list[RtpMap]:
    """The offered formats we support, in our preference order or the offer's."""
    found: list[tuple[int, int, RtpMap]] = []
    for position, rtpmap in enumerate(offered):
        rank = cap.rank(rtpmap)
        if rank is not None and not _is_telephone_event(rtpmap):
            found.append((rank, position, rtpmap))
    if not honour_offerer_order:
        found.sort(key=lambda m: (m[0], m[1]))
    return [m[2] for m in found]


def _rtcp_port(media: MediaDescription) -> int:
    rtcp = media.rtcp
    return rtcp if rtcp is not None else min(media.port + 1, 65535)


# --- offers (RFC 3264 §5) --------------------------------------------------------


def _offer_media(cap: MediaCapabilities, port: int, direction: Direction) -> MediaDescription:
    wants_events = cap.telephone_events is not None
    taken: set[int] = set()
    explicit = [c.payload_type for c in cap.codecs]
    if wants_events:
        explicit.append(cap.telephone_event_payload_type)
    for pt in explicit:
        if pt is not None:
            if pt in taken:
                raise ValueError(f"payload type {pt} given to two codecs")
            taken.add(pt)
    chosen: list[int | None] = []
    for codec, pt in zip(cap.codecs, explicit, strict=False):
        if pt is None:
            for static in STATIC_PAYLOAD_TYPES.values():
                if static.pt not in taken and codec.matches(static):
                    pt = static.pt
                    taken.add(pt)
                    break
        chosen.append(pt)
    if wants_events:
        chosen.append(explicit[-1])
    maps: list[tuple[RtpMap, str | None]] = []
    dynamic = _FIRST_DYNAMIC
    for index, pt in enumerate(chosen):
        if pt is None:
            while dynamic in taken:
                dynamic += 1
            if dynamic > 127:
                raise ValueError("more codecs than dynamic payload types")
            pt = dynamic
            taken.add(pt)
        if index < len(cap.codecs):
            codec = cap.codecs[index]
            maps.append((RtpMap(pt, codec.encoding, codec.clock_rate, codec.channels), codec.fmtp))
        else:
            te = RtpMap(pt, _TELEPHONE_EVENT, cap.telephone_event_rate)
            maps.append((te, cap.telephone_events))
    return MediaDescription(
        media=cap.media,
        port=port,
        proto=cap.protos[0],
        formats=tuple(str(rtpmap.pt) for rtpmap, _ in maps),
        attributes=_media_attributes(maps, cap.ptime, direction),
    )


def create_offer(
    caps: MediaCapabilities | Iterable[MediaCapabilities],
    address: str,
    ports_by_media: Mapping[str, int],
    session_id: int,
    version: int,
    direction: Direction = Direction.SENDRECV,
    *,
    username: str = "-",
    session_name: str = "-",
) -> SessionDescription:
    """An initial offer (RFC 3264 §5): one m= line per capability record that
    has a port in ``ports_by_media``, in capability order.

    Every format gets an ``a=rtpmap``; static payload types are used where
    RFC 3551 defines one, dynamic ones from 96 otherwise (telephone-event
    included).  Media goes to ``address`` (``c=`` at session level).  Raises
    ValueError when nothing is offered or payload types collide.
    """
    media = [
        _offer_media(cap, ports_by_media[name], direction)
        for name, cap in _caps_list(caps).items()
        if name in ports_by_media
    ]
    if not media:
        raise ValueError("nothing to offer: no capability has a port in ports_by_media")
    return _description(address, session_id, version, username, session_name, media)


# --- answers (RFC 3264 §6) -------------------------------------------------------


@attrs.frozen
class _Answering:
    offer: SessionDescription
    caps: dict[str, MediaCapabilities]
    ports: Mapping[str, int]
    intent: Direction
    honour_offerer_order: bool
    single_codec: bool


def _reject(
    index: int, om: MediaDescription, reason: str
) -> tuple[MediaDescription, NegotiatedStream]:
    answer = MediaDescription(media=om.media, port=0, proto=om.proto, formats=om.formats)
    stream = NegotiatedStream(
        index=index,
        media=om.media,
        proto=om.proto,
        accepted=False,
        remote_port=om.port,
        reason=reason,
    )
    return answer, stream


def _answer_stream(
    job: _Answering, index: int, om: MediaDescription, served: set[str]
) -> tuple[MediaDescription, NegotiatedStream]:
    cap = job.caps.get(om.media)
    port = job.ports.get(om.media)
    conn = job.offer.media_connection(om)
    if om.port == 0:
        return _reject(index, om, "stream disabled in the offer")
    if cap is None or port is None:
        return _reject(index, om, f"no local {om.media} support")
    if om.media in served:
        return _reject(index, om, f"a {om.media} stream is already accepted")
    if not om.is_rtp or om.proto.upper() not in {p.upper() for p in cap.protos}:
        return _reject(index, om, f"unsupported proto {om.proto}")
    if conn is None:
        return _reject(index, om, "no connection address in the offer")
    offered = list(om.rtpmaps.values())
    matches = _common_codecs(cap, offered, job.honour_offerer_order)
    primary = next((m for m in matches if m.encoding.lower() not in AUXILIARY_ENCODINGS), None)
    if primary is None:
        return _reject(index, om, "no codec in common")
    if job.single_codec:
        matches = [m for m in matches if m is primary or m.encoding.lower() == "cn"]
    maps: list[tuple[RtpMap, str | None]] = []
    for rtpmap in matches:
        ours = cap.codec_for(rtpmap)
        fmtp = ours.fmtp if ours is not None and ours.fmtp is not None else om.fmtp(rtpmap.pt)
        maps.append((rtpmap, fmtp))
    te_pt = events = None
    candidates = [r for r in offered if _is_telephone_event(r)]
    if cap.telephone_events is not None and candidates:
        same_rate = [r for r in candidates if r.clock_rate == primary.clock_rate]
        te = (same_rate or candidates)[0]
        events = _intersect_events(cap.telephone_events, om.fmtp(te.pt)) or None
        if events is not None:
            te_pt = te.pt
            maps.append((te, events))
    offered_dir = job.offer.media_direction(om)
    if conn.is_unspecified:
        offered_dir = Direction.from_flags(offered_dir.sends, False)
    direction = Direction.from_flags(
        offered_dir.receives and job.intent.sends, offered_dir.sends and job.intent.receives
    )
    served.add(om.media)
    answer = MediaDescription(
        media=om.media,
        port=port,
        proto=om.proto,
        formats=_format_texts(om, [rtpmap.pt for rtpmap, _ in maps]),
        attributes=_media_attributes(maps, cap.ptime, direction),
    )
    chosen = primary
    stream = NegotiatedStream(
        index=index,
        media=om.media,
        proto=om.proto,
        accepted=True,
        local_port=port,
        remote_address=conn.host,
        remote_port=om.port,
        remote_rtcp_port=_rtcp_port(om),
        payload_type=chosen.pt,
        rtpmap=chosen,
        fmtp=om.fmtp(chosen.pt),
        codecs=tuple(matches),
        telephone_event=te_pt,
        telephone_events=events,
        direction=direction,
        ptime=om.ptime,
        remote_hold=not offered_dir.receives,
    )
    return answer, stream


def create_answer(
    offer: SessionDescription,
    caps: MediaCapabilities | Iterable[MediaCapabilities],
    address: str,
    ports: Mapping[str, int],
    session_id: int,
    version: int,
    direction: Direction = Direction.SENDRECV,
    *,
    honour_offerer_order: bool = False,
    single_codec: bool = False,
    username: str = "-",
    session_name: str = "-",
) -> tuple[SessionDescription, Negotiation]:
    """Answer ``offer`` (RFC 3264 §6) and say what was agreed.

    The answer has the offer's m= lines in the same order.  A stream is
    accepted when it is enabled, we have capabilities and a port (``ports``
    by media type) for its type, its proto is one of ours and a codec is in
    common; otherwise it is answered with port 0 and the offer's formats.
    Accepted codecs keep the offer's payload type numbers and are listed in
    our preference order (the offer's with ``honour_offerer_order``; only
    the first with ``single_codec``).  telephone-event is kept when both
    support it, with the events both handle.  ``direction`` is our intent;
    the answer direction is its intersection with the mirror of the offer's
    (§6.1).  Never raises for a well-formed model.
    """
    job = _Answering(offer, _caps_list(caps), ports, direction, honour_offerer_order, single_codec)
    served: set[str] = set()
    results = [_answer_stream(job, i, om, served) for i, om in enumerate(offer.media)]
    answer = _description(
        address, session_id, version, username, session_name, (m for m, _ in results)
    )
    return answer, Negotiation(tuple(s for _, s in results))


# --- checking an answer (RFC 3264 §6, §7) ----------------------------------------


def _answered_stream(
    index: int,
    offer: SessionDescription,
    om: MediaDescription,
    answer: SessionDescription,
    am: MediaDescription,
) -> NegotiatedStream:
    where = f"m= line {index + 1}"
    if am.media != om.media:
        raise OfferAnswerError(f"{where}: answer has {am.media!r}, offer {om.media!r}")
    if am.port == 0:
        return NegotiatedStream(
            index=index,
            media=om.media,
            proto=om.proto,
            accepted=False,
            local_port=om.port,
            reason="rejected by the answer",
        )
    if om.port == 0:
        raise OfferAnswerError(f"{where}: answer accepts a stream the offer disabled")
    if am.proto.upper() != om.proto.upper():
        raise OfferAnswerError(f"{where}: answer proto {am.proto!r}, offer {om.proto!r}")
    conn = answer.media_connection(am)
    if conn is None:
        raise OfferAnswerError(f"{where}: answer gives no connection address")
    offered_pts = {_payload_type(f) for f in om.formats}
    for fmt in am.formats:
        pt = _payload_type(fmt)
        if fmt not in om.formats and (pt is None or pt not in offered_pts):
            raise OfferAnswerError(f"{where}: format {fmt} is not in the offer")
    codecs: list[RtpMap] = []
    te: RtpMap | None = None
    if om.is_rtp:
        offered, answered = om.rtpmaps, am.rtpmaps
        seen: set[int] = set()
        for fmt in am.formats:
            pt = _payload_type(fmt)
            if pt is None or pt in seen:
                continue
            seen.add(pt)
            mine, theirs_map = offered.get(pt), answered.get(pt)
            if theirs_map is STATIC_PAYLOAD_TYPES.get(pt):
                # no a=rtpmap in the answer: the offer's meaning stands
                theirs_map = mine or theirs_map
            if mine is not None and theirs_map is not None and not mine.same_codec(theirs_map):
                raise OfferAnswerError(
                    f"{where}: payload type {pt} is {mine.value} in the offer "
                    f"but {theirs_map.value} in the answer"
                )
            rtpmap = theirs_map or mine
            if rtpmap is None:
                continue
            if _is_telephone_event(rtpmap):
                te = te or rtpmap
            else:
                codecs.append(rtpmap)
    primary = next((c for c in codecs if c.encoding.lower() not in AUXILIARY_ENCODINGS), None)
    if om.is_rtp and primary is None:
        raise OfferAnswerError(f"{where}: answer accepts the stream without a codec")
    events = None
    if te is not None:
        events = _intersect_events(om.fmtp(te.pt) or _DEFAULT_EVENTS, am.fmtp(te.pt)) or None
    ours = offer.media_direction(om)
    theirs = answer.media_direction(am)
    if conn.is_unspecified:
        theirs = Direction.from_flags(theirs.sends, False)
    return NegotiatedStream(
        index=index,
        media=om.media,
        proto=om.proto,
        accepted=True,
        local_port=om.port,
        remote_address=conn.host,
        remote_port=am.port,
        remote_rtcp_port=_rtcp_port(am),
        payload_type=None if primary is None else primary.pt,
        rtpmap=primary,
        fmtp=None if primary is None else am.fmtp(primary.pt),
        codecs=tuple(codecs),
        telephone_event=None if te is None or events is None else te.pt,
        telephone_events=events,
        direction=Direction.from_flags(
            ours.sends and theirs.receives, ours.receives and theirs.sends
        ),
        ptime=am.ptime,
        remote_hold=ours.sends and not theirs.receives,
    )


def negotiate_answer(offer: SessionDescription, answer: SessionDescription) -> Negotiation:
    """What ``answer`` agreed to our ``offer``, seen from the offerer (RFC 3264 §7).

    Raises :class:`OfferAnswerError` when the answer breaks §6: another
    number of m= lines or another media type, accepting a stream the offer
    disabled, another proto, formats or payload type meanings not in the
    offer, an accepted RTP stream without a codec, no connection address.
    A direction the offer did not allow is narrowed, not refused.
    """
    if len(answer.media) != len(offer.media):
        raise OfferAnswerError(
            f"answer has {len(answer.media)} m= lines, the offer {len(offer.media)}"
        )
    return Negotiation(
        tuple(
            _answered_stream(i, offer, om, answer, am)
            for i, (om, am) in enumerate(zip(offer.media, answer.media, strict=True))
        )
    )


# --- later offers (RFC 3264 §8) --------------------------------------------------


def next_version(sd: SessionDescription) -> SessionDescription:
    """``sd`` with its ``o=`` version one higher, for a changed re-offer (§8)."""
    origin = sd.origin
    return sd.with_origin(attrs.evolve(origin, session_version=origin.session_version + 1))


def reoffer(previous: SessionDescription, updated: SessionDescription) -> SessionDescription:
    """The description to send after ``previous`` (RFC 3264 §8).

    ``updated`` carrying ``previous``'s origin: the same version when nothing
    but the origin differs, else the version one higher.
    """
    candidate = updated.with_origin(previous.origin)
    return previous if candidate == previous else next_version(candidate)


def set_direction(sd: SessionDescription, direction: Direction) -> SessionDescription:
    """``sd`` with ``direction`` on every enabled m= line and none at session
    level: the building block of hold and resume (§8.4 -- hold is sendonly
    when we were sending and receiving, inactive when we were only receiving)."""
    media = tuple(m if m.port == 0 else m.with_direction(direction) for m in sd.media)
    return attrs.evolve(sd.with_direction(None), media=media)
