"""The stream tier: track faces across frames and fuse each track's decisions into one.

Pure and typed (no I/O, no clock): cameras and the browser stream feed frames through the
service's pipeline, which calls :class:`IouTracker` and :class:`TrackFusion`.
"""

from facegate.stream.fusion import TrackFusion, update_kind
from facegate.stream.tracker import IouTracker
from facegate.stream.types import (
    FusedDecision,
    FusionConfig,
    Track,
    TrackedFace,
    TrackerConfig,
    TrackStep,
    TrackUpdate,
)

__all__ = [
    "FusedDecision",
    "FusionConfig",
    "IouTracker",
    "Track",
    "TrackFusion",
    "TrackStep",
    "TrackUpdate",
    "TrackedFace",
    "TrackerConfig",
    "update_kind",
]
