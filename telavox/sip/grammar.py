"""Lexical pieces of the SIP grammar (RFC 3261 §25.1) shared by the parsers.

Owns: token and separator character classes, quoted strings (``quoted-string``,
``quoted-pair``), comma splitting of list-valued header fields (§7.3.1) that
respects quotes, angle brackets and parentheses, ``generic-param`` lists
(``;name=value``), and :func:`memoized`, the bounded cache the parsers of
URIs and header values keep their results in.  Functions here take and
return ``str``; they never raise anything but :class:`GrammarError` (a
``ValueError``).
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable
from typing import TypeVar

__all__ = [
    "TOKEN_CHARS",
    "GrammarError",
    "is_token",
    "memoized",
    "parse_params",
    "quote",
    "quote_if_needed",
    "split_commas",
    "unquote",
]


class GrammarError(ValueError):
    """Text that does not follow the SIP grammar."""


_T = TypeVar("_T")


def memoized(parse: Callable[[str], _T], limit: int = 8192, longest: int = 256
             ) -> Callable[[str], _T]:
    """``parse`` (a pure parser giving frozen values) with its results kept
    by text, so the fields that repeat in every message of a call (From, To,
    the URIs, our own Via in responses) are parsed once.

    Bounded: texts longer than ``longest`` are not kept, and at most
    2 × ``limit`` are: new texts go to a young table which, once it holds
    ``limit``, becomes the old one (the previous old one is dropped); a text
    found in the old table moves back to the young.  So what came back
    within the last ``limit`` new texts (a call's BYE a few seconds after
    its INVITE, under load) is still there.  Errors are not kept (the
    parser raises again).
    """
    young: dict[str, _T] = {}
    old: dict[str, _T] = {}

    def cached(text: str) -> _T:
        nonlocal young, old
        value = young.get(text)
        if value is not None:
            return value
        value = old.get(text)
        if value is None:
            value = parse(text)
            if len(text) > longest:
                return value
        if len(young) >= limit:
            old, young = young, {}
        young[text] = value
        return value

    cached.__doc__ = parse.__doc__
    cached.__wrapped__ = parse  # type: ignore[attr-defined]
    return cached


# token = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'" / "~")
TOKEN_CHARS = frozenset(string.ascii_letters + string.digits + "-.!%*_+`'~")

# word (Call-ID) = 1*(alphanum / "-" / "." / "!" / "%" / "*" / "_" / "+" / "`" / "'"
#   / "~" / "(" / ")" / "<" / ">" / ":" / "\" / DQUOTE / "/" / "[" / "]" / "?" / "{" / "}" )
WORD_CHARS = TOKEN_CHARS | frozenset('()<>:\\"/[]?{}')

_TOKEN_SET = TOKEN_CHARS


_TOKEN_RE = re.compile(r"[A-Za-z0-9\-.!%*_+`'~]+\Z")


def is_token(text: str) -> bool:
    """True if ``text`` is a non-empty ``token``."""
    return _TOKEN_RE.match(text) is not None


def quote(text: str) -> str:
    """Return ``text`` as a ``quoted-string``, escaping ``"`` and ``\\``."""
    if '"' in text or "\\" in text:
        text = text.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + text + '"'


def quote_if_needed(text: str) -> str:
    """``text`` itself when it is a token, else :func:`quote` of it."""
    return text if is_token(text) else quote(text)


def unquote(text: str) -> str:
    """Remove the quotes and ``quoted-pair`` escapes of a ``quoted-string``.

    Text that is not quoted is returned unchanged.  Raises GrammarError for an
    unterminated quoted string.
    """
    if not text.startswith('"'):
        return text
    if len(text) < 2 or not text.endswith('"'):
        raise GrammarError("unterminated quoted string")
    inner = text[1:-1]
    if "\\" not in inner:
        if '"' in inner:
            raise GrammarError("stray quote inside quoted string")
        return inner
    out: list[str] = []
    i = 0
    n = len(inner)
    while i < n:
        c = inner[i]
        if c == "\\":
            if i + 1 >= n:
                raise GrammarError("unterminated quoted string")
            out.append(inner[i + 1])
            i += 2
            continue
        if c == '"':
            raise GrammarError("stray quote inside quoted string")
        out.append(c)
        i += 1
    return "".join(out)


def scan_quoted(text: str, start: int) -> int:
    """Given ``text[start] == '"'``, return the index just past the closing quote.

    Raises GrammarError when the quoted string is not terminated.
    """
    i = start + 1
    n = len(text)
    while i < n:
        c = text[i]
        if c == "\\":
            i += 2
            continue
        if c == '"':
            return i + 1
        i += 1
    raise GrammarError("unterminated quoted string")


_PLAIN_LIST = re.compile(r'[^"<>()]*\Z')


