"""What the API calls: the engine, the store, one live index per collection, and the scheduler.

Every method here is synchronous and CPU- or database-bound: routes call them through the
:class:`~facegate.api.scheduler.FairScheduler` (model work) or a worker thread (database
work), never on the event loop.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, replace

import numpy as np

from facegate.api.settings import Settings
from facegate.gallery.decision import Decision, MatchPolicy
from facegate.gallery.index import Gallery
from facegate.store.db import make_engine, upgrade
from facegate.store.keys import KeyStore
from facegate.store.live import LiveIndex
from facegate.store.repository import NewTemplate, Store
from facegate.vision.engine import EngineConfig, FaceEngine
from facegate.vision.errors import FacegateError
from facegate.vision.image import ImageLimits, encode_jpeg
from facegate.vision.types import Face

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RecognizedFace:
    """A face found in an image and what facegate decided about it."""

    face: Face
    decision: Decision


@dataclass(frozen=True)
class Recognition:
    """The result of recognising one image."""

    width: int
    height: int
    faces: list[RecognizedFace]
    threshold: float
    processing_ms: float


@dataclass(frozen=True)
class EnrolFace:
    """The face taken from one uploaded image for enrolment, or why none was."""

    source: str
    face: Face | None
    error: FacegateError | None = None


class FaceService:
    """The engine, the store and the indexes behind the API, created once per server."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.store = Store(make_engine(settings.database_url or None))
        upgrade(self.store.engine)
        self.keys = KeyStore(self.store)
        limits = ImageLimits(max_bytes=settings.max_image_bytes, max_pixels=settings.max_image_pixels)
        self.engine = FaceEngine(EngineConfig(flip=settings.flip, limits=limits, num_threads=settings.model_threads))
        # enrolment searches large photos tile by tile, so small faces in big photos are found
        self.enrol_engine = FaceEngine(replace(self.engine.config, thorough=True))
        self.policy = MatchPolicy.from_env(settings.match_threshold, flip=settings.flip)
        self._indexes: dict[str, LiveIndex] = {}
        self._indexes_lock = threading.Lock()
        self.ready = False

    @property
    def model_id(self) -> str:
        return self.engine.model_id

    def warmup(self) -> None:
        """Load every model (readiness turns true after this)."""
        started = time.perf_counter()
        self.engine.warmup()
        self.ready = True
        log.info("models loaded in %.1f s", time.perf_counter() - started)

    # ----------------------------------------------------------------- indexes

    def index(self, collection: str) -> Gallery:
        """The search index of a collection, current to within the poll interval."""
        with self._indexes_lock:
            live = self._indexes.get(collection)
            if live is None:
                if collection not in self.store.collections():
                    raise FacegateError(f"no collection named {collection!r}", code="collection_not_found")
                live = LiveIndex(self.store, self.model_id, collection)
                self._indexes[collection] = live
        return live.gallery

    def changed(self, collection: str) -> None:
        """A write through this process: the next search re-reads the collection's counter."""
        with self._indexes_lock:
            live = self._indexes.get(collection)
        if live is not None:
            live.refresh()

    def forget(self, collection: str) -> None:
        with self._indexes_lock:
            self._indexes.pop(collection, None)

    # ----------------------------------------------------------------- recognition

    def policy_for(self, threshold: float | None) -> MatchPolicy:
        return self.policy if threshold is None else replace(self.policy, threshold=threshold)

    def recognize(
        self,
        image: bytes,
        *,
        collection: str = "default",
        threshold: float | None = None,
        max_faces: int | None = None,
        top_k: int = 0,
    ) -> Recognition:
        """Every face (largest first, at most ``max_faces``) with a match/unknown decision."""
        started = time.perf_counter()
        pixels = self.engine.load(image)
        faces = self.engine.analyze(pixels, max_faces=self._face_limit(max_faces))
        decisions = self.decide(faces, collection, threshold, top_k)
        return Recognition(
            width=int(pixels.shape[1]),
            height=int(pixels.shape[0]),
            faces=[RecognizedFace(f, d) for f, d in zip(faces, decisions, strict=True)],
            threshold=self.policy_for(threshold).threshold,
            processing_ms=(time.perf_counter() - started) * 1000,
        )

    def decide(self, faces: list[Face], collection: str, threshold: float | None, top_k: int) -> list[Decision]:
        """Match/unknown decisions for faces' embeddings against a collection."""
        gallery = self.index(collection)
        if not faces:
            return []
        policy = self.policy_for(threshold)
        found = gallery.search(np.stack([f.embedding for f in faces]), top_k=max(1, top_k))
        return [policy.decide(candidates, top_k) for candidates in found]

    def detect(self, image: bytes, *, max_faces: int | None = None) -> tuple[int, int, list[Face]]:
        """Faces with landmarks and quality, no embedding (what a guided capture needs)."""
        pixels = self.engine.load(image)
        faces = self.engine.analyze(pixels, max_faces=self._face_limit(max_faces), embed=False)
        return int(pixels.shape[1]), int(pixels.shape[0]), faces

    def _face_limit(self, requested: int | None) -> int:
        """At most ``requested`` faces, and never more than the server's limit."""
        return min(requested or self.settings.max_faces, self.settings.max_faces)

    def largest_face(self, image: bytes, *, thorough: bool = False) -> Face | None:
        """The largest face of an image with its embedding (and chip), or None."""
        engine = self.enrol_engine if thorough else self.engine
        faces = engine.analyze(image, max_faces=1, keep_chips=True)
        return faces[0] if faces else None

    def enrol_faces(self, images: list[tuple[str, bytes]]) -> list[EnrolFace]:
        """The largest face of each named image, or the error that image gave."""
        out = []
        for source, data in images:
            try:
                face = self.largest_face(data, thorough=True)
            except FacegateError as exc:
                out.append(EnrolFace(source, None, exc))
                continue
            if face is None:
                out.append(EnrolFace(source, None, FacegateError("no face found", code="no_face")))
            else:
                out.append(EnrolFace(source, face))
        return out

    def templates_from(self, found: list[EnrolFace]) -> list[NewTemplate]:
        """Store-ready templates from the faces that were found."""
        return [
            NewTemplate(
                e.face.embedding,
                e.face.quality.score if e.face.quality else 1.0,
                e.source,
                encode_jpeg(e.face.chip) if self.settings.store_chips and e.face.chip is not None else None,
            )
            for e in found
            if e.face is not None
        ]
