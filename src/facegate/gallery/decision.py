"""The one owner of decisions: search candidates -> match or unknown, with a calibrated confidence.

The gallery search only ranks people by similarity (:class:`Candidate`); every decision
facegate reports — recognise, the stream, cameras, video, the CLI — comes from
:class:`DecisionPolicy`.

Identification is open-set (``facegate.gallery.openset``): the evidence a name needs follows
from the target share of strangers that may get a name (FPIR) and the gallery's size, the
best person must lead the next one, and a face of poor quality needs more. Its confidence is
the calibrated probability that the name is right. Verification of two faces (and a fixed
``threshold``, when one is set) uses the pairwise calibration of ``bench/calibrate.py``.
See ``docs/calibration.md`` for the measurements.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from facegate.core.errors import ConfigError
from facegate.gallery.openset import DEFAULT_PRESET, GalleryShape, OpenSetCalibration, quality_class, target_fpir
from facegate.vision.types import Quality


@dataclass(frozen=True)
class Calibration:
    """A match threshold at a measured false-accept rate, and the similarity -> confidence curve."""

    threshold: float
    slope: float
    intercept: float
    far: float  # on the View 1 train images' impostor pairs
    tar: float

    def confidence(self, similarity: float) -> float:
        """Calibrated probability in [0, 1] that two faces with this cosine similarity are one person."""
        z = self.slope * similarity + self.intercept
        return 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, z))))


# Measured by: python bench/calibrate.py --data ../shared/data/lfw [--flip]
# The threshold is where 0.1% of all impostor pairs of the View 1 train images (5.9 M)
# pass; the confidence is a Platt fit of P(same person) on pairsDevTrain's 2,200 pairs.
# Held out (pairsDevTest): FAR 0.084% / TAR 93.6% plain, FAR 0.081% / TAR 94.1% flip.
CALIBRATIONS = {
    "plain": Calibration(threshold=0.9266, slope=151.07, intercept=-136.69, far=0.001, tar=0.9307),
    "flip": Calibration(threshold=0.9292, slope=166.98, intercept=-151.92, far=0.001, tar=0.9457),
}
MATCH_THRESHOLD = CALIBRATIONS["plain"].threshold


def calibration_for(model_id: str) -> Calibration:
    """The calibration of an embedding model id (flip-averaged descriptors have their own)."""
    return CALIBRATIONS["flip" if model_id.endswith("+flip") else "plain"]


@dataclass(frozen=True)
class Candidate:
    """One enrolled person as the search found them: their best template's similarity."""

    person_id: str
    name: str
    similarity: float
    template_count: int = 1
    # similarity the best template lost for its pair of quality classes (face, template); None: not
    # computed by the search (the decision then assumes the face's worst pair)
    shift: float | None = None


@dataclass(frozen=True)
class ScoredCandidate:
    """A candidate with the policy's confidence that it is the face's person."""

    person_id: str
    name: str
    similarity: float
    confidence: float


@dataclass(frozen=True)
class Decision:
    """What facegate says about one face: ``match`` with a person, or ``unknown``."""

    status: str  # "match" | "unknown"
    person_id: str | None
    name: str | None
    similarity: float
    confidence: float  # P(the named person is right); for an unknown, P(the best candidate would have been)
    candidates: tuple[ScoredCandidate, ...] = field(default=())
    reason: str | None = None  # why unknown: no_match, low_margin, too_small, blurry, turned, ... (None: a match)
    threshold: float | None = None  # the similarity this face's best person needed (this gallery, this face)

    @property
    def is_match(self) -> bool:
        return self.status == "match"

    def to_dict(self) -> dict:
        return {
            "status": self.status,
            "person_id": self.person_id,
            "name": self.name,
            "similarity": round(self.similarity, 4),
            "confidence": round(self.confidence, 4),
            "reason": self.reason,
            "candidates": [
                {
                    "person_id": c.person_id,
                    "name": c.name,
                    "similarity": round(c.similarity, 4),
                    "confidence": round(c.confidence, 4),
                }
                for c in self.candidates
            ],
        }


