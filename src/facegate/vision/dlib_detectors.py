"""dlib's face detectors: HOG (fast, frontal) and MMOD CNN (accurate, slow; for enrolment)."""

from __future__ import annotations

import math
import threading

import cv2
import numpy as np

from facegate.vision.detection import to_detections, weighted_nms
from facegate.vision.models import dlib_model_path, require_module
from facegate.vision.types import Detection

# dlib's detectors find faces from ~80 px (HOG) / ~60 px (MMOD) up: small photos are
# upsampled, huge ones downscaled to the detector's working size.
_SMALL_SIDE = 500


def _working_scale(image: np.ndarray, thorough: bool, work_side: int) -> float:
    long_side = max(image.shape[:2])
    if long_side > work_side:
        return work_side / long_side
    if long_side < _SMALL_SIDE or thorough:
        return 2.0 if long_side * 2 <= work_side else 1.0
    return 1.0


def _rescale(image: np.ndarray, scale: float) -> np.ndarray:
    if scale == 1.0:
        return image
    h, w = image.shape[:2]
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)


def _squash(score: float) -> float:
    """Map a raw dlib detector score (an SVM margin, about -0.5..3) into [0, 1]."""
    return 1.0 / (1.0 + math.exp(-2.0 * score))


class _DlibDetector:
    name = "dlib"
    work_side = 2000  # longest side the detector runs at

    def __init__(self, iou_threshold: float = 0.3) -> None:
        self.dlib = require_module("dlib")
        self.iou_threshold = iou_threshold
        self._lock = threading.Lock()

    def _raw(self, image: np.ndarray) -> list[tuple[tuple[int, int, int, int], float]]:
        raise NotImplementedError

    def detect(self, image: np.ndarray, *, thorough: bool = False) -> list[Detection]:
        """Faces in an RGB uint8 image, best first (boxes in the image's pixels)."""
        h, w = image.shape[:2]
        scale = _working_scale(image, thorough, self.work_side)
        work = np.ascontiguousarray(_rescale(image, scale))
        with self._lock:
            raw = self._raw(work)
        if not raw:
            return []
        boxes = np.array([r[0] for r in raw], np.float64) / scale
        scores = np.array([_squash(r[1]) for r in raw])
        boxes, scores, _ = weighted_nms(boxes, scores, None, self.iou_threshold)
        return to_detections(boxes, scores, None, w, h)


class DlibHogDetector(_DlibDetector):
    """dlib's HOG + linear SVM frontal face detector (what face_recognition uses by default)."""

    name = "hog"

    def __init__(self, iou_threshold: float = 0.3) -> None:
        super().__init__(iou_threshold)
        self._detector = self.dlib.get_frontal_face_detector()

    def _raw(self, image):
        rects, scores, _ = self._detector.run(image, 0, 0.0)
        return [((r.left(), r.top(), r.right() + 1, r.bottom() + 1), s) for r, s in zip(rects, scores, strict=True)]


class DlibCnnDetector(_DlibDetector):
    """dlib's MMOD CNN face detector: accurate across poses, ~1 s per frame without BLAS."""

    name = "cnn"
    work_side = 1024  # the CNN costs ~1 s per megapixel in dlib-bin (no BLAS)

    def __init__(self, iou_threshold: float = 0.3) -> None:
        super().__init__(iou_threshold)
        path = dlib_model_path("mmod_human_face_detector.dat")
        self._detector = self.dlib.cnn_face_detection_model_v1(str(path))

    def _raw(self, image):
        out = []
        for d in self._detector(image, 0):
            r = d.rect
            out.append(((r.left(), r.top(), r.right() + 1, r.bottom() + 1), float(d.confidence)))
        return out
