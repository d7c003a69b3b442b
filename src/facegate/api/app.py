"""The FastAPI application: wiring of settings, service, scheduler, routes, limits and errors."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from facegate import __version__
from facegate.api import (
    problems,
    routes_attendance,
    routes_cameras,
    routes_events,
    routes_people,
    routes_recognition,
    routes_sessions,
    routes_system,
    routes_videos,
    routes_webhooks,
    stream,
)
from facegate.api.docs import mount_docs
from facegate.api.metrics import Metrics
from facegate.api.problems import ApiError
from facegate.api.security import BrowserGuard
from facegate.config import Settings, load_settings
from facegate.service.runtime import Runtime
from facegate.web import mount_ui

log = logging.getLogger("facegate.api")


ZIP_FRAMING = 64 * 1024  # room for the multipart framing around an archive of max_zip_bytes


class BodyLimit:
    """Refuses request bodies over a limit with 413 ``request_too_large``: by Content-Length up front, else
    (``Transfer-Encoding: chunked``) as soon as the bytes read pass it. ``per_path`` gives some paths their
    own limit (the ZIP and video uploads), and optionally its own code; every other path has ``limit``.

    The refusal is sent from here, not raised through the app, so it is a 413 whatever reads the body
    (a route, FastAPI's body parsing, a middleware's task group); the app's own answer is dropped.
    """

    def __init__(self, app: ASGIApp, limit: int, per_path: Mapping[str, int | tuple[int, str]] | None = None) -> None:
        self.app, self.limit = app, limit
        self.per_path = {
            p: v if isinstance(v, tuple) else (v, "request_too_large") for p, v in (per_path or {}).items()
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit, code = self.per_path.get(scope["path"], (self.limit, "request_too_large"))
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            response = problems.problem(
                413, code, f"the body is {int(declared)} bytes; the limit is {limit}", scope["path"]
            )
            return await response(scope, receive, send)
        seen, started, refused = 0, False, False

        async def counted() -> Message:
            nonlocal seen, refused
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    detail = f"the body is over the limit of {limit} bytes"
                    if not started:
                        refused = True
                        await problems.problem(413, code, detail, scope["path"])(scope, receive, send)
                    raise ApiError(detail, code=code)
            return message

        async def guarded(message: Message) -> None:
            nonlocal started
            if refused:
                return  # the 413 is the answer
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, guarded)
        except Exception:
            if not refused:
                raise


class Timing:
    """Observes each HTTP request's latency by method, route and status (a plain ASGI middleware, so errors
    raised while a route reads its body reach the exception handlers unwrapped)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started, status = time.perf_counter(), 500

        async def observed(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, observed)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            self.metrics.requests.labels(scope["method"], route, status).observe(time.perf_counter() - started)


def _first_admin_key(runtime: Runtime) -> None:
    """When keys are required and none can administer, create one and print it once."""
    created = runtime.keys.first_admin_key()
    if created is None:
        return
    banner = "=" * 72
    print(
        f"\n{banner}\nfacegate: API keys are required. First admin key (shown once, store it now):\n\n"
        f"    {created.secret}\n\n"
        f"Use it as 'Authorization: Bearer <key>'; manage keys with 'facegate keys'.\n{banner}\n",
        flush=True,
    )
    log.info("created the first admin key %s", created.key.id)


def create_app(settings: Settings | None = None, *, warm: bool = True) -> FastAPI:
    """The facegate ASGI app. ``warm`` loads the models in the background at start."""
    settings = settings or load_settings()
    metrics = Metrics.create()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        runtime = await asyncio.to_thread(Runtime.build, settings)
        runtime.scheduler.on_drop = metrics.frames_dropped.inc
        app.state.runtime, app.state.metrics = runtime, metrics
        if settings.server.auth_required:
            await asyncio.to_thread(_first_admin_key, runtime)
        warming = await runtime.start(warm)
        try:
            yield
        finally:
            if warming:
                warming.cancel()
            await runtime.stop()

    app = FastAPI(
        title="facegate",
        version=__version__,
        description="Self-hosted face recognition: enrol people, recognise faces in images and streams.",
        lifespan=lifespan,
        docs_url=None,  # mount_docs serves /docs without a CDN
        redoc_url=None,
    )
    problems.install(app)
    problems.document_problems(app)
    for router in (
        routes_system.router,
        routes_system.keys,
        routes_people.router,
        routes_recognition.router,
        routes_cameras.router,
        routes_videos.router,
        routes_events.router,
        routes_webhooks.router,
        routes_attendance.router,
        routes_sessions.router,
    ):
        app.include_router(router)
    app.include_router(stream.router)
    mount_docs(app)
    mount_ui(app)
    limits = settings.limits
    app.add_middleware(
        BodyLimit,
        limit=limits.max_request_bytes,
        per_path={
            "/v1/enroll/zip": limits.max_zip_bytes + ZIP_FRAMING,
            "/v1/videos": (settings.videos.max_video_bytes + ZIP_FRAMING, "video_too_large"),
        },
    )
    app.add_middleware(Timing, metrics=metrics)  # outside BodyLimit: observes the status the client got
    if settings.server.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.server.cors_origins),
            allow_methods=["*"],
            allow_headers=["*"],
        )
    app.add_middleware(BrowserGuard, settings=settings)  # outermost: its headers go on every answer
    return app
