"""Frame sources: files, RTSP (a real gst-rtsp-server on loopback), HTTP MJPEG, USB parsing,
URL validation and redaction, and the newest-frame reader with reconnects.

The RTSP tests skip when Debian's /usr/bin/python3 cannot import gi/GstRtspServer, and fail
instead when CI=true (see tests/camera_servers.py for the packages).
"""

from __future__ import annotations

import os
import signal
import socket
import threading
import time

import numpy as np
import pytest

from camera_servers import (
    MjpegServer,
    RtspServer,
    clip_path,
    free_port,
    mjpeg_frames,
    rtsp_unavailable,
)
from facegate.sources import (
    AvSource,
    Backoff,
    LatestFrameReader,
    MjpegSource,
    SourceError,
    SourceFrame,
    SourceInfo,
    UsbSource,
    open_source,
    redact_url,
    validate_camera_url,
)
from facegate.sources.usb import usb_device_path
from facegate.vision.image import ImageLimits

SECRET = "s3cr3t-Pa55"
CLIP_FRAMES = 372
IN_CI = os.environ.get("CI", "").lower() == "true"


def _need(reason: str | None) -> None:
    if reason:
        if IN_CI:
            pytest.fail(f"required in CI: {reason}")
        pytest.skip(reason)


@pytest.fixture(scope="module")
def clip():
    return clip_path()


@pytest.fixture(scope="module")
def rtsp():
    """One RTSP server for the module (tests that stop it make their own)."""
    _need(rtsp_unavailable())
    server = RtspServer()
    server.start()
    yield server
    server.close()


@pytest.fixture(scope="module")
def jpegs():
    return mjpeg_frames()


def _code(exc_info) -> str:
    return exc_info.value.code


# ----------------------------------------------------------------------------- base values


def test_backoff_doubles_to_a_cap_and_resets_after_a_healthy_minute():
    b = Backoff()
    assert [b.delay(n) for n in range(8)] == [1, 2, 4, 8, 16, 30, 30, 30]
    assert b.delay(10_000) == 30
    assert b.healthy(60.0) and not b.healthy(59.9)
    with pytest.raises(ValueError):
        Backoff(initial_s=5, max_s=1)


# ----------------------------------------------------------------------------- URLs


@pytest.mark.parametrize(
    "url",
    [
        "rtsp://127.0.0.1:8554/clip",
        "rtsps://cam.example:322/stream1",
        f"rtsp://admin:{SECRET}@10.0.0.5/Streaming/Channels/101",
        "http://cam.local/video.mjpg?resolution=640x480",
        "https://[::1]:8443/mjpeg",
    ],
)
def test_network_urls_are_accepted(url):
    assert validate_camera_url(url) == url
    assert validate_camera_url(f"  {url}\n") == url


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("", "empty"),
        ("rtmp://host/live", "unsupported scheme 'rtmp'"),
        ("ftp://host/x", "unsupported scheme 'ftp'"),
        ("rtsp:/host/clip", "need //host"),
        ("rtsp:///clip", "no host"),
        ("http://host:99999/x", "malformed URL or port"),
        ("http://host:0/x", "port 0"),
        ("rtsp://host/cl ip", "spaces or control"),
        ("usb:x", "not a USB camera"),
        ("usb:1000", "not a USB camera"),
        ("/dev/sda", "not a USB camera"),
        ("/tmp/clip.mp4", "file paths are not accepted"),
        ("file:///tmp/clip.mp4", "file URLs are not accepted"),
        ("x" * 2001, "more than 2000"),
    ],
)
def test_bad_urls_say_why(url, why):
    with pytest.raises(SourceError) as exc:
        validate_camera_url(url)
    assert _code(exc) == "invalid_camera_url"
    assert why in exc.value.message


def test_files_only_when_allowed(tmp_path):
    assert validate_camera_url("/tmp/clip.mp4", allow_files=True) == "/tmp/clip.mp4"
    assert validate_camera_url("file:///tmp/a%20b.mp4", allow_files=True) == "/tmp/a b.mp4"
    with pytest.raises(SourceError, match="is a directory"):
        validate_camera_url(str(tmp_path), allow_files=True)


