"""Request and response bodies of ``/v1/cameras``."""

from __future__ import annotations

from pydantic import BaseModel, Field

from facegate.api.schemas import Strict
from facegate.service.cameras import CameraView
from facegate.store.records import MAX_COOLDOWN_S, MAX_FPS, MAX_URL_LENGTH, CameraFields

URL_TEXT = dict(
    min_length=1,
    max_length=MAX_URL_LENGTH,
    description="rtsp://, rtsps://, http(s):// (MJPEG), usb:N or /dev/videoN; credentials are never shown again",
)
NAME_TEXT = dict(min_length=1, max_length=200)
FPS = Field(default=None, gt=0, le=MAX_FPS, description="frames processed per second at most (default 5)")
COOLDOWN = Field(
    default=None, ge=0, le=MAX_COOLDOWN_S, description="seconds of absence before a person is an event again"
)
MIN_FACE = Field(default=None, ge=0, le=4096, description="smallest face recognised, shorter side in px")


class CameraCreate(Strict):
    name: str = Field(**NAME_TEXT)
    url: str = Field(**URL_TEXT)
    collection: str = Field(default="default", min_length=1, max_length=200)
    enabled: bool = True
    fps: float | None = FPS
    cooldown_s: float | None = COOLDOWN
    min_face_px: int | None = MIN_FACE

    def fields(self) -> CameraFields:
        return CameraFields(**self.model_dump())


class CameraUpdate(Strict):
    name: str | None = Field(default=None, **NAME_TEXT)
    url: str | None = Field(default=None, **URL_TEXT)
    collection: str | None = Field(default=None, min_length=1, max_length=200)
    enabled: bool | None = None
    fps: float | None = FPS
    cooldown_s: float | None = COOLDOWN
    min_face_px: int | None = MIN_FACE

    def fields(self) -> CameraFields:
        return CameraFields(**self.model_dump())


class CameraStats(BaseModel):
    input_fps: float | None = None
    processed_fps: float | None = None
    processed: int | None = Field(default=None, description="frames decided since the camera started here")
    decoded: int | None = None
    dropped: int | None = Field(default=None, description="frames read but not processed (a newer one replaced them)")
    reconnects: int | None = None
    last_frame_age_s: float | None = None
    tracks: int | None = None
    running_since: float | None = Field(default=None, description="when this worker started it (Unix time)")


class CameraOut(BaseModel):
    id: str
    name: str
    url: str = Field(description="redacted: a password is shown as ***")
    collection: str
    enabled: bool
    fps: float
    cooldown_s: float
    min_face_px: int
    state: str = Field(description="connecting, live, down, stopped (disabled) or unknown (nobody runs it)")
    error_code: str | None
    error_detail: str | None
    worker: str | None = Field(description="the process running it (host:pid)")
    stats: CameraStats
    status_age_s: float | None

    @classmethod
    def of(cls, view: CameraView) -> CameraOut:
        c = view.camera
        known = set(CameraStats.model_fields)
        return cls(
            id=c.id,
            name=c.name,
            url=c.url,
            collection=c.collection,
            enabled=c.enabled,
            fps=c.fps,
            cooldown_s=c.cooldown_s,
            min_face_px=c.min_face_px,
            state=view.state,
            error_code=view.error_code,
            error_detail=view.error_detail,
            worker=view.worker,
            stats=CameraStats(**{k: v for k, v in view.stats.items() if k in known}),
            status_age_s=None if view.status_age_s is None else round(view.status_age_s, 2),
        )


class TrackOut(BaseModel):
    track_id: int
    person_id: str | None
    name: str | None
    decision: str = Field(description="match, unknown or pending (not enough evidence yet)")
    confidence: float
    reason: str | None = Field(default=None, description="why unknown/pending: tie, too_few_hits, too_small…")
    box: list[float] = Field(description="[x1, y1, x2, y2] in pixels of the camera's frame")
    since: float = Field(description="when the track started (Unix time)")


class LatestOut(BaseModel):
    camera_id: str
    ts: float | None = Field(description="when the frame was read (Unix time); null before the first")
    width: int | None = None
    height: int | None = None
    tracks: list[TrackOut]
