"""Call pickup: which ringing call a user who dials a pickup code answers
(sans-IO).

Owns :func:`call_to_pick_up`.  Directed pickup (``**1002``) takes the call
ringing at that extension; group pickup (``*8``) the call that has rung
longest at any member of the picker's pickup group, as Asterisk's
``Pickup()`` with pickup groups does.  A user never picks up a call they
made, nor a call ringing at themselves.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from telavox.config.model import UserConfig

__all__ = ["RINGING_STATES", "call_to_pick_up"]

RINGING_STATES = ("calling", "ringing", "early")
"""States of a call whose callee has not answered yet."""


def call_to_pick_up(calls: Iterable[Any], picker: UserConfig, *, extension: str = "",
                    group: str = "", user: Callable[[str], UserConfig | None]) -> Any:
    """The call ``picker`` answers among ``calls`` (objects with ``callee``,
    ``caller``, ``state``, ``start_time`` and ``b_endpoint``): the one
    ringing at ``extension``, or with ``group`` the longest ringing at a
    member of that group; None when there is none."""
    best = None
    for call in calls:
        if (call.state not in RINGING_STATES or call.b_endpoint is None
                or call.caller is picker or call.callee == picker.extension):
            continue
        if extension:
            if call.callee == extension:
                return call
            continue
        callee = user(call.callee)
        if (group and callee is not None and callee.pickup_group == group
                and (best is None or call.start_time < best.start_time)):
            best = call
    return best
