"""Unit tests of :mod:`telavox.scriptserver.ivr`: the ``ivr`` script on the
in-process AGI API against a fake channel with scripted digits."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from twisted.internet import defer

from telavox.config.model import IvrConfig
from telavox.scriptserver import Agi
from telavox.scriptserver.ivr import make_ivr
from telavox.scriptserver.session import environment_for

from .fakechannel import TIMEOUT
from .support import Harness, first, make_sounds

MENUS = {
    "main": IvrConfig(name="main", prompt="hello", options={
        "1": "1001", "2": "menu:sub", "3": "voicemail:1002", "9": "hangup"}, retries=1,
        invalid_prompt="goodbye"),
    "sub": IvrConfig(name="sub", prompt="enter-number", options={"t": "1003"}),
    "direct": IvrConfig(name="direct", prompt="hello", options={"1": "1001"},
                        direct_dial=True),
}
EXTENSIONS = ("1001", "1002", "1003", "20")


def run(tmp_path: Path, inputs: list[str], menu: str = "main") -> tuple[Harness, list[Any]]:
    harness = Harness(tmp_path, inputs)
    make_sounds(harness.sounds, ["invalid"])
    voicemails: list[tuple[str, ...]] = []

    def voicemail(agi: Agi, args: tuple[str, ...]) -> defer.Deferred[None]:
        voicemails.append(args)
        return defer.succeed(None)

    script = make_ivr(MENUS.get, lambda: EXTENSIONS, {"voicemail": voicemail})
    agi = Agi(harness.session, environment_for(harness.channel, "ivr", (menu,), "v",
                                               threadid=1))
    first(defer.maybeDeferred(script, agi, (menu,)))
    return harness, voicemails


def dials(harness: Harness) -> list[str]:
    return [c[1] for c in harness.channel.calls if c[0] == "dial"]


def test_an_option_dials_its_target(tmp_path: Path) -> None:
    """Answer, play the prompt, 1 → Dial 1001."""
    harness, _ = run(tmp_path, ["1"])
    names = harness.channel.names()
    assert names[0] == "answer" and "play" in names
    assert dials(harness) == ["1001"]


def test_menus_lead_to_menus_and_timeouts_to_t(tmp_path: Path) -> None:
    """2 → the sub menu, whose prompt gets no digit → its t option."""
    harness, _ = run(tmp_path, ["2", TIMEOUT])
    plays = [c[1] for c in harness.channel.calls if c[0] == "play"]
    assert any("enter-number" in str(p) for p in plays)
    assert dials(harness) == ["1003"]


def test_voicemail_and_hangup_options(tmp_path: Path) -> None:
    """3 → the voicemail script for 1002 (unavailable); 9 → hang up."""
    harness, voicemails = run(tmp_path, ["3"])
    assert voicemails == [("1002", "u")] and dials(harness) == []
    harness, _ = run(tmp_path, ["9"])
    assert "hangup" in harness.channel.names() and dials(harness) == []


def test_invalid_entries_replay_then_goodbye(tmp_path: Path) -> None:
    """An entry that leads nowhere plays the invalid prompt and the menu
    again; after the retries the caller hears goodbye and is hung up."""
    harness, _ = run(tmp_path, ["5", "7"])
    plays = [str(c[1]) for c in harness.channel.calls if c[0] == "play"]
    assert sum("hello" in p for p in plays) == 2
    assert sum("goodbye" in p for p in plays) >= 2
    assert harness.channel.names()[-1] == "hangup" and dials(harness) == []


def test_direct_dial_reads_an_extension(tmp_path: Path) -> None:
    """With direct dial, 1 0 0 3 is the extension 1003; 2 0 is 20; an
    option digit that no extension starts with goes at once."""
    harness, _ = run(tmp_path, ["1", "0", "0", "3"], menu="direct")
    assert dials(harness) == ["1003"]
    harness, _ = run(tmp_path, ["2", "0"], menu="direct")
    assert dials(harness) == ["20"]


def test_ring_groups_ring_all_at_once_or_in_order(tmp_path: Path) -> None:
    """``all`` dials the members together; ``order`` one after the other
    until one answers."""
    from telavox.scriptserver.builtins import ringgroup

    harness = Harness(tmp_path / "all")
    agi = Agi(harness.session, environment_for(harness.channel, "rg", (), "v", threadid=1))
    first(defer.maybeDeferred(ringgroup, agi, ("all", "15", "1001", "1002")))
    assert dials(harness) == ["1001&1002"]

    harness = Harness(tmp_path / "order")
    harness.channel.dial_status = "NOANSWER"
    agi = Agi(harness.session, environment_for(harness.channel, "rg", (), "v", threadid=1))
    first(defer.maybeDeferred(ringgroup, agi, ("order", "15", "1001", "1002", "1003")))
    assert dials(harness) == ["1001", "1002", "1003"]
    assert harness.channel.names()[-1] == "hangup"
