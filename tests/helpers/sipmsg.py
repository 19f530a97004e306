"""Small builders of SIP messages for tests."""

from __future__ import annotations

from telavox.sip.message import Request, Response, make_response
from telavox.sip.parser import parse_message


def request(
    method: str = "INVITE",
    *,
    uri: str = "sip:bob@biloxi.example.com",
    branch: str = "z9hG4bK776asdhds",
    via_host: str = "pc33.atlanta.example.com",
    via_extra: str = "",
    transport: str = "UDP",
    cseq: int = 314159,
    cseq_method: str | None = None,
    call_id: str = "a84b4c76e66710@pc33.atlanta.example.com",
    from_tag: str = "1928301774",
    to_tag: str | None = None,
    body: bytes = b"",
    extra: str = "",
) -> Request:
    """A well-formed request, parsed from text as it would arrive."""
    to = "Bob <sip:bob@biloxi.example.com>" + (f";tag={to_tag}" if to_tag else "")
    text = (
        f"{method} {uri} SIP/2.0\r\n"
        f"Via: SIP/2.0/{transport} {via_host}{';branch=' + branch if branch else ''}{via_extra}\r\n"
        "Max-Forwards: 70\r\n"
        f"To: {to}\r\n"
        f"From: Alice <sip:alice@atlanta.example.com>;tag={from_tag}\r\n"
        f"Call-ID: {call_id}\r\n"
        f"CSeq: {cseq} {cseq_method or method}\r\n"
        "Contact: <sip:alice@pc33.atlanta.example.com>\r\n"
        f"{extra}"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    msg = parse_message(text)
    assert isinstance(msg, Request)
    return msg


def response_to(req: Request, status: int, to_tag: str | None = "8321234356") -> Response:
    """A response to ``req`` as the far end would send it (re-parsed)."""
    resp = make_response(req, status, to_tag=to_tag if status > 100 else None)
    parsed = parse_message(resp.serialize())
    assert isinstance(parsed, Response)
    return parsed
