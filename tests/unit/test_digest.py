"""Unit tests of telavox.sip.digest: RFC 7616 examples, server and client sides."""

from __future__ import annotations

import pytest

from telavox.sip.digest import (
    SUPPORTED_ALGORITHMS,
    Challenge,
    Credentials,
    DigestError,
    DigestServer,
    Verdict,
    VerdictKind,
    answer_challenge,
    ha1,
    parse_challenge,
    parse_challenges,
    parse_credentials,
    pick_challenge,
    response,
    userhash,
)

SECRET = b"0123456789abcdef0123456789abcdef"
REALM = "pbx.example.com"
USER = "alice"
PASSWORD = "s3cret"
URI = "sip:pbx.example.com"
T0 = 1_700_000_000.0

# RFC 7616 §3.9.1
RFC_USER = "Mufasa"
RFC_PASSWORD = "Circle of Life"
RFC_REALM = "http-auth@example.org"
RFC_NONCE = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v"
RFC_CNONCE = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ"
RFC_OPAQUE = "FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS"
RFC_URI = "/dir/index.html"
RFC_MD5 = "8ca523f5e9506fed4657c9700eebdbec"
RFC_SHA256 = "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1"


def make_server(**kwargs: object) -> DigestServer:
    return DigestServer(SECRET, REALM, **kwargs)  # type: ignore[arg-type]


def challenge_for(server: DigestServer, now: float, algorithm: str) -> Challenge:
    for value in server.challenge(now):
        challenge = parse_challenge(value)
        if challenge.algorithm == algorithm:
            return challenge
    raise AssertionError(f"no {algorithm} challenge")


def answer(
    challenge: Challenge,
    *,
    password: str = PASSWORD,
    username: str = USER,
    nc: int = 1,
    method: str = "REGISTER",
) -> Credentials:
    return answer_challenge(
        challenge,
        method=method,
        uri=URI,
        username=username,
        password=password,
        cnonce="0a4f113b",
        nc=nc,
    )


def stored(algorithm: str) -> str:
    return ha1(USER, REALM, PASSWORD, algorithm)


# --- RFC 7616 §3.9.1 worked examples ----------------------------------------------


@pytest.mark.parametrize(("algorithm", "expected"), [("MD5", RFC_MD5), ("SHA-256", RFC_SHA256)])
def test_rfc7616_example_response(algorithm: str, expected: str) -> None:
    """response() reproduces the RFC 7616 §3.9.1 example for MD5 and SHA-256."""
    key = ha1(RFC_USER, RFC_REALM, RFC_PASSWORD, algorithm)
    got = response(
        key,
        algorithm=algorithm,
        method="GET",
        uri=RFC_URI,
        nonce=RFC_NONCE,
        qop="auth",
        cnonce=RFC_CNONCE,
        nc="00000001",
    )
    assert got == expected


@pytest.mark.parametrize(("algorithm", "expected"), [("MD5", RFC_MD5), ("SHA-256", RFC_SHA256)])
def test_rfc7616_example_client(algorithm: str, expected: str) -> None:
    """answer_challenge() on the RFC 7616 challenge gives its Authorization, opaque echoed."""
    challenge = parse_challenge(
        f'Digest realm="{RFC_REALM}", qop="auth, auth-int", algorithm={algorithm}, '
        f'nonce="{RFC_NONCE}", opaque="{RFC_OPAQUE}"'
    )
    assert challenge.qop == ("auth", "auth-int")
    creds = answer_challenge(
        challenge,
        method="GET",
        uri=RFC_URI,
        username=RFC_USER,
        password=RFC_PASSWORD,
        cnonce=RFC_CNONCE,
    )
    assert creds.response == expected
    assert creds.opaque == RFC_OPAQUE
    assert creds.qop == "auth"
    assert creds.nc == "00000001"


