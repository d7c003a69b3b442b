"""OpenAPI docs at ``/docs`` with Swagger UI's files served by facegate (offline: no CDN)."""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import re
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

ASSETS = "/docs/assets"
# Swagger UI 5 (OpenAPI 3.1), as packaged by fastapi-offline; only its files are used
SWAGGER_FILES = Path(importlib.util.find_spec("fastapi_offline").origin).parent / "static"


def mount_docs(app: FastAPI) -> None:
    """Serve Swagger UI for ``app.openapi_url`` at ``/docs``, its scripts and styles under ``/docs/assets``."""
    app.mount(ASSETS, StaticFiles(directory=SWAGGER_FILES), name="swagger-ui")

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        page = get_swagger_ui_html(
            openapi_url=app.openapi_url,
            title=f"{app.title} API",
            swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS}/favicon.png",
            swagger_ui_parameters={"validatorUrl": None},  # no calls to swagger.io's validator
        )
        return HTMLResponse(page.body, headers={"Content-Security-Policy": docs_csp(bytes(page.body).decode())})


def docs_csp(html: str) -> str:
    """The page's CSP: its own files, and of inline scripts only the ones in ``html`` (by hash)."""
    inline = re.findall(r"<script>(.*?)</script>", html, flags=re.S)
    hashes = " ".join(f"'sha256-{base64.b64encode(hashlib.sha256(s.encode()).digest()).decode()}'" for s in inline)
    return (
        f"default-src 'self'; script-src 'self' {hashes}; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    )
