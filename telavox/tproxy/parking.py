"""Call parking: which call waits in which slot of a SIP server (sans-IO).

Owns :class:`ParkingLot`.  A lot has a number (``700``) and numbered slots
after it (``701``-``720``).  What a number means when a call is parked to
it (a blind transfer, an attended transfer to a parked call, or a caller
dialling it) is :meth:`ParkingLot.slot_for`: the lot's number takes the
first free slot, a slot's own number takes that slot when free.  Dialling a
slot that holds a call retrieves it (:meth:`ParkingLot.occupant`).

The calls themselves (announcement, music, retrieval, ringing the parker
back) live in :class:`~telavox.tproxy.call.Call`; the lot only keeps the
table, so a slot can never hold two calls and a call that ends frees it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Generic, TypeVar

__all__ = ["ParkingLot"]

T = TypeVar("T")


class ParkingLot(Generic[T]):
    """The slots of one lot and the call (any object) parked in each."""

    def __init__(self, lot: str, slots: Iterable[str]) -> None:
        self.lot = lot
        self.slots = tuple(slots)
        self._parked: dict[str, T] = {}

    def __contains__(self, number: object) -> bool:
        return number == self.lot or number in self.slots

    def __len__(self) -> int:
        return len(self._parked)

    def __iter__(self) -> Iterator[tuple[str, T]]:
        """(slot, call) for each parked call, in slot order."""
        return iter([(s, self._parked[s]) for s in self.slots if s in self._parked])

    def slot_for(self, number: str) -> str | None:
        """The slot a call parked to ``number`` takes: the first free one for
        the lot's number, the slot itself when it is free; None when full,
        taken or not a number of this lot."""
        if number == self.lot:
            return next((s for s in self.slots if s not in self._parked), None)
        if number in self.slots and number not in self._parked:
            return number
        return None

    def occupant(self, number: str) -> T | None:
        """The call parked in slot ``number``, or None."""
        return self._parked.get(number)

    def take(self, slot: str, call: T) -> None:
        """Park ``call`` in ``slot`` (free: see :meth:`slot_for`)."""
        if slot not in self.slots:
            raise KeyError(slot)
        if self._parked.get(slot, call) is not call:
            raise ValueError(f"slot {slot} is taken")
        self._parked[slot] = call

    def release(self, slot: str, call: T) -> None:
        """Free ``slot`` if ``call`` is the one parked there."""
        if self._parked.get(slot) is call:
            del self._parked[slot]