def test_rfc7616_example_authorization_parses() -> None:
    """The RFC 7616 §3.9.1 MD5 Authorization value parses into the expected fields."""
    creds = parse_credentials(
        f'Digest username="{RFC_USER}",\t realm="{RFC_REALM}", uri="{RFC_URI}", '
        f'algorithm=MD5, nonce="{RFC_NONCE}", nc=00000001, cnonce="{RFC_CNONCE}", '
        f'qop=auth, response="{RFC_MD5}", opaque="{RFC_OPAQUE}"'
    )
    assert creds == Credentials(
        username=RFC_USER,
        realm=RFC_REALM,
        nonce=RFC_NONCE,
        uri=RFC_URI,
        response=RFC_MD5,
        algorithm="MD5",
        cnonce=RFC_CNONCE,
        nc="00000001",
        qop="auth",
        opaque=RFC_OPAQUE,
    )
    assert creds.nc_count == 1


def test_ha1_with_stored_value_matches_password() -> None:
    """Answering with a stored HA1 gives the same response as with the password."""
    challenge = Challenge(realm=RFC_REALM, nonce=RFC_NONCE, algorithm="SHA-256", qop=("auth",))
    by_password = answer_challenge(
        challenge,
        method="GET",
        uri=RFC_URI,
        username=RFC_USER,
        password=RFC_PASSWORD,
        cnonce=RFC_CNONCE,
    )
    by_ha1 = answer_challenge(
        challenge,
        method="GET",
        uri=RFC_URI,
        username=RFC_USER,
        ha1=ha1(RFC_USER, RFC_REALM, RFC_PASSWORD, "SHA-256").upper(),
        cnonce=RFC_CNONCE,
    )
    assert by_password == by_ha1
    assert by_ha1.response == RFC_SHA256


# --- server <-> client ------------------------------------------------------------


@pytest.mark.parametrize("algorithm", SUPPORTED_ALGORITHMS)
def test_round_trip_each_algorithm(algorithm: str) -> None:
    """A challenge, its parsed answer and verify() agree for every algorithm."""
    server = make_server(algorithms=(algorithm,))
    challenge = challenge_for(server, T0, algorithm)
    creds = parse_credentials(str(answer(challenge)))
    verdict = server.verify(creds, "REGISTER", stored(algorithm), T0 + 1)
    assert verdict.kind is VerdictKind.OK
    assert verdict.ok


def test_challenge_values() -> None:
    """challenge() gives one value per algorithm, preferred first, same nonce, qop=auth."""
    server = make_server(algorithms=("SHA-256", "MD5"))
    values = server.challenge(T0)
    assert len(values) == 2
    first, second = (parse_challenge(v) for v in values)
    assert (first.algorithm, second.algorithm) == ("SHA-256", "MD5")
    assert first.nonce == second.nonce
    assert first.qop == second.qop == ("auth",)
    assert first.realm == REALM
    assert not first.stale
    assert all('qop="auth"' in v and v.startswith("Digest ") for v in values)


def test_challenge_stale_flag() -> None:
    """challenge(stale=True) marks every value stale=true."""
    values = make_server().challenge(T0, stale=True)
    assert all("stale=true" in v for v in values)
    assert all(parse_challenge(v).stale for v in values)


def test_nonces_are_fresh_and_token_safe() -> None:
    """Each challenge has a new nonce made only of base64url characters."""
    server = make_server()
    nonces = {parse_challenge(server.challenge(T0)[0]).nonce for _ in range(50)}
    assert len(nonces) == 50
    allowed = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert all(set(n) <= allowed for n in nonces)


def test_stale_only_with_right_password() -> None:
    """An expired nonce gives STALE with the right password and BAD_RESPONSE with a wrong one."""
    server = make_server(nonce_lifetime=300.0)
    challenge = challenge_for(server, T0, "SHA-256")
    later = T0 + 301
    good = server.verify(answer(challenge), "REGISTER", stored("SHA-256"), later)
    assert good.kind is VerdictKind.STALE
    bad = server.verify(answer(challenge, password="nope"), "REGISTER", stored("SHA-256"), later)
    assert bad.kind is VerdictKind.BAD_RESPONSE


