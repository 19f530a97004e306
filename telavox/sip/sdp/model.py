"""Frozen values of a session description (RFC 8866 §5, formerly RFC 4566).

Owns the value classes a parsed SDP is made of -- :class:`SessionDescription`
and :class:`MediaDescription` with their parts (§5.1-§5.14) -- and the typed
views computed from attributes: ``a=rtpmap`` and ``a=fmtp`` (§6.6, §6.15)
with the static payload types of RFC 3551 §6, ``a=ptime`` (§6.4), the
direction attributes (§6.7) and ``a=rtcp`` (RFC 3605 §2.1).

Every value the classes accept can be written and read back unchanged:
validators reject what the wire form cannot carry (whitespace inside tokens,
CR/LF/NUL or trailing blanks inside text, numbers out of range).  Lines and
attributes the platform does not understand are kept, in order.
"""

from __future__ import annotations

import enum
import functools
import re
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any, Self

import attrs

__all__ = [
    "KNOWN_LINE_TYPES",
    "MAX_NUMBER",
    "STATIC_PAYLOAD_TYPES",
    "Attribute",
    "Bandwidth",
    "Connection",
    "Direction",
    "MediaDescription",
    "Origin",
    "RtpMap",
    "SessionDescription",
    "Timing",
    "UnknownLine",
]

#: Line type letters with a meaning in RFC 8866 §5; any other letter is kept
#: as an :class:`UnknownLine`.
KNOWN_LINE_TYPES = frozenset("vosiuepcbtrzkam")

#: Numeric fields (o= ids, t= times, b= values) hold at most 20 digits.
MAX_NUMBER = 10**20 - 1

_BAD_CHAR = re.compile(r"[\x00\r\n\ud800-\udfff]")
_Validator = Callable[[Any, "attrs.Attribute[Any]", Any], None]


# --- validation ------------------------------------------------------------------
# Plain checks, used as attrs validators by the small values and called once
# per instance (skipping empty defaults) by the two description classes.


def _check_token(what: str, value: Any, colon: bool = True) -> None:
    """A non-empty printable token without whitespace (and maybe without ':')."""
    if type(value) is not str:
        raise TypeError(f"{what} must be a str, not {type(value).__name__}")
    if not value.isprintable() or " " in value or not value or (not colon and ":" in value):
        raise ValueError(f"invalid {what} {value!r}")


def _check_text(what: str, value: Any) -> None:
    """Free text: no NUL, CR, LF or surrogate, no trailing blank."""
    if type(value) is str and value.isprintable() and not value.endswith(" "):
        return  # the common case: nothing a line cannot carry
    if type(value) is not str:
        raise TypeError(f"{what} must be a str, not {type(value).__name__}")
    if value.endswith((" ", "\t")) or _BAD_CHAR.search(value) is not None:
        raise ValueError(f"invalid {what} {value!r} (NUL, CR, LF or trailing blank)")


def _check_number(what: str, value: Any, low: int, high: int) -> None:
    """An int (not a bool) in ``low..high``."""
    if type(value) is not int:
        raise TypeError(f"{what} must be an int, not {type(value).__name__}")
    if not low <= value <= high:
        raise ValueError(f"{what} {value} out of range {low}-{high}")


def _check_tuple(what: str, value: Any, kind: type) -> None:
    """A tuple of ``kind`` instances."""
    if type(value) is not tuple:
        raise TypeError(f"{what} must be a tuple, not {type(value).__name__}")
    for item in value:
        if not isinstance(item, kind):
            raise TypeError(f"{what} holds a {type(item).__name__}")


def _check_texts(what: str, value: Any) -> None:
    """A tuple of free texts."""
    _check_tuple(what, value, str)
    for item in value:
        _check_text(what, item)


def _token(what: str, *, colon: bool = True) -> _Validator:
    def check(_inst: Any, _attr: attrs.Attribute[Any], value: Any) -> None:
        _check_token(what, value, colon)

    return check


def _text(what: str, *, optional: bool = False) -> _Validator:
    def check(_inst: Any, _attr: attrs.Attribute[Any], value: Any) -> None:
        if value is not None or not optional:
            _check_text(what, value)

    return check


def _number(what: str, low: int, high: int) -> _Validator:
    def check(_inst: Any, _attr: attrs.Attribute[Any], value: Any) -> None:
        _check_number(what, value, low, high)

    return check


