"""Property tests of the Digest header parsers: round trips and totality."""

from __future__ import annotations

from collections.abc import Callable

import attrs
from hypothesis import given, settings
from hypothesis import strategies as st

from telavox.sip.digest import (
    ALGORITHMS,
    Challenge,
    Credentials,
    DigestError,
    DigestServer,
    Verdict,
    parse_challenge,
    parse_credentials,
)
from telavox.sip.digestparse import digest_hex_length, is_session_algorithm
from telavox.sip.grammar import TOKEN_CHARS, is_token, quote

KNOWN = frozenset(
    (
        "username",
        "realm",
        "nonce",
        "uri",
        "response",
        "algorithm",
        "cnonce",
        "nc",
        "qop",
        "opaque",
        "userhash",
        "stale",
        "domain",
    )
)

CHARS = st.characters(exclude_categories=("Cc", "Cs")) | st.sampled_from(
    ["\t", "\\", '"', ",", "=", " ", "\udc80", "\udcff"]
)
TEXT = st.text(CHARS, max_size=16)
NONEMPTY = st.text(CHARS, min_size=1, max_size=16)
TOKEN = st.text(st.sampled_from(sorted(TOKEN_CHARS)), min_size=1, max_size=10)
NC = st.text(st.sampled_from("0123456789abcdefABCDEF"), min_size=8, max_size=8)
EXTRA = st.lists(
    st.tuples(TOKEN.map(str.lower).filter(lambda n: n not in KNOWN), TEXT),
    max_size=3,
    unique_by=lambda pair: pair[0],
).map(tuple)


def hex_digits(length: int) -> st.SearchStrategy[str]:
    return st.text(st.sampled_from("0123456789abcdef"), min_size=length, max_size=length)


@st.composite
def credentials(draw: st.DrawFn) -> Credentials:
    algorithm = draw(st.sampled_from(ALGORITHMS))
    qop = draw(st.none() | st.sampled_from(["auth", "auth-int"]) | TOKEN)
    needs_cnonce = qop is not None or is_session_algorithm(algorithm)
    return Credentials(
        username=draw(TEXT),
        realm=draw(TEXT),
        nonce=draw(NONEMPTY),
        uri=draw(NONEMPTY),
        response=draw(hex_digits(digest_hex_length(algorithm))),
        algorithm=algorithm,
        cnonce=draw(NONEMPTY if needs_cnonce else st.none() | NONEMPTY),
        nc=draw(NC if qop is not None else st.none() | NC),
        qop=qop,
        opaque=draw(st.none() | TEXT),
        userhash=draw(st.booleans()),
        extra=draw(EXTRA),
    )


@st.composite
def challenges(draw: st.DrawFn) -> Challenge:
    return Challenge(
        realm=draw(TEXT),
        nonce=draw(NONEMPTY),
        algorithm=draw(st.sampled_from(ALGORITHMS)),
        qop=draw(st.lists(TOKEN, max_size=3).map(tuple)),
        opaque=draw(st.none() | TEXT),
        stale=draw(st.booleans()),
        domain=draw(
            st.lists(NONEMPTY.filter(lambda u: " " not in u and "\t" not in u), max_size=3).map(
                tuple
            )
        ),
        userhash=draw(st.booleans()),
        extra=draw(EXTRA),
    )


@given(credentials())
def test_credentials_round_trip(creds: Credentials) -> None:
    """Any Credentials record formats to a value that parses back equal."""
    assert parse_credentials(str(creds)) == creds
    assert creds.format() == str(creds)


@given(challenges())
def test_challenge_round_trip(challenge: Challenge) -> None:
    """Any Challenge record formats to a value that parses back equal."""
    assert parse_challenge(str(challenge)) == challenge


def _credential_params(creds: Credentials) -> list[tuple[str, str, bool]]:
    """(name, value, is_token_param) for every parameter the record would send."""
    params = [
        ("username", creds.username, False),
        ("realm", creds.realm, False),
        ("nonce", creds.nonce, False),
        ("uri", creds.uri, False),
        ("response", creds.response, False),
        ("algorithm", creds.algorithm, True),
    ]
    for name, value in (("cnonce", creds.cnonce), ("opaque", creds.opaque)):
        if value is not None:
            params.append((name, value, False))
    for name, value in (("qop", creds.qop), ("nc", creds.nc)):
        if value is not None:
            params.append((name, value, True))
    if creds.userhash:
        params.append(("userhash", "true", True))
    params.extend((name, value, False) for name, value in creds.extra)
    return params