def test_nonce_valid_until_lifetime() -> None:
    """A nonce is still accepted just before its lifetime ends."""
    server = make_server(nonce_lifetime=300.0)
    challenge = challenge_for(server, T0, "MD5")
    assert server.verify(answer(challenge), "REGISTER", stored("MD5"), T0 + 299.9).ok


@pytest.mark.parametrize("position", [0, 7, 20, 35, 47])
def test_forged_nonce(position: int) -> None:
    """A nonce with one character changed is BAD_NONCE even with a correct response."""
    server = make_server()
    challenge = challenge_for(server, T0, "SHA-256")
    nonce = challenge.nonce
    flipped = "B" if nonce[position] == "A" else "A"
    forged = Challenge(
        realm=REALM,
        nonce=nonce[:position] + flipped + nonce[position + 1 :],
        algorithm="SHA-256",
        qop=("auth",),
    )
    verdict = server.verify(answer(forged), "REGISTER", stored("SHA-256"), T0 + 1)
    assert verdict.kind is VerdictKind.BAD_NONCE


def test_foreign_nonces_rejected() -> None:
    """Nonces from another secret, another realm, or of another shape are BAD_NONCE."""
    server = make_server()
    other_secret = DigestServer(b"x" * 32, REALM)
    other_realm = DigestServer(SECRET, "other.example.com")
    for nonce in (
        parse_challenge(other_secret.challenge(T0)[0]).nonce,
        parse_challenge(other_realm.challenge(T0)[0]).nonce,
        "dcd98b7102dd2f0e8b11d0f600bfb0c093",
        RFC_NONCE,
    ):
        challenge = Challenge(realm=REALM, nonce=nonce, algorithm="MD5", qop=("auth",))
        verdict = server.verify(answer(challenge), "REGISTER", stored("MD5"), T0)
        assert verdict.kind is VerdictKind.BAD_NONCE, nonce


def test_nonce_from_the_future() -> None:
    """A genuine nonce dated well ahead of now is BAD_NONCE; within the skew it is fine."""
    server = make_server()
    near = challenge_for(server, T0 + 2, "MD5")
    ahead = challenge_for(server, T0 + 60, "MD5")
    assert server.verify(answer(ahead), "REGISTER", stored("MD5"), T0).kind is VerdictKind.BAD_NONCE
    assert server.verify(answer(near), "REGISTER", stored("MD5"), T0).ok


def test_wrong_password_and_unknown_user_identical() -> None:
    """A wrong password and an unknown user get exactly the same verdict."""
    server = make_server()
    challenge = challenge_for(server, T0, "SHA-256")
    wrong = server.verify(answer(challenge, password="guess"), "REGISTER", stored("SHA-256"), T0)
    unknown = server.verify(answer(challenge, username="mallory"), "REGISTER", None, T0)
    assert wrong == unknown
    assert wrong.kind is VerdictKind.BAD_RESPONSE
    assert isinstance(wrong, Verdict) and wrong.reason


def test_malformed_stored_ha1_counts_as_unknown() -> None:
    """A stored HA1 of the wrong algorithm length is treated like an unknown user."""
    server = make_server()
    challenge = challenge_for(server, T0, "SHA-256")
    verdict = server.verify(answer(challenge), "REGISTER", stored("MD5"), T0)
    assert verdict.kind is VerdictKind.BAD_RESPONSE


def test_wrong_method_is_bad_response() -> None:
    """An answer computed for another method does not verify."""
    server = make_server()
    challenge = challenge_for(server, T0, "MD5")
    creds = answer(challenge, method="INVITE")
    assert server.verify(creds, "REGISTER", stored("MD5"), T0).kind is VerdictKind.BAD_RESPONSE


