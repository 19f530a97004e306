"""Prompt files, read once and kept encoded.

Owns :class:`PromptCache`: a WAV file is read (any format
:func:`telavox.audio.wavfile.read_wav` decodes), resampled to 8 kHz and
encoded with a G.711 codec the first time it is played with that codec; later
plays of the same unchanged file (same path, size and modification time) take
the bytes from the cache.  The cache keeps the most recently used entries.

Reading is blocking file I/O in the caller's thread (prompts are small and
local); the relay core never calls this.
"""

from __future__ import annotations

import os
from collections import OrderedDict

from telavox.audio.wavfile import AudioFormatError, load_wav
from telavox.interfaces import MediaError
from telavox.rtp.codecs import G711Codec

__all__ = ["PromptCache"]


class PromptCache:
    """Encoded prompts by (path, size, mtime, codec), ``max_entries`` at most."""

    def __init__(self, max_entries: int = 64) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[tuple[str, int, int, str], bytes] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def load(self, path: str, codec: G711Codec) -> bytes:
        """The G.711 bytes of the WAV file at ``path``.

        Raises ``MediaError(404)`` when the file cannot be read and
        ``MediaError(415)`` when it is not a WAV file that can be decoded.
        """
        try:
            info = os.stat(path)
        except OSError as e:
            raise MediaError(f"prompt {path!r}: {e.strerror or e}", status=404) from None
        key = (path, info.st_size, info.st_mtime_ns, codec.name)
        entries = self._entries
        payload = entries.get(key)
        if payload is not None:
            entries.move_to_end(key)
            self.hits += 1
            return payload
        self.misses += 1
        try:
            samples = load_wav(path)
        except OSError as e:
            raise MediaError(f"prompt {path!r}: {e.strerror or e}", status=404) from None
        except (AudioFormatError, ValueError) as e:
            raise MediaError(f"prompt {path!r}: {e}", status=415) from None
        payload = codec.encode(samples)
        entries[key] = payload
        while len(entries) > self.max_entries:
            entries.popitem(last=False)
        return payload
