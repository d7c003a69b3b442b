"""A face's look in a few hundred numbers: to notice, without embedding it, that the face in a box changed.

A look is the box's grey pixels at 24x24. Two looks are compared by :func:`same_look`: the middle
18x18 of each is slid over the other, up to 3 pixels (12% of the box) each way, and the best
correlation counts. The detector's boxes jitter by several pixels from frame to frame (BlazeFace sees a
192 px view: one of its pixels is 10 of a 1080p frame), and a whole-box correlation took that jitter for a
new face: on the 1080p crowd clip 83% of one person's consecutive looks (every 3rd frame) scored below
0.8, each one a needless embedding. Matched at the best shift, 40% do.

Measured at the ``tracking.SAME_LOOK`` bar of 0.8 (the slideshow clips at every 3rd and 5th frame, the
crowd and the Hamilton clips): one photo's consecutive looks (zoom and drift included) ≥ 0.86; the cuts
to another person ≤ 0.55; 824 pairs of different people's faces (two faces of one frame, photos of two
people of the slideshows) ≤ 0.77, where the whole-box correlation reached 0.80.
"""

from __future__ import annotations

import cv2
import numpy as np

from facegate.vision.types import Box

SIDE = 24  # a look: the box's grey pixels at SIDE x SIDE
INNER = 18  # the middle INNER x INNER of one look is matched at every shift over the other
_MARGIN = (SIDE - INNER) // 2


def appearance(rgb: np.ndarray, box: Box) -> np.ndarray | None:
    """The box's grey pixels at 24x24 (float32), for :func:`same_look`; None for an empty or flat box."""
    h, w = rgb.shape[:2]
    x1, y1 = max(0, int(box.x1)), max(0, int(box.y1))
    x2, y2 = min(w, int(np.ceil(box.x2))), min(h, int(np.ceil(box.y2)))
    if x2 - x1 < 2 or y2 - y1 < 2:
        return None
    grey = cv2.cvtColor(np.ascontiguousarray(rgb[y1:y2, x1:x2]), cv2.COLOR_RGB2GRAY)
    look = cv2.resize(grey, (SIDE, SIDE), interpolation=cv2.INTER_AREA).astype(np.float32)
    if float(look[_MARGIN:-_MARGIN, _MARGIN:-_MARGIN].std()) < 0.5:  # no pattern to correlate
        return None
    return look


def same_look(a: np.ndarray, b: np.ndarray) -> float:
    """How alike two looks are: their correlation (-1..1) at the best shift of up to 3 pixels either way."""
    inner = slice(_MARGIN, SIDE - _MARGIN)
    best = max(
        float(cv2.matchTemplate(a, b[inner, inner], cv2.TM_CCOEFF_NORMED).max()),
        float(cv2.matchTemplate(b, a[inner, inner], cv2.TM_CCOEFF_NORMED).max()),
    )
    return best if np.isfinite(best) else 0.0