def test_usb_urls():
    assert usb_device_path("usb:0") == "/dev/video0"
    assert usb_device_path("usb:12") == "/dev/video12"
    assert usb_device_path("/dev/video3") == "/dev/video3"
    assert validate_camera_url(" usb:2 ") == "usb:2"
    assert validate_camera_url("/dev/video1") == "/dev/video1"
    assert isinstance(open_source("usb:0"), UsbSource)


def test_a_missing_usb_device_fails_cleanly():
    index = next(n for n in range(200, 256) if not os.path.exists(f"/dev/video{n}"))
    source = UsbSource(f"usb:{index}", timeout_s=1)
    with pytest.raises(SourceError) as exc:
        source.open()
    assert _code(exc) in ("source_not_found", "source_unreachable")
    source.close()
    source.close()  # idempotent


def test_open_source_picks_the_class():
    assert isinstance(open_source("rtsp://127.0.0.1/x"), AvSource)
    assert open_source("rtsp://127.0.0.1/x").live
    assert isinstance(open_source("http://127.0.0.1/x.mjpg"), MjpegSource)
    file_source = open_source("/tmp/x.mp4", allow_files=True, stride=3)
    assert isinstance(file_source, AvSource) and not file_source.live and file_source.stride == 3
    with pytest.raises(SourceError) as exc:
        open_source("/tmp/x.mp4")
    assert _code(exc) == "invalid_camera_url"


def test_redact_url_never_leaks_the_password():
    for url in (
        f"rtsp://admin:{SECRET}@10.0.0.5:554/x",
        f"http://user:{SECRET}@cam/video.mjpg?x=1",
        f"http://cam/video.mjpg?user=admin&password={SECRET}",
    ):
        safe = redact_url(url)
        assert SECRET not in safe and "***" in safe
    assert redact_url("rtsp://10.0.0.5/x") == "rtsp://10.0.0.5/x"
    assert redact_url(f"rtsp://admin:{SECRET}@h/x").startswith("rtsp://admin:***@h")
    with pytest.raises(SourceError) as exc:
        validate_camera_url(f"rtsp://admin:{SECRET}@host:99999/x")
    assert SECRET not in str(exc.value)


# ----------------------------------------------------------------------------- files


def test_a_file_gives_every_frame(clip):
    source = AvSource(str(clip), live=False)
    info = source.open()
    assert (info.width, info.height, info.live, info.fps) == (640, 480, False, 25.0)
    frames = []
    while (frame := source.read()) is not None:
        frames.append((frame.index, frame.rgb.shape, frame.rgb.dtype))
    source.close()
    assert len(frames) == CLIP_FRAMES
    assert [i for i, _, _ in frames] == list(range(CLIP_FRAMES))
    assert {(s, d) for _, s, d in frames} == {((480, 640, 3), np.dtype(np.uint8))}


def test_a_file_with_a_stride(clip):
    with AvSource(str(clip), live=False, stride=5) as source:
        indices = []
        while (frame := source.read()) is not None:
            indices.append(frame.index)
    assert indices == list(range(0, CLIP_FRAMES, 5))


