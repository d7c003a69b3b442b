"""API keys as use cases: create, list, revoke, authenticate, and the first admin key."""

from __future__ import annotations

from dataclasses import dataclass

from facegate.store.keys import KeyStore
from facegate.store.records import ApiKey


@dataclass(frozen=True)
class NewKey:
    """A created key and its secret (shown once)."""

    key: ApiKey
    secret: str


class ApiKeys:
    """The service's API keys (stored as SHA-256 of their secret)."""

    def __init__(self, keys: KeyStore) -> None:
        self._keys = keys

    def create(
        self, name: str, scopes: list[str] | tuple[str, ...], collections: list[str] | tuple[str, ...] = ()
    ) -> NewKey:
        """A new key; ``collections`` limits what it may read and change (empty: every collection)."""
        return NewKey(*self._keys.create(name, scopes, collections))

    def list(self) -> list[ApiKey]:
        return self._keys.list()

    def revoke(self, key_id: str) -> ApiKey:
        return self._keys.revoke(key_id)

    def authenticate(self, secret: str) -> ApiKey | None:
        return self._keys.authenticate(secret)

    def first_admin_key(self) -> NewKey | None:
        """When no active key can administer, a new admin key (to print once); else None."""
        if self._keys.active_admin_keys():
            return None
        return self.create("first admin key", ["admin"])
