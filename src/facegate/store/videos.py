"""Video jobs in the database: queued by an upload, claimed by one process at a time, resumed when it dies.

A process runs a job while it holds the job's lease (``owner``/``lease_until``, renewed with
each progress report). A job whose lease ran out (its process was killed) is claimed again
from the start; after ``MAX_ATTEMPTS`` such starts it is ``failed`` with ``interrupted``, so a
file that kills the process cannot loop forever, and no job stays ``running`` forever.
"""

from __future__ import annotations

import time

from sqlalchemy import and_, or_, select

from facegate.core.ids import new_id
from facegate.store.errors import StoreError
from facegate.store.records import VideoJob
from facegate.store.repository import Store
from facegate.store.schema import CollectionRow, VideoJobRow

MAX_ATTEMPTS = 2
FINISHED = ("done", "failed", "cancelled")


def _job(row: VideoJobRow, collection: str) -> VideoJob:
    return VideoJob(
        row.public_id,
        row.name,
        collection,
        row.path,
        dict(row.options or {}),
        row.state,
        row.progress,
        row.processing_fps,
        row.eta_s,
        row.attempts,
        row.error_code,
        row.error_detail,
        row.video,
        row.created_at,
        row.started_at,
        row.finished_at,
    )


class VideoJobStore:
    """Video jobs in the facegate database."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def _row(self, session, job_id: str) -> VideoJobRow:
        row = session.scalar(select(VideoJobRow).where(VideoJobRow.public_id == job_id))
        if row is None:
            raise StoreError(f"no video job with id {job_id!r}", code="video_not_found")
        return row

    def _record(self, session, row: VideoJobRow) -> VideoJob:
        name = session.scalar(select(CollectionRow.name).where(CollectionRow.id == row.collection_id))
        return _job(row, name)

    def create(self, name: str, collection: str, path: str, options: dict, video: dict | None = None) -> VideoJob:
        with self._store.transaction() as session:
            coll = self._store.collection_row(session, collection)
            row = VideoJobRow(
                public_id=new_id("vid"),
                name=name[:255] or "video",
                collection_id=coll.id,
                path=path,
                options=options,
                state="queued",
                progress=0.0,
                attempts=0,
                video=video,
            )
            session.add(row)
            session.flush()
            return _job(row, coll.name)

    def get(self, job_id: str) -> VideoJob:
        with self._store.transaction() as session:
            return self._record(session, self._row(session, job_id))

    def list(self, limit: int = 200) -> list[VideoJob]:
        """The newest jobs first."""
        with self._store.transaction() as session:
            rows = session.execute(
                select(VideoJobRow, CollectionRow.name)
                .join(CollectionRow)
                .order_by(VideoJobRow.created_at.desc(), VideoJobRow.id.desc())
                .limit(limit)
            ).all()
            return [_job(row, name) for row, name in rows]

    def result(self, job_id: str) -> dict | None:
        with self._store.transaction() as session:
            return self._row(session, job_id).result

    def claim(self, worker: str, lease_s: float) -> VideoJob | None:
        """The oldest queued job, or a running one whose process stopped renewing it, now running here."""
        now = time.time()
        with self._store.transaction() as session:
            row = session.scalar(
                select(VideoJobRow)
                .where(
                    or_(
                        VideoJobRow.state == "queued",
                        and_(VideoJobRow.state == "running", VideoJobRow.lease_until < now),
                    )
                )
                .order_by(VideoJobRow.created_at, VideoJobRow.id)
                .limit(1)
                .with_for_update(skip_locked=True)
            )
            if row is None:
                return None
            if row.attempts >= MAX_ATTEMPTS:  # started this often and its process died every time
                row.state, row.finished_at, row.owner, row.lease_until = "failed", now, None, None
                row.error_code = "interrupted"
                row.error_detail = f"the process analysing it stopped {row.attempts} times"
                return None
            row.state, row.owner, row.lease_until = "running", worker, now + lease_s
            row.attempts += 1
            row.progress, row.started_at = 0.0, now
            row.error_code = row.error_detail = None
            return self._record(session, row)

    def report(
        self,
        job_id: str,
        worker: str,
        lease_s: float,
        progress: float,
        processing_fps: float | None,
        eta_s: float | None,
        video: dict | None = None,
    ) -> str:
        """Record progress and renew the lease; returns the job's state (``cancelled``: stop; a state other than
        ``running`` or another owner: this process lost the job)."""
        with self._store.transaction() as session:
            row = session.scalar(select(VideoJobRow).where(VideoJobRow.public_id == job_id))
            if row is None:
                return "deleted"
            if row.state != "running" or row.owner != worker:
                return row.state if row.state != "running" else "lost"
            row.progress, row.processing_fps, row.eta_s = progress, processing_fps, eta_s
            row.lease_until = time.time() + lease_s
            if video is not None:
                row.video = video
            return row.state

    def finish(self, job_id: str, worker: str, state: str, result: dict | None = None, error=None) -> None:
        """End a job this worker runs: ``done`` with its result, ``failed`` with (code, detail), ``cancelled``."""
        with self._store.transaction() as session:
            row = session.scalar(select(VideoJobRow).where(VideoJobRow.public_id == job_id))
            if row is None or row.owner != worker or row.state not in ("running", "cancelled"):
                return
            row.state = "cancelled" if row.state == "cancelled" else state
            row.finished_at, row.owner, row.lease_until, row.eta_s = time.time(), None, None, 0.0
            if row.state == "done":
                row.progress, row.result = 1.0, result
                if result is not None:
                    row.video = result.get("video")
            if error is not None:
                row.error_code, row.error_detail = error[0], error[1][:500]

    def cancel(self, job_id: str) -> VideoJob:
        """Stop a queued or running job (the process running it stops at its next frame)."""
        with self._store.transaction() as session:
            row = self._row(session, job_id)
            if row.state in ("queued", "running"):
                row.state = "cancelled"
                if row.owner is None:
                    row.finished_at = time.time()
            return self._record(session, row)

    def delete(self, job_id: str) -> str:
        """Forget a finished job; returns its file's path (for the caller to remove)."""
        with self._store.transaction() as session:
            row = self._row(session, job_id)
            if row.state not in FINISHED:
                raise StoreError("cancel the job before deleting it", code="video_running")
            path = row.path
            session.delete(row)
            return path

    def expired(self, before: float) -> list[tuple[str, str]]:
        """(id, path) of the jobs that finished before ``before`` (retention)."""
        with self._store.transaction() as session:
            rows = session.execute(
                select(VideoJobRow.public_id, VideoJobRow.path).where(
                    VideoJobRow.state.in_(FINISHED), VideoJobRow.finished_at < before
                )
            ).all()
            return [(job_id, path) for job_id, path in rows]
