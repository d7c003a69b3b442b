"""Open-set identification: how much evidence a name needs in *this* gallery, at a target FPIR.

The user sets a target false-positive identification rate (FPIR: the share of strangers,
people never enrolled, that get any name) or a preset. A stranger's face is compared with
every template of every enrolled person, so the bar rises with the gallery.

Evidence is measured in decades of the impostor tail: a face-to-template similarity ``s``
has evidence ``e = -log10 FAR(s)``, where ``FAR(s)`` is the share of impostor pairs (two
different people) at least as similar, measured on LFW View 1. By construction a stranger's
evidence against one template is exponential: ``P(e >= x) = 10**-x``, so a stranger compared
with N people of T templates each reaches ``x`` with probability about ``N * T * 10**-x``, and
the bar for a target FPIR is ``-log10(per_template_rate(...))`` (:func:`per_template_rate`).

On top of that (:class:`OpenSetCalibration`): one person's templates count as ``T**alpha``
independent comparisons; in large galleries a runner-up above what strangers typically reach
counts against the best (hub faces resemble many people); an offset fitted on simulated View 1
galleries corrects the bar for what independence misses; and a face of a poor quality class
(blurred, small, greyscale, compressed) loses a measured similarity shift against each
template's class, because two faces with the same flaw look alike more easily.

``docs/calibration.md`` documents the model, its measurements and its limits.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from facegate.core.presets import DEFAULT_PRESET, PRESETS, QUALITY_CLASSES, target_fpir
from facegate.vision.types import Quality

__all__ = ["DEFAULT_PRESET", "PRESETS", "QUALITY_CLASSES", "target_fpir"]  # with the classes and functions below


@dataclass(frozen=True)
class EvidenceCurve:
    """Similarity -> evidence (``-log10`` of the share of impostor pairs at least as similar).

    ``similarity`` knots increase, ``evidence`` knots increase with them; above the last
    knot the curve goes on with ``tail_slope`` decades per unit of similarity (an
    exponential tail fitted where the impostor sample thins out).
    """

    similarity: tuple[float, ...]
    evidence: tuple[float, ...]
    tail_slope: float

    def __post_init__(self) -> None:
        if len(self.similarity) != len(self.evidence) or len(self.similarity) < 2:
            raise ValueError("an evidence curve needs matching knots (at least two)")

    def __call__(self, similarity: np.ndarray | float) -> np.ndarray:
        s = np.asarray(similarity, np.float64)
        knots, values = np.asarray(self.similarity), np.asarray(self.evidence)
        inside = np.interp(s, knots, values, left=0.0)
        beyond = values[-1] + self.tail_slope * (s - knots[-1])
        return np.where(s > knots[-1], beyond, np.maximum(inside, 0.0))

    def at(self, similarity: float) -> float:
        """The curve at one similarity (the scalar path of ``__call__``: no arrays per face)."""
        knots, values = self.similarity, self.evidence
        if similarity > knots[-1]:
            return values[-1] + self.tail_slope * (similarity - knots[-1])
        if similarity < knots[0]:
            return 0.0
        return max(0.0, interpolate(similarity, knots, values))

    def similarity_at(self, evidence: float) -> float:
        """The similarity with this much evidence (the inverse of the curve)."""
        knots, values = self.similarity, self.evidence
        if evidence > values[-1]:
            return knots[-1] + (evidence - values[-1]) / self.tail_slope
        return interpolate(evidence, values, knots)


def interpolate(x: float, xs: Sequence[float], ys: Sequence[float]) -> float:
    """Piecewise-linear ``ys`` at ``x`` over increasing ``xs``, held flat outside them (``np.interp`` for one value)."""
    if x <= xs[0]:
        return float(ys[0])
    if x >= xs[-1]:
        return float(ys[-1])
    i = bisect.bisect_right(xs, x)
    x0, x1, y0, y1 = xs[i - 1], xs[i], ys[i - 1], ys[i]
    return float(y0 if x1 == x0 else y0 + (y1 - y0) * (x - x0) / (x1 - x0))


def per_template_rate(fpir: float, people: int, templates_per_person: float) -> float:
    """The share of impostor comparisons that may pass so that ``fpir`` of strangers get a name."""
    people = max(1, people)
    return (1.0 - (1.0 - fpir) ** (1.0 / people)) / max(1.0, templates_per_person)


def evidence_curve_from_scores(impostor: np.ndarray, *, min_tail: int = 200) -> EvidenceCurve:
    """An evidence curve from a sample of impostor similarities (used by the calibration bench).

    Knots every quarter decade while at least ``min_tail`` impostor pairs lie above; the
    tail slope is a least-squares line through the last two decades of knots.
    """
    s = np.sort(np.asarray(impostor, np.float64))[::-1]
    count = len(s)
    knots_s: list[float] = []
    knots_e: list[float] = []
    e = 0.0
    while True:
        rank = int(count * 10.0**-e)
        if rank < min_tail:
            break
        knots_s.append(float(s[rank - 1]))
        knots_e.append(e)
        e += 0.25
    order = np.argsort(knots_s, kind="stable")
    sims, evid = np.asarray(knots_s)[order], np.asarray(knots_e)[order]
    sims, idx = np.unique(sims, return_index=True)
    evid = evid[idx]
    tail = evid >= evid[-1] - 2.0
    slope = float(np.polyfit(sims[tail], evid[tail], 1)[0])
    return EvidenceCurve(tuple(round(float(v), 5) for v in sims), tuple(float(v) for v in evid), round(slope, 3))


_BARS: dict[tuple, float] = {}  # (calibration, fpir, shape) -> bar: the same few galleries ask again and again

# QUALITY_CLASSES: what makes a face's similarities less telling, as measured on LFW View 1
# (bench/calibrate_openset.py): two faces with the same flaw (both blurred...) look alike more easily.


@dataclass(frozen=True)
class QualityClassRules:
    """Where a face falls into a quality class (the first rule that holds, from the worst flaw)."""

    blurry_below: float = 14.0  # sharpness (variance of the Laplacian)
    compressed_above: float = 1.38  # JPEG blockiness
    greyscale_below: float = 4.0  # colour (mean chroma)
    small_below: float = 70.0  # px, the face box's shorter side


def quality_class(quality: Quality | None, rules: QualityClassRules = QualityClassRules()) -> str:
    """The quality class of a face (``ok`` when nothing measured counts against it)."""
    if quality is None:
        return "ok"
    if quality.sharpness < rules.blurry_below:
        return "blurry"
    if quality.blockiness == quality.blockiness and quality.blockiness > rules.compressed_above:
        return "compressed"
    if quality.colour == quality.colour and quality.colour < rules.greyscale_below:
        return "greyscale"
    if quality.size < rules.small_below:
        return "small"
    return "ok"


# probe class -> template class -> similarity to take off before reading evidence (>= 0)
PairShift = dict[str, dict[str, float]]


@dataclass(frozen=True)
class GalleryShape:
    """What a stranger's face is compared with: this many people, this many templates each on average."""

    people: int
    templates_per_person: float = 1.0


