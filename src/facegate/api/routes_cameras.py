"""REST v1: cameras (add, change, remove: scope ``admin``), their status, current tracks and live view."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from facegate.api.auth import check_collection, require
from facegate.api.camera_schemas import CameraCreate, CameraOut, CameraUpdate, LatestOut
from facegate.api.deps import runtime_of
from facegate.api.problems import ApiError
from facegate.store.records import Camera

router = APIRouter(prefix="/v1/cameras", tags=["cameras"])
admin = [Depends(require("admin"))]
viewer = [Depends(require("recognize"))]
BOUNDARY = "facegate-frame"


def _visible(request: Request, camera: Camera) -> Camera:
    """The camera, if the request's key may use its collection (403 ``collection_forbidden`` otherwise)."""
    check_collection(getattr(request.state, "api_key", None), camera.collection)
    return camera


@router.get("", response_model=list[CameraOut], dependencies=viewer)
def list_cameras(request: Request) -> list[CameraOut]:
    """Every camera the key may see, with its state and statistics."""
    key = getattr(request.state, "api_key", None)
    runtime = runtime_of(request)
    views = runtime.cameras.views(runtime.camera_manager.statuses() if runtime.camera_manager else None)
    return [CameraOut.of(v) for v in views if key is None or key.reaches(v.camera.collection)]


@router.post("", response_model=CameraOut, status_code=201, dependencies=admin)
def add_camera(request: Request, body: CameraCreate) -> CameraOut:
    """A new camera; an enabled one starts within a few seconds (``state`` goes ``connecting`` → ``live``)."""
    cameras = runtime_of(request).cameras
    return CameraOut.of(cameras.view(cameras.add(body.fields())))


@router.get("/{camera_id}", response_model=CameraOut, dependencies=viewer)
def get_camera(request: Request, camera_id: str) -> CameraOut:
    runtime = runtime_of(request)
    camera = _visible(request, runtime.cameras.get(camera_id))
    fresh = runtime.camera_manager.statuses().get(camera_id) if runtime.camera_manager else None
    return CameraOut.of(runtime.cameras.view(camera, fresh))


@router.patch("/{camera_id}", response_model=CameraOut, dependencies=admin)
def update_camera(request: Request, camera_id: str, body: CameraUpdate) -> CameraOut:
    """Change a camera; a new URL, collection or setting restarts it where it runs."""
    cameras = runtime_of(request).cameras
    return CameraOut.of(cameras.view(cameras.update(camera_id, body.fields())))


@router.delete("/{camera_id}", status_code=204, dependencies=admin)
def remove_camera(request: Request, camera_id: str) -> Response:
    """Stop and forget a camera."""
    runtime_of(request).cameras.remove(camera_id)
    return Response(status_code=204)


@router.get("/{camera_id}/latest", response_model=LatestOut, dependencies=viewer)
def latest(request: Request, camera_id: str) -> LatestOut:
    """The camera's current tracks: who is in front of it now, decided over several frames."""
    runtime = runtime_of(request)
    _visible(request, runtime.cameras.get(camera_id))
    local = runtime.camera_manager.latest(camera_id) if runtime.camera_manager else None
    found = local if local is not None else runtime.cameras.latest(camera_id)
    return LatestOut(**{"camera_id": camera_id, "ts": None, "tracks": [], **found})


def _local_runner(request: Request, camera_id: str):
    runtime = runtime_of(request)
    _visible(request, runtime.cameras.get(camera_id))
    runner = runtime.camera_manager.runner(camera_id) if runtime.camera_manager else None
    if runner is None:
        raise ApiError(
            "this camera is not running in this process (disabled, or run by another worker)",
            code="camera_not_running",
        )
    return runner


@router.get(
    "/{camera_id}/snapshot.jpg",
    response_class=Response,
    dependencies=viewer,
    responses={200: {"content": {"image/jpeg": {}}}},
)
async def snapshot(request: Request, camera_id: str) -> Response:
    """The newest processed frame with boxes, names and colour-coded confidence."""
    runner = await run_in_threadpool(_local_runner, request, camera_id)
    jpeg = await runner.preview(0, timeout=5.0)
    if jpeg is None:
        raise ApiError("no frame yet", code="camera_not_running")
    return Response(jpeg[1], media_type="image/jpeg", headers={"Cache-Control": "no-store"})


@router.get(
    "/{camera_id}/stream.mjpg",
    response_class=StreamingResponse,
    dependencies=viewer,
    responses={200: {"content": {f"multipart/x-mixed-replace; boundary={BOUNDARY}": {}}}},
)
async def mjpeg(request: Request, camera_id: str) -> StreamingResponse:
    """The camera re-streamed as MJPEG with overlays, at most ``cameras.restream_fps`` frames a second.

    Recognition runs once per frame however many viewers there are.
    """
    runner = await run_in_threadpool(_local_runner, request, camera_id)

    async def parts():
        seen = 0
        while not await request.is_disconnected():
            frame = await runner.preview(seen, timeout=2.0)
            if frame is None:
                continue
            seen, jpeg = frame
            head = f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n".encode()
            yield head + jpeg + b"\r\n"

    return StreamingResponse(
        parts(),
        media_type=f"multipart/x-mixed-replace; boundary={BOUNDARY}",
        headers={"Cache-Control": "no-store"},
    )
