"""Video files: who appears when. A file is a source that must not drop the frames it was asked for.

:class:`VideoAnalysis` reads a file sequentially (PyAV; every ``stride``-th frame analysed, the
others only decoded), runs each analysed frame through one :class:`TrackingSession` (the same
tracker and per-track fusion as cameras), and turns the observations into a timeline:

* each observation of a track carries the track's fused decision at that time; an observation
  still ``pending`` (the first frame of a track) takes the next decision of its track;
* per person, observations closer than ``max_gap_s`` merge into segments (start, end, mean
  confidence); ``seconds`` and ``share`` of the video follow;
* a best frame per person: the largest, best-quality embedded view not touching the frame edge;
* tracks nobody could name are grouped into anonymous people (``unknown-1``, ``unknown-2``…) by
  their mean embedding, with the match threshold as the same-person bar.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from facegate.service.pipeline import FrameOptions, FrameProcessor
from facegate.service.tracking import TrackingSession
from facegate.sources.ffmpeg import AvSource
from facegate.stream.types import MATCH, PENDING, UNKNOWN
from facegate.vision.draw import confidence_colour, draw_boxes
from facegate.vision.types import Box

Progress = Callable[[int, int | None], None]  # (frames read, frames in the file or None)
Execute = Callable[..., Any]  # execute(fn, *args) -> fn(*args), wherever it runs


def _here(fn: Callable[..., Any], *args: Any) -> Any:
    return fn(*args)


@dataclass(frozen=True)
class VideoOptions:
    """What to analyse: the collection, how many frames a second, the smallest face."""

    collection: str = "default"
    analysis_fps: float = 10.0  # frames analysed per second of video (all of them when the video has fewer)
    every_frame: bool = False
    min_face_px: int = 0
    max_gap_s: float = 1.0  # observations of one person closer than this are one segment


@dataclass(frozen=True)
class VideoInfo:
    duration_s: float
    fps: float
    width: int
    height: int
    frames: int  # frames read
    analysed: int  # frames analysed


@dataclass(frozen=True)
class Segment:
    start_s: float
    end_s: float
    confidence: float


@dataclass(frozen=True)
class BestFrame:
    t_s: float
    box: Box


@dataclass(frozen=True)
class Appearance:
    """A person (or an anonymous group of unknown faces) in the video: when, how long, their best view."""

    label: str  # the person's name, or unknown-N
    person_id: str | None
    segments: tuple[Segment, ...]
    seconds: float
    share: float
    best_frame: BestFrame | None
    tracks: int


@dataclass(frozen=True)
class VideoResult:
    video: VideoInfo
    people: tuple[Appearance, ...]
    unknown: tuple[Appearance, ...]
    processing_s: float

    def to_dict(self) -> dict:
        """The documented JSON shape (``facegate video --json``, ``GET /v1/videos/{id}/result``)."""
        v = self.video

        def appearance(a: Appearance, key: str) -> dict:
            return {
                key: a.label,
                **({"person_id": a.person_id} if key == "name" else {}),
                "segments": [
                    {"start_s": round(s.start_s, 2), "end_s": round(s.end_s, 2), "confidence": round(s.confidence, 4)}
                    for s in a.segments
                ],
                "seconds": round(a.seconds, 2),
                "share": round(a.share, 4),
                "tracks": a.tracks,
                "best_frame": None
                if a.best_frame is None
                else {"t_s": round(a.best_frame.t_s, 2), "box": a.best_frame.box.to_list()},
            }

        return {
            "video": {
                "duration_s": round(v.duration_s, 2),
                "fps": round(v.fps, 3),
                "width": v.width,
                "height": v.height,
                "frames": v.frames,
                "analysed_frames": v.analysed,
            },
            "people": [appearance(a, "name") for a in self.people],
            "unknown": [appearance(a, "label") for a in self.unknown],
            "processing_s": round(self.processing_s, 2),
        }


@dataclass
class _Observation:
    t: float
    track_id: int
    status: str
    person_id: str | None
    name: str | None
    confidence: float
    box: Box
    view: float  # area x quality when embedded in this frame (a best-frame candidate), else 0
    embedding: np.ndarray | None = field(default=None, repr=False)


class VideoAnalysis:
    """Analyses one file with the frame pipeline; not thread-safe (one per job)."""

    def __init__(self, processor: FrameProcessor, options: VideoOptions | None = None, *, max_pixels: int) -> None:
        self.processor = processor
        self.options = options or VideoOptions()
        self.max_pixels = max_pixels

    def stride(self, fps: float) -> int:
        """Analyse every frame up to ``analysis_fps``; above, every k-th frame, k the smallest that keeps
        to ``analysis_fps`` at most (25 fps at 10: every 3rd, 8.3 a second)."""
        if self.options.every_frame or fps <= self.options.analysis_fps:
            return 1
        return max(1, math.ceil(fps / self.options.analysis_fps - 1e-9))

    def run(
        self,
        path: str,
        progress: Progress | None = None,
        cancelled: Callable[[], bool] | None = None,
        draw: str | None = None,
        execute: Execute | None = None,
    ) -> VideoResult:
        """The timeline of a video file (raises ``SourceError`` for a file that is not a readable video);
        with ``draw``, also an MP4 of every frame with the current tracks' boxes, names and confidence.

        ``execute(fn, *args)`` runs each analysed frame's work (default: here): a server passes one
        that queues it on the scheduler at video priority, after cameras and interactive clients.
        """
        execute = execute or _here
        started = time.perf_counter()
        probe = AvSource(path, live=False, max_pixels=self.max_pixels)
        info = probe.open()
        probe.close()
        fps = info.fps or 25.0
        stride = self.stride(fps)
        session = TrackingSession(
            self.processor, FrameOptions(collection=self.options.collection), min_face_px=self.options.min_face_px
        )
        observations: list[_Observation] = []
        read = analysed = 0
        width, height = info.width or 0, info.height or 0
        writer = AnnotatedVideo(draw, fps, info.width or 0, info.height or 0) if draw else None
        shown: list = []  # the tracks drawn until the next analysed frame
        with AvSource(path, live=False, max_pixels=self.max_pixels) as source:
            source.open()
            while (frame := source.read()) is not None:  # every frame is decoded, RGB only when used
                if cancelled is not None and cancelled():
                    break
                read = frame.index + 1
                if frame.index % stride:
                    if writer is not None:
                        writer.write(frame.rgb, shown)
                    continue
                t = frame.index / fps
                rgb = frame.rgb
                height, width = rgb.shape[:2]
                result = execute(session.process, rgb, t)
                analysed += 1
                shown = result.faces if result else []
                if writer is not None:
                    writer.write(rgb, shown)
                if progress is not None:
                    progress(read, info.frames)
                for face in shown:
                    described = result.described.get(face.track_id)
                    quality = described.quality.score if described is not None and described.quality else 0.0
                    embedded = face.frame_decision is not None
                    observations.append(
                        _Observation(
                            t,
                            face.track_id,
                            face.fused.status,
                            face.fused.person_id,
                            face.fused.name,
                            face.fused.confidence,
                            face.box,
                            face.box.area * quality if embedded and not _at_edge(face.box, width, height) else 0.0,
                            described.embedding if embedded and described is not None else None,
                        )
                    )
        if writer is not None:
            writer.close()
        if progress is not None:
            progress(read, info.frames)
        duration = max(read, info.frames or 0) / fps
        frame_s = stride / fps
        _backfill(observations)
        people = _people(observations, frame_s, self.options.max_gap_s, duration)
        unknown = _unknown_groups(observations, frame_s, self.options.max_gap_s, duration, self.processor)
        video = VideoInfo(duration, fps, width, height, read, analysed)
        return VideoResult(video, people, unknown, time.perf_counter() - started)


def _at_edge(box: Box, width: int, height: int, margin: float = 2.0) -> bool:
    return box.x1 < margin or box.y1 < margin or box.x2 > width - margin or box.y2 > height - margin


def _backfill(observations: list[_Observation]) -> None:
    """A pending observation takes the next decision of its track (the first frame of a track is pending)."""
    by_track: dict[int, list[_Observation]] = defaultdict(list)
    for o in observations:
        by_track[o.track_id].append(o)
    for track in by_track.values():
        following: _Observation | None = None
        for o in reversed(track):
            if o.status == PENDING and following is not None:
                o.status, o.person_id, o.name, o.confidence = (
                    following.status,
                    following.person_id,
                    following.name,
                    following.confidence,
                )
            elif o.status != PENDING:
                following = o


def _segments(times: list[tuple[float, float]], frame_s: float, max_gap_s: float) -> tuple[Segment, ...]:
    """(t, confidence) sorted by t -> segments; each observation covers one analysed frame interval."""
    out: list[Segment] = []
    start = end = None
    confidences: list[float] = []
    for t, confidence in times:
        if start is not None and t - end <= max_gap_s:
            end = t + frame_s
            confidences.append(confidence)
            continue
        if start is not None:
            out.append(Segment(start, end, float(np.mean(confidences))))
        start, end, confidences = t, t + frame_s, [confidence]
    if start is not None:
        out.append(Segment(start, end, float(np.mean(confidences))))
    return tuple(out)


def _appearance(
    label: str, person_id: str | None, obs: list[_Observation], frame_s: float, max_gap_s: float, duration: float
) -> Appearance:
    times = sorted({o.t: o.confidence for o in obs}.items())
    segments = _segments(times, frame_s, max_gap_s)
    seconds = sum(s.end_s - s.start_s for s in segments)
    best = max(obs, key=lambda o: o.view)
    best_frame = BestFrame(best.t, best.box) if best.view > 0 else BestFrame(obs[0].t, obs[0].box)
    return Appearance(
        label,
        person_id,
        segments,
        seconds,
        seconds / duration if duration else 0.0,
        best_frame,
        len({o.track_id for o in obs}),
    )


def _people(observations: list[_Observation], frame_s: float, max_gap_s: float, duration: float):
    named: dict[str, list[_Observation]] = defaultdict(list)
    for o in observations:
        if o.status == MATCH and o.person_id:
            named[o.person_id].append(o)
    people = [_appearance(obs[0].name or "", pid, obs, frame_s, max_gap_s, duration) for pid, obs in named.items()]
    return tuple(sorted(people, key=lambda a: (-a.seconds, a.label)))


def _unknown_groups(
    observations: list[_Observation], frame_s: float, max_gap_s: float, duration: float, processor: FrameProcessor
):
    """Tracks never named, grouped by their mean embedding (greedy, in order of first appearance)."""
    named_tracks = {o.track_id for o in observations if o.status == MATCH}
    tracks: dict[int, list[_Observation]] = defaultdict(list)
    for o in observations:
        if o.track_id not in named_tracks and o.status == UNKNOWN:
            tracks[o.track_id].append(o)
    threshold = processor.policy.threshold
    groups: list[tuple[np.ndarray, list[_Observation]]] = []
    for track_id in sorted(tracks, key=lambda k: tracks[k][0].t):
        vectors = [o.embedding for o in tracks[track_id] if o.embedding is not None]
        if not vectors:
            continue
        mean = np.mean(vectors, axis=0)
        mean /= np.linalg.norm(mean) or 1.0
        best = max(range(len(groups)), key=lambda i: float(groups[i][0] @ mean), default=None)
        if best is not None and float(groups[best][0] @ mean) >= threshold:
            centroid, obs = groups[best]
            obs.extend(tracks[track_id])
            merged = centroid * (len(obs) - len(tracks[track_id])) + mean * len(tracks[track_id])
            groups[best] = (merged / (np.linalg.norm(merged) or 1.0), obs)
        else:
            groups.append((mean, list(tracks[track_id])))
    return tuple(
        _appearance(f"unknown-{n}", None, obs, frame_s, max_gap_s, duration) for n, (_, obs) in enumerate(groups, 1)
    )


class AnnotatedVideo:
    """An H.264 MP4 of frames with boxes, names and colour-coded confidence (``vision.draw``)."""

    def __init__(self, path: str, fps: float, width: int, height: int) -> None:
        import av

        self._container = av.open(path, "w")
        self._stream = self._container.add_stream("libx264", rate=round(fps) or 25, options={"preset": "veryfast"})
        self._stream.width, self._stream.height = width - width % 2, height - height % 2
        self._stream.pix_fmt = "yuv420p"

    def write(self, rgb: np.ndarray, faces: list) -> None:
        import av

        boxes = []
        for face in faces:
            fused = face.fused
            label = f"{fused.name} {fused.confidence:.2f}" if fused.is_match else fused.status
            boxes.append((face.box, label, confidence_colour(fused.status, fused.confidence)))
        drawn = np.asarray(draw_boxes(rgb, boxes))[: self._stream.height, : self._stream.width]
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(drawn), format="rgb24")
        for packet in self._stream.encode(frame):
            self._container.mux(packet)

    def close(self) -> None:
        for packet in self._stream.encode():
            self._container.mux(packet)
        self._container.close()


def timeline_csv(result: VideoResult) -> str:
    """One row per segment: kind, name or label, person id, start, end, confidence."""
    import csv
    import io

    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["kind", "name", "person_id", "start_s", "end_s", "confidence"])
    for kind, group in (("person", result.people), ("unknown", result.unknown)):
        for a in group:
            for s in a.segments:
                writer.writerow(
                    [kind, a.label, a.person_id or "", f"{s.start_s:.2f}", f"{s.end_s:.2f}", f"{s.confidence:.4f}"]
                )
    return out.getvalue()
