"""SIP digest authentication, both sides, sans-IO.

Owns the Digest scheme of RFC 3261 §22 (§22.2 user agent servers, §22.3
proxies, §22.4 the scheme itself) with the algorithms of RFC 7616 §3.3 and
RFC 8760 §2 (``MD5``, ``SHA-256``, ``SHA-512-256`` and their ``-sess``
variants):

* the hashes: :func:`ha1`, :func:`userhash`, :func:`response`
  (RFC 7616 §3.4.1-3.4.4, RFC 2617 §3.2.2.1-3.2.2.3, RFC 2069 §2.1.2);
* the server: :class:`DigestServer` issues stateless HMAC-signed nonces,
  builds challenges (RFC 8760 §2.4: preferred algorithm first) and checks
  answers into a :class:`Verdict` (RFC 7616 §3.3 ``stale``, §5 security);
* the client: :func:`pick_challenge` and :func:`answer_challenge`.

Header text (the records :class:`Challenge` and :class:`Credentials`, their
parsers and :class:`DigestError`) lives in :mod:`telavox.sip.digestparse` and
is re-exported here.  Nothing here does I/O or reads a clock: the caller
passes the time, in seconds, as ``now``.  Text is hashed as UTF-8 (lone
surrogates U+DC80-U+DCFF go back to the bytes they stood for).
"""

from __future__ import annotations

import base64
import enum
import functools
import hashlib
import hmac
import math
import re
import struct
from collections import OrderedDict
from collections.abc import Iterable, Sequence

import attrs

from telavox.sip.digestparse import (
    ALGORITHMS,
    Challenge,
    Credentials,
    DigestError,
    base_algorithm,
    canonical_algorithm,
    digest_hex_length,
    is_session_algorithm,
    parse_challenge,
    parse_credentials,
)
from telavox.sip.grammar import is_token
from telavox.sip.randomness import random_bytes

__all__ = [
    "ALGORITHMS",
    "FUTURE_SKEW",
    "SUPPORTED_ALGORITHMS",
    "Challenge",
    "Credentials",
    "DigestError",
    "DigestServer",
    "Verdict",
    "VerdictKind",
    "answer_challenge",
    "canonical_algorithm",
    "ha1",
    "parse_challenge",
    "parse_challenges",
    "parse_credentials",
    "pick_challenge",
    "response",
    "userhash",
]

_HASHLIB_NAMES = {"MD5": "md5", "SHA-256": "sha256", "SHA-512-256": "sha512_256"}
_STRENGTH = {"MD5": 1, "SHA-256": 2, "SHA-512-256": 3}


def _hash_available(name: str) -> bool:
    try:
        hashlib.new(name, usedforsecurity=False)
    except ValueError:
        return False
    return True


#: The algorithms this Python can compute (SHA-512-256 needs OpenSSL support).
SUPPORTED_ALGORITHMS: tuple[str, ...] = tuple(
    a for a in ALGORITHMS if _hash_available(_HASHLIB_NAMES[base_algorithm(a)])
)

#: How far in the future (seconds) a nonce's timestamp may be and still count.
FUTURE_SKEW = 5.0

_HEX = re.compile("[0-9a-fA-F]+")
_NC = re.compile("[0-9a-fA-F]{8}")


# --- hashes -------------------------------------------------------------------


def _encode(what: str, text: str) -> bytes:
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        raise DigestError(f"{what} is not valid text") from None


# hashlib's name of each supported algorithm, -sess variants included
_HASH_OF = {a: _HASHLIB_NAMES[base_algorithm(a)] for a in SUPPORTED_ALGORITHMS}
# md5 straight from hashlib's constructor: hashlib.new looks the name up again
_MD5 = functools.partial(hashlib.md5, usedforsecurity=False)


def _h(algorithm: str, data: bytes) -> str:
    name = _HASH_OF.get(algorithm)
    if name is None:
        raise DigestError(f"algorithm {algorithm} is not available here")
    if name == "md5":
        return _MD5(data).hexdigest()
    return hashlib.new(name, data, usedforsecurity=False).hexdigest()


def _check_ha1(value: str, algorithm: str) -> str | None:
    """``value`` in lower case if it is a hex HA1 of the right length, else None."""
    if len(value) != digest_hex_length(algorithm) or not _HEX.fullmatch(value):
        return None
    return value.lower()


