"""Log lines about what the network sends, bounded: :class:`LogBudget`.

Bad input and failed authentication each deserve a log line, but a flood
of them must not become a flood of disk writes: at most ``limit`` lines per
``window`` seconds are written, and the next line written says how many
were left out.
"""

from __future__ import annotations

from twisted.logger import Logger

__all__ = ["LogBudget"]


class LogBudget:
    """At most ``limit`` log lines per ``window`` seconds; counts the rest."""

    def __init__(self, limit: int = 20, window: float = 10.0) -> None:
        self.limit = limit
        self.window = window
        self._start = -1e18
        self._used = 0
        self.suppressed = 0

    def allow(self, now: float) -> tuple[bool, int]:
        """(may log, how many were suppressed since the last line)."""
        if now - self._start >= self.window:
            self._start = now
            self._used = 0
        if self._used < self.limit:
            self._used += 1
            skipped, self.suppressed = self.suppressed, 0
            return True, skipped
        self.suppressed += 1
        return False, 0

    def info(self, log: Logger, now: float, fmt: str, **fields: object) -> None:
        """``log.info(fmt, **fields)`` if the budget allows, noting the lines
        left out before it."""
        ok, skipped = self.allow(now)
        if ok:
            if skipped:
                fmt += " ({skipped} similar lines suppressed)"
            log.info(fmt, skipped=skipped, **fields)