def _texts(what: str) -> _Validator:
    def check(_inst: Any, _attr: attrs.Attribute[Any], value: Any) -> None:
        _check_texts(what, value)

    return check


# --- small values ----------------------------------------------------------------


class Direction(enum.Enum):
    """A stream direction attribute (RFC 8866 §6.7), from the describing side."""

    SENDRECV = "sendrecv"
    SENDONLY = "sendonly"
    RECVONLY = "recvonly"
    INACTIVE = "inactive"

    @property
    def sends(self) -> bool:
        """True when the describing side sends media."""
        return self is Direction.SENDRECV or self is Direction.SENDONLY

    @property
    def receives(self) -> bool:
        """True when the describing side receives media."""
        return self is Direction.SENDRECV or self is Direction.RECVONLY

    @classmethod
    def from_flags(cls, sends: bool, receives: bool) -> Direction:
        """The direction that sends and receives as told."""
        if sends:
            return cls.SENDRECV if receives else cls.SENDONLY
        return cls.RECVONLY if receives else cls.INACTIVE

    def reverse(self) -> Direction:
        """The same stream seen from the other side (sendonly <-> recvonly)."""
        return Direction.from_flags(self.receives, self.sends)


_DIRECTIONS = {d.value: d for d in Direction}


@attrs.frozen
class Origin:
    """The ``o=`` line (RFC 8866 §5.2): who made the description, which version."""

    username: str = attrs.field(validator=_token("o= username"))
    session_id: int = attrs.field(validator=_number("o= session id", 0, MAX_NUMBER))
    session_version: int = attrs.field(validator=_number("o= session version", 0, MAX_NUMBER))
    nettype: str = attrs.field(validator=_token("o= nettype"))
    addrtype: str = attrs.field(validator=_token("o= addrtype"))
    address: str = attrs.field(validator=_token("o= address"))


@attrs.frozen
class Connection:
    """A ``c=`` line (RFC 8866 §5.7).

    ``address`` is kept as written, including a multicast ``/ttl`` and
    ``/count`` suffix; :attr:`host` is the bare address.
    """

    nettype: str = attrs.field(validator=_token("c= nettype"))
    addrtype: str = attrs.field(validator=_token("c= addrtype"))
    address: str = attrs.field(validator=_token("c= address"))

    @property
    def host(self) -> str:
        """The address without a ``/ttl`` or ``/count`` suffix."""
        return self.address.partition("/")[0]

    @property
    def is_unspecified(self) -> bool:
        """True for ``0.0.0.0`` (or ``::``): the RFC 2543 hold form."""
        return self.host in ("0.0.0.0", "::")


@attrs.frozen
class Bandwidth:
    """A ``b=<bwtype>:<bandwidth>`` line (RFC 8866 §5.8), e.g. ``AS`` or ``TIAS``."""

    bwtype: str = attrs.field(validator=_token("b= bwtype", colon=False))
    bandwidth: int = attrs.field(validator=_number("b= bandwidth", 0, MAX_NUMBER))


@attrs.frozen
class Timing:
    """A ``t=`` line with its ``r=`` lines (RFC 8866 §5.9, §5.10).

    Times are NTP seconds, 0 meaning unbounded; repeat lines are kept as text.
    """

    start: int = attrs.field(default=0, validator=_number("t= start", 0, MAX_NUMBER))
    stop: int = attrs.field(default=0, validator=_number("t= stop", 0, MAX_NUMBER))
    repeats: tuple[str, ...] = attrs.field(default=(), validator=_texts("r= lines"))


@attrs.frozen
class Attribute:
    """An ``a=`` line (RFC 8866 §5.13): ``a=name`` (value None) or ``a=name:value``."""

    name: str = attrs.field(validator=_token("attribute name", colon=False))
    value: str | None = attrs.field(default=None, validator=_text("attribute value", optional=True))


@attrs.frozen
class UnknownLine:
    """A line whose type letter RFC 8866 does not define, kept as written."""

    letter: str = attrs.field()
    value: str = attrs.field(validator=_text("line value"))

    @letter.validator
    def _check_letter(self, _attr: attrs.Attribute[Any], value: Any) -> None:
        if type(value) is not str or len(value) != 1 or not (value.isascii() and value.isalpha()):
            raise ValueError(f"invalid line type {value!r}")
        if value in KNOWN_LINE_TYPES:
            raise ValueError(f"line type {value!r} is not unknown")


