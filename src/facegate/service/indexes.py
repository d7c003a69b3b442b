"""An in-memory search index that follows the database, whoever writes to it.

Every write bumps its collection's change counter and logs the people it touched, in the
same transaction. ``LiveIndex`` reads that counter at most every ``poll_interval`` seconds
(one indexed row, on SQLite and PostgreSQL alike) and, when it moved, reads the people the
log names since its own version, builds a new index from the current one with just those
people replaced, and swaps it in (the whole collection is reloaded when the log says so or
does not reach back far enough). Searches keep using the old index until the new one is
complete, and writes made by another process (a second server, the CLI) are visible within
``poll_interval`` plus one load.

Readers never wait for a load: while one is under way they get the current index. A
gallery of ``BACKGROUND_RELOAD_TEMPLATES`` or more reloads on a thread of its own (a
million templates take seconds to load), a smaller one on the reader's thread.
``refresh()`` waits, so a writer in this process can make its write searchable before it
answers.
"""

from __future__ import annotations

import logging
import threading
import time

from facegate.core.errors import FacegateError
from facegate.core.person import Person
from facegate.gallery.index import Gallery, TemplateRows
from facegate.store.errors import StoreError
from facegate.store.records import DEFAULT_COLLECTION, IndexRows
from facegate.store.repository import Store

BACKGROUND_RELOAD_TEMPLATES = 20_000
log = logging.getLogger(__name__)


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
        self.other_models: list[str] = []  # what the collection holds when it has none of ``model_id``
        self.missing = False  # the collection was deleted or renamed (by this or another process)
        self.refresh(force=True)

    @property
    def gallery(self) -> Gallery:
        """The current index; past the poll interval, a check (and reload) is started first."""
        if time.monotonic() - self._checked_at >= self.poll_interval:
            if self._gallery.template_count >= BACKGROUND_RELOAD_TEMPLATES:
                self._refresh_in_background()
            else:
                self.refresh(wait=False)
        return self._gallery

    def refresh(self, force: bool = False, wait: bool = True) -> bool:
        """Reload if the collection changed since the last load; returns whether it did.

        With ``wait=False`` it returns False at once when another thread is reloading.
        """
        if not self._reload_lock.acquire(blocking=wait):
            return False
        try:
            return self._reload(force)
        finally:
            self._reload_lock.release()

    def _refresh_in_background(self) -> None:
        if not self._reload_lock.acquire(blocking=False):
            return  # a reload is under way
        self._checked_at = time.monotonic()  # one background check per poll interval

        def run() -> None:
            try:
                self._reload(force=False)
            except Exception:  # the database is away: keep serving the current index, retry later
                log.exception("reloading collection %r failed", self.collection)
            finally:
                self._reload_lock.release()

        threading.Thread(target=run, name=f"facegate-reload-{self.collection}", daemon=True).start()

    def _reload(self, force: bool) -> bool:
        """Check the counter and load what changed if it moved; the caller holds the reload lock."""
        self._checked_at = time.monotonic()
        version, changed = self.store.changes_since(self.collection, None if force else self._version)
        self.missing = version is None
        if not force and version == self._version:
            return False
        if changed is None:
            fresh = build_gallery(self.store.index_rows(self.model_id, self.collection, self.dim), self.model_id)
        else:  # only the people the change log names
            people, rows = gallery_parts(self.store.load_people(self.model_id, self.collection, changed, self.dim))
            fresh = self._gallery.patched(changed, people, rows)
        fresh.prepare_search()
        if fresh.template_count == 0:
            self.other_models = sorted(m for m in self.store.template_counts(self.collection) if m != self.model_id)
        else:
            self.other_models = []
        self._gallery, self._version = fresh, version  # one assignment: searches never see half
        return True


def gallery_parts(rows: IndexRows) -> tuple[list[Person], TemplateRows]:
    """The store's rows as the gallery's people and template columns (no copy of the matrix)."""
    return rows.people, TemplateRows(rows.ids, rows.owners, rows.qualities, rows.sources, rows.matrix, rows.classes)


def build_gallery(rows: IndexRows, model_id: str) -> Gallery:
    """A search index of the store's rows of one model."""
    gallery = Gallery(model_id, rows.matrix.shape[1])
    gallery.restore(*gallery_parts(rows))
    gallery.prepare_search()
    return gallery


class ModelMismatchError(FacegateError):
    """A collection holds templates of other embedding models only: searching it would find no one."""

    code = "model_mismatch"


class IndexRegistry:
    """One :class:`LiveIndex` per collection, for one embedding model, created on first use."""

    def __init__(self, store: Store, model_id: str, poll_interval: float = 0.5) -> None:
        self.store = store
        self.model_id = model_id
        self.poll_interval = poll_interval
        self._indexes: dict[str, LiveIndex] = {}
        self._lock = threading.Lock()

    def live(self, collection: str) -> LiveIndex:
        with self._lock:
            live = self._indexes.get(collection)
            if live is None:
                self.store.require_collection(collection)
                live = LiveIndex(self.store, self.model_id, collection, poll_interval=self.poll_interval)
                self._indexes[collection] = live
        return live

    def gallery(self, collection: str) -> Gallery:
        """The search index of a collection, current to within the poll interval.

        Raises ``ModelMismatchError`` when the collection holds templates of other models only.
        """
        live = self.live(collection)
        gallery = live.gallery
        if live.missing:  # gone since it was loaded (another process deleted or renamed it)
            self.forget(collection)
            raise StoreError(f"no collection named {collection!r}", code="collection_not_found")
        if gallery.template_count == 0 and live.other_models:
            raise self._mismatch(collection, live.other_models)
        return gallery

    def check_writable(self, collection: str) -> None:
        """Refuse to add this model's templates to a collection that holds other models' only
        (reads the loaded index when there is one, else counts templates by model)."""
        with self._lock:
            loaded = collection in self._indexes
        if loaded:
            self.gallery(collection)
            return
        counts = self.store.template_counts(collection)
        if counts and self.model_id not in counts:
            raise self._mismatch(collection, sorted(counts))

    def _mismatch(self, collection: str, others: list[str]) -> ModelMismatchError:
        return ModelMismatchError(
            f"collection {collection!r} holds templates of {', '.join(others)} only, and this facegate makes "
            f"{self.model_id}: start it with the settings those templates were made with (flip, embedder), "
            f"or run 'facegate reembed' with these"
        )

    def changed(self, collection: str) -> None:
        """A write through this process: make it searchable before the writer answers."""
        with self._lock:
            live = self._indexes.get(collection)
        if live is not None:
            live.refresh()

    def forget(self, collection: str) -> None:
        with self._lock:
            self._indexes.pop(collection, None)
