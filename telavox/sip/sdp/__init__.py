"""Session descriptions: SDP (RFC 8866, formerly RFC 4566) and offer/answer (RFC 3264).

A sans-IO package: :mod:`~telavox.sip.sdp.model` holds the frozen values
(§5 lines, typed views of ``rtpmap``/``fmtp``/``ptime``/direction/``rtcp``),
:mod:`~telavox.sip.sdp.codec` reads and writes the text form, and
:mod:`~telavox.sip.sdp.offeranswer` makes offers and answers and says what
was agreed.  Nothing here does I/O or reads a clock.
"""

from __future__ import annotations

from telavox.sip.sdp.codec import SdpError, parse_sdp, serialize_sdp
from telavox.sip.sdp.model import (
    STATIC_PAYLOAD_TYPES,
    Attribute,
    Bandwidth,
    Connection,
    Direction,
    MediaDescription,
    Origin,
    RtpMap,
    SessionDescription,
    Timing,
    UnknownLine,
)
from telavox.sip.sdp.offeranswer import (
    Codec,
    MediaCapabilities,
    NegotiatedStream,
    Negotiation,
    OfferAnswerError,
    create_answer,
    create_offer,
    negotiate_answer,
    next_version,
    reoffer,
    set_direction,
)

__all__ = [
    "STATIC_PAYLOAD_TYPES",
    "Attribute",
    "Bandwidth",
    "Codec",
    "Connection",
    "Direction",
    "MediaCapabilities",
    "MediaDescription",
    "NegotiatedStream",
    "Negotiation",
    "OfferAnswerError",
    "Origin",
    "RtpMap",
    "SdpError",
    "SessionDescription",
    "Timing",
    "UnknownLine",
    "create_answer",
    "create_offer",
    "negotiate_answer",
    "next_version",
    "parse_sdp",
    "reoffer",
    "serialize_sdp",
    "set_direction",
]
