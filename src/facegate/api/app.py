"""The FastAPI application: wiring of settings, service, scheduler, routes, limits and errors."""

from __future__ import annotations

import asyncio
import logging
import time
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from facegate import __version__
from facegate.api import problems, routes_people, routes_recognition, routes_system, stream
from facegate.api.docs import mount_docs
from facegate.api.metrics import Metrics
from facegate.api.problems import ApiError
from facegate.config import Settings, load_settings
from facegate.service.runtime import Runtime
from facegate.web import mount_ui

log = logging.getLogger("facegate.api")


class BodyLimit:
    """Refuses request bodies over ``limit`` bytes: by Content-Length up front, else while reading."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            response = problems.problem(
                413, "request_too_large", f"the body is {int(declared)} bytes; the limit is {self.limit}"
            )
            return await response(scope, receive, send)
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise ApiError(f"the body is over the limit of {self.limit} bytes", code="request_too_large")
            return message

        return await self.app(scope, counted, send)


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

    @app.middleware("http")
    async def _timing(request, call_next):
        started = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        metrics.requests.labels(request.method, getattr(route, "path", "unmatched"), response.status_code).observe(
            time.perf_counter() - started
        )
        return response

    for router in (routes_system.router, routes_system.keys, routes_people.router, routes_recognition.router):
        app.include_router(router)
    app.include_router(stream.router)
    mount_docs(app)
    mount_ui(app)
    app.add_middleware(BodyLimit, limit=settings.limits.max_request_bytes)
    if settings.server.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(settings.server.cors_origins),
            allow_methods=["*"],
            allow_headers=["*"],
        )
    return app
