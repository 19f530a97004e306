"""Tests of the SDP value model: validation, typed views and modified copies."""

from __future__ import annotations

import attrs
import pytest

from telavox.sip.sdp import (
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
    parse_sdp,
)

ORIGIN = Origin("-", 1, 1, "IN", "IP4", "10.0.0.1")


def media(*attributes: Attribute, formats: tuple[str, ...] = ("0",)) -> MediaDescription:
    """An audio m= section with the given attributes and formats."""
    return MediaDescription(
        media="audio", port=4000, proto="RTP/AVP", formats=formats, attributes=attributes
    )


# --- validation ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [
        lambda: Origin("a b", 1, 1, "IN", "IP4", "h"),
        lambda: Origin("-", -1, 1, "IN", "IP4", "h"),
        lambda: Origin("-", 10**20, 1, "IN", "IP4", "h"),
        lambda: Connection("IN", "IP4", ""),
        lambda: Bandwidth("A:S", 1),
        lambda: Attribute("a:b"),
        lambda: Attribute("x", "trailing "),
        lambda: Attribute("x", "line\r\nbreak"),
        lambda: Attribute("x", "nul\x00"),
        lambda: UnknownLine("a", "known letter"),
        lambda: UnknownLine("xy", "two letters"),
        lambda: Timing(-1, 0),
        lambda: MediaDescription(media="audio", port=65536, proto="RTP/AVP", formats=("0",)),
        lambda: MediaDescription(media="audio", port=1, proto="RTP/AVP", formats=()),
        lambda: MediaDescription(media="audio", port=1, proto="RTP/AVP", formats=("a b",)),
        lambda: SessionDescription(origin=ORIGIN, timings=()),
        lambda: SessionDescription(origin=ORIGIN, version=1),
        lambda: SessionDescription(origin=ORIGIN, session_name="tab\t"),
        lambda: RtpMap(128, "x", 8000),
    ],
)
def test_model_refuses_values_the_wire_form_cannot_carry(make: object) -> None:
    """Values that could not be written and read back are refused at construction."""
    with pytest.raises(ValueError):
        make()  # type: ignore[operator]


@pytest.mark.parametrize(
    "make",
    [
        lambda: Origin("-", "1", 1, "IN", "IP4", "h"),
        lambda: Attribute(b"x"),
        lambda: SessionDescription(origin=ORIGIN, media=[]),
        lambda: MediaDescription(media="audio", port=True, proto="RTP/AVP", formats=("0",)),
    ],
)
def test_model_refuses_wrong_types(make: object) -> None:
    """Wrong Python types (str for int, bytes for str, list for tuple, bool) are TypeErrors."""
    with pytest.raises(TypeError):
        make()  # type: ignore[operator]


def test_values_are_frozen_and_hashable() -> None:
    """Model values cannot be changed in place and can key a dict."""
    sd = SessionDescription(origin=ORIGIN, media=(media(),))
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        sd.session_name = "x"  # type: ignore[misc]
    assert {sd: 1}[SessionDescription(origin=ORIGIN, media=(media(),))] == 1


# --- typed views -----------------------------------------------------------------------


def test_rtpmaps_follow_formats_and_fall_back_to_static_types() -> None:
    """rtpmaps are ordered like the formats; static types need no a=rtpmap
    (RFC 3551), unknown dynamic ones without a map are left out."""
    m = media(
        Attribute("rtpmap", "96 opus/48000/2"),
        Attribute("rtpmap", "101 telephone-event/8000"),
        formats=("96", "0", "8", "9", "18", "13", "97", "101"),
    )
    assert list(m.rtpmaps) == [96, 0, 8, 9, 18, 13, 101]
    assert m.rtpmaps[96] == RtpMap(96, "opus", 48000, 2)
    assert m.rtpmaps[0] == RtpMap(0, "PCMU", 8000)
    assert m.rtpmaps[9] == RtpMap(9, "G722", 8000)
    assert m.rtpmaps[18].encoding == "G729"
    assert m.rtpmaps[13].encoding == "CN"


def test_static_table_has_rfc3551_entries() -> None:
    """The static payload table holds the RFC 3551 audio and video types."""
    assert STATIC_PAYLOAD_TYPES[3].encoding == "GSM"
    assert STATIC_PAYLOAD_TYPES[4].encoding == "G723"
    assert STATIC_PAYLOAD_TYPES[34] == RtpMap(34, "H263", 90000)
    assert STATIC_PAYLOAD_TYPES[10].channels == 2
    assert 96 not in STATIC_PAYLOAD_TYPES


def test_explicit_rtpmap_overrides_static_meaning() -> None:
    """An a=rtpmap for a static number wins over the table."""
    m = media(Attribute("rtpmap", "0 pcmu/8000"))
    assert m.rtpmaps[0].encoding == "pcmu"


@pytest.mark.parametrize(
    "value",
    [
        "",
        "96",
        "96 opus",
        "x opus/48000",
        "96 opus/fast",
        "96 opus/48000/2/1",
        "300 x/8000",
        "96 opus/48000/0",
        "96 /8000",
        "96 opus/0",
    ],
)
def test_malformed_rtpmap_is_ignored(value: str) -> None:
    """A malformed a=rtpmap is skipped by the typed view, never raises."""
    m = media(Attribute("rtpmap", value), formats=("96",))
    assert m.rtpmaps == {}
    assert RtpMap.parse(value) is None


