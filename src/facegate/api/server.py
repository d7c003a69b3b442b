"""The HTTP server: uvicorn configured from the settings, with bounds on request heads and slow clients.

uvicorn's httptools protocol has no cap on the request head (a 100 MB header is read and
answered 200) and no deadline for a head or a body: a client sending a byte a second holds
its connection for as long as it likes, and so do a thousand of them. :class:`GuardedHttp`
adds, per connection:

* ``max_header_bytes``: a request line and headers longer than this are answered 431
  (``headers_too_large``) and the connection closed, without reading the rest;
* ``header_timeout``: a head not complete this long after the connection opened (on a
  kept-alive connection: after its first byte) is answered 408 (``request_timeout``) and
  the connection closed; a connection that sent nothing is just closed;
* ``body_timeout``: a body that makes no progress this long while the server waits for it
  is answered 408 (or the connection closed, when an answer was already sent). Time the
  server itself is not reading (the app has not yet taken what arrived, or a client waits
  for ``100 Continue``) does not count;
* ``max_connections``: a connection beyond this many open ones (HTTP and WebSocket) is
  answered 503 (``too_many_connections``) and closed.

Everything else is uvicorn's: :func:`uvicorn_config` is the one configuration used by
``facegate serve`` and by the tests' server.

:class:`GuardedHttp` extends uvicorn's ``HttpToolsProtocol``, whose methods and attributes
are not a public API. :data:`UVICORN_INTERNALS` names all it relies on (checked against
uvicorn 0.30.6, 0.34.3, 0.40.0, 0.47.0 and 0.54.0, which define them alike);
:func:`uvicorn_config` checks them first and refuses to start, naming what is missing, when
the installed uvicorn (or httptools) lacks any. It does not fall back to a plain uvicorn
server: that would serve without the head cap, the deadlines and the connection limit the
settings promise, with nothing but a log line to say so.
"""

from __future__ import annotations

import asyncio
import functools
import http
import importlib
import json
import logging
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import uvicorn

from facegate.api.problems import PROBLEM_JSON, problem_document
from facegate.config import Settings
from facegate.core.errors import FacegateError

if TYPE_CHECKING:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
else:
    try:  # needs httptools (uvicorn[standard]); without it the server refuses to start (check_uvicorn_internals)
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    except ImportError:
        HttpToolsProtocol = asyncio.Protocol

log = logging.getLogger("facegate.api.server")

#: uvicorn versions whose internals :class:`GuardedHttp` was checked against (pyproject pins the same range).
UVICORN_TESTED = ">=0.30,<0.55"

#: What :class:`GuardedHttp` uses of uvicorn (and httptools) beyond their public API: for each
#: ``module:qualified.name``, the methods it must define (``name()``) and the attributes its
#: code must assign or read (``.name``: looked up in the function's compiled names, as instance
#: attributes exist only on live objects).
UVICORN_INTERNALS: dict[str, tuple[str, ...]] = {
    "uvicorn.protocols.http.httptools_impl:HttpToolsProtocol": (
        "connection_made()",
        "connection_lost()",
        "data_received()",
        "handle_websocket_upgrade()",
        "on_message_begin()",
        "on_headers_complete()",
        "on_body()",
        "on_message_complete()",
        "_should_upgrade()",
    ),
    "uvicorn.protocols.http.httptools_impl:HttpToolsProtocol.__init__": (".loop", ".parser", ".connections", ".cycle"),
    "uvicorn.protocols.http.httptools_impl:HttpToolsProtocol.connection_made": (".transport", ".flow", ".client"),
    "uvicorn.protocols.http.httptools_impl:HttpToolsProtocol.on_message_begin": (".url", ".headers"),
    "uvicorn.protocols.http.httptools_impl:RequestResponseCycle.__init__": (
        ".disconnected",
        ".keep_alive",
        ".message_event",
        ".waiting_for_100_continue",
        ".response_started",
        ".response_complete",
    ),
    "uvicorn.protocols.http.flow_control:FlowControl.__init__": (".read_paused",),
    "httptools:HttpRequestParser": ("should_upgrade()",),
}


