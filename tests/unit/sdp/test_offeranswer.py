"""Tests of RFC 3264 offer/answer: offers, answers, answer checking and re-offers."""

from __future__ import annotations

import pathlib

import pytest

from telavox.sip.sdp import (
    Codec,
    Direction,
    MediaCapabilities,
    NegotiatedStream,
    OfferAnswerError,
    RtpMap,
    SessionDescription,
    create_answer,
    create_offer,
    negotiate_answer,
    next_version,
    parse_sdp,
    reoffer,
    serialize_sdp,
    set_direction,
)

DATA = pathlib.Path(__file__).parent.parent.parent / "data" / "sdp"

AUDIO = MediaCapabilities(
    media="audio",
    codecs=(
        Codec("PCMU", 8000),
        Codec("PCMA", 8000),
        Codec("G722", 8000),
        Codec("opus", 48000, 2, fmtp="useinbandfec=1"),
    ),
    telephone_events="0-16",
    ptime=20,
)
VIDEO = MediaCapabilities(
    media="video",
    codecs=(
        Codec("H264", 90000, fmtp="profile-level-id=42e01f;packetization-mode=1"),
        Codec("VP8", 90000),
    ),
)
PORTS = {"audio": 30000, "video": 30002}


def fixture(name: str) -> SessionDescription:
    """A parsed fixture from tests/data/sdp."""
    return parse_sdp((DATA / name).read_bytes())


def sdp(body: str, *, header: str = "c=IN IP4 192.0.2.1\n") -> SessionDescription:
    """A description from a few lines, with v/o/s/c/t filled in."""
    return parse_sdp("v=0\no=- 1 1 IN IP4 192.0.2.1\ns=-\n" + header + "t=0 0\n" + body)


def answer(
    offer: SessionDescription, **kwargs: object
) -> tuple[SessionDescription, list[NegotiatedStream]]:
    """Answer ``offer`` with audio+video capabilities unless ``caps`` is given."""
    caps = kwargs.pop("caps", (AUDIO, VIDEO))
    ans, result = create_answer(offer, caps, "198.51.100.5", PORTS, 77, 1, **kwargs)  # type: ignore[arg-type]
    return ans, list(result.streams)


# --- offers ----------------------------------------------------------------------------


def test_offer_uses_static_then_dynamic_payload_types() -> None:
    """Static types for PCMU/PCMA/G722, dynamic from 96 for opus and
    telephone-event, an a=rtpmap for every format, ptime and direction."""
    offer = create_offer(AUDIO, "198.51.100.5", {"audio": 30000}, 1234, 1)
    assert serialize_sdp(offer) == (
        b"v=0\r\no=- 1234 1 IN IP4 198.51.100.5\r\ns=-\r\nc=IN IP4 198.51.100.5\r\nt=0 0\r\n"
        b"m=audio 30000 RTP/AVP 0 8 9 96 97\r\n"
        b"a=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:9 G722/8000\r\n"
        b"a=rtpmap:96 opus/48000/2\r\na=fmtp:96 useinbandfec=1\r\n"
        b"a=rtpmap:97 telephone-event/8000\r\na=fmtp:97 0-16\r\n"
        b"a=ptime:20\r\na=sendrecv\r\n"
    )


def test_offer_honours_preferred_payload_types() -> None:
    """A codec's preferred payload type is used; dynamic numbering skips it."""
    caps = MediaCapabilities(
        codecs=(
            Codec("opus", 48000, 2, payload_type=96),
            Codec("speex", 16000),
            Codec("PCMU", 8000),
        ),
        telephone_events="0-15",
        telephone_event_payload_type=101,
    )
    offer = create_offer(caps, "10.0.0.1", {"audio": 4000}, 1, 1)
    assert offer.media[0].formats == ("96", "97", "0", "101")
    assert offer.media[0].rtpmaps[101] == RtpMap(101, "telephone-event", 8000)


def test_offer_direction_and_ipv6() -> None:
    """The direction argument is written; an IPv6 address gives IP6 lines."""
    offer = create_offer(AUDIO, "2001:db8::5", {"audio": 4000}, 1, 1, Direction.SENDONLY)
    assert offer.connection is not None and offer.connection.addrtype == "IP6"
    assert offer.origin.addrtype == "IP6"
    assert offer.media[0].direction is Direction.SENDONLY


