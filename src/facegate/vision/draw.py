"""Drawing faces on images (kept apart from the data, like supervision's annotators)."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from facegate.vision.types import Face


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
