"""dlib 5-point landmarks and the dlib-style aligned 150x150 face chip."""

from __future__ import annotations

import threading

import numpy as np

from facegate.vision.models import dlib_model_path, require_module
from facegate.vision.types import Box, Detection

CHIP_SIZE = 150
CHIP_PADDING = 0.25

# BlazeFace boxes are tighter and sit higher than the dlib HOG boxes the 5-point model
# was trained on. This maps a BlazeFace box to a HOG-like box (centre shift and scale,
# relative to the box size); fitted by bench/fit_box_mapping.py on LFW View 1 images.
BLAZEFACE_TO_DLIB = {"dx": -0.0169, "dy": 0.0011, "scale": 0.9516}


def dlib_like_box(detection: Detection, detector_name: str) -> Box:
    """The box to hand the shape predictor: the detector's own box, or a mapped one."""
    box = detection.box
    if detector_name != "blazeface":
        return box
    cx, cy = box.center
    size = (box.width + box.height) / 2
    cx += BLAZEFACE_TO_DLIB["dx"] * size
    cy += BLAZEFACE_TO_DLIB["dy"] * size
    half = size * BLAZEFACE_TO_DLIB["scale"] / 2
    return Box(cx - half, cy - half, cx + half, cy + half)


class LandmarkAligner:
    """Finds dlib's 5 landmarks in a face box and cuts the aligned chip the ResNet expects."""

    def __init__(self) -> None:
        self.dlib = require_module("dlib")
        self._predictor = self.dlib.shape_predictor(str(dlib_model_path("shape_predictor_5_face_landmarks.dat")))
        self._lock = threading.Lock()

    def shape(self, image: np.ndarray, box: Box):
        """dlib's full_object_detection (5 parts) for a face box in an RGB image."""
        rect = self.dlib.rectangle(round(box.x1), round(box.y1), round(box.x2) - 1, round(box.y2) - 1)
        with self._lock:
            return self._predictor(image, rect)

    @staticmethod
    def points(shape) -> np.ndarray:
        """The 5 landmark points as a (5, 2) float32 array (x, y)."""
        return np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float32)

    def chips(self, image: np.ndarray, shapes: list) -> list[np.ndarray]:
        """Aligned 150x150 RGB chips (dlib.get_face_chip, padding 0.25) for the given shapes."""
        if not shapes:
            return []
        return [np.asarray(self.dlib.get_face_chip(image, s, size=CHIP_SIZE, padding=CHIP_PADDING)) for s in shapes]
