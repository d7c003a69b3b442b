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
  their mean embedding, with the match threshold as the same-person bar; a track whose face changes
  look (a cut in an edited video keeps one box in place) counts as one sighting per look, so two
  people shown one after the other in the same place are not one group.

Speed (the answers are those of reading, detecting and tracking one frame after the other): a
thread decodes a few frames ahead (:class:`_ReadAhead`; FFmpeg decoding several frames at once on
``DECODE_THREADS`` threads; frames between the analysed ones that no other frame needs are not decoded
at all, ``AvSource(skip_unused=True)``, unless every frame is drawn), the faces of the next analysed
frames are found on two more threads (a second BlazeFace interpreter; detection depends on the frame
alone), and the tracking session takes the faces found for its frame instead of detecting them again.
Both go through ``execute``.
"""

from __future__ import annotations

import math
import queue
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from facegate.service.pipeline import FrameOptions, FrameProcessor
from facegate.service.tracking import TrackingSession
from facegate.sources.base import SourceError
from facegate.sources.ffmpeg import AvSource
from facegate.stream.types import MATCH, PENDING, UNKNOWN
from facegate.vision.draw import confidence_colour, draw_boxes
from facegate.vision.engine import _malloc_trim
from facegate.vision.types import Box

# FFmpeg threads decoding a file (frames and slices at once): the reading thread keeps a queue, so the few
# frames of delay cost nothing, and a 1080p H.264 frame (~7 ms on one core) no longer holds up the analysis
DECODE_THREADS = 2
SIGHTINGS = 100_000  # a sighting is a track's frames between two changes of look: track id x this + n
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
class Truncation:
    """Where the decoding of a damaged file stopped: the timeline covers ``[0, at_s)`` only."""

    at_s: float
    code: str  # video_truncated (the file ends early), or the decoder's error code (source_decode_failed…)
    detail: str


@dataclass(frozen=True)
class VideoInfo:
    duration_s: float  # as the file declares it (or as far as it decoded, when longer)
    fps: float
    width: int
    height: int
    frames: int  # frames read
    analysed: int  # frames analysed
    truncated: Truncation | None = None
    tracks: int = 0  # faces followed from frame to frame (tracker tracks), named or not


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
    tracks: int  # tracker tracks it was seen in


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
                "tracks": v.tracks,
                "truncated": v.truncated is not None,
                "truncated_at_s": None if v.truncated is None else round(v.truncated.at_s, 2),
                "truncated_code": None if v.truncated is None else v.truncated.code,
                "truncated_detail": None if v.truncated is None else v.truncated.detail,
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
        start_s: float | None = None  # the timestamp of the first frame (not always 0)
        stride = self.stride(fps)
        observations: list[_Observation] = []
        sightings: dict[int, int] = {}  # track id -> how often its face changed look (cuts in edited video)
        read = analysed = 0
        decoded_s = 0.0  # the end of the last frame decoded
        stopped = False  # cancelled
        width, height = info.width or 0, info.height or 0
        writer = AnnotatedVideo(draw, fps, info.width or 0, info.height or 0) if draw else None
        shown: list = []  # the tracks drawn until the next analysed frame
        detector = self.processor.engine.detector
        ahead = _Prefetched(detector)
        # the session finds each frame's faces already found by the reading side (same detector, same frame)
        session = TrackingSession(
            _WithDetector(self.processor, ahead),
            FrameOptions(collection=self.options.collection),
            min_face_px=self.options.min_face_px,
        )
        # without a drawing, only the analysed frames come out of the source, and the frames between
        # them that no other frame is decoded from are not even decoded
        source = (
            AvSource(path, live=False, max_pixels=self.max_pixels, decode_threads=DECODE_THREADS)
            if writer is not None
            else AvSource(
                path,
                live=False,
                max_pixels=self.max_pixels,
                stride=stride,
                skip_unused=True,
                decode_threads=DECODE_THREADS,
            )
        )
        detectors = _Detectors(detector, *filter(None, [_spare(detector)]))
        reader = _ReadAhead(
            source,
            stride,
            detect=lambda rgb: execute(_detect, detectors, rgb),
            workers=detectors.size,
            depth=_depth(info.width or 0, info.height or 0),
        )
        try:
            for index, pts, rgb, faces in reader:
                if cancelled is not None and cancelled():
                    stopped = True
                    break
                read = index + 1
                if start_s is None:
                    start_s = pts - index / fps if pts is not None else 0.0
                t = _time(index, pts, fps, start_s)
                decoded_s = max(decoded_s, t + 1 / fps)
                if index % stride:
                    if writer is not None:
                        writer.write(rgb, shown)
                    continue
                height, width = rgb.shape[:2]
                ahead.give(rgb, faces.result())
                result = execute(session.process, rgb, t)
                analysed += 1
                shown = result.faces if result else []
                if writer is not None:
                    writer.write(rgb, shown)
                if progress is not None:
                    progress(read, info.frames)
                for face in shown:
                    if face.track_id in result.look_changed:  # a cut, or another face on this track: a new sighting
                        sightings[face.track_id] = sightings.get(face.track_id, 0) + 1
                    sighting = face.track_id * SIGHTINGS + sightings.get(face.track_id, 0)
                    described = result.described.get(face.track_id)
                    quality = described.quality.score if described is not None and described.quality else 0.0
                    embedded = face.frame_decision is not None
                    observations.append(
                        _Observation(
                            t,
                            sighting,
                            face.fused.status,
                            face.fused.person_id,
                            face.fused.name,
                            face.fused.confidence,
                            face.box,
                            face.box.area * quality if embedded and not _at_edge(face.box, width, height) else 0.0,
                            described.embedding if embedded and described is not None else None,
                        )
                    )
            else:
                read = max(read, reader.frames_read)
        finally:
            reader.close()
            _hand_back_memory()
        if writer is not None:
            writer.close()
        if reader.error is not None and analysed == 0:
            raise reader.error  # nothing decodes: the job fails with the decoder's code
        if progress is not None:
            progress(read, info.frames)
        decoded_s = max(decoded_s, read / fps)
        declared_s = info.frames / fps if info.frames else _declared(path)
        error = None if reader.error is None else str(reader.error).replace(path, "the file")
        truncated = None if stopped else _truncation(reader.error, error, decoded_s, declared_s, (stride + 1) / fps)
        duration = max(decoded_s, declared_s or 0.0, (info.frames or 0) / fps)
        frame_s = stride / fps
        _backfill(observations)
        gap = self.options.max_gap_s
        people = _people(observations, frame_s, gap, duration, decoded_s)
        unknown = _unknown_groups(observations, frame_s, gap, duration, decoded_s, self.processor)
        tracks = len({o.track_id // SIGHTINGS for o in observations})
        video = VideoInfo(duration, fps, width, height, read, analysed, truncated, tracks)
        return VideoResult(video, people, unknown, time.perf_counter() - started)


def _hand_back_memory() -> None:
    """Return the heap memory freed by a run to the OS: FFmpeg's decoding threads, new for each file, leave
    their frame buffers in glibc arenas of their own: without a trim, the peak RSS of a process analysing the
    1080p crowd clip ten times in a row crept from ~370 to ~480 MB (with it, 360-410 MB; a trim takes 2-6 ms)."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


