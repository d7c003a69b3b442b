"""REST v1: the event log (filtered pages with a cursor, CSV export) and its live WebSocket feed."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request, Response, WebSocket, WebSocketDisconnect
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from facegate.api.auth import SUBPROTOCOL, check_collection, check_key, require, ws_secret
from facegate.api.deps import runtime_of
from facegate.api.problems import ApiError
from facegate.store.records import EventQuery

router = APIRouter(prefix="/v1/events", tags=["events"])
FOLLOW_S = 0.25  # how often the live feed looks in the log for other processes' events (its own wake it at once)
KINDS = Literal["recognized", "unknown", "left", "camera_down", "camera_up"]


class EventOut(BaseModel):
    id: str = Field(description="unique, sorts by time: also the cursor")
    ts: float = Field(description="Unix time of the frame")
    kind: str
    source: str = Field(description="camera:<id>")
    collection: str | None
    track_id: int | None
    person_id: str | None
    name: str | None
    confidence: float | None
    decision: str | None = Field(description="PASS (recognized), REJECT (unknown), NO_FACE (left)")
    box: list[float] | None = Field(description="[x1, y1, x2, y2] in the source's pixels")
    detail: str | None = Field(description="camera_down: the error code and message")
    has_snapshot: bool = Field(default=False, description="GET /v1/events/{id}/snapshot.jpg: the face")


class EventPage(BaseModel):
    events: list[EventOut]
    next_cursor: str | None = Field(description="pass as ?cursor= for the next page; null on the last")


def _query(
    request: Request | WebSocket,
    since: float | None,
    until: float | None,
    source: str | None,
    person_id: str | None,
    kind: str | None,
    collection: str | None,
    cursor: str | None,
    limit: int,
) -> EventQuery:
    key = getattr(request.state, "api_key", None) if isinstance(request, Request) else None
    if key is not None and key.collections:
        if collection is None:
            raise ApiError("a key limited to some collections must name one: ?collection=", code="collection_forbidden")
        check_collection(key, collection)
    return EventQuery(since, until, source, person_id, kind, collection, cursor, limit)


@router.get("", response_model=EventPage, dependencies=[Depends(require("recognize"))])
def list_events(
    request: Request,
    since: Annotated[float | None, Query(ge=0, description="from this Unix time")] = None,
    until: Annotated[float | None, Query(ge=0, description="before this Unix time")] = None,
    source: Annotated[str | None, Query(max_length=200)] = None,
    person_id: Annotated[str | None, Query(max_length=40)] = None,
    kind: KINDS | None = None,
    collection: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
    cursor: Annotated[str | None, Query(max_length=40, description="next_cursor of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
):
    """Events, oldest first, a page at a time."""
    q = _query(request, since, until, source, person_id, kind, collection, cursor, limit)
    events, next_cursor = runtime_of(request).events.page(q)
    return EventPage(events=[EventOut(**e) for e in events], next_cursor=next_cursor)


@router.get(
    "/export.csv",
    response_class=StreamingResponse,
    dependencies=[Depends(require("recognize"))],
    responses={200: {"content": {"text/csv": {}}}},
)
def export_csv(
    request: Request,
    since: Annotated[float | None, Query(ge=0)] = None,
    until: Annotated[float | None, Query(ge=0)] = None,
    source: Annotated[str | None, Query(max_length=200)] = None,
    person_id: Annotated[str | None, Query(max_length=40)] = None,
    kind: KINDS | None = None,
    collection: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
) -> StreamingResponse:
    """Every matching event as CSV, streamed page by page however long the range."""
    q = _query(request, since, until, source, person_id, kind, collection, None, 1000)
    return StreamingResponse(
        runtime_of(request).events.csv(q),
        media_type="text/csv",
        headers={"Content-Disposition": 'attachment; filename="events.csv"'},
    )


@router.get(
    "/{event_id}/snapshot.jpg",
    response_class=Response,
    dependencies=[Depends(require("recognize"))],
    responses={200: {"content": {"image/jpeg": {}}}},
)
def snapshot(request: Request, event_id: str) -> Response:
    """The face of a ``recognized`` or ``unknown`` event (kept ``events.snapshot_retention_days``)."""
    jpeg = runtime_of(request).events.log.snapshot(event_id)
    if jpeg is None:
        raise ApiError("no snapshot for this event (none was taken, or it expired)", code="not_found", status=404)
    return Response(jpeg, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=86400"})


def _compat(runtime, event: dict) -> dict:
    """The specification's payload: ``type, name, distance, status, box, timestamp, frame``. ``distance`` is
    1 - confidence (lower is surer), ``status`` PASS/REJECT/NO_FACE, ``timestamp`` ISO 8601, ``frame`` the
    event's face snapshot as base64 JPEG (null without one)."""
    import base64
    import datetime as dt

    jpeg = runtime.events.log.snapshot(event["id"]) if event.get("has_snapshot") else None
    confidence = event.get("confidence")
    return {
        "type": "face",
        "name": event.get("name") or ("Unknown" if event["kind"] == "unknown" else None),
        "distance": None if confidence is None else round(1 - confidence, 4),
        "status": event.get("decision"),
        "box": event.get("box"),
        "timestamp": dt.datetime.fromtimestamp(event["ts"], dt.UTC).isoformat(),
        "frame": base64.b64encode(jpeg).decode() if jpeg else None,
        "event_id": event["id"],
    }


