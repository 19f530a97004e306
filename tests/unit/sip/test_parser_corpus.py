"""The SIP parser against the message corpus in ``tests/data/sip``: every valid
message parses, survives a serialise/parse round trip and gives its typed
views; every invalid one fails the way its entry in :data:`INVALID` says.

Each corpus file has an entry in :data:`VALID` or :data:`INVALID`; a file
added without one fails :func:`test_every_corpus_file_has_an_entry`.
"""

from __future__ import annotations

import enum
import pathlib
from collections.abc import Callable
from typing import NamedTuple

import pytest

from telavox.sip.errors import ParseError
from telavox.sip.hdrtypes import HeaderError
from telavox.sip.message import Request, Response, make_response
from telavox.sip.parser import (
    DEFAULT_MAX_MESSAGE,
    KeepAlive,
    StreamFramer,
    check_version,
    parse_message,
)
from telavox.sip.uri import SipUri, TelUri, parse_uri
from telavox.transport.endpoint import _check_request

DATA = pathlib.Path(__file__).resolve().parents[2] / "data" / "sip"
VALID_DIR = DATA / "valid"
INVALID_DIR = DATA / "invalid"

Msg = Request | Response


def load(path: pathlib.Path) -> Msg:
    return parse_message(path.read_bytes())


def req(msg: Msg) -> Request:
    assert isinstance(msg, Request)
    return msg


def sip(uri: object) -> SipUri:
    assert isinstance(uri, SipUri)
    return uri


# --- what each valid file is about -------------------------------------------------------


def _folded(m: Msg) -> None:
    r = req(m)
    assert r.to.tag == "77aa01"
    assert r.to.uri == parse_uri("sip:ops@pbx.example.test")
    assert r.from_.display_name == 'Night "Shift" Desk'
    assert r.from_.tag == "f00d01"
    assert r.cseq.seq == 12 and r.cseq.method == "INVITE"
    assert r.int_header("Max-Forwards") == 69
    assert [(v.transport, v.host, v.port, v.branch) for v in r.vias] == [
        ("UDP", "192.0.2.31", None, "z9hG4bKfold1"),
        ("TCP", "relay.example.net", None, "z9hG4bKfold2"),
        ("UDP", "198.51.100.7", 5062, "z9hG4bKfold3"),
    ]
    assert r.headers.get("Subject") == ""
    assert r.headers.get("X-Folded-Note") == "first part second part after a tab"
    assert r.headers.get("X-Strange-Value") == ";;,,;=,;"
    (contact,) = r.contacts
    assert contact.display_name == 'Desk "B"'
    assert contact.param("weight") == "heavy" and contact.param("q") == "0.5"
    assert contact.has_param("onlyname")
    (route,) = r.route_set()
    assert sip(route.uri).lr and route.uri.param("flagonly") == ""
    assert r.content_type == "application/sdp" and r.body.startswith(b"v=0\r\n")


def _compact(m: Msg) -> None:
    wire = m.serialize()
    for name in (b"Via", b"From", b"To", b"Call-ID", b"Contact", b"Event", b"Allow-Events",
                 b"Supported", b"Accept-Contact", b"Reject-Contact", b"Request-Disposition",
                 b"Session-Expires", b"Subject", b"Content-Type", b"Content-Length"):
        assert b"\r\n" + name + b": " in wire
    assert b"\r\nv:" not in wire and b"\r\nl:" not in wire
    assert m.headers.get("Event") == "presence"
    assert m.option_tags("Supported") == ["eventlist", "timer"]
    assert m.headers.values("Allow-Events") == ["presence", "dialog"]
    assert m.top_via.has_rport and m.top_via.rport is None
    assert len(m.body) == int(m.headers.get("l") or "-1")


def _refer(m: Msg) -> None:
    refer_to = m.route_set("Refer-To")[0]
    uri = sip(refer_to.uri)
    assert uri.headers == (("Replaces", "call-9%40example.test%3Bto-tag%3D11%3Bfrom-tag%3D22"),)
    assert m.headers.get("Referred-By") == "<sip:alice@pbx.example.test>"


