"""Requests and responses: building responses (RFC 3261 §8.2.6), CANCEL
(§9.1) and the ACK of a failed INVITE (§17.1.1.3), serialisation, equality
and the typed views."""

from __future__ import annotations

import pytest
from helpers.sipmsg import request, response_to

from telavox.sip.hdrtypes import HeaderError, Via
from telavox.sip.headers import Headers
from telavox.sip.message import (
    REASON_PHRASES,
    Request,
    Response,
    make_cancel,
    make_error_ack,
    make_response,
    new_branch,
    new_tag,
)
from telavox.sip.parser import parse_message

PROXIED_VIAS = (
    "Via: SIP/2.0/UDP proxy.example.net;branch=z9hG4bKp1, SIP/2.0/TCP edge.example.net"
    ";branch=z9hG4bKe1\r\n"
)


def invite(**kw: object) -> Request:
    """An INVITE that came through two proxies, with a Route set and a Timestamp."""
    extra = str(kw.pop("extra", ""))
    return request(
        "INVITE",
        extra=(PROXIED_VIAS + "Route: <sip:p1.example.net;lr>, <sip:p2.example.net;lr>\r\n"
               "Timestamp: 54.3 0.2\r\nSubject: lunch\r\n" + extra),
        **kw,  # type: ignore[arg-type]
    )


# --- make_response (§8.2.6) ---------------------------------------------------------------


def test_response_copies_via_from_call_id_cseq_and_to_in_order() -> None:
    """A response copies Via, From, To, Call-ID and CSeq in request order, and nothing else."""
    req = invite()
    resp = make_response(req, 486)
    assert resp.headers.get_all("Via") == req.headers.get_all("Via")
    assert [v.branch for v in resp.vias] == ["z9hG4bK776asdhds", "z9hG4bKp1", "z9hG4bKe1"]
    for name in ("From", "Call-ID", "CSeq", "To"):
        assert resp.headers.get(name) == req.headers.get(name)
    for name in ("Contact", "Route", "Max-Forwards", "Subject", "Timestamp"):
        assert name not in resp.headers
    copied = {"Via", "From", "To", "Call-ID", "CSeq"}
    assert list(resp.headers) == [(n, v) for n, v in req.headers if n in copied]
    assert (resp.status, resp.reason) == (486, "Busy Here")


def test_to_tag_is_added_when_absent_and_status_above_100() -> None:
    """A final or provisional (non-100) response gets the given To tag."""
    req = invite()
    for status in (180, 183, 200, 404, 603):
        resp = make_response(req, status, to_tag="ab12")
        assert resp.to.tag == "ab12"
        assert resp.to.uri == req.to.uri and resp.to.display_name == req.to.display_name


def test_no_to_tag_on_100_trying() -> None:
    """100 Trying never carries a To tag (§8.2.6.1)."""
    resp = make_response(invite(), 100, to_tag="ab12")
    assert resp.to.tag is None
    assert resp.headers.get("To") == invite().headers.get("To")


def test_existing_to_tag_is_kept() -> None:
    """A request inside a dialog keeps its To tag; the given one is ignored."""
    req = invite(to_tag="dialog-tag")
    resp = make_response(req, 200, to_tag="other")
    assert resp.to.tag == "dialog-tag"
    assert resp.headers.get("To") == req.headers.get("To")


def test_without_to_tag_the_to_field_is_copied() -> None:
    """No ``to_tag`` given: the To field is copied as it was."""
    resp = make_response(invite(), 200)
    assert resp.to.tag is None


def test_timestamp_is_copied_on_100_only() -> None:
    """Timestamp goes into 100 Trying (§8.2.6.1) and no other response."""
    req = invite()
    assert make_response(req, 100).headers.get("Timestamp") == "54.3 0.2"
    for status in (180, 200, 500):
        assert "Timestamp" not in make_response(req, status).headers


def test_reason_phrases() -> None:
    """The reason phrase defaults from the table, a given one wins, unknown codes get Unknown."""
    req = invite()
    assert make_response(req, 404).reason == "Not Found"
    assert make_response(req, 404, "No Such User").reason == "No Such User"
    assert make_response(req, 499).reason == "Unknown"
    assert make_response(req, 200, "").reason == ""
    assert all(100 <= code < 700 for code in REASON_PHRASES)


