"""Runs this process's share of the cameras: claims their leases, starts and stops runners, reports status.

``facegate serve`` runs one (unless ``cameras.run_cameras`` is off) and so does every
``facegate worker``. Every ``camera_lease / 3`` seconds the manager renews its leases and
takes cameras nobody holds (a worker killed with ``kill -9`` stops renewing: its cameras
are free once their lease ends); every second it writes each runner's status to the store,
so any process can answer ``GET /v1/cameras``. A camera whose definition changed is restarted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import time

from facegate.config import CameraSettings
from facegate.events.bus import EventBus
from facegate.service.camera_runner import CameraRunner
from facegate.service.pipeline import FrameProcessor
from facegate.service.scheduler import FairScheduler
from facegate.store.cameras import CameraStore
from facegate.store.records import Camera, CameraStatus
from facegate.vision.image import ImageLimits

log = logging.getLogger(__name__)

REPORT_EVERY_S = 1.0


def worker_name() -> str:
    """This process, as leases and statuses name it: ``host:pid``."""
    return f"{socket.gethostname()}:{os.getpid()}"


class CameraManager:
    """The cameras this process runs."""

    def __init__(
        self,
        store: CameraStore,
        processor: FrameProcessor,
        scheduler: FairScheduler,
        settings: CameraSettings,
        limits: ImageLimits,
        bus: EventBus,
        worker: str | None = None,
    ) -> None:
        self.store = store
        self.processor = processor
        self.scheduler = scheduler
        self.settings = settings
        self.limits = limits
        self.bus = bus
        self.worker = worker or worker_name()
        self._runners: dict[str, CameraRunner] = {}
        self._task: asyncio.Task | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._supervise(), name="camera-manager")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        runners, self._runners = list(self._runners.values()), {}
        await asyncio.gather(*(r.stop() for r in runners), return_exceptions=True)
        with contextlib.suppress(Exception):
            await asyncio.to_thread(self.store.release, self.worker)

    def runner(self, camera_id: str) -> CameraRunner | None:
        return self._runners.get(camera_id)

    def latest(self, camera_id: str) -> dict | None:
        runner = self._runners.get(camera_id)
        return None if runner is None else runner.latest()

    @property
    def running(self) -> list[str]:
        return sorted(self._runners)

    async def _supervise(self) -> None:
        claim_every = self.settings.camera_lease / 3
        claimed_at = float("-inf")
        while True:
            try:
                if time.monotonic() - claimed_at >= claim_every:
                    claimed_at = time.monotonic()
                    await self._claim()
                await self._report()
            except asyncio.CancelledError:
                raise
            except Exception:  # the database did not answer: try again at the next turn
                log.warning("camera supervision failed", exc_info=True)
            await asyncio.sleep(REPORT_EVERY_S)

    async def _claim(self) -> None:
        asked = time.monotonic()
        held = set(await asyncio.to_thread(self.store.claim, self.worker, self.settings.camera_lease))
        # the leases run from before the claim was asked: a runner stops processing when they would end
        valid_until = asked + self.settings.camera_lease
        cameras = {c.id: c for c in await asyncio.to_thread(self.store.list)}
        for camera_id, runner in list(self._runners.items()):
            current = cameras.get(camera_id)
            if camera_id not in held or current is None or current != runner.camera:
                await self._stop_runner(camera_id)
        for camera_id in sorted(held - set(self._runners)):
            if camera_id in cameras:
                await self._start_runner(cameras[camera_id])
        for camera_id in held & set(self._runners):
            self._runners[camera_id].lease_until = valid_until

    async def _start_runner(self, camera: Camera) -> None:
        url = await asyncio.to_thread(self.store.source_url, camera.id)
        runner = CameraRunner(camera, url, self.processor, self.scheduler, self.settings, self.limits, self.bus)
        await runner.start()
        self._runners[camera.id] = runner
        log.info("camera %s (%s) started by %s", camera.name, camera.url, self.worker)

    async def _stop_runner(self, camera_id: str) -> None:
        runner = self._runners.pop(camera_id)
        await runner.stop()
        log.info("camera %s stopped by %s", runner.camera.name, self.worker)

    def statuses(self) -> dict[str, CameraStatus]:
        """The status of the cameras running here, as of now (the store's copy is up to a second old)."""
        now = time.time()
        out = {}
        for camera_id, runner in list(self._runners.items()):
            state, error, stats = runner.status()
            code, detail = error if error else (None, None)
            out[camera_id] = CameraStatus(camera_id, self.worker, state, code, detail, stats, runner.latest(), now)
        return out

    async def _report(self) -> None:
        for camera_id, status in self.statuses().items():
            error = (status.error_code, status.error_detail) if status.error_code else None
            await asyncio.to_thread(
                self.store.report, camera_id, self.worker, status.state, error, status.stats, status.latest
            )
