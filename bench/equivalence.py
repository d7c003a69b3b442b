"""The ONNX rebuild of dlib's ResNet against dlib's own call: agreement, speed, conversion time.

    python bench/equivalence.py [--faces ../shared/data/faces/lfw_subset10_krasserm]

Aligned chips are cut from every photo of the set (largest face). Both embedders run on
the same chips, one chip at a time, in this process.
Last line: ``cos_min=... max_abs_diff=... onnx_ms=... dlib_ms=... speedup=... convert_s=...``.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np

from facegate.vision.dlib_resnet import build_onnx, parse_dlib_network
from facegate.vision.embedding import RESNET_FILE, DlibEmbedder, OnnxDlibEmbedder
from facegate.vision.engine import FaceEngine
from facegate.vision.models import dlib_model_path


def per_chip_ms(embed, chips: np.ndarray) -> tuple[np.ndarray, float]:
    out, times = [], []
    embed(chips[:1])  # warm
    for chip in chips:
        t = time.perf_counter()
        out.append(embed(chip[None])[0])
        times.append(time.perf_counter() - t)
    return np.array(out), statistics.median(times) * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--faces", type=Path, default=Path("../shared/data/faces/lfw_subset10_krasserm"))
    args = ap.parse_args()
    t = time.perf_counter()
    build_onnx(parse_dlib_network(dlib_model_path(RESNET_FILE).read_bytes()))
    convert_s = time.perf_counter() - t

    engine = FaceEngine()
    chips = []
    for path in sorted(args.faces.glob("*/*.jpg")):
        faces = engine.analyze(path, max_faces=1, embed=False, keep_chips=True)
        if faces:
            chips.append(faces[0].chip)
    chips = np.stack(chips)
    ours, onnx_ms = per_chip_ms(OnnxDlibEmbedder().embed_raw, chips)
    theirs, dlib_ms = per_chip_ms(DlibEmbedder().embed_raw, chips)
    cos = np.sum(ours * theirs, axis=1) / np.linalg.norm(ours, axis=1) / np.linalg.norm(theirs, axis=1)
    print(f"chips={len(chips)} cosine min={cos.min():.8f} mean={cos.mean():.8f}")
    print(
        f"cos_min={cos.min():.7f} max_abs_diff={np.abs(ours - theirs).max():.1e} onnx_ms={onnx_ms:.2f} "
        f"dlib_ms={dlib_ms:.1f} speedup={dlib_ms / onnx_ms:.1f} convert_s={convert_s:.2f}"
    )


if __name__ == "__main__":
    main()
