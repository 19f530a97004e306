"""tlb's HTTP JSON API, for an external proxy (Kamailio) and operators.

Owns :class:`TlbApi` (the ``twisted.web`` resource answering every path)
and :class:`TlbHttpServer` (its listening port and open connections).

Routes (path segments are percent-decoded one by one, so ``%2B`` gives the
``+`` of an E.164 number and ``%2F`` a ``/`` inside a segment)::

    GET  /locate/user/<aor>       {"member": {...}}     503 when no SIP server is available
    GET  /locate/target/<name>    {"member": {...}}     503 likewise
    GET  /locate/number/<number>  {"gateways": [...]}   404 no prefix matches, 503 all down
    GET  /pool                    {"pool": [...]}
    POST /drain/<name>            {"member": {...}}     404 unknown name
    POST /undrain/<name>          {"member": {...}}     404 unknown name

A member is ``{"name", "address", "up", "drained"}`` (``/pool`` adds
``"kind"``: ``sipserver`` or ``gateway``).  Errors are ``{"error": "..."}``
with 404 (unknown path), 405 (wrong method, with ``Allow``), 401 (missing or
wrong ``Authorization: Bearer`` token when one is configured; compared in
constant time) and 500 (logged; no details to the client).
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote_to_bytes

from twisted.internet import defer
from twisted.internet.interfaces import IListeningPort
from twisted.internet.protocol import connectionDone
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.http import HTTPChannel
from twisted.web.resource import Resource
from twisted.web.server import Request, Site

from telavox.interfaces import ITlb
from telavox.records import PoolMember
from telavox.tlb.routing import Router
from telavox.transport.address import ListenAddress

__all__ = ["TlbApi", "TlbHttpServer", "member_json"]

log = Logger(namespace="telavox.tlb.http")

_GET = ("GET", "HEAD")
_POST = ("POST",)


class _ApiError(Exception):
    """An answer other than 200: status, message and extra headers."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None
                 ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


def member_json(member: PoolMember) -> dict[str, Any]:
    """The JSON object of a pool member."""
    return {"name": member.name, "address": member.address, "up": member.up,
            "drained": member.drained}


def _segments(raw_path: bytes) -> list[str]:
    parts = raw_path.split(b"/")
    if not parts or parts[0] != b"":
        raise _ApiError(404, "not found")
    return [unquote_to_bytes(p).decode("utf-8", "replace") for p in parts[1:]]


class TlbApi(Resource):
    """Every path of the API, answered from ``tlb`` (which keeps its counters)
    and ``router`` (member kinds, and whether any gateway carries a number);
    ``token`` returns the bearer token in force (empty: no authentication)."""

    isLeaf = True

    def __init__(self, tlb: ITlb, router: Router, token: Callable[[], str]) -> None:
        super().__init__()
        self.tlb = tlb
        self.router = router
        self.token = token
        self.requests = 0
        self.errors = 0

    def render(self, request: Request) -> bytes:  # type: ignore[override]
        """Authenticate, route, answer JSON."""
        self.requests += 1
        method = (request.method or b"").decode("ascii", "replace")
        try:
            self._authenticate(request)
            status, body = self._route(method, _segments(request.path or b"/"))
        except _ApiError as e:
            self.errors += 1
            for name, value in e.headers.items():
                request.setHeader(name, value)
            status, body = e.status, {"error": e.message}
        except Exception:
            self.errors += 1
            log.failure("tlb API: error answering {method} {path}", method=method,
                        path=(request.path or b"").decode("ascii", "replace"))
            status, body = 500, {"error": "internal error"}
        request.setResponseCode(status)
        request.setHeader("Content-Type", "application/json")
        request.setHeader("Cache-Control", "no-store")
        return json.dumps(body).encode("utf-8") + b"\n"

    def _authenticate(self, request: Request) -> None:
        token = self.token()
        if not token:
            return
        given = request.getHeader("authorization") or ""
        scheme, _, credentials = given.strip().partition(" ")
        ok = hmac.compare_digest(credentials.strip().encode("utf-8"), token.encode("utf-8"))
        if scheme.lower() != "bearer" or not ok:
            raise _ApiError(401, "missing or wrong bearer token",
                            {"WWW-Authenticate": 'Bearer realm="telavox-tlb"'})

    def _route(self, method: str, path: list[str]) -> tuple[int, dict[str, Any]]:
        match path:
            case ["locate", "user" | "target" as kind, key] if key:
                self._allow(method, _GET)
                return self._locate(kind, key)
            case ["locate", "number", number] if number:
                self._allow(method, _GET)
                return self._number(number)
            case ["pool"]:
                self._allow(method, _GET)
                gateways = set(self.router.gateways)
                pool = [dict(member_json(m), kind="gateway" if m.name in gateways else
                             "sipserver") for m in self.tlb.pool()]
                return 200, {"pool": pool}
            case ["drain" | "undrain" as action, name] if name:
                self._allow(method, _POST)
                return self._drain(name, action == "drain")
        raise _ApiError(404, "not found")

    @staticmethod
    def _allow(method: str, allowed: tuple[str, ...]) -> None:
        if method not in allowed:
            raise _ApiError(405, f"method {method} not allowed",
                            {"Allow": ", ".join(allowed)})

    def _locate(self, kind: str, key: str) -> tuple[int, dict[str, Any]]:
        if kind == "user":
            member = self.tlb.locate_user(key)
        else:
            member = self.tlb.locate_target(key)
        if member is None:
            raise _ApiError(503, "no SIP server available")
        return 200, {"member": member_json(member)}

    def _number(self, number: str) -> tuple[int, dict[str, Any]]:
        gateways = self.tlb.locate_number(number)
        if not gateways:
            if self.router.gateways_for(number):
                raise _ApiError(503, f"no gateway available for {number}")
            raise _ApiError(404, f"no gateway carries {number}")
        return 200, {"gateways": [member_json(m) for m in gateways]}

    def _drain(self, name: str, drained: bool) -> tuple[int, dict[str, Any]]:
        if not self.tlb.drain(name, drained):
            raise _ApiError(404, f"no pool member or gateway named {name}")
        member = next(m for m in self.tlb.pool() if m.name == name)
        return 200, {"member": member_json(member)}