def ha1(username: str, realm: str, password: str, algorithm: str = "MD5") -> str:
    """``H(username ":" realm ":" password)`` in lower-case hex (RFC 7616 §3.4.2).

    This is what a user store keeps per algorithm.  A ``-sess`` algorithm
    gives the same value as its base: the session HA1 is derived per request
    by :func:`response`.  Raises DigestError for an unknown algorithm.
    """
    return _ha1(username, realm, password, canonical_algorithm(algorithm))


def _ha1(username: str, realm: str, password: str, algorithm: str) -> str:
    data = b":".join(
        (_encode("username", username), _encode("realm", realm), _encode("password", password))
    )
    return _h(algorithm, data)


def userhash(username: str, realm: str, algorithm: str = "MD5") -> str:
    """The hashed user name ``H(username ":" realm)`` of RFC 7616 §3.4.4."""
    alg = canonical_algorithm(algorithm)
    return _h(alg, _encode("username", username) + b":" + _encode("realm", realm))


def response(
    ha1: str,
    *,
    algorithm: str,
    method: str,
    uri: str,
    nonce: str,
    qop: str | None = None,
    cnonce: str | None = None,
    nc: str | None = None,
    body: bytes = b"",
) -> str:
    """The ``response`` value for a request (RFC 7616 §3.4.1-3.4.3).

    ``ha1`` is the hex ``H(username:realm:password)`` for ``algorithm``; for
    ``-sess`` algorithms the session HA1 ``H(ha1:nonce:cnonce)`` is derived
    here.  ``qop`` is ``"auth"``, ``"auth-int"`` (``body`` is then hashed into
    A2) or None for an RFC 2069 answer ``H(ha1:nonce:H(A2))``; it enters the
    hash as given, like ``nc`` (the 8 hex digits as sent).  Raises DigestError
    for a malformed ha1, an unknown algorithm or qop, or a missing cnonce/nc.
    """
    alg = canonical_algorithm(algorithm)
    key = _check_ha1(ha1, alg)
    if key is None:
        raise DigestError(f"ha1 must be {digest_hex_length(alg)} hex digits for {alg}")
    if is_session_algorithm(alg):
        if cnonce is None:
            raise DigestError(f"{alg} needs a cnonce")
        key = _h(alg, b":".join((key.encode(), _encode("nonce", nonce), _encode("cnonce", cnonce))))
    a2 = _encode("method", method) + b":" + _encode("uri", uri)
    kind = None if qop is None else qop.lower()
    if kind == "auth-int":
        a2 += b":" + _h(alg, body).encode()
    elif kind not in (None, "auth"):
        raise DigestError(f"unsupported qop {qop[:40]!r}" if qop else "empty qop")
    ha2 = _h(alg, a2).encode()
    if qop is None:
        return _h(alg, b":".join((key.encode(), _encode("nonce", nonce), ha2)))
    if cnonce is None or nc is None:
        raise DigestError("qop needs both cnonce and nc")
    if not _NC.fullmatch(nc):
        raise DigestError("bad nc (must be 8 hex digits)")
    parts = (
        key.encode(),
        _encode("nonce", nonce),
        nc.encode(),
        _encode("cnonce", cnonce),
        _encode("qop", qop),
        ha2,
    )
    return _h(alg, b":".join(parts))


# --- server -------------------------------------------------------------------


class VerdictKind(enum.Enum):
    """What :meth:`DigestServer.verify` concluded about an answer."""

    OK = "ok"
    #: Right response, our nonce, but too old (or its replay state is gone):
    #: re-challenge with ``stale=true`` (RFC 7616 §3.3).
    STALE = "stale"
    #: Wrong password or unknown user (deliberately indistinguishable).
    BAD_RESPONSE = "bad-response"
    #: A nonce this server did not issue (forged, altered, other realm or
    #: secret) or one dated in the future.
    BAD_NONCE = "bad-nonce"
    REALM_MISMATCH = "realm-mismatch"
    #: The nonce count is not above the highest one accepted for the nonce.
    REPLAY = "replay"
    #: Algorithm not enabled, qop other than auth, or RFC 2069 not allowed.
    UNSUPPORTED = "unsupported"


