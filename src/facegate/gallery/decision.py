"""The match/unknown decision: a calibrated threshold and confidence on cosine similarity.

The numbers come from ``bench/calibrate.py`` on LFW View 1 (``pairsDevTrain.txt``), with
descriptors from the default engine (BlazeFace, ONNX dlib ResNet), plain or flip-averaged.
See ``docs/calibration.md`` for the measured false-accept and true-accept rates.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field

from facegate.vision.errors import FacegateError


@dataclass(frozen=True)
class Calibration:
    """A match threshold at a measured false-accept rate, and the similarity -> confidence curve."""

    threshold: float
    slope: float
    intercept: float
    far: float  # on the View 1 train images' impostor pairs
    tar: float


# Measured by: python bench/calibrate.py --data ../shared/data/lfw [--flip]
# The threshold is where 0.1% of all impostor pairs of the View 1 train images (5.9 M)
# pass; the confidence is a Platt fit of P(same person) on pairsDevTrain's 2,200 pairs.
# Held out (pairsDevTest): FAR 0.084% / TAR 93.6% plain, FAR 0.081% / TAR 94.1% flip.
CALIBRATIONS = {
    "plain": Calibration(threshold=0.9266, slope=151.07, intercept=-136.69, far=0.001, tar=0.9307),
    "flip": Calibration(threshold=0.9292, slope=166.98, intercept=-151.92, far=0.001, tar=0.9457),
}
MATCH_THRESHOLD = CALIBRATIONS["plain"].threshold
CONFIDENCE_SLOPE = CALIBRATIONS["plain"].slope
CONFIDENCE_INTERCEPT = CALIBRATIONS["plain"].intercept


def similarity_confidence(
    similarity: float, slope: float = CONFIDENCE_SLOPE, intercept: float = CONFIDENCE_INTERCEPT
) -> float:
    """Calibrated probability in [0, 1] that two faces with this cosine similarity are one person."""
    z = slope * similarity + intercept
    return 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, z))))


@dataclass(frozen=True)
class Candidate:
    """One enrolled person and how well the face matched them (best template)."""

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
    candidates: tuple[Candidate, ...] = field(default=())

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
class MatchPolicy:
    """When a best candidate becomes a match. ``threshold`` is on cosine similarity."""

    threshold: float = MATCH_THRESHOLD
    slope: float = CONFIDENCE_SLOPE
    intercept: float = CONFIDENCE_INTERCEPT

    @classmethod
    def from_env(cls, threshold: float | None = None, flip: bool = False) -> MatchPolicy:
        """The calibrated policy for plain or flip-averaged descriptors, with ``threshold``,
        else ``$FACEGATE_MATCH_THRESHOLD``, else the calibrated threshold."""
        calibration = CALIBRATIONS["flip" if flip else "plain"]
        if threshold is None:
            raw = os.environ.get("FACEGATE_MATCH_THRESHOLD", "").strip()
            try:
                threshold = float(raw) if raw else calibration.threshold
            except ValueError:
                raise FacegateError(f"FACEGATE_MATCH_THRESHOLD={raw!r} is not a number", code="bad_config") from None
        if not -1.0 <= threshold <= 1.0:
            raise FacegateError(f"match threshold {threshold} is outside [-1, 1]", code="bad_config")
        return cls(threshold=threshold, slope=calibration.slope, intercept=calibration.intercept)

    def confidence(self, similarity: float) -> float:
        return similarity_confidence(similarity, self.slope, self.intercept)

    def decide(self, candidates: list[Candidate], top_k: int = 0) -> Decision:
        """A decision from candidates sorted best first; ``top_k`` of them are kept in it."""
        shown = tuple(candidates[:top_k])
        if not candidates:
            return Decision("unknown", None, None, -1.0, 0.0, shown)
        best = candidates[0]
        if best.similarity >= self.threshold:
            return Decision("match", best.person_id, best.name, best.similarity, best.confidence, shown)
        return Decision("unknown", None, None, best.similarity, best.confidence, shown)
