"""Typed results of the vision pipeline: boxes, detections, quality and faces."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Box:
    """An axis-aligned box in pixels: (x1, y1) top-left, (x2, y2) bottom-right."""

    x1: float
    y1: float
    x2: float
    y2: float

    def __post_init__(self) -> None:
        if not (self.x2 >= self.x1 and self.y2 >= self.y1):
            raise ValueError(f"invalid box {self}")

    @property
    def width(self) -> float:
        return self.x2 - self.x1

    @property
    def height(self) -> float:
        return self.y2 - self.y1

    @property
    def area(self) -> float:
        return self.width * self.height

    @property
    def center(self) -> tuple[float, float]:
        return ((self.x1 + self.x2) / 2, (self.y1 + self.y2) / 2)

    def iou(self, other: Box) -> float:
        """Intersection over union with another box."""
        ix = max(0.0, min(self.x2, other.x2) - max(self.x1, other.x1))
        iy = max(0.0, min(self.y2, other.y2) - max(self.y1, other.y1))
        inter = ix * iy
        union = self.area + other.area - inter
        return inter / union if union > 0 else 0.0

    def clip(self, width: int, height: int) -> Box:
        """The box clipped to an image of the given size."""
        x1 = min(max(self.x1, 0.0), width)
        y1 = min(max(self.y1, 0.0), height)
        return Box(x1, y1, min(max(self.x2, x1), width), min(max(self.y2, y1), height))

    def to_list(self) -> list[float]:
        return [round(self.x1, 1), round(self.y1, 1), round(self.x2, 1), round(self.y2, 1)]


@dataclass(frozen=True)
class Detection:
    """One face found by a detector: box, confidence in [0, 1], optional keypoints (K, 2)."""

    box: Box
    score: float
    keypoints: np.ndarray | None = None


@dataclass(frozen=True)
class Quality:
    """How usable a face is for recognition: one score in [0, 1] plus the reasons it is low.

    ``size`` is the face's shorter side in pixels, ``sharpness`` the variance of the
    Laplacian of the aligned chip, ``yaw``/``roll``/``pitch`` rough pose estimates in
    degrees from the 5 landmarks, ``brightness`` the chip's mean grey level (0-255),
    ``colour`` the face's mean chroma (0 for a greyscale picture), ``blockiness`` how much
    stronger edges are on the 8-pixel JPEG grid than off it around the face (1: none).
    """

    score: float
    reasons: tuple[str, ...]
    size: float
    sharpness: float
    brightness: float
    yaw: float
    pitch: float
    roll: float
    colour: float = float("nan")
    blockiness: float = float("nan")

    def to_dict(self) -> dict:
        return {
            "score": round(self.score, 3),
            "reasons": list(self.reasons),
            "size": round(self.size, 1),
            "sharpness": round(self.sharpness, 1),
            "brightness": round(self.brightness, 1),
            "yaw": round(self.yaw, 1),
            "pitch": round(self.pitch, 1),
            "roll": round(self.roll, 1),
            "colour": _rounded(self.colour, 1),
            "blockiness": _rounded(self.blockiness, 2),
        }


def _rounded(value: float, digits: int) -> float | None:
    return None if value != value else round(value, digits)


@dataclass
class Face:
    """A face found in an image and enriched by each stage of the pipeline.

    ``landmarks`` are dlib's 5 points (x, y) in image pixels; ``embedding`` is the
    L2-normalised 128-d descriptor (float32) or None when not computed; ``chip`` is the
    aligned 150x150 RGB crop the descriptor was computed from.
    """

    box: Box
    det_score: float
    landmarks: np.ndarray | None = None
    quality: Quality | None = None
    embedding: np.ndarray | None = None
    chip: np.ndarray | None = field(default=None, repr=False)
    keypoints: np.ndarray | None = field(default=None, repr=False)
