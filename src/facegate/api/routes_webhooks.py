"""REST v1: webhooks (create, change, delete, send a test event) and their deliveries (scope ``admin``)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, Field

from facegate.api.auth import require
from facegate.api.deps import runtime_of
from facegate.api.schemas import Strict
from facegate.service.webhooks import shown_url
from facegate.store.records import Webhook

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"], dependencies=[Depends(require("admin"))])
Kind = Literal["recognized", "unknown", "left", "camera_down", "camera_up"]
Names = Field(default_factory=list, max_length=100)


class WebhookCreate(Strict):
    url: str = Field(
        min_length=8,
        max_length=2000,
        description="http(s)://…; the host must be allowed by events.webhook_allowed_hosts when it is set "
        "(422 webhook_host_not_allowed; else 422 invalid_webhook_url); 307/308 redirects are followed to "
        "the same host only",
    )
    secret: str | None = Field(default=None, min_length=16, max_length=200, description="default: generated")
    kinds: list[Kind] = Field(default_factory=list, description="empty: every kind")
    sources: list[str] = Names
    collections: list[str] = Names
    enabled: bool = True


class WebhookUpdate(Strict):
    url: str | None = Field(default=None, min_length=8, max_length=2000)
    kinds: list[Kind] | None = None
    sources: list[str] | None = Field(default=None, max_length=100)
    collections: list[str] | None = Field(default=None, max_length=100)
    enabled: bool | None = None


class WebhookOut(BaseModel):
    id: str
    url: str = Field(description="credentials masked: a password, a user name alone, a secret parameter are ***")
    kinds: list[str]
    sources: list[str]
    collections: list[str]
    enabled: bool
    created_at: float
    pending: int
    delivered: int
    dead: int = Field(description="deliveries given up after every retry (see /deliveries?state=dead)")
    last_error: str | None

    @classmethod
    def of(cls, w: Webhook) -> WebhookOut:
        return cls(
            id=w.id,
            url=shown_url(w.url),
            kinds=list(w.kinds),
            sources=list(w.sources),
            collections=list(w.collections),
            enabled=w.enabled,
            created_at=w.created_at,
            pending=w.pending,
            delivered=w.delivered,
            dead=w.dead,
            last_error=w.last_error,
        )


class WebhookCreated(WebhookOut):
    secret: str = Field(description="signs every delivery (X-Facegate-Signature); shown only here")


@router.get("", response_model=list[WebhookOut])
def list_webhooks(request: Request) -> list[WebhookOut]:
    return [WebhookOut.of(w) for w in runtime_of(request).webhooks.store.list()]


@router.post("", response_model=WebhookCreated, status_code=201)
def create_webhook(request: Request, body: WebhookCreate) -> WebhookCreated:
    """A new webhook; every event from now on that it wants is delivered to it (signed, retried, in order)."""
    hook, secret = runtime_of(request).webhooks.create(
        body.url, body.secret, body.kinds, body.sources, body.collections, body.enabled
    )
    return WebhookCreated(**WebhookOut.of(hook).model_dump(), secret=secret)


@router.get("/{webhook_id}", response_model=WebhookOut)
def get_webhook(request: Request, webhook_id: str) -> WebhookOut:
    return WebhookOut.of(runtime_of(request).webhooks.store.get(webhook_id))


@router.patch("/{webhook_id}", response_model=WebhookOut)
def update_webhook(request: Request, webhook_id: str, body: WebhookUpdate) -> WebhookOut:
    return WebhookOut.of(runtime_of(request).webhooks.update(webhook_id, **body.model_dump()))


@router.delete("/{webhook_id}", status_code=204)
def delete_webhook(request: Request, webhook_id: str) -> Response:
    runtime_of(request).webhooks.store.delete(webhook_id)
    return Response(status_code=204)


@router.post("/{webhook_id}/test", status_code=202)
def send_test_event(request: Request, webhook_id: str) -> dict:
    """Queue a test event (kind ``recognized``, source ``test``) for this webhook only."""
    return {"event_id": runtime_of(request).webhooks.test(webhook_id)}


@router.get("/{webhook_id}/deliveries")
def deliveries(
    request: Request,
    webhook_id: str,
    state: Literal["pending", "delivered", "dead"] | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[dict]:
    """The newest deliveries (event id, state, attempts, last error, next attempt)."""
    return runtime_of(request).webhooks.store.deliveries(webhook_id, state, limit)
