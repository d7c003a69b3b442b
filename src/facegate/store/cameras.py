"""Cameras as data: definitions, the lease of the worker that runs each, and their reported status.

A camera is run by one process at a time. A process claims cameras by taking their lease
(``lease_owner``/``lease_until``) in one transaction that skips rows another transaction holds
(``FOR UPDATE SKIP LOCKED`` on PostgreSQL; SQLite serialises writers anyway), renews it while
it runs them, and loses it when it stops renewing (killed): another process then takes over.
"""

from __future__ import annotations

import math
import time

from sqlalchemy import delete, func, or_, select
from sqlalchemy.exc import IntegrityError

from facegate.core.ids import new_id
from facegate.core.urls import redact_url
from facegate.store.errors import StoreError
from facegate.store.records import Camera, CameraFields, CameraStatus
from facegate.store.repository import Store
from facegate.store.schema import CameraRow, CameraStatusRow, CameraWorkerRow, CollectionRow

# a camera given up for another worker's share is free for others only after this long: the worker
# giving it up stops its runner first (milliseconds), so no frame is decided by both
HANDOVER_GRACE_S = 2.0


def _camera(row: CameraRow, collection: str) -> Camera:
    return Camera(
        row.public_id,
        row.name,
        redact_url(row.url),
        collection,
        row.enabled,
        row.fps,
        row.cooldown_s,
        row.min_face_px,
        row.created_at,
        row.updated_at,
    )


def _status(row: CameraStatusRow, camera_id: str) -> CameraStatus:
    return CameraStatus(
        camera_id,
        row.worker,
        row.state,
        row.error_code,
        row.error_detail,
        dict(row.stats or {}),
        dict(row.latest or {}),
        row.updated_at,
    )


