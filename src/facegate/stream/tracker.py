"""A small ByteTrack-style face tracker: greedy IoU (and centre-distance) matching in two passes.

Pure: no I/O, no clock (each update gets its timestamp), deterministic whatever the order
of the detections. Each update:

1. removes the tracks unseen for more than ``max_lost_s`` (reported in ``lost``);
2. predicts each track's box at ``ts`` from its velocity (at most ``max_predict_s`` ahead);
3. matches the high-score detections to the tracks, then the low-score ones to the tracks
   still free — greedily, IoU pairs first by IoU descending, then the centre-distance pairs
   by distance ascending (ties by track id, then by the detection's score and box);
4. starts a track for every high-score detection left over.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from facegate.stream.types import Track, TrackerConfig, TrackStep
from facegate.vision.types import Box, Detection

_VELOCITY_SMOOTHING = 0.5  # weight of the newest displacement in the velocity estimate


@dataclass
class _State:
    track_id: int
    box: Box
    score: float
    first_ts: float
    last_ts: float
    hits: int = 1
    misses: int = 0
    velocity: tuple[float, float] = field(default=(0.0, 0.0))

    def predicted(self, ts: float, max_predict_s: float) -> Box:
        dt = min(max(ts - self.last_ts, 0.0), max_predict_s)
        dx, dy = self.velocity[0] * dt, self.velocity[1] * dt
        b = self.box
        return Box(b.x1 + dx, b.y1 + dy, b.x2 + dx, b.y2 + dy)

    def hit(self, det: Detection, ts: float) -> None:
        dt = ts - self.last_ts
        if dt > 0:
            (cx, cy), (px, py) = det.box.center, self.box.center
            vx, vy = (cx - px) / dt, (cy - py) / dt
            if self.hits == 1:
                self.velocity = (vx, vy)
            else:
                a = _VELOCITY_SMOOTHING
                self.velocity = (a * vx + (1 - a) * self.velocity[0], a * vy + (1 - a) * self.velocity[1])
        self.box, self.score, self.last_ts = det.box, det.score, ts
        self.hits += 1
        self.misses = 0

    def snapshot(self, min_hits: int) -> Track:
        return Track(
            self.track_id,
            self.box,
            self.score,
            self.first_ts,
            self.last_ts,
            self.hits,
            self.misses,
            self.hits >= min_hits,
        )


def _size(box: Box) -> float:
    return (box.width + box.height) / 2


def _affinity(track: Box, det: Box, config: TrackerConfig) -> tuple[int, float] | None:
    """(tier, cost) of pairing a predicted track box with a detection box, or None when they
    may not pair: tier 0 is an IoU match (cost −IoU), tier 1 a centre-distance match (cost:
    the distance in face sizes)."""
    iou = track.iou(det)
    if iou >= config.match_iou:
        return 0, -iou
    st, sd = _size(track), _size(det)
    if st <= 0 or sd <= 0 or max(st, sd) / min(st, sd) > config.max_size_ratio:
        return None
    (tx, ty), (dx, dy) = track.center, det.center
    distance = math.hypot(tx - dx, ty - dy) / ((st + sd) / 2)
    if distance < config.max_center_distance:
        return 1, distance
    return None


def _det_key(det: Detection) -> tuple[float, float, float, float, float]:
    """A canonical order of detections, independent of how they were given."""
    b = det.box
    return (-det.score, b.x1, b.y1, b.x2, b.y2)


class IouTracker:
    """Links face detections across the frames of one stream into tracks with stable ids.

    Ids are increasing ints from 1 per tracker. Not thread-safe: one tracker per stream.
    """

    def __init__(self, config: TrackerConfig | None = None) -> None:
        self.config = config or TrackerConfig()
        self._tracks: dict[int, _State] = {}
        self._next_id = 1
        self._last_ts: float | None = None

    def update(self, detections: Sequence[Detection], ts: float) -> TrackStep:
        """Match one frame's detections (taken at ``ts`` seconds) to the tracks.

        Raises ValueError when ``ts`` is earlier than the previous update's.
        """
        if self._last_ts is not None and ts < self._last_ts:
            raise ValueError(f"tracker timestamps must not go back: {ts} < {self._last_ts}")
        self._last_ts = ts
        cfg = self.config

        lost = sorted(tid for tid, t in self._tracks.items() if ts - t.last_ts > cfg.max_lost_s)
        for tid in lost:
            del self._tracks[tid]

        order = sorted(range(len(detections)), key=lambda i: _det_key(detections[i]))
        rank = {i: r for r, i in enumerate(order)}
        high = [i for i in order if detections[i].score >= cfg.high_score]
        low = [i for i in order if cfg.low_score <= detections[i].score < cfg.high_score]

        predicted = {tid: t.predicted(ts, cfg.max_predict_s) for tid, t in self._tracks.items()}
        assigned: dict[int, int] = {}  # detection index -> track id
        free = set(self._tracks)
        for group in (high, low):
            pairs = []
            for i in group:
                for tid in free:
                    aff = _affinity(predicted[tid], detections[i].box, cfg)
                    if aff is not None:
                        pairs.append((aff[0], aff[1], tid, rank[i], i))
            pairs.sort()
            for _, _, tid, _, i in pairs:
                if tid in free and i not in assigned:
                    assigned[i] = tid
                    free.discard(tid)

        confirmed = []
        for i, tid in assigned.items():
            state = self._tracks[tid]
            was_confirmed = state.hits >= cfg.min_hits
            state.hit(detections[i], ts)
            if not was_confirmed and state.hits >= cfg.min_hits:
                confirmed.append(tid)
        for tid in free:
            self._tracks[tid].misses += 1

        started = []
        for i in high:
            if i not in assigned:
                tid = self._next_id
                self._next_id += 1
                self._tracks[tid] = _State(tid, detections[i].box, detections[i].score, ts, ts)
                assigned[i] = tid
                started.append(tid)
                if cfg.min_hits <= 1:
                    confirmed.append(tid)

        return TrackStep(
            track_ids=tuple(assigned.get(i) for i in range(len(detections))),
            started=tuple(started),
            confirmed=tuple(sorted(confirmed)),
            lost=tuple(lost),
        )

    def tracks(self) -> tuple[Track, ...]:
        """Every live track, in id order."""
        return tuple(self._tracks[tid].snapshot(self.config.min_hits) for tid in sorted(self._tracks))

    def get(self, track_id: int) -> Track | None:
        """One live track, or None when it is unknown or was removed."""
        state = self._tracks.get(track_id)
        return state.snapshot(self.config.min_hits) if state else None

    def __len__(self) -> int:
        return len(self._tracks)
