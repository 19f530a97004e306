"""The proxy rules of RFC 3261 §16 as pure functions."""

from __future__ import annotations

from helpers.sipmsg import request, response_to

from telavox.sip.hdrtypes import Via
from telavox.sip.message import Response
from telavox.sip.proxycore import (
    Refusal,
    best_response,
    forwarded_request,
    is_dialog_creating,
    is_loop,
    loop_branch,
    next_hop,
    pop_own_routes,
    record_route,
    response_upstream,
    validate,
)
from telavox.sip.uri import SipUri

PROXY = ("proxy.example.com", 5060)


def ours(uri: SipUri) -> bool:
    return uri.host_bare == PROXY[0] and (uri.port or 5060) == PROXY[1]


def test_validate_refusals() -> None:
    """§16.3: 416 for a non-SIP URI, 483 when Max-Forwards is 0 (except
    OPTIONS), 400 for a bad Max-Forwards, 420 listing unsupported Proxy-Require."""
    assert validate(request()) is None
    tel = request(uri="tel:+4681234")
    assert validate(tel) == (Refusal.UNSUPPORTED_URI_SCHEME, ())
    zero = request()
    zero.headers.set("Max-Forwards", "0")
    assert validate(zero) == (Refusal.TOO_MANY_HOPS, ())
    options = request("OPTIONS")
    options.headers.set("Max-Forwards", "0")
    assert validate(options) is None
    bad = request()
    bad.headers.set("Max-Forwards", "many")
    assert validate(bad) == (Refusal.MALFORMED_MAX_FORWARDS, ())
    req = request(extra="Proxy-Require: foo, bar\r\n")
    refusal, extra = validate(req) or (None, ())
    assert refusal is Refusal.BAD_EXTENSION and extra == (("Unsupported", "foo, bar"),)
    assert validate(req, frozenset({"foo", "bar"})) is None


def test_dialog_creating() -> None:
    """INVITE/SUBSCRIBE/REFER/NOTIFY without To tag create dialogs; others do not."""
    assert is_dialog_creating(request("INVITE"))
    assert not is_dialog_creating(request("INVITE", to_tag="x"))
    assert not is_dialog_creating(request("MESSAGE"))


def test_pop_own_routes_loose_and_double() -> None:
    """Our Route values at the top are removed, both of a double Record-Route."""
    req = request(extra="Route: <sip:proxy.example.com;lr>, "
                        "<sip:proxy.example.com:5060;transport=tcp;lr>\r\n"
                        "Route: <sip:other.example.com;lr>\r\n")
    assert pop_own_routes(req, ours) == 2
    assert req.headers.values("Route") == ["<sip:other.example.com;lr>"]
    assert pop_own_routes(req, ours) == 0


def test_pop_own_routes_strict_previous_hop() -> None:
    """A Request-URI naming us came from a strict router: the last Route
    becomes the Request-URI (§16.4)."""
    req = request(uri="sip:proxy.example.com",
                  extra="Route: <sip:hop.example.com;lr>, <sip:bob@192.0.2.4>\r\n")
    pop_own_routes(req, ours)
    assert req.uri_text == "sip:bob@192.0.2.4"
    assert req.headers.values("Route") == ["<sip:hop.example.com;lr>"]


def test_next_hop() -> None:
    """A loose first Route is the next hop; a strict one becomes the
    Request-URI and the old Request-URI the last Route; no Route: R-URI."""
    loose = request(extra="Route: <sip:a.example.com;lr>\r\n")
    hop = next_hop(loose)
    assert hop is not None and hop.host == "a.example.com"
    assert loose.uri_text == "sip:bob@biloxi.example.com"
    strict = request(extra="Route: <sip:b.example.com>\r\n")
    hop = next_hop(strict)
    assert hop is not None and hop.host == "b.example.com"
    assert strict.uri_text == "sip:b.example.com"
    assert strict.headers.values("Route") == ["<sip:bob@biloxi.example.com>"]
    plain = request()
    hop = next_hop(plain)
    assert hop is not None and hop.user == "bob"


def test_forwarded_request() -> None:
    """The branch copy: new Request-URI, Max-Forwards decremented, our
    Record-Route values on top in order, our Via on top; the original kept."""
    original = request(extra="Record-Route: <sip:earlier.example.com;lr>\r\n")
    via = Via.build("UDP", "proxy.example.com", 5060, "z9hG4bK-x")
    rr = (record_route("10.0.0.1", 5060, "tcp"), record_route("10.0.0.2", 5060, "udp"))
    target = SipUri.parse("sip:bob@192.0.2.4:5062")
    copy = forwarded_request(original, target, via, rr)
    assert copy.uri_text == "sip:bob@192.0.2.4:5062"
    assert copy.headers.get("Max-Forwards") == "69"
    assert copy.headers.values("Record-Route") == [
        "<sip:10.0.0.2:5060;lr>", "<sip:10.0.0.1:5060;transport=tcp;lr>",
        "<sip:earlier.example.com;lr>"]
    assert copy.top_via.branch == "z9hG4bK-x"
    assert len(copy.vias) == 2
    assert original.headers.get("Max-Forwards") == "70"
    assert len(original.vias) == 1
    missing = request()
    missing.headers.remove("Max-Forwards")
    assert forwarded_request(missing, None, via).headers.get("Max-Forwards") == "70"


def test_loop_and_spiral() -> None:
    """A request that comes back with our Via and the same defining fields is
    a loop; one whose Request-URI changed is a spiral."""
    req = request()
    branch = loop_branch(req) + ".1.0"
    back = request(extra=f"Via: SIP/2.0/UDP proxy.example.com;branch={branch}\r\n")

    def own(via: Via) -> bool:
        return via.sent_by[0] == "proxy.example.com"

    assert is_loop(back, own)
    spiral = request(uri="sip:carol@biloxi.example.com",
                     extra=f"Via: SIP/2.0/UDP proxy.example.com;branch={branch}\r\n")
    assert not is_loop(spiral, own)
    assert not is_loop(request(), own)


def _responses(*statuses: int) -> list[Response]:
    req = request()
    return [response_to(req, s) for s in statuses]


def test_best_response_order() -> None:
    """§16.7 step 6: a 6xx wins, then the lowest class; 401/407/415/420/484
    are preferred among 4xx; a 503 is sent as 500."""
    assert best_response(_responses(486, 603, 200)).status == 603
    assert best_response(_responses(486, 302, 500)).status == 302
    assert best_response(_responses(486, 404, 407)).status == 407
    assert best_response(_responses(500, 486)).status == 486
    converted = best_response(_responses(503))
    assert (converted.status, converted.reason) == (500, "Server Internal Error")


def test_challenges_are_aggregated() -> None:
    """§16.7 step 7: the challenges of every 401/407 branch go up together."""
    one, two = _responses(407, 401)
    one.headers.add("Proxy-Authenticate", 'Digest realm="a", nonce="1"')
    two.headers.add("WWW-Authenticate", 'Digest realm="b", nonce="2"')
    best = best_response([one, two])
    assert best.status in (401, 407)
    assert best.headers.get_all("Proxy-Authenticate") == ['Digest realm="a", nonce="1"']
    assert best.headers.get_all("WWW-Authenticate") == ['Digest realm="b", nonce="2"']


def test_response_upstream_drops_top_via() -> None:
    """The response forwarded up has our Via removed; the original is kept."""
    req = request(extra="Via: SIP/2.0/UDP second.example.com;branch=z9hG4bK2\r\n")
    response = response_to(req, 180)
    up = response_upstream(response)
    assert len(up.vias) == len(response.vias) - 1
    assert up.top_via.host == "second.example.com"
