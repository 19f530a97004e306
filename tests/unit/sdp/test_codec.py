"""Tests of the SDP reader and writer (RFC 8866 §5) on real-world and broken input."""

from __future__ import annotations

import pathlib

import pytest

from telavox.sip.sdp import (
    Attribute,
    Bandwidth,
    Connection,
    Direction,
    MediaDescription,
    Origin,
    SdpError,
    SessionDescription,
    Timing,
    UnknownLine,
    parse_sdp,
    serialize_sdp,
)

DATA = pathlib.Path(__file__).parent.parent.parent / "data" / "sdp"
FIXTURES = sorted(p.name for p in DATA.glob("*.sdp"))


def load(name: str) -> bytes:
    """A fixture with CRLF line ends whatever the checkout did to them."""
    raw = (DATA / name).read_bytes()
    return raw.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def crlf(text: str) -> bytes:
    """LF-separated test text as CRLF bytes."""
    return text.replace("\n", "\r\n").encode()


def test_fixtures_are_present() -> None:
    """Every real-world fixture named by the tests is in tests/data/sdp."""
    assert set(FIXTURES) >= {
        "yealink_offer.sdp",
        "polycom_offer.sdp",
        "baresip_offer.sdp",
        "sipp_minimal.sdp",
        "video_offer.sdp",
        "webrtc_offer.sdp",
        "ipv6_offer.sdp",
        "hold_sendonly.sdp",
        "hold_legacy.sdp",
        "full_session.sdp",
    }


@pytest.mark.parametrize("name", FIXTURES)
def test_canonical_fixture_round_trips_byte_for_byte(name: str) -> None:
    """A canonical (CRLF, §5 order) description is written back exactly as read."""
    raw = load(name)
    assert serialize_sdp(parse_sdp(raw)) == raw


@pytest.mark.parametrize("name", FIXTURES)
def test_fixture_model_round_trips(name: str) -> None:
    """Parsing the written form of a parsed fixture gives an equal model."""
    sd = parse_sdp(load(name))
    assert parse_sdp(serialize_sdp(sd)) == sd


def test_desk_phone_offer_is_read_field_by_field() -> None:
    """A Yealink-style offer yields the origin, connection, formats and attributes."""
    sd = parse_sdp(load("yealink_offer.sdp"))
    assert sd.origin == Origin("-", 20024, 20024, "IN", "IP4", "192.168.1.50")
    assert sd.session_name == "SDP data"
    assert sd.connection == Connection("IN", "IP4", "192.168.1.50")
    assert sd.timings == (Timing(0, 0),)
    (audio,) = sd.media
    assert (audio.media, audio.port, audio.proto) == ("audio", 11796, "RTP/AVP")
    assert audio.formats == ("0", "8", "9", "18", "101")
    assert audio.attributes[0] == Attribute("rtpmap", "0 PCMU/8000")
    assert Attribute("sendrecv") in audio.attributes
    assert audio.ptime == 20
    assert audio.fmtp(18) == "annexb=no"


def test_sipp_minimal_offer() -> None:
    """The smallest usual offer (SIPp's default) parses with one PCMU stream."""
    sd = parse_sdp(load("sipp_minimal.sdp"))
    assert sd.origin.username == "user1"
    assert sd.origin.session_version == 2353687637
    assert [m.formats for m in sd.media] == [("0",)]


def test_baresip_offer_keeps_session_attribute_and_bandwidth() -> None:
    """baresip's session-level a=tool and media-level b=AS are kept in place."""
    sd = parse_sdp(load("baresip_offer.sdp"))
    assert sd.attributes == (Attribute("tool", "baresip 3.10.1"),)
    assert sd.media[0].bandwidths == (Bandwidth("AS", 128),)
    assert sd.media[0].attributes[-1].value == (
        "2390853617 cname:7ee7b8b8-1b86-4a0f-9ea1-bd0f0ff2a6c7"
    )