def test_frame_threaded_decoding_hands_out_the_same_frames(clip):
    """``decode_threads`` (video files read ahead): FFmpeg decodes on several threads, frames come out a
    few packets later, and they are the same frames, with the same indexes and pixels, also when the
    frames no analysed frame needs are skipped undecoded (the decoder's skip setting follows each packet)."""
    from av.codec.context import ThreadType

    def frames(stride: int, skip_unused: bool, threads: int) -> tuple[list, int]:
        with AvSource(str(clip), live=False, stride=stride, skip_unused=skip_unused, decode_threads=threads) as source:
            ctx = source._stream.codec_context
            assert bool(ctx.thread_type & ThreadType.FRAME) == bool(threads)
            assert ctx.thread_count == threads or not threads
            out = []
            while (frame := source.read()) is not None:
                out.append((frame.index, frame.pts, frame.rgb))
            return out, source.frames_read

    for stride, skip_unused in ((1, False), (3, True), (5, False)):
        (plain, plain_read), (threaded, threaded_read) = frames(stride, skip_unused, 0), frames(stride, skip_unused, 2)
        assert [i for i, _, _ in threaded] == [i for i, _, _ in plain] == list(range(0, CLIP_FRAMES, stride))
        assert [p for _, p, _ in threaded] == [p for _, p, _ in plain]
        assert all(np.array_equal(a, b) for (_, _, a), (_, _, b) in zip(plain, threaded, strict=True))
        assert threaded_read == plain_read == CLIP_FRAMES


def test_frame_threaded_decoding_is_for_files_only(clip):
    with pytest.raises(ValueError, match="live"):  # a camera's newest frame would come frames late
        AvSource("rtsp://127.0.0.1:8554/clip", live=True, decode_threads=2)
    with pytest.raises(ValueError):
        AvSource(str(clip), live=False, decode_threads=-1)


def test_frames_over_the_pixel_limit_are_refused(clip):
    source = AvSource(str(clip), live=False, max_pixels=640 * 480 - 1)
    with pytest.raises(SourceError) as exc:
        source.open()
    assert _code(exc) == "frame_too_large" and "640x480" in exc.value.message


def test_file_errors(tmp_path):
    with pytest.raises(SourceError) as exc:
        AvSource(str(tmp_path / "missing.mp4"), live=False).open()
    assert _code(exc) == "source_not_found"
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(os.urandom(4096))
    with pytest.raises(SourceError) as exc:
        AvSource(str(junk), live=False).open()
    assert _code(exc) in ("source_decode_failed", "source_unsupported")


# ----------------------------------------------------------------------------- RTSP


def test_rtsp_frames_arrive(rtsp):
    source = AvSource(rtsp.url(), live=True, timeout_s=5)
    started = time.monotonic()
    info = source.open()
    assert (info.width, info.height, info.live) == (640, 480, True)
    first = source.read()
    first_at = time.monotonic()
    frames = [first]
    while time.monotonic() - first_at < 2.0:
        frames.append(source.read())
    source.close()
    indices = [f.index for f in frames]
    fps = (len(frames) - 1) / (frames[-1].wall_ts - frames[0].wall_ts)
    print(f"\nRTSP: first frame {first_at - started:.2f} s after open, {fps:.1f} fps over 2 s")
    assert indices == sorted(indices) and len(set(indices)) == len(indices)
    assert all(f.rgb.shape == (480, 640, 3) for f in frames)
    assert 15 <= fps <= 40  # ~25; generous for a loaded 2-core machine


def test_rtsp_unreachable_port_fails_fast():
    port = free_port()
    started = time.monotonic()
    with pytest.raises(SourceError) as exc:
        AvSource(f"rtsp://admin:{SECRET}@127.0.0.1:{port}/clip", live=True, timeout_s=2).open()
    assert _code(exc) == "source_unreachable"
    assert time.monotonic() - started < 2
    assert SECRET not in str(exc.value) and "admin:***@" in str(exc.value)
    assert exc.value.__cause__ is None and exc.value.__suppress_context__


def test_rtsp_unknown_mount(rtsp):
    with pytest.raises(SourceError) as exc:
        AvSource(rtsp.url("nope", userinfo=f"u:{SECRET}@"), live=True, timeout_s=2).open()
    assert _code(exc) == "source_not_found"
    assert SECRET not in str(exc.value)


def test_a_port_that_never_answers_times_out():
    with socket_listening() as port:
        started = time.monotonic()
        with pytest.raises(SourceError) as exc:
            AvSource(f"rtsp://127.0.0.1:{port}/clip", live=True, timeout_s=1).open()
        elapsed = time.monotonic() - started
    assert _code(exc) == "source_timeout"
    assert elapsed < 5


