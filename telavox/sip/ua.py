"""Sans-IO building blocks of a user agent (RFC 3261 §8, §12.1.1, §22).

Owns :func:`new_request` (a request outside any dialog with the fields
§8.1.1 requires), :func:`uas_response` (a UAS response that can create a
dialog, §12.1.1, built on :func:`~telavox.sip.message.make_response`) and
:func:`authorize` (the retry of a request challenged with 401/407, §22.2,
§22.3, using :mod:`telavox.sip.digest`).  Requests inside a dialog come from
:class:`~telavox.sip.dialog.Dialog`.  Nothing here does I/O or reads a clock;
the randomness of tags, Call-IDs and cnonces comes from ``os.urandom``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from telavox.sip.digest import (
    Credentials,
    DigestError,
    answer_challenge,
    parse_challenges,
    parse_credentials,
    pick_challenge,
)
from telavox.sip.hdrtypes import NameAddr, Via
from telavox.sip.headers import Headers
from telavox.sip.message import Request, Response, make_response, new_tag
from telavox.sip.uri import Uri

__all__ = [
    "authorize",
    "new_call_id",
    "new_cnonce",
    "new_request",
    "uas_response",
]

Extra = Sequence[tuple[str, str]]

_AUTH_FIELDS = {
    401: ("WWW-Authenticate", "Authorization"),
    407: ("Proxy-Authenticate", "Proxy-Authorization"),
}


def new_call_id(host: str | None = None) -> str:
    """A fresh Call-ID (§8.1.1.4): 96 random bits, ``@host`` when given."""
    word = os.urandom(12).hex()
    return f"{word}@{host}" if host else word


def new_cnonce() -> str:
    """A fresh client nonce for a Digest answer (64 random bits)."""
    return os.urandom(8).hex()


def _name_addr(value: NameAddr | Uri | str) -> NameAddr:
    if isinstance(value, NameAddr):
        return value
    if isinstance(value, str):
        return NameAddr.parse(value)
    return NameAddr(uri=value)


def new_request(
    method: str,
    request_uri: Uri | str,
    *,
    from_: NameAddr | Uri | str,
    to: NameAddr | Uri | str,
    via: Via | str,
    contact: NameAddr | Uri | str | None = None,
    call_id: str | None = None,
    cseq: int = 1,
    max_forwards: int = 70,
    extra: Extra = (),
    body: bytes = b"",
    content_type: str | None = None,
    user_agent: str | None = None,
) -> Request:
    """A request outside any dialog (§8.1.1).

    From gets a fresh tag unless it has one; To is written as given (no tag
    for a request that starts a dialog); Call-ID is fresh unless given.
    Header order: Via, Max-Forwards, To, From, Call-ID, CSeq, Contact,
    User-Agent, ``extra`` in order, Content-Type (when there is a body).
    Raises HeaderError for From/To/Contact text that does not parse.
    """
    sender = _name_addr(from_)
    if sender.tag is None:
        sender = sender.with_tag(new_tag())
    h = Headers()
    h.add("Via", str(via))
    h.add("Max-Forwards", str(max_forwards))
    h.add("To", str(_name_addr(to)))
    h.add("From", str(sender))
    h.add("Call-ID", call_id or new_call_id())
    h.add("CSeq", f"{cseq} {method}")
    if contact is not None:
        h.add("Contact", str(_name_addr(contact)))
    if user_agent:
        h.add("User-Agent", user_agent)
    for name, value in extra:
        h.add(name, value)
    if body and content_type:
        h.add("Content-Type", content_type)
    return Request(method, request_uri, h, body)


def uas_response(
    request: Request,
    status: int,
    reason: str | None = None,
    *,
    to_tag: str | None = None,
    contact: NameAddr | Uri | str | None = None,
    body: bytes = b"",
    content_type: str | None = None,
    extra: Extra = (),
) -> Response:
    """A UAS response to ``request`` (§8.2.6) that may create a dialog.

    Built with :func:`~telavox.sip.message.make_response`; a 101–299
    response also copies the request's Record-Route (§12.1.1) and carries
    ``contact``.  Content-Type is written when there is a body.
    """
    fields: list[tuple[str, str]] = []
    if 100 < status < 300:
        fields.extend(("Record-Route", v) for v in request.headers.get_all("Record-Route"))
        if contact is not None:
            fields.append(("Contact", str(_name_addr(contact))))
    fields.extend(extra)
    if body and content_type:
        fields.append(("Content-Type", content_type))
    return make_response(request, status, reason, to_tag=to_tag, extra=tuple(fields),
                         body=body)


def _sent_credentials(request: Request, name: str) -> list[Credentials]:
    out: list[Credentials] = []
    for value in request.headers.get_all(name):
        try:
            out.append(parse_credentials(value))
        except DigestError:
            continue
    return out


def authorize(
    request: Request,
    response: Response,
    *,
    username: str,
    password: str | None = None,
    ha1: str | None = None,
    cnonce: str,
    nc: int = 1,
    via: Via | str,
) -> Request | None:
    """The retry of ``request`` answering the challenge of its 401/407 ``response``.

    The strongest usable challenge is answered (:func:`pick_challenge`) in
    Authorization (401) or Proxy-Authorization (407); credentials we had
    sent for other realms stay.  The retry keeps Call-ID, From (and its tag),
    To as the request had it (no tag outside a dialog), Request-URI, Route
    and body; its CSeq is one higher and its only Via is ``via`` (a new
    branch: a new transaction, §8.1.3.5).  Inside a dialog the caller must
    set the dialog's local CSeq to the retry's.

    Returns None, so that the caller gives up instead of looping, when the
    response is not a 401/407 to ``request``, offers no challenge this side
    can answer, or challenges a realm we already sent credentials for
    without ``stale=true`` (the password is wrong) or with the nonce we
    answered.  Give exactly one of ``password`` and ``ha1``.
    """
    fields = _AUTH_FIELDS.get(response.status)
    if fields is None:
        return None
    challenge_name, answer_name = fields
    if response.call_id != request.call_id or response.cseq.seq != request.cseq.seq:
        return None
    challenge = pick_challenge(parse_challenges(response.headers.get_all(challenge_name)))
    if challenge is None:
        return None
    for sent in _sent_credentials(request, answer_name):
        if sent.realm == challenge.realm and (not challenge.stale
                                              or sent.nonce == challenge.nonce):
            return None
    try:
        credentials = answer_challenge(
            challenge, method=request.method, uri=request.uri_text, username=username,
            password=password, ha1=ha1, cnonce=cnonce, nc=nc, body=request.body)
    except DigestError:
        return None
    retry = request.copy()
    headers = retry.headers
    others = [v for v in headers.get_all(answer_name) if _realm_of(v) != challenge.realm]
    headers.remove(answer_name)
    for value in others:
        headers.add(answer_name, value)
    headers.set("Via", str(via))
    headers.set("CSeq", f"{request.cseq.seq + 1} {request.method}")
    headers.add(answer_name, credentials.format())
    return retry


def _realm_of(value: str) -> str | None:
    try:
        return parse_credentials(value).realm
    except DigestError:
        return None
