"""Open-set identification on LFW: strangers named (FPIR), people named (TPIR), wrong names, calibration.

    python bench/openset_data.py     # once (~15 min on 2 cores): LFW embedded under each condition
    python bench/openset.py [--data ../shared/data/lfw] [--fpir 0.01] [--draws 1.0]

Protocol. LFW images of ``pairsDevTrain.txt`` (View 1 train, which the calibration is fitted
on) are left out entirely. Galleries of N = 10, 100 and 1000 people are drawn with fixed
seeds (10, 5 and 3 draws) from the people with at least two of the remaining images, with 1
and with up to 3 templates each (one image always stays a probe). Genuine probes are the
enrolled people's other images; strangers are all remaining images of people not enrolled
(at least 3,000 per draw). Probe conditions: original, and degraded (face 40-60 px,
greyscale, Gaussian blur, JPEG quality 30: the same images, re-rendered), plus a
mixed-quality gallery where a third of the templates and of the probes are degraded.

Each probe is decided by facegate's own :class:`DecisionPolicy` (search = exact top-2
people by similarity). "facegate" is the default policy: open set at the target FPIR,
flip-averaged templates (as enrolment makes them), plain probes (as a live frame).
"today" is the decision before the open-set work: plain templates and a fixed pairwise
threshold (0.9266, FAR 0.1% per pair).

Prints, for each policy, one line of ``key=value`` (rates as fractions):
``openset_fpir_max``/``_min`` (worst and best FPIR over every N, T and condition),
``openset_tpir_n{10,100,1000}_t3`` (original probes, up to 3 templates),
``openset_tpir_degraded_n100_t3`` (mean over the four degraded conditions),
``openset_wrong_name_max`` (worst share of genuine probes given another enrolled person's name),
``openset_ece`` (expected calibration error of the confidence as P(the best person is the
face's person), 10 bins, enrolled and strangers weighted equally, over every draw),
``lfw_view2_acc_default`` (View 2, 10 folds, with the policy's templates and probes).
``--detail`` prints every cell. ``--same-flaw`` prints only cells where templates and probes
share a flaw (both blurred, ...: a poor camera at enrolment and at the door), and
``--without-quality-classes`` counts every face as ``ok`` (what the quality classes buy).
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

import numpy as np

from facegate.gallery.decision import MATCH_THRESHOLD, Candidate, DecisionPolicy
from facegate.gallery.openset import GalleryShape
from lfw import ten_fold_accuracy
from lfw_protocol import read_pairs
from openset_data import DEGRADED
from openset_sim import Faces, draw_gallery, load_faces, quality_of, top_two

SIZES = {10: 10, 100: 5, 1000: 3}  # N: draws
# --same-flaw: templates and probes with the same flaw (a blurred camera at enrolment and at the door)
SAME_FLAW = tuple(f"{c}+{c}" for c in DEGRADED)
TEMPLATES = (1, 3)


def decide_all(policy: DecisionPolicy, faces: Faces, draw, probes: np.ndarray, flip_templates: bool):
    """The policy's decision for each probe: (named gallery index or -1, confidence, best index)."""
    pair_shift = policy.openset.pair_shift if policy.open_set else None
    s1, s2, who = top_two(faces, draw, probes, pair_shift, flip_templates=flip_templates)
    # similarities come shifted for their pairs of quality classes, as the gallery search gives them
    shape = GalleryShape(*draw.shape)
    named = np.full(len(probes), -1)
    confidence = np.zeros(len(probes))
    for i, row in enumerate(probes):
        candidates = [Candidate(str(who[i]), "best", float(s1[i]), shift=0.0)]
        if s2[i] > -2.0:
            candidates.append(Candidate("second", "second", float(s2[i]), shift=0.0))
        quality = quality_of(faces.quality[row], faces.quality_fields)
        decision = policy.decide(candidates, shape=shape, quality=quality)
        confidence[i] = decision.confidence
        if decision.is_match:
            named[i] = who[i]
    return named, confidence, who


