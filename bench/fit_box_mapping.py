"""Fit the BlazeFace -> dlib-HOG box mapping used before the 5-point shape predictor.

The 5-point model was trained on dlib HOG boxes; BlazeFace boxes differ in centre and
scale. Runs both detectors on LFW View 1 images, pairs the boxes, and prints the median
centre shift and scale (relative to the BlazeFace box size).

    python bench/fit_box_mapping.py --data ../shared/data/lfw [--limit 600]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from facegate.vision.blazeface import BlazeFaceDetector
from facegate.vision.dlib_detectors import DlibHogDetector
from facegate.vision.image import load_image
from lfw_protocol import image_path, read_pairs


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=Path("../shared/data/lfw"))
    ap.add_argument("--limit", type=int, default=600)
    args = ap.parse_args()
    pairs = read_pairs(args.data / "pairsDevTrain.txt")
    files = sorted({p for pair in pairs for p in (pair.a, pair.b)})[: args.limit]
    blaze, hog = BlazeFaceDetector(), DlibHogDetector()
    rows = []
    for name, idx in files:
        img = load_image(image_path(args.data, name, idx))
        b, h = blaze.detect(img), hog.detect(img)
        if not b or not h:
            continue
        bb = max(b, key=lambda d: d.box.area).box
        hb = max(h, key=lambda d: d.box.area).box
        if bb.iou(hb) < 0.3:
            continue
        size = (bb.width + bb.height) / 2
        (bx, by), (hx, hy) = bb.center, hb.center
        rows.append(((hx - bx) / size, (hy - by) / size, ((hb.width + hb.height) / 2) / size))
    arr = np.array(rows)
    dx, dy, scale = np.median(arr, axis=0)
    spread = np.percentile(arr, [25, 75], axis=0)
    print(f"pairs={len(arr)} iqr_dx={spread[:, 0]} iqr_dy={spread[:, 1]} iqr_scale={spread[:, 2]}")
    print(f"dx={dx:.4f} dy={dy:.4f} scale={scale:.4f}")


if __name__ == "__main__":
    main()