@dataclass(frozen=True)
class Verification:
    """Two faces (or a face and a person): the same or not, and how sure."""

    same: bool
    similarity: float
    confidence: float
    threshold: float


@dataclass(frozen=True)
class DecisionPolicy:
    """When a best candidate becomes a match, and how confident each answer is.

    Open set (the default): a name needs the evidence of ``openset`` for the target ``fpir``
    in the searched gallery's shape, its lead over the next person, and a face above the
    quality floors. ``threshold`` is the pairwise similarity threshold: verification uses it,
    and identification too when it was set explicitly (``fixed``) or the model has no
    open-set fit (flip-averaged probes).
    """

    threshold: float = MATCH_THRESHOLD
    calibration: Calibration = CALIBRATIONS["plain"]
    openset: OpenSetCalibration | None = None
    fpir: float = 0.01
    fixed: bool = False

    def __post_init__(self) -> None:
        if not -1.0 <= self.threshold <= 1.0:
            raise ConfigError(f"match threshold {self.threshold} is outside [-1, 1]")

    @classmethod
    def for_model(
        cls, model_id: str, threshold: float | None = None, *, preset: str = DEFAULT_PRESET, fpir: float | None = None
    ) -> DecisionPolicy:
        """The calibrated policy of an embedding model; a ``threshold`` fixes identification to it."""
        calibration = calibration_for(model_id)
        openset = openset_for(model_id)
        return cls(
            calibration.threshold if threshold is None else threshold,
            calibration,
            openset,
            target_fpir(preset, fpir),
            fixed=threshold is not None or openset is None,
        )

    def with_threshold(self, threshold: float | None) -> DecisionPolicy:
        """This policy with a fixed similarity threshold (``None``: unchanged)."""
        return self if threshold is None else replace(self, threshold=threshold, fixed=True)

    @property
    def open_set(self) -> bool:
        return self.openset is not None and not self.fixed

    def match_threshold(self, shape: GalleryShape | None = None) -> float:
        """The similarity a good face needs to be named (open set: in a gallery of this shape)."""
        if not self.open_set or shape is None:
            return self.threshold
        assert self.openset is not None
        return self.openset.similarity_bar(self.fpir, self.openset.effective(shape))

    def confidence(self, similarity: float) -> float:
        """Pairwise: P(two faces this similar are one person)."""
        return self.calibration.confidence(similarity)

    def score(self, candidate: Candidate) -> ScoredCandidate:
        s = candidate.similarity
        return ScoredCandidate(candidate.person_id, candidate.name, s, self.confidence(s))

    def decide(
        self,
        candidates: list[Candidate],
        top_k: int = 0,
        *,
        shape: GalleryShape | None = None,
        quality: Quality | None = None,
    ) -> Decision:
        """A decision from candidates sorted best first (at least two when the gallery has them);
        ``top_k`` of them are kept in it. ``shape`` is the searched gallery's; ``quality`` the face's."""
        if not candidates:
            return Decision("unknown", None, None, -1.0, 0.0, (), reason="no_one_enrolled")
        if not self.open_set:
            return self._decide_fixed(candidates, top_k)
        assert self.openset is not None
        model = self.openset
        shape = model.effective(shape or GalleryShape(people=len(candidates), templates_per_person=1.0))
        probe_class = quality_class(quality)
        evidence = [model.candidate_evidence(c.similarity, c.shift, probe_class) for c in candidates[: max(2, top_k)]]
        bar = model.bar(self.fpir, shape)

        def scored(i: int) -> tuple[float, float]:
            others = [e for j, e in enumerate(evidence) if j != i]
            runner_up = max(others) if others else None
            score = model.score(evidence[i], runner_up, shape)
            return score, model.probability_correct(score, shape)

        best = candidates[0]
        score, confidence = scored(0)
        runner_up = evidence[1] if len(evidence) > 1 else None
        needed = bar
        if runner_up is not None:
            needed += model.margin_weight(shape.people) * max(runner_up - _expected(shape), -model.bonus_cap)
        shift = model.worst_shift(probe_class) if best.shift is None else best.shift
        threshold = model.curve.similarity_at(needed) + shift
        shown = tuple(
            ScoredCandidate(c.person_id, c.name, c.similarity, scored(i)[1]) for i, c in enumerate(candidates[:top_k])
        )
        floor = below_floor(quality)
        if floor is None and score >= bar:
            return Decision("match", best.person_id, best.name, best.similarity, confidence, shown, None, threshold)
        reason = floor or self._why_not(best, candidates, evidence, bar, shape, probe_class)
        return Decision("unknown", None, None, best.similarity, confidence, shown, reason, threshold)

    def _why_not(
        self,
        best: Candidate,
        candidates: list[Candidate],
        evidence: list[float],
        bar: float,
        shape: GalleryShape,
        probe_class: str,
    ) -> str:
        assert self.openset is not None
        model = self.openset
        if evidence[0] >= bar:  # enough on its own: the next person is too close
            return "low_margin"
        if probe_class != "ok":  # would a good face this similar have been named?
            plain = [model.curve.at(c.similarity) for c in candidates[:2]]
            if model.score(plain[0], plain[1] if len(plain) > 1 else None, shape) >= bar:
                return CLASS_REASONS[probe_class]
        return "no_match"

    def _decide_fixed(self, candidates: list[Candidate], top_k: int) -> Decision:
        shown = tuple(self.score(c) for c in candidates[:top_k])
        best = candidates[0]
        confidence = self.confidence(best.similarity)
        t = self.threshold
        if best.similarity >= t:
            return Decision("match", best.person_id, best.name, best.similarity, confidence, shown, None, t)
        return Decision("unknown", None, None, best.similarity, confidence, shown, "no_match", t)

    def verify(self, similarity: float) -> Verification:
        """Same person or not, for the similarity of two faces (or a face and a person's best template)."""
        return Verification(similarity >= self.threshold, similarity, self.confidence(similarity), self.threshold)


