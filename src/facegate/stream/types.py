"""Typed settings and results of the stream tier: tracks, fused per-track decisions, updates."""

from __future__ import annotations

from dataclasses import dataclass

from facegate.core.errors import ConfigError
from facegate.gallery.decision import Decision
from facegate.vision.types import Box

MATCH = "match"
UNKNOWN = "unknown"
PENDING = "pending"

APPEARED = "appeared"
IDENTIFIED = "identified"
CHANGED = "changed"
LOST = "lost"


@dataclass(frozen=True)
class TrackerConfig:
    """How :class:`~facegate.stream.tracker.IouTracker` links detections over frames.

    Detections scoring at least ``high_score`` are matched first and may start tracks;
    those in ``[low_score, high_score)`` only extend unmatched tracks in a second pass
    (ByteTrack); lower ones are ignored. A detection matches a track when their IoU is at
    least ``match_iou``, or else when its centre lies less than ``max_center_distance`` face
    sizes from the track's predicted centre (size: the mean side of both boxes) and their
    sizes differ by at most ``max_size_ratio``. At 5 fps a face can move a whole box width
    between frames, where the IoU is 0 and the centres are 1 size apart: 1.5 keeps such a
    face (a gap of up to half a face between the boxes) while a face 2 sizes away is another.
    The predicted box moves the last box along the track's velocity for at most
    ``max_predict_s`` seconds, so faces crossing paths keep their ids. A track unseen for
    more than ``max_lost_s`` seconds is removed; one hit ``min_hits`` times is confirmed.
    """

    high_score: float = 0.6
    low_score: float = 0.3
    match_iou: float = 0.3
    max_center_distance: float = 1.5
    max_size_ratio: float = 1.5
    max_lost_s: float = 1.0
    min_hits: int = 2
    max_predict_s: float = 0.5

    def __post_init__(self) -> None:
        if not 0.0 <= self.low_score <= self.high_score <= 1.0:
            raise ConfigError(f"tracker scores need 0 <= low_score <= high_score <= 1, got {self}")
        if not 0.0 < self.match_iou <= 1.0:
            raise ConfigError(f"tracker match_iou {self.match_iou} is outside (0, 1]")
        if self.max_center_distance < 0 or self.max_size_ratio < 1.0:
            raise ConfigError("tracker max_center_distance must be >= 0 and max_size_ratio >= 1")
        if self.max_lost_s < 0 or self.max_predict_s < 0 or self.min_hits < 1:
            raise ConfigError("tracker max_lost_s and max_predict_s must be >= 0, min_hits >= 1")


@dataclass(frozen=True)
class Track:
    """A snapshot of one track: its last detected box and score, and how often it was seen.

    ``hits`` counts the frames a detection was matched to it, ``misses`` the frames since
    the last hit; ``first_ts``/``last_ts`` are the timestamps of its first and last hit.
    """

    track_id: int
    box: Box
    score: float
    first_ts: float
    last_ts: float
    hits: int
    misses: int
    confirmed: bool


@dataclass(frozen=True)
class TrackStep:
    """What one tracker update did.

    ``track_ids`` is aligned with the input detections (None: a detection that matched no
    track and could not start one). ``started`` are the tracks created this step,
    ``confirmed`` those that reached ``min_hits`` this step, ``lost`` those removed this
    step (each list in increasing id order).
    """

    track_ids: tuple[int | None, ...]
    started: tuple[int, ...] = ()
    confirmed: tuple[int, ...] = ()
    lost: tuple[int, ...] = ()


