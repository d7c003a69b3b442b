"""Frames of one source, in order -> tracked faces with decisions fused over frames.

One :class:`TrackingSession` per camera (and per browser stream): detect every face, link
detections to tracks (``stream.tracker``), embed only the faces whose track still needs
evidence (``stream.fusion``: a settled track is embedded every k-th frame), decide each
embedded face with the one decision policy, and fuse the decisions per track.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, replace

import numpy as np

from facegate.service.pipeline import FrameOptions, FrameProcessor
from facegate.stream.fusion import TrackFusion, update_kind
from facegate.stream.tracker import IouTracker
from facegate.stream.types import LOST, FusedDecision, FusionConfig, TrackedFace, TrackerConfig, TrackUpdate
from facegate.vision.appearance import appearance, same_look
from facegate.vision.types import Box, Detection, Face

CANDIDATES = 3  # per embedded face, so the runner-up person gathers evidence too (fusion margin)
SAME_LOOK = 0.8  # appearance correlation below which a track's face is embedded again at once


@dataclass(frozen=True)
class TrackedFrame:
    """One processed frame: its tracked faces (largest first), what changed, how long it took."""

    width: int
    height: int
    ts: float
    faces: list[TrackedFace]
    described: dict[int, Face]  # by track id: the analysed face (landmarks, quality) when embedded, else its box
    updates: list[TrackUpdate]
    embedded: int  # faces embedded this frame (the others kept their track's decision)
    processing_ms: float
    look_changed: frozenset[int] = frozenset()  # tracks whose face looked unlike their previous frame


class TrackingSession:
    """Tracker and fusion for one source. Frames must come in order; one at a time (a lock makes sure)."""

    def __init__(
        self,
        processor: FrameProcessor,
        options: FrameOptions,
        *,
        min_face_px: int = 0,
        tracker: TrackerConfig | None = None,
        fusion: FusionConfig | None = None,
    ) -> None:
        self.processor = processor
        self.options = replace(options, top_k=max(options.top_k, CANDIDATES))
        self.min_face_px = min_face_px
        self.tracker = IouTracker(tracker)
        self.fusion = TrackFusion(fusion, threshold=processor.match_threshold(options))
        self.frame_no = 0
        self._boxes: dict[int, Box] = {}
        self._looks: dict[int, np.ndarray] = {}
        self._lock = threading.Lock()
        self._last_ts: float | None = None

    def process(self, rgb: np.ndarray, ts: float) -> TrackedFrame | None:
        """Track and decide every face of a decoded frame taken at ``ts`` (seconds, any monotonic clock).

        None for a frame older than one already processed (two workers took two frames of one
        stream and the newer came first): tracks only move forward in time.
        """
        with self._lock:
            if self._last_ts is not None and ts < self._last_ts:
                return None
            self._last_ts = ts
            return self._process(rgb, ts)

    def _process(self, rgb: np.ndarray, ts: float) -> TrackedFrame:
        started = time.perf_counter()
        engine = self.processor.engine
        limit = self.processor.face_limit(self.options.max_faces)
        detections = sorted(engine.detector.detect(rgb, thorough=False), key=lambda d: -d.box.area)[:limit]
        step = self.tracker.update(detections, ts)
        self.frame_no += 1
        updates = [self._lost(track_id, ts) for track_id in step.lost]

        tracked = [(d, t) for d, t in zip(detections, step.track_ids, strict=True) if t is not None]
        changed = {t for d, t in tracked if self._look_changed(rgb, d, t)}
        wanted = [
            (d, t)
            for d, t in tracked
            if self._big_enough(d) and self.fusion.needs_embedding(t, self.frame_no, force=t in changed)
        ]
        faces = engine.faces_from_boxes(rgb, [d for d, _ in wanted])
        decisions = self.processor.decide(faces, self.options)
        frame_decisions = {}
        for (_, track_id), face, decision in zip(wanted, faces, decisions, strict=True):
            previous = self.fusion.current(track_id)
            fused = self.fusion.observe(track_id, decision, face.quality, face.box, ts)
            frame_decisions[track_id] = decision
            kind = update_kind(previous, fused)
            if kind is not None:
                updates.append(TrackUpdate.of(kind, track_id, ts, face.box, fused))

        described = {t: face for (_, t), face in zip(wanted, faces, strict=True)}
        out = []
        for detection, track_id in tracked:
            described.setdefault(track_id, Face(box=detection.box, det_score=detection.score))
            self._boxes[track_id] = detection.box
            fused = self.fusion.current(track_id) or FusedDecision.pending()
            if fused.status == "pending" and not self._big_enough(detection):
                fused = replace(fused, reason="too_small")
            track = self.tracker.get(track_id)
            since = track.first_ts if track else ts
            out.append(TrackedFace(track_id, detection.box, frame_decisions.get(track_id), fused, since))
        return TrackedFrame(
            width=int(rgb.shape[1]),
            height=int(rgb.shape[0]),
            ts=ts,
            faces=out,
            described=described,
            updates=updates,
            embedded=len(wanted),
            processing_ms=(time.perf_counter() - started) * 1000,
            look_changed=frozenset(changed),
        )

    def _look_changed(self, rgb: np.ndarray, detection: Detection, track_id: int) -> bool:
        """Whether the face of a track looks unlike its last frame (a cut, or two tracks swapped): then it is
        embedded now, even on a settled track, so a name never outlives the face it belongs to."""
        look = appearance(rgb, detection.box)
        before = self._looks.get(track_id)
        if look is None:
            return False
        self._looks[track_id] = look
        return before is not None and same_look(look, before) < SAME_LOOK

    def _big_enough(self, detection: Detection) -> bool:
        box = detection.box
        return min(box.width, box.height) >= self.min_face_px

    def _lost(self, track_id: int, ts: float) -> TrackUpdate:
        fused = self.fusion.current(track_id)
        self.fusion.forget(track_id)
        self._looks.pop(track_id, None)
        box = self._boxes.pop(track_id, Box(0, 0, 0, 0))
        return TrackUpdate.of(LOST, track_id, ts, box, fused)
