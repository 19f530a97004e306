"""Session timers (RFC 4028) and the Require check (RFC 3261 §8.2.2.3)."""

from __future__ import annotations

from typing import Any

from telavox.sip.parser import parse_message
from telavox.tproxy.sessiontimer import MIN_SE, SessionTimer, negotiate, unsupported


def invite(extra: str) -> Any:
    text = ("INVITE sip:1002@pbx.example.test SIP/2.0\r\n"
            "Via: SIP/2.0/UDP 127.0.0.1:5060;branch=z9hG4bK-1\r\nMax-Forwards: 70\r\n"
            "From: <sip:1001@pbx.example.test>;tag=a\r\nTo: <sip:1002@pbx.example.test>\r\n"
            "Call-ID: st\r\nCSeq: 1 INVITE\r\nContact: <sip:1001@127.0.0.1>\r\n"
            f"{extra}Content-Length: 0\r\n\r\n")
    return parse_message(text.encode())


def test_require_check() -> None:
    """Options we do not implement are listed for 420; timer and replaces pass."""
    assert unsupported(invite("Require: precondition, timer, 100rel\r\n")) == ["precondition"]
    assert unsupported(invite("Require: timer\r\nRequire: replaces\r\n")) == []
    assert unsupported(invite("")) == []


def test_negotiation() -> None:
    """No Session-Expires: no timer; too small: the Min-SE for 422 (at least
    90 s, or the request's Min-SE); a caller that supports timers refreshes
    itself unless it asked us to; one that does not leaves it to us."""
    assert negotiate(invite("")) is None
    assert negotiate(invite("Session-Expires: 60\r\nSupported: timer\r\n")) == MIN_SE
    assert negotiate(invite("Session-Expires: 100\r\nMin-SE: 120\r\n")) == 120
    assert negotiate(invite("Session-Expires: 1800\r\nSupported: timer\r\n")) == \
        SessionTimer(1800, "uac")
    assert negotiate(invite("x: 1800;refresher=uas\r\nk: timer\r\n")) == \
        SessionTimer(1800, "uas")
    assert negotiate(invite("Session-Expires: 1800;refresher=uac\r\n")) == \
        SessionTimer(1800, "uas")
    timer = SessionTimer(90, "uac")
    assert timer.expiry == 60 and timer.refresh_after == 45
    assert timer.header == "90;refresher=uac"
