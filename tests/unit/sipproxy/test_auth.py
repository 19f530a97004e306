"""The proxy's digest authentication: challenges, verification with each
algorithm, and identical answers for unknown users, wrong passwords and
blocks."""

from __future__ import annotations

import pytest
from helpers.sipmsg import request
from zope.interface import implementer

from telavox.interfaces import IUserDirectory
from telavox.records import UserRecord
from telavox.sip.digest import answer_challenge, ha1, parse_challenge
from telavox.sip.uri import SipUri
from telavox.sipproxy.auth import Authenticator, Outcome
from telavox.sipproxy.guard import AuthGuard

REALM = "pbx.example.test"


@implementer(IUserDirectory)
class Directory:
    """One user, 1001, password "pw"."""

    realm = REALM

    def get_user(self, extension: str) -> UserRecord | None:
        return UserRecord(extension="1001") if extension == "1001" else None

    def ha1(self, username: str, algorithm: str) -> str | None:
        return ha1(username, REALM, "pw", algorithm) if username == "1001" else None


def ours(uri: SipUri) -> bool:
    return uri.host_bare == REALM


def authenticator(*algorithms: str, max_failures: int = 3) -> Authenticator:
    return Authenticator(Directory(), AuthGuard(max_failures, 10, 60.0),
                         algorithms=algorithms, nonce_lifetime=300.0, is_ours=ours)


def with_credentials(auth: Authenticator, user: str, password: str, algorithm: str,
                     method: str = "INVITE") -> object:
    uri = f"sip:bob@{REALM}"
    first = auth.check(request(method, uri=uri), "192.0.2.7", 100.0)
    assert first.outcome is Outcome.CHALLENGE
    challenges = [parse_challenge(v) for _, v in first.extra]
    challenge = next(c for c in challenges if c.algorithm == algorithm)
    creds = answer_challenge(challenge, method=method, uri=uri, username=user,
                             password=password, cnonce="abc")
    field = "Authorization" if method == "REGISTER" else "Proxy-Authorization"
    return auth.check(request(method, uri=uri, extra=f"{field}: {creds}\r\n"),
                      "192.0.2.7", 101.0)


@pytest.mark.parametrize("algorithm", ["MD5", "SHA-256", "SHA-512-256"])
def test_each_algorithm_verifies(algorithm: str) -> None:
    """A right answer to a challenge of each algorithm is accepted, and the
    credentials are removed before the request goes on (§22.3)."""
    auth = authenticator("SHA-256", "MD5", "SHA-512-256")
    result = with_credentials(auth, "1001", "pw", algorithm)
    assert result.outcome is Outcome.ACCEPT  # type: ignore[attr-defined]
    assert result.user == "1001"  # type: ignore[attr-defined]


def test_register_uses_401_and_others_407() -> None:
    """REGISTER is challenged with 401/WWW-Authenticate, the rest with
    407/Proxy-Authenticate; challenges come in the configured order."""
    auth = authenticator("SHA-256", "MD5")
    reg = auth.check(request("REGISTER", uri=f"sip:{REALM}"), "192.0.2.7", 1.0)
    inv = auth.check(request("INVITE", uri=f"sip:x@{REALM}"), "192.0.2.7", 1.0)
    assert (reg.status, [n for n, _ in reg.extra]) == (401, ["WWW-Authenticate"] * 2)
    assert (inv.status, [n for n, _ in inv.extra]) == (407, ["Proxy-Authenticate"] * 2)
    assert [parse_challenge(v).algorithm for _, v in inv.extra] == ["SHA-256", "MD5"]


def test_unknown_wrong_and_blocked_look_alike() -> None:
    """Unknown user, wrong password and a blocked pair all get the same kind
    of answer as a first challenge."""
    auth = authenticator("MD5", max_failures=2)
    answers = [with_credentials(auth, "9999", "x", "MD5"),
               with_credentials(auth, "1001", "wrong", "MD5"),
               with_credentials(auth, "1001", "wrong", "MD5"),
               with_credentials(auth, "1001", "pw", "MD5")]  # blocked by now
    shapes = {(a.outcome, a.status, a.reason, tuple(n for n, _ in a.extra))  # type: ignore[attr-defined]
              for a in answers}
    assert len(shapes) == 1
    assert auth.counters["auth_blocked"] == 1


def test_malformed_credentials_get_400() -> None:
    """Credentials for our realm that do not parse are a 400, not a challenge."""
    auth = authenticator("MD5")
    result = auth.check(request("INVITE", uri=f"sip:x@{REALM}", extra=(
        f'Proxy-Authorization: Digest realm="{REALM}", username="1001", nc=zz\r\n')),
        "192.0.2.7", 1.0)
    assert (result.outcome, result.status) == (Outcome.MALFORMED, 400)


def test_a_guessing_flood_is_logged_in_bounded_lines() -> None:
    """200 wrong guesses (most of them while the pair is blocked) write 20
    log lines in the window, not 200."""
    from twisted.logger import Logger

    events: list[dict[str, object]] = []
    auth = authenticator("MD5", max_failures=5)
    auth.log = Logger(observer=events.append)
    for _ in range(200):
        with_credentials(auth, "1001", "guess", "MD5")
    assert auth.counters["auth_failed"] == 5 and auth.counters["auth_blocked"] == 195
    assert len(events) == 20


@pytest.mark.parametrize("method", ["INVITE", "REGISTER"])
def test_an_answer_to_a_recent_challenge_is_recognised(method: str) -> None:
    """Overload control lets the second request of a challenge through: one
    made with a nonce of ours issued within the window, not an old cached
    nonce, a made-up one, another realm's, or none."""
    auth = authenticator("MD5")
    uri = f"sip:bob@{REALM}"
    field = "Authorization" if method == "REGISTER" else "Proxy-Authorization"
    first = auth.check(request(method, uri=uri), "192.0.2.7", 100.0)
    challenge = parse_challenge(first.extra[0][1])
    creds = answer_challenge(challenge, method=method, uri=uri, username="1001",
                             password="pw", cnonce="abc")
    answered = request(method, uri=uri, extra=f"{field}: {creds}\r\n")
    assert auth.answers_recent_challenge(answered, 101.0, 32.0)
    assert not auth.answers_recent_challenge(answered, 140.0, 32.0)
    made_up = str(creds).replace(challenge.nonce, "A" * len(challenge.nonce))
    assert not auth.answers_recent_challenge(
        request(method, uri=uri, extra=f"{field}: {made_up}\r\n"), 101.0, 32.0)
    elsewhere = str(creds).replace(REALM, "other.example.test")
    assert not auth.answers_recent_challenge(
        request(method, uri=uri, extra=f"{field}: {elsewhere}\r\n"), 101.0, 32.0)
    assert not auth.answers_recent_challenge(
        request(method, uri=uri, extra="X-Other: 1\r\n"), 101.0, 32.0)
    assert not auth.answers_recent_challenge(
        request(method, uri=uri, extra=f"{field}: garbage\r\n"), 101.0, 32.0)