def test_offer_media_follow_capabilities_with_ports() -> None:
    """One m= line per capability that has a port, in capability order."""
    offer = create_offer((AUDIO, VIDEO), "10.0.0.1", PORTS, 1, 1)
    assert [(m.media, m.port) for m in offer.media] == [("audio", 30000), ("video", 30002)]
    assert offer.media[1].formats == ("96", "97")
    assert offer.media[1].fmtp(96) == "profile-level-id=42e01f;packetization-mode=1"
    assert not any(r.encoding == "telephone-event" for r in offer.media[1].rtpmaps.values())
    only_audio = create_offer((AUDIO, VIDEO), "10.0.0.1", {"audio": 1}, 1, 1)
    assert [m.media for m in only_audio.media] == ["audio"]


def test_offer_errors() -> None:
    """Colliding payload types and nothing to offer are ValueErrors."""
    clash = MediaCapabilities(
        codecs=(Codec("a", 8000, payload_type=96), Codec("b", 8000, payload_type=96))
    )
    with pytest.raises(ValueError):
        create_offer(clash, "10.0.0.1", {"audio": 1}, 1, 1)
    with pytest.raises(ValueError):
        create_offer(AUDIO, "10.0.0.1", {"video": 1}, 1, 1)
    with pytest.raises(ValueError):
        Codec("x", 8000, payload_type=128)
    with pytest.raises(ValueError):
        MediaCapabilities(codecs=())


# --- answers ---------------------------------------------------------------------------


def test_answer_to_desk_phone_keeps_our_order_and_offer_numbers() -> None:
    """Common codecs in our order with the offer's numbers; G729 is dropped;
    telephone-event events are intersected (0-16 with 0-15)."""
    ans, (stream,) = answer(fixture("yealink_offer.sdp"))
    m = ans.media[0]
    assert m.formats == ("0", "8", "9", "101")
    assert m.fmtp(101) == "0-15"
    assert m.ptime == 20 and m.direction is Direction.SENDRECV
    assert ans.connection is not None and ans.connection.address == "198.51.100.5"
    assert ans.origin.session_id == 77
    assert stream.accepted and stream.payload_type == 0
    assert stream.rtpmap == RtpMap(0, "PCMU", 8000)
    assert [c.pt for c in stream.codecs] == [0, 8, 9]
    assert stream.telephone_event == 101 and stream.telephone_events == "0-15"
    assert (stream.remote_address, stream.remote_port, stream.remote_rtcp_port) == (
        "192.168.1.50",
        11796,
        11797,
    )
    assert stream.local_port == 30000 and stream.ptime == 20
    assert stream.direction is Direction.SENDRECV and not stream.remote_hold


def test_answer_can_honour_offerer_order() -> None:
    """With honour_offerer_order the offer's order wins (Polycom: G722 first)."""
    ans, (stream,) = answer(fixture("polycom_offer.sdp"), honour_offerer_order=True)
    assert ans.media[0].formats == ("9", "0", "8", "127")
    assert stream.payload_type == 9
    default, _ = answer(fixture("polycom_offer.sdp"))
    assert default.media[0].formats == ("0", "8", "9", "127")


def test_answer_without_fmtp_for_telephone_event_assumes_0_15() -> None:
    """An offered telephone-event without fmtp means events 0-15 (RFC 4733)."""
    ans, (stream,) = answer(fixture("polycom_offer.sdp"))
    assert stream.telephone_event == 127
    assert ans.media[0].fmtp(127) == "0-15"


def test_dynamic_payload_types_are_kept_and_matched_ignoring_case() -> None:
    """opus at 111 written as OPUS matches our opus; the answer keeps 111."""
    offer = sdp(
        "m=audio 5000 RTP/AVP 111 0 110\na=rtpmap:111 OPUS/48000/2\n"
        "a=rtpmap:110 telephone-event/48000\na=fmtp:110 0-11\n"
    )
    ans, (stream,) = answer(offer, honour_offerer_order=True)
    assert ans.media[0].formats == ("111", "0", "110")
    assert ans.media[0].rtpmaps[111] == RtpMap(111, "OPUS", 48000, 2)
    assert ans.media[0].fmtp(111) == "useinbandfec=1"
    assert stream.telephone_events == "0-11"


