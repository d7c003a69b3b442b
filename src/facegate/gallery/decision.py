"""The one owner of decisions: search candidates -> match or unknown, with a calibrated confidence.

The gallery search only ranks people by similarity (:class:`Candidate`); every confidence
facegate reports — recognise, verify, the stream, the CLI — comes from
:class:`DecisionPolicy`, so the same similarity always gets the same confidence.

The numbers come from ``bench/calibrate.py`` on LFW View 1 (``pairsDevTrain.txt``), with
descriptors from the default engine (BlazeFace, ONNX dlib ResNet), plain or flip-averaged.
See ``docs/calibration.md`` for the measured false-accept and true-accept rates.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from facegate.core.errors import ConfigError


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
    confidence: float  # of the named person when matched; of the best candidate otherwise
    candidates: tuple[ScoredCandidate, ...] = field(default=())

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

    ``threshold`` is on cosine similarity; ``calibration`` maps a similarity to a confidence.
    """

    threshold: float = MATCH_THRESHOLD
    calibration: Calibration = CALIBRATIONS["plain"]

    def __post_init__(self) -> None:
        if not -1.0 <= self.threshold <= 1.0:
            raise ConfigError(f"match threshold {self.threshold} is outside [-1, 1]")

    @classmethod
    def for_model(cls, model_id: str, threshold: float | None = None) -> DecisionPolicy:
        """The calibrated policy of an embedding model, with ``threshold`` when one is set."""
        calibration = calibration_for(model_id)
        return cls(calibration.threshold if threshold is None else threshold, calibration)

    def with_threshold(self, threshold: float | None) -> DecisionPolicy:
        """This policy with another threshold (``None``: unchanged)."""
        return self if threshold is None else replace(self, threshold=threshold)

    def confidence(self, similarity: float) -> float:
        return self.calibration.confidence(similarity)

    def score(self, candidate: Candidate) -> ScoredCandidate:
        s = candidate.similarity
        return ScoredCandidate(candidate.person_id, candidate.name, s, self.confidence(s))

    def decide(self, candidates: list[Candidate], top_k: int = 0) -> Decision:
        """A decision from candidates sorted best first; ``top_k`` of them are kept in it."""
        shown = tuple(self.score(c) for c in candidates[:top_k])
        if not candidates:
            return Decision("unknown", None, None, -1.0, 0.0, shown)
        best = candidates[0]
        confidence = self.confidence(best.similarity)
        if best.similarity >= self.threshold:
            return Decision("match", best.person_id, best.name, best.similarity, confidence, shown)
        return Decision("unknown", None, None, best.similarity, confidence, shown)

    def verify(self, similarity: float) -> Verification:
        """Same person or not, for the similarity of two faces (or a face and a person's best template)."""
        return Verification(similarity >= self.threshold, similarity, self.confidence(similarity), self.threshold)