def _multi(m: Msg) -> None:
    assert [v.branch for v in m.vias] == ["z9hG4bKmv3", "z9hG4bKmv2", "z9hG4bKmv1"]
    assert m.top_via.host == "edge2.example.net"
    assert [str(r.uri) for r in m.route_set()] == [
        "sip:core1.example.test;lr", "sip:core2.example.test;lr",
        "sip:registrar.example.test;lr"]
    contacts = m.contacts
    assert [c.display_name for c in contacts] == [None, "Dora, mobile", None, None]
    assert [c.param("q") for c in contacts] == [None, "0.7", "0.1", "0.2"]
    assert sip(contacts[2].uri).host == "[2001:db8::50]"
    assert len(m.headers.get_all("Via")) == 2 and len(m.headers.get_all("Contact")) == 2


def _escaped(m: Msg) -> None:
    r = req(m)
    assert sip(r.uri).user == "%61lice" and sip(r.uri).user_unescaped == "alice"
    assert sip(r.uri).equivalent(SipUri.parse("sip:alice@pbx.example.test"))
    assert sip(r.to.uri).equivalent(r.uri)
    assert sip(r.from_.uri).user_unescaped == "J Q Public"
    contact = sip(r.contacts[0].uri)
    assert contact.user_unescaped == "ext;22=x"
    assert not contact.equivalent(SipUri.parse("sip:ext;22=x@192.0.2.60;lr;code=a%25%34%31"))
    assert contact.params == (("%6Cr", None), ("code", "a%25%34%31"))


def _escaped_nul(m: Msg) -> None:
    assert sip(req(m).uri).user_unescaped == "null-\x00-null"
    assert b"\x00" not in m.serialize()


def _user_semicolon(m: Msg) -> None:
    uri = sip(req(m).uri)
    assert uri.user == "5550100;phone-context=+1-212"
    assert uri.host == "gw.example.net" and uri.param("user") == "phone"


def _tel(m: Msg) -> None:
    r = req(m)
    assert isinstance(r.uri, TelUri) and r.uri.is_global and r.uri.digits == "+12125550100"
    assert r.to.uri == r.uri
    frm = r.from_.uri
    assert isinstance(frm, TelUri) and not frm.is_global
    assert frm.param("phone-context") == "pbx.example.test"
    assert r.from_.tag == "tel-1"


def _ipv6(m: Msg) -> None:
    r = req(m)
    uri = sip(r.uri)
    assert (uri.host, uri.port, uri.host_bare) == ("[2001:db8::20]", 5070, "2001:db8::20")
    top, second = r.vias
    assert top.sent_by == ("2001:db8::9:1", 5060)
    assert top.received == "[2001:db8::9:ff]"
    assert second.sent_by == ("2001:db8::1", None) and second.received == "2001:db8::1"
    assert sip(r.from_.uri).equivalent(SipUri.parse("sip:alice@[2001:db8::9:1]"))
    assert sip(r.contacts[0].uri).host == "[2001:db8::9:1]"
    assert sip(r.route_set("Record-Route")[0].uri).host == "[2001:db8::99]"


def _ipv6_no_port(m: Msg) -> None:
    uri = sip(req(m).uri)
    assert uri.host == "[2001:db8::10:5070]" and uri.port is None


def _display(m: Msg) -> None:
    assert m.from_.display_name == 'Zoë "Ziggy" Øster \\ och vänner'
    assert m.to.display_name == "Bob  the   Builder"
    assert m.contacts[0].display_name == ""
    assert m.body.decode("utf-8") == "Hej då, Bob!"


def _odd_names(m: Msg) -> None:
    names = [name for name, _ in m.headers]
    for odd in ("X-Odd.Name!%*_+`'~", "x-lower-only", "X-LOWER-ONLY", "X-Empty", "NewFangled",
                "1Digit-First", "Via-Not", "Tos"):
        assert odd in names
    assert m.headers.get_all("X-Lower-Only") == ["first spelling", "second spelling"]
    assert m.headers.get("X-Empty") == "" and m.headers.get("NewFangled") == ", ; = ,,"
    assert len(m.vias) == 1 and m.to.tag is None
    assert b"\r\nX-Odd.Name!%*_+`'~: every token character\r\n" in m.serialize()


