"""Sound names to WAV files, the way Asterisk finds them.

Owns :class:`SoundLibrary`.  A script names a sound without its extension
(``hello``, ``digits/5``, ``/var/prompts/welcome``).  Like Asterisk's
``fileexists_core``, the languages tried are the channel's (``en_GB``), the
same without each ``_suffix`` (``en``), no language, then ``en``; for a
relative name, ``<dir>/<language>/<name>.wav`` in each sound folder in order
(then ``<dir>/<name>.wav`` for "no language"); for an absolute name, the
language goes before the last path component (``/var/prompts/en/welcome``),
Asterisk's "old layout".  Only ``.wav`` files are played (the mediaserver
decodes any common WAV format).

Lookups are blocking ``stat`` calls and the length of a found file is read
from it: prompts are small and local.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from telavox.audio.wavfile import AudioFormatError, read_wav

__all__ = ["DEFAULT_LANGUAGE", "RATE", "SoundLibrary"]

DEFAULT_LANGUAGE = "en"
"""Asterisk's ``DEFAULT_LANGUAGE``, tried last."""
RATE = 8000
"""The sample rate ``endpos`` values count in."""


class SoundLibrary:
    """The sound folders of a scriptserver, searched in order."""

    def __init__(self, dirs: Sequence[str]) -> None:
        self.dirs = tuple(str(d) for d in dirs)

    def languages(self, language: str) -> list[str]:
        """The language folders tried, in order (``""`` is "no language")."""
        out: list[str] = []
        lang = language
        while lang:
            out.append(lang)
            cut = lang.rfind("_")
            if cut < 0:
                break
            lang = lang[:cut]
        out.append("")
        if DEFAULT_LANGUAGE not in out:
            out.append(DEFAULT_LANGUAGE)
        return out

    def candidates(self, name: str, language: str) -> list[str]:
        """Every path tried for ``name``, in order."""
        out: list[str] = []
        for lang in self.languages(language):
            if os.path.isabs(name):
                head, tail = os.path.split(name)
                out.append(os.path.join(head, lang, tail) + ".wav" if lang else name + ".wav")
            else:
                for folder in self.dirs:
                    parts = [folder, lang, name] if lang else [folder, name]
                    out.append(os.path.join(*parts) + ".wav")
        return out

    def find(self, name: str, language: str) -> str | None:
        """The WAV file that plays for ``name`` in ``language``, or None."""
        if not name:
            return None
        for path in self.candidates(name, language):
            if os.path.isfile(path):
                return path
        return None

    @staticmethod
    def samples(path: str) -> int:
        """The length of the WAV file at ``path`` in 8 kHz samples (0 when
        it cannot be read)."""
        try:
            samples, rate = read_wav(path)
        except (OSError, AudioFormatError, ValueError):
            return 0
        return len(samples) * RATE // rate if rate else 0