@dataclass(frozen=True)
class FusionConfig:
    """How :class:`~facegate.stream.fusion.TrackFusion` turns frame decisions into one per track.

    Each embedded frame adds ``min(area, area_cap) / area_cap × quality × max(0, similarity
    − floor)`` evidence to each of its candidates in a ``match`` frame, where ``floor`` is the
    match threshold minus ``similarity_band``; an ``unknown`` frame adds ``size × quality ×
    similarity_band`` to "nobody", which names no one but dilutes every share. Before each
    frame all evidence is multiplied by ``decay`` (per observation, not per second), so a
    track that consistently shows someone else switches within a few frames.

    A track is ``pending`` until ``min_hits`` frames are embedded; it is a match once its
    best person was named by ``min_hits`` frames and beats the runner-up (a person or
    nobody) by ``tie_margin`` of all evidence. A matched track keeps its person while that
    person stays ahead (hysteresis: one odd frame never flips it). A match of at least
    ``settle_confidence`` whose last frame agreed is settled and embedded only every
    ``reembed_every`` frames; so is a track still unnamed after ``max_attempts`` frames.

    The defaults: with ``decay`` 0.75 a track settled on one person switches to another
    shown consistently on the 5th frame (about 1 s at 5 fps), after 2 frames kept and 2
    ``tie``; ``tie_margin`` 0.4 keeps two people named alternately (2:1 after 3 frames)
    a ``tie``, while a clear person with an impostor a little above the floor still wins.
    """

    min_hits: int = 2
    area_cap: float = 112.0 * 112.0
    similarity_band: float = 0.03
    decay: float = 0.75
    tie_margin: float = 0.4
    settle_confidence: float = 0.9
    max_attempts: int = 10
    reembed_every: int = 10

    def __post_init__(self) -> None:
        if self.min_hits < 1 or self.max_attempts < 1 or self.reembed_every < 1:
            raise ConfigError("fusion min_hits, max_attempts and reembed_every must be >= 1")
        if self.area_cap <= 0 or self.similarity_band <= 0:
            raise ConfigError("fusion area_cap and similarity_band must be > 0")
        if not 0.0 < self.decay <= 1.0:
            raise ConfigError(f"fusion decay {self.decay} is outside (0, 1]")
        if not 0.0 <= self.tie_margin < 1.0 or not 0.0 <= self.settle_confidence <= 1.0:
            raise ConfigError("fusion tie_margin must be in [0, 1) and settle_confidence in [0, 1]")


@dataclass(frozen=True)
class FusedDecision:
    """One track's answer from all its embedded frames.

    ``status`` is ``match`` (``person_id``/``name`` set), ``unknown`` or ``pending`` (too few
    frames yet). ``confidence`` is the weighted mean of the named person's frame confidences
    for a match (never above the best of them), of all frames' confidences otherwise.
    ``hits`` counts embedded frames, ``evidence`` is the best person's share of all evidence,
    ``reason`` says why a track is not a match: ``too_few_hits``, ``tie``, ``no_match``.
    """

    status: str
    person_id: str | None
    name: str | None
    confidence: float
    hits: int
    evidence: float
    reason: str | None = None

    @property
    def is_match(self) -> bool:
        return self.status == MATCH

    @classmethod
    def pending(cls) -> FusedDecision:
        """The answer for a track not embedded yet."""
        return cls(PENDING, None, None, 0.0, 0, 0.0, "too_few_hits")

    def to_dict(self) -> dict:
        return {
            "status": self.status,
            "person_id": self.person_id,
            "name": self.name,
            "confidence": round(self.confidence, 4),
            "hits": self.hits,
            "evidence": round(self.evidence, 4),
            "reason": self.reason,
        }


@dataclass(frozen=True)
class TrackUpdate:
    """An event about a track: ``appeared``, ``identified``, ``changed`` (person) or ``lost``."""

    kind: str
    track_id: int
    ts: float
    person_id: str | None
    name: str | None
    confidence: float
    box: Box

    @classmethod
    def of(cls, kind: str, track_id: int, ts: float, box: Box, fused: FusedDecision | None) -> TrackUpdate:
        """An update carrying the fused decision's person (none when ``fused`` is None or not a match)."""
        if fused is None or not fused.is_match:
            return cls(kind, track_id, ts, None, None, fused.confidence if fused else 0.0, box)
        return cls(kind, track_id, ts, fused.person_id, fused.name, fused.confidence, box)

    def to_dict(self) -> dict:
        return {
            "kind": self.kind,
            "track_id": self.track_id,
            "ts": self.ts,
            "person_id": self.person_id,
            "name": self.name,
            "confidence": round(self.confidence, 4),
            "box": self.box.to_list(),
        }


@dataclass(frozen=True)
class TrackedFace:
    """A face of one frame with its track: the frame's own decision (None when not embedded
    this frame), the track's fused decision, and when the track started (``since``)."""

    track_id: int
    box: Box
    frame_decision: Decision | None
    fused: FusedDecision
    since: float

    def to_dict(self) -> dict:
        return {
            "track_id": self.track_id,
            "box": self.box.to_list(),
            "frame_decision": self.frame_decision.to_dict() if self.frame_decision else None,
            "fused": self.fused.to_dict(),
            "since": self.since,
        }
