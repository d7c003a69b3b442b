"""A face's look in 256 numbers: to notice, without embedding it, that the face in a box changed."""

from __future__ import annotations

import cv2
import numpy as np

from facegate.vision.types import Box

SIDE = 16


def appearance(rgb: np.ndarray, box: Box) -> np.ndarray | None:
    """The box's grey pixels at 16x16, zero-mean and unit-length (None for an empty or flat box).

    The dot product of two is their correlation: measured on the slideshow clip, ≥ 0.95 for one
    photo 0.2 s apart (zoom and drift included), ≤ 0.45 across a cut to another face.
    """
    h, w = rgb.shape[:2]
    x1, y1 = max(0, int(box.x1)), max(0, int(box.y1))
    x2, y2 = min(w, int(np.ceil(box.x2))), min(h, int(np.ceil(box.y2)))
    if x2 - x1 < 2 or y2 - y1 < 2:
        return None
    grey = cv2.cvtColor(np.ascontiguousarray(rgb[y1:y2, x1:x2]), cv2.COLOR_RGB2GRAY)
    small = cv2.resize(grey, (SIDE, SIDE), interpolation=cv2.INTER_AREA).astype(np.float32).ravel()
    small -= small.mean()
    norm = float(np.linalg.norm(small))
    return small / norm if norm > 1e-3 else None
