"""Errors as ``application/problem+json`` (RFC 9457) with a stable machine-readable ``code``."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.routing import Match, Mount

from facegate.core.errors import FacegateError

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"

# HTTP status of each error code raised by the layers below; anything else is a 422
STATUS_BY_CODE = {
    "person_not_found": 404,
    "template_not_found": 404,
    "collection_not_found": 404,
    "key_not_found": 404,
    "camera_not_found": 404,
    "video_not_found": 404,
    "webhook_not_found": 404,
    "not_found": 404,
    "duplicate_name": 409,
    "collection_protected": 409,
    "collection_in_use": 409,
    "camera_not_running": 409,
    "video_not_done": 409,
    "video_running": 409,
    "video_too_large": 413,
    "model_mismatch": 409,
    "no_templates": 409,
    "already_enrolled": 409,
    "write_conflict": 409,
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
    "collection_forbidden": 403,
    "cross_site_request": 403,
    "host_not_allowed": 421,
    "method_not_allowed": 405,
    "json_too_deep": 400,
    "invalid_range": 422,
    "headers_too_large": 431,
    "request_timeout": 408,
    "too_many_connections": 503,
    "not_ready": 503,
}

_CODE_BY_STATUS = {404: "not_found", 405: "method_not_allowed", 401: "unauthorized", 403: "forbidden"}


class ApiError(FacegateError):
    """An error raised by the API layer itself (auth, request shape, limits)."""

    code = "bad_request"

    def __init__(self, message: str, *, code: str, status: int | None = None) -> None:
        super().__init__(message, code=code)
        self.status = status or STATUS_BY_CODE.get(code, 400)


def problem_document(status: int, code: str, detail: str, instance: str = "", **extra: Any) -> dict[str, Any]:
    """The body of a problem response; ``extra`` members are added to it."""
    return {
        "type": f"urn:facegate:problem:{code}",
        "title": code.replace("_", " "),
        "status": status,
        "code": code,
        "detail": detail,
        **({"instance": instance} if instance else {}),
        **extra,
    }


def problem(
    status: int, code: str, detail: str, instance: str = "", headers: Mapping[str, str] | None = None, **extra: Any
) -> JSONResponse:
    """A problem response; ``extra`` members are added to the body."""
    headers = dict(headers or {})
    if status == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="facegate"'
    body = problem_document(status, code, detail, instance, **extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers or None)


def parse_json(text: str | bytes, *, invalid_code: str = "invalid_json") -> Any:
    """JSON text as a value. ``ApiError``: ``json_too_deep`` (400) when arrays or objects nest deeper than
    the parser's recursion allows, ``invalid_code`` (422) when it is not JSON."""
    try:
        return json.loads(text)
    except RecursionError:
        raise ApiError("the JSON nests arrays or objects too deeply", code="json_too_deep") from None
    except ValueError:
        raise ApiError("the body is not valid JSON", code=invalid_code, status=422) from None


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
        detail = str(exc.detail)
        if exc.status_code == 400 and isinstance(exc.__cause__, RecursionError):  # FastAPI's own JSON bodies
            code, detail = "json_too_deep", "the JSON nests arrays or objects too deeply"
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            headers["Allow"] = _allowed_methods(request) or headers.get("Allow", "")
        return problem(exc.status_code, code, detail, request.url.path, headers=headers)

    @app.exception_handler(ClientDisconnect)
    async def _gone(request: Request, exc: ClientDisconnect) -> JSONResponse:
        log.info("the client left before its request was read: %s %s", request.method, request.url.path)
        return problem(400, "client_disconnected", "the connection closed before the request was read")

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem(500, "internal_error", "the server failed to handle this request", request.url.path)


METHOD_ORDER = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def _allowed_methods(request: Request) -> str:
    """The methods some route takes at this request's path (Starlette's own 405 names one route's only)."""
    allowed = []
    for method in METHOD_ORDER:
        probe = {**request.scope, "method": method}
        for route in request.app.router.routes:
            if route.matches(probe)[0] is Match.FULL and (not isinstance(route, Mount) or method in ("GET", "HEAD")):
                allowed.append(method)  # a mount (static files) takes any method to answer 405 itself
                break
    return ", ".join(allowed)


