"""Cameras as use cases: add, change, remove and list them, with the status of whoever runs them.

The definitions live in the store; :class:`~facegate.service.camera_manager.CameraManager`
(in ``facegate serve`` or a ``facegate worker``) runs the enabled ones and reports their
status. A status older than :data:`STALE_AFTER_LEASES` leases is shown as ``unknown``: the
process that ran the camera is gone and no other has taken it yet.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from facegate.config import CameraSettings
from facegate.sources.registry import validate_camera_url
from facegate.store.cameras import CameraStore
from facegate.store.records import Camera, CameraFields, CameraStatus

STALE_AFTER_LEASES = 1.5


@dataclass(frozen=True)
class CameraView:
    """A camera with its current status (``state`` ``stopped`` when disabled, ``unknown`` when nobody runs it)."""

    camera: Camera
    state: str
    error_code: str | None
    error_detail: str | None
    worker: str | None
    stats: dict
    status_age_s: float | None


class Cameras:
    """Camera definitions, checked (URL scheme, ranges, collection) before they are stored."""

    def __init__(self, store: CameraStore, settings: CameraSettings) -> None:
        self._store = store
        self._settings = settings

    def _checked(self, fields: CameraFields) -> CameraFields:
        if fields.url is not None:
            validate_camera_url(fields.url, allow_files=self._settings.allow_file_cameras)
        return fields

    def add(self, fields: CameraFields) -> Camera:
        s = self._settings
        return self._store.create(
            self._checked(fields), fps=s.camera_fps, cooldown_s=s.camera_cooldown, min_face_px=s.camera_min_face_px
        )

    def update(self, camera_id: str, fields: CameraFields) -> Camera:
        return self._store.update(camera_id, self._checked(fields))

    def remove(self, camera_id: str) -> None:
        self._store.delete(camera_id)

    def get(self, camera_id: str) -> Camera:
        return self._store.get(camera_id)

    def list(self) -> list[Camera]:
        return self._store.list()

    def view(self, camera: Camera, status: CameraStatus | None = None) -> CameraView:
        """The camera with its last reported status (read from the store unless given)."""
        status = status if status is not None else self._store.status(camera.id)
        if not camera.enabled:
            return CameraView(camera, "stopped", None, None, None, {}, None)
        if status is None:
            return CameraView(camera, "unknown", None, None, None, {}, None)
        age = max(0.0, time.time() - status.updated_at)
        state = "unknown" if age > STALE_AFTER_LEASES * self._settings.camera_lease else status.state
        return CameraView(camera, state, status.error_code, status.error_detail, status.worker, status.stats, age)

    def views(self, fresh: dict[str, CameraStatus] | None = None) -> list[CameraView]:
        """Every camera with its status: ``fresh`` ones (of the cameras this process runs) before the store's."""
        statuses = {**self._store.statuses(), **(fresh or {})}
        return [self.view(c, statuses.get(c.id)) for c in self._store.list()]

    def latest(self, camera_id: str) -> dict:
        """The camera's current tracks as its runner last reported them (``{}`` before any)."""
        self._store.get(camera_id)  # camera_not_found
        status = self._store.status(camera_id)
        return dict(status.latest) if status else {}