@given(creds=credentials(), data=st.data())
def test_credentials_layout_does_not_matter(creds: Credentials, data: st.DataObject) -> None:
    """Order, name case, spacing and optional quoting of parameters do not change the result."""
    space = st.sampled_from(["", " ", "\t", "  \t"])
    params = data.draw(st.permutations(_credential_params(creds)))
    rendered = []
    for name, value, token_param in params:
        flips = data.draw(st.lists(st.booleans(), min_size=len(name), max_size=len(name)))
        cased = "".join(c.upper() if f else c for c, f in zip(name, flips, strict=True))
        bare_ok = token_param or (is_token(value) and name in KNOWN)
        text = value if bare_ok and data.draw(st.booleans()) else quote(value)
        rendered.append(f"{cased}{data.draw(space)}={data.draw(space)}{text}")
    separator = data.draw(space) + "," + data.draw(space)
    scheme = data.draw(st.sampled_from(["Digest", "digest", "DIGEST"]))
    value = f"{data.draw(space)}{scheme} {data.draw(space)}{separator.join(rendered)}"
    # Unknown parameters keep the order they were written in.
    extra_order = [name for name, _, _ in params if name not in KNOWN]
    expected = attrs.evolve(
        creds, extra=tuple(sorted(creds.extra, key=lambda pair: extra_order.index(pair[0])))
    )
    assert parse_credentials(value) == expected


def _check_total(parse: Callable[[str], object], text: str) -> None:
    try:
        result = parse(text)
    except DigestError:
        return
    # Whatever is accepted formats back to a value that parses equal.
    assert parse(str(result)) == result


GRAMMARISH = st.lists(
    st.sampled_from(
        [
            "Digest ",
            "digest",
            " ",
            "\t",
            ",",
            "=",
            '"',
            "\\",
            "realm",
            "nonce",
            "username",
            "uri",
            "response",
            "qop",
            "nc",
            "cnonce",
            "algorithm",
            "opaque",
            "stale",
            "domain",
            "userhash",
            "MD5",
            "SHA-256-sess",
            "sha-512-256",
            "auth",
            "auth-int",
            "00000001",
            "0" * 32,
            "0" * 64,
            "true",
            "sip:a@b",
            "é",
            "\x00",
            "\r\n",
            "\udc80",
            "\ud800",
        ]
    ),
    max_size=40,
).map("".join)


@settings(max_examples=300)
@given(st.text() | GRAMMARISH)
def test_parsers_are_total(text: str) -> None:
    """Arbitrary text gives a record or DigestError from both parsers, nothing else."""
    _check_total(parse_challenge, text)
    _check_total(parse_credentials, text)


@settings(max_examples=300)
@given(creds=credentials(), data=st.data())
def test_parsers_total_on_mutated_headers(creds: Credentials, data: st.DataObject) -> None:
    """A valid header with characters cut out or put in gives a record or DigestError."""
    value = str(creds)
    start = data.draw(st.integers(0, len(value)))
    stop = data.draw(st.integers(start, min(len(value), start + 5)))
    insert = data.draw(st.text(st.sampled_from('",=\\ \tx0"') | st.characters(), max_size=3))
    mutated = value[:start] + insert + value[stop:]
    _check_total(parse_credentials, mutated)
    _check_total(parse_challenge, mutated)


SERVER = DigestServer(b"property-test-secret-0123456789", "realm")


@given(
    creds=credentials(),
    ha1=st.none() | hex_digits(32) | hex_digits(64) | TEXT,
    now=st.floats(-1e9, 1e12),
    body=st.binary(max_size=8),
)
def test_verify_is_total(creds: Credentials, ha1: str | None, now: float, body: bytes) -> None:
    """verify() answers any well-formed Credentials with a Verdict, never an exception."""
    assert isinstance(SERVER.verify(creds, "REGISTER", ha1, now, body=body), Verdict)