def expected_calibration_error(conf: np.ndarray, correct: np.ndarray, weight: np.ndarray, bins: int = 10) -> float:
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(conf, edges) - 1, 0, bins - 1)
    total = weight.sum()
    ece = 0.0
    for b in range(bins):
        m = which == b
        if m.any():
            w = weight[m].sum()
            ece += w / total * abs(np.average(conf[m], weights=weight[m]) - np.average(correct[m], weights=weight[m]))
    return float(ece)


def view2_accuracy(faces: Faces, lfw: Path, flip_templates: bool) -> float:
    pairs = read_pairs(lfw / "pairs.txt")
    rows = np.flatnonzero(faces.condition == "original")
    index = {faces.image[r]: r for r in rows}
    a = np.array([index[f"{p.a[0]}/{p.a[1]}"] for p in pairs])
    b = np.array([index[f"{p.b[0]}/{p.b[1]}"] for p in pairs])
    left = (faces.template if flip_templates else faces.probe)[a]
    scores = np.sum(left * faces.probe[b], axis=1)
    same = np.array([p.same for p in pairs])
    folds = np.array([p.fold for p in pairs])
    return ten_fold_accuracy(scores, same, folds)[0]


def probe_rows_for(faces: Faces, allowed: np.ndarray, condition: str, rng: np.random.Generator) -> np.ndarray:
    """The rows of the allowed images under ``condition`` ("mixed": a third degraded, at random)."""
    if condition != "mixed":
        return allowed[condition]
    base = allowed["original"].copy()
    swap = rng.random(len(base)) < 1 / 3
    pick = rng.integers(0, len(DEGRADED), len(base))
    for k, name in enumerate(DEGRADED):
        m = swap & (pick == k)
        base[m] = allowed[name][m]
    return base


def run(policy: DecisionPolicy, faces: Faces, allowed: dict, eligible: np.ndarray, flip: bool, args) -> dict:
    cells = {}
    ece_parts = []
    for n, draws in SIZES.items():
        for t in TEMPLATES:
            conditions = ("original", *DEGRADED, "mixed") if not args.same_flaw else SAME_FLAW
            for condition in conditions:
                fp = sp = tp = gp = wrong = 0
                for d in range(max(1, round(draws * args.draws))):
                    rng = np.random.default_rng(1000 * n + 10 * t + d)  # the same draws for every policy
                    flaw = condition.partition("+")[0] if "+" in condition else None
                    probes = probe_rows_for(faces, allowed, flaw or condition, rng)
                    draw = draw_gallery(
                        faces,
                        rng,
                        eligible,
                        n,
                        t,
                        template_rows=allowed[flaw or "original"],
                        stranger_rows=probes,
                        probe_rows=probes,
                        degraded_share=1 / 3 if condition == "mixed" else 0.0,
                    )
                    named_s, conf_s, _ = decide_all(policy, faces, draw, draw.strangers, flip)
                    named_g, conf_g, who_g = decide_all(policy, faces, draw, draw.genuine, flip)
                    fp += int((named_s >= 0).sum())
                    sp += len(draw.strangers)
                    tp += int((named_g == draw.genuine_owner).sum())
                    wrong += int(((named_g >= 0) & (named_g != draw.genuine_owner)).sum())
                    gp += len(draw.genuine)
                    ece_parts.append((conf_s, np.zeros(len(conf_s)), np.full(len(conf_s), 0.5 / len(conf_s))))
                    correct_g = (who_g == draw.genuine_owner).astype(float)
                    ece_parts.append((conf_g, correct_g, np.full(len(conf_g), 0.5 / max(1, len(conf_g)))))
                cells[(n, t, condition)] = (fp / sp, tp / gp, wrong / gp, sp, gp)
                if args.detail:
                    print(
                        f"  N={n:<5d} T={t} {condition:9s} fpir={fp / sp:.4f} tpir={tp / gp:.4f} "
                        f"wrong={wrong / gp:.4f} strangers={sp} genuine={gp}",
                        flush=True,
                    )
    conf = np.concatenate([p[0] for p in ece_parts])
    correct = np.concatenate([p[1] for p in ece_parts])
    weight = np.concatenate([p[2] for p in ece_parts])
    return {"cells": cells, "ece": expected_calibration_error(conf, correct, weight)}


