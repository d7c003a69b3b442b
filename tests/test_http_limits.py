"""Hostile HTTP against a real server on loopback: deep JSON, chunked and oversized bodies, huge heads, slow clients.

The server runs with the configuration ``facegate serve`` uses (``facegate.api.server``),
with short head and body timeouts so slow clients are cut within a test's patience; raw
sockets send what well-behaved clients never would.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import select
import shutil
import socket
import subprocess
import sys
import threading
import time

import httpx
import pytest
import uvicorn
import websockets
from uvicorn.server import ServerState

from api_server import free_port, running_server
from conftest import STRANGER
from facegate.api.server import (
    UVICORN_INTERNALS,
    UVICORN_TESTED,
    GuardedHttp,
    check_uvicorn_internals,
    uvicorn_config,
    uvicorn_internals_missing,
)
from facegate.config import Settings, load_settings
from facegate.core.errors import FacegateError

PROBLEM = "application/problem+json"
TIMEOUT = 1.0  # the test server's header and body timeouts, in seconds
PATIENCE = 30.0  # how long a test waits for the server to act (generous: no timing is asserted)
DEEP = "[" * 200_000 + "]" * 200_000


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    db = tmp_path_factory.mktemp("limits") / "facegate.db"
    settings = Settings().with_values(
        port=free_port(), database_url=f"sqlite:///{db}", header_timeout=TIMEOUT, body_timeout=TIMEOUT
    )
    with running_server(settings) as app:
        yield app, settings


@pytest.fixture()
def client(server):
    with httpx.Client(base_url=f"http://127.0.0.1:{server[1].server.port}", timeout=60) as c:
        yield c


def assert_problem(response, status: int, code: str) -> None:
    assert response.status_code == status, response.text[:500]
    assert response.headers["content-type"].startswith(PROBLEM)
    assert response.json()["code"] == code and response.json()["status"] == status


def connect(server) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server[1].server.port), timeout=PATIENCE)


def answer_of(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection (or ``PATIENCE`` runs out)."""
    data = b""
    with contextlib.suppress(ConnectionResetError):
        while chunk := sock.recv(65536):
            data += chunk
    return data


def status_and_body(raw: bytes) -> tuple[int, dict]:
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split(b" ")[1]), json.loads(body)


# ----------------------------------------------------------------- deep JSON


def test_deep_json_is_a_400_on_every_json_route(client):
    pid = client.post("/v1/people", json={"name": "Deep"}).json()["id"]
    body = f'{{"image": {DEEP}, "image_a": {DEEP}, "images": {DEEP}}}'
    headers = {"content-type": "application/json"}
    for path in ("/v1/recognize", "/v1/detect", "/v1/verify", f"/v1/people/{pid}/faces"):
        assert_problem(client.post(path, content=body, headers=headers), 400, "json_too_deep")
    assert_problem(client.post("/v1/people", content=f'{{"name": {DEEP}}}', headers=headers), 400, "json_too_deep")
    assert client.get(f"/v1/people/{pid}").json()["template_count"] == 0
    assert client.get("/healthz").status_code == 200


def test_deep_json_on_the_stream_is_an_error_and_the_stream_goes_on(server, engine):
    engine.warmup()  # the server shares this process's models
    url = f"ws://127.0.0.1:{server[1].server.port}/v1/stream"

    async def talk() -> list[dict]:
        async with websockets.connect(url, max_size=None) as ws:
            answers = [json.loads(await ws.recv())]
            for message in (DEEP, '{"type": "options", "top_k": 1}', STRANGER.read_bytes()):
                await ws.send(message)
                answers.append(json.loads(await asyncio.wait_for(ws.recv(), PATIENCE)))
            return answers

    ready, deep, options, result = asyncio.run(talk())
    assert ready["type"] == "ready"
    assert deep["type"] == "error" and deep["code"] == "json_too_deep"
    assert options["type"] == "ready"
    assert result["type"] == "result" and result["frame_id"] == 1 and len(result["faces"]) == 1


# ----------------------------------------------------------------- bodies


