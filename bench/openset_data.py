"""LFW faces embedded once per probe condition, cached for the open-set bench and calibration.

    python bench/openset_data.py [--data ../shared/data/lfw] [--cache bench/.cache] [--workers 2]

Conditions (each applied to the whole 250x250 LFW picture before detection, with a fixed
seed per image so every run sees the same pixels):

- ``original``: the picture as it is;
- ``small``: scaled down so the face is 40-60 px wide (LFW faces are ~114 px);
- ``grey``: greyscale, three equal channels;
- ``blur``: Gaussian blur, sigma 2 px;
- ``jpeg30``: re-encoded as JPEG at quality 30.

For every image and condition the cache keeps the plain and flip-averaged descriptors of
the central face, and the quality facegate measures on it (score, reasons, size, sharpness,
colour, blockiness, pose). Images where no face is found use the median face box, as
``bench/lfw.py`` does, and are flagged.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import zlib
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

CONDITIONS = ("original", "small", "grey", "blur", "jpeg30")
DEGRADED = ("small", "grey", "blur", "jpeg30")
LFW_FACE_WIDTH = 114.0  # median BlazeFace box width on the 250x250 deep-funneled pictures


def list_images(root: Path) -> list[tuple[str, int]]:
    """Every (person, index) of LFW, in a fixed order."""
    out = []
    for person in sorted(p for p in root.iterdir() if p.is_dir()):
        for f in sorted(person.glob("*.jpg")):
            out.append((person.name, int(f.stem.rsplit("_", 1)[1])))
    return out


def image_seed(name: str, index: int) -> int:
    return zlib.crc32(f"{name}/{index}".encode())


def degrade(image: np.ndarray, condition: str, seed: int) -> np.ndarray:
    """The picture as a worse camera would have taken it (RGB uint8 in and out)."""
    import cv2

    if condition == "original":
        return image
    if condition == "small":
        width = np.random.default_rng(seed).uniform(40.0, 60.0)
        scale = width / LFW_FACE_WIDTH
        size = (max(8, round(image.shape[1] * scale)), max(8, round(image.shape[0] * scale)))
        return cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    if condition == "grey":
        grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
        return np.ascontiguousarray(np.repeat(grey[:, :, None], 3, axis=2))
    if condition == "blur":
        return cv2.GaussianBlur(image, (0, 0), 2.0)
    if condition == "jpeg30":
        import simplejpeg

        data = simplejpeg.encode_jpeg(np.ascontiguousarray(image), quality=30, colorspace="RGB")
        return simplejpeg.decode_jpeg(data, colorspace="RGB")
    raise ValueError(condition)


_ENGINE = None


def _engine():
    global _ENGINE
    if _ENGINE is None:
        from facegate.vision.engine import EngineConfig, FaceEngine

        _ENGINE = FaceEngine(EngineConfig(num_threads=1))
    return _ENGINE


def _central(faces, width: int, height: int):
    sys.path.insert(0, str(Path(__file__).parent))
    from lfw_protocol import pick_central_face

    return pick_central_face(faces, width, height)


QUALITY_FIELDS = ("score", "size", "sharpness", "brightness", "yaw", "pitch", "roll", "colour", "blockiness")


def _quality_row(face) -> list[float]:
    q = face.quality
    return [float(getattr(q, name, np.nan)) for name in QUALITY_FIELDS]


def embed_chunk(args: tuple[Path, str, list[tuple[str, int]]]) -> dict:
    """Chips, descriptors and quality of one chunk of images under one condition."""
    from facegate.vision.detection import Detection
    from facegate.vision.types import Box

    root, condition, files = args
    sys.path.insert(0, str(Path(__file__).parent))
    from lfw_protocol import image_path

    engine = _engine()
    chips, quality, reasons, found = [], [], [], []
    for name, idx in files:
        image = degrade(engine.load(image_path(root, name, idx)), condition, image_seed(name, idx))
        h, w = image.shape[:2]
        faces = engine.faces_from_boxes(image, engine.detector.detect(image), embed=False, keep_chips=True)
        face = _central(faces, w, h)
        if face is None:  # the LFW framing: the face is centred, ~45% of the picture wide
            side = 0.455 * w
            box = Box(w / 2 - side / 2, h / 2 - side / 2 + 0.02 * h, w / 2 + side / 2, h / 2 + side / 2 + 0.02 * h)
            face = engine.faces_from_boxes(image, [Detection(box=box, score=0.0)], embed=False, keep_chips=True)[0]
        found.append(face.det_score > 0)
        chips.append(face.chip)
        quality.append(_quality_row(face))
        reasons.append(",".join(face.quality.reasons))
    stack = np.stack(chips)
    raw = engine.embedder.embed_raw(stack)
    raw_flip = engine.embedder.embed_raw(np.ascontiguousarray(stack[:, :, ::-1]))
    return {"raw": raw, "raw_flip": raw_flip, "quality": np.array(quality), "reasons": reasons, "found": found}


def build(root: Path, cache: Path, condition: str, workers: int) -> Path:
    from facegate.vision.embedding import l2_normalize

    out = cache / f"lfw-{condition}.npz"
    if out.exists():
        return out
    files = list_images(root)
    chunks = [(root, condition, files[i : i + 200]) for i in range(0, len(files), 200)]
    started = time.perf_counter()
    parts = []
    with ProcessPoolExecutor(workers) as pool:
        for i, part in enumerate(pool.map(embed_chunk, chunks)):
            parts.append(part)
            if i % 10 == 0:
                done = f"{200 * (i + 1)}/{len(files)}"
                print(f"  {condition}: {done} ({time.perf_counter() - started:.0f} s)", flush=True)
    raw = np.concatenate([p["raw"] for p in parts])
    raw_flip = np.concatenate([p["raw_flip"] for p in parts])
    cache.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp.npz")
    np.savez_compressed(
        tmp,
        names=np.array([n for n, _ in files]),
        indices=np.array([i for _, i in files]),
        plain=l2_normalize(raw).astype(np.float32),
        flipped=l2_normalize(raw + raw_flip).astype(np.float32),
        quality=np.concatenate([p["quality"] for p in parts]).astype(np.float32),
        quality_fields=np.array(QUALITY_FIELDS),
        reasons=np.array([r for p in parts for r in p["reasons"]]),
        found=np.array([f for p in parts for f in p["found"]]),
    )
    os.replace(tmp, out)
    print(f"  {condition}: {len(files)} images in {time.perf_counter() - started:.0f} s -> {out}", flush=True)
    return out


def load(cache: Path, condition: str) -> dict:
    with np.load(cache / f"lfw-{condition}.npz") as z:
        return {k: z[k] for k in z.files}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path("../shared/data/lfw"))
    ap.add_argument("--cache", type=Path, default=Path(__file__).parent / ".cache")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--conditions", default=",".join(CONDITIONS))
    args = ap.parse_args()
    for condition in args.conditions.split(","):
        build(args.data, args.cache, condition, args.workers)


if __name__ == "__main__":
    main()
