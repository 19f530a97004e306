"""SDP text to model and back (RFC 8866 §5, §9 grammar; formerly RFC 4566).

Owns :func:`parse_sdp` and :func:`serialize_sdp`.

The parser is lenient about what real endpoints get wrong -- bare LF line
ends, trailing blanks, blank lines, a leading byte order mark, session-level
lines out of the §5 order, a missing ``s=`` (becomes ``-``) or ``t=``
(becomes ``t=0 0``) -- and total: for any bytes or str it returns a
:class:`~telavox.sip.sdp.model.SessionDescription` or raises
:class:`SdpError` naming the line.  Lines with a type letter §5 does
not define are kept (§5: "ignore" is allowed, keeping is a superset).

The writer is canonical: lines in §5 order, CRLF ends, UTF-8.  Unknown lines
of a section follow its ``a=`` lines.
"""

from __future__ import annotations

import re

from telavox.sip.sdp.model import (
    MAX_NUMBER,
    Attribute,
    Bandwidth,
    Connection,
    MediaDescription,
    Origin,
    SessionDescription,
    Timing,
    UnknownLine,
)

__all__ = ["SdpError", "parse_sdp", "serialize_sdp"]

_BAD_CHAR = re.compile(r"[\x00\ud800-\udfff]")
_MAX_DIGITS = len(str(MAX_NUMBER))
_SESSION_ONLY = frozenset("vosuepzt")


class SdpError(ValueError):
    """A session description that cannot be read.

    ``line`` is the 1-based line number at fault (None when the fault is not
    on one line); ``reason`` says what is wrong without the line prefix.
    """

    def __init__(self, reason: str, line: int | None = None) -> None:
        super().__init__(reason if line is None else f"line {line}: {reason}")
        self.reason = reason
        self.line = line


def _number(text: str, what: str, digits: int = _MAX_DIGITS) -> int:
    if not (text.isascii() and text.isdigit()):
        raise ValueError(f"{what} {text[:40]!r} is not a number")
    if len(text) > digits:
        raise ValueError(f"{what} {text[:40]!r} is too large")
    return int(text)


def _port(text: str) -> int:
    port = _number(text, "port", 10)
    if port > 65535:
        raise ValueError(f"port {port} out of range 0-65535")
    return port


class _Media:
    """The parts of one m= section while its lines are read."""

    __slots__ = (
        "attributes",
        "bandwidths",
        "connections",
        "fields",
        "key",
        "line",
        "title",
        "unknown",
    )

    def __init__(
        self, fields: tuple[str, int, int | None, str, tuple[str, ...]], line: int
    ) -> None:
        self.fields = fields
        self.line = line
        self.title: str | None = None
        self.key: str | None = None
        self.connections: list[Connection] = []
        self.bandwidths: list[Bandwidth] = []
        self.attributes: list[Attribute] = []
        self.unknown: list[UnknownLine] = []

    def build(self) -> MediaDescription:
        media, port, count, proto, formats = self.fields
        try:
            return MediaDescription(
                media=media,
                port=port,
                port_count=count,
                proto=proto,
                formats=formats,
                title=self.title,
                connections=tuple(self.connections),
                bandwidths=tuple(self.bandwidths),
                key=self.key,
                attributes=tuple(self.attributes),
                unknown_lines=tuple(self.unknown),
            )
        except ValueError as exc:
            raise SdpError(str(exc), self.line) from None


def _media_fields(value: str) -> tuple[str, int, int | None, str, tuple[str, ...]]:
    fields = value.split()
    if len(fields) < 4:
        raise ValueError("m= needs media, port, proto and at least one format")
    port_text, slash, count_text = fields[1].partition("/")
    count = None
    if slash:
        count = _number(count_text, "port count", 10)
        if not 1 <= count <= 65535:
            raise ValueError(f"port count {count} out of range 1-65535")
    return fields[0], _port(port_text), count, fields[2], tuple(fields[3:])


