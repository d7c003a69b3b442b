"""FaceEngine: decode -> detect -> landmarks -> align -> quality -> embed, as one call.

Models load lazily on first use and once per process (shared between engines with the
same settings). Every stage is a small object behind a Protocol, so adding a model is
adding a stage, not editing this file.

After an image of ``TRIM_PIXELS`` or more, freed heap memory is handed back to the OS:
glibc keeps it in its arenas otherwise (eight photos of 6-24 MP analysed on two threads
left 380-430 MB of RSS behind for good; with the trim, ~20 MB).
"""

from __future__ import annotations

import ctypes
import functools
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from facegate.core.errors import ConfigError
from facegate.core.providers import PROVIDERS
from facegate.vision.alignment import LandmarkAligner, dlib_like_box
from facegate.vision.detection import FaceDetector
from facegate.vision.embedding import MODEL_ID as EMBEDDING_MODEL_ID
from facegate.vision.embedding import FaceEmbedder, embed
from facegate.vision.image import DEFAULT_LIMITS, ImageLimits, ImageSource, load_image
from facegate.vision.quality import DEFAULT_THRESHOLDS, QualityThresholds, assess_quality
from facegate.vision.types import Box, Detection, Face

DETECTORS = ("blazeface", "hog", "cnn")
EMBEDDERS = ("onnx", "dlib")
TRIM_PIXELS = 4_000_000  # ~12 MB of RGB; a trim takes ~1 ms after such an image, small frames skip it


@dataclass(frozen=True)
class EngineConfig:
    """Which models the engine runs and how.

    ``flip`` averages each descriptor with that of the mirrored chip (2x embedding cost,
    a little more accuracy; a space of its own); ``flip_templates`` does it for an engine
    that makes templates only (enrolment): they stay in the plain space, and plain probes
    match them as well as flip-averaged probes would (LFW View 2: 99.03% against 98.82%),
    at no cost per live frame. ``thorough`` detection searches large images tile by tile.
    """

    detector: str = "blazeface"
    embedder: str = "onnx"
    flip: bool = False
    flip_templates: bool = False
    thorough: bool = False
    min_det_score: float = 0.5
    num_threads: int = 2
    execution_provider: str = "cpu"  # the embedder's onnxruntime provider (core/providers.py); the detector: CPU
    limits: ImageLimits = DEFAULT_LIMITS
    quality: QualityThresholds = field(default=DEFAULT_THRESHOLDS)

    def __post_init__(self) -> None:
        if self.detector not in DETECTORS:
            raise ConfigError(f"unknown detector {self.detector!r}; one of {DETECTORS}")
        if self.embedder not in EMBEDDERS:
            raise ConfigError(f"unknown embedder {self.embedder!r}; one of {EMBEDDERS}")
        if self.execution_provider not in PROVIDERS:
            raise ConfigError(f"unknown execution provider {self.execution_provider!r}; one of {tuple(PROVIDERS)}")


class ChipEmbedder(Protocol):
    """What re-embedding needs of an engine: its model id and descriptors of aligned chips."""

    @property
    def model_id(self) -> str: ...

    def embed_chips(self, chips: np.ndarray) -> np.ndarray: ...


