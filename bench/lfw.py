"""LFW View 2 verification accuracy: 10 folds, threshold chosen on the other 9 folds.

    python bench/lfw.py --data ../shared/data/lfw [--detector blazeface|hog|cnn] [--flip]

Scores are cosine similarities of the unit-length descriptors. Images where the detector
finds no face use the median face box of the other images (reported as ``no_face``).
Prints both the plain and the flip-averaged results; the last line is for the option
chosen with ``--flip``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from facegate.vision.engine import EngineConfig, FaceEngine
from lfw_protocol import embed_lfw_images, jittered_descriptors, read_pairs


def ten_fold_accuracy(scores: np.ndarray, same: np.ndarray, folds: np.ndarray) -> tuple[float, float, float]:
    """Mean and std of per-fold accuracy (threshold from the other folds), and the mean threshold."""
    accs, thresholds = [], []
    for k in np.unique(folds):
        train, test = folds != k, folds == k
        candidates = np.unique(scores[train])
        best_t, best_acc = 0.0, -1.0
        for t in np.concatenate([(candidates[:-1] + candidates[1:]) / 2, candidates[-1:] + 1e-6]):
            acc = np.mean((scores[train] >= t) == same[train])
            if acc > best_acc:
                best_t, best_acc = t, acc
        thresholds.append(best_t)
        accs.append(np.mean((scores[test] >= best_t) == same[test]))
    return float(np.mean(accs)), float(np.std(accs)), float(np.mean(thresholds))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path("../shared/data/lfw"))
    ap.add_argument("--detector", default="blazeface", choices=["blazeface", "hog", "cnn"])
    ap.add_argument("--flip", action="store_true", help="report the flip-averaged descriptor last")
    ap.add_argument("--jitter", type=int, default=0, help="also measure dlib-style num_jitters=N (slow)")
    args = ap.parse_args()

    pairs = read_pairs(args.data / "pairs.txt")
    files = sorted({f for p in pairs for f in (p.a, p.b)})
    engine = FaceEngine(EngineConfig(detector=args.detector))
    t0 = time.perf_counter()
    data = embed_lfw_images(engine, args.data, files)
    elapsed = time.perf_counter() - t0
    ia = np.array([data.index[p.a] for p in pairs])
    ib = np.array([data.index[p.b] for p in pairs])
    same = np.array([p.same for p in pairs])
    folds = np.array([p.fold for p in pairs])
    print(f"pairs={len(pairs)} images={len(files)} detector={args.detector} seconds={elapsed:.0f}")
    print(
        f"no face found in {len(data.no_face)} images (median face box used): "
        + ", ".join(f"{n}_{i:04d}" for n, i in data.no_face[:50])
    )
    results = {}
    variants = [("plain", data.plain), ("flip", data.flipped)]
    if args.jitter:
        variants.append((f"jitter{args.jitter}", jittered_descriptors(engine, data.chips, args.jitter)))
    for label, vectors in variants:
        scores = np.sum(vectors[ia] * vectors[ib], axis=1)
        results[label] = ten_fold_accuracy(scores, same, folds)
        acc, std, thr = results[label]
        print(f"{label:8s} acc={acc:.4f} std={std:.4f} mean_threshold_cos={thr:.4f}")
    acc, std, _ = results["flip" if args.flip else "plain"]
    print(f"lfw_view2_acc={acc:.4f} lfw_view2_std={std:.4f} no_face={len(data.no_face)}")


if __name__ == "__main__":
    main()