def _star(m: Msg) -> None:
    assert m.contact_star and m.contacts == []
    assert m.int_header("Expires") == 0


def _no_length(m: Msg) -> None:
    assert "Content-Length" not in m.headers
    assert m.body == b"A datagram body without a Content-Length.\r\nSecond line."
    assert b"\r\nContent-Length: 55\r\n" in m.serialize()


def _unknown_method(m: Msg) -> None:
    assert req(m).method == "FROBNICATE" and m.cseq.method == "FROBNICATE"


def _method_token(m: Msg) -> None:
    assert req(m).method == "!interesting-Method0123456789_*+`.%'~"


def _empty_reason(m: Msg) -> None:
    assert isinstance(m, Response) and (m.status, m.reason) == (200, "")
    assert m.serialize().startswith(b"SIP/2.0 200 \r\n")


def _utf8_reason(m: Msg) -> None:
    assert isinstance(m, Response) and m.reason == "Upptagen – ring igen om en stund"


def _max_cseq(m: Msg) -> None:
    assert m.cseq.seq == 2**31 - 1


def _long(m: Msg) -> None:
    assert len(m.headers.get("X-Long-Token") or "") == 4800
    assert len(m.call_id) > 1500
    assert len(sip(m.contacts[0].uri).params) == 300
    assert len(m.headers.get("Subject") or "") > 2800


def _leading(m: Msg) -> None:
    assert req(m).method == "OPTIONS"
    assert not m.serialize().startswith(b"\r\n")


def _binary(m: Msg) -> None:
    assert m.body == b"\x00\x01\x02\xff\xfe\r\n\r\n\x00tail\x80"


def _extra(m: Msg) -> None:
    assert m.body == b"hello"


def _transports(m: Msg) -> None:
    assert [v.transport for v in m.vias] == ["SCTP", "TLS-SCTP", "WSS", "UDP", "NEWTRANSPORT"]


def _via_params(m: Msg) -> None:
    top, second = m.vias
    assert top.port == 5060 and top.has_rport and top.rport is None
    assert top.param("x-note") == "a;b, c"
    assert top.maddr == "239.255.255.1" and top.param("ttl") == "16"
    assert second.received == "198.51.100.9" and second.rport == 5099


def _schemes(m: Msg) -> None:
    assert str(m.to.uri) == "urn:service:sos"
    assert sip(m.from_.uri).secure
    assert [str(c.uri) for c in m.contacts] == ["sip:ulla@192.0.2.94",
                                                "mailto:ulla@uac.example.org"]


def _response_vias(m: Msg) -> None:
    assert isinstance(m, Response) and m.status == 180 and m.reason == "Ringing"
    assert [v.host for v in m.vias] == ["proxy2.example.net", "proxy1.example.net",
                                        "192.0.2.95"]
    assert len(m.route_set("Record-Route")) == 2
    assert m.to_tag == "rr-2"


def _addr_spec(m: Msg) -> None:
    assert m.to.tag is None and m.from_.tag == "as-1"
    assert str(m.from_.uri) == "sip:xena@pbx.example.test"
    assert [(str(c.uri), c.params) for c in m.contacts] == [
        ("sip:xena@192.0.2.96", (("expires", "120"),)),
        ("sip:xena@198.51.100.96", (("q", "0.5"),)),
    ]


def _lowercase_version(m: Msg) -> None:
    assert isinstance(m, Response) and m.version == "sip/2.0" and m.status == 202
    assert m.top_via.transport == "UDP"
    assert m.serialize().startswith(b"sip/2.0 202 Accepted\r\n")


def _mixed_case(m: Msg) -> None:
    assert [name for name, _ in m.headers] == [
        "Via", "Max-Forwards", "To", "From", "Call-ID", "CSeq", "Content-Length"]


def _multipart(m: Msg) -> None:
    assert m.content_type == "multipart/mixed"
    assert m.body.endswith(b"--boundary-42-xyz--\r\n")