def test_replay_and_increasing_nc() -> None:
    """The same nc twice is REPLAY, a higher nc is OK, a lower one afterwards is REPLAY."""
    server = make_server()
    challenge = challenge_for(server, T0, "SHA-256")
    key = stored("SHA-256")
    assert server.verify(answer(challenge, nc=1), "REGISTER", key, T0).ok
    replay = server.verify(answer(challenge, nc=1), "REGISTER", key, T0 + 1)
    assert replay.kind is VerdictKind.REPLAY
    assert server.verify(answer(challenge, nc=2), "REGISTER", key, T0 + 2).ok
    assert server.verify(answer(challenge, nc=5), "REGISTER", key, T0 + 3).ok
    late = server.verify(answer(challenge, nc=3), "REGISTER", key, T0 + 4)
    assert late.kind is VerdictKind.REPLAY


def test_wrong_password_does_not_consume_nc() -> None:
    """A failed attempt does not record its nonce count."""
    server = make_server()
    challenge = challenge_for(server, T0, "MD5")
    server.verify(answer(challenge, password="guess", nc=1), "REGISTER", stored("MD5"), T0)
    assert server.verify(answer(challenge, nc=1), "REGISTER", stored("MD5"), T0).ok


def test_replay_cache_eviction_is_safe() -> None:
    """A nonce whose replay state was evicted is answered STALE, never accepted again."""
    server = make_server(replay_cache_size=2)
    key = stored("MD5")
    first, second, third = (challenge_for(server, T0 + i, "MD5") for i in range(3))
    pending = challenge_for(server, T0 + 3, "MD5")
    for challenge in (first, second, third):
        assert server.verify(answer(challenge), "REGISTER", key, T0 + 10).ok
    again = server.verify(answer(first, nc=7), "REGISTER", key, T0 + 11)
    assert again.kind is VerdictKind.STALE
    # Nonces issued after the evicted one, and still cached ones, keep working.
    assert server.verify(answer(pending), "REGISTER", key, T0 + 12).ok
    assert server.verify(answer(challenge_for(server, T0 + 13, "MD5")), "REGISTER", key, T0 + 13).ok


def test_nonce_from_before_restart_is_stale() -> None:
    """A new server object with the same secret re-challenges (STALE) older nonces."""
    before = make_server()
    challenge = challenge_for(before, T0, "SHA-256")
    assert before.verify(answer(challenge), "REGISTER", stored("SHA-256"), T0 + 1).ok
    after = make_server()
    verdict = after.verify(answer(challenge, nc=1), "REGISTER", stored("SHA-256"), T0 + 2)
    assert verdict.kind is VerdictKind.STALE
    fresh = challenge_for(after, T0 + 3, "SHA-256")
    assert after.verify(answer(fresh), "REGISTER", stored("SHA-256"), T0 + 3).ok


def test_realm_mismatch() -> None:
    """Credentials for another realm are REALM_MISMATCH."""
    server = make_server()
    challenge = challenge_for(server, T0, "MD5")
    other = Challenge(realm="evil.example.com", nonce=challenge.nonce, qop=("auth",))
    verdict = server.verify(answer(other), "REGISTER", stored("MD5"), T0)
    assert verdict.kind is VerdictKind.REALM_MISMATCH


def test_algorithm_not_enabled() -> None:
    """An answer with an algorithm the server did not enable is UNSUPPORTED."""
    server = make_server(algorithms=("SHA-256",))
    nonce = challenge_for(server, T0, "SHA-256").nonce
    md5 = Challenge(realm=REALM, nonce=nonce, algorithm="MD5", qop=("auth",))
    verdict = server.verify(answer(md5), "REGISTER", stored("MD5"), T0)
    assert verdict.kind is VerdictKind.UNSUPPORTED


