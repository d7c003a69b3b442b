"""API keys: created with scopes, stored as a SHA-256 of the secret, revoked, never shown twice.

A secret is ``fgk_`` plus 32 random bytes (URL-safe base64): with that much entropy a plain
SHA-256 is enough to store it (no password stretching needed), and looking a key up by its
hash is one indexed read.
"""

from __future__ import annotations

import hashlib
import secrets
import time

from sqlalchemy import func, select

from facegate.core.ids import new_id
from facegate.store.errors import StoreError
from facegate.store.records import ApiKey
from facegate.store.repository import Store
from facegate.store.schema import ApiKeyRow

SCOPES = ("admin", "recognize")
SECRET_PREFIX = "fgk_"
LAST_USED_RESOLUTION_S = 60.0  # ``last_used_at`` is written at most this often per key


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _key(row: ApiKeyRow) -> ApiKey:
    return ApiKey(
        row.public_id,
        row.name,
        tuple(row.scopes.split()),
        row.created_at,
        row.last_used_at,
        row.revoked_at,
        tuple(row.collections or ()),
    )


class KeyStore:
    """API keys in the facegate database."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def create(
        self, name: str, scopes: list[str] | tuple[str, ...], collections: list[str] | tuple[str, ...] = ()
    ) -> tuple[ApiKey, str]:
        """A new key and its secret (returned only here); ``collections`` limits it (empty: every one)."""
        limited = sorted({c.strip() for c in collections if c.strip()})
        name = name.strip()
        wanted = tuple(dict.fromkeys(s.strip() for s in scopes if s.strip()))
        if not name:
            raise StoreError("an API key needs a name", code="invalid_name")
        unknown = [s for s in wanted if s not in SCOPES]
        if not wanted or unknown:
            raise StoreError(f"scopes must be among {SCOPES}; got {list(wanted)}", code="invalid_scope")
        secret = SECRET_PREFIX + secrets.token_urlsafe(32)
        with self._store.transaction() as session:
            row = ApiKeyRow(
                public_id=new_id("k"),
                name=name,
                secret_hash=_hash(secret),
                scopes=" ".join(wanted),
                collections=limited or None,
            )
            session.add(row)
            session.flush()
            return _key(row), secret

    def list(self) -> list[ApiKey]:
        """Every key, revoked ones included, oldest first."""
        with self._store.transaction() as session:
            return [_key(r) for r in session.scalars(select(ApiKeyRow).order_by(ApiKeyRow.id))]

    def revoke(self, key_id: str) -> ApiKey:
        """Revoke a key (it stops working at once); revoking twice is harmless."""
        with self._store.transaction() as session:
            row = session.scalar(select(ApiKeyRow).where(ApiKeyRow.public_id == key_id))
            if row is None:
                raise StoreError(f"no API key with id {key_id!r}", code="key_not_found")
            row.revoked_at = row.revoked_at or time.time()
            return _key(row)

    def authenticate(self, secret: str) -> ApiKey | None:
        """The active key with this secret, or None."""
        if not secret.startswith(SECRET_PREFIX):
            return None
        with self._store.transaction() as session:
            row = session.scalar(select(ApiKeyRow).where(ApiKeyRow.secret_hash == _hash(secret)))
            if row is None or row.revoked_at is not None:
                return None
            now = time.time()
            if row.last_used_at is None or now - row.last_used_at > LAST_USED_RESOLUTION_S:
                row.last_used_at = now
            return _key(row)

    def active_admin_keys(self) -> int:
        """How many unrevoked keys have the ``admin`` scope."""
        with self._store.transaction() as session:
            rows = session.scalars(select(ApiKeyRow.scopes).where(ApiKeyRow.revoked_at.is_(None))).all()
            return sum("admin" in s.split() for s in rows)

    def count(self) -> int:
        with self._store.transaction() as session:
            return int(session.scalar(select(func.count()).select_from(ApiKeyRow)) or 0)
