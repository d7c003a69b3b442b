"""The frame pipeline: a frame -> analyse -> decide -> a typed result.

One path for every source of frames: ``/v1/recognize``, the browser stream, the CLI's
``identify`` (and, next, cameras and video files) all call :meth:`FrameProcessor.process`.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass

import numpy as np

from facegate.gallery.decision import Candidate, Decision, DecisionPolicy
from facegate.gallery.index import Gallery
from facegate.gallery.openset import GalleryShape, quality_class
from facegate.service.indexes import IndexRegistry
from facegate.store.records import DEFAULT_COLLECTION
from facegate.vision.engine import FaceEngine
from facegate.vision.image import ImageSource
from facegate.vision.types import Face


@dataclass(frozen=True)
class FrameOptions:
    """How to decide on a frame's faces: against which collection, at which threshold."""

    collection: str = DEFAULT_COLLECTION
    threshold: float | None = None  # None: the policy's (calibrated or configured) threshold
    max_faces: int | None = None  # None: the configured limit
    top_k: int = 0  # also list the best K candidates per face
    base: str | None = None  # also search this collection (a visitor session's base; service.sessions)


@dataclass(frozen=True)
class RecognizedFace:
    """A face found in a frame and what facegate decided about it."""

    face: Face
    decision: Decision


@dataclass(frozen=True)
class FrameResult:
    """Every face of one frame (largest first) with its decision."""

    width: int
    height: int
    faces: list[RecognizedFace]
    threshold: float
    processing_ms: float

    @property
    def statuses(self) -> list[str]:
        return [f.decision.status for f in self.faces]


class FrameProcessor:
    """Analyses a frame with the engine and decides on each face with the one decision policy."""

    def __init__(self, engine: FaceEngine, indexes: IndexRegistry, policy: DecisionPolicy, max_faces: int) -> None:
        self.engine = engine
        self.indexes = indexes
        self.policy = policy
        self.max_faces = max_faces

    def face_limit(self, requested: int | None) -> int:
        """At most ``requested`` faces, and never more than the configured limit."""
        return min(requested or self.max_faces, self.max_faces)

    def process(self, frame: ImageSource, options: FrameOptions) -> FrameResult:
        """Every face (largest first, at most ``options.max_faces``) with a match/unknown decision."""
        started = time.perf_counter()
        pixels = self.engine.load(frame)
        faces = self.engine.analyze(pixels, max_faces=self.face_limit(options.max_faces))
        decisions = self.decide(faces, options)
        return FrameResult(
            width=int(pixels.shape[1]),
            height=int(pixels.shape[0]),
            faces=[RecognizedFace(f, d) for f, d in zip(faces, decisions, strict=True)],
            threshold=self.match_threshold(options),
            processing_ms=(time.perf_counter() - started) * 1000,
        )

    def match_threshold(self, options: FrameOptions) -> float:
        """The similarity a good face needs for a name in the options' collection (for display)."""
        policy = self.policy.with_threshold(options.threshold)
        if not policy.open_set:
            return policy.threshold
        return round(policy.match_threshold(searched_shape(self._galleries(options))), 4)

    def _galleries(self, options: FrameOptions) -> list[Gallery]:
        """The galleries a search covers: the collection's, and its base's for a session."""
        galleries = [self.indexes.gallery(options.collection)]
        if options.base is not None:
            galleries.append(self.indexes.gallery(options.base))
        return galleries

    def decide(self, faces: list[Face], options: FrameOptions) -> list[Decision]:
        """Match/unknown decisions for faces' embeddings against a collection.

        The open-set policy weighs the best person against the next one, so the search always
        returns two people at least; ``top_k`` of them are listed in each decision.
        """
        galleries = self._galleries(options)
        if not faces:
            return []
        policy = self.policy.with_threshold(options.threshold)
        shape = searched_shape(galleries)
        pair_shift = policy.openset.pair_shift if policy.open_set and policy.openset else None
        top_k = max(2, options.top_k)
        queries = np.stack([f.embedding for f in faces])
        classes = [quality_class(f.quality) for f in faces]
        found = [
            gallery.search(queries, top_k=top_k, probe_classes=classes, pair_shift=pair_shift) for gallery in galleries
        ]
        if len(found) > 1:  # a session: its people and the base's, best first (as one gallery ranks them)
            merged = [sorted(itertools.chain(*lists), key=_rank_key)[:top_k] for lists in zip(*found, strict=True)]
        else:
            merged = found[0]
        return [
            policy.decide(candidates, options.top_k, shape=shape, quality=face.quality)
            for face, candidates in zip(faces, merged, strict=True)
        ]


def _rank_key(candidate: Candidate) -> float:
    """How a gallery ranks a candidate: similarity less the shift of its pair of quality classes."""
    return -(candidate.similarity - (candidate.shift or 0.0))


def searched_shape(galleries: list[Gallery]) -> GalleryShape:
    """The shape of the galleries searched together: their people and templates summed."""
    if len(galleries) == 1:
        return galleries[0].shape()
    people = templates = 0.0
    for gallery in galleries:
        if gallery.template_count:
            shape = gallery.shape()
            people += shape.people
            templates += shape.people * shape.templates_per_person
    return GalleryShape(max(1, int(people)), templates / people if people else 1.0)