_load_lock = threading.Lock()


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``, or None (musl, macOS, Windows)."""
    try:
        return ctypes.CDLL(None).malloc_trim
    except (OSError, TypeError, AttributeError):
        return None


def release_memory(image: np.ndarray) -> None:
    """Return freed heap memory to the OS after a large image (``TRIM_PIXELS``); no-op without glibc."""
    if image.shape[0] * image.shape[1] < TRIM_PIXELS:
        return
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@functools.cache
def _detector(name: str, min_score: float, num_threads: int) -> FaceDetector:
    if name == "blazeface":
        from facegate.vision.blazeface import BlazeFaceDetector

        return BlazeFaceDetector(min_score=min_score, num_threads=num_threads)
    from facegate.vision.dlib_detectors import DlibCnnDetector, DlibHogDetector

    return DlibHogDetector() if name == "hog" else DlibCnnDetector()


@functools.cache
def _embedder(name: str, num_threads: int, execution_provider: str = "cpu") -> FaceEmbedder:
    from facegate.vision.embedding import DlibEmbedder, OnnxDlibEmbedder

    if name == "onnx":
        return OnnxDlibEmbedder(num_threads=num_threads, execution_provider=execution_provider)
    return DlibEmbedder()


@functools.cache
def _aligner() -> LandmarkAligner:
    return LandmarkAligner()


class FaceEngine:
    """Finds, aligns, scores and embeds every face in an image.

    >>> engine = FaceEngine()
    >>> faces = engine.analyze("group.jpg")        # list[Face], largest first
    >>> faces[0].box, faces[0].embedding.shape      # Box(...), (128,)
    """

    def __init__(self, config: EngineConfig | None = None) -> None:
        self.config = config or EngineConfig()

    # ----------------------------------------------------------------- the models

    @property
    def detector(self) -> FaceDetector:
        with _load_lock:
            return _detector(self.config.detector, self.config.min_det_score, self.config.num_threads)

    @property
    def embedder(self) -> FaceEmbedder:
        with _load_lock:
            return _embedder(self.config.embedder, self.config.num_threads, self.config.execution_provider)

    def execution_providers(self) -> tuple[str, ...]:
        """The onnxruntime providers the embedder runs on (loads it); none for dlib's own embedder."""
        return tuple(getattr(self.embedder, "providers", ()))

    @property
    def aligner(self) -> LandmarkAligner:
        with _load_lock:
            return _aligner()

    @property
    def model_id(self) -> str:
        """Identifies the embedding space; templates from different ids never mix.

        Flip-averaged descriptors sit a little closer together (their calibrated threshold
        differs), so they form a space of their own.
        """
        return EMBEDDING_MODEL_ID + ("+flip" if self.config.flip else "")

    def warmup(self) -> None:
        """Load every model now (the first call otherwise pays for it)."""
        blank = np.full((192, 192, 3), 127, np.uint8)
        self.detector.detect(blank)
        self.embed_chips(np.zeros((1, 150, 150, 3), np.uint8))

    # ----------------------------------------------------------------- stages

    def load(self, source: ImageSource) -> np.ndarray:
        """Decode any accepted image source into RGB uint8 under the configured limits."""
        return load_image(source, self.config.limits)

    def detect(self, source: ImageSource, *, thorough: bool | None = None) -> list[Detection]:
        """Face detections only (no landmarks, no embedding), best score first."""
        image = self.load(source)
        try:
            return self.detector.detect(image, thorough=self.config.thorough if thorough is None else thorough)
        finally:
            release_memory(image)

    def embed_chips(self, chips: np.ndarray) -> np.ndarray:
        """Unit-length descriptors (N, 128) for aligned chips (N, 150, 150, 3)."""
        return embed(self.embedder, np.asarray(chips, np.uint8), flip=self.config.flip or self.config.flip_templates)

    def faces_from_boxes(
        self,
        image: np.ndarray,
        detections: Sequence[Detection],
        *,
        embed: bool = True,
        keep_chips: bool = False,
    ) -> list[Face]:
        """Landmarks, chip, quality and (optionally) embedding for given detections."""
        if not detections:
            return []
        aligner = self.aligner
        shapes = [aligner.shape(image, dlib_like_box(d, self.config.detector)) for d in detections]
        chips = aligner.chips(image, shapes)
        vectors = self.embed_chips(np.stack(chips)) if embed else None
        faces = []
        for i, (det, shape, chip) in enumerate(zip(detections, shapes, chips, strict=True)):
            points = aligner.points(shape)
            faces.append(
                Face(
                    box=det.box,
                    det_score=det.score,
                    landmarks=points,
                    quality=assess_quality(det.box, points, chip, self.config.quality, image=image),
                    embedding=vectors[i] if vectors is not None else None,
                    chip=chip if keep_chips else None,
                    keypoints=det.keypoints,
                )
            )
        return faces

    # ----------------------------------------------------------------- one call

    def analyze(
        self,
        source: ImageSource,
        *,
        max_faces: int | None = None,
        thorough: bool | None = None,
        embed: bool = True,
        keep_chips: bool = False,
    ) -> list[Face]:
        """Every face in the image, largest first: box, score, landmarks, quality, embedding."""
        image = self.load(source)
        try:
            detections = self.detector.detect(image, thorough=self.config.thorough if thorough is None else thorough)
            detections = sorted(detections, key=lambda d: -d.box.area)[:max_faces]
            return self.faces_from_boxes(image, detections, embed=embed, keep_chips=keep_chips)
        finally:
            release_memory(image)

    def analyze_box(self, source: ImageSource, box: Box, *, keep_chips: bool = False) -> Face:
        """Analyse a face whose box is already known (e.g. a centre crop when detection failed)."""
        image = self.load(source)
        return self.faces_from_boxes(image, [Detection(box=box, score=0.0)], keep_chips=keep_chips)[0]

    def analyze_batch(
        self, sources: Iterable[ImageSource], *, max_faces: int | None = None, thorough: bool | None = None
    ) -> list[list[Face]]:
        """``analyze`` for many images, with one embedding run for all their faces."""
        per_image = []
        for source in sources:
            per_image.append(self.analyze(source, max_faces=max_faces, thorough=thorough, embed=False, keep_chips=True))
        chips = [f.chip for faces in per_image for f in faces]
        if chips:
            vectors = iter(self.embed_chips(np.stack(chips)))
            for faces in per_image:
                for face in faces:
                    face.embedding = next(vectors)
                    face.chip = None
        return per_image
