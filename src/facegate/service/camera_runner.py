"""One running camera: newest frames from its source -> tracked decisions -> latest state, preview, events.

A :class:`CameraRunner` owns a reader thread (``sources.reader``: newest frame only, reconnects
with backoff) and an asyncio task that, at most ``fps`` times a second, takes the newest frame
and runs it through the camera's :class:`~facegate.service.tracking.TrackingSession` in its
fair turn on the scheduler (interactive clients and other cameras take turns with it). Each
result updates the camera's latest tracks, the MJPEG preview (drawn only while someone
watches) and, through the cooldown rule, the events it publishes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from dataclasses import dataclass

import numpy as np

from facegate.config import CameraSettings
from facegate.events.bus import EventBus
from facegate.events.cooldown import Cooldown
from facegate.events.types import Event, event_id
from facegate.service.pipeline import FrameOptions, FrameProcessor
from facegate.service.scheduler import BACKGROUND, FairScheduler
from facegate.service.tracking import TrackedFrame, TrackingSession
from facegate.sources.base import Backoff, SourceFrame
from facegate.sources.reader import LatestFrameReader
from facegate.sources.registry import open_source
from facegate.store.records import Camera
from facegate.stream.types import LOST
from facegate.vision.crop import crop_around
from facegate.vision.draw import confidence_colour, draw_boxes
from facegate.vision.image import ImageLimits, encode_jpeg
from facegate.vision.types import Box

log = logging.getLogger(__name__)

PREVIEW_IDLE_S = 10.0  # the preview is drawn while someone asked for it in the last this many seconds
POLL_S = 0.01  # how often the loop looks for a frame when none is waiting


def face_snapshot(rgb: np.ndarray, box: Box, side: int = 160) -> bytes:
    """The face with a margin, at most ``side`` px, JPEG (an event's picture, ~5-10 kB)."""
    return encode_jpeg(crop_around(rgb, box, 0.3, side), quality=85)


@dataclass(frozen=True)
class Presence:
    """A person in front of the camera: on which track, where, and when last seen (both clocks)."""

    name: str | None
    track_id: int
    box: list[float]
    ts: float  # monotonic
    wall_ts: float


@dataclass(frozen=True)
class Preview:
    seq: int
    jpeg: bytes


class CameraRunner:
    """Runs one camera in this process until :meth:`stop`."""

    def __init__(
        self,
        camera: Camera,
        url: str,
        processor: FrameProcessor,
        scheduler: FairScheduler,
        settings: CameraSettings,
        limits: ImageLimits,
        bus: EventBus,
    ) -> None:
        self.camera = camera
        self.settings = settings
        self.scheduler = scheduler
        self.bus = bus
        self.session = TrackingSession(
            processor, FrameOptions(collection=camera.collection), min_face_px=camera.min_face_px
        )
        self.reader = LatestFrameReader(
            lambda: open_source(
                url, limits=limits, timeout_s=settings.camera_timeout, allow_files=settings.allow_file_cameras
            ),
            Backoff(),
            on_state=self._on_state,
            stall_s=settings.camera_stall,
        )
        self.cooldown = Cooldown(camera.cooldown_s)
        self.source = f"camera:{camera.id}"
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task | None = None
        self._latest: dict = {}
        self._processed: deque[float] = deque(maxlen=50)
        self._processed_count = 0
        self._latencies: deque[float] = deque(maxlen=200)
        self._preview: Preview | None = None
        self._preview_changed: asyncio.Condition | None = None
        self._watched_at = -PREVIEW_IDLE_S
        self._drawn_at = 0.0
        self._announced: set[int] = set()  # tracks already reported as an unknown event
        self._present: dict[str, Presence] = {}  # people named lately, by person id
        self._frame: SourceFrame | None = None  # the frame whose events are being made
        self._last_state: str | None = None
        # monotonic time the manager's lease on this camera ends: past it, frames are not processed
        # (another worker may have taken the camera), so a camera is never decided by two processes
        self.lease_until = float("inf")
        self.started_at: float | None = None  # Unix time

    # ----------------------------------------------------------------- life

    async def start(self) -> None:
        self.started_at = round(time.time(), 3)
        self._loop = asyncio.get_running_loop()
        self._preview_changed = asyncio.Condition()
        self.reader.start()
        self._task = asyncio.create_task(self._run(), name=f"camera-{self.camera.id}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        await asyncio.to_thread(self.reader.stop)

    # ----------------------------------------------------------------- frames

    async def _run(self) -> None:
        interval = 1.0 / self.camera.fps
        due = time.monotonic()
        while True:
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            frame = self.reader.take(timeout=0)
            while frame is None:
                await asyncio.sleep(POLL_S)
                frame = self.reader.take(timeout=0)
            # on schedule (taken up to a quarter interval late): exactly ``fps``; after a stall, no burst
            # to catch up: two frames are never closer than three quarters of the interval
            due = max(due + interval, time.monotonic() + 0.75 * interval)
            if time.monotonic() > self.lease_until:  # this process may no longer own the camera: no decision
                continue
            drawing = self._preview_due()
            try:
                result, jpeg = await self.scheduler.run(self._process, frame, drawing, priority=BACKGROUND)
            except Exception as exc:  # one bad frame: counted in the log, the camera goes on
                log.warning("camera %s: a frame failed: %s", self.camera.name, exc)
                continue
            if result is not None:
                await self._publish(frame, result, jpeg)

    def _preview_due(self) -> bool:
        """Draw this frame's preview: someone watched lately and the preview's frame rate allows it."""
        now = time.monotonic()
        if now - self._watched_at > PREVIEW_IDLE_S or now - self._drawn_at < 1.0 / self.settings.restream_fps:
            return False
        self._drawn_at = now
        return True

    def _process(self, frame: SourceFrame, drawing: bool) -> tuple[TrackedFrame | None, bytes | None]:
        """Worker thread: track and decide, and draw the preview when someone watches."""
        result = self.session.process(frame.rgb, frame.wall_ts)
        return result, (self._draw(frame.rgb, result) if drawing and result is not None else None)

    @staticmethod
    def _draw(rgb: np.ndarray, result: TrackedFrame) -> bytes:
        boxes = []
        for face in result.faces:
            fused = face.fused
            label = fused.name if fused.is_match else ("unknown" if fused.status == "unknown" else "…")
            if fused.is_match:
                label = f"{label} {fused.confidence:.2f}"
            boxes.append((face.box, label, confidence_colour(fused.status, fused.confidence)))
        return encode_jpeg(np.asarray(draw_boxes(rgb, boxes)), quality=80)

    async def _publish(self, frame: SourceFrame, result: TrackedFrame, jpeg: bytes | None) -> None:
        now_wall, now = time.time(), time.monotonic()
        frame_wall = now_wall - (now - frame.wall_ts)
        self._latest = {
            "ts": round(frame_wall, 3),
            "width": result.width,
            "height": result.height,
            "tracks": [
                {
                    "track_id": f.track_id,
                    "person_id": f.fused.person_id,
                    "name": f.fused.name,
                    "decision": f.fused.status,
                    "confidence": round(f.fused.confidence, 4),
                    "reason": f.fused.reason,
                    "box": f.box.to_list(),
                    "since": round(now_wall - (now - f.since), 3),
                }
                for f in result.faces
            ],
        }
        self._processed.append(now)
        self._processed_count += 1
        self._latencies.append((now - frame.wall_ts) * 1000)
        self._frame = frame
        self._events(result, frame_wall)
        if jpeg is not None:
            async with self._preview_changed:
                seq = self._preview.seq + 1 if self._preview else 1
                self._preview = Preview(seq, jpeg)
                self._preview_changed.notify_all()

    def _events(self, result: TrackedFrame, frame_wall: float) -> None:
        """``recognized`` when a person is named after an absence of the cooldown, ``left`` once they have not
        been seen for the cooldown (stamped when last seen), ``unknown`` once per track nobody could name."""
        for face in result.faces:
            fused, box, track = face.fused, face.box.to_list(), face.track_id
            if fused.is_match:
                if self.cooldown.seen(fused.person_id, result.ts):
                    self._emit("recognized", frame_wall, track, fused.person_id, fused.name, fused.confidence, box)
                self._present[fused.person_id] = Presence(fused.name, track, box, result.ts, frame_wall)
            elif fused.status == "unknown" and fused.reason == "no_match" and track not in self._announced:
                self._announced.add(track)
                self._emit("unknown", frame_wall, track, None, None, fused.confidence, box)
        for person_id, seen in list(self._present.items()):
            if result.ts - seen.ts >= self.camera.cooldown_s:
                del self._present[person_id]
                self._emit("left", seen.wall_ts, seen.track_id, person_id, seen.name, None, seen.box)
        for update in result.updates:
            if update.kind == LOST:
                self._announced.discard(update.track_id)

    def _emit(
        self,
        kind: str,
        ts: float,
        track_id: int,
        person_id: str | None,
        name: str | None,
        confidence: float | None,
        box: list[float],
    ) -> None:
        decision = {"recognized": "PASS", "unknown": "REJECT", "left": "NO_FACE"}[kind]
        snapshot = face_snapshot(self._frame.rgb, Box(*box)) if kind != "left" and self._frame is not None else None
        self.bus.publish(
            Event(
                id=event_id(ts),
                ts=ts,
                kind=kind,
                source=self.source,
                collection=self.camera.collection,
                track_id=track_id,
                person_id=person_id,
                name=name,
                confidence=None if confidence is None else round(confidence, 4),
                decision=decision,
                box=tuple(box),
                snapshot=snapshot,
            )
        )

    def _on_state(self, state: str, error: str | None) -> None:
        """Reader thread: a state change; ``camera_down``/``camera_up`` events on the transitions."""
        previous, self._last_state = self._last_state, state
        if state == previous:
            return
        if state == "down" or (state == "live" and previous == "down"):
            kind = "camera_down" if state == "down" else "camera_up"
            self.bus.publish(Event(id=event_id(), ts=time.time(), kind=kind, source=self.source, detail=error))

    # ----------------------------------------------------------------- what others read

    def latest(self) -> dict:
        return dict(self._latest)

    def status(self) -> tuple[str, tuple[str, str] | None, dict]:
        """State, error (code, redacted detail) and statistics, as the store keeps them."""
        stats = self.reader.stats()
        now = time.monotonic()
        recent = [t for t in self._processed if now - t <= 5.0]
        processed_fps = (len(recent) - 1) / (recent[-1] - recent[0]) if len(recent) > 1 else 0.0
        error = (stats.last_error, stats.last_error_message or stats.last_error) if stats.last_error else None
        return (
            stats.state,
            error if stats.state != "live" else None,
            {
                "input_fps": None if stats.input_fps is None else round(stats.input_fps, 2),
                "processed_fps": round(processed_fps, 2),
                "processed": self._processed_count,
                "decoded": stats.decoded,
                "dropped": stats.dropped,
                "reconnects": stats.reconnects,
                "last_frame_age_s": None if stats.last_frame_ts is None else round(now - stats.last_frame_ts, 2),
                "tracks": len(self._latest.get("tracks", ())),
                "running_since": self.started_at,
            },
        )

    def latency_ms(self) -> list[float]:
        """Frame arrival -> decision visible, for the recent frames."""
        return list(self._latencies)

    async def preview(self, after: int, timeout: float) -> tuple[int, bytes] | None:
        """The next preview JPEG newer than ``after`` (waits up to ``timeout`` s), as (seq, jpeg)."""
        self._watched_at = time.monotonic()
        async with self._preview_changed:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self._preview_changed.wait_for(lambda: self._preview is not None and self._preview.seq > after),
                    timeout,
                )
            preview = self._preview
        if preview is None or preview.seq <= after:
            return None
        return preview.seq, preview.jpeg
