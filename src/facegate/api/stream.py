"""WebSocket ``/v1/stream``: JPEG frames in, one result per processed frame out.

Protocol (text messages are JSON):

* on connect the server sends ``{"type": "ready", "collection", "model_id", "threshold"}``;
* each **binary** message is one encoded frame; frames are numbered 1, 2, 3... in the order
  they arrive, and every answer names its ``frame_id``;
* a **text** message ``{"type": "options", "collection"?, "threshold"?, "top_k"?, "max_faces"?}``
  changes the options of the frames that follow (answered by a new ``ready``; any other text
  is answered by an error, ``invalid_message`` or ``json_too_deep``);
* answers: ``{"type": "result", "frame_id", "width", "height", "faces", "processing_ms",
  "queue_ms", "dropped"}``, or ``{"type": "error", "frame_id"?, "code", "detail"}`` after which
  the stream goes on. Faces are tracked across the stream's frames on the server: each face has
  a ``track_id`` (the same face keeps it) and a ``track`` decision fused over its frames
  (``match``/``unknown``/``pending`` with a ``reason``), which is the one to show; ``decision`` is
  this frame's own, present only when the face was embedded in this frame (a settled track is
  re-checked every few frames, or at once when its face looks different).

Backpressure: at most one frame per client waits; a newer frame replaces it (``dropped``
counts them), so results describe recent frames however slow the client or the server.
Answers go out in frame order: a stream's frames are processed one at a time, in order (the
scheduler never runs two jobs of one client at once), so its tracks only move forward.
Authentication: ``Authorization: Bearer`` or ``X-API-Key``, or, from a browser (which cannot set
headers on a WebSocket), the subprotocols ``facegate`` and ``facegate.key.<key>``
(``new WebSocket(url, ["facegate", "facegate.key." + key])``; the server answers with the
subprotocol ``facegate``, never the key). ``?api_key=`` still works for older clients but puts
the key in URLs (the access log scrubs it). Refused connections are closed with code 4401 or
4403; a browser page of another origin is refused before the stream opens (``api/security.py``).
``?session=<id>`` streams in a visitor session (its people and its base's; ``api/routes_sessions.py``),
its token as ``X-Session-Token`` or the subprotocol ``facegate.session.<token>``.
The key is checked again every ``RECHECK_S``: once it is revoked the stream gets an error
``key_revoked`` and is closed with code 4401.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import time
from dataclasses import dataclass, replace

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from starlette.concurrency import run_in_threadpool

from facegate.api.auth import SUBPROTOCOL, check_collection, check_key, ws_secret
from facegate.api.problems import ApiError, parse_json
from facegate.api.schemas import FaceOut, StreamFaceOut, TrackDecisionOut
from facegate.core.errors import FacegateError
from facegate.service.pipeline import FrameOptions
from facegate.service.runtime import Runtime
from facegate.service.scheduler import Slot
from facegate.service.sessions import SessionNotFound
from facegate.service.tracking import TrackedFrame, TrackingSession
from facegate.store.records import DEFAULT_COLLECTION
from facegate.stream.types import TrackedFace

log = logging.getLogger(__name__)
router = APIRouter()

SESSION_PROTOCOL = "facegate.session."
OUTBOX_SIZE = 16  # answers waiting for a slow reader; beyond, the oldest are dropped
RECHECK_S = 0.5  # how often an open stream checks that its key is still valid


def updated_options(options: FrameOptions, message: dict) -> FrameOptions:
    """The options changed by a control message; raises ``ApiError`` for bad values."""
    changes = {}
    if "collection" in message:
        if not isinstance(message["collection"], str) or not 0 < len(message["collection"]) <= 200:
            raise ApiError("collection must be a non-empty string", code="invalid_message")
        changes["collection"] = message["collection"]
    if "threshold" in message:
        t = message["threshold"]
        if t is not None and (not isinstance(t, int | float) or isinstance(t, bool) or not -1 <= t <= 1):
            raise ApiError("threshold must be a number in [-1, 1] or null", code="invalid_message")
        changes["threshold"] = t
    for name, top in (("top_k", 20), ("max_faces", 1000)):
        if name in message:
            v = message[name]
            if v is not None and (not isinstance(v, int) or isinstance(v, bool) or not 0 <= v <= top):
                raise ApiError(f"{name} must be an integer in [0, {top}]", code="invalid_message")
            changes[name] = v if v is not None or name == "max_faces" else 0
    return replace(options, **changes)


@dataclass(frozen=True)
class Frame:
    frame_id: int
    data: bytes
    received: float
    options: FrameOptions


async def _watch_key(ws: WebSocket, runtime: Runtime, secret: str) -> None:
    """Close the stream (4401 ``key_revoked``) once its key no longer authenticates."""
    while True:
        await asyncio.sleep(RECHECK_S)
        try:
            if await run_in_threadpool(runtime.keys.authenticate, secret) is None:
                break
        except Exception:  # the database did not answer this time: check again at the next turn
            log.warning("could not re-check a stream's API key", exc_info=True)
    with contextlib.suppress(Exception):
        await ws.send_json({"type": "error", "code": "key_revoked", "detail": "the API key was revoked"})
        await ws.close(code=4401, reason="key_revoked")


@router.websocket("/v1/stream")
async def stream(ws: WebSocket) -> None:
    app = ws.app
    runtime, metrics = app.state.runtime, app.state.metrics
    scheduler = runtime.scheduler
    await ws.accept(subprotocol=SUBPROTOCOL if SUBPROTOCOL in ws.scope.get("subprotocols", []) else None)
    secret = ws_secret(ws)
    options = FrameOptions(collection=ws.query_params.get("collection", DEFAULT_COLLECTION)[:200])
    visiting = ws.query_params.get("session")  # a visitor session (service.sessions): its people and its base's
    try:
        key = await check_key(app, secret, "recognize")
        if visiting is not None:
            options = await run_in_threadpool(_session_options, runtime, visiting, ws)
        check_collection(key, options.base or options.collection)
    except ApiError as exc:
        await ws.send_json({"type": "error", "code": exc.code, "detail": exc.message})
        await ws.close(code=4401 if exc.code == "unauthorized" else 4403, reason=exc.code)
        return
    outbox: asyncio.Queue = asyncio.Queue(OUTBOX_SIZE)

    def post(message: dict) -> None:
        if outbox.full():  # the client is not reading: drop the oldest answer
            with contextlib.suppress(asyncio.QueueEmpty):
                outbox.get_nowait()
        outbox.put_nowait(message)

    tracking = StreamTracking(runtime)

    def process(frame: Frame) -> dict | None:
        started = time.monotonic()
        result = tracking.process(frame.data, frame.options, frame.received)
        if result is None:  # an older frame than one already answered
            return None
        return {
            "type": "result",
            "frame_id": frame.frame_id,
            "width": result.width,
            "height": result.height,
            "faces": [_face(result, f, frame.options.top_k) for f in result.faces],
            "processing_ms": round(result.processing_ms, 2),
            "queue_ms": round((started - frame.received) * 1000, 2),
            "statuses": [f.fused.status for f in result.faces],
        }

    newest = 0  # the newest frame answered: results go out in frame order

    async def deliver(frame: Frame, result: dict | None, error: BaseException | None) -> None:
        if error is not None:
            code = error.code if isinstance(error, FacegateError) else "internal_error"
            detail = error.message if isinstance(error, FacegateError) else "processing failed"
            if not isinstance(error, FacegateError):
                log.error("stream frame failed", exc_info=error)
            post({"type": "error", "frame_id": frame.frame_id, "code": code, "detail": detail})
            return
        nonlocal newest
        if result is None or frame.frame_id < newest:  # older than a frame already answered: stale
            slot.dropped += 1  # dropped and counted, so answers stay in order
            metrics.frames_dropped.inc()
            return
        newest = frame.frame_id
        metrics.count_decisions("stream", result.pop("statuses"))
        result["dropped"] = slot.dropped
        post(result)

    async def sender() -> None:
        while True:
            message = await outbox.get()
            await ws.send_text(json.dumps(message, separators=(",", ":")))

    slot = Slot(process=process, deliver=deliver)
    sending = asyncio.create_task(sender())
    watching = asyncio.create_task(_watch_key(ws, runtime, secret)) if key is not None and secret else None
    metrics.streams.inc()
    frame_id = 0
    limit = runtime.settings.stream.max_stream_frame_bytes
    await ws.send_json(_ready(runtime, options))
    try:
        while True:
            message = await ws.receive()
            if message["type"] == "websocket.disconnect":
                break
            if message.get("bytes") is not None:
                frame_id += 1
                data = message["bytes"]
                if len(data) > limit:
                    post({"type": "error", "frame_id": frame_id, "code": "frame_too_large", "detail": f"> {limit} B"})
                    continue
                await scheduler.offer(slot, Frame(frame_id, data, time.monotonic(), options))
            else:
                try:  # json_too_deep or invalid_message; either way the stream goes on
                    control = parse_json(message.get("text") or "", invalid_code="invalid_message")
                    if not isinstance(control, dict) or control.get("type") != "options":
                        raise ApiError('expected {"type": "options", ...}', code="invalid_message")
                    if visiting is not None and "collection" in control:
                        raise ApiError("a session's stream keeps its collection", code="invalid_message")
                    changed = updated_options(options, control)
                    check_collection(key, changed.base or changed.collection)  # a limited key stays in its own
                    options = changed
                    post(_ready(runtime, options))
                except ApiError as exc:
                    post({"type": "error", "code": exc.code, "detail": exc.message})
    except WebSocketDisconnect:
        pass
    finally:
        slot.closed = True
        metrics.streams.dec()
        for task in (sending, watching):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task


def _session_options(runtime: Runtime, session_id: str, ws: WebSocket) -> FrameOptions:
    """The options of a visitor session's stream; its token comes as ``X-Session-Token`` or, from a browser,
    the subprotocol ``facegate.session.<token>``. ``ApiError`` ``session_not_found`` otherwise."""
    offered = [p[len(SESSION_PROTOCOL) :] for p in ws.scope.get("subprotocols", []) if p.startswith(SESSION_PROTOCOL)]
    token = ws.headers.get("x-session-token") or (offered[0] if offered else "")
    try:
        return runtime.sessions.options(runtime.sessions.resolve(session_id[:40], token))
    except SessionNotFound as exc:
        raise ApiError(exc.message, code=exc.code, status=404) from None


class StreamTracking:
    """One stream's tracking session, started again when its options (collection, threshold…) change."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.options: FrameOptions | None = None
        self.session: TrackingSession | None = None
        self._lock = threading.Lock()

    def process(self, data: bytes, options: FrameOptions, received: float) -> TrackedFrame | None:
        """Worker thread: decode (under the image limits) and track one frame."""
        with self._lock:
            if options != self.options or self.session is None:
                self.runtime.indexes.gallery(options.collection)  # collection_not_found before any work
                self.options, self.session = options, TrackingSession(self.runtime.processor, options)
            session = self.session
        return session.process(self.runtime.engine.load(data), received)


def _face(result: TrackedFrame, tracked: TrackedFace, top_k: int) -> dict:
    decision = tracked.frame_decision
    if decision is not None:
        decision = replace(decision, candidates=decision.candidates[:top_k])
    face = FaceOut.of(result.described[tracked.track_id], decision)
    out = StreamFaceOut(**dict(face), track_id=tracked.track_id, track=TrackDecisionOut.of(tracked.fused))
    return out.model_dump(exclude_none=True)


def _ready(runtime: Runtime, options: FrameOptions) -> dict:
    return {
        "type": "ready",
        "collection": options.collection,
        "model_id": runtime.model_id,
        "threshold": runtime.policy.with_threshold(options.threshold).threshold,
    }
