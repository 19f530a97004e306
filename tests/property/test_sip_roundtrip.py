"""Property tests of the SIP message layer's round trips: URIs, name-addrs and
Via values through ``str()`` and back, and whole messages through
``serialize()`` and back, with their typed views matching what was written."""

from __future__ import annotations

from helpers.sip_strategies import (
    TEXT_CHARS,
    DrawnMessage,
    messages,
    name_addrs,
    sip_uris,
    tel_uris,
    uris,
    via_texts,
    vias,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from telavox.sip.hdrtypes import NameAddr, Via
from telavox.sip.headers import Headers
from telavox.sip.message import Request, Response
from telavox.sip.parser import parse_message
from telavox.sip.uri import SipUri, TelUri, escape, parse_uri, unescape


@settings(max_examples=200)
@given(uris())
def test_uri_str_parses_back_to_the_same_uri(uri: SipUri | TelUri) -> None:
    """``parse_uri(str(u)) == u`` and the two are equivalent (§19.1.4)."""
    again = parse_uri(str(uri))
    assert again == uri
    assert again.equivalent(uri) and uri.equivalent(again)
    assert str(again) == str(uri)


@given(sip_uris())
def test_sip_uri_equivalence_ignores_host_case_and_param_order(uri: SipUri) -> None:
    """Host case and the order of distinct parameters do not change SIP URI equivalence."""
    names = [k.lower() for k, _ in uri.params]
    other = SipUri(host=uri.host.upper(), user=uri.user, port=uri.port,
                   params=tuple(reversed(uri.params)), headers=uri.headers,
                   password=uri.password, scheme=uri.scheme)
    if len(set(names)) == len(names):
        assert uri.equivalent(other) and other.equivalent(uri)


@given(tel_uris())
def test_tel_uri_keeps_its_number(uri: TelUri) -> None:
    """A tel URI's digits drop only the visual separators."""
    assert set(uri.digits) <= set(uri.number)
    assert not set(uri.digits) & set("-.()")


@given(st.text(TEXT_CHARS, max_size=20))
def test_escape_then_unescape_is_identity(text: str) -> None:
    """Escaping a user part and unescaping it gives the text back."""
    escaped = escape(text)
    assert unescape(escaped) == text
    if text:
        assert parse_uri(f"sip:{escaped}@example.test") == SipUri.build("example.test", text)


@given(name_addrs())
def test_name_addr_str_parses_back(value: NameAddr) -> None:
    """``NameAddr.parse(str(n)) == n`` for name-addrs with any display name."""
    assert NameAddr.parse(str(value)) == value


@given(vias().flatmap(lambda v: st.tuples(st.just(v), via_texts(v))))
def test_via_text_parses_to_the_same_via(pair: tuple[Via, str]) -> None:
    """A Via written canonically or with odd whitespace parses to the value written."""
    via, text = pair
    assert Via.parse(text) == via
    assert Via.parse(str(via)) == via


def _check_views(msg: Request | Response, gen: DrawnMessage) -> None:
    assert msg.vias == list(gen.vias)
    assert msg.top_via == gen.vias[0]
    assert msg.from_ == gen.from_ and msg.to == gen.to
    assert msg.from_tag == gen.from_.tag
    assert msg.call_id == gen.call_id
    assert (msg.cseq.seq, msg.cseq.method) == (gen.cseq, gen.method)
    assert msg.contacts == list(gen.contacts)
    routes = msg.route_set("Route" if gen.is_request else "Record-Route")
    assert routes == list(gen.routes)
    for name, value in gen.unknown:
        assert value in msg.headers.get_all(name)
    assert msg.body == gen.body


@settings(max_examples=60)
@given(messages())
def test_random_message_parses_with_the_views_it_was_written_with(
        gen: DrawnMessage) -> None:
    """A random message parses, and each typed view gives what was written."""
    msg = parse_message(gen.data)
    assert msg.is_request == gen.is_request
    if isinstance(msg, Request):
        assert msg.method == gen.method
        assert msg.uri == gen.uri
    else:
        assert (msg.status, msg.reason) == (gen.status, gen.reason)
    _check_views(msg, gen)


@settings(max_examples=60)
@given(messages())
def test_random_message_round_trips(gen: DrawnMessage) -> None:
    """parse_message(m.serialize()) == m, serialising is stable, and the views survive."""
    msg = parse_message(gen.data)
    wire = msg.serialize()
    again = parse_message(wire)
    assert again == msg
    assert again.serialize() == wire
    _check_views(again, gen)


@given(st.sampled_from(["OPTIONS", "INVITE", "FOO"]), uris(), vias(), name_addrs(tag=True),
       name_addrs(), st.binary(max_size=50))
def test_built_request_round_trips(method: str, uri: SipUri | TelUri, via: Via,
                                   from_: NameAddr, to: NameAddr, body: bytes) -> None:
    """A request built from typed values serialises to bytes that parse back to it."""
    headers = Headers.of(("Via", str(via)), ("From", str(from_)), ("To", str(to)),
                         ("Call-ID", "built@example.test"), ("CSeq", f"1 {method}"))
    req = Request(method, uri, headers, body)
    again = parse_message(req.serialize())
    assert again == req
    assert isinstance(again, Request) and again.uri == uri and again.top_via == via


@given(st.text(alphabet=";= \tabcz9", max_size=30))
def test_plain_param_split_agrees_with_the_scanner(text: str) -> None:
    """The split-based reading of unquoted parameters gives what the
    character scanner gives (same pairs, or both refuse)."""
    from telavox.sip.grammar import GrammarError, _scan_params, parse_plain_params

    def outcome(reader: object) -> object:
        try:
            return reader()  # type: ignore[operator]
        except GrammarError:
            return "error"

    assert outcome(lambda: parse_plain_params(text)) == outcome(lambda: _scan_params(text, 0))


@given(name_addrs(), st.sampled_from(["", ";tag=a1", ";x=1;tag=b2", ";tag=c3;y"]))
def test_fast_tag_agrees_with_parsing(value: object, tail: str) -> None:
    """Reading a To/From tag without parsing gives what NameAddr.parse gives."""
    text = str(value) + tail
    request = Request("OPTIONS", "sip:x@example.com", Headers.of(("To", text)))
    try:
        expected = NameAddr.parse(text).tag
    except ValueError:
        return
    assert request.to_tag == expected
