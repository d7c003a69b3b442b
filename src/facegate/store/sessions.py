"""Visitor sessions in the database: a collection of the session's own over a base collection, until it expires.

A token is ``fgs_`` plus 32 random bytes (URL-safe base64); only its SHA-256 is stored, and a
session is found by that hash (one indexed read). The session's people live in a collection of its
own, ``session-<32 random hex digits>`` (not derived from the session id, which appears in URLs and
logs: no one but its visitor and administrators learns the name); erasing a session erases that
collection (people, templates, chips) with it.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass

from sqlalchemy import or_, select, update
from sqlalchemy.orm import aliased

from facegate.core.ids import new_id
from facegate.store.errors import StoreError
from facegate.store.repository import Store
from facegate.store.schema import CollectionRow, VisitorSessionRow

TOKEN_PREFIX = "fgs_"
COLLECTION_PREFIX = "session-"


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class VisitorSession:
    """A session as stored: its id, its own collection, the base it overlays and when it expires."""

    id: str
    collection: str
    base: str
    created_at: float
    expires_at: float


@dataclass(frozen=True)
class NewSession:
    """A session just created, with its token (shown once: the browser keeps it)."""

    session: VisitorSession
    token: str


class SessionStore:
    """Create, find (by token), extend and erase visitor sessions."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def create(self, base: str, ttl_s: float) -> NewSession:
        """A new session over the ``base`` collection (which must exist), expiring ``ttl_s`` from now."""
        public_id = new_id("ses")
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        now = time.time()
        with self.store.transaction() as session:
            base_row = self.store.collection_row(session, base)
            own = CollectionRow(name=COLLECTION_PREFIX + secrets.token_hex(16), created_at=now)
            session.add(own)
            session.flush()
            session.add(
                VisitorSessionRow(
                    public_id=public_id,
                    token_hash=token_hash(token),
                    collection_id=own.id,
                    base_id=base_row.id,
                    created_at=now,
                    expires_at=now + ttl_s,
                )
            )
        return NewSession(VisitorSession(public_id, own.name, base_row.name, now, now + ttl_s), token)

    def by_token(self, token: str) -> VisitorSession | None:
        """The live session of a token (None: unknown, expired, or its base is gone)."""
        own, base = aliased(CollectionRow), aliased(CollectionRow)
        query = (
            select(VisitorSessionRow, own.name, base.name)
            .join(own, own.id == VisitorSessionRow.collection_id)
            .join(base, base.id == VisitorSessionRow.base_id)
            .where(VisitorSessionRow.token_hash == token_hash(token), VisitorSessionRow.expires_at > time.time())
        )
        with self.store.transaction() as session:
            found = session.execute(query).first()
        if found is None:
            return None
        row, own_name, base_name = found
        return VisitorSession(row.public_id, own_name, base_name, row.created_at, row.expires_at)

    def extend(self, public_id: str, expires_at: float) -> None:
        """Move a session's expiry (never earlier than it is)."""
        with self.store.transaction() as session:
            session.execute(
                update(VisitorSessionRow)
                .where(VisitorSessionRow.public_id == public_id, VisitorSessionRow.expires_at < expires_at)
                .values(expires_at=expires_at)
            )

    def expired(self, now: float | None = None) -> list[str]:
        """The ids of sessions past their expiry, or whose base collection was deleted."""
        now = time.time() if now is None else now
        query = select(VisitorSessionRow.public_id).where(
            or_(VisitorSessionRow.expires_at <= now, VisitorSessionRow.base_id.is_(None))
        )
        with self.store.transaction() as session:
            return list(session.scalars(query))

    def count(self) -> int:
        with self.store.transaction() as session:
            return len(session.scalars(select(VisitorSessionRow.id)).all())

    def erase(self, public_id: str) -> str | None:
        """Erase a session with its collection, people, templates and chips; returns the collection's name
        (None: there was no such session)."""
        with self.store.transaction() as session:
            row = session.scalar(select(VisitorSessionRow).where(VisitorSessionRow.public_id == public_id))
            if row is None:
                return None
            name = session.scalar(select(CollectionRow.name).where(CollectionRow.id == row.collection_id))
        try:
            if name is not None:
                self.store.delete_collection(name)  # the session row goes with it (ON DELETE CASCADE)
        except StoreError as exc:
            if exc.code != "collection_not_found":
                raise
        with self.store.transaction() as session:  # in case the database does not cascade
            session.execute(VisitorSessionRow.__table__.delete().where(VisitorSessionRow.public_id == public_id))
        return name
