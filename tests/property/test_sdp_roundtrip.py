"""Property tests of the SDP package: round trips, a total parser, total views
and offer/answer invariants (RFC 8866 §5, RFC 3264 §6)."""

from __future__ import annotations

from helpers.sdp_strategies import offers, sdp_bytes, session_descriptions
from hypothesis import given
from hypothesis import strategies as st

from telavox.sip.sdp import (
    Codec,
    Direction,
    MediaCapabilities,
    SdpError,
    SessionDescription,
    create_answer,
    negotiate_answer,
    parse_sdp,
    serialize_sdp,
)

CAPS = (
    MediaCapabilities(
        media="audio",
        codecs=(
            Codec("PCMA", 8000),
            Codec("opus", 48000, 2),
            Codec("PCMU", 8000),
            Codec("CN", 8000),
        ),
        telephone_events="0-16",
        ptime=20,
    ),
    MediaCapabilities(media="video", codecs=(Codec("VP8", 90000), Codec("H264", 90000))),
)


def parse_or_error(data: bytes | str) -> SessionDescription | None:
    """parse_sdp, with SdpError (and only SdpError) turned into None."""
    try:
        result = parse_sdp(data)
    except SdpError:
        return None
    assert isinstance(result, SessionDescription)
    return result


@given(session_descriptions)
def test_model_round_trips_through_text(sd: SessionDescription) -> None:
    """parse_sdp(serialize_sdp(sd)) == sd for every value the model accepts."""
    assert parse_sdp(serialize_sdp(sd)) == sd


@given(sdp_bytes)
def test_written_form_is_a_fixed_point(raw: bytes) -> None:
    """Writing what was read from canonical text gives the same bytes."""
    assert serialize_sdp(parse_sdp(raw)) == raw


@given(st.binary(max_size=400))
def test_parser_is_total_on_bytes(data: bytes) -> None:
    """Any bytes give a SessionDescription or SdpError, never another exception."""
    parse_or_error(data)


@given(st.text(max_size=300))
def test_parser_is_total_on_text(data: str) -> None:
    """Any str (surrogates, NUL, odd line ends) gives a model or SdpError."""
    parse_or_error(data)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """Valid SDP with a few edits: slices cut, bytes or lines inserted, lines
    swapped or doubled, numbers made huge or negative."""
    data = bytearray(draw(sdp_bytes))
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["cut", "insert", "line", "swap", "number", "truncate"]))
        at = draw(st.integers(0, len(data)))
        if kind == "cut":
            del data[at : at + draw(st.integers(1, 20))]
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif kind == "line":
            line = draw(
                st.sampled_from(
                    [
                        b"m=audio 99999 RTP/AVP 0",
                        b"m=audio x RTP/AVP",
                        b"a=",
                        b"=",
                        b"v=0",
                        b"t=1",
                        b"c=IN IP4",
                        b"o=- 1 1 IN IP4 h",
                        b"r=1",
                        b"b=AS:-1",
                        b"\xff",
                        b"a=rtpmap:0 \x00",
                    ]
                )
            )
            data[at:at] = line + b"\r\n"
        elif kind == "swap":
            lines = bytes(data).split(b"\r\n")
            i, j = draw(st.integers(0, len(lines) - 1)), draw(st.integers(0, len(lines) - 1))
            lines[i], lines[j] = lines[j], lines[i]
            data = bytearray(b"\r\n".join(lines))
        elif kind == "number":
            data[at:at] = draw(st.sampled_from([b"9" * 25, b"-1", b"65536", b"1" * 5000]))
        else:
            del data[at:]
    return bytes(data)


@given(mutated())
def test_parser_is_total_on_mutated_sdp(data: bytes) -> None:
    """Edited valid SDP is read or refused with SdpError; whatever is read
    round-trips like any model value."""
    sd = parse_or_error(data)
    if sd is not None:
        assert parse_sdp(serialize_sdp(sd)) == sd


@given(session_descriptions)
def test_typed_views_never_raise(sd: SessionDescription) -> None:
    """rtpmaps, fmtp, ptime, rtcp and direction accept any model value."""
    for m in sd.media:
        for pt, rtpmap in m.rtpmaps.items():
            assert rtpmap.pt == pt and 0 <= pt <= 127
        for fmt in m.formats:
            m.fmtp(fmt)
        assert m.ptime is None or m.ptime > 0
        assert m.rtcp is None or 0 <= m.rtcp <= 65535
        assert isinstance(sd.media_direction(m), Direction)


@given(st.one_of(offers(), session_descriptions), st.sampled_from(list(Direction)), st.booleans())
def test_answers_are_valid_for_any_offer(
    offer: SessionDescription, intent: Direction, honour: bool
) -> None:
    """create_answer never raises on a model value; its answer has the offer's
    m= lines in order, passes negotiate_answer, and both sides agree."""
    answer, ours = create_answer(
        offer,
        CAPS,
        "192.0.2.50",
        {"audio": 7000, "video": 7002},
        1,
        1,
        intent,
        honour_offerer_order=honour,
    )
    assert [m.media for m in answer.media] == [m.media for m in offer.media]
    theirs = negotiate_answer(offer, answer)
    for mine, other, om, am in zip(
        ours.streams, theirs.streams, offer.media, answer.media, strict=True
    ):
        assert mine.accepted == other.accepted == (am.port != 0)
        if not mine.accepted:
            assert am.formats == om.formats
            continue
        assert set(am.formats) <= set(om.formats)
        assert mine.payload_type == other.payload_type
        assert mine.telephone_event == other.telephone_event
        assert mine.direction == other.direction.reverse()
        assert not (mine.direction.sends and not offer.media_direction(om).receives)
        assert parse_sdp(serialize_sdp(answer)) == answer