class _Channel(HTTPChannel):
    """An HTTP connection its site keeps track of (so stopping closes it)."""

    def connectionMade(self) -> None:
        super().connectionMade()
        self.factory.channels.add(self)  # type: ignore[attr-defined]

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        super().connectionLost(reason)
        self.factory.channel_lost(self)  # type: ignore[attr-defined]


class _ApiSite(Site):
    """A site without an access log file; it logs each request at debug."""

    protocol = _Channel  # type: ignore[assignment]
    displayTracebacks = False
    noisy = False

    def __init__(self, resource: Resource, reactor: Any) -> None:
        super().__init__(resource, reactor=reactor)
        self.channels: set[_Channel] = set()
        self._waiting: list[tuple[_Channel, defer.Deferred[None]]] = []

    def log(self, request: Any) -> None:
        """One debug line per request instead of an access log file."""
        log.debug("tlb API {method} {path} -> {code}",
                  method=(request.method or b"").decode("ascii", "replace"),
                  path=(request.uri or b"").decode("ascii", "replace"), code=request.code)

    def channel_lost(self, channel: _Channel) -> None:
        """Forget ``channel`` and wake whoever waits for it to close."""
        self.channels.discard(channel)
        for waited, d in [w for w in self._waiting if w[0] is channel]:
            self._waiting.remove((waited, d))
            d.callback(None)

    def close_all(self) -> defer.Deferred[Any]:
        """Abort every open connection; fires once all are gone."""
        waits = []
        for channel in list(self.channels):
            d: defer.Deferred[None] = defer.Deferred()
            self._waiting.append((channel, d))
            waits.append(d)
            if channel.transport is not None:
                channel.transport.abortConnection()  # type: ignore[attr-defined]
        return defer.gatherResults(waits)


class TlbHttpServer:
    """The API's listening port on ``listen`` (``tcp:host:port``)."""

    def __init__(self, api: TlbApi, listen: str, reactor: Any) -> None:
        self.address = ListenAddress.parse(listen)
        if self.address.transport != "tcp":
            raise ValueError(f"the tlb HTTP API listens on tcp: only, not {listen!r}")
        self.site = _ApiSite(api, reactor)
        self._reactor = reactor
        self.port: IListeningPort | None = None

    def start(self) -> None:
        """Listen (raises CannotListenError when the port is taken)."""
        self.port = self._reactor.listenTCP(self.address.port, self.site,
                                            interface=self.address.host)
        log.info("tlb HTTP API listening on {host}:{port}", host=self.address.host,
                 port=self.bound_port)

    @property
    def bound_port(self) -> int:
        """The port listened on (useful with port 0)."""
        if self.port is None:
            raise RuntimeError("not listening")
        return int(self.port.getHost().port)  # type: ignore[attr-defined]

    def stop(self) -> defer.Deferred[Any]:
        """Stop listening and close open connections."""
        port, self.port = self.port, None
        deferreds = [self.site.close_all()]
        if port is not None:
            deferreds.append(defer.maybeDeferred(port.stopListening))
        return defer.gatherResults(deferreds)