# ----------------------------------------------------------------- OpenAPI

PROBLEM_SCHEMA = {
    "title": "Problem",
    "type": "object",
    "description": "An error (RFC 9457), sent as application/problem+json; `code` is stable and machine-readable.",
    "properties": {
        "type": {"type": "string", "description": "urn:facegate:problem:<code>"},
        "title": {"type": "string"},
        "status": {"type": "integer", "description": "the HTTP status"},
        "code": {"type": "string", "description": "e.g. image_corrupt, request_too_large, person_not_found"},
        "detail": {"type": "string", "description": "what went wrong, for people"},
        "instance": {"type": "string", "description": "the request path"},
        "errors": {
            "type": "array",
            "description": "invalid_request: each invalid parameter or field",
            "items": {
                "type": "object",
                "properties": {
                    "loc": {"type": "array", "items": {"type": "string"}},
                    "msg": {"type": "string"},
                    "type": {"type": "string"},
                },
            },
        },
    },
    "required": ["type", "title", "status", "code", "detail"],
}

ERROR_DESCRIPTIONS = {
    400: "Bad request: a body that cannot be read (e.g. JSON nested too deeply)",
    401: "No API key, or an unknown or revoked one",
    403: "The API key lacks the scope",
    404: "No such person, template, key or collection",
    409: "Conflict: a duplicate name, a protected collection, templates of another model",
    413: "The body, an image or an archive is over a limit",
    415: "A media type this operation does not take",
    422: "Invalid parameters, body, image or archive",
}

MULTIPART_FORM = "multipart/form-data"
# names that must be unique, a protected collection, a camera's collection in use
WRITES_CONFLICT = ("/v1/people", "/v1/collections", "/v1/cameras")
# reads that answer 409 when the resource is not in the state they need
READS_CONFLICT = (
    "/v1/videos/{job_id}/result",  # video_not_done
    "/v1/cameras/{camera_id}/snapshot.jpg",  # camera_not_running
    "/v1/cameras/{camera_id}/stream.mjpg",
)


def _error_statuses(path: str, method: str, operation: dict) -> set[int]:
    """The 4xx statuses an operation can answer, from what it takes."""
    params = operation.get("parameters", [])
    names = {p["name"] for p in params}
    body = operation.get("requestBody")
    statuses: set[int] = set()
    if body:
        statuses |= {400, 413, 422}
        if MULTIPART_FORM in body.get("content", {}):
            statuses.add(415)
    if operation.get("security"):
        statuses |= {401, 403}
    if "collection" in names or any(p["in"] == "path" for p in params):
        statuses.add(404)
    if "collection" in names or (method in ("post", "patch", "delete") and path.startswith(WRITES_CONFLICT)):
        statuses.add(409)
    if path in READS_CONFLICT:
        statuses.add(409)
    if params:
        statuses.add(422)
    return statuses


def document_problems(app: FastAPI) -> None:
    """Declare the error answers of every operation in the OpenAPI document as problem documents."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        spec = generate()  # FastAPI's document (it caches it in app.openapi_schema)
        schemas = spec.setdefault("components", {}).setdefault("schemas", {})
        schemas["Problem"] = PROBLEM_SCHEMA
        content = {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}}
        for path, item in spec.get("paths", {}).items():
            for method, operation in item.items():
                responses = operation.setdefault("responses", {})
                for status in sorted(_error_statuses(path, method, operation)):
                    responses.setdefault(str(status), {"description": ERROR_DESCRIPTIONS[status]})
                for status, response in responses.items():
                    if status[0] in "45":
                        response["content"] = content
                        if status == "422":
                            response["description"] = ERROR_DESCRIPTIONS[422]
                operation["responses"] = dict(sorted(responses.items(), key=lambda kv: (not kv[0].isdigit(), kv[0])))
        for unused in ("HTTPValidationError", "ValidationError"):  # FastAPI's 422 shape, which facegate never sends
            kept = schemas.pop(unused, None)
            if kept is not None and f'"#/components/schemas/{unused}"' in json.dumps(spec):
                schemas[unused] = kept
        return spec

    app.openapi = openapi  # type: ignore[method-assign]
