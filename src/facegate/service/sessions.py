"""Visitor sessions: each visitor's own people, searched together with a shared base collection.

A session (``POST /v1/sessions``) is a collection of its own plus the name of the base it
overlays. Its people are enrolled into its collection only, and recognition in the session
searches both (``FrameOptions.base``), so a visitor finds their own people and the base's, and
no one else ever sees theirs: other sessions search other collections, and the base's own
searches never include a session's. Using a session extends it to ``session_ttl_s`` from now; a
sweeper thread erases expired sessions with everything in them (people, templates, chips).
"""

from __future__ import annotations

import hmac
import logging
import threading
import time
from dataclasses import replace

from facegate.core.errors import FacegateError
from facegate.service.indexes import IndexRegistry
from facegate.service.pipeline import FrameOptions
from facegate.store.sessions import COLLECTION_PREFIX, NewSession, SessionStore, VisitorSession

log = logging.getLogger(__name__)


class SessionNotFound(FacegateError):
    """No live session has this id and token (unknown, expired or ended)."""

    code = "session_not_found"


class Sessions:
    """Create, resolve (extending on use), end and sweep visitor sessions."""

    def __init__(self, store: SessionStore, indexes: IndexRegistry, ttl_s: float) -> None:
        self.store = store
        self.indexes = indexes
        self.ttl_s = ttl_s
        # a session's expiry is written at most this often (a use within it extends it in memory only)
        self.extend_every = min(60.0, ttl_s / 10)
        self.sweep_every = max(0.05, min(60.0, ttl_s / 4))
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def create(self, base: str) -> NewSession:
        """A new session over the ``base`` collection (which must exist and not be a session itself)."""
        if base.startswith(COLLECTION_PREFIX):
            raise FacegateError("a session's base cannot be another session", code="invalid_request")
        self.indexes.gallery(base)  # collection_not_found, model_mismatch before anything is written
        return self.store.create(base, self.ttl_s)

    def resolve(self, session_id: str, token: str) -> VisitorSession:
        """The live session of a token, which must be the session ``session_id``'s; extends it."""
        found = self.store.by_token(token) if token else None
        if found is None or not hmac.compare_digest(found.id, session_id):
            raise SessionNotFound("no live session with this id and token")
        now = time.time()
        if found.expires_at - now < self.ttl_s - self.extend_every:
            self.store.extend(found.id, now + self.ttl_s)
            found = replace(found, expires_at=now + self.ttl_s)
        return found

    def options(self, session: VisitorSession, options: FrameOptions | None = None) -> FrameOptions:
        """Recognition options that search the session's people and its base's."""
        return replace(options or FrameOptions(), collection=session.collection, base=session.base)

    def erase(self, session_id: str) -> None:
        """Erase a session now, with everyone enrolled in it (nothing when there is no such session)."""
        name = self.store.erase(session_id)
        if name is not None:
            self.indexes.forget(name)

    def sweep(self, now: float | None = None) -> int:
        """Erase every expired session (and those whose base was deleted); returns how many went."""
        erased = 0
        for session_id in self.store.expired(now):
            try:
                self.erase(session_id)
                erased += 1
            except Exception:  # one that cannot be erased now does not stop the others
                log.exception("erasing session %s failed", session_id)
        return erased

    # ----------------------------------------------------------------- the sweeper thread

    def start(self) -> None:
        """Sweep expired sessions every ``sweep_every`` seconds on a thread of its own."""
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="facegate-sessions", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def _run(self) -> None:
        while not self._stop.wait(self.sweep_every):
            try:
                self.sweep()
            except Exception:  # the database is away: try again at the next turn
                log.exception("sweeping expired sessions failed")
