"""The AGI wire format, sans-IO: what Asterisk's ``res_agi.c`` reads and writes.

Owns the environment block sent first (:class:`AgiEnvironment`), the
command-line tokenizer (:func:`tokenize`, Asterisk's ``parse_args``), the
command-name matcher (:func:`match_command`, ``find_command``), the replies
(:class:`Reply`: ``200 result=…``, ``510``, ``511`` and the multi-line
``520``), the framing of the script's byte stream into command lines
(:class:`LineFeeder`), and the little C parsers whose leniency scripts rely
on (:func:`atoi`, :func:`scan_int`, :func:`is_true`, :func:`is_false`).

Nothing here does I/O, reads a clock or imports Twisted.  Text is UTF-8
with ``surrogateescape`` both ways, so arbitrary bytes from a script
survive a round trip (Asterisk works on bytes).

Theory of operation, as ``res_agi.c`` does it:

* A command line is split into words on spaces and tabs.  ``"`` toggles
  quoting (inside quotes spaces do not split; a quote right after
  whitespace starts a word, so ``""`` is an empty word); ``\\`` makes the next
  character literal, inside or outside quotes.  At most 127 words are kept.
* The command is found by comparing its fixed words case-insensitively with
  the first words of the line; the remaining words are its arguments, and
  handlers index the whole word list (``argv[2]`` is the first argument of
  a two-word command), exactly as the C handlers do.
* Every command gets exactly one reply; the only other thing Asterisk ever
  writes is ``HANGUP\\n`` (FastAGI, after the caller hung up).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping, Sequence, Set
from typing import Final

import attrs

__all__ = [
    "AGI_BUF_LEN",
    "ALL_DIGITS",
    "DEFAULT_PORT",
    "MAX_ARGS",
    "AgiEnvironment",
    "AgiUrl",
    "LineFeeder",
    "LineTooLongError",
    "Reply",
    "ReplyCode",
    "atoi",
    "decode",
    "encode",
    "format_command",
    "is_false",
    "is_true",
    "match_command",
    "parse_agi_url",
    "parse_environment",
    "quote",
    "scan_int",
    "tokenize",
]

MAX_ARGS: Final = 128
"""Asterisk's ``MAX_ARGS``: a line keeps at most ``MAX_ARGS - 1`` words."""
AGI_BUF_LEN: Final = 2048
"""Asterisk's ``AGI_BUF_LEN``: the default longest command line we accept."""
DEFAULT_PORT: Final = 4573
"""FastAGI's port when an ``agi://`` URL names none (Asterisk's ``AGI_PORT``)."""
ALL_DIGITS: Final = "0123456789#*ABCD"
"""Asterisk's ``AST_DIGIT_ANY``: every digit interrupts."""


def encode(text: str) -> bytes:
    """``text`` as bytes on the wire (UTF-8, lone surrogates back to bytes)."""
    return text.encode("utf-8", "surrogateescape")


def decode(data: bytes) -> str:
    """Bytes from the wire as text; never fails."""
    return data.decode("utf-8", "surrogateescape")


# -- the environment block ------------------------------------------------------------------


def _one_line(value: object) -> str:
    """A value that cannot end its line early: CR and LF become spaces."""
    return str(value).replace("\r", " ").replace("\n", " ")


