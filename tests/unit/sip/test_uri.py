"""URIs (RFC 3261 §19.1, RFC 3966): parsing, serialising, escaping, IPv6
references, parameters and headers, and the comparison rules of §19.1.4."""

from __future__ import annotations

import pytest

from telavox.sip.uri import (
    AbsoluteUri,
    SipUri,
    TelUri,
    UriError,
    escape,
    format_host,
    parse_uri,
    split_hostport,
    unescape,
)


def sip(text: str) -> SipUri:
    uri = parse_uri(text)
    assert isinstance(uri, SipUri)
    return uri


# --- parse and str ------------------------------------------------------------------------


@pytest.mark.parametrize("text", [
    "sip:pbx.example.test",
    "sip:alice@pbx.example.test",
    "sips:alice@pbx.example.test:5061",
    "sip:alice:secret@pbx.example.test",
    "sip:alice:@pbx.example.test",
    "sip:%61lice@pbx.example.test",
    "sip:alice@192.0.2.4:5060;transport=udp;lr",
    "sip:alice@[2001:db8::1]:5070;maddr=[2001:db8::2]",
    "sip:[::1]",
    "sip:5550100;phone-context=+1-212@gw.example.test;user=phone",
    "sip:a%3Bb@example.test;empty=;flag",
    "sip:conf@example.test?subject=plan%20b&priority=urgent",
    "sip:h.example.test?x=",
    "tel:+1-212-555-0100",
    "tel:7042;phone-context=pbx.example.test;ext=12",
    "urn:service:sos",
    "mailto:ops@example.test",
])
def test_canonical_text_survives_parse_and_str(text: str) -> None:
    """Canonical URI text parses and serialises back unchanged."""
    assert str(parse_uri(text)) == text
    assert parse_uri(str(parse_uri(text))) == parse_uri(text)


def test_sip_uri_parts() -> None:
    """Every part of a full SIP URI lands in its field, escapes kept."""
    uri = sip("SIPS:j%40ne:pw@Host.Example.Test:5061;Transport=TCP;lr;x=1?Subject=hi%20there&a=b")
    assert uri.scheme == "sips" and uri.secure
    assert (uri.user, uri.user_unescaped, uri.password) == ("j%40ne", "j@ne", "pw")
    assert (uri.host, uri.host_bare, uri.port) == ("Host.Example.Test", "host.example.test",
                                                   5061)
    assert uri.params == (("Transport", "TCP"), ("lr", None), ("x", "1"))
    assert uri.transport == "tcp" and uri.lr and uri.param("X") == "1"
    assert uri.headers == (("Subject", "hi%20there"), ("a", "b"))
    assert str(uri.without_headers()) == (
        "sips:j%40ne:pw@Host.Example.Test:5061;Transport=TCP;lr;x=1")


def test_flag_and_empty_parameters_differ() -> None:
    """``;lr`` is a flag (value None) and ``;lr=`` an empty value; both read as ""."""
    flag, empty = sip("sip:h;lr"), sip("sip:h;lr=")
    assert flag.params == (("lr", None),) and empty.params == (("lr", ""),)
    assert flag.param("lr") == "" and empty.param("lr") == ""
    assert flag.param("other") is None
    assert str(flag) == "sip:h;lr" and str(empty) == "sip:h;lr="


def test_user_part_may_hold_semicolon_and_question_mark() -> None:
    """The user part ends at '@': ';' and '?' before it belong to the user."""
    uri = sip("sip:a;b?c@example.test;p=1?h=2")
    assert uri.user == "a;b?c" and uri.params == (("p", "1"),) and uri.headers == (("h", "2"),)


def test_with_params_replaces_parameters() -> None:
    """with_params gives a copy with new parameters, the original unchanged."""
    uri = sip("sip:a@h;x=1")
    assert str(uri.with_params((("lr", None),))) == "sip:a@h;lr"
    assert str(uri) == "sip:a@h;x=1"


# --- escaping -----------------------------------------------------------------------------


def test_escape_and_unescape() -> None:
    """Characters outside the user-part set are %-escaped as UTF-8 and decoded back."""
    assert escape("alice") == "alice"
    assert escape("j doe@x") == "j%20doe%40x"
    assert escape("zoë") == "zo%C3%AB"
    assert escape("100%") == "100%25"
    assert escape("a;b?c/d") == "a;b?c/d"  # user-unreserved stay
    for text in ("j doe@x", "zoë", "100%", "\x00"):
        assert unescape(escape(text)) == text


def test_malformed_escapes_stay_as_written() -> None:
    """A '%' not followed by two hex digits is left alone by unescape."""
    assert unescape("50%") == "50%"
    assert unescape("%zz%4") == "%zz%4"
    assert unescape("%41%4a") == "AJ"


