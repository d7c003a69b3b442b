"""Reading LFW's pairs files (View 1 dev files and the 10-fold View 2 ``pairs.txt``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Pair:
    a: tuple[str, int]
    b: tuple[str, int]
    same: bool
    fold: int


def read_pairs(path: Path) -> list[Pair]:
    """Parse a pairs file: header line, then 3-field (same) or 4-field (different) lines."""
    lines = path.read_text().split("\n")
    header = lines[0].split()
    folds, per_fold = (int(header[0]), int(header[1])) if len(header) == 2 else (1, int(header[0]))
    pairs: list[Pair] = []
    for line in lines[1:]:
        f = line.split()
        if len(f) == 3:
            pairs.append(Pair((f[0], int(f[1])), (f[0], int(f[2])), True, 0))
        elif len(f) == 4:
            pairs.append(Pair((f[0], int(f[1])), (f[2], int(f[3])), False, 0))
    block = 2 * per_fold
    return [Pair(p.a, p.b, p.same, i // block if folds > 1 else 0) for i, p in enumerate(pairs)]


def image_path(root: Path, name: str, index: int) -> Path:
    """Where LFW keeps image ``index`` (1-based) of a person."""
    for base in (root / "lfw-deepfunneled", root / "lfw", root):
        p = base / name / f"{name}_{index:04d}.jpg"
        if p.exists():
            return p
    return root / name / f"{name}_{index:04d}.jpg"


def pick_central_face(faces: list, width: int, height: int):
    """LFW centres each picture on its subject: the face nearest the centre, larger on ties."""
    cx, cy = width / 2, height / 2

    def cost(face) -> float:
        fx, fy = face.box.center
        return ((fx - cx) ** 2 + (fy - cy) ** 2) ** 0.5 - 0.25 * min(face.box.width, face.box.height)

    return min(faces, key=cost) if faces else None


@dataclass
class EmbeddedSet:
    """Descriptors of LFW images, plain and flip-averaged, and which had no face found."""

    index: dict[tuple[str, int], int]
    plain: object  # np.ndarray (N, 128)
    flipped: object  # np.ndarray (N, 128)
    no_face: list[tuple[str, int]]
    chips: object = None  # np.ndarray (N, 150, 150, 3)


def embed_lfw_images(engine, root: Path, files: list[tuple[str, int]], progress: bool = True) -> EmbeddedSet:
    """Embed the central face of each image; images with no face use the median face box.

    The fallback box is the median of the boxes found in the other images (LFW images
    are aligned by the same funneling, so the face sits at about the same place).
    """
    import numpy as np

    from facegate.vision.embedding import l2_normalize
    from facegate.vision.types import Box

    chips: list = [None] * len(files)
    missing: dict[int, object] = {}  # index -> decoded image, for the fallback pass
    boxes = []
    for i, (name, idx) in enumerate(files):
        img = engine.load(image_path(root, name, idx))
        face = pick_central_face(
            engine.faces_from_boxes(img, engine.detector.detect(img), embed=False, keep_chips=True),
            img.shape[1],
            img.shape[0],
        )
        if face is None:
            missing[i] = img
        else:
            chips[i] = face.chip
            boxes.append(face.box.to_list())
        if progress and i % 500 == 0:
            print(f"  {i}/{len(files)} images", flush=True)
    median = np.median(np.array(boxes), axis=0)
    for i, img in missing.items():
        face = engine.faces_from_boxes(img, [_fallback_detection(Box(*median))], embed=False, keep_chips=True)[0]
        chips[i] = face.chip
    stack = np.stack(chips)
    raw, raw_flip = [], []
    for start in range(0, len(stack), 64):
        batch = stack[start : start + 64]
        raw.append(engine.embedder.embed_raw(batch))
        raw_flip.append(engine.embedder.embed_raw(np.ascontiguousarray(batch[:, :, ::-1])))
    plain_raw, flip_raw = np.concatenate(raw), np.concatenate(raw_flip)
    return EmbeddedSet(
        index={f: i for i, f in enumerate(files)},
        plain=l2_normalize(plain_raw),
        flipped=l2_normalize(plain_raw + flip_raw),
        no_face=[files[i] for i in missing],
        chips=stack,
    )


def _fallback_detection(box):
    from facegate.vision.types import Detection

    return Detection(box=box, score=0.0)


def jittered_descriptors(engine, chips, n: int, seed: int = 0):
    """dlib-style ``num_jitters``: the mean descriptor of ``n`` randomly jittered copies of
    each chip (rotation up to 3 degrees, scale 0.97-0.99 of the object height, 2%
    translation, half of them mirrored), as dlib's ``jitter_image`` does."""
    import cv2
    import numpy as np

    from facegate.vision.embedding import l2_normalize

    rng = np.random.default_rng(seed)
    size = chips.shape[1]
    total = np.zeros((len(chips), engine.embedder.dim), np.float32)
    for _ in range(n):
        batch = np.empty_like(chips)
        for i, chip in enumerate(chips):
            angle = rng.uniform(-3, 3)
            scale = rng.uniform(0.97, 0.99) / 0.98  # relative to the chip's own framing
            shift = rng.uniform(-0.02, 0.02, size=2) * size
            m = cv2.getRotationMatrix2D((size / 2, size / 2), angle, scale)
            m[:, 2] += shift
            out = cv2.warpAffine(chip, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
            batch[i] = out[:, ::-1] if rng.random() < 0.5 else out
        for start in range(0, len(batch), 64):
            total[start : start + 64] += engine.embedder.embed_raw(batch[start : start + 64])
    return l2_normalize(total)
