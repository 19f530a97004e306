"""Digest authentication of phones at the proxy (RFC 3261 §22, RFC 7616,
RFC 8760), with brute-force blocking.

Owns :class:`Authenticator`.  REGISTER is challenged with 401 and
``WWW-Authenticate``; other requests with 407 and ``Proxy-Authenticate``
(§22.1, §22.3).  Nonces are stateless (HMAC of a secret and the time, see
:mod:`telavox.sip.digest`).  Every failure (wrong password, unknown user,
blocked) gets exactly the same answer as a first challenge, so nothing tells
which extensions exist or that a block is in force; failures feed the
:class:`~telavox.sipproxy.guard.AuthGuard`, which blocks a (source, username)
pair after a few tries and a whole source that fails with many usernames.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Callable

import attrs
from twisted.logger import Logger

from telavox.interfaces import IUserDirectory
from telavox.logbudget import LogBudget
from telavox.sip.digest import (
    DigestError,
    DigestServer,
    VerdictKind,
    parse_credentials,
)
from telavox.sip.message import Request
from telavox.sip.uri import SipUri, UriError, parse_uri
from telavox.sipproxy.guard import AuthGuard


class Outcome(enum.Enum):
    """What to do with the request after the credentials check."""

    ACCEPT = "accept"
    CHALLENGE = "challenge"
    MALFORMED = "malformed"


@attrs.frozen
class AuthResult:
    """The verdict: the authenticated ``user`` on ACCEPT; else the answer's
    status, reason and header fields (the challenge)."""

    outcome: Outcome
    user: str | None = None
    status: int = 0
    reason: str = ""
    extra: tuple[tuple[str, str], ...] = ()


class Authenticator:
    """Checks phones' credentials against the user directory."""

    log = Logger(namespace="telavox.sipproxy.auth")

    def __init__(self, directory: IUserDirectory, guard: AuthGuard, *,
                 algorithms: tuple[str, ...], nonce_lifetime: float,
                 secret: bytes | None = None,
                 is_ours: Callable[[SipUri], bool] = lambda uri: False) -> None:
        self.directory = directory
        self.is_ours = is_ours
        self.guard = guard
        self.realm = directory.realm
        self.server = DigestServer(secret or os.urandom(32), self.realm,
                                   algorithms=algorithms, nonce_lifetime=nonce_lifetime)
        self.counters = {"auth_ok": 0, "auth_failed": 0, "auth_stale": 0, "auth_blocked": 0,
                         "challenges": 0}
        self._budget = LogBudget()
        """A password-guessing flood gets some lines, not one per guess."""

    def answers_recent_challenge(self, request: Request, now: float, within: float) -> bool:
        """Whether ``request`` carries credentials for this realm made with a
        nonce this proxy issued less than ``within`` seconds ago: the second
        request of a challenge, not a cached or made-up nonce.  The answer
        itself is not checked here (:meth:`check` does that)."""
        field = "Authorization" if request.method == "REGISTER" else "Proxy-Authorization"
        for value in request.headers.get_all(field):
            try:
                parsed = parse_credentials(value)
            except DigestError:
                continue
            if parsed.realm != self.realm:
                continue
            age = self.server.nonce_age(parsed.nonce, now)
            if age is not None and -1.0 <= age <= within:
                return True
        return False

    def check(self, request: Request, source: str, now: float) -> AuthResult:
        """Authenticate ``request`` from the address ``source``.

        REGISTER uses Authorization/401, everything else
        Proxy-Authorization/407.
        """
        www = request.method == "REGISTER"
        field = "Authorization" if www else "Proxy-Authorization"
        credentials = None
        for value in request.headers.get_all(field):
            try:
                parsed = parse_credentials(value)
            except DigestError as e:
                if f'realm="{self.realm}"' in value or "realm=" not in value:
                    return AuthResult(Outcome.MALFORMED, status=400,
                                      reason=f"Malformed {field}: {e}")
                continue
            if parsed.realm == self.realm:
                credentials = parsed
                break
        if credentials is None:
            return self._challenge(www, now)
        username = credentials.username
        if self.guard.is_blocked(source, username, now):
            self.counters["auth_blocked"] += 1
            self._budget.info(self.log, now, "blocked: {user} from {source} (answered as a "
                              "failure)", user=username, source=source)
            return self._challenge(www, now)
        if not _same_target(credentials.uri, request, self.is_ours):
            self.counters["auth_failed"] += 1
            self.guard.failure(source, username, now)
            self._budget.info(self.log, now, "authentication of {user} from {source}: digest "
                              "URI {uri} does not name the request", user=username,
                              source=source, uri=credentials.uri)
            return self._challenge(www, now)
        ha1 = self.directory.ha1(username, credentials.algorithm.removesuffix("-sess"))
        verdict = self.server.verify(credentials, request.method, ha1, now)
        if verdict.kind is VerdictKind.OK:
            self.guard.success(source, username, now)
            self.counters["auth_ok"] += 1
            request.headers.remove(field)  # our credentials stop here (§22.3)
            return AuthResult(Outcome.ACCEPT, user=username)
        if verdict.kind is VerdictKind.STALE:
            self.counters["auth_stale"] += 1
            return self._challenge(www, now, stale=True)
        self.counters["auth_failed"] += 1
        self.guard.failure(source, username, now)
        self._budget.info(self.log, now, "authentication failed for {user} from {source}: "
                          "{why}", user=username, source=source, why=verdict.reason)
        return self._challenge(www, now)

    def _challenge(self, www: bool, now: float, stale: bool = False) -> AuthResult:
        self.counters["challenges"] += 1
        name = "WWW-Authenticate" if www else "Proxy-Authenticate"
        values = self.server.challenge(now, stale=stale)
        status, reason = (401, "Unauthorized") if www else (407,
                                                          "Proxy Authentication Required")
        return AuthResult(Outcome.CHALLENGE, status=status, reason=reason,
                          extra=tuple((name, v) for v in values))


def _same_target(digest_uri: str, request: Request,
                 is_ours: Callable[[SipUri], bool]) -> bool:
    """The credentials' ``uri`` names the request's URI (RFC 7616 §3.4.6):
    same scheme, user and host, parameters aside (phones drop some); or, when
    both name the platform (its domain or addresses), any such URI: some
    clients (SIPp among them) put the proxy's address there.  The nonce-count
    replay cache keeps one set of credentials from being used twice."""
    if digest_uri == request.uri_text:
        return True
    try:
        theirs = parse_uri(digest_uri)
        ours = request.uri
    except UriError:
        return False
    if not (isinstance(theirs, SipUri) and isinstance(ours, SipUri)):
        return str(theirs) == str(ours)
    if (theirs.scheme, theirs.user_unescaped, theirs.host_bare) == (
            ours.scheme, ours.user_unescaped, ours.host_bare):
        return True
    return is_ours(theirs) and is_ours(ours)
