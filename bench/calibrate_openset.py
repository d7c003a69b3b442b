"""Fit the open-set decision on LFW View 1 only, and write src/facegate/gallery/openset_fit.py.

    python bench/openset_data.py            # once: embeds LFW under each condition into bench/.cache
    python bench/calibrate_openset.py [--cache bench/.cache] [--draws 12] [--write]

Uses only the images of ``pairsDevTrain.txt`` (View 1 train: 3,443 images of 2,132 people),
under all five conditions (original, small, grey, blur, jpeg30):

1. **Evidence curve**: every impostor pair (two different people) of an original probe and
   an original template (flip-averaged) -> -log10 of the share at least as similar.
2. **Quality classes**: for probes of each class (as facegate measures it) against
   templates of each class, the similarity by which their impostor tail sits above the
   curve at FAR 10^-3..10^-4 (the pair's shift).
3. **Bar offsets**: simulated galleries of N = 1..1000 View 1 people (clean, and with a
   third of templates degraded), T = 1 and 3; strangers are all original View 1 faces of
   people not drawn; the offset is how far the (1 - FPIR) quantile of the strangers' score
   sits from the independent-strangers bar, at FPIR 1% and 5%.
4. **Confidence**: P(correct name) against score - log10(N*T), a logistic fit on the same
   simulations with genuine probes (people with two or more images), enrolled and strangers
   weighted equally.

Prints what it fitted; ``--write`` writes the module.
"""

from __future__ import annotations

import argparse
import math
import subprocess
from pathlib import Path

import numpy as np

from facegate.gallery.openset import (
    QUALITY_CLASSES,
    EvidenceCurve,
    GalleryShape,
    OpenSetCalibration,
    PairShift,
    evidence_curve_from_scores,
    per_template_rate,
)
from lfw_protocol import read_pairs
from openset_sim import Faces, draw_gallery, load_faces, top_two

# beta(N) knots (log10 N, beta): chosen on View 1 simulations with the bar set on the strangers
# themselves: at N = 10 any margin cost people (s1 alone named 97.9%, s1 - 0.5 s2 88.8%), at
# N = 100 a little helped (0.3: +0.5 points), at N = 500 much (0.5: +7 points)
MARGIN_WEIGHTS = ((1.0, 0.0), (2.0, 0.25), (3.0, 0.5))
BONUS_CAP = 0.5  # decades
SIZES = (1, 2, 5, 10, 30, 100, 300, 1000)
LEVELS = (0.01, 0.05)
OUT = Path(__file__).resolve().parents[1] / "src" / "facegate" / "gallery" / "openset_fit.py"


def view1_rows(faces: Faces, lfw: Path) -> np.ndarray:
    wanted = {f"{n}/{i}" for p in read_pairs(lfw / "pairsDevTrain.txt") for n, i in (p.a, p.b)}
    return np.flatnonzero(np.isin(faces.image, list(wanted)))


def impostor_scores(faces: Faces, templates: np.ndarray, probes: np.ndarray) -> np.ndarray:
    sims = faces.template[templates] @ faces.probe[probes].T
    other = faces.person[templates][:, None] != faces.person[probes][None, :]
    return sims[other]


def pair_shifts(faces: Faces, rows: np.ndarray, curve: EvidenceCurve, rng: np.random.Generator) -> PairShift:
    """Per (probe class, template class): how much higher (in similarity) their impostor tail lies than the curve."""
    shifts: PairShift = {}
    for probe_class in QUALITY_CLASSES:
        probes = rows[faces.qclass[rows] == probe_class]
        shifts[probe_class] = {}
        for template_class in QUALITY_CLASSES:
            templates = rows[faces.qclass[rows] == template_class]
            if probe_class == template_class == "ok":
                shifts[probe_class][template_class] = 0.0  # the curve itself
                continue
            if len(probes) < 300 or len(templates) < 300:
                print(f"  probe {probe_class:10s} template {template_class:10s}: too few faces; shift 0")
                shifts[probe_class][template_class] = 0.0
                continue
            p = rng.choice(probes, min(len(probes), 6000), replace=False)
            t = rng.choice(templates, min(len(templates), 6000), replace=False)
            imp = impostor_scores(faces, t, p)
            levels = (1e-3, 3e-4, 1e-4)
            gaps = [float(np.quantile(imp, 1 - far)) - curve.similarity_at(-math.log10(far)) for far in levels]
            gap = float(np.mean(gaps))
            print(f"  probe {probe_class:10s} template {template_class:10s} pairs={len(imp):>9d} shift={gap:+.4f}")
            shifts[probe_class][template_class] = round(max(0.0, gap), 4)
    return shifts


