"""Face quality: size, sharpness, pose and light, folded into one score with reasons."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from facegate.vision.types import Box, Quality


@dataclass(frozen=True)
class QualityThresholds:
    """Where each factor starts to count against a face (good_* = no penalty)."""

    min_size: float = 40.0  # px, shorter side of the face box; below: score 0
    good_size: float = 100.0
    # variance of the Laplacian of the grey chip's centre; on LFW photos the 5th percentile
    # is 24 and the median 50; a Gaussian blur of sigma 4 brings a face down to ~4
    min_sharpness: float = 6.0
    good_sharpness: float = 22.0
    max_yaw: float = 45.0  # degrees; beyond: score 0
    good_yaw: float = 20.0
    max_pitch: float = 40.0
    good_pitch: float = 20.0
    max_roll: float = 45.0
    good_roll: float = 25.0
    min_brightness: float = 40.0
    good_brightness: float = 80.0
    max_brightness: float = 230.0
    good_max_brightness: float = 190.0


DEFAULT_THRESHOLDS = QualityThresholds()


# Median distance of the nose base below the eye line, in eye distances, on LFW photos.
FRONTAL_NOSE_DROP = 0.77


def _ramp(value: float, bad: float, good: float) -> float:
    """1 at or beyond ``good``, 0 at or beyond ``bad``, linear between (either direction)."""
    if good == bad:
        return 1.0 if value >= good else 0.0
    return float(min(1.0, max(0.0, (value - bad) / (good - bad))))


def pose_from_landmarks(points: np.ndarray) -> tuple[float, float, float]:
    """Rough (yaw, pitch, roll) in degrees from dlib's 5 points.

    dlib's 5 points: 0-1 one eye's corners, 2-3 the other eye's, 4 the base of the nose.
    Yaw is positive when the nose sits toward the image-right eye (the subject looks to
    their left); pitch is the nose's drop below the eye line relative to the frontal
    average (positive: looking down); roll is the tilt of the eye line.
    """
    eye_a = points[0:2].mean(axis=0)
    eye_b = points[2:4].mean(axis=0)
    left, right = (eye_a, eye_b) if eye_a[0] <= eye_b[0] else (eye_b, eye_a)
    axis = right - left
    dist = float(np.hypot(*axis)) or 1.0
    unit = axis / dist
    normal = np.array([-unit[1], unit[0]])
    rel = points[4] - (left + right) / 2
    along = float(rel @ unit) / dist  # -0.5..0.5: nose offset along the eye line
    drop = float(rel @ normal) / dist  # how far below the eye line (frontal ~0.77 on LFW)
    yaw = math.degrees(math.asin(max(-1.0, min(1.0, 2.0 * along))))
    pitch = math.degrees(math.atan2(drop - FRONTAL_NOSE_DROP, 0.9))
    roll = math.degrees(math.atan2(axis[1], axis[0]))
    return yaw, pitch, roll


def chroma(chip: np.ndarray) -> float:
    """Mean colour saturation of the face (distance from grey in CrCb; 0 for a greyscale picture)."""
    import cv2

    ycc = cv2.cvtColor(chip[30:120, 30:120], cv2.COLOR_RGB2YCrCb).astype(np.float32)
    return float(np.hypot(ycc[..., 1] - 128.0, ycc[..., 2] - 128.0).mean())


def blockiness(image: np.ndarray, box: Box) -> float:
    """JPEG block artefacts around a face: mean step across the 8-px grid over the mean step elsewhere.

    Measured on the picture's own pixel grid (where a JPEG's 8x8 blocks lie), in the face
    box; about 1 for an uncompressed or well-compressed face, 1.5 and more at JPEG quality 30.
    """
    h, w = image.shape[:2]
    x1, y1 = max(0, int(box.x1)), max(0, int(box.y1))
    x2, y2 = min(w, int(box.x2)), min(h, int(box.y2))
    if x2 - x1 < 17 or y2 - y1 < 17:
        return float("nan")
    grey = image[y1:y2, x1:x2].astype(np.float32).mean(axis=2)
    ratios = []
    for axis, start in ((1, x1), (0, y1)):
        steps = np.abs(np.diff(grey, axis=axis)).mean(axis=1 - axis)  # step between pixel k and k+1
        on_grid = (np.arange(len(steps)) + start + 1) % 8 == 0
        ratios.append(steps[on_grid].mean() / max(1e-3, steps[~on_grid].mean()))
    return float(np.mean(ratios))


def assess_quality(
    box: Box,
    landmarks: np.ndarray,
    chip: np.ndarray,
    thresholds: QualityThresholds = DEFAULT_THRESHOLDS,
    image: np.ndarray | None = None,
) -> Quality:
    """Score one face; ``reasons`` names each factor that lowered the score.

    ``image`` (the picture the face was found in) adds the JPEG blockiness measure.
    """
    import cv2

    t = thresholds
    size = float(min(box.width, box.height))
    grey = cv2.cvtColor(chip, cv2.COLOR_RGB2GRAY)
    inner = grey[30:120, 30:120]  # the face itself, not the background around it
    sharpness = float(cv2.Laplacian(inner, cv2.CV_64F).var())
    brightness = float(inner.mean())
    yaw, pitch, roll = pose_from_landmarks(landmarks)
    factors = {
        "too_small": _ramp(size, t.min_size, t.good_size),
        "blurry": _ramp(sharpness, t.min_sharpness, t.good_sharpness),
        "turned": _ramp(abs(yaw), t.max_yaw, t.good_yaw),
        "tilted_up_down": _ramp(abs(pitch), t.max_pitch, t.good_pitch),
        "tilted_sideways": _ramp(abs(roll), t.max_roll, t.good_roll),
        "too_dark": _ramp(brightness, t.min_brightness, t.good_brightness),
        "too_bright": _ramp(brightness, t.max_brightness, t.good_max_brightness),
    }
    score = float(np.prod(list(factors.values())))
    reasons = tuple(name for name, value in factors.items() if value < 1.0)
    colour = chroma(chip)
    blocks = blockiness(image, box) if image is not None else float("nan")
    return Quality(score, reasons, size, sharpness, brightness, yaw, pitch, roll, colour, blocks)