def summary(prefix: str, result: dict, view2: float) -> str:
    cells = result["cells"]
    fpirs = [v[0] for v in cells.values()]
    wrong = [v[2] for v in cells.values()]
    degraded = np.mean([cells[(100, 3, c)][1] for c in DEGRADED])
    parts = [
        f"{prefix}openset_fpir_max={max(fpirs):.4f}",
        f"{prefix}openset_fpir_min={min(fpirs):.4f}",
        *(f"{prefix}openset_tpir_n{n}_t3={cells[(n, 3, 'original')][1]:.4f}" for n in SIZES),
        f"{prefix}openset_tpir_degraded_n100_t3={degraded:.4f}",
        f"{prefix}openset_wrong_name_max={max(wrong):.4f}",
        f"{prefix}openset_ece={result['ece']:.4f}",
        f"{prefix}lfw_view2_acc_default={view2:.4f}",
    ]
    return " ".join(parts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path("../shared/data/lfw"))
    ap.add_argument("--cache", type=Path, default=Path(__file__).parent / ".cache")
    ap.add_argument("--fpir", type=float, default=None, help="target FPIR (default: the balanced preset)")
    ap.add_argument("--draws", type=float, default=1.0, help="scale the number of draws per N")
    ap.add_argument("--detail", action="store_true")
    ap.add_argument("--skip-today", action="store_true")
    ap.add_argument(
        "--same-flaw", action="store_true", help="only cells where templates and probes share a flaw (no summary)"
    )
    ap.add_argument(
        "--without-quality-classes", action="store_true", help="ablation: every face and template counted as ok"
    )
    args = ap.parse_args()

    started = time.perf_counter()
    faces = load_faces(args.cache)
    fitted_on = {f"{n}/{i}" for p in read_pairs(args.data / "pairsDevTrain.txt") for n, i in (p.a, p.b)}
    keep = ~np.isin(faces.image, list(fitted_on))
    allowed = {}
    for condition in ("original", *DEGRADED):
        rows = np.flatnonzero(keep & (faces.condition == condition))
        allowed[condition] = rows[np.argsort(faces.image[rows], kind="stable")]
    assert all(np.array_equal(faces.image[allowed[c]], faces.image[allowed["original"]]) for c in DEGRADED)
    counts = defaultdict(int)
    for r in allowed["original"]:
        counts[faces.person[r]] += 1
    eligible = np.array(sorted(p for p, k in counts.items() if k >= 2))
    print(f"# images={len(allowed['original'])} (View 1 train left out) people_with_2plus={len(eligible)}")

    policy = DecisionPolicy.for_model("dlib_resnet_v1", fpir=args.fpir)
    if args.without_quality_classes:
        policy = replace(policy, openset=replace(policy.openset, pair_shift={}))
    policies = [("", policy, True)]
    if not args.skip_today:
        policies.append(("today_", DecisionPolicy(threshold=MATCH_THRESHOLD, fixed=True), False))
    lines = []
    for prefix, policy, flip in policies:
        print(f"# {prefix or 'facegate_'}: fpir target {policy.fpir if policy.open_set else 'none (fixed threshold)'}")
        result = run(policy, faces, allowed, eligible, flip, args)
        if not args.same_flaw:
            lines.append(summary(prefix, result, view2_accuracy(faces, args.data, flip)))
    print(f"# {time.perf_counter() - started:.0f} s")
    for line in lines:
        print(line)


if __name__ == "__main__":
    main()
