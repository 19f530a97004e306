"""Unit tests of :mod:`telavox.eventbus`, driven by a deterministic Clock."""

from __future__ import annotations

import timeit

import attrs
import pytest
from twisted.internet.task import Clock
from twisted.logger import capturedLogs
from zope.interface.verify import verifyObject

from telavox.eventbus import EventBus, Subscription
from telavox.interfaces import IEventBus, ISubscription
from telavox.records import ComponentEvent, Event


@attrs.frozen(kw_only=True)
class CallEvent(Event):
    """A test event of topic 'call'."""

    topic = "call"
    n: int = 0


@attrs.frozen(kw_only=True)
class MediaEvent(Event):
    """A test event of topic 'media'."""

    topic = "media"
    n: int = 0


class TurnClock(Clock):
    """A Clock whose :meth:`turn` runs one reactor turn.

    ``Clock.advance(0)`` also runs zero-delay calls scheduled by the calls it
    runs; a real reactor leaves those for its next iteration, after I/O.
    ``turn`` does the same: it runs only the calls due when it starts.
    """

    def turn(self) -> None:
        due = [call for call in self.calls if call.getTime() <= self.seconds()]
        for call in due:
            if call in self.calls:
                self.calls.remove(call)
                call.called = 1
                call.func(*call.args, **call.kw)


def make_bus(batch: int = 100) -> tuple[EventBus, TurnClock]:
    clock = TurnClock()
    return EventBus(clock, batch=batch), clock


def drain(clock: TurnClock, turns: int = 100) -> None:
    """Run reactor turns until nothing is scheduled."""
    for _ in range(turns):
        if not clock.getDelayedCalls():
            return
        clock.turn()
    raise AssertionError("the bus never ran out of work")


def test_provides_interfaces() -> None:
    """EventBus and its Subscription provide IEventBus and ISubscription."""
    bus, _ = make_bus()
    sub = bus.subscribe(lambda event: None)
    assert verifyObject(IEventBus, bus)
    assert verifyObject(ISubscription, sub)
    assert isinstance(sub, Subscription)


def test_no_delivery_inside_publish() -> None:
    """publish only queues: the callback runs later, from the reactor."""
    bus, clock = make_bus()
    got: list[Event] = []
    sub = bus.subscribe(got.append)
    event = CallEvent(n=1)
    assert bus.publish(event) is None
    assert got == []
    assert sub.queued == 1
    clock.turn()
    assert got == [event]
    assert sub.queued == 0
    assert sub.delivered == 1


def test_single_drain_scheduled_for_many_events() -> None:
    """Many publishes before a drain schedule exactly one callLater."""
    bus, clock = make_bus()
    bus.subscribe(lambda event: None)
    for n in range(50):
        bus.publish(CallEvent(n=n))
    assert len(clock.getDelayedCalls()) == 1
    clock.turn()
    assert clock.getDelayedCalls() == []


def test_nothing_scheduled_without_matching_subscriber() -> None:
    """An event nobody wants schedules no drain but is counted as published."""
    bus, clock = make_bus()
    bus.publish(CallEvent())
    bus.subscribe(lambda event: None, topics={"media"})
    bus.publish(CallEvent())
    assert clock.getDelayedCalls() == []
    assert bus.stats()["published"] == 2


def test_order_per_subscriber_equals_publish_order() -> None:
    """Each subscriber gets its events in publish order, across topics."""
    bus, clock = make_bus(batch=7)
    first: list[Event] = []
    second: list[Event] = []
    bus.subscribe(first.append)
    bus.subscribe(second.append)
    events: list[Event] = []
    for n in range(40):
        cls = CallEvent if n % 3 else MediaEvent
        events.append(cls(n=n, correlation_id="c1"))
        bus.publish(events[-1])
    drain(clock)
    assert first == events
    assert second == events


def test_topic_filter() -> None:
    """A subscriber with topics gets only those; None means every topic."""
    bus, clock = make_bus()
    calls: list[Event] = []
    everything: list[Event] = []
    media_and_component: list[Event] = []
    bus.subscribe(calls.append, topics={"call"})
    bus.subscribe(everything.append)
    bus.subscribe(media_and_component.append, topics=["media", "component"])
    call, media = CallEvent(n=1), MediaEvent(n=2)
    component = ComponentEvent(component="sip1", what="started")
    for event in (call, media, component):
        bus.publish(event)
    clock.turn()
    assert calls == [call]
    assert everything == [call, media, component]
    assert media_and_component == [media, component]


def test_topics_as_plain_string_rejected() -> None:
    """A bare str for topics is refused rather than read as characters."""
    bus, _ = make_bus()
    with pytest.raises(TypeError):
        bus.subscribe(lambda event: None, topics="call")
    with pytest.raises(ValueError):
        bus.subscribe(lambda event: None, max_queue=0)


