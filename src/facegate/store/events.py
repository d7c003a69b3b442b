"""The event log: events appended in batches, queried by time, source, person, kind and collection.

Event ids sort by time (``events.types.event_id``), so a page ends with a cursor: the next
page is everything after that id. Rows are plain dicts of :data:`records.EVENT_FIELDS`; the
store knows nothing of the event types above it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import replace

from sqlalchemy import delete, func, insert, select, update

from facegate.store.records import EVENT_FIELDS, EventQuery
from facegate.store.repository import Store
from facegate.store.schema import EventRow, EventSnapshotRow
from facegate.store.webhooks import enqueue

EXPORT_PAGE = 1000


def _filters(q: EventQuery) -> list:
    """The equality filters of a query (source, person, kind, collection) that are set."""
    columns = (
        (EventRow.source, q.source),
        (EventRow.person_id, q.person_id),
        (EventRow.kind, q.kind),
        (EventRow.collection, q.collection),
    )
    return [column == value for column, value in columns if value is not None]


class EventLog:
    """Events in the facegate database."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def append(self, events: Iterable[dict]) -> int:
        """Write events (dicts of ``EVENT_FIELDS``) and their webhook deliveries in one transaction; an id
        already logged is skipped."""
        events = list(events)
        rows = [{k: e.get(k) for k in EVENT_FIELDS} | {"has_snapshot": bool(e.get("snapshot"))} for e in events]
        if not rows:
            return 0
        with self._store.transaction() as session:
            known = set(session.scalars(select(EventRow.id).where(EventRow.id.in_([r["id"] for r in rows]))))
            fresh = [r for r in rows if r["id"] not in known]
            if fresh:
                session.execute(insert(EventRow), fresh)
                snapshots = [
                    {"event_id": e["id"], "jpeg": e["snapshot"]}
                    for e in events
                    if e.get("snapshot") and e["id"] not in known
                ]
                if snapshots:
                    session.execute(insert(EventSnapshotRow), snapshots)
                enqueue(session, fresh)  # the webhooks' outbox, in the same transaction: no event is lost
            return len(fresh)

    def snapshot(self, event_id: str) -> bytes | None:
        with self._store.transaction() as session:
            return session.scalar(select(EventSnapshotRow.jpeg).where(EventSnapshotRow.event_id == event_id))

    def prune_snapshots(self, before: float) -> int:
        """Delete the snapshots of events older than ``before`` (the events stay)."""
        with self._store.transaction() as session:
            old = select(EventRow.id).where(EventRow.ts < before, EventRow.has_snapshot.is_(True))
            gone = session.execute(delete(EventSnapshotRow).where(EventSnapshotRow.event_id.in_(old))).rowcount or 0
            session.execute(update(EventRow).where(EventRow.ts < before).values(has_snapshot=False))
            return gone

    def query(self, q: EventQuery) -> list[dict]:
        """Up to ``q.limit`` events, oldest first, after ``q.after``."""
        where = _filters(q)
        if q.since is not None:
            where.append(EventRow.ts >= q.since)
        if q.until is not None:
            where.append(EventRow.ts < q.until)
        if q.after is not None:
            where.append(EventRow.id > q.after)
        with self._store.transaction() as session:
            rows = session.scalars(select(EventRow).where(*where).order_by(EventRow.id).limit(q.limit)).all()
            return [{k: getattr(r, k) for k in EVENT_FIELDS} for r in rows]

    def cursor_before_last(self, n: int, source: str | None = None, kind: str | None = None) -> str | None:
        """The cursor after which the newest ``n`` matching events come (None: from the first)."""
        where = [c == v for c, v in ((EventRow.source, source), (EventRow.kind, kind)) if v is not None]
        with self._store.transaction() as session:
            ids = session.scalars(select(EventRow.id).where(*where).order_by(EventRow.id.desc()).limit(n + 1)).all()
            return ids[n] if len(ids) > n else None

    def export(self, q: EventQuery) -> Iterator[dict]:
        """Every matching event, page by page (never all in memory)."""
        after = q.after
        while True:
            page = self.query(replace(q, after=after, limit=EXPORT_PAGE))
            yield from page
            if len(page) < EXPORT_PAGE:
                return
            after = page[-1]["id"]

    def last_seq(self) -> int:
        """Where a live feed starts: the writing order of the newest event written (0 when none)."""
        with self._store.transaction() as session:
            return session.scalar(select(func.max(EventRow.seq))) or 0

    def written_after(self, seq: int, q: EventQuery) -> list[tuple[int, dict]]:
        """Events written after ``seq`` (in writing order, whatever their time) that match ``q``'s filters."""
        where = [EventRow.seq > seq, *_filters(q)]
        with self._store.transaction() as session:
            rows = session.scalars(select(EventRow).where(*where).order_by(EventRow.seq).limit(q.limit)).all()
            return [(r.seq, {k: getattr(r, k) for k in EVENT_FIELDS}) for r in rows]

    def prune(self, before: float) -> int:
        """Delete the events older than ``before`` (retention) with their snapshots; returns how many."""
        with self._store.transaction() as session:
            old = select(EventRow.id).where(EventRow.ts < before)
            session.execute(delete(EventSnapshotRow).where(EventSnapshotRow.event_id.in_(old)))
            return session.execute(delete(EventRow).where(EventRow.ts < before)).rowcount or 0
