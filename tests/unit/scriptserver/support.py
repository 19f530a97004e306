"""Shared helpers of the scriptserver unit tests: sound folders, sessions on
a fake clock, and running a command line to its wire bytes."""

from __future__ import annotations

import wave
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from twisted.internet import defer
from twisted.internet.task import Clock

from telavox.scriptserver import AgiOptions, AgiServices, AgiSession, MemoryAstDB

from .fakechannel import FakeChannel

PROMPTS = ("hello", "enter-number", "goodbye", "digits/0", "digits/1", "digits/2", "digits/3",
           "digits/4", "digits/5", "digits/7", "digits/20", "digits/hundred",
           "digits/thousand", "digits/million", "digits/minus", "digits/star",
           "digits/pound")


def write_wav(path: Path, seconds: float = 1.0, rate: int = 8000) -> Path:
    """A WAV file of silence."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(b"\0\0" * int(seconds * rate))
    return path


def make_sounds(root: Path, names: Iterable[str] = PROMPTS, language: str = "en") -> Path:
    """A sound folder with one second of silence for each name."""
    for name in names:
        write_wav(root / language / f"{name}.wav")
    return root


def first(d: defer.Deferred[Any]) -> Any:
    """The result a Deferred already has (fails the test when it has none)."""
    out: list[Any] = []
    d.addBoth(out.append)
    assert out, "the Deferred has not fired"
    result = out[0]
    if hasattr(result, "raiseException"):
        result.raiseException()
    return result


class Harness:
    """A session on a fake channel and a fake clock, with every byte the
    session writes kept in ``wire`` and each hang-up notice counted."""

    def __init__(self, tmp_path: Path, inputs: Iterable[str] = (), *,
                 channel: FakeChannel | None = None, **options: Any) -> None:
        self.clock = Clock()
        self.sounds = make_sounds(tmp_path / "sounds")
        options.setdefault("sound_dirs", (str(self.sounds),))
        self.options = AgiOptions(**options)
        self.astdb = MemoryAstDB()
        self.services = AgiServices.create(self.options, self.astdb)
        self.channel = channel or FakeChannel(inputs, clock=self.clock)
        if self.channel.clock is None:
            self.channel.clock = self.clock
        self.written = bytearray()
        self.notices = 0
        self.session = AgiSession(self.channel, self.services, self.clock, label="test",
                                  write=self.written.extend, notify_hangup=self._notice)

    def _notice(self) -> None:
        self.notices += 1
        self.written.extend(b"HANGUP\n")

    def run(self, line: str) -> bytes:
        """The reply bytes of one command, run in process."""
        return bytes(first(self.session.execute(line)).to_bytes())

    def take(self) -> bytes:
        """What the session wrote since the last call."""
        out = bytes(self.written)
        self.written.clear()
        return out

    def sound(self, name: str) -> str:
        return str(self.sounds / "en" / f"{name}.wav")
