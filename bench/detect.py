"""Detector recall and false positives on the labelled face sets.

    python bench/detect.py [--faces ../shared/data/faces] [--detectors blazeface,blazeface+tiles,hog,cnn]

Two measures per detector, on the same images in one run:

* single-identity photos (every ``<set>/<person>/`` folder): recall = share of photos in
  which at least one face is found (each shows its person);
* annotated group photos (CompreFace's ``_multi_face`` and ``_no_face``, whose upstream
  annotations give one nose point per face): a detection whose box contains a not yet
  matched nose is a hit, any other detection is a false positive.

Last line: ``<detector>_single_recall=... <detector>_group_recall=... <detector>_group_fp=...``
for each detector.
"""

from __future__ import annotations

import argparse
import ast
import re
import time
from pathlib import Path

from facegate.vision.engine import EngineConfig, FaceEngine
from facegate.vision.image import load_image

SUFFIXES = {".jpg", ".jpeg", ".png"}


def read_nose_annotations(path: Path) -> dict[str, list[tuple[int, int]]]:
    """``{file name: [(x, y) nose, ...]}`` from CompreFace's annotations file (parsed, not run)."""
    text = path.read_text()
    rows = {}
    for match in re.finditer(r"Row\('([^']+)',\s*(\[[^\]]*\])", text):
        rows[match.group(1)] = [tuple(p) for p in ast.literal_eval(match.group(2))]
    return rows


def single_identity_photos(root: Path) -> list[Path]:
    return sorted(
        p
        for p in root.glob("*/*/*")
        if p.suffix.lower() in SUFFIXES and not p.parent.name.startswith("_") and p.parent.parent.name != "lfw"
    )


def group_hits(boxes, noses) -> tuple[int, int]:
    """(hits, false positives) of boxes against nose points, each nose matched once."""
    free = list(noses)
    hits = fps = 0
    for b in boxes:
        inside = [n for n in free if b.x1 <= n[0] <= b.x2 and b.y1 <= n[1] <= b.y2]
        if inside:
            free.remove(inside[0])
            hits += 1
        else:
            fps += 1
    return hits, fps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--faces", type=Path, default=Path("../shared/data/faces"))
    ap.add_argument("--detectors", default="blazeface,blazeface+tiles,hog,cnn")
    args = ap.parse_args()

    singles = single_identity_photos(args.faces)
    comp = args.faces / "compreface"
    annotations = read_nose_annotations(comp / "annotations.upstream.py")
    groups = [
        (p, annotations[p.name])
        for folder in ("_multi_face", "_no_face")
        for p in sorted((comp / folder).glob("*.jpg"))
        if p.name in annotations
    ]
    images = {p: load_image(p) for p in singles + [g for g, _ in groups]}
    faces_in_groups = sum(len(n) for _, n in groups)
    print(
        f"single-identity photos: {len(singles)}; annotated group photos: {len(groups)} with {faces_in_groups} faces",
        flush=True,
    )

    summary = []
    for spec in args.detectors.split(","):
        name, _, mode = spec.partition("+")
        engine = FaceEngine(EngineConfig(detector=name))
        thorough = mode == "tiles"
        t0 = time.perf_counter()
        missed = [p for p in singles if not engine.detector.detect(images[p], thorough=thorough)]
        hits = fps = total = 0
        for path, noses in groups:
            h, f = group_hits([d.box for d in engine.detector.detect(images[path], thorough=thorough)], noses)
            hits, fps, total = hits + h, fps + f, total + len(noses)
        seconds = time.perf_counter() - t0
        recall = 1 - len(missed) / len(singles)
        key = spec.replace("+", "_")
        print(
            f"{spec:16s} single_recall={recall:.3f} ({len(singles) - len(missed)}/{len(singles)}) "
            f"group_recall={hits / total:.3f} ({hits}/{total}) group_fp={fps} seconds={seconds:.1f}",
            flush=True,
        )
        if missed:
            print("   missed: " + ", ".join(str(p.relative_to(args.faces)) for p in missed[:12]))
        summary.append(f"{key}_single_recall={recall:.3f} {key}_group_recall={hits / total:.3f} {key}_group_fp={fps}")
    print(" ".join(summary))


if __name__ == "__main__":
    main()
