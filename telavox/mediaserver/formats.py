"""Payload formats of a relayed stream: what a payload type means on each side
and how a packet of one far end becomes a packet the other far end takes.

Owns the per-direction *route table* built when two endpoints are connected
(and rebuilt whenever either side's remote description changes): a list of
128 entries indexed by the payload type that arrives, each either None (the
peer cannot take that format: the packet is dropped and counted) or a
:data:`Route` ``(out_pt, xlate, out_codec)``.  ``xlate`` is None, or a
256-byte table for :meth:`bytes.translate` that transcodes G.711 µ-law ↔
A-law byte for byte; ``out_codec`` is one of the ``CODEC_*`` numbers, used
by the recorder to decode what is sent.

Formats are matched by encoding name (ignoring case), clock rate and
channels, never by number, so the two far ends may use different numbers
for the same codec (``telephone-event`` 101 on one side, 96 on the other).
A payload type the far end did not list falls back to its RFC 3551 static
meaning (a lenient reading of phones that send PCMA after offering only
PCMU).  Video (any kind but audio) is relayed codec-agnostic: translated by
name when the peer lists the codec, passed on unchanged when the peer listed
no formats at all, dropped otherwise; it is never transcoded.

Assumption: a far end sends with the payload numbers it listed itself (what
the B2BUA answers or offers it repeats them, RFC 3264 §6.1).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from telavox.records import MediaFormat, RemoteStream
from telavox.rtp.codecs import PCMA, PCMU, G711Codec
from telavox.rtp.codecs.g711 import ALAW_DECODE, ALAW_ENCODE, ULAW_DECODE, ULAW_ENCODE
from telavox.sip.sdp import STATIC_PAYLOAD_TYPES

__all__ = [
    "ALAW_TO_MULAW",
    "CODEC_CN",
    "CODEC_EVENT",
    "CODEC_OTHER",
    "CODEC_PCMA",
    "CODEC_PCMU",
    "DECODERS",
    "MULAW_TO_ALAW",
    "NO_FORMATS",
    "NO_ROUTES",
    "Route",
    "build_routes",
    "codec_of",
    "encoder",
    "format_map",
    "listed",
    "preferred_g711",
    "telephone_event",
]

#: ``out_codec`` numbers of a route (what the recorder can decode).
CODEC_OTHER = 0
CODEC_PCMU = 1
CODEC_PCMA = 2
CODEC_EVENT = 3
CODEC_CN = 4

_CODEC_BY_NAME = {"pcmu": CODEC_PCMU, "pcma": CODEC_PCMA,
                  "telephone-event": CODEC_EVENT, "cn": CODEC_CN}

Route = tuple[int, bytes | None, int]
"""``(out_pt, xlate, out_codec)``: the payload type to write, the byte table
transcoding the payload (None: copied as is), what the payload is."""

#: A table of 128 empty entries: nothing is relayed.
NO_ROUTES: tuple[Route | None, ...] = (None,) * 128

#: A format map of a stream without a remote description.
NO_FORMATS: tuple[MediaFormat | None, ...] = (None,) * 128

#: :meth:`bytes.translate` tables transcoding G.711 µ-law to A-law and back
#: (each code decoded to linear and encoded in the other law).
MULAW_TO_ALAW: bytes = ALAW_ENCODE[ULAW_DECODE.view(np.uint16)].tobytes()
ALAW_TO_MULAW: bytes = ULAW_ENCODE[ALAW_DECODE.view(np.uint16)].tobytes()

#: int16[256] decoding tables by ``CODEC_*`` number.
DECODERS: dict[int, npt.NDArray[np.int16]] = {CODEC_PCMU: ULAW_DECODE, CODEC_PCMA: ALAW_DECODE}


def codec_of(fmt: MediaFormat | None) -> int:
    """The ``CODEC_*`` number of a format (CODEC_OTHER when unknown)."""
    if fmt is None:
        return CODEC_OTHER
    return _CODEC_BY_NAME.get(fmt.name.lower(), CODEC_OTHER)


def format_map(remote: RemoteStream | None) -> tuple[MediaFormat | None, ...]:
    """What each payload type (0–127) means for packets from this far end:
    its listed formats first, then RFC 3551 static types for audio."""
    if remote is None:
        return NO_FORMATS
    return _format_map(remote.kind, remote.formats)


_STATIC_AUDIO: tuple[MediaFormat | None, ...] = tuple(
    MediaFormat(pt, STATIC_PAYLOAD_TYPES[pt].encoding, STATIC_PAYLOAD_TYPES[pt].clock_rate,
                STATIC_PAYLOAD_TYPES[pt].channels) if pt in STATIC_PAYLOAD_TYPES else None
    for pt in range(128))


@functools.lru_cache(maxsize=1024)
def _format_map(kind: str, formats: tuple[MediaFormat, ...]) -> tuple[MediaFormat | None, ...]:
    # the same few format lists come back call after call: computed once each
    table: list[MediaFormat | None] = list(_STATIC_AUDIO) if kind == "audio" else [None] * 128
    for fmt in formats:
        if 0 <= fmt.payload_type < 128:
            table[fmt.payload_type] = fmt
    return tuple(table)


def codec_table(remote: RemoteStream | None) -> tuple[int, ...]:
    """The ``CODEC_*`` number of each payload type of :func:`format_map`."""
    if remote is None:
        return _codec_table("", ())
    return _codec_table(remote.kind, remote.formats)


@functools.lru_cache(maxsize=1024)
def _codec_table(kind: str, formats: tuple[MediaFormat, ...]) -> tuple[int, ...]:
    if not kind:
        return tuple(codec_of(None) for _ in range(128))
    return tuple(codec_of(fmt) for fmt in _format_map(kind, formats))


def _key(fmt: MediaFormat) -> tuple[str, int, int]:
    return fmt.name.lower(), fmt.clock_rate, fmt.channels


def telephone_event(remote: RemoteStream | None, clock_rate: int = 8000) -> MediaFormat | None:
    """The far end's ``telephone-event`` format at ``clock_rate``, or None."""
    if remote is None:
        return None
    for fmt in remote.formats:
        if fmt.name.lower() == "telephone-event" and fmt.clock_rate == clock_rate:
            return fmt
    return None


