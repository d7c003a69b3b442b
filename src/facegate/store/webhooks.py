"""Webhooks and their outbox: each event due at a webhook is a row until delivered (or dead).

Deliveries are written in the same transaction as the event they carry (``EventLog.append``),
so a crash loses none: at least once, in order per webhook. A sender claims the oldest pending
deliveries of a webhook under a lease (``FOR UPDATE SKIP LOCKED``: two processes never send one
delivery at once); a failure keeps the delivery at the head of its webhook's line until its
next attempt, so later events wait behind it and order holds.
"""

from __future__ import annotations

import time
from collections.abc import Collection

from sqlalchemy import func, select

from facegate.core.ids import new_id
from facegate.store.errors import StoreError
from facegate.store.records import Delivery, Webhook
from facegate.store.repository import Store
from facegate.store.schema import DeliveryRow, WebhookRow

BATCH = 50


def _webhook(row: WebhookRow, counts: dict[str, int] | None = None, last_error: str | None = None) -> Webhook:
    counts = counts or {}
    return Webhook(
        row.public_id,
        row.url,
        tuple(row.kinds or ()),
        tuple(row.sources or ()),
        tuple(row.collections or ()),
        row.enabled,
        row.created_at,
        counts.get("pending", 0),
        counts.get("delivered", 0),
        counts.get("dead", 0),
        last_error,
    )


def enqueue(session, events: list[dict]) -> int:
    """Add a delivery per event and enabled webhook that wants it (called in the event log's transaction)."""
    hooks = [(row.id, _webhook(row)) for row in session.scalars(select(WebhookRow).where(WebhookRow.enabled.is_(True)))]
    now, added = time.time(), 0
    for event in events:
        for row_id, hook in hooks:
            if hook.wants(event):
                session.add(
                    DeliveryRow(
                        webhook_id=row_id, event_id=event["id"], payload=event, state="pending", next_attempt_at=now
                    )
                )
                added += 1
    return added


