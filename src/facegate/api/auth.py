"""API-key authentication: ``Authorization: Bearer <key>`` or ``X-API-Key``, checked per scope.

Keys are required when the server is bound beyond loopback (or ``FACEGATE_AUTH=required``);
on loopback without keys every call is allowed, but a key that is sent is still checked.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, WebSocket
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from facegate.api.problems import ApiError
from facegate.store.records import DEFAULT_COLLECTION, ApiKey

bearer = HTTPBearer(auto_error=False, description="an API key: `Authorization: Bearer fgk_...`")
header_key = APIKeyHeader(name="X-API-Key", auto_error=False, description="an API key")


async def check_key(request_app, secret: str | None, scope: str) -> ApiKey | None:
    """The key allowed to act in ``scope``; raises 401/403 ``ApiError`` otherwise."""
    runtime = request_app.state.runtime
    if not secret:
        if runtime.settings.server.auth_required:
            raise ApiError("an API key is required (Authorization: Bearer <key>)", code="unauthorized")
        return None
    key = await run_in_threadpool(runtime.keys.authenticate, secret)
    if key is None:
        raise ApiError("the API key is unknown or revoked", code="unauthorized")
    if not key.allows(scope):
        raise ApiError(f"this API key lacks the {scope!r} scope", code="forbidden")
    return key


def check_collection(key: ApiKey | None, collection: str) -> None:
    """A key limited to some collections may use only those (403 ``collection_forbidden``)."""
    if key is not None and not key.reaches(collection):
        raise ApiError(
            f"this API key may use the collections {', '.join(key.collections)} only", code="collection_forbidden"
        )


def _service_wide(request: Request) -> bool:
    """Calls that act on the whole service: keys, webhooks, and changes to collections and cameras."""
    path = request.url.path
    writes = request.method != "GET"
    return path.startswith(("/v1/keys", "/v1/webhooks")) or (
        path.startswith(("/v1/collections", "/v1/cameras")) and writes
    )


def require(scope: str):
    """A route dependency that lets the call through only with a key holding ``scope`` (or ``admin``),
    and, for a key limited to some collections, only on those (never on service-wide calls)."""

    async def dependency(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
        api_key: Annotated[str | None, Depends(header_key)],
    ) -> ApiKey | None:
        secret = credentials.credentials if credentials else api_key
        key = await check_key(request.app, secret, scope)
        if key is not None and key.collections:
            if _service_wide(request):
                raise ApiError("only a key for every collection may do this", code="collection_forbidden")
            # the collection list is filtered to the key's collections; cameras check their own collection
            if request.url.path != "/v1/collections" and not request.url.path.startswith("/v1/cameras"):
                check_collection(key, request.query_params.get("collection", DEFAULT_COLLECTION))
        request.state.api_key = key
        return key

    return dependency


SUBPROTOCOL, KEY_PROTOCOL = "facegate", "facegate.key."


def ws_secret(ws: WebSocket) -> str | None:
    """A WebSocket's API key: ``Authorization: Bearer``, ``X-API-Key``, the subprotocol ``facegate.key.<key>``
    (browsers), or ``?api_key=`` (older clients; the access log scrubs it)."""
    auth = ws.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    offered = [p[len(KEY_PROTOCOL) :] for p in ws.scope.get("subprotocols", []) if p.startswith(KEY_PROTOCOL)]
    return ws.headers.get("x-api-key") or (offered[0] if offered else None) or ws.query_params.get("api_key")
