"""RTSP streams, video files (and V4L2 devices, for usb.py) read through PyAV.

PyAV's wheel bundles FFmpeg, so no system ffmpeg is needed. For RTSP the options are the
ones measured on loopback (docs in shared notes): TCP transport, the socket timeout
``timeout`` in MICROSECONDS as a string (``stimeout`` is gone since FFmpeg 5 and silently
ignored: the read then hangs forever), and the low-latency set (``nobuffer``/``low_delay``
only together with the probe limits), plus PyAV's own ``av.open(timeout=(open_s, read_s))``
which interrupts any blocking call. A hung server then fails the read after about twice the
timeout.

A source is used from ONE thread: closing a container while another thread is inside
``decode()`` segfaults. :class:`facegate.sources.reader.LatestFrameReader` does it right.
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections import deque
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

from facegate.core.urls import redact_url
from facegate.sources.base import DEFAULT_MAX_PIXELS, SourceError, SourceFrame, SourceInfo

NETWORK_SCHEMES = ("rtsp", "rtsps", "http", "https")
# a live stream with this many packets in a row that fail to decode is given up (reconnect)
MAX_BAD_PACKETS = 50
# codecs whose decoders drop non-reference frames on request (``skip_frame = NONREF``) and whose
# packets carry one frame each, displayed in the order of their timestamps
SKIPPABLE_CODECS = ("h264", "hevc")


def low_latency_options(url: str, timeout_s: float) -> dict[str, str]:
    """FFmpeg input options for ``url``: TCP + microsecond timeout + low latency for RTSP."""
    scheme = urlsplit(url).scheme.lower()
    micros = str(max(1, int(timeout_s * 1_000_000)))
    if scheme in ("rtsp", "rtsps"):
        return {
            "rtsp_transport": "tcp",
            "timeout": micros,  # socket I/O timeout in microseconds; never ``stimeout``
            "fflags": "nobuffer",
            "flags": "low_delay",
            "probesize": "32",
            "analyzeduration": "0",
        }
    if scheme in ("http", "https"):
        return {"timeout": micros, "reconnect": "0"}
    return {}


def scrub(text: str, url: str) -> str:
    """``text`` with ``url`` (and its password, if any) replaced by the redacted form."""
    safe = redact_url(url)
    out = text.replace(url, safe)
    try:
        password = urlsplit(url).password
    except ValueError:
        password = None
    if password and len(password) >= 3:
        out = out.replace(password, "***")
    return out


def av_error(
    exc: BaseException, url: str, *, opening: bool, live: bool, elapsed_s: float, timeout_s: float
) -> SourceError:
    """Map a PyAV (or OS) exception to a SourceError with a stable code and a redacted message."""
    import av.error as ae

    where = redact_url(url)
    reason = getattr(exc, "strerror", None) or (exc.args[0] if exc.args and isinstance(exc.args[0], str) else "")
    reason = scrub(str(reason) or type(exc).__name__, url)
    network = urlsplit(url).scheme.lower() in NETWORK_SCHEMES

    def err(code: str, what: str) -> SourceError:
        return SourceError(f"{what}: {where} ({reason})", code=code)

    if isinstance(exc, ae.HTTPUnauthorizedError | ae.HTTPForbiddenError | PermissionError):
        return err("source_unauthorized", "access refused")
    if isinstance(exc, ae.HTTPNotFoundError | FileNotFoundError | NotADirectoryError | IsADirectoryError):
        return err("source_not_found", "no such stream, file or device")
    if isinstance(exc, ae.ExitError | TimeoutError):  # av.error.TimeoutError subclasses TimeoutError
        return err("source_timeout", f"no answer within {timeout_s:g} s")
    if isinstance(exc, ConnectionRefusedError | ConnectionAbortedError):
        return err("source_unreachable", "connection refused")
    if isinstance(exc, ae.DecoderNotFoundError | ae.DemuxerNotFoundError | ae.ProtocolNotFoundError):
        return err("source_unsupported", "unsupported format or codec")
    if isinstance(exc, ae.HTTPError):
        return err("source_unreachable" if opening else "source_ended", "the server refused the stream")
    if isinstance(exc, ae.InvalidDataError | ValueError):
        # a port that accepts but never answers ends in InvalidDataError after the timeout
        if network and opening and elapsed_s >= 0.8 * timeout_s:
            return err("source_timeout", f"no answer within {timeout_s:g} s")
        return err("source_decode_failed", "cannot decode the data")
    if isinstance(exc, ConnectionResetError | BrokenPipeError | EOFError):
        return err("source_ended" if not opening else "source_unreachable", "the connection broke off")
    if isinstance(exc, OSError):  # DNS failure is EIO at open; a killed HTTP server is EIO mid-read
        if opening:
            return err("source_unreachable" if network else "source_not_found", "cannot open")
        return err("source_ended" if live else "source_decode_failed", "the stream broke off")
    return err("source_decode_failed", "cannot read the stream")


class AvSource:
    """Frames of an RTSP stream or a video file, converted to RGB (``rgb24``).

    ``live`` streams are read as they come (the reader drops stale frames); files hand out
    every frame, or every ``stride``-th (all frames are still decoded, never dropped).

    ``skip_unused`` (files with a stride > 1, H.264/HEVC): the frames between the handed-out ones
    that no other frame is decoded from (non-reference frames, often half of them) are not decoded
    at all. A first pass over the packets (no decoding) numbers the frames in display order from
    their timestamps, so the handed-out frames, their indexes and their pixels are the same as
    without it; a file whose packets lack timestamps, or repeat one, is decoded whole.
    ``frames_read`` counts the frames passed, skipped ones included.

    ``decode_threads`` (files read ahead of their analysis): FFmpeg decodes several frames at once on that
    many threads (frame threading, plus slices), the same frames and pixels, each handed out a few frames
    later: more throughput for a reader that keeps a queue, never for a live camera, whose newest frame
    would come late by as many frames. 0 keeps FFmpeg's default (slice threading only, no delay).
    """

    def __init__(
        self,
        url: str,
        *,
        live: bool,
        timeout_s: float = 5.0,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        stride: int = 1,
        format: str | None = None,
        options: dict[str, str] | None = None,
        skip_unused: bool = False,
        decode_threads: int = 0,
    ) -> None:
        if stride < 1:
            raise ValueError("stride must be at least 1")
        if decode_threads < 0:
            raise ValueError("decode_threads must be 0 (FFmpeg's default) or more")
        if decode_threads and live:
            raise ValueError("frame-threaded decoding delays every frame: not for live streams")
        if not timeout_s > 0:
            raise ValueError("timeout_s must be positive")
        self.url = url
        self.live = live
        self.timeout_s = float(timeout_s)
        self.max_pixels = int(max_pixels)
        self.stride = int(stride)
        self.format = format
        self.options = {**low_latency_options(url, timeout_s), **(options or {})}
        self.skip_unused = bool(skip_unused)
        self.decode_threads = int(decode_threads)
        self._ranks: dict[int, int] | None = None  # pts -> display index, when skipping
        self.bad_packets = 0  # packets that failed to decode (skipped)
        self._container: Any = None
        self._stream: Any = None
        self._packets: Iterator[Any] | None = None
        self._pending: deque[Any] = deque()
        self._decoded = 0
        self._bad_in_row = 0
        self._ended = False

    def __repr__(self) -> str:
        return f"AvSource({redact_url(self.url)!r}, live={self.live})"

    @property
    def redacted_url(self) -> str:
        return redact_url(self.url)

    def _error(self, exc: BaseException, *, opening: bool, started: float) -> SourceError:
        return av_error(
            exc,
            self.url,
            opening=opening,
            live=self.live,
            elapsed_s=time.monotonic() - started,
            timeout_s=self.timeout_s,
        )

    def open(self) -> SourceInfo:
        import av

        self.close()
        started = time.monotonic()
        try:
            container = av.open(
                self.url,
                mode="r",
                format=self.format,
                options=self.options,
                timeout=(self.timeout_s, self.timeout_s),
            )
        except SourceError:
            raise
        except Exception as exc:  # av errors and the OS errors they subclass; the cause names the URL
            raise self._error(exc, opening=True, started=started) from None
        self._container = container
        try:
            return self._setup(container)
        except BaseException:
            self.close()
            raise

    def _setup(self, container: Any) -> SourceInfo:
        where = redact_url(self.url)
        if not container.streams.video:
            raise SourceError(f"no video stream in {where}", code="source_unsupported")
        stream = container.streams.video[0]
        ctx = stream.codec_context
        if ctx is None:
            raise SourceError(f"no decoder for the video of {where}", code="source_unsupported")
        width, height = int(ctx.width or 0), int(ctx.height or 0)
        if width and height:
            self._check_pixels(width, height)
        if self.decode_threads:  # before the first packet opens the decoder
            ctx.thread_type = "AUTO"
            ctx.thread_count = self.decode_threads
        rate = stream.average_rate or stream.guessed_rate
        fps = float(rate) if rate else None
        frames = int(stream.frames) if stream.frames and not self.live else None
        self._stream = stream
        self._ranks = self._display_order() if self.skip_unused and self.stride > 1 and not self.live else None
        self._packets = container.demux(stream)
        self._pending.clear()
        self._decoded = self._bad_in_row = 0
        self._ended = False
        return SourceInfo(fps=fps, width=width or None, height=height or None, live=self.live, frames=frames)

    @property
    def frames_read(self) -> int:
        """Frames passed so far: handed out, left out by the stride, or skipped undecoded."""
        return self._decoded

    def _display_order(self) -> dict[int, int] | None:
        """pts -> display index of every frame of the file (one demux pass, nothing decoded), or None
        when frames cannot be skipped safely: another codec, a packet without or with a repeated
        timestamp, or one the decoder would drop (discarded by an edit list, corrupt), which would
        shift the count of decoded frames against the count of packets."""
        import av

        if self._stream is None or self._stream.codec_context.name not in SKIPPABLE_CODECS:
            return None
        stamps: list[int] = []
        try:
            with av.open(
                self.url, mode="r", format=self.format, options=self.options, timeout=(self.timeout_s, self.timeout_s)
            ) as container:
                for packet in container.demux(container.streams.video[0]):
                    if packet.size:
                        if packet.pts is None or packet.is_discard or packet.is_corrupt:
                            return None
                        stamps.append(int(packet.pts))
        except Exception:  # the real pass reports what is wrong with the file
            return None
        ranks = {pts: index for index, pts in enumerate(sorted(stamps))}
        return ranks if len(ranks) == len(stamps) else None

    def _check_pixels(self, width: int, height: int) -> None:
        if width * height > self.max_pixels:
            raise SourceError(
                f"frames of {redact_url(self.url)} are {width}x{height}; the limit is {self.max_pixels} pixels",
                code="frame_too_large",
            )

    def _next_frame(self) -> Any | None:
        """The next decoded frame, or None at the end of the input."""
        import av.error as ae

        assert self._packets is not None
        while not self._pending:
            if self._ended:
                return None
            started = time.monotonic()
            try:
                packet = next(self._packets)
            except StopIteration:
                self._ended = True
                return None
            except Exception as exc:
                raise self._error(exc, opening=False, started=started) from None
            if self._ranks is not None and packet.pts is not None:
                # a frame that will not be handed out needs decoding only if others refer to it
                rank = self._ranks.get(int(packet.pts))
                skip = rank is not None and rank % self.stride != 0
                self._stream.codec_context.skip_frame = "NONREF" if skip else "DEFAULT"
            try:
                self._pending.extend(packet.decode())  # the empty packet at the end flushes the decoder
                self._bad_in_row = 0
            except (ae.InvalidDataError, ae.UndefinedError, ValueError) as exc:
                self.bad_packets += 1
                self._bad_in_row += 1
                if self._bad_in_row >= MAX_BAD_PACKETS:
                    raise self._error(exc, opening=False, started=started) from None
            except Exception as exc:
                raise self._error(exc, opening=False, started=started) from None
        return self._pending.popleft()

    def read(self) -> SourceFrame | None:
        if self._packets is None:
            raise SourceError(f"{redact_url(self.url)} is not open", code="source_ended")
        while True:
            frame = self._next_frame()
            if frame is None:
                if self._ranks is not None:  # frames skipped at the end count as read
                    self._decoded = max(self._decoded, len(self._ranks))
                if self.live:
                    raise SourceError(f"the stream {redact_url(self.url)} ended", code="source_ended")
                return None
            wall_ts = time.monotonic()
            index = self._decoded
            if self._ranks is not None and frame.pts is not None:
                index = max(index, self._ranks.get(int(frame.pts), index))  # after frames skipped undecoded
            self._decoded = index + 1
            if index % self.stride:
                continue
            self._check_pixels(int(frame.width), int(frame.height))
            pts = float(frame.time) if frame.time is not None else None
            # converted to RGB only if someone takes it: a live reader drops most frames unconverted
            return SourceFrame(index, wall_ts, pts, convert=functools.partial(frame.to_ndarray, format="rgb24"))

    def close(self) -> None:
        """Close the container; call it from the thread that reads (idempotent)."""
        container, self._container = self._container, None
        self._packets = None
        self._stream = None
        self._pending.clear()
        if container is not None:
            with contextlib.suppress(Exception):  # closing a broken connection may fail; nothing is left
                container.close()

    def __enter__(self) -> AvSource:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
