"""Random bytes for tags, branches, nonces and cnonces.

Owns :func:`random_bytes` and :func:`random_hex`: the operating system's
CSPRNG (``os.urandom``), fetched 4 KiB at a time so that each tag, branch or
nonce does not cost a system call.  Not shared between threads (the SIP core
runs on the reactor thread).
"""

from __future__ import annotations

import os

__all__ = ["random_bytes", "random_hex"]


class _Pool:
    def __init__(self, size: int = 4096) -> None:
        self._size = size
        self._buffer = b""
        self._position = 0

    def take(self, count: int) -> bytes:
        start = self._position
        end = start + count
        if end > len(self._buffer):
            self._buffer = os.urandom(max(self._size, count))
            start, end = 0, count
        self._position = end
        return self._buffer[start:end]


_pool = _Pool()


def random_bytes(count: int) -> bytes:
    """``count`` bytes from the CSPRNG."""
    return _pool.take(count)


def random_hex(count: int) -> str:
    """``count`` random bytes as hex."""
    return _pool.take(count).hex()