def test_configure_changes_algorithms_and_lifetime_live() -> None:
    """configure() changes what the next challenge offers and how long a
    nonce lives; nonces issued before still verify (same secret), one made
    for an algorithm no longer offered is UNSUPPORTED."""
    server = make_server(algorithms=("MD5",), nonce_lifetime=300.0)
    md5 = challenge_for(server, T0, "MD5")
    server.configure(algorithms=("SHA-256", "MD5"), nonce_lifetime=60.0)
    assert server.algorithms == ("SHA-256", "MD5")
    assert [parse_challenge(v).algorithm for v in server.challenge(T0)] == ["SHA-256", "MD5"]
    assert server.verify(answer(md5), "REGISTER", stored("MD5"), T0 + 59).ok
    late = server.verify(answer(md5, nc=2), "REGISTER", stored("MD5"), T0 + 61)
    assert late.kind is VerdictKind.STALE
    sha = challenge_for(server, T0, "SHA-256")
    server.configure(algorithms=("MD5",), nonce_lifetime=60.0)
    assert [parse_challenge(v).algorithm for v in server.challenge(T0)] == ["MD5"]
    gone = server.verify(answer(sha), "REGISTER", stored("SHA-256"), T0 + 1)
    assert gone.kind is VerdictKind.UNSUPPORTED


@pytest.mark.parametrize("algorithms, lifetime", [
    ((), 300.0), (("MD5", "md5"), 300.0), (("SHA-1",), 300.0), (("MD5",), 0.0),
    (("MD5",), float("nan")),
])
def test_configure_refuses_bad_settings_and_keeps_the_old(
        algorithms: tuple[str, ...], lifetime: float) -> None:
    """A refused configure() raises ValueError and leaves the server as it was."""
    server = make_server(algorithms=("SHA-256", "MD5"), nonce_lifetime=300.0)
    with pytest.raises(ValueError):
        server.configure(algorithms=algorithms, nonce_lifetime=lifetime)
    assert server.algorithms == ("SHA-256", "MD5")
    challenge = challenge_for(server, T0, "MD5")
    assert server.verify(answer(challenge), "REGISTER", stored("MD5"), T0 + 299).ok


def test_rfc2069_only_when_allowed() -> None:
    """An answer without qop is UNSUPPORTED by default and OK with allow_rfc2069."""
    for allow, kind in ((False, VerdictKind.UNSUPPORTED), (True, VerdictKind.OK)):
        server = make_server(allow_rfc2069=allow)
        nonce = challenge_for(server, T0, "MD5").nonce
        old = Challenge(realm=REALM, nonce=nonce, algorithm="MD5")
        creds = answer(old)
        assert creds.qop is None and creds.cnonce is None and creds.nc is None
        assert server.verify(creds, "REGISTER", stored("MD5"), T0).kind is kind


def test_auth_int_only_when_allowed() -> None:
    """qop=auth-int is UNSUPPORTED unless enabled, then it covers the body."""
    body = b"v=0\r\n"
    for allow in (False, True):
        server = make_server(allow_auth_int=allow)
        nonce = challenge_for(server, T0, "MD5").nonce
        offer = Challenge(realm=REALM, nonce=nonce, algorithm="MD5", qop=("auth-int",))
        creds = answer_challenge(
            offer,
            method="INVITE",
            uri=URI,
            username=USER,
            password=PASSWORD,
            cnonce="c",
            body=body,
        )
        assert creds.qop == "auth-int"
        verdict = server.verify(creds, "INVITE", stored("MD5"), T0, body=body)
        assert verdict.kind is (VerdictKind.OK if allow else VerdictKind.UNSUPPORTED)
    tampered = server.verify(
        answer_challenge(
            offer, method="INVITE", uri=URI, username=USER, password=PASSWORD, cnonce="d", body=body
        ),
        "INVITE",
        stored("MD5"),
        T0,
        body=b"v=1\r\n",
    )
    assert tampered.kind is VerdictKind.BAD_RESPONSE


def test_userhash() -> None:
    """With userhash=true the client sends H(user:realm) and the answer still verifies."""
    server = make_server()
    plain = challenge_for(server, T0, "SHA-256")
    hashed = Challenge(
        realm=REALM, nonce=plain.nonce, algorithm="SHA-256", qop=("auth",), userhash=True
    )
    creds = parse_credentials(str(answer(hashed)))
    assert creds.userhash
    assert creds.username == userhash(USER, REALM, "SHA-256")
    assert server.verify(creds, "REGISTER", stored("SHA-256"), T0).ok