def _declared(path: str) -> float | None:
    """The duration the file's headers declare, for a container that does not count its frames (Matroska…)."""
    import av

    try:
        with av.open(path) as container:
            stream = container.streams.video[0]
            if stream.duration and stream.time_base:
                return float(stream.duration * stream.time_base)
            start = float(stream.start_time * stream.time_base) if stream.start_time and stream.time_base else 0.0
            return max(0.0, container.duration / 1_000_000 - start) if container.duration else None
    except Exception:  # the reading said what is wrong with the file
        return None


def _time(index: int, pts: float | None, fps: float, start_s: float) -> float:
    """The time of frame ``index``: ``index / fps``, or its timestamp when frames were lost before it (a
    damaged stretch the demuxer skipped) or the rate varies, so that what follows keeps its place."""
    counted = index / fps
    if pts is None:
        return counted
    stamped = pts - start_s
    return stamped if abs(stamped - counted) > 0.5 / fps and stamped > counted else counted


def _truncation(
    error: SourceError | None, message: str | None, decoded_s: float, declared_s: float | None, slack_s: float
) -> Truncation | None:
    """Where and why the decoding stopped early, or None when the file was read to its end."""
    if error is not None:
        return Truncation(decoded_s, error.code, f"decoding stopped at {decoded_s:.2f} s: {message}")
    if declared_s is not None and decoded_s < declared_s - slack_s:
        detail = f"the file ends at {decoded_s:.2f} s of the {declared_s:.2f} s it declares (truncated)"
        return Truncation(decoded_s, "video_truncated", detail)
    return None


