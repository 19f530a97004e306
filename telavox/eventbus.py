"""The in-process event bus: asynchronous, ordered, bounded publish/subscribe.

This module owns :class:`EventBus`, the platform's provider of
:class:`telavox.interfaces.IEventBus`, and :class:`Subscription`, its
:class:`telavox.interfaces.ISubscription`.

``publish`` only appends the event to the bounded FIFO queue of every
matching subscriber and, when nothing is scheduled yet, schedules one drain
with ``reactor.callLater(0, ...)``.  The drain hands queued events to the
callbacks, at most ``batch`` events per subscriber per pass; when events are
left over it schedules another pass, so a flood of events never keeps the
reactor from serving I/O and timers.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable

from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger
from zope.interface import implementer

from telavox.interfaces import IEventBus, ISubscription
from telavox.records import Event

__all__ = ["DEFAULT_BATCH", "DEFAULT_MAX_QUEUE", "EventBus", "Subscription"]

#: Default bound of a subscriber's queue.
DEFAULT_MAX_QUEUE = 1000

#: Default number of events handed to one subscriber in one drain pass.
DEFAULT_BATCH = 100

EventCallback = Callable[[Event], object]


@implementer(ISubscription)
class Subscription:
    """One subscriber's handle: its callback, topic filter, queue and counters.

    Created by :meth:`EventBus.subscribe` only.  ``delivered`` counts the
    events handed to the callback (including those it raised on),
    ``dropped`` the events discarded because the queue was full, and
    ``queued`` is the number of events waiting for delivery.
    """

    __slots__ = ("_bus", "_callback", "_max_queue", "_queue", "_topics", "delivered", "dropped")

    def __init__(
        self,
        bus: EventBus,
        callback: EventCallback,
        topics: frozenset[str] | None,
        max_queue: int,
    ) -> None:
        self._bus: EventBus | None = bus
        self._callback = callback
        self._topics = topics
        self._max_queue = max_queue
        self._queue: deque[Event] = deque()
        self.delivered = 0
        self.dropped = 0

    @property
    def queued(self) -> int:
        """Number of events waiting for delivery."""
        return len(self._queue)

    @property
    def active(self) -> bool:
        """True until :meth:`cancel` is called."""
        return self._bus is not None

    @property
    def topics(self) -> frozenset[str] | None:
        """The topics this subscription receives, or None for every topic."""
        return self._topics

    def cancel(self) -> None:
        """Stop delivery and discard the queued events.  Idempotent.

        Safe to call from inside any callback, including this subscription's
        own: no further event reaches the callback afterwards.
        """
        bus = self._bus
        if bus is None:
            return
        self._bus = None
        self._queue.clear()
        bus._remove(self)

    def __repr__(self) -> str:
        return (
            f"<Subscription {self._callback!r} topics={self._topics!r} "
            f"queued={len(self._queue)} delivered={self.delivered} dropped={self.dropped}>"
        )


@implementer(IEventBus)
class EventBus:
    """In-process publish/subscribe of frozen :class:`telavox.records.Event`.

    ``reactor`` schedules the deliveries (only ``callLater`` is used).
    ``batch`` bounds the events handed to each subscriber in one reactor
    turn.  Delivery is never inside :meth:`publish`; each subscriber sees the
    events it matches in publish order; a full queue drops the new events for
    that subscriber only and never slows the publisher.
    """

    _log = Logger()

    def __init__(self, reactor: IReactorTime, batch: int = DEFAULT_BATCH) -> None:
        if batch < 1:
            raise ValueError(f"batch must be at least 1, not {batch!r}")
        self._reactor = reactor
        self._batch = batch
        # Replaced, never mutated, so a drain pass can iterate a snapshot
        # while callbacks subscribe or cancel.
        self._subscriptions: tuple[Subscription, ...] = ()
        self._call: IDelayedCall | None = None
        self._published = 0
        self._delivered = 0
        self._dropped = 0

    def publish(self, event: Event) -> None:
        """Queue ``event`` for every matching subscriber; returns None at once.

        Never calls a subscriber.  Schedules one drain when none is pending.
        """
        self._published += 1
        topic = event.topic
        queued = False
        for sub in self._subscriptions:
            topics = sub._topics
            if topics is not None and topic not in topics:
                continue
            queue = sub._queue
            if len(queue) >= sub._max_queue:
                sub.dropped += 1
                self._dropped += 1
                continue
            queue.append(event)
            queued = True
        if queued and self._call is None:
            self._call = self._reactor.callLater(0, self._drain)

    def subscribe(
        self,
        callback: EventCallback,
        topics: Iterable[str] | None = None,
        max_queue: int = DEFAULT_MAX_QUEUE,
    ) -> Subscription:
        """Call ``callback(event)`` for each event published from now on whose
        ``topic`` is in ``topics`` (every topic when None).

        ``max_queue`` (at least 1) bounds the events waiting for this
        subscriber.  Exceptions raised by ``callback`` are logged and do not
        stop delivery.  Returns the :class:`Subscription`.
        """
        if isinstance(topics, str):
            raise TypeError("topics must be a collection of topic names, not a str")
        if max_queue < 1:
            raise ValueError(f"max_queue must be at least 1, not {max_queue!r}")
        wanted = None if topics is None else frozenset(topics)
        sub = Subscription(self, callback, wanted, max_queue)
        self._subscriptions = (*self._subscriptions, sub)
        return sub

    def stats(self) -> dict[str, int]:
        """Counters: ``published`` (events), ``delivered`` (callback calls),
        ``dropped`` (full-queue discards) and ``subscribers`` (active ones)."""
        return {
            "published": self._published,
            "delivered": self._delivered,
            "dropped": self._dropped,
            "subscribers": len(self._subscriptions),
        }

    def _remove(self, sub: Subscription) -> None:
        """Forget a cancelled subscription."""
        self._subscriptions = tuple(s for s in self._subscriptions if s is not sub)

    def _drain(self) -> None:
        """One delivery pass: up to ``batch`` events per subscriber.

        Events published by callbacks during the pass wait for the next one,
        which is scheduled when anything is left in any queue.
        """
        self._call = None
        batch = self._batch
        log = self._log
        for sub in self._subscriptions:
            queue = sub._queue
            count = min(len(queue), batch)
            callback = sub._callback
            for _ in range(count):
                if sub._bus is None or not queue:
                    break
                event = queue.popleft()
                sub.delivered += 1
                self._delivered += 1
                try:
                    callback(event)
                except Exception:
                    log.failure(
                        "Event bus subscriber {callback!r} failed on {topic} event",
                        callback=callback,
                        topic=event.topic,
                    )
        if self._call is None and any(sub._queue for sub in self._subscriptions):
            self._call = self._reactor.callLater(0, self._drain)
