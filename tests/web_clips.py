"""Fake-webcam clips for the browser tests, built from the committed photos.

Chromium plays a Y4M file (raw I420 frames, header ``C420``) as its camera with
``--use-file-for-fake-video-capture``, looping it. A clip is a list of segments; each
segment shows one photo (or nothing) centred on a grey 640x480 canvas for some seconds.
The top-left corner carries a flat grey marker whose level is the segment's index, so a
test can tell from the video frame the page displays which segment is on screen.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

WIDTH, HEIGHT, FPS = 640, 480, 10
MARKER = 48  # px, side of the corner marker
MARKER_STEP = 36  # grey levels between consecutive segment indices
BACKGROUND = (118, 118, 118)


@dataclass(frozen=True)
class Segment:
    """``photo`` (None: an empty scene) shown for ``seconds``; ``name`` is who the page should show."""

    photo: Path | None
    seconds: float
    name: str | None = None  # an enrolled name, "unknown", or None for no face


def marker_level(index: int) -> int:
    return 20 + MARKER_STEP * index


def segment_of_level(level: float) -> int:
    """The segment index a marker's grey level (as read back from the video) stands for."""
    return round((level - 20) / MARKER_STEP)


def frame(photo: Path | None, index: int, scale: float = 1.5) -> np.ndarray:
    """One RGB frame: the photo scaled and centred, and the segment's marker."""
    canvas = Image.new("RGB", (WIDTH, HEIGHT), BACKGROUND)
    if photo is not None:
        image = Image.open(photo).convert("RGB")
        image = image.resize((round(image.width * scale), round(image.height * scale)), Image.LANCZOS)
        canvas.paste(image, ((WIDTH - image.width) // 2, (HEIGHT - image.height) // 2))
    pixels = np.asarray(canvas).copy()
    pixels[:MARKER, :MARKER] = marker_level(index)
    return pixels


def rgb_to_i420(rgb: np.ndarray) -> bytes:
    """BT.601 studio-range Y, U and V planes (U, V subsampled 2x2), as Chromium's Y4M reader expects."""
    r, g, b = (rgb[..., i].astype(np.float32) for i in range(3))
    y = 16 + 0.257 * r + 0.504 * g + 0.098 * b
    u = 128 - 0.148 * r - 0.291 * g + 0.439 * b
    v = 128 + 0.439 * r - 0.368 * g - 0.071 * b

    def sub(plane: np.ndarray) -> np.ndarray:
        return plane.reshape(HEIGHT // 2, 2, WIDTH // 2, 2).mean(axis=(1, 3))

    planes = [y, sub(u), sub(v)]
    return b"".join(np.clip(np.rint(p), 0, 255).astype(np.uint8).tobytes() for p in planes)


def write_clip(path: Path, segments: list[Segment]) -> Path:
    """Write ``segments`` as a Y4M clip at ``FPS`` frames a second; returns ``path``."""
    with path.open("wb") as out:
        out.write(f"YUV4MPEG2 W{WIDTH} H{HEIGHT} F{FPS}:1 Ip A1:1 C420\n".encode())
        for index, segment in enumerate(segments):
            data = rgb_to_i420(frame(segment.photo, index))
            for _ in range(round(segment.seconds * FPS)):
                out.write(b"FRAME\n" + data)
    return path


def two_people(first: Path, second: Path, seconds: float = 4.0) -> list[Segment]:
    """One person's photo, then another person's: guided enrolment must refuse the series. The clip
    loops, so whichever person the capture starts on, the other one follows."""
    return [Segment(first, seconds, first.parent.name), Segment(second, seconds, second.parent.name)]