def test_channels_and_rate_must_match() -> None:
    """Same name at another rate or channel count is another codec."""
    offer = sdp("m=audio 5000 RTP/AVP 96 97\na=rtpmap:96 opus/48000\na=rtpmap:97 PCMU/16000\n")
    ans, (stream,) = answer(offer)
    assert ans.media[0].port == 0 and not stream.accepted
    assert stream.reason == "no codec in common"


def test_telephone_event_rate_follows_chosen_codec() -> None:
    """With telephone-event at two rates, the one at the chosen codec's rate is kept."""
    offer = sdp(
        "m=audio 5000 RTP/AVP 96 101 102\na=rtpmap:96 opus/48000/2\n"
        "a=rtpmap:101 telephone-event/8000\na=rtpmap:102 telephone-event/48000\n"
    )
    ans, (stream,) = answer(offer)
    assert ans.media[0].formats == ("96", "102")
    assert stream.telephone_event == 102


@pytest.mark.parametrize(
    ("ours", "theirs", "expected"),
    [("0-16", "32-36", None), ("0-16", "0-9,12,15-20", "0-9,12,15-16"), (None, "0-15", None)],
)
def test_telephone_event_intersection(ours: str | None, theirs: str, expected: str | None) -> None:
    """Events are intersected; with no overlap (or no support) telephone-event is left out."""
    caps = MediaCapabilities(codecs=(Codec("PCMU", 8000),), telephone_events=ours)
    offer = sdp(
        f"m=audio 5000 RTP/AVP 0 101\na=rtpmap:101 telephone-event/8000\na=fmtp:101 {theirs}\n"
    )
    ans, (stream,) = answer(offer, caps=caps)
    assert stream.telephone_events == expected
    assert ("101" in ans.media[0].formats) == (expected is not None)


def test_rejections_keep_line_count_order_and_formats() -> None:
    """Disabled, unsupported-media, SAVP, unknown-proto, second-audio and
    no-codec streams get port 0 with the offer's formats, in place (§6)."""
    offer = sdp(
        "m=audio 0 RTP/AVP 0\n"
        "m=audio 5000 RTP/SAVP 0\n"
        "m=text 5002 RTP/AVP 98\n"
        "m=audio 5004 RTP/AVP 18 0\n"
        "m=audio 5006 RTP/AVP 8\n"
        "m=video 5008 RTP/AVP 31\n"
        "m=application 5010 UDP/BFCP *\n"
    )
    ans, streams = answer(offer)
    assert [(m.media, m.port, m.proto) for m in ans.media] == [
        ("audio", 0, "RTP/AVP"),
        ("audio", 0, "RTP/SAVP"),
        ("text", 0, "RTP/AVP"),
        ("audio", 30000, "RTP/AVP"),
        ("audio", 0, "RTP/AVP"),
        ("video", 0, "RTP/AVP"),
        ("application", 0, "UDP/BFCP"),
    ]
    assert ans.media[0].formats == ("0",) and ans.media[6].formats == ("*",)
    assert ans.media[3].formats == ("0",)
    assert [s.accepted for s in streams] == [False, False, False, True, False, False, False]
    assert all(s.direction is Direction.INACTIVE for s in streams if not s.accepted)
    assert all(s.reason for s in streams if not s.accepted)


def test_rejected_when_offer_has_no_connection() -> None:
    """A stream without any c= line cannot be served."""
    ans, (stream,) = answer(sdp("m=audio 5000 RTP/AVP 0\n", header=""))
    assert ans.media[0].port == 0 and not stream.accepted


def test_savp_accepted_when_listed_in_capabilities() -> None:
    """A proto is accepted when our capabilities list it (case-insensitively)."""
    caps = MediaCapabilities(codecs=(Codec("PCMU", 8000),), protos=("RTP/AVP", "rtp/savp"))
    ans, (stream,) = answer(sdp("m=audio 5000 RTP/SAVP 0\n"), caps=caps)
    assert stream.accepted and ans.media[0].proto == "RTP/SAVP"


