"""Camera test servers on loopback: a gst-rtsp-server subprocess and a stdlib HTTP MJPEG server.

The RTSP server (``tests/rtsp_server.py``) runs under Debian's ``/usr/bin/python3``, which has
python3-gi; a venv cannot import gi. Packages: python3-gi gir1.2-gst-rtsp-server-1.0
gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad (h264parse),
gstreamer1.0-plugins-ugly (x264enc, only for the ``/live`` mount).

The clip is made from the committed photos by ``camera_clips.slideshow`` (H.264 with PyAV's libx264).
"""

from __future__ import annotations

import base64
import contextlib
import functools
import os
import socket
import subprocess
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from camera_clips import slideshow, slideshow_jpegs

REPO = Path(__file__).resolve().parents[1]
SYSTEM_PYTHON = os.environ.get("FACEGATE_GI_PYTHON", "/usr/bin/python3")
RTSP_SCRIPT = Path(__file__).resolve().parent / "rtsp_server.py"


def clip_path() -> Path:
    """The 640x480 25 fps H.264 slideshow (372 frames), made from the committed photos (``camera_clips``)."""
    return slideshow().path


def free_port() -> int:
    """A TCP port nothing listens on now (on 127.0.0.1)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_listens(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@functools.cache
def rtsp_unavailable() -> str | None:
    """Why the RTSP server cannot run here (None when it can)."""
    if not Path(SYSTEM_PYTHON).exists():
        return f"{SYSTEM_PYTHON} is missing (the RTSP test server needs Debian's python3 with python3-gi)"
    probe = (
        "import gi; gi.require_version('Gst', '1.0'); gi.require_version('GstRtspServer', '1.0');"
        "from gi.repository import Gst, GstRtspServer; Gst.init(None);"
        "missing = [e for e in ('qtdemux', 'h264parse', 'rtph264pay') if Gst.ElementFactory.find(e) is None];"
        "print(' '.join(missing))"
    )
    try:
        done = subprocess.run([SYSTEM_PYTHON, "-c", probe], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{SYSTEM_PYTHON} cannot run: {exc}"
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["?"])[-1]
        return (
            f"{SYSTEM_PYTHON} cannot import gi/GstRtspServer ({last}); install python3-gi "
            "gir1.2-gst-rtsp-server-1.0 gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad"
        )
    if done.stdout.strip():
        return f"GStreamer elements missing: {done.stdout.strip()} (gstreamer1.0-plugins-good / -bad)"
    return None


def require_rtsp() -> None:
    """Skip the test when the RTSP server cannot run here, with the reason; fail instead in CI (``CI=true``)."""
    import pytest

    why = rtsp_unavailable()
    if why is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"the RTSP test server is required in CI: {why}")
    pytest.skip(why)


class RtspServer:
    """``tests/rtsp_server.py`` in a subprocess on 127.0.0.1:``port``; mount ``/clip``."""

    def __init__(self, port: int | None = None, clip: Path | None = None) -> None:
        self.port = port or free_port()
        self.clip = clip or clip_path()
        self.proc: subprocess.Popen[bytes] | None = None
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 (kept for the life of the server, closed in close())

    def url(self, mount: str = "clip", userinfo: str = "") -> str:
        return f"rtsp://{userinfo}127.0.0.1:{self.port}/{mount}"

    def start(self, timeout: float = 15.0) -> float:
        """Start the server and wait until its port listens; returns the seconds it took."""
        started = time.monotonic()
        self.proc = subprocess.Popen(
            [SYSTEM_PYTHON, str(RTSP_SCRIPT), "--port", str(self.port), "--clip", str(self.clip), "--exit-with-parent"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=self._log,
        )
        while time.monotonic() - started < timeout:
            if self.proc.poll() is not None:
                self._log.seek(0)
                raise RuntimeError(f"the RTSP server exited ({self.proc.returncode}): {self._log.read()[-2000:]!r}")
            if port_listens(self.port):
                return time.monotonic() - started
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"the RTSP server did not listen on port {self.port} within {timeout} s")

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)

    def close(self) -> None:
        self.stop()
        self._log.close()


def split_jpegs(data: bytes) -> list[bytes]:
    """The JPEGs of a concatenated MJPEG file, split at SOI (FFD8) and EOI (FFD9)."""
    out, pos = [], 0
    while (start := data.find(b"\xff\xd8", pos)) >= 0:
        end = data.find(b"\xff\xd9", start)
        if end < 0:
            break
        out.append(data[start : end + 2])
        pos = end + 2
    return out


def mjpeg_frames() -> tuple[bytes, ...]:
    """The slideshow's frames as JPEGs."""
    return slideshow_jpegs()