class socket_listening:
    """A TCP port that accepts connections and never says a word."""

    def __enter__(self) -> int:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        return self.sock.getsockname()[1]

    def __exit__(self, *exc: object) -> None:
        self.sock.close()


def test_reader_goes_down_and_comes_back_when_the_server_restarts():
    _need(rtsp_unavailable())
    server = RtspServer()
    server.start()
    states: list[tuple[float, str, str | None]] = []
    lock = threading.Lock()

    def on_state(state: str, code: str | None) -> None:
        with lock:
            states.append((time.monotonic(), state, code))

    def wait_state(state: str, timeout: float) -> float | None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with lock:
                hit = [t for t, s, _ in states if s == state and t >= mark]
            if hit:
                return hit[0]
            time.sleep(0.01)
        return None

    url = server.url(userinfo=f"viewer:{SECRET}@")
    reader = LatestFrameReader(
        lambda: AvSource(url, live=True, timeout_s=2),
        Backoff(initial_s=0.25, max_s=1.0),
        on_state,
        stall_s=3.0,
    ).start()
    try:
        mark = time.monotonic()
        live_at = wait_state("live", 10)
        assert live_at is not None, states
        time.sleep(1.0)
        assert reader.take(2) is not None
        mark = stopped = time.monotonic()
        server.stop()
        down_at = wait_state("down", 10)
        assert down_at is not None, states
        down_code = next(c for t, s, c in states if s == "down" and t >= mark)
        time.sleep(1.0)  # the server stays away for a while: reconnects are refused
        mark = time.monotonic()
        server.start()
        returned = time.monotonic()
        back_at = wait_state("live", 10)
        assert back_at is not None, states
        frame = reader.take(3)
        time.sleep(1.0)
        stats = reader.stats()
        print(
            f"\nreconnect: down {down_at - stopped:.2f} s after the server stopped ({down_code}); "
            f"live {back_at - returned:.2f} s after it listened again; reconnects={stats.reconnects}, "
            f"decoded={stats.decoded}, dropped={stats.dropped}, input_fps={stats.input_fps:.1f}"
        )
        assert down_at - stopped < 10
        assert back_at - returned < 5
        assert down_code in ("source_ended", "source_timeout", "source_unreachable", "source_stalled")
        assert stats.state == "live" and stats.reconnects >= 1
        assert stats.last_error is not None
        assert SECRET not in repr(stats) and SECRET not in repr(states)
        assert frame is not None and frame.rgb.shape == (480, 640, 3)
    finally:
        stop_started = time.monotonic()
        assert reader.stop(10)
        print(f"stop took {time.monotonic() - stop_started:.3f} s")
        server.close()
    assert reader.state == "stopped"


def test_a_hung_server_ends_the_read_through_the_timeout():
    """SIGSTOP keeps the socket open and silent: the watchdog reports the stall, the read
    timeout (about 2 x timeout_s) ends the read, and SIGCONT brings the stream back."""
    _need(rtsp_unavailable())
    server = RtspServer()
    server.start()
    events: list[tuple[float, str, str | None]] = []
    reader = LatestFrameReader(
        lambda: AvSource(server.url(), live=True, timeout_s=1),
        Backoff(initial_s=0.25, max_s=1.0),
        lambda s, c: events.append((time.monotonic(), s, c)),
        stall_s=0.5,
    ).start()
    try:
        assert reader.take(10) is not None
        time.sleep(0.5)
        assert server.proc is not None
        server.proc.send_signal(signal.SIGSTOP)
        hung = time.monotonic()
        deadline = hung + 8
        while reader.stats().last_error not in ("source_timeout",) and time.monotonic() < deadline:
            time.sleep(0.02)
        server.proc.send_signal(signal.SIGCONT)
        resumed = time.monotonic()
        deadline = resumed + 8
        while not any(s == "live" and t > resumed for t, s, _ in events) and time.monotonic() < deadline:
            time.sleep(0.02)
        after = {c: round(t - hung, 2) for t, s, c in events if s == "down" and t >= hung}
        back = [round(t - resumed, 2) for t, s, _ in events if s == "live" and t > resumed]
        print(f"\nhung server (timeout_s=1, stall_s=0.5): down after {after} s; live {back[:1]} s after SIGCONT")
        assert "source_stalled" in after and "source_timeout" in after
        assert after["source_timeout"] < 6
        assert back, events
    finally:
        if server.proc is not None:
            server.proc.send_signal(signal.SIGCONT)
        assert reader.stop(10)
        server.close()


