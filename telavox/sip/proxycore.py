"""The proxy rules of RFC 3261 §16, as pure functions.

Owns request validation (§16.3), Route pre-processing (§16.4, with the
double Record-Route of a proxy that changes transport or interface),
building the request forwarded on a branch (§16.6: Request-URI, Max-Forwards,
Record-Route, Via with a loop-detecting branch), loop detection (§16.3 step 4),
and choosing and shaping the response sent back (§16.7: best response,
503→500, aggregated challenges, top Via removed).  The stateful machinery
(server transaction, branches, Timer C, CANCEL) lives with the component that
uses these rules; nothing here does I/O or reads a clock.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable

from telavox.sip.errors import StatusEnum
from telavox.sip.hdrtypes import BRANCH_MAGIC, HeaderError, NameAddr, Via
from telavox.sip.message import Request, Response
from telavox.sip.uri import SipUri

__all__ = [
    "DEFAULT_MAX_FORWARDS",
    "Refusal",
    "best_response",
    "forwarded_request",
    "is_dialog_creating",
    "is_loop",
    "loop_branch",
    "next_hop",
    "pop_own_routes",
    "record_route",
    "response_upstream",
    "validate",
]

DEFAULT_MAX_FORWARDS = 70
DIALOG_CREATING = frozenset({"INVITE", "SUBSCRIBE", "REFER", "NOTIFY"})


class Refusal(StatusEnum):
    """Why a proxy answers a request itself instead of forwarding it."""

    UNSUPPORTED_URI_SCHEME = (416, "Unsupported URI Scheme")
    MALFORMED_MAX_FORWARDS = (400, "Malformed Max-Forwards")
    TOO_MANY_HOPS = (483, "Too Many Hops")
    LOOP_DETECTED = (482, "Loop Detected")
    BAD_EXTENSION = (420, "Bad Extension")
    MALFORMED_ROUTE = (400, "Malformed Route")


def validate(request: Request, supported: frozenset[str] = frozenset()
             ) -> tuple[Refusal, tuple[tuple[str, str], ...]] | None:
    """§16.3 steps 2, 3 and 6: a refusal with its extra header fields, or None.

    (Step 1, syntax, is the parser's; step 4, loops, needs the proxy's own
    addresses: :func:`is_loop`; step 5 is the caller's policy.)
    """
    if not isinstance(request.uri, SipUri):
        return Refusal.UNSUPPORTED_URI_SCHEME, ()
    try:
        max_forwards = request.int_header("Max-Forwards")
    except HeaderError:
        return Refusal.MALFORMED_MAX_FORWARDS, ()
    if max_forwards == 0 and request.method != "OPTIONS":
        return Refusal.TOO_MANY_HOPS, ()
    try:
        required = request.option_tags("Proxy-Require")
    except HeaderError:
        return Refusal.BAD_EXTENSION, ()
    unsupported = [tag for tag in required if tag not in supported]
    if unsupported:
        return Refusal.BAD_EXTENSION, (("Unsupported", ", ".join(unsupported)),)
    return None


def is_dialog_creating(request: Request) -> bool:
    """True for a request outside a dialog that may create one (§12.1)."""
    return request.method in DIALOG_CREATING and request.to_tag is None


def pop_own_routes(request: Request, is_ours: Callable[[SipUri], bool]) -> int:
    """§16.4: remove the Route values at the top that name this proxy (two of
    them after a double Record-Route); if the Request-URI names us, the
    previous hop was a strict router: the last Route becomes the
    Request-URI.  Returns how many values were removed.

    Raises HeaderError for Route values that do not parse.
    """
    removed = 0
    uri = request.uri
    if isinstance(uri, SipUri) and uri.user is None and is_ours(uri):
        routes = request.headers.values("Route")
        if routes:
            last = NameAddr.parse(routes[-1])
            remaining = routes[:-1]
            request.headers.remove("Route")
            for value in remaining:
                request.headers.add("Route", value)
            request.uri = last.uri
            removed += 1
    while True:
        top = request.headers.first_value("Route")
        if top is None:
            return removed
        route = NameAddr.parse(top)
        if not (isinstance(route.uri, SipUri) and is_ours(route.uri)):
            return removed
        request.headers.pop_first_value("Route")
        removed += 1


def next_hop(request: Request) -> SipUri | None:
    """The URI to send ``request`` to (§16.6 step 7): the first Route with
    ``lr`` or, with no Route, the Request-URI.  None when it is not a SIP URI.

    A strict-routing first Route (no ``lr``) is turned into the Request-URI
    and the old Request-URI appended as the last Route (§16.6 step 6).
    """
    top = request.headers.first_value("Route")
    if top is not None:
        route = NameAddr.parse(top)
        if not isinstance(route.uri, SipUri):
            return None
        if not route.uri.lr:
            request.headers.pop_first_value("Route")
            request.headers.add("Route", f"<{request.uri_text}>")
            request.uri = route.uri
        return route.uri
    uri = request.uri
    return uri if isinstance(uri, SipUri) else None


def loop_branch(request: Request) -> str:
    """A branch whose tail is a hash of what defines the request (§16.6
    step 8), so that a request that comes back unchanged is recognised as a
    loop, and one whose Request-URI changed (a spiral) is not.

    The topmost Via is left out of the hash (unlike §16.6's list): a request
    that comes back has necessarily gained other Vias on top, so hashing it
    would never find a loop (the weakness RFC 5393 discusses).
    """
    parts = [
        request.uri_text,
        request.headers.get("Call-ID") or "",
        str(request.cseq.seq),
        request.from_tag or "",
        request.to_tag or "",
        ",".join(request.headers.get_all("Proxy-Require")),
    ]
    digest = hashlib.blake2b("\x00".join(parts).encode(), digest_size=8).hexdigest()
    return f"{BRANCH_MAGIC}-{digest}"


def is_loop(request: Request, own: Callable[[Via], bool],
            hints: tuple[str, ...] = ()) -> bool:
    """§16.3 step 4: the request carries one of our Vias whose branch equals
    the loop branch this request would get now (same Request-URI, same
    dialog fields): it has come back unchanged.

    ``hints`` (our Via hosts as text) lets the common case, a request that
    never passed here, be told from the raw Via lines without parsing them.
    """
    if hints:
        lines = request.headers.get_all("Via")
        if not any(hint in line for line in lines for hint in hints):
            return False
    own_vias = [via for via in request.vias if own(via)]
    if not own_vias:
        return False
    expected = loop_branch(request)
    return any((via.branch or "").startswith(expected) for via in own_vias)


def record_route(host: str, port: int, transport: str) -> str:
    """A Record-Route value naming this proxy (``lr``, and the transport
    unless UDP)."""
    uri = f"sip:{host}:{port}"
    if transport != "udp":
        uri += f";transport={transport}"
    return f"<{uri};lr>"


def forwarded_request(request: Request, target: SipUri | None, via: Via,
                      record_routes: Iterable[str] = ()) -> Request:
    """The copy of ``request`` sent on one branch (§16.6 steps 1–8).

    ``target`` replaces the Request-URI (None keeps it); Max-Forwards is
    decremented (70 when absent); each value of ``record_routes`` is put on
    top of the Record-Route list in order (so the last one ends on top);
    ``via`` goes on top.  The original is not changed.
    """
    copy = request.copy()
    if target is not None:
        copy.uri = target
    max_forwards = request.int_header("Max-Forwards")
    copy.headers.set("Max-Forwards", str(
        DEFAULT_MAX_FORWARDS if max_forwards is None else max(0, max_forwards - 1)))
    for value in record_routes:
        copy.headers.add("Record-Route", value, first=True)
    copy.push_via(via)
    return copy


_CLASS_ORDER = (6, 2, 3, 4, 5)
_PREFERRED_4XX = (401, 407, 415, 420, 484)


def best_response(responses: list[Response]) -> Response:
    """§16.7 step 6: the final response to send upstream when every branch
    has finished without a 2xx: any 6xx; else the lowest class, preferring
    401/407/415/420/484 among the 4xx; a 503 becomes 500."""
    if not responses:
        raise ValueError("no responses")
    by_class: dict[int, list[Response]] = {}
    for response in responses:
        by_class.setdefault(response.status // 100, []).append(response)
    chosen = None
    for klass in _CLASS_ORDER:
        candidates = by_class.get(klass)
        if not candidates:
            continue
        if klass == 4:
            preferred = [r for r in candidates if r.status in _PREFERRED_4XX]
            chosen = preferred[0] if preferred else candidates[0]
        else:
            chosen = candidates[0]
        break
    assert chosen is not None
    if chosen.status in (401, 407):
        chosen = _aggregate_challenges(chosen, responses)
    if chosen.status == 503:
        chosen = chosen.copy()
        chosen.status = 500
        chosen.reason = "Server Internal Error"
    return chosen


def _aggregate_challenges(chosen: Response, responses: list[Response]) -> Response:
    """§16.7 step 7: every branch's challenges in the one 401/407 sent up."""
    merged = chosen.copy()
    for name in ("WWW-Authenticate", "Proxy-Authenticate"):
        values: list[str] = []
        for response in responses:
            if response.status in (401, 407):
                for value in response.headers.get_all(name):
                    if value not in values:
                        values.append(value)
        if values:
            merged.headers.remove(name)
            for value in values:
                merged.headers.add(name, value)
    return merged


def response_upstream(response: Response) -> Response:
    """The response as forwarded to the previous hop: a copy without our top
    Via (§16.7 step 3)."""
    copy = response.copy()
    copy.headers.pop_first_value("Via")
    return copy