def _sips(m: Msg) -> None:
    uri = sip(req(m).uri)
    assert uri.secure and uri.port == 5061 and uri.transport == "tcp"
    assert uri.param("maddr") == "198.51.100.1" and uri.param("method") == "INVITE"
    contact = m.contacts[0]
    assert contact.param("+sip.instance") == "<urn:uuid:00000000-0000-1000-8000-000a95a0e128>"


Check = Callable[[Msg], None]

VALID: dict[str, Check] = {
    "addr_spec_forms.msg": _addr_spec,
    "binary_body.msg": _binary,
    "compact_forms.msg": _compact,
    "compact_refer.msg": _refer,
    "display_names.msg": _display,
    "empty_reason.msg": _empty_reason,
    "escaped_nul.msg": _escaped_nul,
    "escaped_uris.msg": _escaped,
    "extra_data_after_body.msg": _extra,
    "folded_odd_whitespace.msg": _folded,
    "ipv6.msg": _ipv6,
    "ipv6_port_in_brackets.msg": _ipv6_no_port,
    "leading_crlf.msg": _leading,
    "long_values.msg": _long,
    "max_cseq.msg": _max_cseq,
    "lowercase_version.msg": _lowercase_version,
    "mixed_case_names.msg": _mixed_case,
    "multi_value_lines.msg": _multi,
    "multipart_body.msg": _multipart,
    "no_content_length.msg": _no_length,
    "odd_header_names.msg": _odd_names,
    "register_star.msg": _star,
    "response_multi_via.msg": _response_vias,
    "sips_params.msg": _sips,
    "tel_uris.msg": _tel,
    "transports.msg": _transports,
    "unknown_method.msg": _unknown_method,
    "unknown_schemes.msg": _schemes,
    "unusual_method_token.msg": _method_token,
    "user_semicolon.msg": _user_semicolon,
    "utf8_reason.msg": _utf8_reason,
    "via_param_forms.msg": _via_params,
}

# datagrams whose bytes are not a stream frame (no Content-Length, or data past the body)
DATAGRAM_ONLY = frozenset({"no_content_length.msg", "extra_data_after_body.msg"})


# --- how each invalid file fails ---------------------------------------------------------


class Stage(enum.Enum):
    PARSE = "parse_message raises ParseError"
    CHECK = "parse_message accepts it; the endpoint's _check_request answers"
    STREAM = "a StreamFramer with the default 64 KiB limit raises ParseError"


class Partial(enum.Enum):
    ANSWER = "a request whose top Via parses: the error can be answered"
    READ = "a message was read, but no answer can be sent (no usable Via, or a response)"
    NONE = "nothing could be read"


class Bad(NamedTuple):
    stage: Stage
    status: int
    reason: str  # a fragment the reason phrase must contain
    partial: Partial


P, C, S = Stage.PARSE, Stage.CHECK, Stage.STREAM
ANSWER, READ, NONE = Partial.ANSWER, Partial.READ, Partial.NONE

