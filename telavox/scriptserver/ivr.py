"""IVR menus: the built-in ``ivr`` script, configured by ``[[ivr]]``.

Owns :func:`make_ivr`, which builds the script from a menu lookup and the
other built-in scripts (for ``voicemail:<ext>`` options).

Theory of operation.  The script answers, plays the menu's prompt and
collects digits with GET DATA (one digit, or as many as the longest
extension when ``direct_dial`` lets callers dial a user directly; the
prompt stops at the first digit).  The entry leads to its option's target:
a number to dial (EXEC Dial, with the caller's class of service applied by
the SIP server's dial plan; after the dial the call ends), another menu,
a voicemail box, or a hang-up.  An unknown entry plays the invalid prompt
and the menu again; no entry goes to the ``t`` option when there is one,
else the menu again; after ``retries`` replays the caller hears goodbye.
Menus may lead to each other; a loop of menus without any entry ends after
a bounded number of steps.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from typing import Any

from twisted.internet import defer
from twisted.logger import Logger

from telavox.config.model import IvrConfig
from telavox.scriptserver.inprocess import Agi

__all__ = ["MAX_STEPS", "make_ivr"]

MAX_STEPS = 50
"""Most menus one call goes through (a guard against menus leading to each other)."""

_log = Logger()

MenuLookup = Callable[[str], IvrConfig | None]
Extensions = Callable[[], Collection[str]]

NEXT_DIGIT_TIMEOUT = 3.0
"""Seconds to wait for the next digit of an extension dialled directly."""


def make_ivr(menus: MenuLookup, extensions: Extensions,
             scripts: Mapping[str, Any]) -> Callable[[Agi, tuple[str, ...]], Any]:
    """The ``ivr`` script: ``args[0]`` names the first menu.  ``menus``
    finds a menu by name, ``extensions`` gives the users' extensions (for
    direct dial), ``scripts`` holds the other built-ins (``voicemail`` for
    voicemail options)."""

    @defer.inlineCallbacks
    def ivr(agi: Agi, args: tuple[str, ...]):  # type: ignore[no-untyped-def]
        name = args[0] if args else ""
        menu = menus(name)
        if menu is None:
            _log.error("ivr: no [[ivr]] menu named {name!r}", name=name)
            return
        yield agi.answer()
        tries = 0
        for _ in range(MAX_STEPS):
            known = extensions() if menu.direct_dial else ()
            entry = yield _collect(agi, menu, known)
            target = _target(menu, entry, known)
            if target is None:
                tries += 1
                if tries > menu.retries:
                    yield agi.stream_file("goodbye")
                    yield agi.hangup()
                    return
                if entry:
                    yield agi.stream_file(menu.invalid_prompt)
                continue
            kind, _, value = target.partition(":")
            if kind == "menu":
                following = menus(value)
                if following is None:
                    _log.error("ivr: menu {menu} leads to unknown menu {name}",
                               menu=menu.name, name=value)
                    return
                menu, tries = following, 0
                continue
            if kind == "hangup":
                yield agi.hangup()
                return
            if kind == "voicemail":
                voicemail = scripts.get("voicemail")
                if voicemail is None:
                    _log.error("ivr: no voicemail script for {target}", target=target)
                    return
                yield voicemail(agi, (value, "u"))
                return
            yield agi.exec_("Dial", f"SIP/{target}")
            return
        _log.warn("ivr: {name}: more than {steps} menus in one call", name=name,
                  steps=MAX_STEPS)

    return ivr


@defer.inlineCallbacks
def _collect(agi: Agi, menu: IvrConfig, extensions: Collection[str]):  # type: ignore[no-untyped-def]
    """The entry the caller makes at ``menu`` ("" when none): one digit, or
    with direct dial the digits of an extension, read until they can only
    be that extension, ``#``, or a pause of :data:`NEXT_DIGIT_TIMEOUT`."""
    reply = yield agi.get_data(menu.prompt, int(menu.timeout * 1000), 1)
    entry = reply.result if reply.value != -1 else ""
    while entry and _wants_more(entry, menu, extensions):
        reply = yield agi.wait_for_digit(int(NEXT_DIGIT_TIMEOUT * 1000))
        code = reply.value or 0
        if code <= 0 or chr(code) == "#":
            break
        entry += chr(code)
    return entry


def _wants_more(entry: str, menu: IvrConfig, extensions: Collection[str]) -> bool:
    """True while ``entry`` may still grow into a longer extension."""
    if len(entry) == 1 and entry in menu.options and not any(
            e.startswith(entry) and e != entry for e in extensions):
        return False
    return any(e.startswith(entry) and e != entry for e in extensions)


def _target(menu: IvrConfig, entry: str, extensions: Collection[str]) -> str | None:
    """Where ``entry`` leads at ``menu``: the option's target, an extension
    dialled directly, the timeout option for no entry, else None."""
    if not entry:
        return menu.options.get("t")
    if entry in menu.options:
        return menu.options[entry]
    if entry in extensions:
        return entry
    return None
