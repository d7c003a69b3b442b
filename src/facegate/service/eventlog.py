"""The event log as a bus subscriber, and events as use cases (query, export, follow).

:class:`EventLogSink` drains its bus subscription on its own thread and writes the events in
batches (one transaction every ``FLUSH_S`` or ``BATCH`` events), so publishing never waits for
the database. :class:`Events` reads the log: filtered pages with a cursor, a CSV export that
streams page by page, and the events after a cursor (how a live feed follows every process's
events, cameras run by workers included).
"""

from __future__ import annotations

import csv
import io
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace

from facegate.events.bus import EventBus, Subscription
from facegate.store.events import EventLog
from facegate.store.records import EVENT_FIELDS, EventQuery

log = logging.getLogger(__name__)

FLUSH_S = 0.1
BATCH = 500
QUEUE = 100_000  # events waiting for the database; beyond, the oldest are dropped (and counted)
PRUNE_EVERY_S = 3600.0


class EventLogSink:
    """Writes every event published on the bus to the event log."""

    def __init__(self, bus: EventBus, events: EventLog, retention_days: float, snapshot_days: float) -> None:
        self.bus, self.events, self.retention_days, self.snapshot_days = bus, events, retention_days, snapshot_days
        self.subscription: Subscription | None = None
        self.listeners: list[Callable[[], None]] = []  # told after each write (the webhook sender, live feeds)
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.written = 0

    def start(self) -> None:
        self.subscription = self.bus.subscribe("event-log", maxsize=QUEUE)
        self._thread = threading.Thread(target=self._run, name="facegate-event-log", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Write what is queued, then stop."""
        self._stop.set()
        if self.subscription is not None:
            self.bus.unsubscribe(self.subscription)
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        pruned = 0.0
        while True:
            stopping = self._stop.is_set()
            first = self.subscription.get(timeout=FLUSH_S)
            batch = [first] if first is not None else []
            while len(batch) < BATCH and (event := self.subscription.get(timeout=0)) is not None:
                batch.append(event)
            if batch:
                try:
                    self.written += self.events.append({**e.to_dict(), "snapshot": e.snapshot} for e in batch)
                except Exception:  # the database did not answer: these events are lost, logged, and we go on
                    log.exception("could not write %d events to the log", len(batch))
                for listener in list(self.listeners):
                    try:
                        listener()
                    except Exception:
                        log.warning("an event-log listener failed", exc_info=True)
            if time.monotonic() - pruned > PRUNE_EVERY_S:
                pruned = time.monotonic()
                try:
                    self.events.prune(time.time() - self.retention_days * 86400)
                    self.events.prune_snapshots(time.time() - self.snapshot_days * 86400)
                except Exception:
                    log.warning("could not prune the event log", exc_info=True)
            if stopping and not batch:
                return


class Events:
    """The event log, read."""

    def __init__(self, events: EventLog) -> None:
        self.log = events

    def page(self, query: EventQuery) -> tuple[list[dict], str | None]:
        """A page of events and the cursor of the next one (None when this was the last)."""
        rows = self.log.query(query)
        return rows, rows[-1]["id"] if len(rows) == query.limit else None

    def csv(self, query: EventQuery) -> Iterator[str]:
        """Every matching event as CSV, a chunk per page (streams however long the range)."""
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(EVENT_FIELDS)
        for n, row in enumerate(self.log.export(replace(query, limit=1000)), 1):
            writer.writerow(
                [",".join(f"{v:g}" for v in row[k]) if k == "box" and row[k] else row[k] for k in EVENT_FIELDS]
            )
            if n % 1000 == 0:
                yield out.getvalue()
                out.seek(0)
                out.truncate()
        yield out.getvalue()

    def follow(self, seq: int, query: EventQuery) -> list[tuple[int, dict]]:
        """The events written after ``seq`` that match (for a live feed: it follows the order of writing, so an
        event of a slower camera or process, older than one already sent, still comes)."""
        return self.log.written_after(seq, query)

    def feed_start(self) -> int:
        return self.log.last_seq()
