"""A real facegate server on loopback for the API tests (uvicorn in a thread of the test process)."""

from __future__ import annotations

import contextlib
import socket
import threading
import time

import uvicorn

from facegate.api.app import create_app
from facegate.api.server import uvicorn_config
from facegate.config import Settings


def files(*paths, field: str = "images") -> list:
    """Photos as multipart fields for httpx (``files=``), all under one field name."""
    return [(field, (p.name, p.read_bytes(), "image/jpeg")) for p in paths]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def running_server(settings: Settings):
    """Serve ``settings`` until the block ends, configured as ``facegate serve`` configures uvicorn
    (``facegate.api.server``); yields the app (its ``state`` holds the service)."""
    app = create_app(settings, warm=False)
    server = uvicorn.Server(uvicorn_config(app, settings, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.05)
    try:
        yield app
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@contextlib.contextmanager
def served(tmp_path_factory, engine, name: str, **values):
    """A facegate server on a fresh SQLite database, sharing this process's warmed models; yields its base URL
    (the module-scoped ``server`` fixture of the API and browser tests). ``values``: other settings."""
    engine.warmup()
    db = tmp_path_factory.mktemp(name) / "facegate.db"
    settings = Settings().with_values(port=free_port(), database_url=f"sqlite:///{db}", **values)
    with running_server(settings):
        yield f"http://127.0.0.1:{settings.server.port}"


def serve_process(port: int, env: dict[str, str], ready_path: str = "/readyz", timeout: float = 120):
    """``facegate serve --port PORT`` as its own process with ``env`` added, once ``ready_path`` answers 200
    (for tests that kill it: kill -9, restart)."""
    import os
    import subprocess
    import sys

    import httpx

    proc = subprocess.Popen(
        [sys.executable, "-m", "facegate", "serve", "--port", str(port)],
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}{ready_path}", timeout=1).status_code == 200:
                return proc
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            break
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"facegate serve did not answer {ready_path} on port {port}")