@attrs.frozen(kw_only=True)
class AgiEnvironment:
    """The ``agi_*`` variables Asterisk sends before the first command, in
    ``setup_env``'s order, each ``name: value`` on its own line, ended by an
    empty line.  ``network`` adds FastAGI's ``agi_network: yes`` and, when
    ``network_script`` is not empty, ``agi_network_script`` in front, as
    ``launch_netscript`` does."""

    request: str
    channel: str
    language: str = "en"
    type: str = "SIP"
    uniqueid: str = ""
    version: str = ""
    callerid: str = "unknown"
    calleridname: str = "unknown"
    callingpres: int = 0
    callingani2: int = 0
    callington: int = 0
    callingtns: int = 0
    dnid: str = "unknown"
    rdnis: str = "unknown"
    context: str = "default"
    extension: str = ""
    priority: int = 1
    enhanced: bool = False
    accountcode: str = ""
    threadid: int = 0
    args: tuple[str, ...] = ()
    network: bool = False
    network_script: str = ""

    def items(self) -> list[tuple[str, str]]:
        """The ``(name, value)`` pairs in wire order."""
        out: list[tuple[str, str]] = []
        if self.network:
            out.append(("agi_network", "yes"))
            if self.network_script:
                out.append(("agi_network_script", self.network_script))
        out += [
            ("agi_request", self.request),
            ("agi_channel", self.channel),
            ("agi_language", self.language),
            ("agi_type", self.type),
            ("agi_uniqueid", self.uniqueid),
            ("agi_version", self.version),
            ("agi_callerid", self.callerid),
            ("agi_calleridname", self.calleridname),
            ("agi_callingpres", str(self.callingpres)),
            ("agi_callingani2", str(self.callingani2)),
            ("agi_callington", str(self.callington)),
            ("agi_callingtns", str(self.callingtns)),
            ("agi_dnid", self.dnid),
            ("agi_rdnis", self.rdnis),
            ("agi_context", self.context),
            ("agi_extension", self.extension),
            ("agi_priority", str(self.priority)),
            ("agi_enhanced", "1.0" if self.enhanced else "0.0"),
            ("agi_accountcode", self.accountcode),
            ("agi_threadid", str(self.threadid)),
        ]
        out += [(f"agi_arg_{i}", arg) for i, arg in enumerate(self.args, 1)]
        return out

    def to_bytes(self) -> bytes:
        """The whole block, empty line included.  A line break inside a
        value (which Asterisk would send as is, breaking the block) is sent
        as a space."""
        lines = [f"{name}: {_one_line(value)}\n" for name, value in self.items()]
        return encode("".join(lines) + "\n")

    def as_dict(self) -> dict[str, str]:
        """The block as a script library sees it after parsing."""
        return {name: _one_line(value) for name, value in self.items()}


def parse_environment(data: bytes) -> dict[str, str]:
    """Parse an environment block (up to its empty line) as AGI libraries do:
    name up to the first ``:``, value stripped."""
    out: dict[str, str] = {}
    for raw in decode(data).split("\n"):
        line = raw.strip()
        if not line:
            break
        name, _, value = line.partition(":")
        out[name.strip()] = value.strip()
    return out


# -- command lines ----------------------------------------------------------------------------


def tokenize(line: str) -> list[str]:
    """Split a command line into words exactly as Asterisk's ``parse_args``
    does (see the module docstring); total: any text gives a list."""
    words: list[str] = []
    current: list[str] | None = None
    quoted = escaped = False
    for char in line:
        if char == '"' and not escaped:
            quoted = not quoted
            if quoted and current is None:
                if len(words) >= MAX_ARGS - 1:
                    continue
                current = []
                words.append("")
            continue
        if char in " \t" and not quoted and not escaped:
            if current is not None:
                words[-1] = "".join(current)
                current = None
            continue
        if char == "\\" and not escaped:
            escaped = True
            continue
        escaped = False
        if current is None:
            if len(words) >= MAX_ARGS - 1:
                continue  # Asterisk: "Too many arguments, truncating"
            current = []
            words.append("")
        current.append(char)
    if current is not None:
        words[-1] = "".join(current)
    return words


def quote(arg: object) -> str:
    """``arg`` as one word that :func:`tokenize` gives back unchanged
    (double quotes, with ``\\`` and ``"`` escaped).  Raises ValueError for a
    line break, which no AGI line can carry."""
    text = str(arg)
    if "\n" in text or "\r" in text:
        raise ValueError(f"an AGI argument cannot hold a line break: {text!r}")
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def format_command(words: Sequence[str], args: Sequence[object] = ()) -> str:
    """A command line: the command's words as they are, then each argument
    quoted, with no newline."""
    return " ".join([*words, *(quote(a) for a in args)])


def match_command(argv: Sequence[str],
                  names: Iterable[tuple[str, ...]]) -> tuple[str, ...] | None:
    """The command (a tuple of upper-case words) whose words begin ``argv``,
    compared case-insensitively, the longest first (``GET FULL VARIABLE``
    before ``GET``…); None when none does (``510``).  ``names`` is best a
    set or a mapping (one lookup per prefix length)."""
    lookup = names if isinstance(names, (Mapping, Set)) else set(names)
    upper = tuple(word.upper() for word in argv[:_MAX_COMMAND_WORDS])
    for length in range(len(upper), 0, -1):
        if upper[:length] in lookup:
            return upper[:length]
    return None