# --- headers as seen on the wire --------------------------------------------------


def test_sipp_style_header() -> None:
    """A SIPp-style Authorization (no spaces, odd order) parses and verifies."""
    server = make_server(algorithms=("MD5",))
    nonce = challenge_for(server, T0, "MD5").nonce
    key = stored("MD5")
    digest = response(
        key,
        algorithm="MD5",
        method="REGISTER",
        uri=URI,
        nonce=nonce,
        qop="auth",
        cnonce="6b8b4567",
        nc="00000001",
    )
    value = (
        f'Digest username="{USER}",realm="{REALM}",cnonce="6b8b4567",nc=00000001,'
        f'qop=auth,uri="{URI}",nonce="{nonce}",response="{digest}",algorithm=MD5'
    )
    creds = parse_credentials(value)
    assert creds.cnonce == "6b8b4567" and creds.nc_count == 1
    assert server.verify(creds, "REGISTER", key, T0).ok


def test_phone_style_header_upper_case_and_spaces() -> None:
    """Upper-case names, spaces around '=', quoted tokens and a tab all parse and verify."""
    server = make_server()
    nonce = challenge_for(server, T0, "SHA-256").nonce
    key = stored("SHA-256")
    digest = response(
        key,
        algorithm="SHA-256",
        method="INVITE",
        uri=URI,
        nonce=nonce,
        qop="auth",
        cnonce="ZmFrZWNub25jZQ",
        nc="0000000A",
    )
    value = (
        f'digest  RESPONSE = "{digest.upper()}" ,NC=0000000A , QOP="auth",\t'
        f'Algorithm="sha-256", URI="{URI}", Realm = "{REALM}", Nonce="{nonce}", '
        f'UserName="{USER}", CNonce="ZmFrZWNub25jZQ", x-vendor=yealink'
    )
    creds = parse_credentials(value)
    assert creds.algorithm == "SHA-256"
    assert creds.nc == "0000000A" and creds.nc_count == 10
    assert creds.extra == (("x-vendor", "yealink"),)
    assert server.verify(creds, "INVITE", key, T0).ok


def test_credentials_bare_realm_and_extra_params_kept() -> None:
    """Bare values and unknown parameters survive parse and format."""
    value = (
        'Digest username=bob, realm=example.org, nonce="n1", uri="sip:a@b", '
        f'response="{"0" * 32}", charset=UTF-8, token="a, b"'
    )
    creds = parse_credentials(value)
    assert creds.username == "bob" and creds.realm == "example.org"
    assert creds.algorithm == "MD5"
    assert creds.extra == (("charset", "UTF-8"), ("token", "a, b"))
    assert parse_credentials(str(creds)) == creds


def test_challenge_fields() -> None:
    """A challenge with every field parses into them and formats back equal."""
    value = (
        'DIGEST realm="a \\"quoted\\" realm", nonce="abc", opaque="op", stale=TRUE, '
        'algorithm=sha-512-256-SESS, domain="sip:a.example sip:b.example", '
        'qop="auth,auth-int", userhash=true, charset=UTF-8'
    )
    challenge = parse_challenge(value)
    assert challenge.realm == 'a "quoted" realm'
    assert challenge.algorithm == "SHA-512-256-sess"
    assert challenge.stale and challenge.userhash
    assert challenge.domain == ("sip:a.example", "sip:b.example")
    assert challenge.qop == ("auth", "auth-int")
    assert challenge.extra == (("charset", "UTF-8"),)
    assert parse_challenge(str(challenge)) == challenge


def test_challenge_defaults() -> None:
    """Without algorithm, qop or stale a challenge means MD5, RFC 2069, not stale."""
    challenge = parse_challenge('Digest realm="r", nonce="n", stale=maybe')
    assert challenge.algorithm == "MD5"
    assert challenge.qop == ()
    assert not challenge.stale


