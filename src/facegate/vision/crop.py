"""A face cut out of a frame with a margin, for pictures (event snapshots, thumbnails)."""

from __future__ import annotations

import cv2
import numpy as np

from facegate.vision.types import Box


def crop_around(rgb: np.ndarray, box: Box, margin: float = 0.3, max_side: int | None = None) -> np.ndarray:
    """The box grown by ``margin`` of its size on each side, clipped to the frame, at most ``max_side`` px."""
    h, w = rgb.shape[:2]
    mx, my = box.width * margin, box.height * margin
    x1, y1 = max(0, int(box.x1 - mx)), max(0, int(box.y1 - my))
    x2, y2 = min(w, int(box.x2 + mx)), min(h, int(box.y2 + my))
    crop = rgb[y1:y2, x1:x2] if x2 - x1 >= 2 and y2 - y1 >= 2 else rgb
    if max_side is not None and max(crop.shape[:2]) > max_side:
        scale = max_side / max(crop.shape[:2])
        crop = cv2.resize(crop, (max(1, int(crop.shape[1] * scale)), max(1, int(crop.shape[0] * scale))))
    return np.ascontiguousarray(crop)
