"""Bounded log lines for what the network sends (LogBudget)."""

from __future__ import annotations

from typing import Any

from twisted.logger import Logger, formatEvent

from telavox.logbudget import LogBudget


def test_a_flood_gets_limit_lines_per_window_and_the_next_line_counts_the_rest() -> None:
    """100 lines in one second: the first 20 are written; after the window
    the next line written says how many were left out."""
    events: list[dict[str, Any]] = []
    log = Logger(observer=events.append)
    budget = LogBudget(limit=20, window=10.0)
    for i in range(100):
        budget.info(log, 1.0 + i / 100, "guess {n} from {source}", n=i, source="192.0.2.1")
    assert len(events) == 20
    assert formatEvent(events[-1]) == "guess 19 from 192.0.2.1"
    budget.info(log, 12.0, "guess {n} from {source}", n=100, source="192.0.2.1")
    assert formatEvent(events[-1]) == "guess 100 from 192.0.2.1 (80 similar lines suppressed)"
    budget.info(log, 12.5, "guess {n} from {source}", n=101, source="192.0.2.1")
    assert formatEvent(events[-1]) == "guess 101 from 192.0.2.1"