def _decode(data: bytes | str) -> str:
    if isinstance(data, str):
        bad = _BAD_CHAR.search(data)
        if bad is not None:
            line = data.count("\n", 0, bad.start()) + 1
            raise SdpError(f"forbidden character {bad.group()!r}", line)
        return data
    if not isinstance(data, bytes | bytearray | memoryview):
        raise TypeError(f"SDP must be bytes or str, not {type(data).__name__}")
    raw = bytes(data)
    at = raw.find(b"\x00")
    if at >= 0:
        raise SdpError("NUL character", raw.count(b"\n", 0, at) + 1)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        raise SdpError(f"invalid UTF-8 at byte {exc.start}", line) from None


def parse_sdp(data: bytes | str) -> SessionDescription:
    """Read a session description (RFC 8866 §5).

    Returns the model of ``data`` or raises :class:`SdpError` (a
    ``ValueError``) saying what is wrong and on which line; no other exception
    escapes for bytes or str input.
    """
    text = _decode(data)
    if text.startswith("\ufeff"):
        text = text[1:]  # a byte order mark some tools write
    seen_version = False
    origin: Origin | None = None
    name: str | None = None
    info: str | None = None
    uri: str | None = None
    emails: list[str] = []
    phones: list[str] = []
    connection: Connection | None = None
    bandwidths: list[Bandwidth] = []
    timings: list[tuple[int, int, list[str]]] = []
    zone: str | None = None
    key: str | None = None
    attributes: list[Attribute] = []
    unknown: list[UnknownLine] = []
    media: list[MediaDescription] = []
    current: _Media | None = None
    number = 0
    for line in text.split("\n"):
        number += 1
        line = line.rstrip(" \t\r")
        if not line:
            continue
        if len(line) < 2 or line[1] != "=":
            raise SdpError(f"expected <type>=<value>, got {line[:40]!r}", number)
        if "\r" in line:
            raise SdpError("CR inside a line", number)
        kind = line[0]
        value = line[2:]
        try:
            if not seen_version:
                if kind != "v":
                    raise ValueError("a session description must start with v=")
                if value.strip() != "0":
                    raise ValueError(f"unsupported SDP version {value[:40]!r}")
                seen_version = True
            elif kind == "a":
                attr_name, colon, attr_value = value.partition(":")
                attribute = Attribute(attr_name, attr_value if colon else None)
                (attributes if current is None else current.attributes).append(attribute)
            elif kind == "m":
                if current is not None:
                    media.append(current.build())
                current = _Media(_media_fields(value), number)
            elif kind == "c":
                fields = value.split()
                if len(fields) != 3:
                    raise ValueError("c= needs nettype, addrtype and address")
                conn = Connection(fields[0], fields[1], fields[2])
                if current is not None:
                    current.connections.append(conn)
                elif connection is not None:
                    raise ValueError("more than one session-level c= line")
                else:
                    connection = conn
            elif kind == "b":
                bwtype, colon, amount = value.partition(":")
                if not colon:
                    raise ValueError("b= needs <bwtype>:<bandwidth>")
                bandwidth = Bandwidth(bwtype.strip(), _number(amount.strip(), "bandwidth"))
                (bandwidths if current is None else current.bandwidths).append(bandwidth)
            elif kind == "i":
                if current is None:
                    if info is not None:
                        raise ValueError("more than one session-level i= line")
                    info = value
                elif current.title is not None:
                    raise ValueError("more than one i= line in a media section")
                else:
                    current.title = value
            elif kind == "k":
                if current is None:
                    if key is not None:
                        raise ValueError("more than one session-level k= line")
                    key = value
                elif current.key is not None:
                    raise ValueError("more than one k= line in a media section")
                else:
                    current.key = value
            elif kind in _SESSION_ONLY:
                if current is not None:
                    raise ValueError(f"{kind}= is not allowed inside a media section")
                if kind == "o":
                    if origin is not None:
                        raise ValueError("more than one o= line")
                    fields = value.split()
                    if len(fields) != 6:
                        raise ValueError("o= needs 6 fields")
                    origin = Origin(
                        fields[0],
                        _number(fields[1], "session id"),
                        _number(fields[2], "session version"),
                        fields[3],
                        fields[4],
                        fields[5],
                    )
                elif kind == "s":
                    if name is not None:
                        raise ValueError("more than one s= line")
                    name = value
                elif kind == "t":
                    fields = value.split()
                    if len(fields) != 2:
                        raise ValueError("t= needs a start and a stop time")
                    timings.append(
                        (_number(fields[0], "start time"), _number(fields[1], "stop time"), [])
                    )
                elif kind == "u":
                    if uri is not None:
                        raise ValueError("more than one u= line")
                    uri = value
                elif kind == "e":
                    emails.append(value)
                elif kind == "p":
                    phones.append(value)
                elif kind == "z":
                    if zone is not None:
                        raise ValueError("more than one z= line")
                    zone = value
                else:
                    raise ValueError("more than one v= line")
            elif kind == "r":
                if current is not None or not timings:
                    raise ValueError("r= must follow a t= line")
                timings[-1][2].append(value)
            elif kind.isascii() and kind.isalpha():
                entry = UnknownLine(kind, value)
                (unknown if current is None else current.unknown).append(entry)
            else:
                raise ValueError(f"invalid line type {kind!r}")
        except SdpError:
            raise
        except ValueError as exc:
            raise SdpError(str(exc), number) from None
    if not seen_version:
        raise SdpError("empty session description")
    if current is not None:
        media.append(current.build())
    if origin is None:
        raise SdpError("missing o= line")
    try:
        return SessionDescription(
            origin=origin,
            session_name="-" if name is None else name,
            info=info,
            uri=uri,
            emails=tuple(emails),
            phones=tuple(phones),
            connection=connection,
            bandwidths=tuple(bandwidths),
            timings=tuple(Timing(s, e, tuple(r)) for s, e, r in timings) or (Timing(),),
            zone_adjustments=zone,
            key=key,
            attributes=tuple(attributes),
            media=tuple(media),
            unknown_lines=tuple(unknown),
        )
    except ValueError as exc:
        raise SdpError(str(exc)) from None


