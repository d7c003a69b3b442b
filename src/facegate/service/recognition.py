"""Recognise, detect and verify: the read-only use cases on images."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from facegate.core.errors import FacegateError
from facegate.gallery.decision import DecisionPolicy, Verification
from facegate.service.indexes import IndexRegistry
from facegate.service.pipeline import FrameOptions, FrameProcessor, FrameResult
from facegate.store.repository import Store
from facegate.vision.engine import FaceEngine
from facegate.vision.image import ImageSource
from facegate.vision.types import Face


@dataclass(frozen=True)
class Detected:
    """Faces with landmarks and quality, no decision (what a guided capture needs)."""

    width: int
    height: int
    faces: list[Face]
    pixels: np.ndarray | None = None  # the decoded image, when asked for (to draw on)


@dataclass(frozen=True)
class VerifyResult:
    """Two faces, or a face and an enrolled person: the same or not."""

    verification: Verification
    person_id: str | None = None


class Recognition:
    """Recognise every face of an image, detect faces, verify two faces or a face against a person."""

    def __init__(self, processor: FrameProcessor, store: Store, indexes: IndexRegistry) -> None:
        self.processor = processor
        self.store = store
        self.indexes = indexes

    @property
    def engine(self) -> FaceEngine:
        return self.processor.engine

    @property
    def policy(self) -> DecisionPolicy:
        return self.processor.policy

    def recognize(self, image: ImageSource, options: FrameOptions | None = None) -> FrameResult:
        return self.processor.process(image, options or FrameOptions())

    def detect(
        self, image: ImageSource, *, max_faces: int | None = None, thorough: bool = False, keep_pixels: bool = False
    ) -> Detected:
        """Faces with landmarks and quality; ``thorough`` also searches large images tile by tile."""
        pixels = self.engine.load(image)
        limit = self.processor.face_limit(max_faces)
        faces = self.engine.analyze(pixels, max_faces=limit, thorough=thorough or None, embed=False)
        return Detected(int(pixels.shape[1]), int(pixels.shape[0]), faces, pixels if keep_pixels else None)

    def largest_face(self, image: ImageSource, label: str) -> Face:
        """The largest face of an image with its embedding; ``no_face`` error naming ``label`` otherwise."""
        faces = self.engine.analyze(image, max_faces=1)
        if not faces:
            raise FacegateError(f"no face found in {label}", code="no_face")
        return faces[0]

    def verify(
        self,
        image_a: ImageSource,
        image_b: ImageSource | None = None,
        *,
        person_id: str | None = None,
        collection: str = "default",
        threshold: float | None = None,
        labels: tuple[str, str] = ("image_a", "image_b"),
    ) -> VerifyResult:
        """The largest face of ``image_a`` against that of ``image_b``, or against ``person_id``'s templates."""
        if (image_b is None) == (person_id is None):
            raise FacegateError("give a second image or a person id (one of them)", code="invalid_request")
        policy = self.policy.with_threshold(threshold)
        face_a = self.largest_face(image_a, labels[0])
        if image_b is not None:
            face_b = self.largest_face(image_b, labels[1])
            return VerifyResult(policy.verify(float(face_a.embedding @ face_b.embedding)))
        self.store.get_person(person_id, collection)
        best = self.indexes.gallery(collection).best_similarity(person_id, face_a.embedding)
        if best is None:
            raise FacegateError("this person has no templates of the current model", code="no_templates")
        return VerifyResult(policy.verify(best), person_id)
