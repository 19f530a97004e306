"""telavox.sip.grammar.memoized: what it keeps, and for how long."""

from __future__ import annotations

import pytest

from telavox.sip.grammar import GrammarError, memoized


class Counting:
    """A parser that counts its calls; "bad" is a grammar error."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def __call__(self, text: str) -> tuple[str]:
        self.calls.append(text)
        if text == "bad":
            raise GrammarError("bad")
        return (text.upper(),)


def test_a_text_is_parsed_once_and_gives_the_same_value() -> None:
    parse = Counting()
    cached = memoized(parse, limit=3)
    first = cached("a")
    assert cached("a") is first and first == ("A",)
    assert parse.calls == ["a"]


def test_a_text_outlives_limit_newer_texts_and_goes_after_twice_that() -> None:
    """Kept while fewer than ``limit`` new texts came after it (the young
    table, then the old); forgotten once two tables' worth came after it."""
    parse = Counting()
    cached = memoized(parse, limit=3)
    cached("a")
    for text in ("b", "c", "d"):  # "a" is now in the old table
        cached(text)
    cached("a")
    assert parse.calls.count("a") == 1
    for text in ("e", "f", "g", "h", "i", "j"):
        cached(text)
    cached("b")  # not seen since the first four: gone
    assert parse.calls.count("b") == 2


def test_a_text_used_again_stays_however_many_come_after() -> None:
    parse = Counting()
    cached = memoized(parse, limit=3)
    for n in range(100):
        cached("hot")
        cached(f"cold{n}")
    assert parse.calls.count("hot") == 1


def test_long_texts_and_errors_are_not_kept() -> None:
    parse = Counting()
    cached = memoized(parse, limit=3, longest=4)
    cached("long text")
    cached("long text")
    assert parse.calls.count("long text") == 2
    for _ in range(2):
        with pytest.raises(GrammarError):
            cached("bad")
    assert parse.calls.count("bad") == 2