def split_commas(value: str) -> list[str]:
    """Split a header field value at the commas that separate list elements.

    Commas inside quoted strings, ``<...>`` (URIs) and ``(...)`` (comments) are
    kept; parentheses inside ``<...>`` are URI characters, not comments.
    Elements are stripped; empty elements (``a,,b``) are dropped, as RFC 3261
    §7.3.1 lists may be written loosely.  Raises GrammarError for an
    unterminated quote or bracket.
    """
    if "," not in value:
        v = value.strip()
        if '"' in v:
            # still validate quotes
            _check_balanced(v)
        return [v] if v else []
    if _PLAIN_LIST.match(value) is not None:
        # nothing can hide a comma (the usual Via, Allow, Supported lines)
        return [part for part in (p.strip() for p in value.split(",")) if part]
    parts: list[str] = []
    depth_angle = 0
    depth_paren = 0
    start = 0
    i = 0
    n = len(value)
    while i < n:
        c = value[i]
        if c == '"':
            i = scan_quoted(value, i)
            continue
        if c == "<":
            depth_angle += 1
        elif c == ">":
            depth_angle = max(0, depth_angle - 1)
        elif c == "(" and not depth_angle:
            depth_paren += 1
        elif c == ")" and not depth_angle:
            depth_paren = max(0, depth_paren - 1)
        elif c == "," and not depth_angle and not depth_paren:
            part = value[start:i].strip()
            if part:
                parts.append(part)
            start = i + 1
        i += 1
    if depth_angle:
        raise GrammarError("unterminated '<'")
    part = value[start:].strip()
    if part:
        parts.append(part)
    return parts


def _check_balanced(text: str) -> None:
    i = 0
    n = len(text)
    while i < n:
        if text[i] == '"':
            i = scan_quoted(text, i)
            continue
        i += 1


def parse_params(text: str, start: int = 0) -> tuple[tuple[str, str | None], ...]:
    """Parse ``*( SEMI generic-param )`` from ``text[start:]``.

    ``text[start:]`` is expected to begin with ``;`` (or be empty).  Returns
    ``(name, value)`` pairs in order; a parameter without ``=`` has value None.
    Names keep their case (compare with ``.lower()``); quoted values keep their
    quotes, so that serialising gives back the same text.  Raises
    GrammarError for an empty name or an unterminated quoted value.
    """
    if '"' not in text:
        return parse_plain_params(text[start:] if start else text)
    return _scan_params(text, start)


def _scan_params(text: str, start: int) -> tuple[tuple[str, str | None], ...]:
    """:func:`parse_params` character by character (quoted values allowed)."""
    params: list[tuple[str, str | None]] = []
    n = len(text)
    i = start
    while i < n:
        # skip whitespace and the separator
        while i < n and text[i] in " \t":
            i += 1
        if i >= n:
            break
        if text[i] != ";":
            raise GrammarError(f"expected ';' before parameter at {text[i:i + 10]!r}")
        i += 1
        j = i
        while j < n and text[j] not in "=;":
            j += 1
        name = text[i:j].strip()
        if not name:
            raise GrammarError("empty parameter name")
        if j < n and text[j] == "=":
            k = j + 1
            while k < n and text[k] in " \t":
                k += 1
            if k < n and text[k] == '"':
                end = scan_quoted(text, k)
                value = text[k:end]
                i = end
            else:
                end = text.find(";", k)
                if end < 0:
                    end = n
                value = text[k:end].strip()
                i = end
            params.append((name, value))
        else:
            params.append((name, None))
            i = j
    return tuple(params)


def parse_plain_params(text: str) -> tuple[tuple[str, str | None], ...]:
    """:func:`parse_params` for text without quoted strings, by splitting."""
    body = text.lstrip(" \t")
    if not body:
        return ()
    if body[0] != ";":
        raise GrammarError(f"expected ';' before parameter at {body[:10]!r}")
    params: list[tuple[str, str | None]] = []
    for piece in body[1:].split(";"):
        name, equals, value = piece.partition("=")
        name = name.strip()
        if not name:
            raise GrammarError("empty parameter name")
        params.append((name, value.strip() if equals else None))
    return tuple(params)


def format_params(params: tuple[tuple[str, str | None], ...]) -> str:
    """Serialise parameters parsed by :func:`parse_params` (``;a=b;c``)."""
    if not params:
        return ""
    return "".join([f";{k}" if v is None else f";{k}={v}" for k, v in params])


def param_value(params: tuple[tuple[str, str | None], ...], name: str) -> str | None:
    """The value of the first parameter called ``name`` (case-insensitive).

    Returns ``""`` for a flag parameter (present without a value) and None
    when absent.  Quoted values are returned unquoted.
    """
    lname = name.lower()
    for k, v in params:
        if k == lname or k.lower() == lname:
            if v is None:
                return ""
            return unquote(v) if v.startswith('"') else v
    return None


def has_param(params: tuple[tuple[str, str | None], ...], name: str) -> bool:
    """True when a parameter called ``name`` is present (case-insensitive)."""
    lname = name.lower()
    return any(k.lower() == lname for k, _ in params)


def set_param(
    params: tuple[tuple[str, str | None], ...], name: str, value: str | None
) -> tuple[tuple[str, str | None], ...]:
    """Return ``params`` with ``name`` set to ``value`` (replacing in place, or appended)."""
    lname = name.lower()
    out = []
    found = False
    for k, v in params:
        if k.lower() == lname:
            if not found:
                out.append((k, value))
                found = True
            continue
        out.append((k, v))
    if not found:
        out.append((name, value))
    return tuple(out)


def remove_param(
    params: tuple[tuple[str, str | None], ...], name: str
) -> tuple[tuple[str, str | None], ...]:
    """Return ``params`` without any parameter called ``name``."""
    lname = name.lower()
    return tuple((k, v) for k, v in params if k.lower() != lname)
