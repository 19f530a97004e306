"""Channel variables as GET VARIABLE, SET VARIABLE and GET FULL VARIABLE
see them: Asterisk's built-in variables, a few dial-plan functions and
``${…}`` substitution.

Owns :class:`ChannelVariables`, a view of one channel's ``variables``
mapping.  Mirrors Asterisk:

* names are case-sensitive, and leading underscores (the inheritance
  marks ``_FOO``/``__FOO``) are ignored when comparing, so ``FOO`` reads
  ``__FOO`` and setting ``FOO`` replaces it;
* setting a variable to ``""`` removes it;
* the built-ins ``CHANNEL``, ``UNIQUEID``, ``EXTEN``, ``CONTEXT``,
  ``PRIORITY``, ``CALLINGPRES``, ``CALLINGANI2``, ``CALLINGTON``,
  ``CALLINGTNS`` and ``EPOCH`` win over channel variables of the same name;
* functions (a name ending in ``)``): ``CALLERID(num|name|all)`` (also
  written), ``CHANNEL(name|language)``, ``LANGUAGE()`` and ``LEN(text)``; an
  unknown function reads as unset and is not written (logged);
* ``${NAME}``, ``${NAME:offset[:length]}`` (negative offsets count from the
  end, negative lengths drop from the end), nested ``${${X}}`` and
  ``${FUNC(args)}``; ``$[…]`` expressions are not evaluated (their text is
  kept).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet import defer
from twisted.logger import Logger

from telavox.scriptserver.agi import atoi

__all__ = ["ChannelVariables", "parse_callerid"]

_STATE_NAMES = {0: "Down", 4: "Ring", 6: "Up"}


def parse_callerid(text: str) -> tuple[str, str]:
    """``(number, name)`` from ``"Name" <number>``, ``Name <number>``, a bare
    number or a bare name, as ``ast_callerid_parse`` then
    ``ast_shrink_phone_number`` give them."""
    text = text.strip()
    start, end = text.find("<"), text.rfind(">")
    if 0 <= start < end:
        number = text[start + 1:end]
        name = text[:start].strip().strip('"').strip()
    elif text and all(c in "0123456789*#+()-. " for c in text):
        number, name = text, ""
    else:
        number, name = "", text.strip('"')
    number = "".join(c for c in number if c not in "()-. ")
    return number, name


class ChannelVariables:
    """The variables of ``channel`` (an :class:`~telavox.interfaces.IChannel`);
    ``now`` gives the time for ``EPOCH``."""

    log = Logger()

    def __init__(self, channel: Any, now: Callable[[], float]) -> None:
        self.channel = channel
        self.now = now

    # -- plain variables ---------------------------------------------------------------------

    def _key(self, name: str) -> str | None:
        variables = self.channel.variables
        if name in variables:
            return name
        bare = name.lstrip("_")
        for key in variables:
            if key.lstrip("_") == bare:
                return str(key)
        return None

    def _builtin(self, name: str) -> str | None:
        channel = self.channel
        values = {
            "CHANNEL": channel.name, "UNIQUEID": channel.unique_id,
            "EXTEN": channel.extension, "CONTEXT": channel.context, "PRIORITY": "1",
            "CALLINGPRES": "0", "CALLINGANI2": "0", "CALLINGTON": "0", "CALLINGTNS": "0",
        }
        if name == "EPOCH":
            return str(int(self.now()))
        value = values.get(name)
        return None if value is None else str(value)

    def get(self, name: str) -> str | None:
        """GET VARIABLE: a function's value, a built-in, a channel variable,
        or None when unset."""
        if name.endswith(")"):
            return self.read_function(name)
        builtin = self._builtin(name)
        if builtin is not None:
            return builtin
        key = self._key(name)
        return None if key is None else str(self.channel.variables[key])

    def set(self, name: str, value: str) -> defer.Deferred[None]:
        """SET VARIABLE: write a function, or set (``""``: remove) a
        channel variable."""
        if name.endswith(")"):
            return self.write_function(name, value)
        key = self._key(name)
        while key is not None:
            del self.channel.variables[key]
            key = self._key(name)
        if value:
            self.channel.variables[name] = value
        return defer.succeed(None)

    # -- functions ---------------------------------------------------------------------------

    @staticmethod
    def _split_function(expr: str) -> tuple[str, str]:
        name, _, rest = expr.partition("(")
        return name.strip().upper(), rest[:-1] if rest.endswith(")") else rest

    def read_function(self, expr: str) -> str | None:
        """The value of ``FUNC(args)``, or None for an unknown one."""
        name, args = self._split_function(expr)
        channel = self.channel
        arg = args.strip().lower()
        if name == "CALLERID":
            number, cname = str(channel.caller_id), str(channel.caller_name)
            if arg in ("num", "number"):
                return number
            if arg == "name":
                return cname
            if arg == "all":
                return f'"{cname}" <{number}>'
            return None
        if name == "CHANNEL":
            if arg == "name":
                return str(channel.name)
            if arg == "language":
                return str(channel.language)
            if arg == "state":
                return _STATE_NAMES.get(channel.state(), "Unknown")
            return None
        if name == "LANGUAGE":
            return str(channel.language)
        if name == "LEN":
            return str(len(args))
        return None

    def write_function(self, expr: str, value: str) -> defer.Deferred[None]:
        """Write ``FUNC(args)=value``; only CALLERID is writable."""
        name, args = self._split_function(expr)
        arg = args.strip().lower()
        channel = self.channel
        if name == "CALLERID" and arg in ("num", "number", "name", "all"):
            number, cname = str(channel.caller_id), str(channel.caller_name)
            if arg == "all":
                number, cname = parse_callerid(value)
            elif arg == "name":
                cname = value
            else:
                number = value
            return defer.maybeDeferred(channel.set_caller_id, number, cname).addCallback(
                lambda _: None)
        self.log.warn("Function {name} not registered (cannot write {expr})", name=name,
                      expr=expr)
        return defer.succeed(None)

    # -- ${...} substitution -----------------------------------------------------------------

    def expand(self, text: str) -> str:
        """``text`` with every ``${…}`` replaced (unset: empty)."""
        out: list[str] = []
        i, n = 0, len(text)
        while i < n:
            if text.startswith("${", i):
                end = _closing(text, i + 2)
                if end < 0:
                    out.append(text[i:])
                    break
                inner = self.expand(text[i + 2:end])
                out.append(self._lookup(inner))
                i = end + 1
            else:
                out.append(text[i])
                i += 1
        return "".join(out)

    def _lookup(self, expr: str) -> str:
        name, offset, length = _substring_spec(expr)
        value = self.get(name) or ""
        if offset is None:
            return value
        return _substring(value, offset, length)


def _closing(text: str, start: int) -> int:
    """The index of the ``}`` closing a ``${`` whose body starts at ``start``
    (-1 when it is never closed)."""
    depth = 1
    i = start
    while i < len(text):
        if text.startswith("${", i):
            depth += 1
            i += 2
            continue
        if text[i] == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return -1


def _substring_spec(expr: str) -> tuple[str, int | None, int | None]:
    """``NAME:offset:length`` → its parts (a ``:`` inside parentheses, as in
    ``CALLERID(num):0:3``, belongs to the name)."""
    depth = 0
    for i, char in enumerate(expr):
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == ":" and depth == 0:
            offset_text, _, length_text = expr[i + 1:].partition(":")
            length = atoi(length_text) if length_text else None
            return expr[:i], atoi(offset_text), length
    return expr, None, None


def _substring(value: str, offset: int, length: int | None) -> str:
    size = len(value)
    start = max(0, size + offset) if offset < 0 else min(offset, size)
    if length is None:
        return value[start:]
    end = max(start, size + length) if length < 0 else min(size, start + length)
    return value[start:end]