_MAX_COMMAND_WORDS: Final = 4
"""Words in the longest command name (``SPEECH ACTIVATE GRAMMAR`` has three)."""


# -- replies ----------------------------------------------------------------------------------


class ReplyCode(enum.IntEnum):
    """The status codes of AGI replies."""

    SUCCESS = 200
    INVALID = 510
    DEAD = 511
    USAGE = 520


_INVALID_TEXT: Final = "Invalid or unknown command"
_DEAD_TEXT: Final = "Command Not Permitted on a dead channel"
_USAGE_FIRST: Final = "520-Invalid command syntax.  Proper usage follows:\n"
_USAGE_LAST: Final = "520 End of proper usage.\n"
_USAGE_NONE: Final = "520 Invalid command syntax.  Proper usage not available.\n"


@attrs.frozen
class Reply:
    """One reply to one command.

    ``code`` 200 carries ``result`` (a number, or GET DATA's digits, which
    may be empty), an optional parenthesised ``data`` and an optional
    ``endpos``: ``200 result=<result>[ (<data>)][ endpos=<n>]``.  511 and 510
    carry only their text; 520 carries the command's ``usage`` (lines that
    never begin with ``520``).
    """

    code: int = ReplyCode.SUCCESS
    result: str = "0"
    data: str | None = None
    endpos: int | None = None
    usage: str = ""

    @classmethod
    def success(cls, result: int | str, data: str | None = None,
                endpos: int | None = None) -> Reply:
        """A ``200`` reply."""
        return cls(ReplyCode.SUCCESS, str(result), data, endpos)

    @classmethod
    def invalid(cls) -> Reply:
        """``510 Invalid or unknown command``."""
        return cls(ReplyCode.INVALID, "")

    @classmethod
    def dead(cls) -> Reply:
        """``511 Command Not Permitted on a dead channel``."""
        return cls(ReplyCode.DEAD, "")

    @classmethod
    def bad_syntax(cls, usage: str) -> Reply:
        """``520``, with the usage text when there is one."""
        return cls(ReplyCode.USAGE, "", usage=usage)

    @property
    def value(self) -> int | None:
        """``result`` as a number, or None when it is not one (GET DATA's
        digits may be empty or hold ``*``/``#``)."""
        try:
            return int(self.result)
        except ValueError:
            return None

    @property
    def digit(self) -> str:
        """The digit whose ASCII code ``result`` is (STREAM FILE, WAIT FOR
        DIGIT…), or ``""`` for 0 and negative results."""
        value = self.value
        return chr(value) if value is not None and 0 < value < 0x110000 else ""

    def to_bytes(self) -> bytes:
        """The reply as Asterisk writes it."""
        if self.code == ReplyCode.INVALID:
            return encode(f"510 {_INVALID_TEXT}\n")
        if self.code == ReplyCode.DEAD:
            return encode(f"511 {_DEAD_TEXT}\n")
        if self.code == ReplyCode.USAGE:
            if not self.usage:
                return encode(_USAGE_NONE)
            usage = self.usage if self.usage.endswith("\n") else self.usage + "\n"
            return encode(_USAGE_FIRST + usage + _USAGE_LAST)
        text = f"{self.code} result={self.result}"
        if self.data is not None:
            text += f" ({_one_line(self.data)})"
        if self.endpos is not None:
            text += f" endpos={self.endpos}"
        return encode(text + "\n")


# -- framing ----------------------------------------------------------------------------------


class LineTooLongError(Exception):
    """The script sent more than the longest line allowed without a newline."""