def test_webrtc_offer_keeps_every_attribute_in_order() -> None:
    """All attributes of a WebRTC offer survive, in order, including ones with
    colons and spaces in their values; the datachannel section has no RTP."""
    raw = load("webrtc_offer.sdp")
    sd = parse_sdp(raw)
    written = [line for line in raw.decode().split("\r\n") if line.startswith("a=")]
    names = [a.name for a in sd.attributes] + [a.name for m in sd.media for a in m.attributes]
    assert len(names) == len(written)
    assert sd.attributes[2] == Attribute(
        "msid-semantic", " WMS 3c9e1f4e-58a1-4b4c-a2a2-6f0d7e1d2c11"
    )
    assert sd.connection is None
    assert sd.media[0].connection == Connection("IN", "IP4", "203.0.113.5")
    assert sd.media[2].formats == ("webrtc-datachannel",)
    assert not sd.media[2].is_rtp
    assert sd.media[0].proto == "UDP/TLS/RTP/SAVPF"


def test_ipv6_offer() -> None:
    """IP6 origin and connection addresses are kept; a=rtcp gives the RTCP port."""
    sd = parse_sdp(load("ipv6_offer.sdp"))
    assert sd.connection == Connection("IN", "IP6", "2001:db8::10")
    assert sd.origin.addrtype == "IP6"
    assert sd.media[0].rtcp == 30001


def test_full_session_keeps_every_line_type() -> None:
    """i= u= e= p= b= r= z= k=, multicast c= with TTL, several media c= lines,
    m= port counts and unknown line types are all kept."""
    sd = parse_sdp(load("full_session.sdp"))
    assert sd.info == "Audio and video for the planning meeting"
    assert sd.uri == "https://conference.example.net/planning"
    assert sd.emails == ("Alice Example <alice@example.net>", "ops@example.net")
    assert sd.phones == ("+44 20 7946 0000",)
    assert sd.connection is not None and sd.connection.address == "233.252.0.1/127"
    assert sd.connection.host == "233.252.0.1"
    assert sd.bandwidths == (Bandwidth("CT", 512),)
    assert sd.timings == (
        Timing(3034423619, 3042462419, ("7d 1h 0 25h", "604800 3600 0 90000")),
        Timing(0, 0),
    )
    assert sd.zone_adjustments == "2882844526 -1h 2898848070 0"
    assert sd.key == "prompt"
    assert sd.direction is Direction.RECVONLY
    assert sd.unknown_lines == (UnknownLine("x", "an unknown line kept as written"),)
    audio, video, app = sd.media
    assert audio.port_count == 2
    assert audio.title == "Main audio"
    assert len(audio.connections) == 2
    assert audio.key == "prompt"
    assert audio.maxptime == 60
    assert audio.unknown_lines == (UnknownLine("y", "media level unknown line"),)
    assert video.port == 0 and video.attributes == ()
    assert app.proto == "udp" and app.formats == ("wb",)


# --- leniency ------------------------------------------------------------------------


def test_bare_lf_and_trailing_whitespace_are_accepted() -> None:
    """LF-only line ends, trailing blanks and blank lines do not change the model."""
    canonical = load("yealink_offer.sdp")
    sloppy = canonical.decode().replace("\r\n", "  \t\n").replace("t=0 0", "t=0 0\n\n")
    assert parse_sdp(sloppy.encode()) == parse_sdp(canonical)


def test_byte_order_mark_is_skipped() -> None:
    """A UTF-8 byte order mark before v=0 is ignored."""
    raw = load("sipp_minimal.sdp")
    assert parse_sdp(b"\xef\xbb\xbf" + raw) == parse_sdp(raw)


def test_str_input_equals_bytes_input() -> None:
    """parse_sdp accepts str as well as bytes."""
    raw = load("polycom_offer.sdp")
    assert parse_sdp(raw.decode()) == parse_sdp(raw)