def test_extra_headers_and_body() -> None:
    """``extra`` fields are appended in order after the copied ones; the body is set."""
    resp = make_response(invite(), 200, extra=(("Contact", "<sip:b@192.0.2.9>"),
                                               ("Content-Type", "application/sdp")),
                         body=b"v=0\r\n")
    assert [n for n, _ in resp.headers][-2:] == ["Contact", "Content-Type"]
    assert resp.body == b"v=0\r\n"
    assert b"\r\nContent-Length: 5\r\n\r\nv=0\r\n" in resp.serialize()


def test_response_to_a_partial_request() -> None:
    """A request missing fields (a ParseError's partial) can still be answered."""
    partial = Request("OPTIONS", "sip:x@example.test", Headers.of(
        ("Via", "SIP/2.0/UDP 192.0.2.1;branch=z9hG4bKq"), ("To", '"broken <sip:x@h>')))
    resp = make_response(partial, 400, "Missing CSeq header", to_tag="t1")
    assert resp.top_via.branch == "z9hG4bKq"
    assert resp.headers.get("To") == '"broken <sip:x@h>'  # unparsable: left alone
    assert resp.serialize().startswith(b"SIP/2.0 400 Missing CSeq header\r\n")


def test_response_round_trips_through_the_parser() -> None:
    """A built response parses back to an equal response."""
    resp = make_response(invite(), 180, to_tag="ab12")
    assert parse_message(resp.serialize()) == resp


# --- CANCEL (§9.1) and ACK for a failure (§17.1.1.3) --------------------------------------


def test_cancel_matches_the_invite() -> None:
    """CANCEL keeps R-URI, Call-ID, From, To, CSeq number, the top Via only and the Routes."""
    inv = invite(uri="sip:bob@192.0.2.9;transport=udp")
    cancel = make_cancel(inv)
    assert cancel.method == "CANCEL" and cancel.uri_text == inv.uri_text
    assert cancel.headers.get_all("Via") == ["SIP/2.0/UDP pc33.atlanta.example.com"
                                             ";branch=z9hG4bK776asdhds"]
    assert cancel.top_via == inv.top_via
    for name in ("From", "To", "Call-ID"):
        assert cancel.headers.get(name) == inv.headers.get(name)
    assert (cancel.cseq.seq, cancel.cseq.method) == (inv.cseq.seq, "CANCEL")
    assert cancel.headers.get_all("Route") == inv.headers.get_all("Route")
    assert cancel.int_header("Max-Forwards") == 70
    assert "Contact" not in cancel.headers and cancel.body == b""
    assert parse_message(cancel.serialize()) == cancel


def test_error_ack_takes_to_from_the_response() -> None:
    """A failure's ACK takes To from the response, the rest and one Via from the INVITE."""
    inv = invite()
    resp = response_to(inv, 486, to_tag="busy-tag")
    ack = make_error_ack(inv, resp)
    assert ack.method == "ACK" and ack.uri_text == inv.uri_text
    assert ack.headers.get("To") == resp.headers.get("To") and ack.to_tag == "busy-tag"
    assert ack.headers.get("From") == inv.headers.get("From")
    assert ack.call_id == inv.call_id
    assert (ack.cseq.seq, ack.cseq.method) == (inv.cseq.seq, "ACK")
    assert len(ack.headers.get_all("Via")) == 1 and ack.top_via == inv.top_via
    assert ack.route_set() == inv.route_set()
    assert parse_message(ack.serialize()) == ack


def test_new_branch_and_tag() -> None:
    """Branches carry the magic cookie and 64 random bits; tags have at least
    the 32 random bits of §19.3; both are fresh each time, also across a
    refill of the random pool."""
    assert new_branch().startswith("z9hG4bK") and len(new_branch()) == 7 + 16
    assert len(new_tag()) >= 8
    tags = {new_tag() for _ in range(2000)}
    branches = {new_branch() for _ in range(2000)}
    assert len(tags) == 2000 and len(branches) == 2000