def test_build_escapes_the_user_and_brackets_ipv6() -> None:
    """SipUri.build takes plain parts: the user is escaped, IPv6 hosts bracketed."""
    uri = SipUri.build("2001:db8::5", "j doe", 5060, params=(("transport", "tcp"),))
    assert str(uri) == "sip:j%20doe@[2001:db8::5]:5060;transport=tcp"
    assert uri.user_unescaped == "j doe"
    assert str(SipUri.build("example.test", scheme="sips")) == "sips:example.test"


# --- hosts and IPv6 -----------------------------------------------------------------------


@pytest.mark.parametrize(("text", "expected"), [
    ("example.test", ("example.test", None)),
    ("example.test:5060", ("example.test", 5060)),
    ("192.0.2.1:0", ("192.0.2.1", 0)),
    ("[2001:db8::1]", ("[2001:db8::1]", None)),
    ("[2001:db8::1]:65535", ("[2001:db8::1]", 65535)),
    ("[::ffff:192.0.2.1]", ("[::ffff:192.0.2.1]", None)),
])
def test_split_hostport(text: str, expected: tuple[str, int | None]) -> None:
    """host[:port] splits with IPv6 references kept in brackets."""
    assert split_hostport(text) == expected


@pytest.mark.parametrize("text", [
    "", "host:", "host:x", "host:65536", "host:123456", "[2001:db8::1", "[2001:db8::1]5060",
    "[]", "[xyz::1]", "ho st", "host:٣", "[2001:db8::1]:",
])
def test_split_hostport_rejects(text: str) -> None:
    """Bad hosts and ports raise UriError."""
    with pytest.raises(UriError):
        split_hostport(text)


def test_ipv6_references() -> None:
    """IPv6 hosts keep their brackets in the URI; host_bare drops them."""
    uri = sip("sip:bob@[2001:DB8::10]:5070")
    assert (uri.host, uri.port, uri.host_bare) == ("[2001:DB8::10]", 5070, "2001:db8::10")
    no_port = sip("sip:bob@[2001:db8::10:5070]")
    assert no_port.port is None and no_port.host == "[2001:db8::10:5070]"
    assert format_host("2001:db8::1") == "[2001:db8::1]"
    assert format_host("[2001:db8::1]") == "[2001:db8::1]"
    assert format_host("192.0.2.1") == "192.0.2.1"


def test_unbracketed_ipv6_is_not_a_host() -> None:
    """An IPv6 address without brackets reads as host and a bad port (RFC 5118 §4.2)."""
    with pytest.raises(UriError):
        parse_uri("sip:bob@2001:db8::10")


# --- other schemes ------------------------------------------------------------------------


def test_tel_uris() -> None:
    """tel URIs: global or local numbers, digits without separators, parameters."""
    g = parse_uri("tel:+1-(212)-555.0100;ext=7")
    assert isinstance(g, TelUri) and g.is_global
    assert g.digits == "+12125550100" and g.param("ext") == "7"
    local = parse_uri("TEL:4410;phone-context=pbx.example.test")
    assert isinstance(local, TelUri) and not local.is_global
    assert local.param("phone-context") == "pbx.example.test"
    assert str(local) == "tel:4410;phone-context=pbx.example.test"


def test_tel_uri_equivalence() -> None:
    """tel URIs compare by digits (separators ignored) and parameters in any order."""
    a = parse_uri("tel:+1-212-555-0100;a=1;b=2")
    assert a.equivalent(parse_uri("tel:+12125550100;B=2;a=1"))
    assert not a.equivalent(parse_uri("tel:+12125550101;a=1;b=2"))
    assert not a.equivalent(parse_uri("tel:+12125550100;a=1"))
    assert not a.equivalent(parse_uri("sip:+12125550100@example.test"))


def test_other_schemes_are_kept_as_text() -> None:
    """Unknown schemes give an AbsoluteUri compared by scheme (any case) and text."""
    uri = parse_uri("URN:service:sos")
    assert isinstance(uri, AbsoluteUri) and (uri.scheme, uri.rest) == ("URN", "service:sos")
    assert uri.equivalent(parse_uri("urn:service:sos"))
    assert not uri.equivalent(parse_uri("urn:service:SOS"))


@pytest.mark.parametrize("text", [
    "", "sip", "nocolon", ":x", "1sip:x", "s p:x", "sip:", "sip:@h", "sip:a@", "sip:h;",
    "sip:h;=v", "sip:h?=v", "sip:a b@h", "sip:<h>", 'sip:"h"', "sip:h\r\n", "sip:h\x00",
    "sip:[::1", "sip:h:99999", "tel:", "tel:;x=1", "mailto:", "SIPS:a@b:c",
])
def test_invalid_uris_raise_uri_error(text: str) -> None:
    """Invalid URI text raises UriError, a ValueError."""
    with pytest.raises(UriError):
        parse_uri(text)
    with pytest.raises(ValueError):
        parse_uri(text)