# --- RTP payload formats ---------------------------------------------------------


@attrs.frozen
class RtpMap:
    """An RTP payload format (RFC 8866 §6.6): ``<pt> <encoding>/<rate>[/<channels>]``.

    ``channels`` is 1 when the map gives none (RFC 3551 §4.5).
    """

    pt: int
    encoding: str
    clock_rate: int
    channels: int = 1

    def __attrs_post_init__(self) -> None:
        _check_number("payload type", self.pt, 0, 127)
        _check_token("encoding name", self.encoding)
        _check_number("clock rate", self.clock_rate, 1, 10**9)
        _check_number("channels", self.channels, 1, 255)

    @property
    def value(self) -> str:
        """The ``a=rtpmap`` attribute value for this format."""
        tail = f"/{self.channels}" if self.channels != 1 else ""
        return f"{self.pt} {self.encoding}/{self.clock_rate}{tail}"

    def same_codec(self, other: RtpMap) -> bool:
        """True when both name the same codec (name ignoring case, rate, channels)."""
        return (
            self.clock_rate == other.clock_rate
            and self.channels == other.channels
            and self.encoding.lower() == other.encoding.lower()
        )

    @classmethod
    def parse(cls, value: str) -> RtpMap | None:
        """Read an ``a=rtpmap`` value; None when it is malformed."""
        head, _, rest = value.strip().partition(" ")
        parts = rest.strip().split("/")
        if not 2 <= len(parts) <= 3 or not _small_int(head, 3):
            return None
        if not _small_int(parts[1], 10) or (len(parts) == 3 and not _small_int(parts[2], 3)):
            return None
        try:
            channels = int(parts[2]) if len(parts) == 3 else 1
            return cls(int(head), parts[0], int(parts[1]), channels)
        except ValueError:
            return None


def _small_int(text: str, digits: int) -> bool:
    return 0 < len(text) <= digits and text.isascii() and text.isdigit()


#: RFC 3551 §6 tables 4 and 5: payload type -> (encoding, clock rate, channels).
STATIC_PAYLOAD_TYPES: Mapping[int, RtpMap] = MappingProxyType(
    {
        pt: RtpMap(pt, name, rate, channels)
        for pt, name, rate, channels in (
            (0, "PCMU", 8000, 1),
            (3, "GSM", 8000, 1),
            (4, "G723", 8000, 1),
            (5, "DVI4", 8000, 1),
            (6, "DVI4", 16000, 1),
            (7, "LPC", 8000, 1),
            (8, "PCMA", 8000, 1),
            (9, "G722", 8000, 1),
            (10, "L16", 44100, 2),
            (11, "L16", 44100, 1),
            (12, "QCELP", 8000, 1),
            (13, "CN", 8000, 1),
            (14, "MPA", 90000, 1),
            (15, "G728", 8000, 1),
            (16, "DVI4", 11025, 1),
            (17, "DVI4", 22050, 1),
            (18, "G729", 8000, 1),
            (25, "CelB", 90000, 1),
            (26, "JPEG", 90000, 1),
            (28, "nv", 90000, 1),
            (31, "H261", 90000, 1),
            (32, "MPV", 90000, 1),
            (33, "MP2T", 90000, 1),
            (34, "H263", 90000, 1),
        )
    }
)


# --- descriptions ----------------------------------------------------------------


class _Attributed:
    """Attribute look-ups and edits shared by session and media level."""

    __slots__ = ()
    attributes: tuple[Attribute, ...]

    def _with_attributes(self, attributes: tuple[Attribute, ...]) -> Self:
        return attrs.evolve(self, attributes=attributes)  # type: ignore[misc]

    def attribute(self, name: str) -> Attribute | None:
        """The first attribute called ``name``, or None."""
        for attribute in self.attributes:
            if attribute.name == name:
                return attribute
        return None

    def attribute_values(self, name: str) -> tuple[str | None, ...]:
        """The values of every attribute called ``name``, in order."""
        return tuple(a.value for a in self.attributes if a.name == name)

    def has_attribute(self, name: str) -> bool:
        """True when an attribute called ``name`` is present."""
        return any(a.name == name for a in self.attributes)

    @property
    def direction(self) -> Direction | None:
        """The direction attribute declared at this level, or None."""
        for attribute in self.attributes:
            direction = _DIRECTIONS.get(attribute.name)
            if direction is not None:
                return direction
        return None

    def with_attribute(self, name: str, value: str | None = None) -> Self:
        """A copy with ``a=name[:value]`` appended."""
        return self._with_attributes((*self.attributes, Attribute(name, value)))

    def without_attribute(self, name: str) -> Self:
        """A copy without any attribute called ``name``."""
        return self._with_attributes(tuple(a for a in self.attributes if a.name != name))

    def with_direction(self, direction: Direction | None) -> Self:
        """A copy whose direction attribute is ``direction`` (None removes it).

        The new attribute takes the place of the first one it replaces, or is
        appended.
        """
        kept: list[Attribute] = []
        at = -1
        for attribute in self.attributes:
            if attribute.name in _DIRECTIONS:
                if at < 0:
                    at = len(kept)
            else:
                kept.append(attribute)
        if direction is not None:
            kept.insert(at if at >= 0 else len(kept), Attribute(direction.value))
        return self._with_attributes(tuple(kept))