def _lines(out: list[str], prefix: str, values: tuple[str, ...]) -> None:
    for value in values:
        out.append(prefix + value)


def _attributes(out: list[str], attributes: tuple[Attribute, ...]) -> None:
    for attribute in attributes:
        value = attribute.value
        out.append(f"a={attribute.name}" if value is None else f"a={attribute.name}:{value}")


def serialize_sdp(sd: SessionDescription) -> bytes:
    """Write ``sd`` canonically: RFC 8866 §5 line order, CRLF ends, UTF-8.

    ``parse_sdp(serialize_sdp(sd)) == sd`` holds for every description the
    model accepts.
    """
    o = sd.origin
    out = [
        "v=0",
        f"o={o.username} {o.session_id} {o.session_version} {o.nettype} {o.addrtype} {o.address}",
        f"s={sd.session_name or ' '}",
    ]
    if sd.info is not None:
        out.append("i=" + sd.info)
    if sd.uri is not None:
        out.append("u=" + sd.uri)
    _lines(out, "e=", sd.emails)
    _lines(out, "p=", sd.phones)
    if sd.connection is not None:
        c = sd.connection
        out.append(f"c={c.nettype} {c.addrtype} {c.address}")
    for bw in sd.bandwidths:
        out.append(f"b={bw.bwtype}:{bw.bandwidth}")
    for timing in sd.timings:
        out.append(f"t={timing.start} {timing.stop}")
        _lines(out, "r=", timing.repeats)
    if sd.zone_adjustments is not None:
        out.append("z=" + sd.zone_adjustments)
    if sd.key is not None:
        out.append("k=" + sd.key)
    _attributes(out, sd.attributes)
    for line in sd.unknown_lines:
        out.append(f"{line.letter}={line.value}")
    for m in sd.media:
        port = m.port if m.port_count is None else f"{m.port}/{m.port_count}"
        out.append(f"m={m.media} {port} {m.proto} {' '.join(m.formats)}")
        if m.title is not None:
            out.append("i=" + m.title)
        for c in m.connections:
            out.append(f"c={c.nettype} {c.addrtype} {c.address}")
        for bw in m.bandwidths:
            out.append(f"b={bw.bwtype}:{bw.bandwidth}")
        if m.key is not None:
            out.append("k=" + m.key)
        _attributes(out, m.attributes)
        for line in m.unknown_lines:
            out.append(f"{line.letter}={line.value}")
    out.append("")
    return "\r\n".join(out).encode("utf-8")