@pytest.mark.parametrize(
    ("offered", "intent", "expected"),
    [
        ("sendrecv", Direction.SENDRECV, Direction.SENDRECV),
        ("sendrecv", Direction.SENDONLY, Direction.SENDONLY),
        ("sendrecv", Direction.RECVONLY, Direction.RECVONLY),
        ("sendrecv", Direction.INACTIVE, Direction.INACTIVE),
        ("sendonly", Direction.SENDRECV, Direction.RECVONLY),
        ("sendonly", Direction.RECVONLY, Direction.RECVONLY),
        ("sendonly", Direction.SENDONLY, Direction.INACTIVE),
        ("sendonly", Direction.INACTIVE, Direction.INACTIVE),
        ("recvonly", Direction.SENDRECV, Direction.SENDONLY),
        ("recvonly", Direction.SENDONLY, Direction.SENDONLY),
        ("recvonly", Direction.RECVONLY, Direction.INACTIVE),
        ("inactive", Direction.SENDRECV, Direction.INACTIVE),
        ("inactive", Direction.SENDONLY, Direction.INACTIVE),
    ],
)
def test_direction_table(offered: str, intent: Direction, expected: Direction) -> None:
    """The answer direction follows RFC 3264 §6.1 given our intent."""
    ans, (stream,) = answer(sdp(f"m=audio 5000 RTP/AVP 0\na={offered}\n"), direction=intent)
    assert ans.media[0].direction is expected
    assert stream.direction is expected
    assert stream.remote_hold == (offered in ("sendonly", "inactive"))


def test_session_level_direction_applies() -> None:
    """A session-level a=sendonly holds every stream without its own attribute."""
    offer = parse_sdp(
        "v=0\no=- 1 1 IN IP4 h\ns=-\nc=IN IP4 192.0.2.1\nt=0 0\na=sendonly\n"
        "m=audio 5000 RTP/AVP 0\n"
    )
    ans, (stream,) = answer(offer)
    assert ans.media[0].direction is Direction.RECVONLY and stream.remote_hold


def test_hold_with_sendonly() -> None:
    """A sendonly re-offer is answered recvonly and flagged as remote hold."""
    ans, (stream,) = answer(fixture("hold_sendonly.sdp"))
    assert ans.media[0].direction is Direction.RECVONLY
    assert stream.remote_hold and stream.direction is Direction.RECVONLY


def test_hold_with_legacy_zero_address() -> None:
    """c=0.0.0.0 (RFC 2543 hold) is treated as 'does not receive'."""
    ans, (stream,) = answer(fixture("hold_legacy.sdp"))
    assert ans.media[0].direction is Direction.RECVONLY
    assert stream.remote_hold and stream.remote_address == "0.0.0.0"


def test_media_level_connection_and_rtcp_attribute() -> None:
    """Media-level c= overrides the session's; a=rtcp gives the RTCP port."""
    offer = sdp(
        "m=audio 5000 RTP/AVP 0\nc=IN IP4 203.0.113.9\na=rtcp:6001 IN IP4 203.0.113.9\na=ptime:30\n"
    )
    _, (stream,) = answer(offer)
    assert stream.remote_address == "203.0.113.9"
    assert stream.remote_rtcp_port == 6001 and stream.ptime == 30


def test_ipv6_offer_is_answered() -> None:
    """An IPv6 offer is served; the remote address is the IPv6 host."""
    _, (stream,) = answer(fixture("ipv6_offer.sdp"))
    assert stream.accepted and stream.remote_address == "2001:db8::10"
    assert stream.payload_type == 8 and stream.remote_rtcp_port == 30001


def test_video_negotiated_like_audio() -> None:
    """Video m= lines match by name and rate; the offer's numbers are kept and
    our fmtp is sent; without video capabilities the video line is rejected."""
    ans, (audio, video) = answer(fixture("video_offer.sdp"))
    assert ans.media[1].formats == ("99", "100")
    assert ans.media[1].fmtp(99) == "profile-level-id=42e01f;packetization-mode=1"
    assert video.accepted and video.rtpmap == RtpMap(99, "H264", 90000)
    assert video.fmtp == "profile-level-id=42e01f;packetization-mode=1"
    assert video.telephone_event is None and audio.telephone_events == "0-16"
    audio_only, streams = answer(fixture("video_offer.sdp"), caps=AUDIO)
    assert audio_only.media[1].port == 0 and audio_only.media[1].formats == ("99", "100", "34")
    assert [s.accepted for s in streams] == [True, False]


def test_webrtc_offer_is_rejected_without_savpf() -> None:
    """UDP/TLS/RTP/SAVPF and datachannel lines are refused with port 0."""
    ans, streams = answer(fixture("webrtc_offer.sdp"))
    assert [m.port for m in ans.media] == [0, 0, 0]
    assert not any(s.accepted for s in streams)


