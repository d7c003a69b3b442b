"""The event bus and the cooldown rule (pure: timestamps are passed in)."""

from __future__ import annotations

import threading

import pytest

from facegate.events.bus import EventBus
from facegate.events.cooldown import Cooldown
from facegate.events.types import Event, event_id


def event(n: int, kind: str = "recognized") -> Event:
    return Event(id=event_id(1_800_000_000 + n), ts=1_800_000_000 + n, kind=kind, source="camera:c1", name=f"p{n}")


def test_event_ids_sort_by_time_and_are_unique():
    ids = [event_id(1_800_000_000 + n / 1000) for n in range(1000)]
    assert ids == sorted(ids) and len(set(ids)) == 1000
    with pytest.raises(ValueError):
        Event(id="x", ts=0, kind="exploded", source="camera:c1")
    assert event(1).to_dict()["kind"] == "recognized"


def test_a_slow_subscriber_loses_its_own_oldest_events_and_never_blocks_the_others():
    bus = EventBus()
    slow, fast = bus.subscribe("slow", maxsize=3), bus.subscribe("fast", maxsize=100)
    for n in range(10):
        bus.publish(event(n))  # never blocks, whoever reads
    assert [e.name for e in slow.drain()] == ["p7", "p8", "p9"] and slow.dropped == 7
    assert len(fast.drain()) == 10 and fast.dropped == 0
    bus.unsubscribe(slow)
    bus.publish(event(10))
    assert slow.drain() == [] and [e.name for e in fast.drain()] == ["p10"]


def test_a_subscriber_waits_for_the_next_event():
    bus = EventBus()
    sub = bus.subscribe("waiting")
    threading.Timer(0.05, bus.publish, [event(1)]).start()
    assert sub.get(timeout=5).name == "p1"
    assert sub.get(timeout=0.01) is None


def test_cooldown_one_event_per_presence_and_again_after_an_absence():
    cooldown = Cooldown(5.0)
    seen = [cooldown.seen("ann", t) for t in (0.0, 0.2, 1.0, 30.0, 33.0, 37.9)]
    assert seen == [True, False, False, True, False, False]  # one minute in front of the camera: one event
    assert cooldown.seen("ann", 43.0)  # 5 s without her: news again
    assert cooldown.seen("bob", 43.0) and not cooldown.seen("bob", 47.9)