_GOOD = (
    'username="u", realm="r", nonce="n", uri="sip:x", response="00112233445566778899aabbccddeeff"'
)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "empty"),
        ("Basic dXNlcjpwYXNz", "scheme"),
        ('Digest realm="r", nonce="n", uri="sip:x", response="' + "0" * 32 + '"', "username"),
        ('Digest username="u", nonce="n", uri="sip:x", response="' + "0" * 32 + '"', "realm"),
        ('Digest username="u", realm="r", uri="sip:x", response="' + "0" * 32 + '"', "nonce"),
        ('Digest username="u", realm="r", nonce="n", response="' + "0" * 32 + '"', "uri"),
        ('Digest username="u", realm="r", nonce="n", uri="sip:x"', "response"),
        (f'Digest {_GOOD}, realm="r2"', "duplicate"),
        (f'Digest {_GOOD}, REALM="r"', "duplicate"),
        ('Digest username="u, realm="r"', "missing or stray quote"),
        ('Digest username="u", realm="r', "unterminated"),
        (f'Digest {_GOOD}, opaque="abc\\', "unterminated"),
        (f"Digest {_GOOD}, qop=auth, cnonce=c, nc=1", "nc"),
        (f"Digest {_GOOD}, qop=auth, cnonce=c, nc=0000000g", "nc"),
        (f"Digest {_GOOD}, qop=auth, cnonce=c, nc=000000001", "nc"),
        (f"Digest {_GOOD}, algorithm=SHA-1", "algorithm"),
        (f"Digest {_GOOD}, algorithm=SHA-256", "response"),
        ('Digest username="u", realm="r", nonce="n", uri="sip:x", response="abc"', "response"),
        (
            'Digest username="u", realm="r", nonce="n", uri="sip:x", response="' + "z" * 32 + '"',
            "response",
        ),
        (f"Digest {_GOOD}, qop=auth, nc=00000001", "cnonce"),
        (f"Digest {_GOOD}, qop=auth, cnonce=abc", "nc"),
        (f"Digest {_GOOD}, algorithm=MD5-sess", "cnonce"),
        (f"Digest {_GOOD}, qop=auth, cnonce=, nc=00000001", "empty value"),
        (f'Digest {_GOOD}, cnonce=""', "cnonce"),
        (f"Digest {_GOOD}, stray", "no '=value'"),
        (f'Digest {_GOOD} nonce2="x"', "expected ','"),
        (f'Digest {_GOOD}, x="a"b', "expected ','"),
        (f'Digest {_GOOD}, @bad="x"', "parameter name"),
        (f'Digest {_GOOD}, opaque="a\r\nVia: x"', "control character"),
        (
            'Digest username="u", realm="r", nonce="", uri="sip:x", response="' + "0" * 32 + '"',
            "empty nonce",
        ),
    ],
)
def test_malformed_credentials(value: str, message: str) -> None:
    """Each malformed Authorization value raises DigestError saying what is wrong."""
    with pytest.raises(DigestError, match=message):
        parse_credentials(value)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ('Digest nonce="n"', "realm"),
        ('Digest realm="r"', "nonce"),
        ('Digest realm="r", nonce="n", algorithm=SHA3', "algorithm"),
        ('Digest realm="r", nonce="n", qop="auth int"', "qop"),
        ('Digest realm="r", nonce="n", nonce="m"', "duplicate"),
        ('Digest realm="r, nonce="n"', "quote"),
        ('Digest realm="r", nonce="n', "unterminated"),
        ('NTLM realm="r", nonce="n"', "scheme"),
        ("Digest", "realm"),
    ],
)
def test_malformed_challenges(value: str, message: str) -> None:
    """Each malformed WWW-Authenticate value raises DigestError saying what is wrong."""
    with pytest.raises(DigestError, match=message):
        parse_challenge(value)


def test_digest_error_is_value_error() -> None:
    """DigestError is a ValueError, so generic handlers catch it."""
    assert issubclass(DigestError, ValueError)