def template_exponent(faces: Faces, rows: np.ndarray, curve: EvidenceCurve) -> float:
    """How many independent comparisons a person's T templates are worth to a stranger: T ** alpha.

    View 1 people with 3+ images: the share of strangers whose best of the person's 3 templates
    reaches 2-3.5 decades, over the share one template reaches, is 3 ** alpha.
    """
    original = rows[faces.condition[rows] == "original"]
    people, counts = np.unique(faces.person[original], return_counts=True)
    ratios = []
    for person in people[counts >= 3]:
        own = original[faces.person[original] == person][:3]
        strangers = original[faces.person[original] != person]
        e = curve(faces.probe[strangers] @ faces.template[own].T)  # (strangers, 3)
        ratios.append((e[:, 0], e.max(axis=1)))
    one = np.concatenate([r[0] for r in ratios])
    three = np.concatenate([r[1] for r in ratios])
    levels = np.linspace(2.0, 3.5, 7)
    r = np.mean([np.mean(three >= x) / max(1e-12, np.mean(one >= x)) for x in levels])
    alpha = math.log(r) / math.log(3)
    print(
        f"templates: {int(np.sum(counts >= 3))} people with 3+ images; best of 3 reaches 2-3.5 decades "
        f"{r:.2f}x as often as one template: T_eff = T ** {alpha:.3f}"
    )
    return round(alpha, 3)


