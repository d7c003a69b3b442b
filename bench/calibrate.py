"""Calibrate the match threshold and the confidence curve on LFW View 1 (pairsDevTrain.txt).

    python bench/calibrate.py --data ../shared/data/lfw [--far 0.001] [--flip]

Uses every image of ``pairsDevTrain.txt``: genuine pairs are all pairs of images of the
same person, impostor pairs all pairs of different people (far more than the file's 1,100,
so a 0.1% false-accept rate is measured on ~10^6 comparisons). Prints the threshold for
the requested false-accept rate, the true-accept rate there, and a Platt fit of
P(same | similarity) on the file's own balanced pairs; then checks both on pairsDevTest.txt.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from facegate.vision.engine import EngineConfig, FaceEngine
from lfw_protocol import embed_lfw_images, read_pairs


def platt_fit(scores: np.ndarray, labels: np.ndarray, iters: int = 100) -> tuple[float, float]:
    """Logistic regression of labels on scores (Newton's method): P = 1 / (1 + exp(-(a s + b)))."""
    a, b = 1.0, 0.0
    x = np.stack([scores, np.ones_like(scores)], axis=1)
    for _ in range(iters):
        p = 1 / (1 + np.exp(-(x @ np.array([a, b]))))
        grad = x.T @ (p - labels)
        hess = x.T @ (x * (p * (1 - p))[:, None]) + 1e-9 * np.eye(2)
        step = np.linalg.solve(hess, grad)
        a, b = a - step[0], b - step[1]
        if np.abs(step).max() < 1e-10:
            break
    return float(a), float(b)


def all_pair_scores(vectors: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Similarities of all genuine and all impostor pairs among the given vectors."""
    sims = vectors @ vectors.T
    iu = np.triu_indices(len(vectors), k=1)
    same = labels[iu[0]] == labels[iu[1]]
    values = sims[iu]
    return values[same], values[~same]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path("../shared/data/lfw"))
    ap.add_argument("--far", type=float, default=0.001)
    ap.add_argument("--flip", action="store_true")
    args = ap.parse_args()

    engine = FaceEngine(EngineConfig())
    results = {}
    for split in ("pairsDevTrain.txt", "pairsDevTest.txt"):
        pairs = read_pairs(args.data / split)
        files = sorted({f for p in pairs for f in (p.a, p.b)})
        data = embed_lfw_images(engine, args.data, files, progress=False)
        vectors = data.flipped if args.flip else data.plain
        labels = np.array([name for name, _ in files])
        genuine, impostor = all_pair_scores(vectors, labels)
        pair_scores = np.array([vectors[data.index[p.a]] @ vectors[data.index[p.b]] for p in pairs])
        pair_same = np.array([p.same for p in pairs], dtype=float)
        results[split] = (genuine, impostor, pair_scores, pair_same, len(data.no_face))

    genuine, impostor, pair_scores, pair_same, no_face = results["pairsDevTrain.txt"]
    threshold = float(np.quantile(impostor, 1 - args.far))
    slope, intercept = platt_fit(pair_scores, pair_same)
    print(f"train: genuine={len(genuine)} impostor={len(impostor)} no_face={no_face}")
    print(
        f"train: threshold={threshold:.4f} far={np.mean(impostor >= threshold):.5f} "
        f"tar={np.mean(genuine >= threshold):.4f}"
    )
    for far in (0.01, 0.001, 0.0001):
        t = float(np.quantile(impostor, 1 - far))
        print(f"  far={far:<7} threshold={t:.4f} tar={np.mean(genuine >= t):.4f}")
    print(
        f"platt: slope={slope:.4f} intercept={intercept:.4f} "
        f"confidence_at_threshold={1 / (1 + np.exp(-(slope * threshold + intercept))):.4f}"
    )
    genuine, impostor, pair_scores, pair_same, _ = results["pairsDevTest.txt"]
    probs = 1 / (1 + np.exp(-(slope * pair_scores + intercept)))
    for lo, hi in ((0.0, 0.1), (0.1, 0.5), (0.5, 0.9), (0.9, 1.01)):
        sel = (probs >= lo) & (probs < hi)
        if sel.any():
            print(
                f"  test confidence {lo:.1f}-{hi:.1f}: n={sel.sum():4d} mean={probs[sel].mean():.3f} "
                f"observed_same={pair_same[sel].mean():.3f}"
            )
    print(
        f"match_threshold={threshold:.4f} test_far={np.mean(impostor >= threshold):.5f} "
        f"test_tar={np.mean(genuine >= threshold):.4f} slope={slope:.4f} intercept={intercept:.4f}"
    )


if __name__ == "__main__":
    main()