@attrs.frozen
class Verdict:
    """A verification outcome: its :class:`VerdictKind` and a short reason for logs."""

    kind: VerdictKind
    reason: str

    @property
    def ok(self) -> bool:
        """True when the answer is accepted."""
        return self.kind is VerdictKind.OK


_BAD_RESPONSE = Verdict(VerdictKind.BAD_RESPONSE, "response does not match")

_NONCE_LABEL = b"telavox digest nonce v1\x00"
_DUMMY_LABEL = b"telavox digest dummy ha1\x00"
_NONCE_RANDOM = 12
_NONCE_MAC = 16
_NONCE_PAYLOAD = 8 + _NONCE_RANDOM
_NONCE_CHARS = (_NONCE_PAYLOAD + _NONCE_MAC) * 4 // 3
_NONCE_TEXT = re.compile(f"[A-Za-z0-9_-]{{{_NONCE_CHARS}}}")


def _millis(now: float) -> int:
    if not math.isfinite(now):
        raise ValueError("now must be a finite number of seconds")
    ms = round(now * 1000)
    if not -(2**62) < ms < 2**62:
        raise ValueError("now is out of range")
    return ms


def _short(text: str) -> str:
    return repr(text if len(text) <= 40 else text[:40] + "...")


class DigestServer:
    """The checking side of Digest for one realm (RFC 3261 §22.2-22.3).

    Nonces are stateless: 8 bytes of issue time (ms), 12 random bytes and a
    128-bit HMAC-SHA256 of both under ``secret`` and the realm, in base64url
    (48 characters, no padding).  Checking one needs no table; it is valid for
    ``nonce_lifetime`` seconds and refused if dated more than
    :data:`FUTURE_SKEW` seconds ahead.  Several servers sharing ``secret``
    and realm accept each other's nonces.

    Replay protection keeps, per nonce, the highest nonce count accepted, in
    an LRU of ``replay_cache_size`` entries.  Whenever an entry leaves the
    cache (overflow, or its nonce expired) a horizon moves up to that nonce's
    issue time; a nonce issued at or before the horizon that is not in the
    cache is answered STALE, never accepted, so forgetting state can only
    cost a re-challenge.  The horizon starts just before the first time this
    object is given, so nonces from before a restart are re-challenged too.
    The cache is per object: servers sharing a secret do not share it.
    ``now`` should not go backwards by more than the nonce lifetime.

    RFC 2069 answers (no qop, allowed only with ``allow_rfc2069``) carry no
    nonce count, so they cannot be checked for replay within a nonce's
    lifetime.  ``allow_auth_int`` also offers and accepts ``qop=auth-int``.
    """

    def __init__(
        self,
        secret: bytes,
        realm: str,
        *,
        algorithms: Sequence[str] = ("SHA-256", "MD5"),
        nonce_lifetime: float = 300.0,
        allow_rfc2069: bool = False,
        replay_cache_size: int = 10000,
        allow_auth_int: bool = False,
    ) -> None:
        if not isinstance(secret, bytes) or len(secret) < 16:
            raise ValueError("secret must be at least 16 bytes")
        Challenge(realm=realm, nonce="x")  # checks the realm text
        if replay_cache_size < 1:
            raise ValueError("replay_cache_size must be at least 1")
        self._secret = secret
        self._realm = realm
        self._nonce_hmac = hmac.new(
            secret, _NONCE_LABEL + realm.encode("utf-8", "surrogateescape") + b"\x00",
            hashlib.sha256)
        self._skew_ms = round(FUTURE_SKEW * 1000)
        self._allow_rfc2069 = allow_rfc2069
        self._allow_auth_int = allow_auth_int
        self._cache_size = replay_cache_size
        self._seen: OrderedDict[str, tuple[int, int]] = OrderedDict()
        self._horizon_ms: int | None = None
        self.configure(algorithms=algorithms, nonce_lifetime=nonce_lifetime)

    def configure(self, *, algorithms: Sequence[str], nonce_lifetime: float) -> None:
        """Offer ``algorithms`` (preferred first) and give nonces
        ``nonce_lifetime`` seconds, from the next request on.  The secret
        stays, so nonces already issued keep being recognised: one made
        with an algorithm no longer offered gets a new challenge, and a
        nonce's age is measured against the new lifetime.

        Raises ValueError (and changes nothing) for an empty or repeating
        list, an algorithm this Python cannot compute, or a lifetime that is
        not a positive number of seconds."""
        algs = tuple(canonical_algorithm(a) for a in algorithms)
        if not algs or len(set(algs)) != len(algs):
            raise ValueError("algorithms must be a non-empty list without repeats")
        for alg in algs:
            if alg not in SUPPORTED_ALGORITHMS:
                raise ValueError(f"algorithm {alg} is not available here")
        if not (math.isfinite(nonce_lifetime) and nonce_lifetime > 0):
            raise ValueError("nonce_lifetime must be a positive number of seconds")
        self._algorithms = algs
        self._lifetime_ms = round(nonce_lifetime * 1000)
        self._templates: dict[bool, list[list[str]]] = {}
        self._dummy = {
            alg: hmac.new(self._secret, _DUMMY_LABEL + alg.encode(),
                          hashlib.sha512).hexdigest()[: digest_hex_length(alg)]
            for alg in algs
        }

    @property
    def realm(self) -> str:
        """The realm this server challenges for."""
        return self._realm

    @property
    def algorithms(self) -> tuple[str, ...]:
        """The enabled algorithms, preferred first, in canonical spelling."""
        return self._algorithms

    def _tick(self, now: float) -> int:
        ms = _millis(now)
        if self._horizon_ms is None:
            self._horizon_ms = ms - 1
        return ms

    def _mac(self, payload: bytes) -> bytes:
        # a copy of a keyed HMAC: OpenSSL 3 looks the algorithm up again for
        # every one-shot HMAC, which costs more than the hashing
        mac = self._nonce_hmac.copy()
        mac.update(payload)
        return mac.digest()[:_NONCE_MAC]

    def new_nonce(self, now: float) -> str:
        """A fresh nonce issued at ``now`` (seconds)."""
        payload = struct.pack(">q", self._tick(now)) + random_bytes(_NONCE_RANDOM)
        return base64.urlsafe_b64encode(payload + self._mac(payload)).decode("ascii")

    def _nonce_time(self, nonce: str) -> int | None:
        """The issue time (ms) of a nonce of ours, or None if it is not ours."""
        if not _NONCE_TEXT.fullmatch(nonce):
            return None
        raw = base64.urlsafe_b64decode(nonce)
        payload, mac = raw[:_NONCE_PAYLOAD], raw[_NONCE_PAYLOAD:]
        if not hmac.compare_digest(mac, self._mac(payload)):
            return None
        issued: int = struct.unpack(">q", payload[:8])[0]
        return issued

    def nonce_age(self, nonce: str, now: float) -> float | None:
        """Seconds since this server issued ``nonce`` (None when it is not
        one of ours).  Checks the nonce's MAC, not the answer made with it."""
        issued = self._nonce_time(nonce)
        if issued is None:
            return None
        return (_millis(now) - issued) / 1000.0

    def challenge_records(self, now: float, *, stale: bool = False) -> list[Challenge]:
        """One :class:`Challenge` per enabled algorithm, preferred first, with one fresh nonce."""
        nonce = self.new_nonce(now)
        qop = ("auth", "auth-int") if self._allow_auth_int else ("auth",)
        return [
            Challenge(realm=self._realm, nonce=nonce, algorithm=alg, qop=qop, stale=stale)
            for alg in self._algorithms
        ]

    def challenge(self, now: float, *, stale: bool = False) -> list[str]:
        """``WWW-Authenticate``/``Proxy-Authenticate`` values, one per algorithm.

        In the configured order (RFC 8760 §2.4: the preferred first), all with
        the same fresh nonce, ``qop="auth"`` and ``stale=true`` when asked.
        The text is that of :meth:`challenge_records`, from templates made
        once (only the nonce changes).
        """
        templates = self._templates.get(stale)
        if templates is None:
            placeholder = "NONCE0PLACEHOLDER"
            qop = ("auth", "auth-int") if self._allow_auth_int else ("auth",)
            templates = [
                Challenge(realm=self._realm, nonce=placeholder, algorithm=alg, qop=qop,
                          stale=stale).format().split(placeholder)
                for alg in self._algorithms]
            self._templates[stale] = templates
        nonce = self.new_nonce(now)
        return [nonce.join(parts) for parts in templates]

    def verify(
        self,
        credentials: Credentials,
        method: str,
        ha1: str | None,
        now: float,
        *,
        body: bytes = b"",
    ) -> Verdict:
        """Check an answer to one of our challenges at time ``now``.

        ``ha1`` is the stored hex HA1 of ``credentials.username`` for
        ``credentials.algorithm`` (with ``userhash`` the caller maps the hashed
        name first); None, or a value that is not hex of the right length,
        counts as an unknown user.  An unknown user and a wrong password get
        the same verdict after the same work, against a dummy HA1.  STALE is
        given only when the response is right.  An OK answer's nonce count is
        recorded, so the same or a lower count is a REPLAY afterwards.  The
        caller checks that ``credentials.uri`` names the request's URI.
        Raises DigestError only when ``method`` is not a token, and ValueError
        when ``now`` is not a finite number.
        """
        if not is_token(method):
            raise DigestError("method is not a token")
        now_ms = self._tick(now)
        c = credentials
        if c.realm != self._realm:
            return Verdict(VerdictKind.REALM_MISMATCH, f"realm {_short(c.realm)} is not ours")
        if c.algorithm not in self._algorithms:
            return Verdict(VerdictKind.UNSUPPORTED, f"algorithm {c.algorithm} is not enabled")
        qop = None if c.qop is None else c.qop.lower()
        if qop is None:
            if not self._allow_rfc2069:
                return Verdict(VerdictKind.UNSUPPORTED, "no qop (RFC 2069 answer) not allowed")
        elif not (qop == "auth" or (qop == "auth-int" and self._allow_auth_int)):
            return Verdict(VerdictKind.UNSUPPORTED, f"qop {_short(c.qop or '')} not supported")
        issued = self._nonce_time(c.nonce)
        if issued is None:
            return Verdict(VerdictKind.BAD_NONCE, "nonce was not issued here")
        if issued - now_ms > self._skew_ms:
            return Verdict(VerdictKind.BAD_NONCE, "nonce is dated in the future")
        stored = None if ha1 is None else _check_ha1(ha1, c.algorithm)
        expected = response(
            self._dummy[c.algorithm] if stored is None else stored,
            algorithm=c.algorithm,
            method=method,
            uri=c.uri,
            nonce=c.nonce,
            qop=c.qop,
            cnonce=c.cnonce,
            nc=c.nc,
            body=body,
        )
        matches = hmac.compare_digest(expected, c.response)
        if stored is None or not matches:
            return _BAD_RESPONSE
        if now_ms - issued > self._lifetime_ms:
            return Verdict(VerdictKind.STALE, "nonce expired")
        count = c.nc_count
        if count is None:
            return Verdict(VerdictKind.OK, "accepted (RFC 2069, no replay check)")
        return self._record_count(c.nonce, issued, count, now_ms)

    def _record_count(self, nonce: str, issued: int, count: int, now_ms: int) -> Verdict:
        entry = self._seen.get(nonce)
        if entry is None:
            assert self._horizon_ms is not None
            if issued <= self._horizon_ms:
                return Verdict(VerdictKind.STALE, "nonce no longer in the replay cache")
            last = 0
        else:
            last = entry[0]
        if count <= last:
            return Verdict(VerdictKind.REPLAY, f"nc {count} is not above {last}")
        self._seen[nonce] = (count, issued)
        self._seen.move_to_end(nonce)
        self._prune(now_ms)
        return Verdict(VerdictKind.OK, "accepted")

    def _prune(self, now_ms: int) -> None:
        seen = self._seen
        while seen:
            _, (_, issued) = next(iter(seen.items()))
            if now_ms - issued <= self._lifetime_ms and len(seen) <= self._cache_size:
                break
            seen.popitem(last=False)
            assert self._horizon_ms is not None
            self._horizon_ms = max(self._horizon_ms, issued)