_spare_lock = threading.Lock()
_spares: dict[int, Any] = {}


def _spare(detector: Any) -> Any | None:
    """A second BlazeFace interpreter like ``detector`` (one process-wide, made once), so that two frames'
    detections run at once; None for other detectors. Same model, same settings: the same answers."""
    from facegate.vision.blazeface import BlazeFaceDetector

    if type(detector) is not BlazeFaceDetector:
        return None
    with _spare_lock:
        if id(detector) not in _spares:
            _spares[id(detector)] = BlazeFaceDetector(
                min_score=detector.min_score,
                iou_threshold=detector.iou_threshold,
                num_threads=detector.num_threads,
                tile_min_side=detector.tile_min_side,
            )
        return _spares[id(detector)]


class _Detectors:
    """Detectors taken in turn: each call gets one that no other thread is using."""

    def __init__(self, *detectors: Any) -> None:
        self.size = len(detectors)
        self._free: queue.SimpleQueue = queue.SimpleQueue()
        for detector in detectors:
            self._free.put(detector)

    def detect(self, rgb: np.ndarray) -> list:
        detector = self._free.get()
        try:
            return detector.detect(rgb, thorough=False)
        finally:
            self._free.put(detector)


def _detect(detectors: _Detectors, rgb: np.ndarray) -> list:
    return detectors.detect(rgb)


class _Prefetched:
    """A detector that answers for the frame handed to :meth:`give` with the faces found for it ahead
    of time (detection depends on the frame alone), and asks the real detector for anything else."""

    def __init__(self, detector: Any) -> None:
        self.detector = detector
        self._image: np.ndarray | None = None
        self._found: list = []

    def give(self, image: np.ndarray, found: list) -> None:
        self._image, self._found = image, found

    def detect(self, image: np.ndarray, *, thorough: bool = False) -> list:
        if image is self._image and not thorough:
            self._image = None
            return list(self._found)
        return self.detector.detect(image, thorough=thorough)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.detector, name)


class _WithDetector:
    """``processor`` whose ``engine.detector`` is ``detector`` (everything else is the processor's own)."""

    def __init__(self, processor: FrameProcessor, detector: Any) -> None:
        self._processor = processor
        self.engine = _EngineWithDetector(processor.engine, detector)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._processor, name)


class _EngineWithDetector:
    def __init__(self, engine: Any, detector: Any) -> None:
        self._engine = engine
        self.detector = detector

    def __getattr__(self, name: str) -> Any:
        return getattr(self._engine, name)


_END = object()
READ_AHEAD_BYTES = 48 << 20  # decoded RGB frames waiting for the analysis, at most (4 frames at least)