def test_rtpmap_value_omits_single_channel() -> None:
    """RtpMap.value is the attribute text; one channel is left implicit."""
    assert RtpMap(0, "PCMU", 8000).value == "0 PCMU/8000"
    assert RtpMap(96, "opus", 48000, 2).value == "96 opus/48000/2"


def test_fmtp_lookup() -> None:
    """fmtp(pt) gives the parameters of the matching a=fmtp, by int or str."""
    m = media(Attribute("fmtp", "96 mode=30"), Attribute("fmtp", "101 0-16"), Attribute("fmtp"))
    assert m.fmtp(96) == "mode=30"
    assert m.fmtp("101") == "0-16"
    assert m.fmtp(8) is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [("20", 20), ("30.0", 30), (" 40", 40), ("0", None), ("x", None), ("9" * 50, None)],
)
def test_ptime(value: str, expected: int | None) -> None:
    """ptime reads whole milliseconds and ignores nonsense."""
    assert media(Attribute("ptime", value)).ptime == expected


def test_ptime_absent() -> None:
    """No a=ptime means ptime None."""
    assert media().ptime is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [("53020", 53020), ("53020 IN IP4 126.16.64.4", 53020), ("70000", None), ("", None)],
)
def test_rtcp_port(value: str, expected: int | None) -> None:
    """rtcp gives the RFC 3605 port and ignores out-of-range or empty values."""
    assert media(Attribute("rtcp", value)).rtcp == expected


def test_direction_defaults_and_session_fallback() -> None:
    """Media direction wins, else the session-level one, else sendrecv (§6.7)."""
    plain = media()
    held = media(Attribute("sendonly"))
    sd = SessionDescription(origin=ORIGIN, media=(plain, held))
    assert plain.direction is None
    assert sd.media_direction(plain) is Direction.SENDRECV
    assert sd.media_direction(held) is Direction.SENDONLY
    inactive = sd.with_attribute("inactive")
    assert inactive.media_direction(plain) is Direction.INACTIVE
    assert inactive.media_direction(held) is Direction.SENDONLY


def test_direction_flags_and_reverse() -> None:
    """Direction knows whether the describing side sends and receives."""
    assert Direction.SENDONLY.reverse() is Direction.RECVONLY
    assert Direction.INACTIVE.reverse() is Direction.INACTIVE
    assert Direction.from_flags(True, True) is Direction.SENDRECV
    assert not Direction.RECVONLY.sends and Direction.RECVONLY.receives


def test_media_connection_prefers_media_level() -> None:
    """The media-level c= overrides the session-level one."""
    session_c = Connection("IN", "IP4", "10.0.0.1")
    media_c = Connection("IN", "IP4", "10.0.0.2")
    sd = SessionDescription(origin=ORIGIN, connection=session_c, media=(media(),))
    assert sd.media_connection(sd.media[0]) == session_c
    assert sd.media_connection(sd.media[0].with_connection(media_c)) == media_c


def test_unspecified_connection() -> None:
    """0.0.0.0 is the RFC 2543 hold address."""
    assert Connection("IN", "IP4", "0.0.0.0").is_unspecified
    assert not Connection("IN", "IP4", "10.0.0.1").is_unspecified


# --- copies ----------------------------------------------------------------------------


def test_with_direction_replaces_in_place() -> None:
    """with_direction puts the new attribute where the old one was."""
    m = media(Attribute("rtpmap", "0 PCMU/8000"), Attribute("sendrecv"), Attribute("ptime", "20"))
    held = m.with_direction(Direction.SENDONLY)
    assert held.attributes == (
        Attribute("rtpmap", "0 PCMU/8000"),
        Attribute("sendonly"),
        Attribute("ptime", "20"),
    )
    assert held.with_direction(None).direction is None
    assert media().with_direction(Direction.INACTIVE).attributes == (Attribute("inactive"),)
    assert m.direction is Direction.SENDRECV


def test_attribute_helpers() -> None:
    """with_attribute appends, without_attribute removes all, look-ups find them."""
    m = media().with_attribute("ssrc", "1 cname:a").with_attribute("ssrc", "2 cname:b")
    assert m.attribute_values("ssrc") == ("1 cname:a", "2 cname:b")
    assert m.attribute("ssrc") == Attribute("ssrc", "1 cname:a")
    assert m.has_attribute("ssrc")
    assert not m.without_attribute("ssrc").has_attribute("ssrc")
    assert m.attribute("nothing") is None


def test_with_media_and_port() -> None:
    """with_media swaps one section; with_port makes a disabled copy."""
    sd = SessionDescription(origin=ORIGIN, media=(media(), media()))
    changed = sd.with_media(1, sd.media[1].with_port(0))
    assert [m.port for m in changed.media] == [4000, 0]
    assert [m.port for m in sd.media] == [4000, 4000]


def test_rtpmaps_is_read_only() -> None:
    """The typed rtpmap view cannot be changed by callers."""
    m = parse_sdp("v=0\no=- 1 1 IN IP4 h\nm=audio 1 RTP/AVP 0\n").media[0]
    with pytest.raises(TypeError):
        m.rtpmaps[1] = RtpMap(1, "x", 8000)  # type: ignore[index]