def uvicorn_internals_missing() -> list[str]:
    """What of :data:`UVICORN_INTERNALS` the installed uvicorn and httptools lack (empty: all there)."""
    missing: list[str] = []
    unimportable: set[str] = set()
    for where, names in UVICORN_INTERNALS.items():
        module_name, _, qualname = where.partition(":")
        if module_name in unimportable:
            continue
        try:
            target: Any = importlib.import_module(module_name)
        except ImportError as exc:
            unimportable.add(module_name)
            missing.append(f"module {module_name} ({exc})")
            continue
        try:
            for part in qualname.split("."):
                target = getattr(target, part)
        except AttributeError:
            missing.append(where)
            continue
        code_names = set(getattr(getattr(target, "__code__", None), "co_names", ()))
        for name in names:
            if name.endswith("()"):
                if not callable(getattr(target, name[:-2], None)):
                    missing.append(f"{where}.{name}")
            elif name[1:] not in code_names:
                missing.append(f"{where}: {name} (not used there any more)")
    return missing


@functools.cache
def check_uvicorn_internals() -> None:
    """Raise :class:`FacegateError` (``uvicorn_unsupported``) when the installed uvicorn lacks what
    :class:`GuardedHttp` relies on, rather than serve with a guard that breaks at the first request."""
    missing = uvicorn_internals_missing()
    if missing:
        raise FacegateError(
            f"the HTTP guard (facegate.api.server.GuardedHttp) does not fit uvicorn {uvicorn.__version__}: it lacks "
            + "; ".join(missing)
            + f". facegate was checked with uvicorn[standard]{UVICORN_TESTED} (httptools included): install a "
            "version in that range",
            code="uvicorn_unsupported",
        )


@dataclass(frozen=True)
class ConnectionLimits:
    """What one connection may take from the server (the ``server`` settings of the same names)."""

    max_header_bytes: int
    header_timeout: float
    body_timeout: float
    max_connections: int

    @classmethod
    def of(cls, settings: Settings) -> ConnectionLimits:
        s = settings.server
        return cls(s.max_header_bytes, s.header_timeout, s.body_timeout, s.max_connections)


