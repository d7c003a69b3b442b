"""Browser-facing defences, one ASGI middleware outside everything else (:class:`BrowserGuard`):

* **security headers** on every HTTP answer: ``X-Content-Type-Options: nosniff``,
  ``X-Frame-Options: DENY``, ``Referrer-Policy: no-referrer``, ``Cross-Origin-Resource-Policy:
  same-origin`` and, unless the route set its own (the UI, ``/docs``), a CSP that allows nothing
  (``default-src 'none'; frame-ancestors 'none'``);
* **Host allow-list** (against DNS rebinding): a request or WebSocket whose ``Host`` is not an
  allowed name is answered 421 ``host_not_allowed`` (see :class:`HostPolicy`);
* **no cross-site writes**: a request other than GET/HEAD/OPTIONS whose ``Origin`` is neither the
  server's own (the ``Host`` it was sent to) nor in ``server.cors_origins``, or that has no
  ``Origin`` but ``Sec-Fetch-Site: cross-site``, is answered 403 ``cross_site_request``; a
  WebSocket with such an ``Origin`` is refused with HTTP 403 before it opens. Clients that are
  not browsers send no ``Origin`` and are not affected.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from facegate.api import problems
from facegate.config import Settings

log = logging.getLogger("facegate.api.security")

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "[::1]"})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
DEFAULT_PORTS = {"http": 80, "ws": 80, "https": 443, "wss": 443}
API_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
HEADERS = {
    b"x-content-type-options": b"nosniff",
    b"x-frame-options": b"DENY",
    b"referrer-policy": b"no-referrer",
    b"cross-origin-resource-policy": b"same-origin",
    b"content-security-policy": API_CSP.encode(),
}


def split_host(value: str) -> tuple[str, int | None]:
    """A ``Host`` header (or an origin's netloc) as a lower-case name (IPv6 in brackets) and a port."""
    value = value.strip().lower()
    if value.startswith("["):
        name, _, rest = value.partition("]")
        name, port = name + "]", rest[1:] if rest.startswith(":") else ""
    else:
        name, _, port = value.partition(":")
    return name.rstrip("."), int(port) if port.isdigit() else None


@dataclass(frozen=True)
class HostPolicy:
    """The ``Host`` names served: None is any. Bound to loopback: localhost, 127.0.0.1 and [::1] (plus
    ``server.allowed_hosts``); beyond loopback: ``server.allowed_hosts`` (``*``: any) with the loopback
    names and the bound address, or any name when none are set (a warning is logged at start)."""

    names: frozenset[str] | None

    @classmethod
    def of(cls, settings: Settings) -> HostPolicy:
        server = settings.server
        named = {split_host(h)[0] for h in server.allowed_hosts}
        if "*" in named:
            return cls(None)
        if server.loopback:
            return cls(LOOPBACK_NAMES | named)
        if not named:
            return cls(None)
        bound = {server.host.lower()} if server.host not in ("0.0.0.0", "::", "") else set()
        return cls(frozenset(LOOPBACK_NAMES | named | bound))

    def allows(self, host: str) -> bool:
        return self.names is None or split_host(host)[0] in self.names


class BrowserGuard:
    """Security headers, the Host allow-list and the refusal of cross-site writes (see the module)."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app, self.hosts = app, HostPolicy.of(settings)
        self.cors = frozenset(o.rstrip("/").lower() for o in settings.server.cors_origins)
        if self.hosts.names is None and not settings.server.allowed_hosts:
            log.warning(
                "facegate is bound to %s and serves any Host name; set server.allowed_hosts "
                "(FACEGATE_ALLOWED_HOSTS) to the names clients use",
                settings.server.host,
            )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        host = headers.get("host", "")
        refusal = None
        if not self.hosts.allows(host):
            refusal = (421, "host_not_allowed", f"this server does not answer to the host name {host!r}")
        elif (scope["type"] == "websocket" or scope["method"] not in SAFE_METHODS) and self._cross_site(headers):
            refusal = (403, "cross_site_request", "requests from another site may not write or stream")
        if scope["type"] == "websocket":
            if refusal:
                log.info("%s: WebSocket refused (Origin %r)", refusal[1], headers.get("origin"))
                return await send({"type": "websocket.close", "code": 4403, "reason": refusal[1]})
            return await self.app(scope, receive, send)

        async def secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {k.lower() for k, _ in message.get("headers", [])}
                extra = [(k, v) for k, v in HEADERS.items() if k not in present]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        if refusal:
            return await problems.problem(*refusal, scope["path"])(scope, receive, secured)
        await self.app(scope, receive, secured)

    def _cross_site(self, headers: dict[str, str]) -> bool:
        """Whether a browser sent this from a page of another origin."""
        origin = headers.get("origin")
        if origin is None:
            return headers.get("sec-fetch-site") == "cross-site"
        if origin.rstrip("/").lower() in self.cors:
            return False
        parts = urlsplit(origin.lower())
        if parts.scheme not in DEFAULT_PORTS or not parts.netloc:
            return True  # "null" (sandboxed pages, files) and the like
        default = DEFAULT_PORTS[parts.scheme]
        (oname, oport), (hname, hport) = split_host(parts.netloc), split_host(headers.get("host", ""))
        return (oname, oport or default) != (hname, hport or default)
