"""Health, readiness, version and model info, Prometheus metrics, and API keys (scope ``admin``)."""

from __future__ import annotations

from dataclasses import asdict

from fastapi import APIRouter, Depends, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from facegate import __version__
from facegate.api.auth import require
from facegate.api.deps import runtime_of
from facegate.api.problems import ApiError
from facegate.api.schemas import KeyCreate, KeyCreated, KeyOut

router = APIRouter()


@router.get("/healthz", tags=["system"])
def healthz() -> dict:
    """The process answers."""
    return {"status": "ok"}


@router.get("/readyz", tags=["system"], responses={503: {"description": "models still loading"}})
def readyz(request: Request) -> dict:
    """Models are loaded and the database answers."""
    runtime = runtime_of(request)
    if not runtime.ready:
        raise ApiError("models are still loading", code="not_ready")
    runtime.check_database()
    return {"status": "ready"}


@router.get("/v1/info", tags=["system"], dependencies=[Depends(require("recognize"))])
def info(request: Request) -> dict:
    """Version, models (``execution_providers``: onnxruntime's, for the embedder, once loaded), match threshold
    and whether API keys are required (a key is needed when they are)."""
    runtime = runtime_of(request)
    limits = runtime.settings.limits
    return {
        "version": __version__,
        "ready": runtime.ready,
        "auth_required": runtime.settings.server.auth_required,
        "ephemeral": runtime.scratch is not None,  # a demo: nothing is kept after the server stops
        **asdict(runtime.info()),
        "limits": {
            "max_request_bytes": limits.max_request_bytes,
            "max_image_bytes": limits.max_image_bytes,
            "max_image_pixels": limits.max_image_pixels,
            "max_faces": limits.max_faces,
        },
    }


@router.get("/metrics", tags=["system"], response_class=Response, dependencies=[Depends(require("recognize"))])
def metrics(request: Request) -> Response:
    """Prometheus text format (a key is needed when keys are required)."""
    state = request.app.state
    state.metrics.queue_depth.set(state.runtime.scheduler.depth)
    return Response(generate_latest(state.metrics.registry), media_type=CONTENT_TYPE_LATEST)


keys = APIRouter(prefix="/v1/keys", tags=["keys"], dependencies=[Depends(require("admin"))])


@keys.get("", response_model=list[KeyOut])
def list_keys(request: Request) -> list[KeyOut]:
    return [KeyOut.of(k) for k in runtime_of(request).keys.list()]


@keys.post("", response_model=KeyCreated, status_code=201)
def create_key(request: Request, body: KeyCreate) -> KeyCreated:
    """A new key; its ``secret`` is shown in this answer only."""
    created = runtime_of(request).keys.create(body.name, body.scopes, body.collections)
    return KeyCreated(**KeyOut.of(created.key).model_dump(), secret=created.secret)


@keys.delete("/{key_id}", response_model=KeyOut)
def revoke_key(request: Request, key_id: str) -> KeyOut:
    return KeyOut.of(runtime_of(request).keys.revoke(key_id))