def test_sip_uri_parse_wants_sip() -> None:
    """SipUri.parse refuses a tel URI."""
    with pytest.raises(UriError):
        SipUri.parse("tel:+1")


# --- RFC 3261 §19.1.4 comparison ----------------------------------------------------------


@pytest.mark.parametrize(("a", "b"), [
    # user escapes, host case, parameter name and value case
    ("sip:%62ob@Biloxi.Example.Test;transport=TCP", "sip:bob@biloxi.example.test;Transport=tcp"),
    # a parameter present in one URI only (and not user/ttl/method/maddr/transport)
    ("sip:dana@example.test", "sip:dana@example.test;color=red"),
    ("sip:dana@example.test;lr", "sip:dana@example.test"),
    # order of parameters
    ("sip:reg.example.test;transport=udp;method=REGISTER?to=sip:eve%40example.test",
     "sip:reg.example.test;method=REGISTER;transport=udp?to=sip:eve%40example.test"),
    # order of headers, escapes of unreserved characters in headers
    ("sip:fay@example.test?subject=lunch%20plans&priority=urgent",
     "sip:fay@example.test?priority=urgent&subject=lunch%20plans"),
    ("sip:fay@example.test?subject=%61b", "sip:fay@example.test?subject=ab"),
    # scheme case
    ("SIPS:gil@example.test", "sips:gil@example.test"),
    # escapes of reserved characters compare with either case of hex digits
    ("sip:a%3bb@example.test", "sip:a%3Bb@example.test"),
    # IPv6 references compare as addresses (RFC 5954 §4)
    ("sip:hu@[2001:db8::1]", "sip:hu@[2001:0DB8:0:0:0:0:0:1]"),
    # passwords: escapes of unreserved characters
    ("sip:ivo:p%61ss@example.test", "sip:ivo:pass@example.test"),
])
def test_equivalent_uris(a: str, b: str) -> None:
    """URI pairs that §19.1.4 calls equivalent are, both ways round."""
    x, y = sip(a), sip(b)
    assert x.equivalent(y) and y.equivalent(x)


@pytest.mark.parametrize(("a", "b"), [
    # user parts compare case-sensitively
    ("sip:Hal@example.test", "sip:hal@example.test"),
    # an explicit default port is not the same as none
    ("sip:ida@example.test", "sip:ida@example.test:5060"),
    # transport, user, ttl, method and maddr must match when either has them
    ("sip:ida@example.test", "sip:ida@example.test;transport=udp"),
    ("sip:ida@example.test;user=phone", "sip:ida@example.test"),
    ("sip:ida@example.test;ttl=1", "sip:ida@example.test;ttl=2"),
    ("sip:ida@example.test", "sip:ida@example.test;method=INVITE"),
    ("sip:ida@example.test;maddr", "sip:ida@example.test"),
    ("sip:ida@example.test", "sip:ida@example.test:6000;transport=tcp"),
    # a header in one URI only
    ("sip:jo@example.test", "sip:jo@example.test?subject=hello"),
    ("sip:jo@example.test?subject=a", "sip:jo@example.test?subject=b"),
    # a name and the address it resolves to
    ("sip:kai@host.example.test", "sip:kai@192.0.2.7"),
    # a parameter in both with different values
    ("sip:lee@example.test;color=red", "sip:lee@example.test;color=blue"),
    # scheme
    ("sip:mo@example.test", "sips:mo@example.test"),
    # an escaped reserved character is not the character
    ("sip:a%3Bb@example.test", "sip:a;b@example.test"),
    ("sip:a%25%34%31@example.test", "sip:a%41@example.test"),
    # passwords compare case-sensitively
    ("sip:ned:secret@example.test", "sip:ned:Secret@example.test"),
    ("sip:ned@example.test", "sip:ned:secret@example.test"),
    # different hosts and ports
    ("sip:oz@example.test", "sip:oz@example.net"),
    ("sip:oz@example.test:5060", "sip:oz@example.test:5061"),
])
def test_not_equivalent_uris(a: str, b: str) -> None:
    """URI pairs that §19.1.4 calls different are, both ways round."""
    x, y = sip(a), sip(b)
    assert not x.equivalent(y) and not y.equivalent(x)


def test_equivalence_is_not_transitive() -> None:
    """URIs with conflicting parameters both match the bare URI but not each other."""
    bare = sip("sip:pat@example.test")
    on, off = sip("sip:pat@example.test;mode=on"), sip("sip:pat@example.test;mode=off")
    assert bare.equivalent(on) and bare.equivalent(off)
    assert not on.equivalent(off)


def test_sip_uri_is_never_equivalent_to_other_kinds() -> None:
    """A SIP URI does not match a tel URI or an AbsoluteUri."""
    uri = sip("sip:+1@example.test")
    assert not uri.equivalent(parse_uri("tel:+1"))
    assert not uri.equivalent("sip:+1@example.test")