INVALID: dict[str, Bad] = {
    "missing_via.msg": Bad(P, 400, "Missing Via header", READ),
    "missing_from.msg": Bad(P, 400, "Missing From header", ANSWER),
    "missing_to.msg": Bad(P, 400, "Missing To header", ANSWER),
    "missing_call_id.msg": Bad(P, 400, "Missing Call-ID header", ANSWER),
    "missing_cseq.msg": Bad(P, 400, "Missing CSeq header", ANSWER),
    "cseq_method_mismatch.msg": Bad(P, 400, "CSeq method does not match", ANSWER),
    "cseq_not_numeric.msg": Bad(P, 400, "Malformed CSeq header", ANSWER),
    "cseq_negative.msg": Bad(P, 400, "Malformed CSeq header", ANSWER),
    "cseq_too_large.msg": Bad(P, 400, "CSeq number too large", ANSWER),
    "content_length_negative.msg": Bad(P, 400, "Malformed Content-Length", ANSWER),
    "content_length_not_numeric.msg": Bad(P, 400, "Malformed Content-Length", ANSWER),
    "content_length_too_large.msg": Bad(P, 400, "Content-Length larger than the message body",
                                        ANSWER),
    "content_length_conflict.msg": Bad(P, 400, "Conflicting Content-Length", ANSWER),
    "nul_in_header.msg": Bad(P, 400, "NUL byte", ANSWER),
    "invalid_utf8_header.msg": Bad(P, 400, "not valid UTF-8", ANSWER),
    "from_unterminated_quote.msg": Bad(C, 400, "Malformed From header", ANSWER),
    "to_bad_uri.msg": Bad(C, 400, "Malformed To header", ANSWER),
    "via_unterminated_quote.msg": Bad(P, 400, "Malformed Via header", READ),
    "via_empty_list.msg": Bad(P, 400, "Malformed Via header", READ),
    "via_bad_sent_by.msg": Bad(P, 400, "Malformed Via header", READ),
    "request_uri_no_scheme.msg": Bad(P, 400, "Malformed Request-URI", ANSWER),
    "request_uri_ipv6_unbracketed.msg": Bad(C, 400, "Malformed Request-URI", ANSWER),
    "request_line_two_spaces.msg": Bad(P, 400, "Malformed request line", ANSWER),
    "request_line_no_version.msg": Bad(P, 400, "Malformed request line", NONE),
    "request_line_bad_method.msg": Bad(P, 400, "Malformed method", NONE),
    "version_3.msg": Bad(C, 505, "Version Not Supported", ANSWER),
    "status_code_two_digits.msg": Bad(P, 400, "Malformed status code", NONE),
    "status_code_four_digits.msg": Bad(P, 400, "Malformed status code", NONE),
    "response_version_3.msg": Bad(P, 400, "Unsupported version", NONE),
    "header_without_colon.msg": Bad(P, 400, "Malformed header line", ANSWER),
    "header_name_with_space.msg": Bad(P, 400, "Malformed header name", ANSWER),
    "folded_before_first_header.msg": Bad(P, 400, "Folded line before the first header",
                                          ANSWER),
    "only_crlf.msg": Bad(P, 400, "Empty message", NONE),
    "header_value_64k.msg": Bad(S, 413, "Header section too large", ANSWER),
    "message_100k.msg": Bad(S, 413, "Message body too large", ANSWER),
}


def _names(folder: pathlib.Path) -> list[str]:
    return sorted(p.name for p in folder.glob("*.msg"))


VALID_NAMES = _names(VALID_DIR)
INVALID_NAMES = _names(INVALID_DIR)


def test_every_corpus_file_has_an_entry() -> None:
    """Each corpus file has an expectation, and each expectation a file."""
    assert VALID_NAMES and INVALID_NAMES
    assert sorted(VALID) == VALID_NAMES
    assert sorted(INVALID) == INVALID_NAMES


def test_corpus_files_use_crlf_line_ends() -> None:
    """No corpus file has a bare LF in its header section."""
    for folder, names in ((VALID_DIR, VALID_NAMES), (INVALID_DIR, INVALID_NAMES)):
        for name in names:
            head = (folder / name).read_bytes().split(b"\r\n\r\n", 1)[0]
            assert b"\n" not in head.replace(b"\r\n", b""), name


# --- valid --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", VALID_NAMES)
def test_valid_message_parses_and_round_trips(name: str) -> None:
    """A valid message parses, and parsing its serialisation gives it back."""
    msg = load(VALID_DIR / name)
    wire = msg.serialize()
    again = parse_message(wire)
    assert again == msg
    assert again.serialize() == wire


@pytest.mark.parametrize("name", VALID_NAMES)
def test_valid_message_typed_views_parse(name: str) -> None:
    """Every typed view of a valid message parses; a valid request passes the endpoint checks."""
    msg = load(VALID_DIR / name)
    assert msg.call_id
    assert msg.top_via == msg.vias[0]
    msg.cseq  # noqa: B018
    msg.from_  # noqa: B018
    msg.to  # noqa: B018
    msg.contacts  # noqa: B018
    msg.route_set()
    msg.route_set("Record-Route")
    if isinstance(msg, Request):
        assert msg.cseq.method == msg.method
        assert msg.uri_valid() and str(msg.uri)
        assert check_version(msg)
        assert _check_request(msg) is None


