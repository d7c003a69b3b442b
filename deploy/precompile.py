"""Container build stage: write bytecode for what a running facegate imports, and only that.

pip compiles every module of every dependency (69 MB of ``__pycache__`` in the image, of which a started
and serving facegate imports 18.5 MB: pip, setuptools, the rest of numpy, SQLAlchemy's other dialects,
pygments' lexers... are never imported). The Containerfile deletes every ``__pycache__`` under the
virtual environment, then runs this script with bytecode writing on: it starts the app the way
``facegate serve`` does (lifespan, database migrations, model loading), asks ``/readyz``, runs one
recognition, imports the camera worker's video stack and prints the CLI's help, so each module imported on
the way gets its ``.pyc`` back. A module imported later without one still works: Python compiles it in
memory when a process first imports it (the image runs with PYTHONDONTWRITEBYTECODE and a root-owned venv).
It also checks the slimmed environment: an import or the recognition failing here fails the build.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time

if sys.flags.dont_write_bytecode:
    sys.exit("precompile.py: run it with bytecode writing on (PYTHONDONTWRITEBYTECODE unset)")

data = tempfile.mkdtemp(prefix="facegate-precompile-")
os.environ["FACEGATE_DATA_DIR"] = data  # a throw-away database; FACEGATE_CACHE_DIR (the ONNX model) stays
for name in ("FACEGATE_HOST", "FACEGATE_DATABASE_URL"):
    os.environ.pop(name, None)  # loopback, SQLite: no keys needed for the requests below

import cv2  # noqa: E402
import numpy as np  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402

from facegate.api.app import create_app  # noqa: E402
from facegate.api.server import uvicorn_config  # noqa: E402
from facegate.config import load_settings  # noqa: E402

settings = load_settings()
app = create_app(settings)
uvicorn_config(app, settings).load()  # uvicorn's protocol, loop and lifespan modules (httptools, uvloop)
with TestClient(app, base_url="http://127.0.0.1:8000") as client:  # a Host the guard accepts
    deadline = time.monotonic() + 300
    while (status := client.get("/readyz").status_code) == 503 and time.monotonic() < deadline:  # models loading
        time.sleep(0.5)
    assert status == 200, f"/readyz answered {status}"
    image = np.full((480, 640, 3), 128, np.uint8)
    cv2.circle(image, (320, 240), 100, (200, 180, 160), -1)
    jpeg = cv2.imencode(".jpg", image)[1].tobytes()
    answer = client.post("/v1/recognize", files={"image": ("probe.jpg", jpeg, "image/jpeg")})
    assert answer.status_code == 200, (answer.status_code, answer.text)
    for path in ("/v1/info", "/metrics", "/"):
        client.get(path)

import av  # noqa: E402,F401  the camera worker's and video jobs' decoder (PyAV)

import facegate.service.video  # noqa: E402
import facegate.service.video_jobs  # noqa: E402
import facegate.sources.ffmpeg  # noqa: E402,F401

subprocess.run([sys.executable, "-m", "facegate", "--help"], check=True, stdout=subprocess.DEVNULL)
print(f"precompile: {len(sys.modules)} modules imported", flush=True)
