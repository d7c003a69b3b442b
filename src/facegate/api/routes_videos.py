"""REST v1: video files analysed as background jobs (upload, progress, timeline, exports, cancel)."""

from __future__ import annotations

import json
import os
from pathlib import Path, PurePath
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from facegate.api.auth import check_collection, require
from facegate.api.deps import Collection, runtime_of
from facegate.api.problems import ApiError
from facegate.service.video_jobs import move_into_place
from facegate.store.records import VideoJob
from facegate.vision.types import Box

router = APIRouter(prefix="/v1/videos", tags=["videos"])
admin = [Depends(require("admin"))]
viewer = [Depends(require("recognize"))]
RAW_TYPES = ("application/octet-stream",)
SUFFIXES = (".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".ts", ".mjpeg", ".mjpg", ".3gp")


class VideoInfoOut(BaseModel):
    duration_s: float | None = None
    fps: float | None = None
    width: int | None = None
    height: int | None = None
    truncated: bool | None = Field(
        default=None,
        description="a done job whose file stopped decoding early (cut off, or a decoder error halfway): "
        "its timeline covers 0 to truncated_at_s only; null until the job is done",
    )
    truncated_at_s: float | None = Field(default=None, description="where the decoding stopped, in seconds")
    truncated_code: str | None = Field(
        default=None, description="video_truncated (the file ends early) or the decoder's code (source_decode_failed…)"
    )
    truncated_detail: str | None = None


class VideoJobOut(BaseModel):
    id: str
    name: str
    collection: str
    state: str = Field(description="queued, running, done, failed (see error_code) or cancelled")
    progress: float = Field(description="0 to 1")
    processing_fps: float | None = Field(description="frames read per second of processing")
    eta_s: float | None
    attempts: int = Field(description="starts; a job whose process died is started again (at most twice)")
    error_code: str | None
    error_detail: str | None
    created_at: float
    started_at: float | None
    finished_at: float | None
    video: VideoInfoOut | None

    @classmethod
    def of(cls, job: VideoJob) -> VideoJobOut:
        video = job.video or {}
        return cls(
            id=job.id,
            name=job.name,
            collection=job.collection,
            state=job.state,
            progress=round(job.progress, 4),
            processing_fps=None if job.processing_fps is None else round(job.processing_fps, 2),
            eta_s=None if job.eta_s is None else round(job.eta_s, 1),
            attempts=job.attempts,
            error_code=job.error_code,
            error_detail=job.error_detail,
            created_at=job.created_at,
            started_at=job.started_at,
            finished_at=job.finished_at,
            video=VideoInfoOut(**{k: video.get(k) for k in VideoInfoOut.model_fields}) if video else None,
        )


def _visible(request: Request, job: VideoJob) -> VideoJob:
    check_collection(getattr(request.state, "api_key", None), job.collection)
    return job


def _body() -> dict:
    binary = {"type": "string", "format": "binary"}
    form = {"type": "object", "properties": {"file": binary}, "required": ["file"]}
    content = {"multipart/form-data": {"schema": form}, "application/octet-stream": {"schema": binary}}
    return {"requestBody": {"required": True, "content": content}}


async def _receive(request: Request, destination_for) -> tuple[str, Path]:
    """The uploaded file written to disk as it arrives (never whole in memory): (its name, its path)."""
    runtime = runtime_of(request)
    limit = runtime.settings.videos.max_video_bytes
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()

    def too_large() -> ApiError:
        return ApiError(f"the video is over the limit of {limit} bytes", code="video_too_large", status=413)

    if kind == "multipart/form-data":
        try:
            form = await request.form(max_files=1, max_fields=10)
        except ApiError:
            raise
        except Exception as exc:
            raise ApiError(f"cannot read the multipart form: {exc}", code="invalid_multipart", status=422) from None
        try:
            upload = form.get("file")
            if not isinstance(upload, UploadFile):
                raise ApiError("no video was sent as 'file'", code="video_missing", status=422)
            if (upload.size or 0) > limit:
                raise too_large()
            name = PurePath(upload.filename or "video").name
            path = destination_for(name)
            await run_in_threadpool(move_into_place, upload.file, path)
            return name, path
        finally:
            await form.close()
    if kind.startswith("video/") or kind in RAW_TYPES:
        name = PurePath(request.query_params.get("name") or "video").name[:255]
        path = destination_for(name)
        size = 0
        try:
            with open(path, "wb") as out:
                async for chunk in request.stream():
                    size += len(chunk)
                    if size > limit:
                        raise too_large()
                    await run_in_threadpool(out.write, chunk)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        return name, path
    raise ApiError(
        f"send the video as multipart/form-data (field 'file') or a raw video body; got {kind or 'nothing'}",
        code="unsupported_media_type",
    )


@router.post("", response_model=VideoJobOut, status_code=202, dependencies=admin, openapi_extra=_body())
async def upload(
    request: Request,
    collection: Collection = "default",
    fps: Annotated[float | None, Query(gt=0, le=60, description="frames analysed per second of video")] = None,
    every_frame: bool = False,
) -> VideoJobOut:
    """Queue a video file for analysis; follow it at ``GET /v1/videos/{id}``."""
    videos = runtime_of(request).videos
    await run_in_threadpool(runtime_of(request).people.get_collection, collection)

    def destination(name: str):
        suffix = os.path.splitext(name)[1].lower()
        return videos.upload_path(suffix if suffix in SUFFIXES else ".video")

    name, path = await _receive(request, destination)
    options = {"fps": fps, "every_frame": every_frame}
    job = await run_in_threadpool(videos.submit, path, name, collection, options)
    return VideoJobOut.of(job)


@router.get("", response_model=list[VideoJobOut], dependencies=viewer)
def list_jobs(request: Request) -> list[VideoJobOut]:
    """The newest jobs first (those of the key's collections)."""
    key = getattr(request.state, "api_key", None)
    return [VideoJobOut.of(j) for j in runtime_of(request).videos.list() if key is None or key.reaches(j.collection)]


@router.get("/{job_id}", response_model=VideoJobOut, dependencies=viewer)
def get_job(request: Request, job_id: str) -> VideoJobOut:
    return VideoJobOut.of(_visible(request, runtime_of(request).videos.get(job_id)))


@router.get(
    "/{job_id}/result",
    dependencies=viewer,
    responses={200: {"content": {"application/json": {}, "text/csv": {}}}},
)
def result(request: Request, job_id: str, format: Annotated[str, Query(pattern="^(json|csv)$")] = "json") -> Response:
    """The timeline: ``{"video": {"duration_s", "fps", "width", "height", "frames", "analysed_frames", "truncated",
    "truncated_at_s", "truncated_code", "truncated_detail"}, "people": [{"name", "person_id", "segments":
    [{"start_s", "end_s", "confidence"}], "seconds", "share", "tracks", "best_frame": {"t_s", "box"}}],
    "unknown": [{"label", ...}]}``, or CSV (one row per segment). A damaged file is analysed as far as it
    decodes: ``truncated`` true, ``truncated_at_s`` where it stopped. 409 ``video_not_done`` before the job
    is done."""
    videos = runtime_of(request).videos
    _visible(request, videos.get(job_id))
    if format == "csv":
        headers = {"Content-Disposition": f'attachment; filename="{job_id}.csv"'}
        return Response(videos.csv(job_id), media_type="text/csv", headers=headers)
    return Response(json.dumps(videos.result(job_id)), media_type="application/json")


@router.get("/{job_id}/file", response_class=FileResponse, dependencies=viewer)
def video_file(request: Request, job_id: str) -> FileResponse:
    """The uploaded video (HTTP Range supported), for a player."""
    job = _visible(request, runtime_of(request).videos.get(job_id))
    if not os.path.exists(job.path):
        raise ApiError("the video file is gone (retention)", code="video_not_found", status=404)
    return FileResponse(job.path, filename=job.name, content_disposition_type="inline")


@router.get("/{job_id}/frame.jpg", response_class=Response, dependencies=viewer)
async def frame(
    request: Request,
    job_id: str,
    t_s: Annotated[float, Query(ge=0, le=86400 * 7)],
    box: Annotated[str | None, Query(max_length=100, description="x1,y1,x2,y2: crop around it")] = None,
) -> Response:
    """The video at ``t_s`` seconds as JPEG, cropped around ``box`` (e.g. a best frame's) when given."""
    videos = runtime_of(request).videos
    await run_in_threadpool(_visible, request, await run_in_threadpool(videos.get, job_id))
    crop = None
    if box:
        try:
            crop = Box(*(float(v) for v in box.split(",")))
        except (TypeError, ValueError):
            raise ApiError("box is x1,y1,x2,y2 in pixels", code="invalid_box", status=422) from None
    jpeg = await runtime_of(request).scheduler.run(videos.frame, job_id, t_s, crop)
    return Response(jpeg, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=3600"})


@router.delete("/{job_id}", response_model=VideoJobOut, dependencies=admin, responses={204: {"description": "deleted"}})
def cancel_or_delete(request: Request, job_id: str) -> Response:
    """Cancel a queued or running job (answers it, ``cancelled``); delete a finished one and its files (204)."""
    videos = runtime_of(request).videos
    _visible(request, videos.get(job_id))
    job = videos.cancel_or_delete(job_id)
    if job is None:
        return Response(status_code=204)
    return Response(VideoJobOut.of(job).model_dump_json(), media_type="application/json")