@dataclass(frozen=True)
class OpenSetCalibration:
    """The fitted open-set model of one embedding model (see the module docstring).

    ``curve``: evidence of a (probe, template) similarity of two ``ok`` faces; other pairs of
    quality classes first lose ``pair_shift[probe class][template class]`` similarity (a
    search ranks templates by it; without it, the worst over template classes is assumed).
    ``margin_weights``: (log10 N, beta) knots; the score is
    ``e1 - beta(N) * max(e2 - log10(N*T), -bonus_cap)``: how much a runner-up above what
    N x T stranger comparisons typically reach counts against the best (0 in small
    galleries, where it costs more people than it stops strangers), and how little one
    below it counts for the best.
    ``bar_offsets``: for target FPIRs (keys), (log10 N, decades) knots added to the
    independent-strangers bar, fitted on simulated View 1 galleries. ``confidence``: slope and
    intercept of P(correct name) = sigmoid(slope * (score - log10(N*T)) + intercept).
    Wherever T appears it is the effective count, ``T ** template_exponent`` (:meth:`effective`),
    because one person's templates resemble a stranger together, not independently.
    """

    curve: EvidenceCurve
    pair_shift: PairShift
    margin_weights: tuple[tuple[float, float], ...]
    bonus_cap: float  # decades: how far a runner-up below the typical one may raise the score (beta x this)
    bar_offsets: dict[float, tuple[tuple[float, float], ...]]
    confidence: tuple[float, float]
    template_exponent: float = 1.0  # T templates of one person are worth T ** this independent comparisons

    def effective(self, shape: GalleryShape) -> GalleryShape:
        """The shape with templates per person counted as independent comparisons (correlated: fewer)."""
        return GalleryShape(shape.people, max(1.0, shape.templates_per_person) ** self.template_exponent)

    def worst_shift(self, probe_class: str) -> float:
        """The shift of a face of this class against the template class that resembles it most."""
        return max(self.pair_shift.get(probe_class, {}).values(), default=0.0)

    def candidate_evidence(self, similarity: float, shift: float | None, probe_class: str = "ok") -> float:
        """Evidence of a candidate's similarity, less its pair's shift (or the face class's worst)."""
        return self.curve.at(similarity - (self.worst_shift(probe_class) if shift is None else shift))

    def score(self, best: float, runner_up: float | None, shape: GalleryShape) -> float:
        """The decision score (decades) from the best and the next person's evidence."""
        if runner_up is None or shape.people < 2:
            return best
        expected = math.log10(shape.people * max(1.0, shape.templates_per_person))
        return best - self.margin_weight(shape.people) * max(runner_up - expected, -self.bonus_cap)

    def margin_weight(self, people: int) -> float:
        """How much the runner-up counts in a gallery of this many people."""
        knots = self.margin_weights
        return interpolate(math.log10(max(1, people)), [k for k, _ in knots], [v for _, v in knots])

    def bar(self, fpir: float, shape: GalleryShape) -> float:
        """The score a name needs in a gallery of this shape for ``fpir`` of strangers to get one."""
        key = (id(self), fpir, shape)
        found = _BARS.get(key)
        if found is None:
            base = -math.log10(per_template_rate(fpir, shape.people, shape.templates_per_person))
            found = base + self._offset(fpir, shape.people)
            if len(_BARS) > 4096:
                _BARS.clear()
            _BARS[key] = found
        return found

    def _offset(self, fpir: float, people: int) -> float:
        levels = sorted(self.bar_offsets)
        x = math.log10(max(1, people))

        def at(level: float) -> float:
            knots = self.bar_offsets[level]
            return float(np.interp(x, [k for k, _ in knots], [v for _, v in knots]))

        if fpir <= levels[0]:  # stricter targets keep the offset of the strictest level fitted (higher bar)
            return at(levels[0])
        if fpir >= levels[-1]:
            return at(levels[-1])
        hi = next(i for i, level in enumerate(levels) if level >= fpir)
        lo = hi - 1
        w = (math.log10(fpir) - math.log10(levels[lo])) / (math.log10(levels[hi]) - math.log10(levels[lo]))
        return (1 - w) * at(levels[lo]) + w * at(levels[hi])

    def probability_correct(self, score: float, shape: GalleryShape) -> float:
        """Calibrated P(the best person is the face's person), for an even mix of enrolled and strangers.

        Read against how far the score lies above what the best of N x T stranger comparisons
        typically reaches (``log10(N * T)`` decades), so one curve serves every gallery size.
        """
        slope, intercept = self.confidence
        z = slope * (score - math.log10(max(1, shape.people) * max(1.0, shape.templates_per_person))) + intercept
        return 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, z))))

    def similarity_bar(self, fpir: float, shape: GalleryShape) -> float:
        """The similarity an ``ok`` face needs with a typical runner-up (for display and track fusion)."""
        return self.curve.similarity_at(self.bar(fpir, shape))
