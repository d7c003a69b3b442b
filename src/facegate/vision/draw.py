"""Drawing faces on images (kept apart from the data, like supervision's annotators)."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from facegate.vision.types import Box, Face


def draw_faces(image: np.ndarray, faces: list[Face], labels: list[str] | None = None) -> Image.Image:
    """A copy of ``image`` with each face's box, landmarks and optional label drawn."""
    canvas = Image.fromarray(image)
    pen = ImageDraw.Draw(canvas)
    width = max(2, round(max(image.shape[:2]) / 400))
    for i, face in enumerate(faces):
        b = face.box
        pen.rectangle([b.x1, b.y1, b.x2, b.y2], outline=(0, 220, 90), width=width)
        if face.landmarks is not None:
            for x, y in face.landmarks:
                pen.ellipse([x - width, y - width, x + width, y + width], fill=(255, 200, 0))
        label = labels[i] if labels else (f"{face.quality.score:.2f}" if face.quality else "")
        if label:
            pen.text((b.x1 + width, max(0, b.y1 - 12 - width)), label, fill=(0, 220, 90))
    return canvas


Colour = tuple[int, int, int]
MATCH, UNSURE, UNKNOWN = (0, 200, 80), (240, 170, 0), (220, 40, 40)


def confidence_colour(status: str, confidence: float) -> Colour:
    """Green for a confident name, amber for a name under 0.9 confidence or an undecided track, red for unknown."""
    if status == "match":
        return MATCH if confidence >= 0.9 else UNSURE
    return UNSURE if status == "pending" else UNKNOWN


def draw_boxes(image: np.ndarray, boxes: list[tuple[Box, str, Colour]]) -> Image.Image:
    """A copy of ``image`` with each box outlined in its colour and its label on a filled band above it."""
    canvas = Image.fromarray(image)
    pen = ImageDraw.Draw(canvas)
    width = max(2, round(max(image.shape[:2]) / 300))
    for box, label, colour in boxes:
        pen.rectangle([box.x1, box.y1, box.x2, box.y2], outline=colour, width=width)
        if label:
            left, top, right, bottom = pen.textbbox((0, 0), label)
            y = box.y1 - (bottom - top) - 2 * width if box.y1 > bottom - top + 2 * width else box.y2
            pen.rectangle([box.x1, y, box.x1 + right - left + 2 * width, y + bottom - top + 2 * width], fill=colour)
            pen.text((box.x1 + width, y + width - top), label, fill=(255, 255, 255))
    return canvas