@attrs.frozen(kw_only=True)
class MediaDescription(_Attributed):
    """One ``m=`` section (RFC 8866 §5.14) with its ``i= c= b= k= a=`` lines.

    ``formats`` are kept as strings (payload type numbers for RTP protos).
    A media section may carry several ``c=`` lines (§5.7); :attr:`connection`
    is the first.  ``port_count`` is the ``/<number of ports>`` suffix.
    """

    media: str
    port: int
    proto: str
    formats: tuple[str, ...]
    port_count: int | None = None
    title: str | None = None
    connections: tuple[Connection, ...] = ()
    bandwidths: tuple[Bandwidth, ...] = ()
    key: str | None = None
    attributes: tuple[Attribute, ...] = ()
    unknown_lines: tuple[UnknownLine, ...] = ()

    def __attrs_post_init__(self) -> None:
        _check_token("media type", self.media)
        _check_number("port", self.port, 0, 65535)
        _check_token("proto", self.proto)
        _check_tuple("formats", self.formats, str)
        if not self.formats:
            raise ValueError("an m= line needs at least one format")
        for fmt in self.formats:
            _check_token("format", fmt)
        if self.port_count is not None:
            _check_number("port count", self.port_count, 1, 65535)
        if self.title is not None:
            _check_text("i= title", self.title)
        if self.key is not None:
            _check_text("k= value", self.key)
        _check_tuple("connections", self.connections, Connection)
        _check_tuple("bandwidths", self.bandwidths, Bandwidth)
        _check_tuple("attributes", self.attributes, Attribute)
        _check_tuple("unknown lines", self.unknown_lines, UnknownLine)

    @property
    def connection(self) -> Connection | None:
        """The first media-level ``c=`` line, or None."""
        return self.connections[0] if self.connections else None

    @property
    def is_rtp(self) -> bool:
        """True when the proto carries RTP (``RTP/AVP``, ``UDP/TLS/RTP/SAVPF``, ...)."""
        return "RTP/" in self.proto.upper()

    @functools.cached_property
    def rtpmaps(self) -> Mapping[int, RtpMap]:
        """Payload type -> :class:`RtpMap` for every format that has one.

        Ordered as the formats are.  A format without a usable ``a=rtpmap``
        falls back to the RFC 3551 static table; other formats (and malformed
        maps) are left out.  Computed once per instance.
        """
        given: dict[int, RtpMap] = {}
        for attribute in self.attributes:
            if attribute.name == "rtpmap" and attribute.value is not None:
                rtpmap = RtpMap.parse(attribute.value)
                if rtpmap is not None and rtpmap.pt not in given:
                    given[rtpmap.pt] = rtpmap
        result: dict[int, RtpMap] = {}
        for fmt in self.formats:
            if not _small_int(fmt, 3):
                continue
            pt = int(fmt)
            rtpmap = given.get(pt) or STATIC_PAYLOAD_TYPES.get(pt)
            if rtpmap is not None and pt not in result:
                result[pt] = rtpmap
        return MappingProxyType(result)

    def fmtp(self, pt: int | str) -> str | None:
        """The format parameters of ``a=fmtp:<pt> ...`` (RFC 8866 §6.15), or None."""
        wanted = str(pt)
        for attribute in self.attributes:
            if attribute.name == "fmtp" and attribute.value is not None:
                head, _, rest = attribute.value.strip().partition(" ")
                if head == wanted:
                    return rest.strip()
        return None

    @property
    def ptime(self) -> int | None:
        """``a=ptime`` in whole milliseconds (RFC 8866 §6.4), or None."""
        return _milliseconds(self.attribute("ptime"))

    @property
    def maxptime(self) -> int | None:
        """``a=maxptime`` in whole milliseconds (RFC 8866 §6.5), or None."""
        return _milliseconds(self.attribute("maxptime"))

    @property
    def rtcp(self) -> int | None:
        """The RTCP port of ``a=rtcp:<port> ...`` (RFC 3605 §2.1), or None."""
        attribute = self.attribute("rtcp")
        if attribute is None or attribute.value is None:
            return None
        port = attribute.value.strip().partition(" ")[0]
        if not _small_int(port, 5) or int(port) > 65535:
            return None
        return int(port)

    def with_port(self, port: int) -> MediaDescription:
        """A copy on another port (0 disables the stream, RFC 3264 §5.1)."""
        return attrs.evolve(self, port=port)

    def with_connection(self, connection: Connection | None) -> MediaDescription:
        """A copy whose only media-level ``c=`` line is ``connection`` (or none)."""
        return attrs.evolve(self, connections=() if connection is None else (connection,))


