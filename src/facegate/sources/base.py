"""What every frame source shares: the frame and info values, the Protocol, errors, backoff.

A source turns a camera or a video file into RGB frames; it knows nothing of recognition
or storage. Every failure raises :class:`SourceError` with a stable ``code``:

========================  ============================================================
``source_unreachable``    connection refused, host unknown (DNS), network down
``source_timeout``        the source stopped answering within the timeout
``source_unauthorized``   the source wants (other) credentials (HTTP/RTSP 401 or 403)
``source_not_found``      no such stream, mount, file or device (404)
``source_ended``          a live source's stream ended or broke off
``source_decode_failed``  the data could not be decoded (or too many bad MJPEG parts)
``source_unsupported``    no video stream, a codec or content type facegate cannot read
``source_stalled``        (reported by the reader) no frame for ``stall_s`` while live
``source_failed``         (reported by the reader) a source raised something unexpected
``frame_too_large``       a frame has more pixels than the limit
``invalid_camera_url``    a URL facegate does not accept as a camera
========================  ============================================================

Messages never carry credentials: URLs in them go through :func:`facegate.core.urls.redact_url`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from facegate.core.errors import FacegateError

SOURCE_ERROR_CODES = frozenset(
    {
        "source_unreachable",
        "source_timeout",
        "source_unauthorized",
        "source_not_found",
        "source_ended",
        "source_decode_failed",
        "source_unsupported",
        "source_stalled",
        "source_failed",
        "frame_too_large",
        "invalid_camera_url",
    }
)

DEFAULT_MAX_PIXELS = 3840 * 2160  # 4K; more is refused as frame_too_large


class SourceError(FacegateError):
    """A source cannot be opened or read (see ``code`` for why); the message is safe to show."""

    code = "source_error"


class SourceFrame:
    """One decoded frame.

    ``index`` counts decoded frames from 0 since the source was opened (with a stride, the
    frames handed out are 0, k, 2k, ...). ``wall_ts`` is ``time.monotonic()`` when the frame
    arrived: RTSP timestamps are unreliable (the first is None, a joining client may start
    anywhere, a loop repeats one). ``pts`` is the stream's own time in seconds, if it has one.

    ``rgb`` (H, W, 3) uint8 is given, or made on first use by ``convert``: a live camera decodes
    25 frames a second and keeps only the newest, so frames nobody takes are never converted.
    """

    __slots__ = ("_convert", "_rgb", "index", "pts", "wall_ts")

    def __init__(
        self,
        index: int,
        wall_ts: float,
        pts: float | None,
        rgb: np.ndarray | None = None,
        *,
        convert: Callable[[], np.ndarray] | None = None,
    ) -> None:
        if (rgb is None) == (convert is None):
            raise ValueError("a SourceFrame needs its pixels or a way to convert them, not both")
        self.index, self.wall_ts, self.pts = index, wall_ts, pts
        self._rgb, self._convert = rgb, convert

    @property
    def rgb(self) -> np.ndarray:
        if self._rgb is None:
            self._rgb, self._convert = self._convert(), None
        return self._rgb

    @property
    def width(self) -> int:
        return int(self.rgb.shape[1])

    @property
    def height(self) -> int:
        return int(self.rgb.shape[0])

    def __repr__(self) -> str:
        return f"SourceFrame(index={self.index}, wall_ts={self.wall_ts:.3f}, pts={self.pts})"


@dataclass(frozen=True)
class SourceInfo:
    """What is known once a source is open (width/height None when the stream does not say yet)."""

    fps: float | None
    width: int | None
    height: int | None
    live: bool
    frames: int | None = None  # a file's frame count when the container knows it


@runtime_checkable
class FrameSource(Protocol):
    """Open once, read frames in order from ONE thread, close from that same thread.

    ``read`` returns None at the end of a file; on a live source an end raises
    ``SourceError(code="source_ended")``. ``close`` is idempotent.
    """

    def open(self) -> SourceInfo: ...

    def read(self) -> SourceFrame | None: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class Backoff:
    """Reconnect delays: ``initial_s`` doubling up to ``max_s``; the count of attempts starts
    again after a connection that stayed healthy for ``reset_after_s``."""

    initial_s: float = 1.0
    factor: float = 2.0
    max_s: float = 30.0
    reset_after_s: float = 60.0

    def __post_init__(self) -> None:
        values = (self.initial_s, self.factor, self.max_s, self.reset_after_s)
        if not all(math.isfinite(v) for v in values) or self.initial_s < 0 or self.factor < 1:
            raise ValueError("Backoff needs finite values, initial_s >= 0 and factor >= 1")
        if self.max_s < self.initial_s:
            raise ValueError("Backoff.max_s must be at least initial_s")

    def delay(self, attempt: int) -> float:
        """Seconds to wait before reconnect attempt ``attempt`` (0 for the first)."""
        attempt = max(0, attempt)
        if attempt >= 64:  # factor ** attempt would overflow long before it matters
            return self.max_s
        return min(self.max_s, self.initial_s * self.factor**attempt)

    def healthy(self, live_for_s: float) -> bool:
        """Whether a connection that delivered frames for ``live_for_s`` resets the attempts."""
        return live_for_s >= self.reset_after_s