def preferred_g711(remote: RemoteStream | None) -> MediaFormat | None:
    """The far end's first G.711 format (PCMU or PCMA) in its order of
    preference: what locally generated audio is encoded with; None when it
    takes neither."""
    if remote is None:
        return None
    for fmt in remote.formats:
        if fmt.name.upper() in ("PCMU", "PCMA") and fmt.clock_rate == 8000:
            return fmt
    return None


def build_routes(src: RemoteStream | None, dst: RemoteStream | None
                 ) -> tuple[Route | None, ...]:
    """The route table for packets from the far end described by ``src`` to
    the far end described by ``dst`` (see the module docstring).

    Returns :data:`NO_ROUTES` when either side has no description or the two
    are of different kinds.
    """
    if src is None or dst is None or src.kind != dst.kind:
        return NO_ROUTES
    return _routes(src.kind, src.formats, dst.formats)


@functools.lru_cache(maxsize=1024)
def _routes(kind: str, src_formats: tuple[MediaFormat, ...], dst_formats: tuple[MediaFormat, ...]
            ) -> tuple[Route | None, ...]:
    incoming = _format_map(kind, src_formats)
    audio = kind == "audio"
    if not dst_formats:
        if audio:
            return NO_ROUTES
        return tuple((pt, None, CODEC_OTHER) for pt in range(128))
    by_key: dict[tuple[str, int, int], MediaFormat] = {}
    for theirs in dst_formats:
        by_key.setdefault(_key(theirs), theirs)
    routes: list[Route | None] = [None] * 128
    for pt, fmt in enumerate(incoming):
        if fmt is None:
            continue
        match = by_key.get(_key(fmt))
        if match is not None:
            routes[pt] = (match.payload_type, None, codec_of(match))
        elif audio:
            routes[pt] = _transcoded(fmt, by_key)
    return tuple(routes)


def _transcoded(fmt: MediaFormat, by_key: dict[tuple[str, int, int], MediaFormat]
                ) -> Route | None:
    """A G.711 route to the other law, when the peer took it."""
    name, rate, channels = _key(fmt)
    if rate != 8000 or channels != 1:
        return None
    if name == "pcmu":
        other = by_key.get(("pcma", 8000, 1))
        if other is not None:
            return (other.payload_type, MULAW_TO_ALAW, CODEC_PCMA)
    elif name == "pcma":
        other = by_key.get(("pcmu", 8000, 1))
        if other is not None:
            return (other.payload_type, ALAW_TO_MULAW, CODEC_PCMU)
    return None


def listed(formats: Sequence[MediaFormat]) -> str:
    """The formats as ``PCMU/0 telephone-event/101`` (for logs)."""
    return " ".join(f"{fmt.name}/{fmt.payload_type}" for fmt in formats)


def encoder(fmt: MediaFormat) -> G711Codec:
    """The G.711 codec of a PCMU or PCMA format (LookupError for others)."""
    name = fmt.name.upper()
    if name == "PCMU":
        return PCMU
    if name == "PCMA":
        return PCMA
    raise LookupError(f"no encoder for {fmt.name}")
