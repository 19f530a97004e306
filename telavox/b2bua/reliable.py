"""Reliable provisional responses on the UAS side of an INVITE (RFC 3262).

Owns :class:`ReliableProvisionals`.  When the caller requires ``100rel``,
each provisional response above 100 carries ``Require: 100rel`` and an
``RSeq`` one higher than the last (§3), is retransmitted from T1 doubling
until a PRACK with the matching ``RAck`` arrives, and only one is
unacknowledged at a time: the next waits for the PRACK of the one before.
A 2xx that answers the offer must wait for the PRACK of every provisional
that carried a session description.  With no PRACK in 64*T1 the INVITE is
given up (the owner rejects it with a 5xx, §3).
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable
from typing import Any

from telavox.sip.message import Request, Response

__all__ = ["ReliableProvisionals", "rack_of", "requires_100rel"]


def requires_100rel(request: Request) -> bool:
    """The request's Require names 100rel."""
    return any(tag.strip().lower() == "100rel"
               for value in request.headers.get_all("Require") for tag in value.split(","))


def rack_of(request: Request) -> tuple[int, int, str] | None:
    """A PRACK's RAck as (RSeq, CSeq number, method), or None if malformed."""
    parts = (request.headers.get("RAck") or "").split()
    if len(parts) != 3 or not parts[0].isdigit() or not parts[1].isdigit():
        return None
    return int(parts[0]), int(parts[1]), parts[2].upper()


class ReliableProvisionals:
    """The reliable provisionals of one INVITE server transaction.

    ``send(response)`` transmits a response; ``give_up()`` is called when a
    provisional got no PRACK in 64*T1; ``call_later`` and the T1/T2/timeout
    values come from the leg's host.
    """

    def __init__(self, invite: Request, send: Callable[[Response], None],
                 give_up: Callable[[], None], call_later: Callable[..., Any],
                 t1: float, t2: float, timeout: float) -> None:
        self.invite = invite
        self._send = send
        self._give_up = give_up
        self._call_later = call_later
        self._t1, self._t2, self._timeout = t1, t2, timeout
        self.rseq = int.from_bytes(os.urandom(4), "big") % (2**31 - 1) + 1
        self.unacked: Response | None = None
        self.queue: deque[Response] = deque()
        self.after: Callable[[], None] | None = None
        """What waits for the last PRACK (a 2xx answering the offer)."""
        self._timer: Any = None
        self._interval = 0.0
        self._waited = 0.0

    def next_rseq(self) -> int:
        """The RSeq of the next reliable provisional."""
        self.rseq += 1
        return self.rseq

    def send(self, response: Response) -> None:
        """Send ``response`` (already carrying Require and RSeq) reliably."""
        if self.unacked is not None:
            self.queue.append(response)
            return
        self.unacked = response
        self._send(response)
        self._interval, self._waited = self._t1, 0.0
        self._timer = self._call_later(self._interval, self._retransmit)

    def pending_sdp(self) -> bool:
        """A provisional with a session description still awaits its PRACK."""
        waiting = [self.unacked, *self.queue] if self.unacked is not None else list(self.queue)
        return any(r.body for r in waiting if r is not None)

    def prack(self, request: Request) -> bool:
        """A PRACK: True when it acknowledges the unacknowledged provisional
        (then answer it, and call :meth:`flush`)."""
        rack = rack_of(request)
        unacked = self.unacked
        if rack is None or unacked is None:
            return False
        rseq, cseq, method = rack
        if (rseq != int(unacked.headers.get("RSeq") or 0) or method != "INVITE"
                or cseq != self.invite.cseq.seq):
            return False
        self._stop_timer()
        self.unacked = None
        return True

    def flush(self) -> None:
        """Send the next queued provisional, or what waited for the last PRACK."""
        if self.unacked is not None:
            return
        if self.queue:
            self.send(self.queue.popleft())
        elif self.after is not None:
            after, self.after = self.after, None
            after()

    def _retransmit(self) -> None:
        self._timer = None
        if self.unacked is None:
            return
        self._waited += self._interval
        if self._waited >= self._timeout:
            self.stop()
            self._give_up()
            return
        self._send(self.unacked)
        self._interval = min(self._interval * 2, self._t2)
        self._timer = self._call_later(self._interval, self._retransmit)

    def _stop_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def stop(self) -> None:
        """Forget everything (the INVITE got its final response)."""
        self._stop_timer()
        self.unacked = None
        self.queue.clear()
        self.after = None
