"""What every route takes from the request: the runtime, and the collection parameter."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query, Request

from facegate.service.runtime import Runtime

Collection = Annotated[str, Query(min_length=1, max_length=200, description="the collection (isolated gallery)")]


def runtime_of(request: Request) -> Runtime:
    """The process's runtime, built at start by the app's lifespan."""
    return request.app.state.runtime