# ----------------------------------------------------------------------------- MJPEG


@pytest.mark.parametrize("content_length", [True, False])
def test_mjpeg_frames_arrive(jpegs, content_length):
    with MjpegServer(jpegs, fps=60, content_length=content_length) as server:
        source = MjpegSource(server.url(), ImageLimits(), timeout_s=2)
        info = source.open()
        assert info.live
        frames = [source.read() for _ in range(12)]
        source.close()
    assert [f.index for f in frames] == list(range(12))
    assert all(f.rgb.shape == (480, 640, 3) and f.rgb.dtype == np.uint8 for f in frames)
    assert source.skipped == 0 and source.last_error is None


@pytest.mark.parametrize("content_length", [True, False])
def test_mjpeg_a_garbage_part_is_skipped_and_counted(jpegs, content_length):
    script = [("image/jpeg", jpegs[0]), ("image/jpeg", b"\xff\xd8\xff" + os.urandom(3000)), ("text/plain", b"hello")]
    with MjpegServer(jpegs, fps=60, content_length=content_length, script=script) as server:
        source = MjpegSource(server.url(), ImageLimits(), timeout_s=2)
        source.open()
        first, second = source.read(), source.read()
        source.close()
    assert (first.index, second.index) == (0, 1)
    assert source.skipped == 2
    assert source.last_error == "image_unsupported_type"


@pytest.mark.parametrize("content_length", [True, False])
def test_mjpeg_an_oversized_part_is_refused(jpegs, content_length):
    limits = ImageLimits(max_bytes=30_000)
    big = jpegs[0][:-2] + b"\x00" * 60_000 + b"\xff\xd9"
    with MjpegServer(jpegs, fps=60, content_length=content_length, script=[("image/jpeg", big)]) as server:
        source = MjpegSource(server.url(), limits, timeout_s=2)
        source.open()
        frame = source.read()
        source.close()
    assert frame.index == 0 and frame.rgb.shape == (480, 640, 3)
    assert source.skipped == 1 and source.last_error == "image_too_large"


def test_mjpeg_too_many_bad_parts_in_a_row(jpegs):
    script = [("image/jpeg", b"not a jpeg %d" % i) for i in range(10)]
    with MjpegServer(jpegs, fps=200, script=script) as server:
        source = MjpegSource(server.url(), ImageLimits(), timeout_s=2, max_bad_parts=10)
        source.open()
        with pytest.raises(SourceError) as exc:
            source.read()
        source.close()
    assert _code(exc) == "source_decode_failed" and "image_unsupported_type" in exc.value.message


def test_mjpeg_frames_over_the_pixel_limit(jpegs):
    with MjpegServer(jpegs, fps=60) as server:
        source = MjpegSource(server.url(), ImageLimits(max_pixels=640 * 480 - 1), timeout_s=2)
        source.open()
        with pytest.raises(SourceError) as exc:
            source.read()
        source.close()
    assert _code(exc) == "frame_too_large"