def chunks(total: int, size: int = 1024 * 1024, first: bytes = b""):
    """A body of ``total`` bytes sent in chunks (no Content-Length: ``Transfer-Encoding: chunked``)."""
    yield first
    for _ in range(total // size):
        yield b"\0" * size


def test_a_chunked_body_over_the_limit_is_413_and_the_server_goes_on(client, server):
    size = server[1].limits.max_request_bytes + 2 * 1024 * 1024
    part = b'--x\r\nContent-Disposition: form-data; name="image"; filename="a.jpg"\r\nContent-Type: image/jpeg\r\n\r\n'
    kinds = (("image/jpeg", b""), ("application/json", b'{"image": "'), ("multipart/form-data; boundary=x", part))
    for kind, first in kinds:
        response = client.post("/v1/recognize", content=chunks(size, first=first), headers={"content-type": kind})
        assert_problem(response, 413, "request_too_large")
    json_model = client.post(
        "/v1/people", content=chunks(size, first=b'{"name": "'), headers={"content-type": "application/json"}
    )
    assert_problem(json_model, 413, "request_too_large")  # a body FastAPI itself parses
    assert client.get("/healthz").status_code == 200


def test_the_zip_route_takes_bodies_up_to_max_zip_bytes(client, server):
    limits = server[1].limits
    over_global = limits.max_request_bytes + 10 * 1024 * 1024
    assert over_global < limits.max_zip_bytes
    junk = b"PK" + b"\0" * over_global
    for body in (junk, chunks(over_global, first=b"PK")):  # with a Content-Length, then chunked
        response = client.post("/v1/enroll/zip", content=body, headers={"content-type": "application/zip"})
        assert response.status_code != 413 and response.json()["code"] != "request_too_large", response.text
        assert 400 <= response.status_code < 500  # read whole, then refused as an archive (not a ZIP)
    # every other route keeps the global cap, and the ZIP route its own
    assert_problem(
        client.post("/v1/recognize", content=junk, headers={"content-type": "image/jpeg"}), 413, "request_too_large"
    )
    with connect(server) as sock:
        sock.sendall(
            b"POST /v1/enroll/zip HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/zip\r\nConnection: close\r\n"
            b"Content-Length: %d\r\n\r\n" % (limits.max_zip_bytes + 1024 * 1024)
        )
        status, body = status_and_body(answer_of(sock))
    assert status == 413 and body["code"] == "request_too_large"


# ----------------------------------------------------------------- heads


def test_an_oversized_head_is_refused_431(server, client):
    cap = server[1].server.max_header_bytes
    assert client.get("/healthz", headers={"X-Fill": "a" * (cap // 2)}).status_code == 200  # under the cap: served
    with connect(server) as sock:  # over the cap, never finished: answered without waiting for the rest
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Big: " + b"a" * (cap + 1024))
        status, body = status_and_body(answer_of(sock))
    assert status == 431 and body["code"] == "headers_too_large" and str(cap) in body["detail"]
    with connect(server) as sock:  # 64 MiB: refused long before it is all sent
        sent = 0
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Big: ")
            block = b"a" * (1024 * 1024)
            for _ in range(64):
                sock.sendall(block)
                sent += 1
        raw = answer_of(sock) if sent == 64 else b""
        assert sent < 64 or raw.startswith(b"HTTP/1.1 431")
    assert client.get("/healthz").status_code == 200


def wait_closed(sock: socket.socket, trickle: bytes = b"") -> tuple[bytes, int]:
    """Send ``trickle`` a byte at a time (one every 0.1 s) until the server closes the connection.

    Returns what the server sent and how many bytes of ``trickle`` went out; fails after ``PATIENCE``.
    """
    deadline, sent, data = time.monotonic() + PATIENCE, 0, b""
    while time.monotonic() < deadline:
        if sent < len(trickle):
            try:
                sock.sendall(trickle[sent : sent + 1])
                sent += 1
            except (BrokenPipeError, ConnectionResetError):
                return data, sent
        if select.select([sock], [], [], 0.1)[0]:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                return data, sent
            if not chunk:
                return data, sent
            data += chunk
    raise AssertionError(f"the server kept the connection open for {PATIENCE} s ({sent} bytes sent)")


def served_meanwhile(server, results: list[int], stop: threading.Event) -> None:
    with httpx.Client(base_url=f"http://127.0.0.1:{server[1].server.port}", timeout=PATIENCE) as c:
        while not stop.is_set():
            results.append(c.get("/healthz").status_code)
            time.sleep(0.05)


@contextlib.contextmanager
def other_clients(server):
    """Other clients asking /healthz in a loop while the block runs; all must be served."""
    results: list[int] = []
    stop = threading.Event()
    thread = threading.Thread(target=served_meanwhile, args=(server, results, stop), daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(PATIENCE)
    assert results and set(results) == {200}


def test_a_slow_head_is_cut_off_while_other_clients_are_served(server):
    head = b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Slow: " + b"a" * 1000 + b"\r\n\r\n"  # 100 s at 10 B/s
    with other_clients(server), connect(server) as slow, connect(server) as idle:
        data, sent = wait_closed(slow, head)
        assert sent < len(head)  # cut before the head was complete
        status, body = status_and_body(data)
        assert status == 408 and body["code"] == "request_timeout" and f"{TIMEOUT:g} s" in body["detail"]
        assert wait_closed(idle) == (b"", 0)  # a connection that says nothing is closed without an answer


def test_a_stalled_body_is_cut_off_while_other_clients_are_served(server):
    with other_clients(server), connect(server) as stalled:
        stalled.sendall(
            b"POST /v1/recognize HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: image/jpeg\r\n"
            b"Content-Length: 1000\r\n\r\n"
            b"0123456789"
        )
        data, _ = wait_closed(stalled)
        status, body = status_and_body(data)
        assert status == 408 and body["code"] == "request_timeout"
        with connect(server) as trickle:  # a body trickling in below the timeout is not cut: progress counts
            json_body = b'{"image": 1234567890}'  # read whole, then refused: not a base64 string
            trickle.sendall(
                b"POST /v1/recognize HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                b"Connection: close\r\nContent-Length: %d\r\n\r\n" % len(json_body)
            )
            for i in range(len(json_body)):  # twice the timeout in all, a tenth of it between bytes
                trickle.sendall(json_body[i : i + 1])
                time.sleep(TIMEOUT / 10)
            status, body = status_and_body(answer_of(trickle))
            assert status == 422 and body["code"] == "invalid_request"


def test_connections_beyond_max_connections_get_503(tmp_path):
    settings = Settings().with_values(
        port=free_port(), database_url=f"sqlite:///{tmp_path / 'c.db'}", max_connections=4, header_timeout=60.0
    )
    with running_server(settings):
        held = [socket.create_connection(("127.0.0.1", settings.server.port), timeout=PATIENCE) for _ in range(4)]
        try:
            with socket.create_connection(("127.0.0.1", settings.server.port), timeout=PATIENCE) as extra:
                status, body = status_and_body(answer_of(extra))  # answered at once, before any request
            assert status == 503 and body["code"] == "too_many_connections"
        finally:
            for sock in held:
                sock.close()
        deadline = time.monotonic() + PATIENCE  # the server notices the closed connections
        with httpx.Client(base_url=f"http://127.0.0.1:{settings.server.port}", timeout=PATIENCE) as c:
            while (status := c.get("/healthz").status_code) != 200 and time.monotonic() < deadline:
                time.sleep(0.1)
        assert status == 200


# ----------------------------------------------------------------- protocol answers


def test_405_names_the_allowed_methods(client):
    wrong = client.put("/v1/people")
    assert_problem(wrong, 405, "method_not_allowed")
    assert wrong.headers["allow"] == "GET, POST"  # every route at the path, not only the first one matched
    assert client.delete("/v1/recognize").headers["allow"] == "POST"
    assert client.post("/v1/people/p_x").headers["allow"] == "GET, PATCH, DELETE"
    assert client.post("/ui/app.js").headers["allow"] == "GET, HEAD"  # static files


def test_openapi_declares_problem_json_for_4xx(client):
    spec = client.get("/openapi.json").json()
    problem = spec["components"]["schemas"]["Problem"]
    assert {"type", "title", "status", "code", "detail"} <= set(problem["properties"])
    ref = {"$ref": "#/components/schemas/Problem"}
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            for status, response in operation["responses"].items():
                if status.startswith(("4", "5")):  # every error answer is a problem document
                    assert response["content"] == {PROBLEM: {"schema": ref}}, f"{method} {path} {status}"
    statuses = {
        ("post", "/v1/recognize"): {"400", "401", "403", "404", "409", "413", "415", "422"},
        ("get", "/v1/people/{person_id}"): {"401", "403", "404", "409", "422"},
        ("post", "/v1/people"): {"400", "401", "403", "404", "409", "413", "422"},
    }
    for (method, path), expected in statuses.items():
        assert set(spec["paths"][path][method]["responses"]) >= expected, (method, path)
    assert "HTTPValidationError" not in spec["components"]["schemas"]  # FastAPI's 422 shape is not what we send


# ----------------------------------------------------------------- settings and `facegate serve`


@pytest.mark.parametrize(
    ("name", "raw"),
    [("HEADER_TIMEOUT", "0"), ("BODY_TIMEOUT", "-1"), ("MAX_HEADER_BYTES", "100"), ("MAX_CONNECTIONS", "0")],
)
def test_server_limits_refuse_bad_values(name, raw):
    with pytest.raises(FacegateError) as err:
        load_settings(environ={f"FACEGATE_{name}": raw})
    assert err.value.code == "bad_config" and name.lower() in err.value.message


def test_facegate_serve_applies_the_server_limits(tmp_path):
    port = free_port()
    env = {
        **os.environ,
        "FACEGATE_DATA_DIR": str(tmp_path),
        "FACEGATE_PORT": str(port),
        "FACEGATE_MAX_HEADER_BYTES": "4096",
    }
    exe = shutil.which("facegate")
    cmd = [exe] if exe else [sys.executable, "-m", "facegate.cli"]
    proc = subprocess.Popen([*cmd, "serve"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, "facegate serve did not start"
            time.sleep(0.2)
        assert httpx.get(f"http://127.0.0.1:{port}/healthz", headers={"X-Fill": "a" * 3000}).status_code == 200
        big = httpx.get(f"http://127.0.0.1:{port}/healthz", headers={"X-Fill": "a" * 5000})
        assert big.status_code == 431 and big.json()["code"] == "headers_too_large"
    finally:
        proc.terminate()
        proc.wait(30)


# ----------------------------------------------------------------- uvicorn internals


def test_installed_uvicorn_has_what_the_guard_relies_on():
    """GuardedHttp extends uvicorn's HttpToolsProtocol: an upgrade that drops or renames what it uses fails here."""
    missing = uvicorn_internals_missing()
    assert not missing, (
        f"uvicorn {uvicorn.__version__} lacks what facegate.api.server.GuardedHttp relies on: {missing}; "
        f"GuardedHttp was checked with uvicorn{UVICORN_TESTED}: adapt it (and UVICORN_INTERNALS) or pin uvicorn"
    )


def test_a_live_guarded_connection_has_the_attributes_the_guard_uses():
    """The instance attributes (which only a live object has): one request through a GuardedHttp on a fake transport."""
    seen: dict = {}

    async def app(scope, receive, send):
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"ok"})

    class Transport(asyncio.Transport):
        def __init__(self) -> None:
            super().__init__()
            self.written, self.closed = b"", False

        def get_extra_info(self, name, default=None):
            return {"peername": ("127.0.0.1", 5000), "sockname": ("127.0.0.1", 8000)}.get(name, default)

        def write(self, data) -> None:
            self.written += data

        def is_closing(self) -> bool:
            return self.closed

        def close(self) -> None:
            self.closed = True

        def pause_reading(self) -> None:
            pass

        def resume_reading(self) -> None:
            pass

    async def one_request() -> bytes:
        settings = Settings().with_values(port=free_port())
        config = uvicorn_config(app, settings, log_level="warning")
        config.load()
        protocol = config.http_protocol_class(config=config, server_state=ServerState(), app_state={})
        assert isinstance(protocol, GuardedHttp)
        transport = Transport()
        protocol.connection_made(transport)
        for name in ("loop", "parser", "connections", "transport", "flow", "client"):
            seen[name] = hasattr(protocol, name)
        seen["flow.read_paused"] = hasattr(protocol.flow, "read_paused")
        protocol.data_received(b"GET /x HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n")
        seen["url, headers"] = isinstance(protocol.url, bytes) and isinstance(protocol.headers, list)
        for name in (
            "disconnected",
            "keep_alive",
            "message_event",
            "waiting_for_100_continue",
            "response_started",
            "response_complete",
        ):
            seen[f"cycle.{name}"] = hasattr(protocol.cycle, name)
        for _ in range(100):
            if protocol.cycle.response_complete:
                break
            await asyncio.sleep(0.01)
        protocol.connection_lost(None)
        return transport.written

    written = asyncio.run(one_request())
    assert written.startswith(b"HTTP/1.1 200") and written.endswith(b"ok"), written
    assert all(seen.values()), {name: there for name, there in seen.items() if not there}


def test_the_server_refuses_to_start_on_a_uvicorn_without_the_internals(monkeypatch):
    where = "uvicorn.protocols.http.httptools_impl:HttpToolsProtocol"
    monkeypatch.setitem(UVICORN_INTERNALS, where, (*UVICORN_INTERNALS[where], "on_gone_in_a_later_uvicorn()"))
    check_uvicorn_internals.cache_clear()
    try:
        with pytest.raises(FacegateError) as err:
            uvicorn_config(object(), Settings().with_values(port=free_port()))
    finally:
        check_uvicorn_internals.cache_clear()
    assert err.value.code == "uvicorn_unsupported"
    assert "HttpToolsProtocol.on_gone_in_a_later_uvicorn()" in err.value.message
    assert uvicorn.__version__ in err.value.message and UVICORN_TESTED in err.value.message