def test_auxiliary_codecs_are_never_chosen() -> None:
    """CN alone is not a codec in common; CN with PCMU keeps PCMU chosen."""
    caps = MediaCapabilities(codecs=(Codec("CN", 8000), Codec("PCMU", 8000)))
    _, (only_cn,) = answer(sdp("m=audio 5000 RTP/AVP 13\n"), caps=caps)
    assert not only_cn.accepted
    ans, (both,) = answer(sdp("m=audio 5000 RTP/AVP 0 13\n"), caps=caps)
    assert both.payload_type == 0 and ans.media[0].formats == ("13", "0")


def test_single_codec_answer() -> None:
    """single_codec keeps only the chosen codec (plus CN and telephone-event)."""
    ans, (stream,) = answer(fixture("yealink_offer.sdp"), single_codec=True)
    assert ans.media[0].formats == ("0", "101")
    assert [c.pt for c in stream.codecs] == [0]


# --- checking answers ------------------------------------------------------------------


def test_own_offer_and_answer_agree() -> None:
    """negotiate_answer on our own answer agrees with what create_answer said."""
    offer = create_offer((AUDIO, VIDEO), "10.0.0.1", PORTS, 1, 1)
    ans, theirs = create_answer(
        offer, (AUDIO, VIDEO), "10.0.0.2", {"audio": 7000, "video": 7002}, 9, 1
    )
    ours = negotiate_answer(offer, ans)
    assert [s.payload_type for s in ours.streams] == [s.payload_type for s in theirs.streams]
    first = ours.first("audio")
    assert first is not None
    assert (first.remote_address, first.remote_port, first.local_port) == ("10.0.0.2", 7000, 30000)
    assert first.telephone_event == 97 and first.telephone_events == "0-16"
    assert first.direction is Direction.SENDRECV
    assert ours.first("text") is None and len(ours.accepted) == 2


def test_answer_to_our_hold() -> None:
    """We offer sendonly, they answer recvonly: we send, nobody holds us."""
    offer = create_offer(AUDIO, "10.0.0.1", {"audio": 4000}, 1, 1, Direction.SENDONLY)
    ans, _ = create_answer(offer, AUDIO, "10.0.0.2", {"audio": 5000}, 2, 1)
    assert ans.media[0].direction is Direction.RECVONLY
    stream = negotiate_answer(offer, ans).streams[0]
    assert stream.direction is Direction.SENDONLY and not stream.remote_hold


def test_answer_putting_us_on_hold_is_narrowed() -> None:
    """An answer that will not receive (sendonly or c=0.0.0.0) is read as hold."""
    offer = sdp("m=audio 5000 RTP/AVP 0\n")
    for body, header in (("a=sendonly\n", "c=IN IP4 192.0.2.9\n"), ("", "c=IN IP4 0.0.0.0\n")):
        ans = sdp("m=audio 6000 RTP/AVP 0\n" + body, header=header)
        stream = negotiate_answer(offer, ans).streams[0]
        assert stream.remote_hold
        assert not stream.direction.sends


def test_answer_rejecting_a_stream() -> None:
    """Port 0 in the answer is a rejected stream, not an error."""
    offer = sdp("m=audio 5000 RTP/AVP 0\nm=video 5002 RTP/AVP 31\n")
    ans = sdp("m=audio 6000 RTP/AVP 0\nm=video 0 RTP/AVP 31\n")
    streams = negotiate_answer(offer, ans).streams
    assert streams[0].accepted and not streams[1].accepted


def test_answer_without_rtpmap_uses_offer_meaning() -> None:
    """A dynamic type answered without a=rtpmap keeps the offer's meaning."""
    offer = sdp(
        "m=audio 5000 RTP/AVP 96 101\na=rtpmap:96 opus/48000/2\n"
        "a=rtpmap:101 telephone-event/8000\na=fmtp:101 0-15\n"
    )
    ans = sdp("m=audio 6000 RTP/AVP 96 101\n")
    stream = negotiate_answer(offer, ans).streams[0]
    assert stream.rtpmap == RtpMap(96, "opus", 48000, 2)
    assert stream.telephone_event == 101 and stream.telephone_events == "0-15"


