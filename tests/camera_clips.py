"""A slideshow clip for the camera tests, made here from the committed photos, and its people.

Like ``../shared/data/video/slideshow_lfw3ids_640x480.mp4`` (which needs no copy in the
repository for this): 640x480, 25 fps H.264 with a keyframe every 31 frames, twelve segments of
1.24 s (four of Colin Powell, then Tony Blair, then Hugo Chavez), each photo slowly zooming and
drifting. The clip shows photos the enrolment does not use. Made once per machine (in the temp
folder, keyed by a hash of its recipe), in about a second.
"""

from __future__ import annotations

import functools
import hashlib
import io
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from conftest import LFW

WIDTH, HEIGHT, FPS, SEGMENT_FRAMES = 640, 480, 25, 31
# (person, photo shown) per segment; (zoom from, zoom to, drift x, drift y) vary per segment
SHOWN = [
    ("Colin Powell", "Colin_Powell_0001"),
    ("Colin Powell", "Colin_Powell_0004"),
    ("Colin Powell", "Colin_Powell_0001"),
    ("Colin Powell", "Colin_Powell_0004"),
    ("Tony Blair", "Tony_Blair_0001"),
    ("Tony Blair", "Tony_Blair_0003"),
    ("Tony Blair", "Tony_Blair_0001"),
    ("Tony Blair", "Tony_Blair_0003"),
    ("Hugo Chavez", "Hugo_Chavez_0002"),
    ("Hugo Chavez", "Hugo_Chavez_0004"),
    ("Hugo Chavez", "Hugo_Chavez_0002"),
    ("Hugo Chavez", "Hugo_Chavez_0004"),
]
MOTION = [(1.0, 1.1, 20, 0), (1.1, 1.0, -20, 10), (1.05, 1.15, 0, -15), (1.15, 1.05, 15, 15)]
# photos of the same people that the clip does not show
ENROL = {
    "Colin Powell": ["Colin_Powell_0002", "Colin_Powell_0003"],
    "Tony Blair": ["Tony_Blair_0002", "Tony_Blair_0004"],
    "Hugo Chavez": ["Hugo_Chavez_0001", "Hugo_Chavez_0003"],
}


@dataclass(frozen=True)
class Clip:
    path: Path
    frames: int
    fps: int
    timeline: tuple[tuple[float, float, str], ...]  # (start s, end s, person)

    def who(self, t: float) -> str:
        """The person on screen at ``t`` seconds (the clip loops)."""
        t %= self.frames / self.fps
        return next((name for start, end, name in self.timeline if start <= t < end), self.timeline[-1][2])


def photo(stem: str) -> Path:
    return LFW / stem.rsplit("_", 1)[0] / f"{stem}.jpg"


def _frame(picture: Image.Image, zoom: float, dx: float, dy: float) -> np.ndarray:
    side = int(380 * zoom)
    canvas = Image.new("RGB", (WIDTH, HEIGHT), (30, 30, 36))
    scaled = picture.resize((side, side), Image.Resampling.BILINEAR)
    canvas.paste(scaled, (int((WIDTH - side) / 2 + dx), int((HEIGHT - side) / 2 + dy)))
    return np.asarray(canvas)


def frames():
    """Every frame of the clip in order, as (H, W, 3) RGB arrays."""
    for n, (_, stem) in enumerate(SHOWN):
        picture = Image.open(photo(stem)).convert("RGB")
        z0, z1, dx, dy = MOTION[n % len(MOTION)]
        for i in range(SEGMENT_FRAMES):
            f = i / (SEGMENT_FRAMES - 1)
            yield _frame(picture, z0 + (z1 - z0) * f, dx * f, dy * f)


@functools.cache
def slideshow() -> Clip:
    """The clip (made on first use, then reused from the temp folder)."""
    import av

    recipe = repr((WIDTH, HEIGHT, FPS, SEGMENT_FRAMES, SHOWN, MOTION, 1)).encode()
    folder = Path(tempfile.gettempdir()) / "facegate-test-clips"
    folder.mkdir(exist_ok=True)
    path = folder / f"slideshow-{hashlib.sha256(recipe).hexdigest()[:12]}.mp4"
    if not path.exists():
        partial = path.with_suffix(".part.mp4")
        with av.open(str(partial), "w") as out:
            stream = out.add_stream("libx264", rate=FPS, options={"g": str(SEGMENT_FRAMES), "preset": "veryfast"})
            stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
            for rgb in frames():
                for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                    out.mux(packet)
            for packet in stream.encode():
                out.mux(packet)
        partial.replace(path)
    segment_s = SEGMENT_FRAMES / FPS
    timeline = tuple((n * segment_s, (n + 1) * segment_s, name) for n, (name, _) in enumerate(SHOWN))
    return Clip(path, len(SHOWN) * SEGMENT_FRAMES, FPS, timeline)


@functools.cache
def slideshow_jpegs(every: int = 1) -> tuple[bytes, ...]:
    """The clip's frames as JPEGs (for an MJPEG camera)."""
    out = []
    for n, rgb in enumerate(frames()):
        if n % every == 0:
            buf = io.BytesIO()
            Image.fromarray(rgb).save(buf, "JPEG", quality=85)
            out.append(buf.getvalue())
    return tuple(out)


def enrol_clip_people(runtime, collection: str = "default") -> None:
    """Enrol the clip's three people from photos the clip does not show."""
    for name, stems in ENROL.items():
        found = [runtime.enrolment.face_of(photo(s).name, photo(s).read_bytes()) for s in stems]
        runtime.enrolment.enrol(name, found, collection)