class WebhookStore:
    """Webhooks and deliveries in the facegate database."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self.changes = 0  # webhooks created, changed or deleted through this object (the sender looks again)

    def _row(self, session, webhook_id: str) -> WebhookRow:
        row = session.scalar(select(WebhookRow).where(WebhookRow.public_id == webhook_id))
        if row is None:
            raise StoreError(f"no webhook with id {webhook_id!r}", code="webhook_not_found")
        return row

    def create(self, url: str, secret: str, kinds=(), sources=(), collections=(), enabled: bool = True) -> Webhook:
        with self._store.transaction() as session:
            row = WebhookRow(
                public_id=new_id("wh"),
                url=url,
                secret=secret,
                kinds=list(kinds) or None,
                sources=list(sources) or None,
                collections=list(collections) or None,
                enabled=enabled,
            )
            session.add(row)
            session.flush()
            made = _webhook(row)
        self.changes += 1
        return made

    def update(self, webhook_id: str, **changes) -> Webhook:
        with self._store.transaction() as session:
            row = self._row(session, webhook_id)
            for name, value in changes.items():
                if value is not None:
                    setattr(row, name, list(value) or None if name in ("kinds", "sources", "collections") else value)
            session.flush()
            changed = _webhook(row)
        self.changes += 1
        return changed

    def delete(self, webhook_id: str) -> None:
        with self._store.transaction() as session:
            session.delete(self._row(session, webhook_id))
        self.changes += 1

    def list(self) -> list[Webhook]:
        with self._store.transaction() as session:
            return [
                self._described(session, row) for row in session.scalars(select(WebhookRow).order_by(WebhookRow.id))
            ]

    def get(self, webhook_id: str) -> Webhook:
        with self._store.transaction() as session:
            return self._described(session, self._row(session, webhook_id))

    @staticmethod
    def _described(session, row: WebhookRow) -> Webhook:
        counts = dict(
            session.execute(
                select(DeliveryRow.state, func.count())
                .where(DeliveryRow.webhook_id == row.id)
                .group_by(DeliveryRow.state)
            ).all()
        )
        last_error = session.scalar(
            select(DeliveryRow.last_error)
            .where(DeliveryRow.webhook_id == row.id, DeliveryRow.last_error.is_not(None))
            .order_by(DeliveryRow.id.desc())
            .limit(1)
        )
        return _webhook(row, counts, last_error)

    def deliveries(self, webhook_id: str, state: str | None = None, limit: int = 100) -> list[dict]:
        with self._store.transaction() as session:
            row = self._row(session, webhook_id)
            query = select(DeliveryRow).where(DeliveryRow.webhook_id == row.id)
            if state is not None:
                query = query.where(DeliveryRow.state == state)
            rows = session.scalars(query.order_by(DeliveryRow.id.desc()).limit(limit)).all()
            return [
                {
                    "event_id": d.event_id,
                    "state": d.state,
                    "attempts": d.attempts,
                    "last_error": d.last_error,
                    "next_attempt_at": d.next_attempt_at if d.state == "pending" else None,
                    "delivered_at": d.delivered_at,
                }
                for d in rows
            ]

    def add_delivery(self, webhook_id: str, event: dict) -> None:
        """Queue one event for one webhook only (the "send test event" button)."""
        with self._store.transaction() as session:
            row = self._row(session, webhook_id)
            session.add(
                DeliveryRow(
                    webhook_id=row.id, event_id=event["id"], payload=event, state="pending", next_attempt_at=time.time()
                )
            )

    def enabled_count(self) -> int:
        with self._store.transaction() as session:
            return int(session.scalar(select(func.count()).where(WebhookRow.enabled.is_(True))) or 0)

    def claim(self, worker: str, lease_s: float, skip: Collection[str] = ()) -> list[list[Delivery]]:
        """For each webhook (but those in ``skip``: their lines are being sent), its oldest pending deliveries
        (up to ``BATCH``, in order), leased to ``worker``, when the first of them is due and nobody else holds
        it: a line is never started in the middle."""
        now = time.time()
        out = []
        hooks = select(WebhookRow).where(WebhookRow.enabled.is_(True))
        if skip:
            hooks = hooks.where(WebhookRow.public_id.not_in(list(skip)))
        with self._store.transaction() as session:
            for hook in session.scalars(hooks):
                pending = (DeliveryRow.webhook_id == hook.id, DeliveryRow.state == "pending")
                head = session.scalar(select(func.min(DeliveryRow.id)).where(*pending))
                rows = session.scalars(
                    select(DeliveryRow)
                    .where(*pending)
                    .order_by(DeliveryRow.id)
                    .limit(BATCH)
                    .with_for_update(skip_locked=True)
                ).all()
                if not rows or rows[0].id != head or rows[0].next_attempt_at > now:
                    continue  # another claim holds the head, or the head waits for its next attempt
                held = []
                for r in rows:
                    if r.owner not in (None, worker) and r.lease_until is not None and r.lease_until >= now:
                        break  # leased to another sender (killed or alive): its line ends here
                    r.owner, r.lease_until = worker, now + lease_s
                    held.append(r)
                if held:
                    out.append([self._delivery(hook, r) for r in held])
        return out

    @staticmethod
    def _delivery(hook: WebhookRow, r: DeliveryRow) -> Delivery:
        return Delivery(r.id, hook.public_id, hook.url, hook.secret, r.event_id, r.payload, r.attempts)

    def delivered(self, delivery_id: int, worker: str) -> None:
        with self._store.transaction() as session:
            row = session.get(DeliveryRow, delivery_id)
            if row is not None:
                row.state, row.delivered_at, row.owner, row.lease_until = "delivered", time.time(), None, None
                row.attempts += 1
                row.last_error = None

    def failed(self, delivery_id: int, error: str, next_attempt_at: float | None) -> None:
        """A failed attempt: tried again at ``next_attempt_at``, or dead (None)."""
        with self._store.transaction() as session:
            row = session.get(DeliveryRow, delivery_id)
            if row is None:
                return
            row.attempts += 1
            row.last_error = error[:500]
            row.owner = row.lease_until = None
            if next_attempt_at is None:
                row.state = "dead"
            else:
                row.next_attempt_at = next_attempt_at

    def release(self, delivery_ids: list[int]) -> None:
        """Give back leases not used (a failure stopped the line; a clean stop)."""
        if not delivery_ids:
            return
        with self._store.transaction() as session:
            for row in session.scalars(select(DeliveryRow).where(DeliveryRow.id.in_(delivery_ids))):
                if row.state == "pending":
                    row.owner = row.lease_until = None