def test_full_queue_drops_new_events_and_counts() -> None:
    """A full queue drops new events, counted per subscription and in stats."""
    bus, clock = make_bus()
    slow: list[Event] = []
    roomy: list[Event] = []
    small = bus.subscribe(slow.append, max_queue=3)
    big = bus.subscribe(roomy.append)
    events = [CallEvent(n=n) for n in range(10)]
    for event in events:
        bus.publish(event)
    assert small.queued == 3
    assert small.dropped == 7
    assert big.dropped == 0
    clock.turn()
    assert slow == events[:3]
    assert roomy == events
    assert small.delivered == 3
    assert bus.stats() == {"published": 10, "delivered": 13, "dropped": 7, "subscribers": 2}


def test_callback_exception_logged_and_delivery_continues() -> None:
    """A raising callback is logged and delivery to everyone goes on."""
    bus, clock = make_bus()
    got: list[Event] = []
    others: list[Event] = []

    def flaky(event: Event) -> None:
        if isinstance(event, CallEvent) and event.n == 1:
            raise RuntimeError("boom")
        got.append(event)

    sub = bus.subscribe(flaky)
    bus.subscribe(others.append)
    events = [CallEvent(n=n) for n in range(3)]
    with capturedLogs() as logs:
        for event in events:
            bus.publish(event)
        clock.turn()
    assert got == [events[0], events[2]]
    assert others == events
    assert sub.delivered == 3
    failures = [e for e in logs if "log_failure" in e]
    assert len(failures) == 1
    assert failures[0]["log_failure"].check(RuntimeError)
    assert failures[0]["topic"] == "call"


def test_cancel_is_idempotent_and_discards_queue() -> None:
    """cancel discards queued events, stops delivery, and may be repeated."""
    bus, clock = make_bus()
    got: list[Event] = []
    sub = bus.subscribe(got.append)
    bus.publish(CallEvent())
    sub.cancel()
    sub.cancel()
    assert sub.queued == 0
    assert bus.stats()["subscribers"] == 0
    bus.publish(CallEvent())
    drain(clock)
    assert got == []


def test_cancel_from_inside_callback() -> None:
    """Cancelling inside a callback stops delivery at once and the drain goes on."""
    bus, clock = make_bus()
    got: list[Event] = []
    later: list[Event] = []
    tail: list[Event] = []
    subs: dict[str, Subscription] = {}

    def canceller(event: Event) -> None:
        got.append(event)
        subs["self"].cancel()
        subs["later"].cancel()

    subs["self"] = bus.subscribe(canceller)
    subs["later"] = bus.subscribe(later.append)
    bus.subscribe(tail.append)
    events = [CallEvent(n=n) for n in range(5)]
    for event in events:
        bus.publish(event)
    drain(clock)
    assert got == events[:1]
    assert later == []
    assert tail == events
    assert bus.stats()["subscribers"] == 1


def test_subscribe_and_publish_from_inside_callback() -> None:
    """Subscribing and publishing inside a callback take effect on a later pass."""
    bus, clock = make_bus()
    late: list[Event] = []
    seen: list[Event] = []

    def on_event(event: Event) -> None:
        seen.append(event)
        if isinstance(event, CallEvent) and event.n == 0:
            bus.subscribe(late.append)
            bus.publish(MediaEvent(n=99))

    bus.subscribe(on_event)
    bus.publish(CallEvent(n=0))
    bus.publish(CallEvent(n=1))
    clock.turn()
    assert seen == [CallEvent(n=0), CallEvent(n=1)]
    assert late == []
    drain(clock)
    assert seen[-1] == MediaEvent(n=99)
    assert late == [MediaEvent(n=99)]


def test_work_bounded_per_pass() -> None:
    """One pass hands at most `batch` events to a subscriber; the rest follow later."""
    bus, clock = make_bus(batch=10)
    got: list[Event] = []
    sub = bus.subscribe(got.append)
    for n in range(25):
        bus.publish(CallEvent(n=n))
    clock.turn()
    assert len(got) == 10
    assert sub.queued == 15
    assert len(clock.getDelayedCalls()) == 1
    clock.turn()
    assert len(got) == 20
    clock.turn()
    assert [e.n for e in got if isinstance(e, CallEvent)] == list(range(25))
    assert clock.getDelayedCalls() == []


def test_self_feeding_subscriber_does_not_starve_reactor() -> None:
    """A callback that always republishes yields to the reactor each pass."""
    bus, clock = make_bus(batch=5)
    count = 0

    def echo(event: Event) -> None:
        nonlocal count
        count += 1
        bus.publish(event)

    bus.subscribe(echo)
    bus.publish(CallEvent())
    clock.turn()
    assert count == 1
    clock.turn()
    assert count == 2
    assert len(clock.getDelayedCalls()) == 1


def test_bad_batch_rejected() -> None:
    """A batch below 1 is refused."""
    with pytest.raises(ValueError):
        EventBus(Clock(), batch=0)


def test_publish_is_cheap() -> None:
    """Publishing to three subscribers costs a few microseconds."""
    bus, _ = make_bus()
    for topics in (None, {"call"}, {"media"}):
        bus.subscribe(lambda event: None, topics=topics, max_queue=10**7)
    event = CallEvent(n=1)
    rounds = 20000
    seconds = min(timeit.repeat(lambda: bus.publish(event), number=rounds, repeat=3))
    assert seconds / rounds < 20e-6
