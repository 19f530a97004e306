"""Session descriptions of a call whose media is anchored on the mediaserver
(sans-IO).

Owns the codecs the SIP server offers and accepts (:data:`AUDIO`: G.711
µ-law and A-law, the ones the mediaserver relays and transcodes, plus RFC 4733
telephone-event), :class:`LocalSession` (the ``o=`` line of one leg's
descriptions and its versions, RFC 3264 §8) and the conversions between SDP
and the mediaserver's records: what a far end offered or answered becomes
:class:`~telavox.records.RemoteStream` records; a mediaserver endpoint
becomes our offer or answer.

Each leg of a call faces its own endpoint, so each far end sees only the
mediaserver's address: an answer to the caller is made from the caller's
offer and the caller's endpoint alone, and the offer to the callee lists
the codec the caller will send first, so the mediaserver relays without
transcoding whenever the callee accepts it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import attrs

from telavox.records import MediaDirection, MediaEndpoint, MediaFormat, RemoteStream
from telavox.sip.sdp import (
    Codec,
    MediaCapabilities,
    Negotiation,
    RtpMap,
    SdpError,
    SessionDescription,
    create_answer,
    create_offer,
    negotiate_answer,
    parse_sdp,
    serialize_sdp,
)
from telavox.sip.sdp.offeranswer import OfferAnswerError, next_version

__all__ = [
    "AUDIO",
    "LocalSession",
    "SdpProblemError",
    "answer_offer",
    "make_offer",
    "media_kinds",
    "parse_body",
    "remote_from_answer",
    "video_caps",
]

AUDIO = MediaCapabilities(
    media="audio",
    codecs=(Codec("PCMU", 8000), Codec("PCMA", 8000)),
    telephone_events="0-16",
    telephone_event_payload_type=101,
)
"""What the SIP server's media streams carry."""


class SdpProblemError(Exception):
    """A session description we cannot use: ``status`` 488 (nothing in
    common) or 400 (malformed), with the reason phrase to send."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def parse_body(body: bytes) -> SessionDescription:
    """The SDP of a message body; SdpProblemError(400) when it does not parse."""
    try:
        return parse_sdp(body)
    except SdpError as e:
        raise SdpProblemError(400, f"Bad SDP ({e.reason})") from None


@attrs.define
class LocalSession:
    """The origin of one leg's descriptions: the same session id for the
    whole call, the version one higher each time the description changes."""

    address: str
    session_id: int = attrs.field(factory=lambda: int.from_bytes(os.urandom(4), "big"))
    last: SessionDescription | None = None

    def stamp(self, sd: SessionDescription) -> bytes:
        """``sd`` with this session's origin (version bumped if it changed),
        remembered and serialised."""
        if self.last is not None:
            candidate = sd.with_origin(self.last.origin)
            sd = self.last if candidate == self.last else next_version(candidate)
        self.last = sd
        return serialize_sdp(sd)

    def direction(self) -> MediaDirection | None:
        """The direction of the first stream of our last description."""
        if self.last is None or not self.last.media:
            return None
        return self.last.media_direction(self.last.media[0])


def _formats(stream_codecs: Sequence[RtpMap], te_pt: int | None, te_rate: int,
             fmtp: str | None) -> tuple[MediaFormat, ...]:
    formats = [MediaFormat(m.pt, m.encoding.upper() if m.encoding.lower().startswith("pcm")
                           else m.encoding, m.clock_rate, m.channels)
               for m in stream_codecs if m.encoding.lower() != "telephone-event"]
    if te_pt is not None:
        formats.append(MediaFormat(te_pt, "telephone-event", te_rate, 1, fmtp or ""))
    return tuple(formats)


def _remote(offerer: SessionDescription, negotiation: Negotiation,
            signalling_address: str | None) -> tuple[RemoteStream, ...]:
    """Remote streams of the side that wrote ``offerer`` (offer or answer),
    from a negotiation of it."""
    out = []
    for stream in negotiation.accepted:
        media = offerer.media[stream.index]
        te_rate = 8000
        fmtp = None
        if stream.telephone_event is not None:
            te = media.rtpmaps.get(stream.telephone_event)
            te_rate = te.clock_rate if te is not None else 8000
            fmtp = stream.telephone_events
        address = stream.remote_address
        if address in ("0.0.0.0", "::"):
            address = None
        out.append(RemoteStream(
            kind=stream.media,
            address=address,
            port=stream.remote_port,
            formats=_formats(stream.codecs, stream.telephone_event, te_rate, fmtp),
            direction=offerer.media_direction(media),
            rtcp_port=stream.remote_rtcp_port,
            rtcp_mux=media.has_attribute("rtcp-mux"),
            ptime=stream.ptime,
            signalling_address=signalling_address,
        ))
    return tuple(out)


def media_kinds(offer: SessionDescription | None) -> tuple[str, ...]:
    """The endpoint streams a call needs for ``offer``: audio, and video when
    the offer has an enabled video stream (relayed codec-agnostic)."""
    if offer is not None and video_caps(offer) is not None:
        return ("audio", "video")
    return ("audio",)


def video_caps(offer: SessionDescription) -> MediaCapabilities | None:
    """Capabilities accepting every format of the offer's first enabled
    video stream: the mediaserver relays video without looking inside, so
    the two far ends agree on a codec between themselves."""
    media = next((m for m in offer.media if m.media == "video" and m.port and m.is_rtp),
                 None)
    if media is None:
        return None
    codecs = tuple(Codec(r.encoding, r.clock_rate, r.channels, fmtp=media.fmtp(r.pt),
                         payload_type=r.pt)
                   for r in media.rtpmaps.values())
    if not codecs:
        return None
    return MediaCapabilities(media="video", codecs=codecs, protos=(media.proto,))


def _in_endpoint_order(streams: tuple[RemoteStream, ...], endpoint: MediaEndpoint
                       ) -> tuple[RemoteStream, ...]:
    """``streams`` index for index with the endpoint's streams (by kind)."""
    by_kind: dict[str, RemoteStream] = {}
    for stream in streams:
        by_kind.setdefault(stream.kind, stream)
    out = []
    for local in endpoint.streams:
        remote = by_kind.get(local.kind)
        if remote is None:
            break
        out.append(remote)
    return tuple(out)