class CameraStore:
    """Cameras in the facegate database."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def _row(self, session, camera_id: str) -> CameraRow:
        row = session.scalar(select(CameraRow).where(CameraRow.public_id == camera_id))
        if row is None:
            raise StoreError(f"no camera with id {camera_id!r}", code="camera_not_found")
        return row

    @staticmethod
    def _collection_name(session, collection_id: int) -> str:
        return session.scalar(select(CollectionRow.name).where(CollectionRow.id == collection_id))

    def create(self, fields: CameraFields, *, fps: float, cooldown_s: float, min_face_px: int) -> Camera:
        """A new camera (``fields.name`` and ``fields.url`` are required; defaults fill the rest)."""
        if not fields.name or not fields.url:
            raise StoreError("a camera needs a name and a URL", code="invalid_camera")
        fields.check()
        try:
            with self._store.transaction() as session:
                coll = self._store.collection_row(session, fields.collection or "default")
                row = CameraRow(
                    public_id=new_id("cam"),
                    name=fields.name.strip(),
                    url=fields.url,
                    collection_id=coll.id,
                    enabled=True if fields.enabled is None else fields.enabled,
                    fps=fps if fields.fps is None else fields.fps,
                    cooldown_s=cooldown_s if fields.cooldown_s is None else fields.cooldown_s,
                    min_face_px=min_face_px if fields.min_face_px is None else fields.min_face_px,
                )
                CameraFields(fps=row.fps, cooldown_s=row.cooldown_s, min_face_px=row.min_face_px).check()
                session.add(row)
                session.flush()
                return _camera(row, coll.name)
        except IntegrityError:
            raise StoreError(f"a camera named {fields.name.strip()!r} exists already", code="duplicate_name") from None

    def update(self, camera_id: str, fields: CameraFields) -> Camera:
        """Change some fields of a camera; a new URL or collection restarts it where it runs."""
        fields.check()
        try:
            with self._store.transaction() as session:
                row = self._row(session, camera_id)
                if fields.collection is not None:
                    row.collection_id = self._store.collection_row(session, fields.collection).id
                for name in ("url", "enabled", "fps", "cooldown_s", "min_face_px"):
                    value = getattr(fields, name)
                    if value is not None:
                        setattr(row, name, value)
                if fields.name is not None:
                    row.name = fields.name.strip()
                row.updated_at = time.time()
                session.flush()
                return _camera(row, self._collection_name(session, row.collection_id))
        except IntegrityError:
            raise StoreError(f"a camera named {fields.name!r} exists already", code="duplicate_name") from None

    def delete(self, camera_id: str) -> None:
        with self._store.transaction() as session:
            session.delete(self._row(session, camera_id))

    def get(self, camera_id: str) -> Camera:
        with self._store.transaction() as session:
            row = self._row(session, camera_id)
            return _camera(row, self._collection_name(session, row.collection_id))

    def list(self) -> list[Camera]:
        """Every camera, by name."""
        with self._store.transaction() as session:
            rows = session.execute(
                select(CameraRow, CollectionRow.name).join(CollectionRow).order_by(CameraRow.name)
            ).all()
            return [_camera(row, name) for row, name in rows]

    def source_url(self, camera_id: str) -> str:
        """The camera's URL with its credentials: only for the process that opens it."""
        with self._store.transaction() as session:
            return self._row(session, camera_id).url

    def in_collection(self, collection: str) -> list[str]:
        """The names of the cameras that decide against a collection."""
        with self._store.transaction() as session:
            rows = session.scalars(
                select(CameraRow.name).join(CollectionRow).where(CollectionRow.name == collection)
            ).all()
            return list(rows)

    # ----------------------------------------------------------------- leases

    def claim(self, worker: str, lease_s: float) -> list[str]:
        """Renew this worker's leases and take free or expired ones, up to its share; returns what it holds.

        Workers whose last claim's lease has not ended are alive; each holds at most
        ``ceil(enabled cameras / workers alive)``, so a second worker gets half of the cameras
        (the first gives up its extra ones at its next claim) and a worker that dies leaves its
        cameras to the others once their lease ends. Rows another claiming transaction holds are
        skipped (``FOR UPDATE SKIP LOCKED``), so two workers never take one camera.
        """
        now = time.time()
        self._heartbeat(worker, now + lease_s)
        with self._store.transaction() as session:
            alive = session.scalar(
                select(func.count()).select_from(CameraWorkerRow).where(CameraWorkerRow.alive_until > now)
            )
            enabled = session.scalar(select(func.count()).select_from(CameraRow).where(CameraRow.enabled.is_(True)))
            share = math.ceil(enabled / max(1, alive or 1))
            rows = session.scalars(
                select(CameraRow)
                .where(
                    CameraRow.enabled.is_(True),
                    or_(
                        CameraRow.lease_owner == worker,
                        CameraRow.lease_until.is_(None),
                        CameraRow.lease_until < now,
                    ),
                )
                .order_by(CameraRow.id)
                .with_for_update(skip_locked=True)
            ).all()
            mine = [r for r in rows if r.lease_owner == worker]
            free = [r for r in rows if r.lease_owner != worker]
            for row in mine[share:]:  # more than its share: another worker came; give these up, after a grace
                row.lease_owner, row.lease_until = None, now + HANDOVER_GRACE_S  # in which this worker stops them
            held = mine[:share] + free[: max(0, share - len(mine))]
            for row in held:
                row.lease_owner, row.lease_until = worker, now + lease_s
            return [r.public_id for r in held]

    def _heartbeat(self, worker: str, alive_until: float) -> None:
        with self._store.transaction() as session:
            row = session.get(CameraWorkerRow, worker)
            if row is None:
                try:
                    with session.begin_nested():
                        session.add(CameraWorkerRow(name=worker, alive_until=alive_until))
                except IntegrityError:  # the same name from a restarted process: fine, it is us
                    session.get(CameraWorkerRow, worker).alive_until = alive_until
            else:
                row.alive_until = alive_until

    def release(self, worker: str, camera_ids: list[str] | None = None) -> None:
        """Give leases back (all of this worker's, or those named) so another worker may start at once."""
        with self._store.transaction() as session:
            query = select(CameraRow).where(CameraRow.lease_owner == worker)
            if camera_ids is not None:
                query = query.where(CameraRow.public_id.in_(camera_ids))
            for row in session.scalars(query):
                row.lease_owner = row.lease_until = None
            if camera_ids is None:  # the worker stops: it no longer counts among the workers alive
                session.execute(delete(CameraWorkerRow).where(CameraWorkerRow.name == worker))

    # ----------------------------------------------------------------- status

    def report(
        self,
        camera_id: str,
        worker: str,
        state: str,
        error: tuple[str, str] | None,
        stats: dict,
        latest: dict,
    ) -> None:
        """Record a camera's state, statistics and current tracks (replaces the previous report)."""
        with self._store.transaction() as session:
            row = session.scalar(select(CameraRow).where(CameraRow.public_id == camera_id))
            if row is None:  # deleted meanwhile
                return
            status = session.get(CameraStatusRow, row.id)
            if status is None:
                status = CameraStatusRow(camera_id=row.id)
                session.add(status)
            status.worker, status.state = worker, state
            status.error_code, status.error_detail = error if error else (None, None)
            status.stats, status.latest, status.updated_at = stats, latest, time.time()

    def statuses(self) -> dict[str, CameraStatus]:
        """The last report of every camera that has one, by camera id."""
        with self._store.transaction() as session:
            rows = session.execute(select(CameraStatusRow, CameraRow.public_id).join(CameraRow)).all()
            return {cid: _status(row, cid) for row, cid in rows}

    def status(self, camera_id: str) -> CameraStatus | None:
        with self._store.transaction() as session:
            row = self._row(session, camera_id)
            status = session.get(CameraStatusRow, row.id)
            return None if status is None else _status(status, camera_id)