@pytest.mark.parametrize("name", VALID_NAMES)
def test_valid_message_details(name: str) -> None:
    """What makes each valid message unusual is read as intended."""
    VALID[name](load(VALID_DIR / name))


def test_valid_messages_framed_from_one_stream() -> None:
    """Valid messages sent back to back on a stream come out as the same messages."""
    names = [n for n in VALID_NAMES if n not in DATAGRAM_ONLY]
    stream = b"".join((VALID_DIR / n).read_bytes() for n in names)
    frames = StreamFramer().feed(stream)
    messages = [parse_message(f) for f in frames if not isinstance(f, KeepAlive)]
    assert messages == [load(VALID_DIR / n) for n in names]


# --- invalid ------------------------------------------------------------------------------


def _stream_error(data: bytes) -> ParseError:
    framer = StreamFramer(DEFAULT_MAX_MESSAGE)
    frames: list[bytes | KeepAlive] = []
    with pytest.raises(ParseError) as info:
        for i in range(0, len(data), 1400):
            frames += framer.feed(data[i : i + 1400])
    assert frames == []
    assert framer.failed
    assert framer.feed(b"OPTIONS sip:x SIP/2.0\r\n\r\n") == []  # the stream has stopped
    return info.value


def _failure(name: str, stage: Stage) -> tuple[int, str, Msg | None]:
    data = (INVALID_DIR / name).read_bytes()
    if stage is Stage.STREAM:
        err = _stream_error(data)
        return err.status, err.reason, err.message
    if stage is Stage.CHECK:
        msg = parse_message(data)
        assert isinstance(msg, Request)
        problem = _check_request(msg)
        assert problem is not None
        return problem[0], problem[1], msg
    with pytest.raises(ParseError) as info:
        parse_message(data)
    return info.value.status, info.value.reason, info.value.message


@pytest.mark.parametrize("name", INVALID_NAMES)
def test_invalid_message_fails_as_expected(name: str) -> None:
    """Each invalid message fails with its status, a reason naming the fault and its partial."""
    expected = INVALID[name]
    status, reason, partial = _failure(name, expected.stage)
    assert status == expected.status
    assert expected.reason in reason
    if expected.partial is Partial.NONE:
        assert partial is None
    elif expected.partial is Partial.READ:
        assert partial is not None
        if isinstance(partial, Request):
            with pytest.raises((HeaderError, KeyError)):
                partial.top_via  # noqa: B018
    else:
        assert isinstance(partial, Request)
        via = partial.top_via
        answer = make_response(partial, status, reason)
        assert answer.top_via == via
        assert answer.serialize().startswith(f"SIP/2.0 {status} {reason}\r\n".encode())


def test_version_3_is_answered_505_by_check_version() -> None:
    """A SIP/3.0 request parses, and check_version flags it for a 505."""
    msg = load(INVALID_DIR / "version_3.msg")
    assert isinstance(msg, Request) and msg.version == "SIP/3.0"
    assert not check_version(msg)


# --- beyond the corpus files --------------------------------------------------------------


def test_bare_lf_line_ends_are_read() -> None:
    """A message written with bare LFs parses as if written with CRLFs."""
    data = (VALID_DIR / "display_names.msg").read_bytes()
    assert parse_message(data.replace(b"\r\n", b"\n")) == load(VALID_DIR / "display_names.msg")


def test_head_without_blank_line_is_a_message_without_body() -> None:
    """A datagram that ends right after its last header field has no body."""
    data = (VALID_DIR / "max_cseq.msg").read_bytes().rstrip(b"\r\n")
    assert parse_message(data) == load(VALID_DIR / "max_cseq.msg")


def test_empty_data_is_a_parse_error() -> None:
    """No bytes, or only CRLFs, is an empty message."""
    for data in (b"", b"\r\n", b"\r\n\r\n"):
        with pytest.raises(ParseError) as info:
            parse_message(data)
        assert info.value.message is None and "Empty" in info.value.reason