def _expected(shape: GalleryShape) -> float:
    return math.log10(max(1, shape.people) * max(1.0, shape.templates_per_person))


# the reason an unknown gives when its quality class alone kept it from a name
CLASS_REASONS = {"small": "too_small", "blurry": "blurry", "greyscale": "greyscale", "compressed": "compressed"}


@dataclass(frozen=True)
class QualityFloors:
    """Below these a face is never named, whatever its similarity: "unknown", with the reason."""

    min_size: float = 32.0  # px
    min_sharpness: float = 4.0
    max_yaw: float = 50.0  # degrees
    max_pitch: float = 45.0
    min_brightness: float = 30.0
    max_brightness: float = 240.0


QUALITY_FLOORS = QualityFloors()


def below_floor(quality: Quality | None, floors: QualityFloors = QUALITY_FLOORS) -> str | None:
    """The reason a face is too poor to be named at all, or None."""
    if quality is None:
        return None
    if quality.size < floors.min_size:
        return "too_small"
    if quality.sharpness < floors.min_sharpness:
        return "blurry"
    if abs(quality.yaw) > floors.max_yaw:
        return "turned"
    if abs(quality.pitch) > floors.max_pitch:
        return "tilted_up_down"
    if quality.brightness < floors.min_brightness:
        return "too_dark"
    if quality.brightness > floors.max_brightness:
        return "too_bright"
    return None


def openset_for(model_id: str) -> OpenSetCalibration | None:
    """The open-set fit of an embedding model (plain probes against flip-averaged templates), if any."""
    if model_id.endswith("+flip"):
        return None
    from facegate.gallery.openset_fit import OPEN_SET

    return OPEN_SET