# --- serialisation and equality -----------------------------------------------------------


def test_serialize_writes_content_length_from_the_body_in_place() -> None:
    """serialize() writes one Content-Length, from the body, where the first one stood."""
    h = Headers.of(("Via", "SIP/2.0/UDP a;branch=z9hG4bK1"), ("l", "999"), ("X-After", "1"),
                   ("Content-Length", "3"))
    msg = Request("MESSAGE", "sip:b@example.test", h, b"hello")
    wire = msg.serialize()
    assert wire == (b"MESSAGE sip:b@example.test SIP/2.0\r\n"
                    b"Via: SIP/2.0/UDP a;branch=z9hG4bK1\r\n"
                    b"Content-Length: 5\r\n"
                    b"X-After: 1\r\n\r\nhello")
    assert bytes(msg) == wire


def test_serialize_appends_content_length_when_absent() -> None:
    """Without a Content-Length field one is written last, 0 for no body."""
    resp = Response(200, headers=Headers.of(("Call-ID", "x")))
    assert resp.serialize() == b"SIP/2.0 200 OK\r\nCall-ID: x\r\nContent-Length: 0\r\n\r\n"


def test_equality_ignores_content_length_only() -> None:
    """Messages equal but for Content-Length are equal; any other difference is not."""
    a = Request("OPTIONS", "sip:x", Headers.of(("Call-ID", "1"), ("Content-Length", "0")))
    b = Request("OPTIONS", "sip:x", Headers.of(("Call-ID", "1")))
    assert a == b
    assert a != Request("OPTIONS", "sip:y", Headers.of(("Call-ID", "1")))
    assert a != Request("OPTIONS", "sip:x", Headers.of(("Call-ID", "2")))
    assert a != Request("OPTIONS", "sip:x", Headers.of(("Call-ID", "1")), b"body")
    assert a != Request("INFO", "sip:x", Headers.of(("Call-ID", "1")))
    assert a != Response(200)
    assert Response(200, "OK") != Response(200, "Fine")
    assert Response(200) == Response(200, "OK")


def test_copy_is_independent() -> None:
    """Editing a copy's headers leaves the original alone."""
    req = invite()
    dup = req.copy()
    assert dup == req
    dup.headers.pop_first_value("Via")
    dup.headers.set("Max-Forwards", "69")
    assert dup != req and len(req.vias) == 3
    resp = make_response(req, 200)
    rdup = resp.copy()
    rdup.headers.remove("Via")
    assert "Via" in resp.headers


def test_request_uri_is_parsed_lazily() -> None:
    """The Request-URI text is kept; the URI is parsed on first use and can be set."""
    req = Request("OPTIONS", "sip:bob@example.test;lr", Headers())
    assert req.uri_text == "sip:bob@example.test;lr" and req.uri_valid()
    assert req.uri.lr  # type: ignore[union-attr]
    bad = Request("OPTIONS", "sip:bob@", Headers())
    assert not bad.uri_valid()
    bad.uri = req.uri
    assert bad.uri_text == "sip:bob@example.test;lr" and bad.uri_valid()
    assert "OPTIONS" in repr(req) and "200" in repr(Response(200))


# --- typed views --------------------------------------------------------------------------


def test_typed_views_of_a_request() -> None:
    """The typed views read Via, CSeq, From/To, Contact, Route and integers."""
    req = invite(extra="Expires: 300\r\nSupported: Timer, 100rel\r\n"
                       "Content-Type: Application/SDP; charset=x\r\n")
    assert req.top_via.host == "pc33.atlanta.example.com"
    assert req.cseq.seq == 314159 and req.cseq.method == "INVITE"
    assert req.from_tag == "1928301774" and req.to_tag is None
    assert [str(c.uri) for c in req.contacts] == ["sip:alice@pc33.atlanta.example.com"]
    assert not req.contact_star
    assert [str(r.uri) for r in req.route_set()] == ["sip:p1.example.net;lr",
                                                     "sip:p2.example.net;lr"]
    assert req.int_header("Expires") == 300 and req.int_header("Min-Expires") is None
    assert req.option_tags("Supported") == ["timer", "100rel"]
    assert req.content_type == "application/sdp"
    resp = response_to(req, 200)
    assert resp.success and not resp.provisional
    assert response_to(req, 180).provisional