def simulate(faces: Faces, rows: np.ndarray, model: OpenSetCalibration, draws: int, seed: int) -> tuple[dict, list]:
    """Stranger score minus the independent bar per (N, level); (score - bar, correct, weight) samples."""
    rng = np.random.default_rng(seed)
    original = rows[faces.condition[rows] == "original"]
    people = np.unique(faces.person[original])
    offsets: dict[tuple[int, float], list[np.ndarray]] = {}
    samples = []
    for n in SIZES:
        for t in (1, 3):
            for d in range(draws if n < 300 else max(2, draws // 2)):
                draw = draw_gallery(
                    faces,
                    rng,
                    people,
                    n,
                    t,
                    template_rows=original,
                    stranger_rows=rows,
                    probe_rows=rows,
                    degraded_share=0.0 if d % 2 == 0 else 1 / 3,
                )
                shape = model.effective(GalleryShape(*draw.shape))
                s1, s2, _ = top_two(faces, draw, draw.strangers, model.pair_shift)
                z = _scores(model, faces, draw.strangers, s1, s2, shape)
                clean = faces.condition[draw.strangers] == "original"  # degraded faces have their shifts
                for level in LEVELS:
                    base = -math.log10(per_template_rate(level, shape.people, shape.templates_per_person))
                    offsets.setdefault((n, level), []).append(z[clean] - base)
                if len(draw.genuine):
                    g1, g2, who = top_two(faces, draw, draw.genuine, model.pair_shift)
                    zg = _scores(model, faces, draw.genuine, g1, g2, shape)
                    bar = math.log10(shape.people * shape.templates_per_person)
                    correct = who == draw.genuine_owner
                    w_g, w_s = 0.5 / len(zg), 0.5 / len(z)
                    samples.append((zg - bar, correct, np.full(len(zg), w_g)))
                    samples.append((z - bar, np.zeros(len(z), bool), np.full(len(z), w_s)))
    table = {}
    for (n, level), parts in offsets.items():
        allz = np.concatenate(parts)
        table[(n, level)] = float(np.quantile(allz, 1 - level))
    return table, samples


def _scores(model, faces, rows, s1, s2, shape) -> np.ndarray:
    e1 = model.curve(s1)
    if shape.people < 2:
        return e1
    e2 = model.curve(s2)
    beta = model.margin_weight(shape.people)
    return e1 - beta * np.maximum(e2 - math.log10(shape.people * shape.templates_per_person), -model.bonus_cap)


def weighted_platt(x: np.ndarray, y: np.ndarray, w: np.ndarray, iters: int = 100) -> tuple[float, float]:
    a, b = 1.0, 0.0
    X = np.stack([x, np.ones_like(x)], axis=1)
    for _ in range(iters):
        p = 1 / (1 + np.exp(-np.clip(X @ np.array([a, b]), -60, 60)))
        grad = X.T @ (w * (p - y))
        hess = X.T @ (X * (w * p * (1 - p))[:, None]) + 1e-9 * np.eye(2)
        step = np.linalg.solve(hess, grad)
        a, b = a - step[0], b - step[1]
        if np.abs(step).max() < 1e-10:
            break
    return float(a), float(b)


def write_module(model: OpenSetCalibration, notes: str) -> None:
    c = model.curve
    offsets = "\n".join(
        f"        {level}: (\n" + "".join(f"            ({x:.3f}, {v:+.3f}),\n" for x, v in knots) + "        ),"
        for level, knots in model.bar_offsets.items()
    )
    similarity = "".join(f"            {v!r},\n" for v in c.similarity)
    evidence = "".join(f"            {v!r},\n" for v in c.evidence)
    shifts = "".join(f"        {k!r}: {v!r},\n" for k, v in model.pair_shift.items())
    OUT.write_text(
        f'''"""The open-set model of the default embedder, as fitted on LFW View 1 (generated; do not edit).

Written by ``python bench/calibrate_openset.py --write``; see that script and
``docs/calibration.md``. {notes}
"""

from facegate.gallery.openset import EvidenceCurve, OpenSetCalibration

OPEN_SET = OpenSetCalibration(
    curve=EvidenceCurve(
        similarity=(
{similarity}        ),
        evidence=(
{evidence}        ),
        tail_slope={c.tail_slope!r},
    ),
    pair_shift={{
{shifts}    }},
    margin_weights={model.margin_weights!r},
    bonus_cap={model.bonus_cap!r},
    bar_offsets={{
{offsets}
    }},
    confidence=({model.confidence[0]:.4f}, {model.confidence[1]:.4f}),
    template_exponent={model.template_exponent!r},
)
'''
    )
    subprocess.run(["ruff", "format", "--quiet", str(OUT)], check=False)  # the project's own style
    print(f"wrote {OUT}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=Path("../shared/data/lfw"))
    ap.add_argument("--cache", type=Path, default=Path(__file__).parent / ".cache")
    ap.add_argument("--draws", type=int, default=12)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--write", action="store_true")
    ap.add_argument("--bonus-cap", type=float, default=BONUS_CAP)
    args = ap.parse_args()

    faces = load_faces(args.cache)
    rows = view1_rows(faces, args.data)
    rng = np.random.default_rng(args.seed)
    original = rows[faces.condition[rows] == "original"]
    imp = impostor_scores(faces, original, original)
    curve = evidence_curve_from_scores(imp)
    print(
        f"curve: {len(imp)} impostor pairs, {len(curve.similarity)} knots, last {curve.similarity[-1]:.4f} "
        f"= {curve.evidence[-1]:.2f} decades, tail {curve.tail_slope:.1f} decades per unit"
    )
    counts = {c: int(np.sum(faces.qclass[rows] == c)) for c in QUALITY_CLASSES}
    print(f"quality classes of the View 1 faces (all conditions): {counts}")
    shifts = pair_shifts(faces, rows, curve, rng)

    alpha = template_exponent(faces, rows, curve)
    no_offsets = {level: ((0.0, 0.0),) for level in LEVELS}
    model = OpenSetCalibration(curve, shifts, MARGIN_WEIGHTS, args.bonus_cap, no_offsets, (1.0, 0.0), alpha)
    table, samples = simulate(faces, rows, model, args.draws, args.seed)
    offsets = {}
    for level in LEVELS:
        knots = tuple((math.log10(n), round(table[(n, level)], 3)) for n in SIZES)
        offsets[level] = knots
        print(f"bar offsets at FPIR {level}: " + " ".join(f"N={n}:{table[(n, level)]:+.3f}" for n in SIZES))
    x = np.concatenate([s[0] for s in samples])
    y = np.concatenate([s[1] for s in samples]).astype(float)
    w = np.concatenate([s[2] for s in samples])
    slope, intercept = weighted_platt(x, y, w)
    print(f"confidence: P(correct) = sigmoid({slope:.3f} * (score - log10(N*T)) + {intercept:.3f})")
    model = OpenSetCalibration(curve, shifts, MARGIN_WEIGHTS, args.bonus_cap, offsets, (slope, intercept), alpha)
    for n in (10, 100, 1000):  # what a name given just above the bar carries (three templates each)
        shape = model.effective(GalleryShape(n, 3.0))
        print(f"confidence at the FPIR 1% bar: N={n} {model.probability_correct(model.bar(0.01, shape), shape):.2f}")
    if args.write:
        write_module(model, f"Fitted with --draws {args.draws} --seed {args.seed}.")


if __name__ == "__main__":
    main()
