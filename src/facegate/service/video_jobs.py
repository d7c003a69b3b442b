"""Video jobs: an uploaded file becomes a background job with progress, a timeline, exports and a retention.

:class:`VideoJobs` are the use cases (submit a file already on disk, list, get, result, cancel,
delete, a frame of a video). :class:`VideoJobRunner` is the loop a server runs: it claims the
oldest queued job (or one whose process died: resumed from the start), analyses it in a thread
with each analysed frame queued on the scheduler at batch priority (after cameras and
interactive clients), reports progress with the lease about twice a second, stops at the next
frame when the job is cancelled, and removes uploads and results past the retention.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import time
from pathlib import Path

import numpy as np

from facegate.config import Settings
from facegate.core.errors import FacegateError
from facegate.service.pipeline import FrameProcessor
from facegate.service.scheduler import BATCH, FairScheduler
from facegate.service.video import VideoAnalysis, VideoOptions, timeline_csv_rows
from facegate.sources.base import SourceError
from facegate.sources.ffmpeg import AvSource
from facegate.store.errors import StoreError
from facegate.store.records import VideoJob
from facegate.store.videos import VideoJobStore
from facegate.vision.crop import crop_around
from facegate.vision.image import encode_jpeg
from facegate.vision.types import Box

log = logging.getLogger(__name__)

REPORT_EVERY_S = 0.5
IDLE_POLL_S = 1.0
CROP_MARGIN = 0.4  # around a face box, for a thumbnail


class VideoError(FacegateError):
    """A video upload or job refused (too long, not done yet, ...)."""

    code = "video_error"


class VideoJobs:
    """The use cases of video jobs; files live in ``<data dir>/videos``."""

    def __init__(self, store: VideoJobStore, settings: Settings) -> None:
        self.store = store
        self.settings = settings
        self.folder = settings.data_dir / "videos"

    def upload_path(self, suffix: str) -> Path:
        """A new file name for an upload (the folder is made on demand)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        return self.folder / f"upload-{time.time_ns()}{suffix[:10]}"

    def probe(self, path: Path) -> dict:
        """What the file is (raises ``SourceError`` for a non-video, ``VideoError`` past the limits)."""
        source = AvSource(str(path), live=False, max_pixels=self.settings.limits.max_image_pixels)
        try:
            info = source.open()
        except SourceError as exc:  # its message names the file: not this server's paths, to a client
            raise SourceError(exc.message.replace(str(path), "the upload"), code=exc.code) from None
        finally:
            source.close()
        fps = info.fps or 0.0
        duration = (info.frames or 0) / fps if fps else 0.0
        limit = self.settings.videos.max_video_seconds
        if duration > limit:
            raise VideoError(f"the video lasts {duration:.0f} s; the limit is {limit:.0f} s", code="video_too_long")
        return {"duration_s": round(duration, 2), "fps": round(fps, 3), "width": info.width, "height": info.height}

    def submit(self, path: Path, name: str, collection: str, options: dict | None = None) -> VideoJob:
        """Queue an uploaded file (already checked by :meth:`probe`, or probed here); removed if refused."""
        try:
            video = self.probe(path)
            return self.store.create(name, collection, str(path), dict(options or {}), video)
        except BaseException:
            path.unlink(missing_ok=True)
            raise

    def list(self) -> list[VideoJob]:
        return self.store.list()

    def get(self, job_id: str) -> VideoJob:
        return self.store.get(job_id)

    def result(self, job_id: str) -> dict:
        job = self.store.get(job_id)
        if job.state != "done":
            raise VideoError(f"the job is {job.state}, not done", code="video_not_done")
        return self.store.result(job_id) or {}

    def csv(self, job_id: str) -> str:
        import csv
        import io

        out = io.StringIO()
        csv.writer(out).writerows(timeline_csv_rows(self.result(job_id)))
        return out.getvalue()

    def cancel_or_delete(self, job_id: str) -> VideoJob | None:
        """Cancel a queued or running job (returns it); delete a finished one with its file (returns None)."""
        job = self.store.get(job_id)
        if not job.finished:
            return self.store.cancel(job_id)
        Path(self.store.delete(job_id)).unlink(missing_ok=True)
        return None

    def frame(self, job_id: str, t_s: float, box: Box | None = None) -> bytes:
        """The video at ``t_s`` as JPEG, cropped around ``box`` (with a margin) when given."""
        job = self.store.get(job_id)
        rgb = frame_at(job.path, t_s, self.settings.limits.max_image_pixels)
        return encode_jpeg(crop_around(rgb, box, CROP_MARGIN) if box is not None else rgb, quality=88)

    def remove_expired(self) -> int:
        """Delete jobs, uploads and results past the retention; returns how many."""
        before = time.time() - self.settings.videos.video_retention_days * 86400
        removed = 0
        for job_id, path in self.store.expired(before):
            with contextlib.suppress(StoreError):
                self.store.delete(job_id)
                Path(path).unlink(missing_ok=True)
                removed += 1
        return removed


