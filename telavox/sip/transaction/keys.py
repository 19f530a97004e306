"""Matching messages to transactions (RFC 3261 §17.1.3 and §17.2.3).

Owns the keys.  A server transaction is keyed by the top Via's branch,
sent-by and the method (ACK counting as INVITE) when the branch carries the
magic cookie; otherwise by the RFC 2543 fields (Request-URI, From tag,
Call-ID, CSeq number, top Via, method).  A client transaction is keyed by the
branch of the Via it sent and the CSeq method of the response.
"""

from __future__ import annotations

from telavox.sip.hdrtypes import BRANCH_MAGIC, Via
from telavox.sip.message import Request, Response

ServerKey = tuple[str, ...]
ClientKey = tuple[str, str]


def server_key(request: Request, via: Via, method: str | None = None) -> ServerKey:
    """The key of the server transaction ``request`` belongs to.

    ``method`` overrides the request's (CANCEL uses this to find its INVITE).
    """
    m = method or request.method
    if m == "ACK":
        m = "INVITE"
    branch = via.branch
    if branch is not None and branch.startswith(BRANCH_MAGIC):
        host, port = via.sent_by
        return (branch, host, str(port or ""), m)
    # RFC 2543 fallback (§17.2.3): the To tag is compared separately for ACK.
    return (
        "2543",
        request.uri_text,
        request.from_tag or "",
        request.call_id,
        str(request.cseq.seq),
        str(via),
        m,
    )


def client_key_for_request(request: Request, via: Via) -> ClientKey:
    """The key under which a client transaction waits for its responses."""
    method = request.method
    return (via.branch or "", method)


def client_key_for_response(response: Response, via: Via) -> ClientKey:
    """The key of the client transaction ``response`` answers."""
    return (via.branch or "", response.cseq.method)
