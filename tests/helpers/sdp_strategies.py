"""Hypothesis strategies for SDP: valid model values, realistic offers and raw text.

``session_descriptions()`` reaches every kind of value the model accepts
(arbitrary printable tokens, UTF-8 text, unknown lines, several c= lines);
``offers()`` builds plausible RTP offers for offer/answer properties;
``sdp_bytes()`` is the written form of either, the seed for mutation tests.
"""

from __future__ import annotations

import string

from hypothesis import strategies as st

from telavox.sip.sdp import (
    Attribute,
    Bandwidth,
    Connection,
    Direction,
    MediaDescription,
    Origin,
    SessionDescription,
    Timing,
    UnknownLine,
    serialize_sdp,
)
from telavox.sip.sdp.model import KNOWN_LINE_TYPES, MAX_NUMBER

_ASCII_TOKEN = string.ascii_letters + string.digits + "!#$%&'*+-./:;<=>?@[]^_`{|}~\"(),\\"

#: Printable, no whitespace: what a token field may hold.
tokens = st.one_of(
    st.text(_ASCII_TOKEN, min_size=1, max_size=12),
    st.text(st.characters(exclude_categories=("C", "Z")), min_size=1, max_size=8),
)
attribute_names = tokens.filter(lambda s: ":" not in s)

#: Free text: anything but NUL, CR, LF and surrogates, no trailing blank.
texts = st.one_of(
    st.text(string.printable.replace("\r", "").replace("\n", "").replace("\x0b", ""), max_size=30),
    st.text(st.characters(exclude_characters="\x00\r\n", exclude_categories=("Cs",)), max_size=12),
).map(lambda s: s.rstrip(" \t"))

numbers = st.integers(0, MAX_NUMBER)
ports = st.integers(0, 65535)
unknown_letters = st.sampled_from([c for c in string.ascii_letters if c not in KNOWN_LINE_TYPES])

addresses = st.one_of(
    st.sampled_from(["10.0.0.1", "192.0.2.7", "0.0.0.0", "2001:db8::1", "233.252.0.1/127/3"]),
    tokens,
)
connections = st.builds(
    Connection,
    st.sampled_from(["IN"]) | tokens,
    st.sampled_from(["IP4", "IP6"]) | tokens,
    addresses,
)
origins = st.builds(Origin, tokens, numbers, numbers, tokens, tokens, addresses)
bandwidths = st.builds(Bandwidth, attribute_names, numbers)
timings = st.builds(Timing, numbers, numbers, st.lists(texts, max_size=2).map(tuple))
unknown_lines = st.builds(UnknownLine, unknown_letters, texts)

_well_known = st.one_of(
    st.builds(
        lambda pt, enc: Attribute("rtpmap", f"{pt} {enc}".rstrip()),
        st.integers(0, 127),
        st.sampled_from(["PCMU/8000", "opus/48000/2", "x/y", ""]),
    ),
    st.builds(
        lambda pt, p: Attribute("fmtp", f"{pt} {p}".rstrip()),
        st.integers(0, 130),
        st.sampled_from(["0-15", "mode=20", ""]),
    ),
    st.builds(lambda v: Attribute("ptime", v), st.sampled_from(["20", "0", "x", "20.5", "9" * 30])),
    st.builds(
        lambda v: Attribute("rtcp", v), st.sampled_from(["5001", "99999", "5001 IN IP4 h", ""])
    ),
    st.sampled_from([Attribute(d.value) for d in Direction]),
)
attributes = st.one_of(_well_known, st.builds(Attribute, attribute_names, st.none() | texts))
formats = st.one_of(st.integers(0, 127).map(str), tokens)
protos = st.sampled_from(["RTP/AVP", "RTP/SAVP", "UDP/TLS/RTP/SAVPF", "udp"]) | tokens


def tuples_of(
    strategy: st.SearchStrategy[object], max_size: int = 3
) -> st.SearchStrategy[tuple[object, ...]]:
    """Tuples of up to ``max_size`` items drawn from ``strategy``."""
    return st.lists(strategy, max_size=max_size).map(tuple)