def test_typed_views_follow_changes_of_their_field() -> None:
    """A parsed view is kept until its field changes, whichever way the field
    is changed, and a copy keeps the views of the fields it shares."""
    req = invite()
    first = req.top_via
    assert req.top_via is first
    req.headers.insert_at_top("Via", "SIP/2.0/UDP p1.example.net;branch=z9hG4bKp1")
    assert req.top_via.host == "p1.example.net"
    req.headers.pop_first_value("Via")
    assert req.top_via == first
    req.headers.set("CSeq", "7 INVITE")
    assert req.cseq.seq == 7
    copy = req.copy()
    assert copy.cseq is req.cseq
    copy.headers.set("CSeq", "8 INVITE")
    assert copy.cseq.seq == 8 and req.cseq.seq == 7
    req.headers.building().append(("to", "To", "<sip:carol@example.com>"))
    req.headers.remove("To")
    req.headers.add("To", "<sip:dave@example.com>")
    assert str(req.to.uri) == "sip:dave@example.com"


def test_via_rport_values() -> None:
    """rport: the port when filled in, else None; has_rport whenever present."""
    absent = Via.parse("SIP/2.0/UDP h;branch=z9hG4bK1")
    assert absent.rport is None and absent.has_rport is False
    flag = Via.parse("SIP/2.0/UDP h;rport")
    assert flag.rport is None and flag.has_rport is True
    filled = Via.parse("SIP/2.0/UDP h;rport=5062")
    assert filled.rport == 5062 and filled.has_rport is True
    for unreadable in ("²", "123456"):
        via = Via.parse(f"SIP/2.0/UDP h;rport={unreadable}")
        assert via.rport is None and via.has_rport is True


@pytest.mark.parametrize("value", ["-1", "abc", "4294967296", "12345678901", "١٢"])
def test_int_header_rejects_bad_numbers(value: str) -> None:
    """Integer fields that are not 32-bit unsigned numbers raise HeaderError."""
    req = invite(extra=f"Expires: {value}\r\n")
    with pytest.raises(HeaderError):
        req.int_header("Expires")


def test_missing_mandatory_fields_raise_key_error() -> None:
    """Views of absent mandatory fields raise KeyError."""
    empty = Request("OPTIONS", "sip:x", Headers())
    for view in ("top_via", "cseq", "from_", "to", "call_id"):
        with pytest.raises(KeyError):
            getattr(empty, view)
    assert empty.contacts == [] and empty.vias == [] and empty.content_type is None


@pytest.mark.parametrize(("name", "value", "view"), [
    ("Via", ", ,", "top_via"),
    ("Via", 'SIP/2.0/UDP h;x="open, SIP/2.0/UDP g', "top_via"),
    ("Via", 'SIP/2.0/UDP h;x="open, SIP/2.0/UDP g', "vias"),
    ("Via", "SIP/2.0/UDP h;;x", "top_via"),
    ("Contact", '"open <sip:a@h>, <sip:b@h>', "contacts"),
    ("Contact", '"open <sip:a@h>, <sip:b@h>', "contact_star"),
    ("Contact", "<sip:a@h>;p=\"open", "contacts"),
    ("Route", "<sip:a@h, <sip:b@h>", "route_set"),
    ("CSeq", "1", "cseq"),
    ("From", "<sip:a@h", "from_"),
    ("To", "sip:a@h?x=1", "to"),
])
def test_malformed_fields_raise_header_error(name: str, value: str, view: str) -> None:
    """Typed views of malformed fields raise HeaderError, never a bare GrammarError."""
    msg = Request("OPTIONS", "sip:x", Headers.of((name, value)))
    with pytest.raises(HeaderError):
        attr = getattr(msg, view)
        if callable(attr):
            attr()