def test_mjpeg_http_errors(jpegs):
    with MjpegServer(jpegs, credentials=("viewer", SECRET)) as server:
        wrong = MjpegSource(server.url(userinfo="viewer:wrong-password@"), timeout_s=2)
        with pytest.raises(SourceError) as exc:
            wrong.open()
        assert _code(exc) == "source_unauthorized" and "wrong-password" not in str(exc.value)
        with pytest.raises(SourceError) as exc:
            MjpegSource(server.url(), timeout_s=2).open()
        assert _code(exc) == "source_unauthorized"
        good = MjpegSource(server.url(userinfo=f"viewer:{SECRET}@"), timeout_s=2)
        good.open()
        assert good.read().rgb.shape == (480, 640, 3)
        good.close()
        with pytest.raises(SourceError) as exc:
            MjpegSource(server.url("/nope", userinfo=f"viewer:{SECRET}@"), timeout_s=2).open()
        assert _code(exc) == "source_not_found" and SECRET not in str(exc.value)
        with pytest.raises(SourceError) as exc:
            MjpegSource(server.url("/still.jpg", userinfo=f"viewer:{SECRET}@"), timeout_s=2).open()
        assert _code(exc) == "source_unsupported" and "image/jpeg" in exc.value.message
    with pytest.raises(SourceError) as exc:
        MjpegSource(f"http://viewer:{SECRET}@127.0.0.1:{free_port()}/video.mjpg", timeout_s=2).open()
    assert _code(exc) == "source_unreachable" and SECRET not in str(exc.value)


def test_mjpeg_a_silent_server_times_out():
    with socket_listening() as port:
        started = time.monotonic()
        with pytest.raises(SourceError) as exc:
            MjpegSource(f"http://127.0.0.1:{port}/video.mjpg", timeout_s=0.5).open()
    assert _code(exc) == "source_timeout" and time.monotonic() - started < 3


def test_mjpeg_a_trickling_part_times_out(jpegs):
    with MjpegServer(jpegs, fps=2) as server:  # each part is written at once; 0.5 s between parts
        source = MjpegSource(server.url(), timeout_s=2, max_part_s=0.2)
        source.open()
        assert source.read() is not None  # a part that arrives whole is fine, whatever the gap before it
        assert source.read() is not None
        source.close()
    with trickling_server() as port:
        source = MjpegSource(f"http://127.0.0.1:{port}/video.mjpg", timeout_s=2, max_part_s=0.5)
        source.open()
        started = time.monotonic()
        with pytest.raises(SourceError) as exc:
            source.read()
        source.close()
    assert _code(exc) == "source_timeout" and time.monotonic() - started < 3


class trickling_server:
    """One connection on 127.0.0.1: a multipart answer, a part's headers, then a byte every 0.1 s."""

    def __enter__(self) -> int:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1)
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()
        return self.sock.getsockname()[1]

    def _serve(self) -> None:
        try:
            conn, _ = self.sock.accept()
        except OSError:
            return
        with conn:
            conn.recv(65536)
            conn.sendall(
                b"HTTP/1.0 200 OK\r\nContent-Type: multipart/x-mixed-replace; boundary=frame\r\n\r\n"
                b"--frame\r\nContent-Type: image/jpeg\r\n\r\n"
            )
            while not self.done.wait(0.1):
                try:
                    conn.sendall(b"\xff")
                except OSError:
                    return

    def __exit__(self, *exc: object) -> None:
        self.done.set()
        self.sock.close()
        self.thread.join(2)


def test_reader_over_mjpeg_keeps_the_newest_frame_and_reports_a_server_stop(jpegs):
    server = MjpegServer(jpegs, fps=60).start()
    states: list[tuple[str, str | None]] = []
    reader = LatestFrameReader(
        lambda: MjpegSource(server.url(), timeout_s=2),
        Backoff(initial_s=0.2, max_s=0.5),
        lambda s, c: states.append((s, c)),
    ).start()
    try:
        assert reader.take(5) is not None
        time.sleep(0.5)  # nobody takes: frames are overwritten
        newest = reader.take(1)
        stats = reader.stats()
        assert newest is not None and stats.dropped > 0
        assert stats.input_fps is not None and 30 <= stats.input_fps <= 90
        server.stop()
        deadline = time.monotonic() + 10
        while reader.state != "down" and time.monotonic() < deadline:
            time.sleep(0.02)
        assert reader.state == "down"
        assert reader.stats().last_error in ("source_ended", "source_unreachable")
    finally:
        assert reader.stop(5)
    assert states[0] == ("connecting", None) and ("live", None) in states
    assert states[-1] == ("stopped", None)


