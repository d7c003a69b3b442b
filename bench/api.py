"""The service on loopback: recognise over HTTP, and the WebSocket stream with 1, 10 and 100 clients.

    python bench/api.py [--seconds 30] [--clients 1,10,100] [--fps 10]

Starts ``facegate serve`` as its own process (SQLite in a temporary folder, one person
enrolled), then, from this process:

* HTTP: one client posts a 640x480 JPEG with one face to ``/v1/recognize``, one request
  after another, for ``--seconds`` / 3: p50/p95 latency and requests per second;
* WebSocket: N clients each send that frame at ``--fps`` frames a second (the single
  client sends as fast as answers allow plus one frame in flight, so the server is the
  limit) for ``--seconds``; processed frames per second in total, and the latency from
  sending a frame to receiving its answer (p50/p95, answered frames only).

The server's resident memory is read from /proc before and after each WebSocket run.
Last line: ``ws_1client_fps=X ws_100clients_total_fps=Y ws_100clients_p95_ms=Z
http_1client_p95_ms=W errors=N``.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import websockets
from PIL import Image

from facegate.config import load_settings

ROOT = Path(__file__).resolve().parents[1]
PHOTOS = ROOT / "tests" / "data" / "lfw_subset10_krasserm" / "Tony_Blair"


def frame_640x480() -> bytes:
    """An LFW photo (one face) centred on a 640x480 grey canvas, as JPEG."""
    face = Image.open(sorted(PHOTOS.glob("*.jpg"))[3]).convert("RGB")
    canvas = Image.new("RGB", (640, 480), (110, 110, 110))
    canvas.paste(face, ((640 - face.width) // 2, (480 - face.height) // 2))
    buf = io.BytesIO()
    canvas.save(buf, "JPEG", quality=85)
    return buf.getvalue()


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] if len(values) >= 2 else (values[0] if values else 0.0)


async def ws_client(url: str, frame: bytes, seconds: float, fps: float | None, latencies: list, counts: list) -> int:
    """One streaming client; returns its error count."""
    errors = 0
    sent_at: dict[int, float] = {}
    async with websockets.connect(url, max_size=None) as ws:
        await ws.recv()  # ready
        done = asyncio.Event()
        answered = asyncio.Event()

        async def reader() -> None:
            nonlocal errors
            async for raw in ws:
                msg = json.loads(raw)
                if msg["type"] == "result":
                    now = time.perf_counter()
                    latencies.append((now - sent_at.pop(msg["frame_id"])) * 1000)
                    counts.append(now)
                    for older in [f for f in sent_at if f < msg["frame_id"]]:  # answers come in frame order:
                        del sent_at[older]  # an older frame not answered by now was dropped
                else:
                    errors += 1
                answered.set()
                if done.is_set() and not sent_at:
                    return

        task = asyncio.create_task(reader())
        end = time.perf_counter() + seconds
        frame_id = 0
        while time.perf_counter() < end:
            frame_id += 1
            sent_at[frame_id] = time.perf_counter()
            await ws.send(frame)
            if fps is None:  # as fast as answers come, with one frame in flight
                if len(sent_at) > 1:
                    answered.clear()
                    await answered.wait()
            else:
                await asyncio.sleep(1 / fps)
        done.set()
        # frames replaced by newer ones are never answered: forget those older than the last
        await asyncio.sleep(2.0)
        task.cancel()
    return errors


async def ws_run(url: str, frame: bytes, clients: int, seconds: float, fps: float | None) -> tuple[float, list, int]:
    latencies: list[float] = []
    answered_at: list[float] = []
    started = time.perf_counter()
    errors = await asyncio.gather(
        *(ws_client(url, frame, seconds, fps, latencies, answered_at) for _ in range(clients))
    )
    # frames per second while the clients were sending (answers after the window do not count)
    in_window = sum(t <= started + seconds for t in answered_at)
    return in_window / seconds, latencies, sum(errors)


def http_run(base: str, frame: bytes, seconds: float) -> tuple[list[float], int]:
    latencies, errors = [], 0
    with httpx.Client(base_url=base, timeout=30) as client:
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            t = time.perf_counter()
            r = client.post("/v1/recognize", files={"image": ("f.jpg", frame, "image/jpeg")})
            latencies.append((time.perf_counter() - t) * 1000)
            errors += r.status_code != 200
    return latencies, errors


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--clients", default="1,10,100")
    ap.add_argument("--fps", type=float, default=10.0, help="frames a second each client sends (N > 1)")
    args = ap.parse_args()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    tmp = tempfile.mkdtemp()
    env = {**os.environ, "FACEGATE_DATA_DIR": tmp, "FACEGATE_LOG_LEVEL": "warning"}
    served = load_settings().engine
    print(
        f"server: FACEGATE_INFERENCE_THREADS={served.inference_threads} "
        f"FACEGATE_MODEL_THREADS={served.model_threads} on {os.cpu_count()} CPUs",
        flush=True,
    )
    server = subprocess.Popen([sys.executable, "-m", "facegate", "serve", "--port", str(port)], env=env)
    base, frame = f"http://127.0.0.1:{port}", frame_640x480()
    try:
        with httpx.Client(base_url=base, timeout=60) as c:
            for _ in range(600):
                try:
                    if c.get("/readyz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.1)
            pid = c.post("/v1/people", json={"name": "Tony Blair"}).json()["id"]
            photos = [("images", (p.name, p.read_bytes(), "image/jpeg")) for p in sorted(PHOTOS.glob("*.jpg"))[:3]]
            c.post(f"/v1/people/{pid}/faces", files=photos).raise_for_status()
        http_lat, errors = http_run(base, frame, args.seconds / 3)
        http_p95 = pct(http_lat, 95)
        print(
            f"http 1 client: p50={pct(http_lat, 50):.1f} ms p95={http_p95:.1f} ms "
            f"rps={len(http_lat) / (args.seconds / 3):.1f} errors={errors}",
            flush=True,
        )
        results = {}
        for n in [int(x) for x in args.clients.split(",")]:
            before = rss_mb(server.pid)
            fps, lat, errs = asyncio.run(
                ws_run(base.replace("http", "ws") + "/v1/stream", frame, n, args.seconds, None if n == 1 else args.fps)
            )
            after = rss_mb(server.pid)
            errors += errs
            results[n] = (fps, pct(lat, 95))
            print(
                f"ws {n:>3} client(s): total_fps={fps:.1f} p50={pct(lat, 50):.1f} ms p95={pct(lat, 95):.1f} ms "
                f"errors={errs} server_rss_mb={before:.0f}->{after:.0f}",
                flush=True,
            )
    finally:
        server.terminate()
        server.wait(timeout=30)
    one = results.get(1, (0.0, 0.0))[0]
    many_fps, many_p95 = results.get(100, (0.0, 0.0))
    print(
        f"ws_1client_fps={one:.1f} ws_100clients_total_fps={many_fps:.1f} ws_100clients_p95_ms={many_p95:.0f} "
        f"http_1client_p95_ms={http_p95:.1f} errors={errors}"
    )


if __name__ == "__main__":
    main()
