"""User agent helpers: requests outside dialogs (§8.1.1), UAS responses
(§12.1.1) and the digest retry of a challenged request (§22), checked
against a real DigestServer."""

from __future__ import annotations

from helpers.sipmsg import request

from telavox.sip.digest import DigestServer, ha1, parse_credentials
from telavox.sip.message import Request, Response, make_response
from telavox.sip.parser import parse_message
from telavox.sip.ua import authorize, new_call_id, new_request, uas_response

SECRET = b"0123456789abcdef0123456789abcdef"
REALM = "atlanta.example.com"
NOW = 1000.0
VIA2 = "SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bKretry;rport"


def reparse(message: Request | Response) -> Request | Response:
    return parse_message(message.serialize())


def register() -> Request:
    req = new_request(
        "REGISTER", "sip:atlanta.example.com",
        from_="Alice <sip:alice@atlanta.example.com>", to="<sip:alice@atlanta.example.com>",
        via="SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bKfirst;rport",
        contact="<sip:alice@192.0.2.10:5060>", cseq=7, extra=(("Expires", "3600"),),
        body=b"note", content_type="text/plain")
    parsed = reparse(req)
    assert isinstance(parsed, Request)
    return parsed


def challenge(req: Request, server: DigestServer, status: int = 401, *,
              stale: bool = False, now: float = NOW) -> Response:
    name = "WWW-Authenticate" if status == 401 else "Proxy-Authenticate"
    extra = tuple((name, v) for v in server.challenge(now, stale=stale))
    resp = reparse(make_response(req, status, to_tag="srv", extra=extra))
    assert isinstance(resp, Response)
    return resp


def verify(server: DigestServer, req: Request, password: str = "secret",
           header: str = "Authorization", now: float = NOW) -> str:
    creds = parse_credentials(req.headers.get(header) or "")
    assert creds.uri == req.uri_text
    stored = ha1("alice", REALM, password, creds.algorithm)
    return server.verify(creds, req.method, stored, now, body=req.body).kind.value


# --- new_request ------------------------------------------------------------------


def test_new_request_has_the_mandatory_fields_and_fresh_identifiers() -> None:
    """§8.1.1: mandatory fields, fresh From tag and Call-ID, body with Content-Type."""
    a, b = register(), register()
    assert a.method == "REGISTER" and a.uri_text == "sip:atlanta.example.com"
    assert a.int_header("Max-Forwards") == 70
    assert a.from_tag and a.from_tag != b.from_tag
    assert a.to_tag is None
    assert a.call_id != b.call_id
    assert str(a.cseq) == "7 REGISTER"
    assert a.top_via.branch == "z9hG4bKfirst"
    assert a.headers.get("Contact") == "<sip:alice@192.0.2.10:5060>"
    assert a.headers.get("Expires") == "3600"
    assert a.body == b"note" and a.content_type == "text/plain"


def test_new_request_keeps_given_tag_call_id_and_sets_user_agent() -> None:
    """A From tag and Call-ID given by the caller are kept; User-Agent is written."""
    req = new_request("OPTIONS", "sip:bob@biloxi.example.com",
                      from_="<sip:alice@atlanta.example.com>;tag=abc",
                      to="<sip:bob@biloxi.example.com>", via=VIA2, call_id="cid-1",
                      max_forwards=5, user_agent="telavox/1")
    assert req.from_tag == "abc" and req.call_id == "cid-1"
    assert req.int_header("Max-Forwards") == 5
    assert req.headers.get("User-Agent") == "telavox/1"
    assert "Content-Type" not in req.headers and "Contact" not in req.headers
    assert len(new_call_id("h.example").split("@")) == 2


# --- uas_response -------------------------------------------------------------------


def test_uas_response_copies_record_route_and_adds_contact_for_dialogs() -> None:
    """§12.1.1: a 1xx/2xx copies Record-Route and carries Contact; a failure does not."""
    invite = request("INVITE", extra="Record-Route: <sip:p1.example.com;lr>\r\n")
    ok = uas_response(invite, 200, to_tag="t", contact="<sip:bob@192.0.2.4>",
                      body=b"v=0\r\n", content_type="application/sdp")
    assert ok.headers.values("Record-Route") == ["<sip:p1.example.com;lr>"]
    assert ok.headers.get("Contact") == "<sip:bob@192.0.2.4>"
    assert ok.to_tag == "t" and ok.content_type == "application/sdp"
    busy = uas_response(invite, 486, to_tag="t", contact="<sip:bob@192.0.2.4>")
    assert "Record-Route" not in busy.headers and "Contact" not in busy.headers


# --- authorize ------------------------------------------------------------------------


def test_401_retry_carries_credentials_the_server_accepts() -> None:
    """A 401 retry verifies OK and keeps Call-ID/From/To/body with CSeq+1, new Via."""
    server = DigestServer(SECRET, REALM)
    req = register()
    retry = authorize(req, challenge(req, server), username="alice", password="secret",
                      cnonce="c1", via=VIA2)
    assert retry is not None
    retry = reparse(retry)
    assert isinstance(retry, Request)
    assert verify(server, retry) == "ok"
    assert retry.call_id == req.call_id and retry.from_tag == req.from_tag
    assert retry.to_tag is None
    assert str(retry.cseq) == "8 REGISTER"
    assert [v.branch for v in retry.vias] == ["z9hG4bKretry"]
    assert retry.body == req.body and retry.uri_text == req.uri_text
    assert parse_credentials(retry.headers.get("Authorization") or "").algorithm == "SHA-256"
    assert req.headers.get("Authorization") is None


