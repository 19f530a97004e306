"""RTP header extension elements (RFC 8285): reading both forms, writing
them back, and the errors for elements that overrun."""

from __future__ import annotations

import pytest

from telavox.rtp.errors import RtpError
from telavox.rtp.extension import (
    ONE_BYTE_PROFILE,
    ExtensionElement,
    HeaderExtension,
)


def test_one_byte_form_reads_elements_and_skips_padding() -> None:
    """One-byte headers: ID and length-minus-one in one octet; zero octets are padding."""
    ext = HeaderExtension(0xBEDE, bytes.fromhex("10ff 00 00 21aabb 00"))
    assert ext.is_one_byte and not ext.is_two_byte
    assert ext.elements() == (ExtensionElement(1, b"\xff"),
                              ExtensionElement(2, b"\xaa\xbb"))


def test_one_byte_id_15_ends_the_list() -> None:
    """RFC 8285 §4.2: the reserved ID 15 stops processing, whatever follows."""
    ext = HeaderExtension(0xBEDE, bytes.fromhex("10ff f0 31 23 00 00 00"))
    assert ext.elements() == (ExtensionElement(1, b"\xff"),)


def test_two_byte_form_reads_ids_above_14_and_empty_elements() -> None:
    """Two-byte headers: 8-bit ID and 8-bit length, zero-length allowed, any appbits."""
    ext = HeaderExtension(0x1003, bytes.fromhex("0f00 00 ff02abcd 00"))
    assert ext.is_two_byte
    assert ext.elements() == (ExtensionElement(15, b""), ExtensionElement(255, b"\xab\xcd"))


@pytest.mark.parametrize("profile, data, problem", [
    (0xBEDE, bytes.fromhex("13aabb00"), "overruns"),
    (0xBEDE, bytes.fromhex("0100 0000"), "ID 0"),
    (0x1000, bytes.fromhex("010500ff"), "overruns"),
    (0x1000, bytes.fromhex("000000 01"), "no length"),
    (0x1234, b"abcd", "not RFC 8285"),
])
def test_malformed_elements_raise(profile: int, data: bytes, problem: str) -> None:
    """Elements that overrun the data, a misused ID 0, or a non-RFC 8285
    profile give RtpError when the elements are read."""
    with pytest.raises(RtpError, match=problem):
        HeaderExtension(profile, data).elements()


def test_build_picks_one_byte_form_when_everything_fits() -> None:
    """Small IDs and 1–16-byte values get the one-byte form, padded to a word."""
    ext = HeaderExtension.build([ExtensionElement(1, b"\x80"), ExtensionElement(14, b"xyz")])
    assert ext.profile == ONE_BYTE_PROFILE
    assert ext.data == bytes.fromhex("1080") + b"\xe2xyz" + b"\0\0"
    assert ext.elements() == (ExtensionElement(1, b"\x80"), ExtensionElement(14, b"xyz"))


def test_build_falls_back_to_two_byte_form() -> None:
    """An empty value, a long value or an ID above 14 needs the two-byte form."""
    elements = [ExtensionElement(20, b""), ExtensionElement(1, b"a" * 17)]
    ext = HeaderExtension.build(elements, appbits=5)
    assert ext.profile == 0x1005
    assert ext.elements() == tuple(elements)


def test_build_refuses_what_no_form_holds() -> None:
    """An ID above 255 or a value over 255 bytes cannot be written; nor can
    the one-byte form be forced on an element it does not fit."""
    with pytest.raises(RtpError):
        HeaderExtension.build([ExtensionElement(256, b"x")])
    with pytest.raises(RtpError):
        HeaderExtension.build([ExtensionElement(1, b"x" * 256)])
    with pytest.raises(RtpError):
        HeaderExtension.build([ExtensionElement(20, b"x")], two_byte=False)


def test_extension_data_must_be_whole_words() -> None:
    """RFC 3550 §5.3.1 counts the extension in 32-bit words."""
    with pytest.raises(RtpError, match="whole words"):
        HeaderExtension(0xBEDE, b"abc")
    with pytest.raises(RtpError, match="16 bits"):
        HeaderExtension(0x10000, b"")