OFFER = "m=audio 5000 RTP/AVP 0 96\na=rtpmap:96 opus/48000/2\nm=video 5002 RTP/AVP 31\n"
BAD_ANSWERS = {
    "fewer m= lines": ("m=audio 6000 RTP/AVP 0\n", ""),
    "media changed": ("m=video 6000 RTP/AVP 0\nm=video 0 RTP/AVP 31\n", ""),
    "payload type not offered": ("m=audio 6000 RTP/AVP 8\nm=video 0 RTP/AVP 31\n", ""),
    "meaning changed": (
        "m=audio 6000 RTP/AVP 96\na=rtpmap:96 G722/8000\nm=video 0 RTP/AVP 31\n",
        "",
    ),
    "proto changed": ("m=audio 6000 RTP/SAVP 0\nm=video 0 RTP/AVP 31\n", ""),
    "no connection": ("m=audio 6000 RTP/AVP 0\nm=video 0 RTP/AVP 31\n", "none"),
}


@pytest.mark.parametrize("name", sorted(BAD_ANSWERS))
def test_invalid_answers_raise(name: str) -> None:
    """Answers that break RFC 3264 §6 raise OfferAnswerError (a ValueError)."""
    body, header = BAD_ANSWERS[name]
    ans = sdp(body, header="" if header == "none" else "c=IN IP4 192.0.2.9\n")
    with pytest.raises(OfferAnswerError):
        negotiate_answer(sdp(OFFER), ans)


def test_accepting_a_disabled_stream_raises() -> None:
    """An answer may not enable a stream the offer disabled."""
    with pytest.raises(OfferAnswerError):
        negotiate_answer(sdp("m=audio 0 RTP/AVP 0\n"), sdp("m=audio 6000 RTP/AVP 0\n"))


def test_answer_with_only_telephone_event_raises() -> None:
    """An accepted audio stream must keep at least one real codec."""
    offer = sdp("m=audio 5000 RTP/AVP 0 101\na=rtpmap:101 telephone-event/8000\n")
    with pytest.raises(OfferAnswerError):
        negotiate_answer(
            offer, sdp("m=audio 6000 RTP/AVP 101\na=rtpmap:101 telephone-event/8000\n")
        )


# --- re-offers -------------------------------------------------------------------------


def test_next_version_and_reoffer() -> None:
    """next_version adds one to o= version; reoffer does so only on change (§8)."""
    offer = create_offer(AUDIO, "10.0.0.1", {"audio": 4000}, 5, 7)
    assert next_version(offer).origin.session_version == 8
    assert next_version(offer).origin.session_id == 5
    assert reoffer(offer, offer) is offer
    held = reoffer(offer, set_direction(offer, Direction.SENDONLY))
    assert held.origin.session_version == 8
    assert held.media[0].direction is Direction.SENDONLY
    resumed = reoffer(held, set_direction(held, Direction.SENDRECV))
    assert resumed.origin.session_version == 9
    assert resumed.media == offer.media


def test_set_direction_skips_disabled_streams_and_clears_session_level() -> None:
    """set_direction changes enabled m= lines and removes a session-level direction."""
    sd = sdp("m=audio 5000 RTP/AVP 0\nm=video 0 RTP/AVP 31\n", header="a=recvonly\n")
    held = set_direction(sd, Direction.INACTIVE)
    assert held.direction is None
    assert held.media[0].direction is Direction.INACTIVE
    assert held.media[1].direction is None


def test_hold_round_trip_between_two_sides() -> None:
    """A hold re-offer answered by the peer leaves us sending only, then resume
    restores sendrecv both ways."""
    offer = create_offer(AUDIO, "10.0.0.1", {"audio": 4000}, 5, 1)
    hold = reoffer(offer, set_direction(offer, Direction.SENDONLY))
    ans, peer = create_answer(hold, AUDIO, "10.0.0.2", {"audio": 5000}, 9, 2)
    assert peer.streams[0].remote_hold
    assert negotiate_answer(hold, ans).streams[0].direction is Direction.SENDONLY
    resume = reoffer(hold, set_direction(hold, Direction.SENDRECV))
    ans, peer = create_answer(resume, AUDIO, "10.0.0.2", {"audio": 5000}, 9, 3)
    assert not peer.streams[0].remote_hold
    assert negotiate_answer(resume, ans).streams[0].direction is Direction.SENDRECV