@router.websocket("/ws")
async def feed(ws: WebSocket) -> None:
    """Every new event as it is logged (JSON text messages ``{"type": "event", ...}``); filters as query
    parameters (``source``, ``person_id``, ``kind``, ``collection``); ``format=compat``: the specification's
    ``{"type": "face", "name", "distance", "status", "box", "timestamp", "frame"}`` instead. Authenticated
    like ``/v1/stream``."""
    app = ws.app
    runtime = app.state.runtime
    await ws.accept(subprotocol=SUBPROTOCOL if SUBPROTOCOL in ws.scope.get("subprotocols", []) else None)
    params = ws.query_params
    try:
        key = await check_key(app, ws_secret(ws), "recognize")
        collection = params.get("collection")
        if key is not None and key.collections:
            if collection is None:
                raise ApiError("a key limited to some collections must name one", code="collection_forbidden")
            check_collection(key, collection)
        kind = params.get("kind")
        if kind is not None and kind not in KINDS.__args__:
            raise ApiError(f"kind must be one of {', '.join(KINDS.__args__)}", code="invalid_message")
    except ApiError as exc:
        await ws.send_json({"type": "error", "code": exc.code, "detail": exc.message})
        await ws.close(code=4401 if exc.code == "unauthorized" else 4403, reason=exc.code)
        return
    compat = params.get("format") == "compat"
    after = await run_in_threadpool(runtime.events.feed_start)
    written = asyncio.Event()  # this process logged events: look now (others' are found by polling)
    loop = asyncio.get_running_loop()

    def wake() -> None:
        loop.call_soon_threadsafe(written.set)

    listeners = runtime.event_log.listeners if runtime.event_log else []
    listeners.append(wake)
    await ws.send_json({"type": "ready"})

    async def closed() -> None:
        with contextlib.suppress(WebSocketDisconnect, RuntimeError):
            while (await ws.receive())["type"] != "websocket.disconnect":
                pass

    watching = asyncio.create_task(closed())
    try:
        while not watching.done():
            query = EventQuery(None, None, params.get("source"), params.get("person_id"), kind, collection, None, 500)
            for seq, event in await run_in_threadpool(runtime.events.follow, after, query):
                message = await run_in_threadpool(_compat, runtime, event) if compat else {"type": "event", **event}
                await ws.send_text(json.dumps(message, separators=(",", ":")))
                after = seq
            waiting = asyncio.ensure_future(written.wait())
            await asyncio.wait([watching, waiting], timeout=FOLLOW_S, return_when=asyncio.FIRST_COMPLETED)
            waiting.cancel()
            written.clear()
    except (WebSocketDisconnect, RuntimeError):
        pass
    finally:
        if wake in listeners:
            listeners.remove(wake)
        watching.cancel()