def frame_at(path: str, t_s: float, max_pixels: int) -> np.ndarray:
    """The decoded frame shown at ``t_s`` seconds (the last one before it, reading from the nearest keyframe)."""
    import av

    with av.open(path) as container:
        stream = container.streams.video[0]
        if stream.width * stream.height > max_pixels:
            raise SourceError("the video's frames are over the pixel limit", code="frame_too_large")
        if stream.time_base:
            container.seek(max(0, int(t_s / stream.time_base)), stream=stream, backward=True)
        chosen = None
        for frame in container.decode(stream):
            if chosen is not None and frame.time is not None and frame.time > t_s + 1e-6:
                break
            chosen = frame
        if chosen is None:
            raise SourceError(f"no frame at {t_s} s", code="source_ended")
        return chosen.to_ndarray(format="rgb24")


class VideoJobRunner:
    """Runs this process's video jobs, one at a time, until :meth:`stop`."""

    def __init__(
        self,
        jobs: VideoJobs,
        processor: FrameProcessor,
        scheduler: FairScheduler,
        worker: str,
    ) -> None:
        self.jobs = jobs
        self.processor = processor
        self.scheduler = scheduler
        self.worker = worker
        self.settings = jobs.settings.videos
        self._task: asyncio.Task | None = None
        self._cancelled = False

    async def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="video-jobs")

    async def stop(self) -> None:
        self._cancelled = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task

    async def _loop(self) -> None:
        cleaned = 0.0
        while True:
            try:
                if time.monotonic() - cleaned > 3600:
                    cleaned = time.monotonic()
                    await asyncio.to_thread(self.jobs.remove_expired)
                job = await asyncio.to_thread(self.jobs.store.claim, self.worker, self.settings.video_lease)
                if job is None:
                    await asyncio.sleep(IDLE_POLL_S)
                    continue
                await self._run(job)
            except asyncio.CancelledError:
                raise
            except Exception:  # the database did not answer: try again
                log.warning("video job loop failed", exc_info=True)
                await asyncio.sleep(IDLE_POLL_S)

    async def _run(self, job: VideoJob) -> None:
        loop = asyncio.get_running_loop()
        store, lease = self.jobs.store, self.settings.video_lease
        started, last_report, state = time.monotonic(), [0.0], ["running"]
        options = VideoOptions(
            collection=job.collection,
            analysis_fps=float(job.options.get("fps") or self.settings.video_analysis_fps),
            every_frame=bool(job.options.get("every_frame", False)),
        )
        analysis = VideoAnalysis(self.processor, options, max_pixels=self.jobs.settings.limits.max_image_pixels)

        def execute(fn, *args):  # the job's thread: the frame's work waits its turn on the scheduler
            future = asyncio.run_coroutine_threadsafe(self.scheduler.run(fn, *args, priority=BATCH), loop)
            return future.result()

        def progress(done: int, total: int | None) -> None:
            now = time.monotonic()
            if now - last_report[0] < REPORT_EVERY_S:
                return
            last_report[0] = now
            elapsed = now - started
            fraction = min(1.0, done / total) if total else 0.0
            fps = done / elapsed if elapsed > 0 else None
            eta = (total - done) / fps if total and fps else None
            state[0] = store.report(job.id, self.worker, lease, fraction, fps, eta)

        def cancelled() -> bool:
            return self._cancelled or state[0] != "running"

        try:
            result = await asyncio.to_thread(analysis.run, job.path, progress, cancelled, None, execute)
        except (SourceError, FacegateError) as exc:
            await asyncio.to_thread(store.finish, job.id, self.worker, "failed", None, (exc.code, exc.message))
            return
        except Exception as exc:
            log.exception("video job %s failed", job.id)
            detail = f"{type(exc).__name__} while analysing the video"
            await asyncio.to_thread(store.finish, job.id, self.worker, "failed", None, ("internal_error", detail))
            return
        if self._cancelled:  # this process is stopping: the job is left to be resumed
            return
        final = "cancelled" if state[0] == "cancelled" else "done"
        await asyncio.to_thread(store.finish, job.id, self.worker, final, result.to_dict())
        log.info("video job %s %s in %.1f s", job.id, final, time.monotonic() - started)


def move_into_place(source, destination: Path) -> None:
    """Copy an uploaded (spooled) file to its place on disk."""
    with open(destination, "wb") as out:
        shutil.copyfileobj(source, out, 1024 * 1024)