def test_missing_s_and_t_get_defaults() -> None:
    """Without s= the name is '-', without t= there is one 't=0 0'."""
    sd = parse_sdp("v=0\no=- 1 1 IN IP4 10.0.0.1\nc=IN IP4 10.0.0.1\nm=audio 4000 RTP/AVP 0\n")
    assert sd.session_name == "-"
    assert sd.timings == (Timing(0, 0),)
    assert serialize_sdp(sd).startswith(b"v=0\r\no=- 1 1 IN IP4 10.0.0.1\r\ns=-\r\nc=")


def test_empty_session_name_is_written_as_a_space() -> None:
    """'s= ' (the RFC's empty name) reads as '' and is written back as 's= '."""
    sd = parse_sdp(crlf("v=0\no=- 1 1 IN IP4 10.0.0.1\ns= \nt=0 0\n"))
    assert sd.session_name == ""
    assert b"\r\ns= \r\n" in serialize_sdp(sd)


def test_session_lines_out_of_order_are_written_in_rfc_order() -> None:
    """Session-level lines in a wrong order are read and written in §5 order."""
    sd = parse_sdp("v=0\no=- 1 1 IN IP4 h\nt=0 0\na=x\nc=IN IP4 h\ns=n\nb=AS:1\n")
    assert serialize_sdp(sd) == crlf("v=0\no=- 1 1 IN IP4 h\ns=n\nc=IN IP4 h\nb=AS:1\nt=0 0\na=x\n")


def test_attribute_value_forms() -> None:
    """'a=x' has no value, 'a=x:' an empty one, and only the first colon splits."""
    sd = parse_sdp("v=0\no=- 1 1 IN IP4 h\na=flag\na=empty:\na=ice:a:b:c\n")
    assert sd.attributes == (
        Attribute("flag"),
        Attribute("empty", ""),
        Attribute("ice", "a:b:c"),
    )
    assert serialize_sdp(sd).endswith(b"a=flag\r\na=empty:\r\na=ice:a:b:c\r\n")


def test_non_ascii_text_is_utf8() -> None:
    """UTF-8 text in s= and attribute values is read and written as UTF-8."""
    raw = crlf("v=0\no=- 1 1 IN IP4 h\ns=Café ☎\nt=0 0\na=label:Grüße\n")
    sd = parse_sdp(raw)
    assert sd.session_name == "Café ☎"
    assert serialize_sdp(sd) == raw


def test_serializer_uses_crlf_and_ends_with_one() -> None:
    """Every written line ends in CRLF, including the last."""
    sd = SessionDescription(
        origin=Origin("-", 1, 1, "IN", "IP4", "h"),
        media=(MediaDescription(media="audio", port=1, proto="RTP/AVP", formats=("0",)),),
    )
    out = serialize_sdp(sd)
    assert out == b"v=0\r\no=- 1 1 IN IP4 h\r\ns=-\r\nt=0 0\r\nm=audio 1 RTP/AVP 0\r\n"
    assert b"\n" not in out.replace(b"\r\n", b"")


# --- malformed input -----------------------------------------------------------------

GOOD = "v=0\no=- 1 1 IN IP4 10.0.0.1\ns=-\nc=IN IP4 10.0.0.1\nt=0 0\n"

