"""Errors as ``application/problem+json`` (RFC 9457) with a stable machine-readable ``code``."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from facegate.core.errors import FacegateError

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"

# HTTP status of each error code raised by the layers below; anything else is a 422
STATUS_BY_CODE = {
    "person_not_found": 404,
    "template_not_found": 404,
    "collection_not_found": 404,
    "key_not_found": 404,
    "not_found": 404,
    "duplicate_name": 409,
    "collection_protected": 409,
    "model_mismatch": 409,
    "no_templates": 409,
    "image_too_large": 413,
    "image_too_many_pixels": 413,
    "request_too_large": 413,
    "zip_too_large": 413,
    "zip_too_many_entries": 413,
    "too_many_files": 413,
    "image_unsupported_type": 415,
    "unsupported_media_type": 415,
    "unauthorized": 401,
    "forbidden": 403,
    "method_not_allowed": 405,
    "not_ready": 503,
}

_CODE_BY_STATUS = {404: "not_found", 405: "method_not_allowed", 401: "unauthorized", 403: "forbidden"}


class ApiError(FacegateError):
    """An error raised by the API layer itself (auth, request shape, limits)."""

    code = "bad_request"

    def __init__(self, message: str, *, code: str, status: int | None = None) -> None:
        super().__init__(message, code=code)
        self.status = status or STATUS_BY_CODE.get(code, 400)


def problem(status: int, code: str, detail: str, instance: str = "", **extra) -> JSONResponse:
    """A problem response; ``extra`` members are added to the body."""
    body = {
        "type": f"urn:facegate:problem:{code}",
        "title": code.replace("_", " "),
        "status": status,
        "code": code,
        "detail": detail,
        **({"instance": instance} if instance else {}),
        **extra,
    }
    headers = {"WWW-Authenticate": 'Bearer realm="facegate"'} if status == 401 else None
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def status_of(exc: FacegateError) -> int:
    """The HTTP status for an error raised anywhere in facegate."""
    if isinstance(exc, ApiError):
        return exc.status
    return STATUS_BY_CODE.get(exc.code, 422)


def install(app: FastAPI) -> None:
    """Answer every error, expected or not, as a problem document."""

    @app.exception_handler(FacegateError)
    async def _facegate(request: Request, exc: FacegateError) -> JSONResponse:
        return problem(status_of(exc), exc.code, exc.message, request.url.path)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"loc": [str(p) for p in e.get("loc", ())], "msg": str(e.get("msg", "")), "type": str(e.get("type", ""))}
            for e in exc.errors()
        ]
        detail = "; ".join(f"{'.'.join(e['loc'])}: {e['msg']}" for e in errors) or "invalid request"
        return problem(422, "invalid_request", detail, request.url.path, errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = _CODE_BY_STATUS.get(exc.status_code, f"http_{exc.status_code}")
        return problem(exc.status_code, code, str(exc.detail), request.url.path)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem(500, "internal_error", "the server failed to handle this request", request.url.path)