# --- client -------------------------------------------------------------------


def parse_challenges(values: Iterable[str]) -> list[Challenge]:
    """The Digest challenges among header values, in order; others are skipped.

    Values of another scheme, malformed ones and ones with an algorithm this
    module does not know are left out (a 401 may offer several).
    """
    out: list[Challenge] = []
    for value in values:
        try:
            out.append(parse_challenge(value))
        except DigestError:
            continue
    return out


def _pick_qop(challenge: Challenge) -> str | None:
    """``auth`` if offered, else ``auth-int``, else None for an RFC 2069 server.

    Raises DigestError when options are offered but none is known.
    """
    offered = {q.lower() for q in challenge.qop}
    if "auth" in offered:
        return "auth"
    if "auth-int" in offered:
        return "auth-int"
    if offered:
        raise DigestError("no supported qop offered")
    if is_session_algorithm(challenge.algorithm):
        raise DigestError(f"{challenge.algorithm} offered without qop")
    return None


def pick_challenge(
    challenges: Sequence[Challenge], supported: Sequence[str] = ("SHA-256", "MD5")
) -> Challenge | None:
    """The challenge with the strongest algorithm in ``supported``, or None.

    Strength: SHA-512-256 > SHA-256 > MD5 (``-sess`` variants rank with their
    base); ties go to the earlier challenge, the server's preference
    (RFC 8760 §2.4).  Challenges this module cannot answer are skipped.
    Raises DigestError for an unknown name in ``supported``.
    """
    allowed = {canonical_algorithm(a) for a in supported} & set(SUPPORTED_ALGORITHMS)
    best: Challenge | None = None
    for challenge in challenges:
        if challenge.algorithm not in allowed:
            continue
        try:
            _pick_qop(challenge)
        except DigestError:
            continue
        strength = _STRENGTH[base_algorithm(challenge.algorithm)]
        if best is None or strength > _STRENGTH[base_algorithm(best.algorithm)]:
            best = challenge
    return best