MALFORMED = {
    "empty": b"",
    "only whitespace": b"  \r\n\t\n \n",
    "missing v=": b"o=- 1 1 IN IP4 h\r\ns=-\r\nt=0 0\r\n",
    "v= not first": b"o=- 1 1 IN IP4 h\r\nv=0\r\n",
    "version 1": b"v=1\r\no=- 1 1 IN IP4 h\r\n",
    "two v=": b"v=0\r\nv=0\r\no=- 1 1 IN IP4 h\r\n",
    "missing o=": b"v=0\r\ns=-\r\nt=0 0\r\n",
    "o= short": b"v=0\r\no=- 1 1 IN IP4\r\n",
    "o= id not numeric": b"v=0\r\no=- abc 1 IN IP4 h\r\n",
    "o= id huge": b"v=0\r\no=- " + b"9" * 5000 + b" 1 IN IP4 h\r\n",
    "two o=": b"v=0\r\no=- 1 1 IN IP4 h\r\no=- 1 1 IN IP4 h\r\n",
    "garbage line": (GOOD + "hello world\n").encode(),
    "missing =": (GOOD + "a\n").encode(),
    "two-letter type": (GOOD + "ab=c\n").encode(),
    "digit type": (GOOD + "1=c\n").encode(),
    "port 70000": (GOOD + "m=audio 70000 RTP/AVP 0\n").encode(),
    "port negative": (GOOD + "m=audio -1 RTP/AVP 0\n").encode(),
    "non-numeric port": (GOOD + "m=audio abc RTP/AVP 0\n").encode(),
    "huge port": (GOOD + "m=audio " + "1" * 400 + " RTP/AVP 0\n").encode(),
    "unicode digit port": (GOOD + "m=audio \u0664\u0660\u0660\u0660 RTP/AVP 0\n").encode(),
    "port count zero": (GOOD + "m=audio 4000/0 RTP/AVP 0\n").encode(),
    "m= without formats": (GOOD + "m=audio 4000 RTP/AVP\n").encode(),
    "m= empty": (GOOD + "m=\n").encode(),
    "NUL byte": (GOOD + "a=x\x00y\n").encode(),
    "NUL in str": GOOD + "s=\x00\n",
    "invalid UTF-8": GOOD.encode() + b"a=label:\xff\xfe\r\n",
    "lone surrogate in str": GOOD + "a=x:\ud800\n",
    "CR inside a line": (GOOD + "a=x\ry\n").encode(),
    "c= short": (GOOD + "m=audio 1 RTP/AVP 0\nc=IN IP4\n").encode(),
    "two session c=": (GOOD + "c=IN IP4 10.0.0.2\n").encode(),
    "b= without colon": (GOOD + "b=AS\n").encode(),
    "b= not numeric": (GOOD + "b=AS:fast\n").encode(),
    "t= one field": b"v=0\r\no=- 1 1 IN IP4 h\r\nt=0\r\n",
    "t= huge": b"v=0\r\no=- 1 1 IN IP4 h\r\nt=0 " + b"1" * 30 + b"\r\n",
    "r= before t=": b"v=0\r\no=- 1 1 IN IP4 h\r\nr=1d 1h 0\r\n",
    "t= in media": (GOOD + "m=audio 1 RTP/AVP 0\nt=0 0\n").encode(),
    "o= in media": (GOOD + "m=audio 1 RTP/AVP 0\no=- 1 1 IN IP4 h\n").encode(),
    "two i= in media": (GOOD + "m=audio 1 RTP/AVP 0\ni=a\ni=b\n").encode(),
    "empty attribute name": (GOOD + "a=\n").encode(),
    "attribute name with space": (GOOD + "a=foo bar:1\n").encode(),
    "control character in token": (GOOD + "m=audio 1 RTP/AVP 0\x01\n").encode(),
}


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_input_raises_sdp_error(name: str) -> None:
    """Each broken description raises SdpError (a ValueError) and nothing else."""
    with pytest.raises(SdpError) as info:
        parse_sdp(MALFORMED[name])
    assert isinstance(info.value, ValueError)
    assert str(info.value)


def test_error_names_the_line() -> None:
    """The error says which line is wrong and what is wrong with it."""
    with pytest.raises(SdpError) as info:
        parse_sdp((GOOD + "m=audio 70000 RTP/AVP 0\n").encode())
    assert info.value.line == 6
    assert str(info.value) == "line 6: port 70000 out of range 0-65535"


def test_error_for_bad_utf8_names_the_line() -> None:
    """Invalid UTF-8 is reported with the line it is on."""
    with pytest.raises(SdpError) as info:
        parse_sdp(b"v=0\r\no=- 1 1 IN IP4 h\r\ns=\xc3\r\n")
    assert info.value.line == 3
    assert "UTF-8" in str(info.value)


def test_wrong_argument_type_is_a_type_error() -> None:
    """Only bytes-like and str are descriptions; anything else is a TypeError."""
    with pytest.raises(TypeError):
        parse_sdp(42)  # type: ignore[arg-type]