# ----------------------------------------------------------------------------- the reader, with fake sources


class FakeSource:
    """A live source that serves ``n`` frames then fails with ``code``; ``hang`` blocks reads."""

    def __init__(self, n: int = 5, code: str = "source_ended", hang: threading.Event | None = None) -> None:
        self.n, self.code, self.hang = n, code, hang
        self.i = 0
        self.closed_by: str | None = None

    def open(self) -> SourceInfo:
        return SourceInfo(fps=100.0, width=4, height=4, live=True)

    def read(self) -> SourceFrame | None:
        if self.i >= self.n:
            if self.hang is not None:
                self.hang.wait(10)
            raise SourceError(f"fake failure at rtsp://u:***@h/x after {self.n}", code=self.code)
        self.i += 1
        time.sleep(0.005)
        return SourceFrame(self.i - 1, time.monotonic(), None, np.zeros((4, 4, 3), np.uint8))

    def close(self) -> None:
        self.closed_by = threading.current_thread().name


def test_reader_counts_drops_reconnects_and_closes_on_its_own_thread():
    made: list[FakeSource] = []

    def factory() -> FakeSource:
        made.append(FakeSource(n=20))
        return made[-1]

    states: list[tuple[str, str | None]] = []
    reader = LatestFrameReader(factory, Backoff(initial_s=0.05, max_s=0.1), lambda s, c: states.append((s, c)))
    reader.start()
    deadline = time.monotonic() + 5
    while reader.stats().reconnects < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert reader.stop(5)
    stats = reader.stats()
    assert stats.reconnects >= 2 and stats.last_error == "source_ended"
    pending = 1 if reader.take(0) is not None else 0
    assert stats.decoded == stats.taken + stats.dropped + pending
    assert all(s.closed_by == reader.name for s in made)
    assert ("down", "source_ended") in states and states[-1] == ("stopped", None)


def test_the_watchdog_reports_a_stall_and_stop_waits_for_the_read_to_end():
    hang = threading.Event()
    reader = LatestFrameReader(lambda: FakeSource(n=3, hang=hang), Backoff(initial_s=5), stall_s=0.3).start()
    deadline = time.monotonic() + 5
    while reader.stats().last_error != "source_stalled" and time.monotonic() < deadline:
        time.sleep(0.02)
    assert reader.state == "down" and reader.stats().last_error == "source_stalled"
    assert not reader.stop(0.2)  # the read still hangs
    hang.set()  # the source's own timeout ends it
    assert reader.stop(5)
    assert reader.state == "stopped"
    assert reader.take(0) is not None  # the last frame read before the stall, never taken
    assert reader.take(0) is None


def test_reader_on_a_file_ends(clip):
    reader = LatestFrameReader(lambda: AvSource(str(clip), live=False)).start()
    deadline = time.monotonic() + 20
    while reader.running and time.monotonic() < deadline:
        time.sleep(0.05)
    assert reader.state == "ended"
    assert reader.stats().decoded == CLIP_FRAMES
    assert reader.take(0) is not None  # the last frame is still there
    assert reader.take(0) is None


def test_reader_stats_never_show_the_password():
    port = free_port()
    url = f"rtsp://admin:{SECRET}@127.0.0.1:{port}/clip"
    reader = LatestFrameReader(lambda: open_source(url, timeout_s=1), Backoff(initial_s=0.05, max_s=0.1)).start()
    deadline = time.monotonic() + 5
    while reader.stats().last_error is None and time.monotonic() < deadline:
        time.sleep(0.01)
    stats = reader.stats()
    reader.stop(5)
    assert stats.last_error == "source_unreachable"
    assert SECRET not in repr(stats) and "admin:***@" in (stats.last_error_message or "")