def answer_challenge(
    challenge: Challenge,
    *,
    method: str,
    uri: str,
    username: str,
    password: str | None = None,
    ha1: str | None = None,
    cnonce: str,
    nc: int = 1,
    body: bytes = b"",
) -> Credentials:
    """The :class:`Credentials` answering ``challenge`` for one request.

    Give exactly one of ``password`` and ``ha1`` (hex, for the challenge's
    algorithm).  ``qop=auth`` is chosen when offered, else ``auth-int``
    (hashing ``body``), else none for an RFC 2069 server (``cnonce`` and
    ``nc`` then left out).  ``cnonce`` is the caller's random string and
    ``nc`` the count of requests sent with this nonce, from 1.  The realm and
    opaque are echoed; with ``userhash`` the user name is sent hashed
    (RFC 7616 §3.4.4).  Raises DigestError when the challenge cannot be
    answered or an argument is bad.
    """
    alg = challenge.algorithm
    if alg not in SUPPORTED_ALGORITHMS:
        raise DigestError(f"algorithm {alg} is not available here")
    if not is_token(method):
        raise DigestError("method is not a token")
    if (password is None) == (ha1 is None):
        raise DigestError("give exactly one of password and ha1")
    if ha1 is None:
        assert password is not None
        key = _ha1(username, challenge.realm, password, alg)
    else:
        checked = _check_ha1(ha1, alg)
        if checked is None:
            raise DigestError(f"ha1 must be {digest_hex_length(alg)} hex digits for {alg}")
        key = checked
    if not 1 <= nc <= 0xFFFFFFFF:
        raise DigestError("nc must be between 1 and 0xffffffff")
    qop = _pick_qop(challenge)
    nc_text = None if qop is None else f"{nc:08x}"
    sent_cnonce = None if qop is None else cnonce
    digest = response(
        key,
        algorithm=alg,
        method=method,
        uri=uri,
        nonce=challenge.nonce,
        qop=qop,
        cnonce=sent_cnonce,
        nc=nc_text,
        body=body,
    )
    return Credentials(
        username=userhash(username, challenge.realm, alg) if challenge.userhash else username,
        realm=challenge.realm,
        nonce=challenge.nonce,
        uri=uri,
        response=digest,
        algorithm=alg,
        cnonce=sent_cnonce,
        nc=nc_text,
        qop=qop,
        opaque=challenge.opaque,
        userhash=challenge.userhash,
    )