media_descriptions = st.builds(
    MediaDescription,
    media=st.sampled_from(["audio", "video", "application"]) | tokens,
    port=ports,
    port_count=st.none() | st.integers(1, 65535),
    proto=protos,
    formats=st.lists(formats, min_size=1, max_size=5).map(tuple),
    title=st.none() | texts,
    connections=tuples_of(connections, 2),
    bandwidths=tuples_of(bandwidths, 2),
    key=st.none() | texts,
    attributes=tuples_of(attributes, 6),
    unknown_lines=tuples_of(unknown_lines, 2),
)

session_descriptions = st.builds(
    SessionDescription,
    origin=origins,
    session_name=texts,
    info=st.none() | texts,
    uri=st.none() | texts,
    emails=tuples_of(texts, 2),
    phones=tuples_of(texts, 2),
    connection=st.none() | connections,
    bandwidths=tuples_of(bandwidths, 2),
    timings=st.lists(timings, min_size=1, max_size=2).map(tuple),
    zone_adjustments=st.none() | texts,
    key=st.none() | texts,
    attributes=tuples_of(attributes, 4),
    media=tuples_of(media_descriptions, 3),
    unknown_lines=tuples_of(unknown_lines, 2),
)

# --- realistic offers ------------------------------------------------------------------

_CODECS = [
    "PCMU/8000",
    "PCMA/8000",
    "G722/8000",
    "G729/8000",
    "opus/48000/2",
    "OPUS/48000/2",
    "speex/16000",
    "iLBC/8000",
    "H264/90000",
    "VP8/90000",
    "CN/8000",
    "L16/48000/2",
]


@st.composite
def _offer_media(draw: st.DrawFn) -> MediaDescription:
    media = draw(st.sampled_from(["audio", "audio", "video", "text"]))
    codecs = draw(st.lists(st.sampled_from(_CODECS), min_size=1, max_size=5, unique=True))
    pts = draw(
        st.lists(st.integers(0, 127), min_size=len(codecs), max_size=len(codecs), unique=True)
    )
    attrs: list[Attribute] = []
    for pt, codec in zip(pts, codecs, strict=True):
        if draw(st.booleans()) or pt >= 35:
            attrs.append(Attribute("rtpmap", f"{pt} {codec}"))
    fmts = [str(pt) for pt in pts]
    if draw(st.booleans()):
        te = draw(st.integers(96, 127).filter(lambda p: p not in pts))
        fmts.append(str(te))
        attrs.append(
            Attribute("rtpmap", f"{te} telephone-event/{draw(st.sampled_from([8000, 48000]))}")
        )
        events = draw(st.sampled_from([None, "0-15", "0-16", "0-11,16", "32-36", "x"]))
        if events is not None:
            attrs.append(Attribute("fmtp", f"{te} {events}"))
    direction = draw(st.none() | st.sampled_from(list(Direction)))
    if direction is not None:
        attrs.append(Attribute(direction.value))
    if draw(st.booleans()):
        attrs.append(Attribute("ptime", draw(st.sampled_from(["10", "20", "30"]))))
    if draw(st.booleans()):
        attrs.append(Attribute("rtcp", str(draw(ports))))
    return MediaDescription(
        media=media,
        port=draw(st.sampled_from([0, 4000, 5004, 65535])),
        proto=draw(st.sampled_from(["RTP/AVP", "RTP/AVP", "rtp/avp", "RTP/SAVP", "RTP/AVPF"])),
        formats=tuple(fmts),
        connections=draw(tuples_of(connections, 1)),
        attributes=tuple(attrs),
    )


@st.composite
def offers(draw: st.DrawFn) -> SessionDescription:
    """A plausible RTP offer: known codecs at random payload types, maybe
    telephone-event, direction, ptime, rtcp and media-level c= lines."""
    session_attrs = draw(
        st.lists(st.sampled_from([Attribute(d.value) for d in Direction]), max_size=1)
    )
    return SessionDescription(
        origin=draw(origins),
        connection=draw(st.none() | connections),
        attributes=tuple(session_attrs),
        media=tuple(draw(st.lists(_offer_media(), min_size=1, max_size=4))),
    )


#: The written form of model values and realistic offers.
sdp_bytes = st.one_of(session_descriptions, offers()).map(serialize_sdp)
