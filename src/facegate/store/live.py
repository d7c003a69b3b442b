"""An in-memory search index that follows the database, whoever writes to it.

Every write bumps its collection's change counter in the same transaction. ``LiveIndex``
reads that counter at most every ``poll_interval`` seconds (one indexed row, on SQLite and
PostgreSQL alike) and, when it moved, builds a new index and swaps it in: searches keep
using the old index until the new one is complete, and writes made by another process
(a second server, the CLI) are visible within ``poll_interval`` plus one load.
"""

from __future__ import annotations

import threading
import time

from facegate.gallery.index import Gallery
from facegate.store.repository import DEFAULT_COLLECTION, Store


class LiveIndex:
    """The search index of one collection and embedding model, kept in step with the store."""

    def __init__(
        self,
        store: Store,
        model_id: str,
        collection: str = DEFAULT_COLLECTION,
        dim: int = 128,
        poll_interval: float = 0.5,
    ) -> None:
        self.store = store
        self.model_id = model_id
        self.collection = collection
        self.dim = dim
        self.poll_interval = poll_interval
        self._reload_lock = threading.Lock()
        self._checked_at = 0.0
        self._version: int | None = None
        self._gallery = Gallery(model_id, dim)
        self.refresh(force=True)

    @property
    def gallery(self) -> Gallery:
        """The current index, refreshed first if the poll interval has passed."""
        if time.monotonic() - self._checked_at >= self.poll_interval:
            self.refresh()
        return self._gallery

    def refresh(self, force: bool = False) -> bool:
        """Reload if the collection changed since the last load; returns whether it did."""
        with self._reload_lock:
            self._checked_at = time.monotonic()
            version = self.store.version(self.collection)
            if not force and version == self._version:
                return False
            fresh = self.store.load_gallery(self.model_id, self.collection, self.dim)
            fresh.policy = self._gallery.policy
            self._gallery, self._version = fresh, version  # one assignment: searches never see half
            return True