def test_407_is_answered_in_proxy_authorization() -> None:
    """A 407 is answered with Proxy-Authorization, not Authorization."""
    server = DigestServer(SECRET, REALM, algorithms=("MD5",))
    req = register()
    retry = authorize(req, challenge(req, server, 407), username="alice", password="secret",
                      cnonce="c1", via=VIA2)
    assert retry is not None
    assert "Authorization" not in retry.headers
    assert verify(server, retry, header="Proxy-Authorization") == "ok"


def test_stored_ha1_answers_like_the_password() -> None:
    """authorize() accepts the HA1 of the challenged algorithm instead of a password."""
    server = DigestServer(SECRET, REALM, algorithms=("MD5",))
    req = register()
    retry = authorize(req, challenge(req, server), username="alice",
                      ha1=ha1("alice", REALM, "secret", "MD5"), cnonce="c1", via=VIA2)
    assert retry is not None and verify(server, retry) == "ok"


def test_wrong_password_gives_up_on_the_second_challenge() -> None:
    """A wrong password: the second, non-stale challenge gives None, not a loop."""
    server = DigestServer(SECRET, REALM)
    req = register()
    retry = authorize(req, challenge(req, server), username="alice", password="wrong",
                      cnonce="c1", via=VIA2)
    assert retry is not None
    assert verify(server, retry) == "bad-response"
    again = challenge(retry, server, now=NOW + 1)
    assert authorize(retry, again, username="alice", password="wrong", cnonce="c2",
                     via=VIA2) is None


def test_stale_nonce_is_answered_again_with_the_new_nonce() -> None:
    """A stale=true challenge is answered again, replacing that realm's credentials."""
    server = DigestServer(SECRET, REALM, nonce_lifetime=10)
    req = register()
    retry = authorize(req, challenge(req, server), username="alice", password="secret",
                      cnonce="c1", via=VIA2)
    assert retry is not None
    assert verify(server, retry, now=NOW + 60) == "stale"
    stale = challenge(retry, server, stale=True, now=NOW + 60)
    third = authorize(retry, stale, username="alice", password="secret", cnonce="c2",
                      via="SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK3")
    assert third is not None
    assert len(third.headers.get_all("Authorization")) == 1
    assert str(third.cseq) == "9 REGISTER"
    assert verify(server, third, now=NOW + 61) == "ok"


def test_stale_challenge_with_the_nonce_we_answered_gives_up() -> None:
    """A stale=true challenge repeating the nonce we already used is not retried."""
    server = DigestServer(SECRET, REALM)
    req = register()
    first = challenge(req, server)
    retry = authorize(req, first, username="alice", password="secret", cnonce="c1", via=VIA2)
    assert retry is not None
    sent = parse_credentials(retry.headers.get("Authorization") or "")
    values = [v.replace("algorithm=", "stale=true, algorithm=")
              for v in first.headers.get_all("WWW-Authenticate")]
    resp = reparse(make_response(retry, 401, to_tag="srv",
                                 extra=tuple(("WWW-Authenticate", v) for v in values)))
    assert isinstance(resp, Response)
    assert sent.nonce in values[0]
    assert authorize(retry, resp, username="alice", password="secret", cnonce="c2",
                     via=VIA2) is None


def test_credentials_for_another_realm_are_kept() -> None:
    """Answering one realm keeps the credentials already sent for another."""
    other = DigestServer(SECRET, "proxy.example.com", algorithms=("MD5",))
    req = register()
    first = authorize(req, challenge(req, other), username="alice", password="secret",
                      cnonce="c1", via=VIA2)
    assert first is not None
    server = DigestServer(SECRET, REALM)
    second = authorize(first, challenge(first, server), username="alice", password="secret",
                       cnonce="c2", via=VIA2)
    assert second is not None
    realms = [parse_credentials(v).realm for v in second.headers.get_all("Authorization")]
    assert realms == ["proxy.example.com", REALM]


def test_no_usable_challenge_gives_none() -> None:
    """No retry without a Digest challenge, for other statuses or another request."""
    req = register()
    basic = make_response(req, 401, to_tag="s", extra=(("WWW-Authenticate", 'Basic realm="x"'),))
    assert authorize(req, basic, username="a", password="p", cnonce="c", via=VIA2) is None
    bare = make_response(req, 407, to_tag="s")
    assert authorize(req, bare, username="a", password="p", cnonce="c", via=VIA2) is None
    server = DigestServer(SECRET, REALM)
    forbidden = challenge(req, server)
    forbidden.status = 403
    assert authorize(req, forbidden, username="a", password="p", cnonce="c", via=VIA2) is None
    other = register()
    assert authorize(other, challenge(req, server), username="a", password="p", cnonce="c",
                     via=VIA2) is None