class GuardedHttp(HttpToolsProtocol):
    """uvicorn's httptools protocol with a cap on the request head and deadlines for slow clients."""

    limits: ConnectionLimits  # set on the subclass made by :func:`protocol_for`

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_head = True  # between requests or inside a head: bytes received count toward the cap
        self._head_bytes = 0
        self._refused = False  # answered and closing: whatever else arrives is ignored
        self._head_timer: asyncio.TimerHandle | None = None
        self._body_timer: asyncio.TimerHandle | None = None
        self._body_progress = 0.0  # loop time of the last body bytes (or of the head's end)

    # ------------------------------------------------------------- connection

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.limits.max_connections:
            self._refuse(503, "too_many_connections", f"the server holds {self.limits.max_connections} connections")
            return
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timers()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        if self._in_head:  # an unfinished head is refused as soon as it is too long, before the rest is read
            self._head_bytes += len(data)
        super().data_received(data)
        if self._in_head and self._head_bytes > self.limits.max_header_bytes and not self.transport.is_closing():
            self._head_too_large()

    def handle_websocket_upgrade(self) -> None:
        if self._refused:
            return
        self._cancel_timers()  # the WebSocket protocol takes the connection over
        super().handle_websocket_upgrade()

    # ------------------------------------------------------------- parser callbacks

    def on_message_begin(self) -> None:
        self._in_head = True
        if self._head_timer is None:  # a kept-alive connection: the deadline runs from the first byte
            self._arm_head_timer()
        super().on_message_begin()

    def on_headers_complete(self) -> None:
        self._in_head, self._head_bytes = False, 0
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        # a whole head that came in one read: its size from what the parser saw (+ method and version)
        size = len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers) + 20
        if self._refused or size > self.limits.max_header_bytes:
            if not self._refused:
                self._head_too_large()
            return  # no request: the app never sees it
        super().on_headers_complete()
        if not (self.parser.should_upgrade() and self._should_upgrade()):
            self._body_progress = self.loop.time()
            self._body_timer = self.loop.call_later(self.limits.body_timeout, self._body_timed_out)

    def on_body(self, body: bytes) -> None:
        if self._refused:
            return
        self._body_progress = self.loop.time()
        super().on_body(body)

    def on_message_complete(self) -> None:
        if self._refused:
            return
        self._in_head, self._head_bytes = True, 0
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None
        super().on_message_complete()

    # ------------------------------------------------------------- deadlines

    def _arm_head_timer(self) -> None:
        self._head_timer = self.loop.call_later(self.limits.header_timeout, self._head_timed_out)

    def _cancel_timers(self) -> None:
        for timer in (self._head_timer, self._body_timer):
            if timer is not None:
                timer.cancel()
        self._head_timer = self._body_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self.transport.is_closing():
            return
        if self._head_bytes == 0:  # nothing of a request arrived: close quietly, as after keep-alive
            self.transport.close()
            return
        busy = self.cycle is not None and not self.cycle.response_complete  # a pipelined answer is being sent
        detail = f"the request head was not complete within {self.limits.header_timeout:g} s"
        self._refuse(408, "request_timeout", detail, answer=not busy)

    def _body_timed_out(self) -> None:
        self._body_timer = None
        if self.transport.is_closing() or self.cycle is None:
            return
        waiting_on_us = self.flow.read_paused or self.cycle.waiting_for_100_continue
        idle = self.loop.time() - self._body_progress
        if waiting_on_us or idle < self.limits.body_timeout:  # not the client's delay, or progress since
            if waiting_on_us:
                self._body_progress = self.loop.time()
            left = self.limits.body_timeout - (self.loop.time() - self._body_progress)
            self._body_timer = self.loop.call_later(max(left, 0.01), self._body_timed_out)
            return
        detail = f"the request body made no progress for {self.limits.body_timeout:g} s"
        self._refuse(408, "request_timeout", detail, answer=not self.cycle.response_started)

    def _head_too_large(self) -> None:
        cap = self.limits.max_header_bytes
        self._refuse(431, "headers_too_large", f"the request line and headers are over {cap} bytes")

    def _refuse(self, status: int, code: str, detail: str, *, answer: bool = True) -> None:
        """Answer ``status`` with a problem document (unless ``answer`` is false) and close the connection."""
        log.info("%s: %s (client %s)", code, detail, self.client)
        self._refused = True
        if self.cycle is not None and not self.cycle.response_complete:
            self.cycle.disconnected = True  # the app's answer, if it still sends one, is dropped
            self.cycle.keep_alive = False
            self.cycle.message_event.set()
        if answer:
            body = json.dumps(problem_document(status, code, detail), separators=(",", ":")).encode()
            head = (
                f"HTTP/1.1 {status} {http.HTTPStatus(status).phrase}\r\ncontent-type: {PROBLEM_JSON}\r\n"
                f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
            )
            self.transport.write(head.encode() + body)
        self._cancel_timers()
        self.transport.close()


SECRET_QUERY = re.compile(r"([?&](?:api_key|ref)=)[^&\s\"']*", re.IGNORECASE)


class ScrubSecrets(logging.Filter):
    """Masks the values of ``api_key`` and ``ref`` query parameters (an API key, a person's external
    reference) in uvicorn's access and WebSocket log lines: ``?api_key=***``."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(SECRET_QUERY.sub(r"\1***", a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.msg, str):
            record.msg = SECRET_QUERY.sub(r"\1***", record.msg)
        return True


def scrub_uvicorn_logs() -> None:
    """Install :class:`ScrubSecrets` on uvicorn's loggers (once)."""
    for name in ("uvicorn.access", "uvicorn.error"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, ScrubSecrets) for f in logger.filters):
            logger.addFilter(ScrubSecrets())


def protocol_for(limits: ConnectionLimits) -> type[GuardedHttp]:
    """:class:`GuardedHttp` bound to ``limits`` (uvicorn makes one protocol object per connection)."""
    return type("GuardedHttp", (GuardedHttp,), {"limits": limits})


def uvicorn_config(app: Any, settings: Settings, *, log_level: str | None = None) -> uvicorn.Config:
    """The uvicorn configuration of ``settings`` for ``app``: what ``facegate serve`` and the tests run."""
    check_uvicorn_internals()
    server = settings.server
    config = uvicorn.Config(
        app,
        host=server.host,
        port=server.port,
        log_level=log_level or server.log_level,
        http=protocol_for(ConnectionLimits.of(settings)),
        timeout_keep_alive=server.keep_alive_timeout,  # type: ignore[arg-type]  # seconds; a float works
        ws_max_size=settings.stream.max_stream_frame_bytes + 1024,
    )
    scrub_uvicorn_logs()  # after the Config, which (re)configures uvicorn's logging
    return config
