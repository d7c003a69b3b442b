"""EventBus: ``publish`` never blocks; every subscriber has its own bounded queue that drops its oldest."""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field

from facegate.events.types import Event


@dataclass
class Subscription:
    """One listener's queue: at most ``maxsize`` events wait; beyond, the oldest are dropped (and counted)."""

    name: str
    maxsize: int
    dropped: int = 0
    _events: deque = field(default_factory=deque, repr=False)
    _ready: threading.Condition = field(default_factory=threading.Condition, repr=False)
    closed: bool = False

    def put(self, event: Event) -> None:
        with self._ready:
            if len(self._events) >= self.maxsize:
                self._events.popleft()
                self.dropped += 1
            self._events.append(event)
            self._ready.notify_all()

    def get(self, timeout: float | None = None) -> Event | None:
        """The next event, waiting up to ``timeout`` seconds (None when none came or the bus closed)."""
        with self._ready:
            if not self._events and not self.closed:
                self._ready.wait(timeout)
            return self._events.popleft() if self._events else None

    def drain(self) -> list[Event]:
        with self._ready:
            events, self._events = list(self._events), deque()
            return events

    def close(self) -> None:
        with self._ready:
            self.closed = True
            self._ready.notify_all()


class EventBus:
    """Fan-out of events to subscribers; a slow subscriber loses its own oldest events, never slows the rest."""

    def __init__(self) -> None:
        self._subscriptions: list[Subscription] = []
        self._lock = threading.Lock()
        self.published = 0

    def subscribe(self, name: str, maxsize: int = 1000) -> Subscription:
        subscription = Subscription(name, maxsize)
        with self._lock:
            self._subscriptions.append(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        with self._lock:
            if subscription in self._subscriptions:
                self._subscriptions.remove(subscription)
        subscription.close()

    def publish(self, event: Event) -> None:
        """Hand the event to every subscriber (thread-safe, constant time per subscriber)."""
        with self._lock:
            subscriptions = list(self._subscriptions)
            self.published += 1
        for subscription in subscriptions:
            subscription.put(event)
