"""The detector interface and helpers shared by every detector (NMS, box scaling)."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from facegate.vision.types import Box, Detection


@runtime_checkable
class FaceDetector(Protocol):
    """Finds faces in an RGB uint8 image. ``thorough`` trades speed for recall."""

    name: str

    def detect(self, image: np.ndarray, *, thorough: bool = False) -> list[Detection]: ...


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of (N, 4) and (M, 4) xyxy boxes."""
    ix1 = np.maximum(a[:, None, 0], b[None, :, 0])
    iy1 = np.maximum(a[:, None, 1], b[None, :, 1])
    ix2 = np.minimum(a[:, None, 2], b[None, :, 2])
    iy2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(ix2 - ix1, 0, None) * np.clip(iy2 - iy1, 0, None)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-9), 0.0)


def weighted_nms(
    boxes: np.ndarray, scores: np.ndarray, keypoints: np.ndarray | None, iou_threshold: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """MediaPipe-style weighted NMS: overlapping candidates are averaged by score.

    ``boxes`` (N, 4) xyxy, ``scores`` (N,), ``keypoints`` (N, K, 2) or None.
    """
    order = np.argsort(-scores)
    boxes, scores = boxes[order], scores[order]
    keypoints = keypoints[order] if keypoints is not None else None
    remaining = np.ones(len(scores), dtype=bool)
    out_b, out_s, out_k = [], [], []
    overlaps = iou_matrix(boxes, boxes) if len(boxes) else np.zeros((0, 0))
    for i in range(len(scores)):
        if not remaining[i]:
            continue
        group = remaining & (overlaps[i] >= iou_threshold)
        group[i] = True
        w = scores[group][:, None]
        out_b.append((boxes[group] * w).sum(0) / w.sum())
        out_s.append(scores[i])
        if keypoints is not None:
            out_k.append((keypoints[group] * w[:, :, None]).sum(0) / w.sum())
        remaining &= ~group
    if not out_b:
        empty_k = np.zeros((0, *keypoints.shape[1:])) if keypoints is not None else None
        return np.zeros((0, 4)), np.zeros(0), empty_k
    return np.array(out_b), np.array(out_s), (np.array(out_k) if keypoints is not None else None)


def to_detections(
    boxes: np.ndarray, scores: np.ndarray, keypoints: np.ndarray | None, width: int, height: int
) -> list[Detection]:
    """Clip xyxy boxes to the image and wrap them as Detections, best score first."""
    out = []
    for i in np.argsort(-scores):
        box = Box(*map(float, boxes[i])).clip(width, height)
        if box.width < 2 or box.height < 2:
            continue
        kp = keypoints[i].astype(np.float32) if keypoints is not None else None
        out.append(Detection(box=box, score=float(scores[i]), keypoints=kp))
    return out
