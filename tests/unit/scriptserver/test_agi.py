"""Unit tests of :mod:`telavox.scriptserver.agi`, the sans-IO wire format:
the tokenizer against Asterisk's ``parse_args`` rules, the environment
block byte for byte, the reply forms, line framing under any chunking, and
the lenient C number parsing."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from telavox.scriptserver.agi import (
    MAX_ARGS,
    AgiEnvironment,
    AgiUrl,
    LineFeeder,
    LineTooLongError,
    Reply,
    atoi,
    format_command,
    is_false,
    is_true,
    match_command,
    parse_agi_url,
    parse_environment,
    quote,
    scan_int,
    tokenize,
)

# -- tokenizer ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("line", "words"), [
    ("ANSWER", ["ANSWER"]),
    ("STREAM FILE hello \"\"", ["STREAM", "FILE", "hello", ""]),
    ("STREAM FILE hello \"\" 0", ["STREAM", "FILE", "hello", "", "0"]),
    ("  spaced   out\twords  ", ["spaced", "out", "words"]),
    ('SET VARIABLE "my var" "two words"', ["SET", "VARIABLE", "my var", "two words"]),
    ('"" ""', ["", ""]),
    ('a"b c"d', ["ab cd"]),
    ('"ab"cd', ["abcd"]),
    (r'"say \"hi\""', ['say "hi"']),
    (r'"back\\slash"', ["back\\slash"]),
    (r"escaped\ space", ["escaped space"]),
    (r"\x\y", ["xy"]),
    ('"unterminated quote', ["unterminated quote"]),
    ("trailing\\", ["trailing"]),
    ("", []),
    ('""family""', ["family"]),  # pyst2's database_get double quotes
])
def test_tokenize_follows_asterisk_parse_args(line: str, words: list[str]) -> None:
    """Words split on blanks; quotes group and may be empty; backslash makes
    the next character literal, inside or outside quotes."""
    assert tokenize(line) == words


def test_tokenize_keeps_at_most_127_words() -> None:
    """Asterisk truncates beyond MAX_ARGS - 1 words."""
    words = tokenize(" ".join(str(i) for i in range(200)))
    assert len(words) == MAX_ARGS - 1 and words[-1] == str(MAX_ARGS - 2)


@given(st.lists(st.text(st.characters(exclude_characters="\n\r\x00",
                                       exclude_categories=["Cs"])), max_size=20))
def test_quoted_arguments_round_trip(args: list[str]) -> None:
    """Any arguments quoted by quote() come back from tokenize() unchanged."""
    assert tokenize(format_command(["EXEC"], args)) == ["EXEC", *args]


def test_quote_refuses_line_breaks() -> None:
    """No AGI line can carry a newline, so quote() refuses one."""
    with pytest.raises(ValueError, match="line break"):
        quote("a\nb")


def test_match_command_longest_first_and_case_insensitive() -> None:
    """GET FULL VARIABLE wins over GET VARIABLE; case does not matter; a
    line naming no command matches nothing."""
    names = [("GET", "VARIABLE"), ("GET", "FULL", "VARIABLE"), ("GET", "DATA"), ("EXEC",)]
    assert match_command(["get", "Full", "variable", "${X}"], names) == ("GET", "FULL", "VARIABLE")
    assert match_command(["GET", "VARIABLE", "X"], names) == ("GET", "VARIABLE")
    assert match_command(["exec", "Dial"], names) == ("EXEC",)
    assert match_command(["GET"], names) is None
    assert match_command([], names) is None


# -- environment -------------------------------------------------------------------------------


def test_environment_block_exact_bytes() -> None:
    """The block lists Asterisk's variables in setup_env's order, then the
    arguments, then an empty line."""
    env = AgiEnvironment(request="/usr/lib/agi/hello.py", channel="SIP/1001-0000002a",
                         uniqueid="1700000000.42", version="telavox-0.1.0",
                         callerid="1001", calleridname="Alice", dnid="800",
                         extension="800", threadid=7, args=("one", "two words"))
    assert env.to_bytes() == (
        b"agi_request: /usr/lib/agi/hello.py\n"
        b"agi_channel: SIP/1001-0000002a\n"
        b"agi_language: en\n"
        b"agi_type: SIP\n"
        b"agi_uniqueid: 1700000000.42\n"
        b"agi_version: telavox-0.1.0\n"
        b"agi_callerid: 1001\n"
        b"agi_calleridname: Alice\n"
        b"agi_callingpres: 0\n"
        b"agi_callingani2: 0\n"
        b"agi_callington: 0\n"
        b"agi_callingtns: 0\n"
        b"agi_dnid: 800\n"
        b"agi_rdnis: unknown\n"
        b"agi_context: default\n"
        b"agi_extension: 800\n"
        b"agi_priority: 1\n"
        b"agi_enhanced: 0.0\n"
        b"agi_accountcode: \n"
        b"agi_threadid: 7\n"
        b"agi_arg_1: one\n"
        b"agi_arg_2: two words\n"
        b"\n")


def test_fastagi_environment_starts_with_network_lines() -> None:
    """FastAGI puts agi_network and agi_network_script first; no script
    name, no agi_network_script line."""
    env = AgiEnvironment(request="agi://h/ivr?x=1", channel="SIP/1", network=True,
                         network_script="ivr?x=1")
    assert env.to_bytes().startswith(
        b"agi_network: yes\nagi_network_script: ivr?x=1\nagi_request: agi://h/ivr?x=1\n")
    bare = AgiEnvironment(request="agi://h", channel="SIP/1", network=True)
    assert bare.to_bytes().startswith(b"agi_network: yes\nagi_request: agi://h\n")


def test_environment_values_cannot_break_the_block() -> None:
    """A line break inside a value is sent as a space, and the parsed block
    gives back every variable."""
    env = AgiEnvironment(request="r", channel="SIP/1", args=("evil\n\nagi_x: y",))
    parsed = parse_environment(env.to_bytes())
    assert parsed["agi_arg_1"] == "evil  agi_x: y"
    assert "agi_x" not in parsed and parsed == env.as_dict()


# -- replies -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("reply", "wire"), [
    (Reply.success(0), b"200 result=0\n"),
    (Reply.success(-1, endpos=0), b"200 result=-1 endpos=0\n"),
    (Reply.success(49, endpos=4000), b"200 result=49 endpos=4000\n"),
    (Reply.success(1, data="value with spaces"), b"200 result=1 (value with spaces)\n"),
    (Reply.success("", data="timeout"), b"200 result= (timeout)\n"),
    (Reply.success("123"), b"200 result=123\n"),
    (Reply.success(35, data="dtmf", endpos=8000), b"200 result=35 (dtmf) endpos=8000\n"),
    (Reply.invalid(), b"510 Invalid or unknown command\n"),
    (Reply.dead(), b"511 Command Not Permitted on a dead channel\n"),
    (Reply.bad_syntax(" Usage: NOOP\n"),
     b"520-Invalid command syntax.  Proper usage follows:\n Usage: NOOP\n"
     b"520 End of proper usage.\n"),
    (Reply.bad_syntax(""), b"520 Invalid command syntax.  Proper usage not available.\n"),
])
def test_reply_forms(reply: Reply, wire: bytes) -> None:
    """Replies are written exactly as res_agi.c writes them."""
    assert reply.to_bytes() == wire


def test_reply_value_and_digit() -> None:
    """value is the numeric result; digit is the character of a positive one."""
    assert (Reply.success(49).value, Reply.success(49).digit) == (49, "1")
    assert (Reply.success(0).digit, Reply.success(-1).digit) == ("", "")
    assert Reply.success("").value is None and Reply.success("12#").value is None


# -- framing -----------------------------------------------------------------------------------


def lines_of(feeder: LineFeeder) -> list[str]:
    out = []
    while (line := feeder.next_line()) is not None:
        out.append(line)
    return out


@given(st.lists(st.integers(min_value=1, max_value=40), max_size=30))
def test_any_chunking_gives_the_same_lines(cuts: list[int]) -> None:
    """However the bytes are split, the same command lines come out."""
    data = b"ANSWER\nSTREAM FILE hello \"\"\r\nGET DATA x 100 4\nNOOP\n"
    feeder = LineFeeder()
    got: list[str] = []
    position = 0
    for cut in cuts:
        feeder.feed(data[position:position + cut])
        position += cut
        got += lines_of(feeder)
    feeder.feed(data[position:])
    got += lines_of(feeder)
    assert got == ["ANSWER", 'STREAM FILE hello ""', "GET DATA x 100 4", "NOOP"]


def test_feeder_cuts_off_a_line_without_end() -> None:
    """More than max_line bytes without a newline is an error at once, and
    the feeder stays broken."""
    feeder = LineFeeder(max_line=16)
    feeder.feed(b"NOOP\n" + b"x" * 17)
    assert feeder.overflow
    with pytest.raises(LineTooLongError):
        feeder.next_line()
    feeder.feed(b"\nNOOP\n")
    with pytest.raises(LineTooLongError):
        feeder.next_line()


def test_feeder_refuses_a_long_complete_line() -> None:
    """A complete line longer than max_line is refused too."""
    feeder = LineFeeder(max_line=8)
    feeder.feed(b"0123456789\n")
    with pytest.raises(LineTooLongError):
        feeder.next_line()


def test_feeder_flush_gives_an_unterminated_last_line() -> None:
    """At the end of input, a last line without newline is a command (as
    in Asterisk); bytes after a NUL are dropped."""
    feeder = LineFeeder()
    feeder.feed(b"NOOP\nHANG\0junk")
    assert lines_of(feeder) == ["NOOP"]
    assert feeder.flush() == "HANG" and feeder.flush() is None


# -- C parsing, booleans, URLs ----------------------------------------------------------------


@pytest.mark.parametrize(("text", "value"), [
    ("42", 42), ("  -7", -7), ("+3", 3), ("12abc", 12), ("abc", None), ("", None),
    ("99999999999999", 2**31 - 1),
])
def test_scan_int_is_sscanf(text: str, value: int | None) -> None:
    """scan_int reads a leading integer like sscanf("%d"); atoi gives 0
    instead of None."""
    assert scan_int(text) == value
    assert atoi(text) == (value or 0)


def test_true_and_false_words() -> None:
    """ast_true/ast_false: unknown words are neither; None is not false."""
    assert is_true("Yes") and is_true("1") and not is_true("maybe") and not is_true(None)
    assert is_false("no") and is_false("OFF") and not is_false(None) and not is_false("x")


@pytest.mark.parametrize(("url", "parsed"), [
    ("agi://127.0.0.1", AgiUrl("127.0.0.1", 4573, "")),
    ("AGI://host:4000/ivr", AgiUrl("host", 4000, "ivr")),
    ("agi://[::1]:4574/a/b?x=1", AgiUrl("::1", 4574, "a/b?x=1")),
    ("agi://[::1]/s", AgiUrl("::1", 4573, "s")),
])
def test_parse_agi_url(url: str, parsed: AgiUrl) -> None:
    """agi://host[:port][/script], the script keeping everything after the /."""
    assert parse_agi_url(url) == parsed


@pytest.mark.parametrize("url", ["http://x", "agi://", "agi://h:0", "agi://h:x/s",
                                 "agi://[::1"])
def test_parse_agi_url_refuses(url: str) -> None:
    """Not agi://, no host, a bad port or a bad bracket are refused."""
    with pytest.raises(ValueError):
        parse_agi_url(url)