def _milliseconds(attribute: Attribute | None) -> int | None:
    if attribute is None or attribute.value is None:
        return None
    whole = attribute.value.strip().partition(".")[0]
    if not _small_int(whole, 6) or int(whole) == 0:
        return None
    return int(whole)


@attrs.frozen(kw_only=True)
class SessionDescription(_Attributed):
    """A whole session description (RFC 8866 §5), session level plus media.

    ``timings`` holds at least one ``t=`` line; ``zone_adjustments`` is the
    ``z=`` line as text.  Only version 0 exists.
    """

    origin: Origin
    session_name: str = "-"
    version: int = 0
    info: str | None = None
    uri: str | None = None
    emails: tuple[str, ...] = ()
    phones: tuple[str, ...] = ()
    connection: Connection | None = None
    bandwidths: tuple[Bandwidth, ...] = ()
    timings: tuple[Timing, ...] = (Timing(),)
    zone_adjustments: str | None = None
    key: str | None = None
    attributes: tuple[Attribute, ...] = ()
    media: tuple[MediaDescription, ...] = ()
    unknown_lines: tuple[UnknownLine, ...] = ()

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.origin, Origin):
            raise TypeError(f"origin must be an Origin, not {type(self.origin).__name__}")
        _check_text("s= name", self.session_name)
        _check_number("v= version", self.version, 0, 0)
        for what, text in (
            ("i= info", self.info),
            ("u= uri", self.uri),
            ("z= value", self.zone_adjustments),
            ("k= value", self.key),
        ):
            if text is not None:
                _check_text(what, text)
        _check_texts("e= lines", self.emails)
        _check_texts("p= lines", self.phones)
        if self.connection is not None and not isinstance(self.connection, Connection):
            raise TypeError(
                f"connection must be a Connection, not {type(self.connection).__name__}"
            )
        _check_tuple("bandwidths", self.bandwidths, Bandwidth)
        _check_tuple("timings", self.timings, Timing)
        if not self.timings:
            raise ValueError("a session description needs at least one t= line")
        _check_tuple("attributes", self.attributes, Attribute)
        _check_tuple("media", self.media, MediaDescription)
        _check_tuple("unknown lines", self.unknown_lines, UnknownLine)

    def media_direction(self, media: MediaDescription) -> Direction:
        """The direction in force for ``media``: its own attribute, else the
        session-level one, else sendrecv (RFC 8866 §6.7)."""
        return media.direction or self.direction or Direction.SENDRECV

    def media_connection(self, media: MediaDescription) -> Connection | None:
        """The ``c=`` line in force for ``media``: its own, else the session's."""
        return media.connection or self.connection

    def with_media(self, index: int, media: MediaDescription) -> SessionDescription:
        """A copy with the m= section at ``index`` replaced."""
        items = list(self.media)
        items[index] = media
        return attrs.evolve(self, media=tuple(items))

    def with_origin(self, origin: Origin) -> SessionDescription:
        """A copy with another ``o=`` line."""
        return attrs.evolve(self, origin=origin)

    def with_connection(self, connection: Connection | None) -> SessionDescription:
        """A copy with another session-level ``c=`` line (or none)."""
        return attrs.evolve(self, connection=connection)
