"""Numbers between E.164 and a carrier's format: the documented table, the
reading rules of :func:`from_carrier`, and the round trip for every format."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from telavox.gateway.numbers import NUMBER_FORMATS, from_carrier, is_e164, to_carrier

SWEDEN: dict[str, str] = {"country_code": "46", "national_prefix": "0",
                          "international_prefix": "00"}
# countries whose prefixes make the national and international forms collide
# (Russia: 8 national, 810 international; NANP: 1 national, 011 international)
RUSSIA: dict[str, str] = {"country_code": "7", "national_prefix": "8",
                          "international_prefix": "810"}
NANP: dict[str, str] = {"country_code": "1", "national_prefix": "1",
                        "international_prefix": "011"}
# no national prefix (Italy), and a platform without any prefixes
ITALY: dict[str, str] = {"country_code": "39", "national_prefix": "",
                         "international_prefix": "00"}
BARE: dict[str, str] = {"country_code": "", "national_prefix": "",
                        "international_prefix": ""}
COUNTRIES = [SWEDEN, RUSSIA, NANP, ITALY, BARE]


def out(number: str, fmt: str, tech: str = "", country: dict[str, str] = SWEDEN) -> str:
    return to_carrier(number, number_format=fmt, tech_prefix=tech, **country)


def back(number: str, fmt: str, tech: str = "",
         country: dict[str, str] = SWEDEN) -> str | None:
    return from_carrier(number, number_format=fmt, tech_prefix=tech, **country)


@pytest.mark.parametrize(("fmt", "e164", "written"), [
    ("e164", "+46812345678", "+46812345678"),
    ("international", "+46812345678", "0046812345678"),
    ("national", "+46812345678", "0812345678"),
    ("national", "+4420794600", "004420794600"),
    ("digits", "+46812345678", "46812345678"),
    ("international", "+4420794600", "004420794600"),
])
def test_to_carrier_table(fmt: str, e164: str, written: str) -> None:
    """Each format writes a Swedish platform's number as the module table says."""
    assert out(e164, fmt) == written


@pytest.mark.parametrize("fmt", NUMBER_FORMATS)
def test_tech_prefix_and_short_numbers(fmt: str) -> None:
    """The tech prefix goes in front of every format; a number that is not
    E.164 (112) is passed on as given, after the tech prefix."""
    assert out("+46812345678", fmt, "1234").startswith("1234")
    assert out("+46812345678", fmt, "1234")[4:] == out("+46812345678", fmt)
    assert out("112", fmt) == "112"
    assert out("112", fmt, "99") == "99112"


def test_national_falls_back_when_ambiguous() -> None:
    """A national form that would read back as another number is written in
    international form instead (Russia: 8 + 10… reads as the 810 prefix)."""
    assert out("+7104567890", "national", country=RUSSIA) == "8107104567890"
    assert out("+7495123456", "national", country=RUSSIA) == "8495123456"
    assert out("+39061234567", "national", country=ITALY) == "0039061234567"


def test_international_without_prefix_is_e164() -> None:
    """A platform without an international prefix writes E.164 instead."""
    assert out("+46812345678", "international", country=BARE) == "+46812345678"


@pytest.mark.parametrize(("fmt", "sent", "e164"), [
    ("e164", "+46812345678", "+46812345678"),
    ("e164", "+46-8-123.456(78)", "+46812345678"),
    ("e164", "+46812345678;npdi", "+46812345678"),
    ("e164", "46812345678", "+46812345678"),
    ("e164", "0812345678", "+46812345678"),
    ("e164", "0046812345678", "+46812345678"),
    ("international", "0046812345678", "+46812345678"),
    ("international", "0812345678", "+46812345678"),
    ("international", "+46812345678", "+46812345678"),
    ("national", "0812345678", "+46812345678"),
    ("national", "004420794600", "+4420794600"),
    ("digits", "46812345678", "+46812345678"),
    ("digits", "0812345678", "+46812345678"),
    ("digits", "0046812345678", "+46812345678"),
])
def test_from_carrier_table(fmt: str, sent: str, e164: str) -> None:
    """What carriers send is read back to E.164 by the documented rules:
    separators and URI parameters dropped, prefixes replaced, a dropped ``+``
    restored on e164 and digits trunks."""
    assert back(sent, fmt) == e164


@pytest.mark.parametrize(("fmt", "sent"), [
    ("international", "812345678"),
    ("national", "812345678"),
    ("e164", "12"),
    ("national", "112"),
    ("e164", "+0812345678"),
    ("e164", "+12"),
    ("e164", "+1234567890123456"),
    ("e164", ""),
    ("e164", "anonymous"),
    ("digits", "12"),
    ("e164", "+4681234567٨"),
])
def test_from_carrier_undecidable(fmt: str, sent: str) -> None:
    """Local numbers without a prefix, short numbers, invalid E.164 and
    text that is not a number are None."""
    assert back(sent, fmt) is None


def test_from_carrier_strips_tech_prefix() -> None:
    """The tech prefix is removed when the number starts with it, and only then."""
    assert back("990812345678", "national", "99") == "+46812345678"
    assert back("0812345678", "national", "99") == "+46812345678"


def test_unknown_format() -> None:
    """An unknown number format is a ValueError in both directions."""
    with pytest.raises(ValueError, match="unknown number format"):
        out("+46812345678", "local")
    with pytest.raises(ValueError, match="unknown number format"):
        back("+46812345678", "local")


e164_numbers = st.from_regex(r"\A\+[1-9][0-9]{2,14}\Z")


@given(number=e164_numbers, fmt=st.sampled_from(NUMBER_FORMATS),
       tech=st.sampled_from(["", "99", "1234", "0"]), country=st.sampled_from(COUNTRIES))
def test_round_trip(number: str, fmt: str, tech: str, country: dict[str, Any]) -> None:
    """Whatever ``to_carrier`` writes, ``from_carrier`` with the same
    settings reads back as the same E.164 number."""
    assert is_e164(number)
    written = out(number, fmt, tech, country)
    assert back(written, fmt, tech, country) == number


@given(text=st.text(max_size=30), fmt=st.sampled_from(NUMBER_FORMATS),
       country=st.sampled_from(COUNTRIES))
def test_from_carrier_is_total(text: str, fmt: str, country: dict[str, Any]) -> None:
    """Any text gives None or a valid E.164 number, never an exception."""
    result = back(text, fmt, "9", country)
    assert result is None or is_e164(result)