class LineFeeder:
    """Bytes from a script in, complete command lines out.

    Lines may arrive split or joined arbitrarily; each ends at ``\\n``.  A
    trailing ``\\r`` is dropped (Asterisk would keep it and answer 510) and
    text after a NUL byte is ignored (Asterisk's C strings end there).  A
    line longer than ``max_line`` bytes — complete or still growing — is a
    :class:`LineTooLongError` from :meth:`next_line`; the feeder then stays
    broken.  At the end of input, :meth:`flush` gives a last line that had no
    newline, which Asterisk runs as a command too.
    """

    def __init__(self, max_line: int = AGI_BUF_LEN) -> None:
        self.max_line = max_line
        self._buffer = bytearray()
        self._scanned = 0
        self.overflow = False

    @property
    def pending(self) -> int:
        """Bytes received and not yet handed out."""
        return len(self._buffer)

    def feed(self, data: bytes) -> None:
        """Add bytes received from the script."""
        if self.overflow:
            return
        self._buffer += data
        tail = len(self._buffer) - (self._buffer.rfind(b"\n") + 1)
        if tail > self.max_line:
            self.overflow = True

    def next_line(self) -> str | None:
        """The next complete line (without its newline), or None when no
        complete line is buffered.  Raises :class:`LineTooLongError`."""
        if self.overflow:
            raise LineTooLongError(f"more than {self.max_line} bytes without a newline")
        end = self._buffer.find(b"\n", self._scanned)
        if end < 0:
            self._scanned = len(self._buffer)
            return None
        if end > self.max_line:
            self.overflow = True
            raise LineTooLongError(f"a line of {end} bytes (at most {self.max_line})")
        raw = bytes(self._buffer[:end])
        del self._buffer[: end + 1]
        self._scanned = 0
        return _clean(raw)

    def flush(self) -> str | None:
        """At the end of input: the unterminated last line, if any."""
        if self.overflow or not self._buffer:
            return None
        raw = bytes(self._buffer)
        self._buffer.clear()
        self._scanned = 0
        return _clean(raw)


def _clean(raw: bytes) -> str:
    raw = raw.split(b"\0", 1)[0]
    if raw.endswith(b"\r"):
        raw = raw[:-1]
    return decode(raw)


# -- C's lenient number parsing and Asterisk's booleans -----------------------------------------

_LEADING_INT = re.compile(r"\s*([+-]?\d+)")
_INT_LIMIT: Final = 2**31 - 1


def scan_int(text: str) -> int | None:
    """``sscanf(text, "%30d")``: the integer the text starts with (after
    blanks; trailing junk ignored), clamped to a C int, or None when it does
    not start with one (the handlers then answer 520)."""
    match = _LEADING_INT.match(text)
    if match is None:
        return None
    return max(-_INT_LIMIT - 1, min(_INT_LIMIT, int(match.group(1)[:30])))


def atoi(text: str) -> int:
    """C's ``atoi``: like :func:`scan_int` but 0 when there is no number."""
    value = scan_int(text)
    return 0 if value is None else value


_TRUE: Final = frozenset({"yes", "true", "y", "t", "1", "on"})
_FALSE: Final = frozenset({"no", "false", "n", "f", "0", "off"})


def is_true(text: str | None) -> bool:
    """Asterisk's ``ast_true``."""
    return text is not None and text.strip().lower() in _TRUE


def is_false(text: str | None) -> bool:
    """Asterisk's ``ast_false`` (None and unknown words are not false)."""
    return text is not None and text.strip().lower() in _FALSE


# -- FastAGI URLs -----------------------------------------------------------------------------


@attrs.frozen
class AgiUrl:
    """``agi://host[:port][/script]`` taken apart."""

    host: str
    port: int = DEFAULT_PORT
    script: str = ""


def parse_agi_url(url: str) -> AgiUrl:
    """Split a FastAGI URL as ``launch_netscript`` does: the script is
    everything after the first ``/`` of the authority (query included);
    ``[v6]`` hosts are allowed.  Raises ValueError when it is not one."""
    if url[:6].lower() != "agi://":
        raise ValueError(f"not an agi:// URL: {url!r}")
    authority, _, script = url[6:].partition("/")
    port = DEFAULT_PORT
    if authority.startswith("["):
        host, bracket, rest = authority[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise ValueError(f"bad host in {url!r}")
        port_text = rest[1:]
    else:
        host, _, port_text = authority.partition(":")
    if port_text:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise ValueError(f"bad port in {url!r}")
        port = int(port_text)
    if not host:
        raise ValueError(f"no host in {url!r}")
    return AgiUrl(host, port, script)