class MjpegServer:
    """A ``multipart/x-mixed-replace`` camera on 127.0.0.1 (stdlib ThreadingHTTPServer).

    ``/video.mjpg`` streams ``frames`` at ``fps``, looping; each connection first gets the
    ``script`` parts ((content type, bytes), e.g. garbage), then the frames. ``/still.jpg``
    answers one JPEG (a wrong content type for a stream); other paths 404. With
    ``credentials`` every request needs that HTTP Basic auth (401 otherwise).
    """

    def __init__(
        self,
        frames: tuple[bytes, ...] | list[bytes] | None = None,
        *,
        fps: float = 30.0,
        content_length: bool = True,
        credentials: tuple[str, str] | None = None,
        script: list[tuple[str, bytes]] | None = None,
        boundary: str = "frame",
        port: int = 0,
    ) -> None:
        self.frames = list(frames if frames is not None else mjpeg_frames())
        self.fps = fps
        self.content_length = content_length
        self.credentials = credentials
        self.script = list(script or [])
        self.boundary = boundary
        self.stopping = threading.Event()
        self.connections = 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:  # quiet
                pass

            def do_GET(self) -> None:
                owner.connections += 1
                if owner.credentials is not None:
                    token = base64.b64encode(":".join(owner.credentials).encode()).decode()
                    if self.headers.get("Authorization") != f"Basic {token}":
                        self.send_response(401)
                        self.send_header("WWW-Authenticate", 'Basic realm="camera"')
                        self.send_header("Content-Length", "0")
                        self.end_headers()
                        return
                if self.path == "/still.jpg":
                    self.send_response(200)
                    self.send_header("Content-Type", "image/jpeg")
                    self.send_header("Content-Length", str(len(owner.frames[0])))
                    self.end_headers()
                    self.wfile.write(owner.frames[0])
                    return
                if self.path != "/video.mjpg":
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={owner.boundary}")
                self.send_header("Cache-Control", "no-cache")
                self.end_headers()
                with contextlib.suppress(OSError):
                    owner._stream(self.wfile)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self._thread: threading.Thread | None = None

    def _part(self, ctype: str, data: bytes) -> bytes:
        head = f"--{self.boundary}\r\nContent-Type: {ctype}\r\n"
        if self.content_length:
            head += f"Content-Length: {len(data)}\r\n"
        return head.encode() + b"\r\n" + data + b"\r\n"

    def _stream(self, out) -> None:
        tick = 1.0 / self.fps
        next_at = time.monotonic()
        parts = [self._part(c, d) for c, d in self.script]
        i = 0
        while not self.stopping.is_set():
            if parts:
                out.write(parts.pop(0))
            else:
                out.write(self._part("image/jpeg", self.frames[i % len(self.frames)]))
                i += 1
            out.flush()
            next_at += tick
            delay = next_at - time.monotonic()
            if delay > 0:
                self.stopping.wait(delay)

    def url(self, path: str = "/video.mjpg", userinfo: str = "") -> str:
        return f"http://{userinfo}127.0.0.1:{self.port}{path}"

    def start(self) -> MjpegServer:
        self._thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        if self._thread is not None:
            self._thread.join(5)

    def __enter__(self) -> MjpegServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