def _ports(endpoint: MediaEndpoint) -> dict[str, int]:
    ports: dict[str, int] = {}
    for stream in endpoint.streams:
        ports.setdefault(stream.kind, stream.rtp_port)
    return ports


def answer_offer(offer: SessionDescription, endpoint: MediaEndpoint, session: LocalSession,
                 signalling_address: str | None, *,
                 prefer: str | None = None) -> tuple[bytes, tuple[RemoteStream, ...], str]:
    """Our answer to ``offer`` from ``endpoint``: (the SDP body, the far
    end's streams for the mediaserver, the codec name the far end will send
    first).  The offerer's order of preference is honoured (its first codec
    we carry is the one chosen); ``prefer`` puts one codec first otherwise.
    SdpProblemError(488) when no audio stream can be accepted."""
    caps = [_preferring(prefer)]
    video = video_caps(offer)
    if video is not None and any(s.kind == "video" for s in endpoint.streams):
        caps.append(video)
    answer, negotiation = create_answer(offer, caps, session.address, _ports(endpoint),
                                        session.session_id, 0, honour_offerer_order=True)
    audio = negotiation.first("audio")
    if audio is None or audio.rtpmap is None:
        reasons = "; ".join(s.reason for s in negotiation.streams if s.reason) or "no audio"
        raise SdpProblemError(488, f"Not Acceptable Here ({reasons})")
    body = session.stamp(answer)
    remote = _in_endpoint_order(_remote(offer, negotiation, signalling_address), endpoint)
    return body, remote, audio.rtpmap.encoding.upper()


def make_offer(endpoint: MediaEndpoint, session: LocalSession, *, prefer: str | None = None,
               direction: MediaDirection = MediaDirection.SENDRECV,
               video: MediaCapabilities | None = None) -> bytes:
    """Our offer from ``endpoint``: audio with ``prefer`` first, and the
    ``video`` formats when the endpoint has a video stream."""
    caps = [_preferring(prefer)]
    if video is not None and any(s.kind == "video" for s in endpoint.streams):
        caps.append(video)
    offer = create_offer(caps, session.address, _ports(endpoint), session.session_id, 0,
                         direction)
    return session.stamp(offer)


def remote_from_answer(session: LocalSession, answer_body: bytes,
                       signalling_address: str | None,
                       endpoint: MediaEndpoint | None = None) -> tuple[RemoteStream, ...]:
    """The far end's streams from its answer to our last offer;
    SdpProblemError(488/400) when the answer is unusable."""
    offer = session.last
    if offer is None:
        raise SdpProblemError(400, "Bad SDP (an answer without an offer)")
    answer = parse_body(answer_body)
    try:
        negotiation = negotiate_answer(offer, answer)
    except OfferAnswerError as e:
        raise SdpProblemError(488, f"Not Acceptable Here ({e})") from None
    if negotiation.first("audio") is None:
        raise SdpProblemError(488, "Not Acceptable Here (audio refused)")
    remote = _remote(answer, negotiation, signalling_address)
    return remote if endpoint is None else _in_endpoint_order(remote, endpoint)


def _preferring(name: str | None) -> MediaCapabilities:
    if name is None:
        return AUDIO
    first = [c for c in AUDIO.codecs if c.encoding.upper() == name.upper()]
    if not first:
        return AUDIO
    rest = [c for c in AUDIO.codecs if c not in first]
    return attrs.evolve(AUDIO, codecs=tuple(first + rest))
