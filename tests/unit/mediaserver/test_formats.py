"""Unit tests of :mod:`telavox.mediaserver.formats`: route tables between two
far ends' formats."""

from __future__ import annotations

from telavox.mediaserver.formats import (
    ALAW_TO_MULAW,
    CODEC_EVENT,
    CODEC_PCMA,
    CODEC_PCMU,
    MULAW_TO_ALAW,
    NO_ROUTES,
    build_routes,
    format_map,
    preferred_g711,
)
from telavox.records import MediaFormat

from .support import H264, PCMA, PCMU, TE96, TE101, remote


def test_same_codec_different_numbers() -> None:
    """Formats match by name and clock, not number; unlisted dynamic types
    have no route."""
    routes = build_routes(remote(formats=(PCMU, TE101)), remote(formats=(PCMU, TE96)))
    assert routes[0] == (0, None, CODEC_PCMU)
    assert routes[101] == (96, None, CODEC_EVENT)
    assert routes[96] is None and routes[100] is None


def test_g711_laws_transcode_when_needed() -> None:
    """PCMU to a PCMA-only far end goes through the µ→A table, and back."""
    assert build_routes(remote(formats=(PCMU,)), remote(formats=(PCMA,)))[0] == (
        8, MULAW_TO_ALAW, CODEC_PCMA)
    assert build_routes(remote(formats=(PCMA,)), remote(formats=(PCMU,)))[8] == (
        0, ALAW_TO_MULAW, CODEC_PCMU)
    # both laws on the far side: no transcoding
    assert build_routes(remote(formats=(PCMU,)), remote(formats=(PCMA, PCMU)))[0] == (
        0, None, CODEC_PCMU)


def test_transcoding_tables_round_trip() -> None:
    """µ-law → A-law → µ-law keeps every code within one step."""
    for code in range(256):
        back = ALAW_TO_MULAW[MULAW_TO_ALAW[code]]
        assert abs((back & 0x7F) - (code & 0x7F)) <= 1 or back == code


def test_static_types_fill_in_for_audio() -> None:
    """A far end that offered only PCMU but sends PCMA (8) is understood by
    the RFC 3551 static meaning."""
    assert format_map(remote(formats=(PCMU,)))[8] == MediaFormat(8, "PCMA", 8000)
    assert format_map(remote(formats=(H264,), kind="video"))[8] is None


def test_video_passes_to_a_peer_without_formats() -> None:
    """Video to a far end that listed no formats passes unchanged; audio
    to one has no route; different kinds never route."""
    video_routes = build_routes(remote(formats=(H264,), kind="video"),
                                remote(formats=(), kind="video"))
    assert video_routes[97] == (97, None, 0)
    assert build_routes(remote(), remote(formats=())) is NO_ROUTES
    assert build_routes(remote(), remote(kind="video", formats=(H264,))) is NO_ROUTES
    assert build_routes(None, remote()) is NO_ROUTES


def test_preferred_g711_follows_the_far_ends_order() -> None:
    """Local audio is encoded with the far end's first G.711 format."""
    assert preferred_g711(remote(formats=(TE101, PCMA, PCMU))) == PCMA
    assert preferred_g711(remote(formats=(MediaFormat(18, "G729", 8000),))) is None
