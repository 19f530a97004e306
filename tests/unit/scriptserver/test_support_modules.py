"""Unit tests of the scriptserver's small helpers: the sound library's
search order, ${...} substitution and caller-ID parsing, the AstDB's key
trees, and the tokenizer and feeder being total."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from telavox.scriptserver import LineFeeder, MemoryAstDB, SoundLibrary, tokenize
from telavox.scriptserver.agi import LineTooLongError
from telavox.scriptserver.variables import ChannelVariables, parse_callerid

from .fakechannel import FakeChannel
from .support import first, write_wav


def test_sound_search_order(tmp_path: Path) -> None:
    """Languages: de_CH, de, none, en — each in every folder in turn."""
    library = SoundLibrary([str(tmp_path / "a"), str(tmp_path / "b")])
    assert library.languages("de_CH") == ["de_CH", "de", "", "en"]
    assert library.languages("en") == ["en", ""]
    assert library.candidates("x", "de")[:4] == [
        str(tmp_path / "a/de/x.wav"), str(tmp_path / "b/de/x.wav"),
        str(tmp_path / "a/x.wav"), str(tmp_path / "b/x.wav")]
    write_wav(tmp_path / "b" / "en" / "x.wav", seconds=0.25, rate=16000)
    found = library.find("x", "de_CH")
    assert found == str(tmp_path / "b/en/x.wav")
    assert library.samples(found) == 2000 and library.samples(str(tmp_path)) == 0
    assert library.find("", "en") is None


@pytest.mark.parametrize(("text", "expanded"), [
    ("plain", "plain"),
    ("${A}${B}", "12"),
    ("${UNSET}x", "x"),
    ("${${NAME}}", "1"),
    ("${LONG:1:2}", "bc"),
    ("${LONG:-3}", "def"),
    ("${LONG:1:-2}", "bcd"),
    ("${LONG:10}", ""),
    ("${unterminated", "${unterminated"),
    ("$[1+1]", "$[1+1]"),
])
def test_substitution(text: str, expanded: str) -> None:
    """${NAME}, nesting, substrings; unset is empty; $[...] is kept."""
    channel = FakeChannel(variables={"A": "1", "B": "2", "NAME": "A", "LONG": "abcdef"})
    assert ChannelVariables(channel, lambda: 0.0).expand(text) == expanded


def test_epoch_comes_from_the_clock() -> None:
    """EPOCH is the clock's time, in whole seconds."""
    assert ChannelVariables(FakeChannel(), lambda: 1234.9).get("EPOCH") == "1234"


@pytest.mark.parametrize(("text", "parsed"), [
    ('"Bob" <1002>', ("1002", "Bob")),
    ("Bob <1002>", ("1002", "Bob")),
    ("<1002>", ("1002", "")),
    ("+46 8-123.45", ("+46812345", "")),
    ("Reception", ("", "Reception")),
])
def test_parse_callerid(text: str, parsed: tuple[str, str]) -> None:
    """ast_callerid_parse then ast_shrink_phone_number."""
    assert parse_callerid(text) == parsed


def test_astdb_trees() -> None:
    """DELTREE removes a key tree or a family, nothing else."""
    db = MemoryAstDB()
    for key in ("a", "a/b", "ab", "c"):
        first(db.put("fam", key, "v"))
    first(db.put("other", "a", "v"))
    assert first(db.deltree("fam", "a")) == 2
    assert sorted(db.data) == ["/fam/ab", "/fam/c", "/other/a"]
    assert first(db.delete("fam", "c")) is True and first(db.delete("fam", "c")) is False
    assert first(db.deltree("fam")) == 1 and first(db.get("other", "a")) == "v"


@given(st.text())
def test_tokenize_is_total(line: str) -> None:
    """Any text gives a list of at most 127 words."""
    assert len(tokenize(line)) < 128


@given(st.binary(), st.integers(min_value=1, max_value=64))
def test_feeder_is_total(data: bytes, max_line: int) -> None:
    """Any bytes give lines or LineTooLongError, nothing else."""
    feeder = LineFeeder(max_line=max_line)
    feeder.feed(data)
    try:
        while feeder.next_line() is not None:
            pass
    except LineTooLongError:
        return
    feeder.flush()
