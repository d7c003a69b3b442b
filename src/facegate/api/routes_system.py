"""Health, readiness, version and model info, Prometheus metrics, and API keys (scope ``admin``)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from facegate import __version__
from facegate.api.auth import require
from facegate.api.problems import ApiError
from facegate.api.routes_people import service_of
from facegate.api.schemas import KeyCreate, KeyCreated, KeyOut

router = APIRouter()


@router.get("/healthz", tags=["system"])
def healthz() -> dict:
    """The process answers."""
    return {"status": "ok"}


@router.get("/readyz", tags=["system"], responses={503: {"description": "models still loading"}})
def readyz(request: Request) -> dict:
    """Models are loaded and the database answers."""
    service = service_of(request)
    if not service.ready:
        raise ApiError("models are still loading", code="not_ready")
    service.store.version()
    return {"status": "ready"}


@router.get("/v1/info", tags=["system"])
def info(request: Request) -> dict:
    """Version, models, match threshold and whether API keys are required."""
    service = service_of(request)
    config = service.engine.config
    return {
        "version": __version__,
        "ready": service.ready,
        "auth_required": service.settings.auth_required,
        "detector": config.detector,
        "embedder": config.embedder,
        "model_id": service.model_id,
        "flip": config.flip,
        "threshold": service.policy.threshold,
        "database": service.store.engine.dialect.name,
        "limits": {
            "max_request_bytes": service.settings.max_request_bytes,
            "max_image_bytes": service.settings.max_image_bytes,
            "max_image_pixels": service.settings.max_image_pixels,
            "max_faces": service.settings.max_faces,
        },
    }


@router.get("/metrics", tags=["system"], response_class=Response)
def metrics(request: Request) -> Response:
    """Prometheus text format."""
    state = request.app.state
    state.metrics.queue_depth.set(state.scheduler.depth)
    return Response(generate_latest(state.metrics.registry), media_type=CONTENT_TYPE_LATEST)


keys = APIRouter(prefix="/v1/keys", tags=["keys"], dependencies=[Depends(require("admin"))])


@keys.get("", response_model=list[KeyOut])
def list_keys(request: Request) -> list[KeyOut]:
    return [KeyOut.of(k) for k in service_of(request).keys.list()]


@keys.post("", response_model=KeyCreated, status_code=201)
def create_key(request: Request, body: KeyCreate) -> KeyCreated:
    """A new key; its ``secret`` is shown in this answer only."""
    key, secret = service_of(request).keys.create(body.name, body.scopes)
    return KeyCreated(**KeyOut.of(key).model_dump(), secret=secret)


@keys.delete("/{key_id}", response_model=KeyOut)
def revoke_key(request: Request, key_id: str) -> KeyOut:
    return KeyOut.of(service_of(request).keys.revoke(key_id))