def _depth(width: int, height: int) -> int:
    """Frames read ahead: 16 at 640x480, 8 at 1080p (a queue deep enough to ride out a frame that
    takes long to analyse, e.g. new faces to embed, while the reading and detecting go on)."""
    return max(4, min(16, READ_AHEAD_BYTES // max(1, width * height * 3)))


class _ReadAhead:
    """Reads a file in a thread of its own (PyAV lets go of the GIL while decoding and converting), a
    few frames ahead of the analysis: yields ``(index, pts, rgb, faces)`` for every frame the source hands
    out, ``faces`` a future of ``detect(rgb)`` for the analysed ones (every ``stride``-th, else None),
    run in order on one more thread so that the next frame's detection overlaps this frame's tracking
    and embedding. At most ``depth`` frames wait; the source is opened, read and closed by the
    reading thread only; ``frames_read`` is the source's count once the end is reached, or once a
    decoder error (``error``, a ``SourceError``) ended the reading early.
    """

    def __init__(
        self,
        source: AvSource,
        stride: int,
        *,
        detect: Callable[[np.ndarray], list],
        workers: int = 1,
        depth: int = 16,
    ) -> None:
        self._source = source
        self._stride = stride
        self._detect = detect
        self.frames_read = 0
        self.error: SourceError | None = None  # what stopped the decoding before the end of the file
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._detector = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="video-detect")
        self._thread = threading.Thread(target=self._read, name="video-read", daemon=True)
        self._thread.start()

    def _put(self, item: Any) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _read(self) -> None:
        try:
            with self._source as source:
                try:
                    while not self._stop.is_set() and (frame := source.read()) is not None:
                        rgb = frame.rgb
                        faces = self._detector.submit(self._detect, rgb) if frame.index % self._stride == 0 else None
                        if not self._put((frame.index, frame.pts, rgb, faces)):
                            return
                except SourceError as exc:  # a decoder error halfway: what came before stands
                    self.error = exc
                self.frames_read = source.frames_read
        except BaseException as exc:  # handed to the consumer, raised where the frame would have been
            self._put(exc)
            return
        self._put(_END)

    def __iter__(self) -> Iterator[tuple[int, float | None, np.ndarray, Future | None]]:
        while True:
            item = self._queue.get()
            if item is _END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    def close(self) -> None:
        """Stop reading (the thread closes the source) and wait for both threads."""
        self._stop.set()
        self._thread.join()
        self._detector.shutdown(wait=True, cancel_futures=True)


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


def _segments(times: list[tuple[float, float]], frame_s: float, max_gap_s: float, end_s: float) -> tuple[Segment, ...]:
    """(t, confidence) sorted by t -> segments; each observation covers one analysed frame interval
    (up to ``end_s``, the end of the last frame decoded)."""
    out: list[Segment] = []
    start = end = None
    confidences: list[float] = []
    for t, confidence in times:
        if start is not None and t - end <= max_gap_s:
            end = t + frame_s
            confidences.append(confidence)
            continue
        if start is not None:
            out.append(Segment(start, min(end, end_s), float(np.mean(confidences))))
        start, end, confidences = t, t + frame_s, [confidence]
    if start is not None:
        out.append(Segment(start, min(end, end_s), float(np.mean(confidences))))
    return tuple(out)


def _appearance(
    label: str,
    person_id: str | None,
    obs: list[_Observation],
    frame_s: float,
    max_gap_s: float,
    duration: float,
    end_s: float,
) -> Appearance:
    times = sorted({o.t: o.confidence for o in obs}.items())
    segments = _segments(times, frame_s, max_gap_s, end_s)
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
        len({o.track_id // SIGHTINGS for o in obs}),
    )


def _people(observations: list[_Observation], frame_s: float, max_gap_s: float, duration: float, end_s: float):
    named: dict[str, list[_Observation]] = defaultdict(list)
    for o in observations:
        if o.status == MATCH and o.person_id:
            named[o.person_id].append(o)
    people = [
        _appearance(obs[0].name or "", pid, obs, frame_s, max_gap_s, duration, end_s) for pid, obs in named.items()
    ]
    return tuple(sorted(people, key=lambda a: (-a.seconds, a.label)))


MERGE_LIMIT = 1000  # groups compared all against all (a G x G matrix) after the greedy pass, at most


@dataclass
class _Group:
    """Sightings taken as one anonymous person: their embeddings' sum, and when which track showed them."""

    total: np.ndarray  # sum of the members' unit mean embeddings, each weighted by its observations
    obs: list[_Observation]
    frames: dict[float, set[int]]  # analysed time -> tracker tracks of the group seen then

    @property
    def centroid(self) -> np.ndarray:
        return self.total / (np.linalg.norm(self.total) or 1.0)

    def clashes(self, frames: dict[float, set[int]]) -> bool:
        """Whether another track of this group is on screen at a time one of ``frames``' is: two faces in one
        frame are two people."""
        return any(t in self.frames and self.frames[t] != tracks for t, tracks in frames.items())

    def absorb(self, other: _Group) -> None:
        self.total = self.total + other.total
        self.obs.extend(other.obs)
        for t, tracks in other.frames.items():
            self.frames.setdefault(t, set()).update(tracks)


def _unknown_groups(
    observations: list[_Observation],
    frame_s: float,
    max_gap_s: float,
    duration: float,
    end_s: float,
    processor: FrameProcessor,
):
    """Sightings never named, grouped into anonymous people by their mean embedding, the match threshold
    as the same-person bar: in order of first appearance each joins the most similar group, then groups
    merge, most similar first; never two faces seen in the same frame into one group. A sighting that
    ended before its track was decided (one glimpse, then a change of look) counts as unknown."""
    named = {o.track_id for o in observations if o.status == MATCH}
    sightings: dict[int, list[_Observation]] = defaultdict(list)
    for o in observations:
        if o.track_id not in named and (o.status == UNKNOWN or (o.status == PENDING and o.embedding is not None)):
            sightings[o.track_id].append(o)
    threshold = processor.policy.threshold
    groups: list[_Group] = []
    for key in sorted(sightings, key=lambda k: sightings[k][0].t):
        obs = sightings[key]
        vectors = [o.embedding for o in obs if o.embedding is not None]
        if not vectors:
            continue
        mean = np.mean(vectors, axis=0)
        mean /= np.linalg.norm(mean) or 1.0
        one = _Group(mean * len(obs), list(obs), {o.t: {key // SIGHTINGS} for o in obs})
        fits = [(float(g.centroid @ mean), g) for g in groups if not g.clashes(one.frames)]
        similarity, best = max(fits, key=lambda f: f[0], default=(-1.0, None))
        if best is not None and similarity >= threshold:
            best.absorb(one)
        else:
            groups.append(one)
    groups = _merge_groups(groups, threshold)
    groups.sort(key=lambda g: min(o.t for o in g.obs))
    return tuple(
        _appearance(f"unknown-{n}", None, g.obs, frame_s, max_gap_s, duration, end_s) for n, g in enumerate(groups, 1)
    )


def _merge_groups(groups: list[_Group], threshold: float) -> list[_Group]:
    """Merge the most similar pair of groups (centroids at least ``threshold`` alike, no clash) until none is
    left: the greedy pass depends on the order sightings come in, so a person's first, blurred sightings may
    have started a group of their own."""
    if not 1 < len(groups) <= MERGE_LIMIT:
        return groups
    groups = list(groups)
    refused: set[tuple[int, int]] = set()  # pairs (by id) that clash
    while True:
        centroids = np.stack([g.centroid for g in groups])
        similar = centroids @ centroids.T
        np.fill_diagonal(similar, -1.0)
        merged = False
        for flat in np.argsort(similar, axis=None)[::-1]:
            i, j = divmod(int(flat), len(groups))
            if similar[i, j] < threshold:
                break
            if i > j or (id(groups[i]), id(groups[j])) in refused:
                continue
            if groups[i].clashes(groups[j].frames):
                refused.add((id(groups[i]), id(groups[j])))
                continue
            groups[i].absorb(groups.pop(j))
            merged = True
            break
        if not merged:
            return groups


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


def timeline_csv_rows(result: dict) -> list[list[str]]:
    """The CSV of a timeline (``VideoResult.to_dict()``): a header, then one row per segment."""
    rows = [["kind", "name", "person_id", "start_s", "end_s", "confidence"]]
    for kind, key, group in (
        ("person", "name", result.get("people", [])),
        ("unknown", "label", result.get("unknown", [])),
    ):
        for a in group:
            for s in a["segments"]:
                rows.append(
                    [
                        kind,
                        a[key],
                        a.get("person_id") or "",
                        f"{s['start_s']:.2f}",
                        f"{s['end_s']:.2f}",
                        f"{s['confidence']:.4f}",
                    ]
                )
    return rows


def timeline_csv(result: VideoResult) -> str:
    """One row per segment: kind, name or label, person id, start, end, confidence."""
    import csv
    import io

    out = io.StringIO()
    csv.writer(out).writerows(timeline_csv_rows(result.to_dict()))
    return out.getvalue()
