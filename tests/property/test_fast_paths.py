"""Property tests of the fast paths of the SIP core against the general code
they stand in for: the text stamping of the top Via, the one-pass split of
Digest credentials, and the parse caches (a cached parse is the parse)."""

from __future__ import annotations

from helpers.sip_strategies import ipv4_addresses, name_addrs, uris, via_texts, vias
from hypothesis import given, settings
from hypothesis import strategies as st

from telavox.sip.digestparse import _split_auth_params, _split_fast
from telavox.sip.grammar import set_param
from telavox.sip.hdrtypes import CSeq, HeaderError, NameAddr, Via
from telavox.sip.transaction.layer import stamped_via_text
from telavox.sip.uri import SipUri, TelUri, UriError, parse_uri

_VIA_PAIRS = vias().flatmap(lambda v: st.tuples(st.just(v), via_texts(v)))


@settings(max_examples=300)
@given(_VIA_PAIRS, st.integers(1, 65535), ipv4_addresses())
def test_stamped_via_text_is_the_stamped_via(pair: tuple[Via, str], port: int,
                                             host: str) -> None:
    """Where the text stamping applies, its text parses to the Via that
    setting received (and filling an rport flag) gives."""
    _, text = pair
    via = Via.parse(text)
    rport = port if via.rport is True else None
    params = via.params
    if rport is not None:
        params = set_param(params, "rport", str(rport))
    params = set_param(params, "received", host)
    fast = stamped_via_text(text, rport, host)
    if fast is not None:
        assert Via.parse(fast) == Via(via.transport, via.host, via.port, params)


def test_stamped_via_text_applies_to_the_usual_spelling() -> None:
    """The Via of a typical phone (rport flag last) is stamped as text,
    keeping its spelling; lists and odd spellings are left to the general
    path."""
    line = "SIP/2.0/UDP 10.0.0.5:5070;branch=z9hG4bK-1;rport"
    assert stamped_via_text(line, 41000, "192.0.2.7") == (
        line + "=41000;received=192.0.2.7")
    assert stamped_via_text("SIP/2.0/UDP a.example.com;branch=z9hG4bK-1", None,
                            "192.0.2.7") == (
        "SIP/2.0/UDP a.example.com;branch=z9hG4bK-1;received=192.0.2.7")
    assert stamped_via_text(line + ", SIP/2.0/UDP b;branch=z9hG4bK-2", 1, "h") is None
    assert stamped_via_text("SIP/2.0/UDP a;rport;branch=z9hG4bK-1", 1, "h") is None
    assert stamped_via_text(line + ";received=h", 1, "h") is None
    assert stamped_via_text("", None, "h") is None


_AUTH_CHARS = st.sampled_from(list('abcXYZ019-_.~"\\=, \t;:@/'))
_AUTH_VALUES = st.builds(
    lambda scheme, params: scheme + params,
    st.sampled_from(["Digest ", "digest\t", " Digest  ", "Basic ", "Digest"]),
    st.lists(
        st.tuples(
            st.sampled_from(["username", "Realm", "nonce", "uri", "x-y", "qop", "a b", ""]),
            st.sampled_from(["=", " = ", "=\t", ""]),
            st.one_of(st.text(_AUTH_CHARS, max_size=8),
                      st.text(_AUTH_CHARS, max_size=8).map(lambda t: f'"{t}"')),
            st.sampled_from([",", ", ", " ,", ",,", ""]),
        ).map("".join),
        max_size=5,
    ).map("".join),
)


def _careful(value: str) -> dict[str, str] | str:
    """The careful parser alone (the fast split turned off)."""
    import telavox.sip.digestparse as module

    saved = module._split_fast
    module._split_fast = lambda text: None  # type: ignore[assignment]
    try:
        return _split_auth_params(value)
    except ValueError as e:
        return f"error: {e}"
    finally:
        module._split_fast = saved


@settings(max_examples=500)
@given(_AUTH_VALUES)
def test_fast_credentials_split_agrees_with_the_careful_parser(value: str) -> None:
    """Whatever the one-pass split accepts, the careful parser reads the
    same way (same names, in order, same unquoted values)."""
    fast = _split_fast(value)
    if fast is not None:
        careful = _careful(value)
        assert careful == fast
        assert list(careful) == list(fast)  # type: ignore[arg-type]


def test_fast_credentials_split_reads_a_typical_answer() -> None:
    """A phone's usual Proxy-Authorization goes through the one-pass split."""
    value = ('Digest username="2001",realm="example.com",cnonce="abc",nc=00000001,'
             'qop=auth,uri="sip:pool@example.com",nonce="bm9uY2U",'
             'response="0123456789abcdef0123456789abcdef",algorithm=MD5')
    fast = _split_fast(value)
    assert fast is not None
    assert fast == _careful(value)


@given(uris())
def test_cached_uri_parse_is_the_parse(uri: SipUri | TelUri) -> None:
    """A URI parsed again (from the cache) equals a fresh parse."""
    text = str(uri)
    first = parse_uri(text)
    assert parse_uri(text) == first == parse_uri.__wrapped__(text)  # type: ignore[attr-defined]


@given(name_addrs())
def test_cached_name_addr_parse_is_the_parse(value: NameAddr) -> None:
    """A name-addr parsed again equals a fresh parse."""
    text = str(value)
    assert NameAddr.parse(text) == NameAddr.parse(text) == NameAddr._parse(text)


@given(st.text(max_size=30))
def test_cached_parsers_stay_total(text: str) -> None:
    """The caches keep the parsers total: any text gives a value or the
    parser's own error, the same on a second call."""
    for parse, error in ((parse_uri, UriError), (Via.parse, HeaderError),
                         (CSeq.parse, HeaderError), (NameAddr.parse, HeaderError)):
        outcomes = []
        for _ in range(2):
            try:
                outcomes.append(parse(text))  # type: ignore[operator]
            except error as e:
                outcomes.append(type(e))
        assert outcomes[0] == outcomes[1]