def test_records_check_their_fields() -> None:
    """Building a record with a bad field raises DigestError, so no bad header is formatted."""
    with pytest.raises(DigestError, match="control character"):
        Challenge(realm="r\r\nX-Injected: 1", nonce="n")
    with pytest.raises(DigestError, match="response"):
        Credentials(username="u", realm="r", nonce="n", uri="sip:x", response="00")
    with pytest.raises(DigestError, match="duplicate"):
        Challenge(realm="r", nonce="n", extra=(("realm", "x"),))


# --- client choices ---------------------------------------------------------------


def test_pick_sha256_over_md5() -> None:
    """Offered SHA-256 and MD5 in either order, the client picks SHA-256."""
    md5 = Challenge(realm=REALM, nonce="n", algorithm="MD5", qop=("auth",))
    sha = Challenge(realm=REALM, nonce="n", algorithm="SHA-256", qop=("auth",))
    assert pick_challenge([md5, sha]) is sha
    assert pick_challenge([sha, md5]) is sha
    assert pick_challenge([md5, sha], supported=("MD5",)) is md5
    assert pick_challenge([sha], supported=("MD5",)) is None
    assert pick_challenge([]) is None


def test_pick_from_server_values() -> None:
    """parse_challenges keeps Digest values, skipping others; the pick is SHA-256."""
    values = ['Basic realm="x"', *make_server(algorithms=("MD5", "SHA-256")).challenge(T0)]
    challenges = parse_challenges(values)
    assert [c.algorithm for c in challenges] == ["MD5", "SHA-256"]
    chosen = pick_challenge(challenges)
    assert chosen is not None and chosen.algorithm == "SHA-256"


def test_pick_skips_unanswerable_qop() -> None:
    """A challenge offering only unknown qop options is not picked."""
    odd = Challenge(realm=REALM, nonce="n", algorithm="SHA-256", qop=("auth-conf",))
    md5 = Challenge(realm=REALM, nonce="n", algorithm="MD5", qop=("auth",))
    assert pick_challenge([odd, md5]) is md5


def test_answer_argument_errors() -> None:
    """answer_challenge refuses both/neither secrets, a bad nc and unknown qop options."""
    challenge = Challenge(realm=REALM, nonce="n", algorithm="MD5", qop=("auth",))

    def attempt(
        target: Challenge, password: str | None = None, ha1: str | None = None, nc: int = 1
    ) -> Credentials:
        return answer_challenge(
            target,
            method="REGISTER",
            uri=URI,
            username=USER,
            cnonce="c",
            password=password,
            ha1=ha1,
            nc=nc,
        )

    with pytest.raises(DigestError, match="exactly one"):
        attempt(challenge)
    with pytest.raises(DigestError, match="exactly one"):
        attempt(challenge, password="p", ha1="0" * 32)
    with pytest.raises(DigestError, match="nc"):
        attempt(challenge, password="p", nc=0)
    with pytest.raises(DigestError, match="ha1"):
        attempt(challenge, ha1="0" * 64)
    odd = Challenge(realm=REALM, nonce="n", qop=("auth-conf",))
    with pytest.raises(DigestError, match="qop"):
        attempt(odd, password="p")


def test_server_configuration_errors() -> None:
    """DigestServer refuses a short secret, unknown or no algorithms, bad lifetimes."""
    with pytest.raises(ValueError, match="secret"):
        DigestServer(b"short", REALM)
    with pytest.raises(ValueError, match="algorithm"):
        DigestServer(SECRET, REALM, algorithms=("SHA-1",))
    with pytest.raises(ValueError, match="algorithms"):
        DigestServer(SECRET, REALM, algorithms=())
    with pytest.raises(ValueError, match="nonce_lifetime"):
        DigestServer(SECRET, REALM, nonce_lifetime=0)
    with pytest.raises(ValueError, match="finite"):
        make_server().challenge(float("nan"))
