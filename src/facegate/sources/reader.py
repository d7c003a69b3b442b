"""Keep only the newest frame of a live source, on a thread of its own, reconnecting as needed.

One daemon thread per source opens it, reads frames and overwrites a one-slot holder under a
Condition; the consumer ``take()``s whatever is newest, so a slow consumer never sees stale
frames (``dropped`` counts frames overwritten before anyone took them). On any error the
thread closes the source ITSELF (closing a PyAV container from another thread while it is
inside ``decode()`` segfaults), reports ``down`` with the error's code, waits the backoff
(``stop()`` interrupts the wait) and reconnects. ``stop()`` only sets a flag and joins: a
read that hangs ends through the source's own read timeout.

States reported to ``on_state(state, code)``: ``connecting``, ``live``, ``down`` (with a code:
a :class:`SourceError` code, ``source_stalled`` from the watchdog, or ``source_failed`` for
an unexpected exception), ``ended`` (a file reached its end) and ``stopped``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from facegate.sources.base import Backoff, FrameSource, SourceError, SourceFrame, SourceInfo

log = logging.getLogger(__name__)

StateCallback = Callable[[str, str | None], None]

# an error that no reconnect can fix: the reader gives up
FATAL_CODES = frozenset({"invalid_camera_url"})


@dataclass(frozen=True)
class ReaderStats:
    """A snapshot of a reader. ``last_error`` is the code of the latest failure (kept after a
    recovery), ``last_error_message`` its redacted message; ``input_fps`` is measured over the
    last ``fps_window_s`` seconds; ``last_frame_ts`` is a ``time.monotonic()`` value."""

    state: str
    last_error: str | None
    last_error_message: str | None
    decoded: int
    dropped: int
    taken: int
    input_fps: float | None
    last_frame_ts: float | None
    reconnects: int
    info: SourceInfo | None


class LatestFrameReader:
    """Read ``source_factory()`` on a daemon thread, keep only the newest frame, reconnect with ``backoff``."""

    def __init__(
        self,
        source_factory: Callable[[], FrameSource],
        backoff: Backoff | None = None,
        on_state: StateCallback | None = None,
        *,
        stall_s: float = 10.0,
        fps_window_s: float = 3.0,
        name: str = "facegate-source",
    ) -> None:
        if not stall_s > 0 or not fps_window_s > 0:
            raise ValueError("stall_s and fps_window_s must be positive")
        self._factory = source_factory
        self.backoff = backoff or Backoff()
        self._on_state = on_state
        self.stall_s = float(stall_s)
        self.fps_window_s = float(fps_window_s)
        self.name = name
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._slot: SourceFrame | None = None
        self._latest: SourceFrame | None = None
        self._state = "idle"
        self._state_code: str | None = None
        self._last_error: str | None = None
        self._last_message: str | None = None
        self._decoded = self._dropped = self._taken = self._reconnects = 0
        self._last_frame_ts: float | None = None
        self._arrivals: deque[float] = deque()
        self._info: SourceInfo | None = None
        self._finished = False
        self._thread: threading.Thread | None = None
        self._watchdog: threading.Thread | None = None

    # ------------------------------------------------------------------ control

    def start(self) -> LatestFrameReader:
        if self._thread is not None:
            raise RuntimeError("a LatestFrameReader starts once")
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._watchdog = threading.Thread(target=self._watch, name=f"{self.name}-watchdog", daemon=True)
        self._thread.start()
        self._watchdog.start()
        return self

    def stop(self, timeout: float | None = 30.0) -> bool:
        """Ask the thread to end and wait for it; True when it ended within ``timeout``.

        The thread notices the flag after the current frame (or the backoff wait); a read that
        hangs ends through the source's read timeout (about twice ``timeout_s`` for RTSP).
        """
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        ended = True
        for thread in (self._thread, self._watchdog):
            if thread is not None and thread is not threading.current_thread():
                thread.join(timeout)
                ended = ended and not thread.is_alive()
        return ended

    def __enter__(self) -> LatestFrameReader:
        return self.start() if self._thread is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    # ------------------------------------------------------------------ consumer side

    def take(self, timeout: float | None = None) -> SourceFrame | None:
        """The newest frame nobody has taken yet, waiting up to ``timeout`` seconds for one;
        None on timeout or once the reader has stopped."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self._slot is None:
                if self._finished or self._stop.is_set():
                    return None
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return None
                self._cond.wait(remaining)
            frame, self._slot = self._slot, None
            self._taken += 1
            return frame

    def latest(self) -> SourceFrame | None:
        """The newest frame seen (taken or not), without taking it: for snapshots."""
        with self._cond:
            return self._latest

    @property
    def state(self) -> str:
        with self._cond:
            return self._state

    def stats(self) -> ReaderStats:
        now = time.monotonic()
        with self._cond:
            self._prune(now)
            arrivals = self._arrivals
            fps = None
            if len(arrivals) >= 2 and arrivals[-1] > arrivals[0]:
                fps = (len(arrivals) - 1) / (arrivals[-1] - arrivals[0])
            return ReaderStats(
                state=self._state,
                last_error=self._last_error,
                last_error_message=self._last_message,
                decoded=self._decoded,
                dropped=self._dropped,
                taken=self._taken,
                input_fps=fps,
                last_frame_ts=self._last_frame_ts,
                reconnects=self._reconnects,
                info=self._info,
            )

    # ------------------------------------------------------------------ reader thread

    def _prune(self, now: float) -> None:
        while self._arrivals and self._arrivals[0] < now - self.fps_window_s:
            self._arrivals.popleft()

    def _put(self, frame: SourceFrame) -> bool:
        """Store the frame; True when the state was not ``live`` yet."""
        with self._cond:
            if self._slot is not None:
                self._dropped += 1
            self._slot = self._latest = frame
            self._decoded += 1
            self._last_frame_ts = frame.wall_ts
            self._arrivals.append(frame.wall_ts)
            self._prune(frame.wall_ts)
            self._cond.notify_all()
            return self._state != "live"

    def _set_state(
        self,
        state: str,
        code: str | None = None,
        message: str | None = None,
        *,
        unless: Callable[[], bool] | None = None,
    ) -> None:
        with self._cond:
            if self._stop.is_set() and state not in ("stopped", "ended"):
                return  # after stop() only the final state is reported
            if unless is not None and unless():
                return  # checked under the lock: the state changed meanwhile
            if (state, code) == (self._state, self._state_code):
                return
            self._state, self._state_code = state, code
            if code is not None:
                self._last_error, self._last_message = code, message
            self._cond.notify_all()
        if code is not None:
            log.info("source %s %s: %s (%s)", self.name, state, code, message)
        if self._on_state is not None:
            try:
                self._on_state(state, code)
            except Exception:  # a broken callback must not stop the reader
                log.exception("the on_state callback of %s failed", self.name)

    def _run(self) -> None:
        attempt = 0
        final = "stopped"
        try:
            while not self._stop.is_set():
                code, message, live_since, ended = self._session()
                if self._stop.is_set():
                    break
                if ended:
                    final = "ended"
                    break
                if code in FATAL_CODES:
                    self._set_state("down", code, message)
                    final = "down"
                    break
                if live_since is not None and self.backoff.healthy(time.monotonic() - live_since):
                    attempt = 0
                delay = self.backoff.delay(attempt)
                attempt += 1
                self._set_state("down", code, message)
                if self._stop.wait(delay):
                    break
                with self._cond:
                    self._reconnects += 1
        finally:
            with self._cond:
                self._finished = True
                self._cond.notify_all()
            if final != "down":
                self._stop.set()  # ends the watchdog
                self._set_state(final)

    def _session(self) -> tuple[str, str, float | None, bool]:
        """Open the source, read until it fails or stop() is called, close it (here, on this
        thread); returns the error code and message, when it went live, and whether a file ended."""
        self._set_state("connecting")
        source: FrameSource | None = None
        live_since: float | None = None
        code, message, ended = "", "", False
        try:
            source = self._factory()
            info = source.open()
            with self._cond:
                self._info = info
            while not self._stop.is_set():
                frame = source.read()
                if frame is None:
                    if info.live:
                        raise SourceError("the live stream ended", code="source_ended")
                    ended = True
                    break
                if live_since is None:
                    live_since = frame.wall_ts
                if self._put(frame):
                    self._set_state("live")
        except SourceError as exc:
            code, message = exc.code, exc.message
        except Exception as exc:  # a source let something through: keep its type only (messages may hold URLs)
            code, message = "source_failed", f"{type(exc).__name__} while reading the source"
            log.warning("source %s failed with %s", self.name, type(exc).__name__)
        finally:
            if source is not None:
                try:
                    source.close()
                except Exception:
                    log.warning("closing the source of %s failed", self.name)
        return code, message, live_since, ended

    def _watch(self) -> None:
        """Report ``down``/``source_stalled`` when a live source sends nothing for ``stall_s``;
        the source's read timeout then ends the read and the reader reconnects."""
        period = min(1.0, self.stall_s / 4)

        def flowing() -> bool:  # called with the lock held
            return (
                self._state != "live"
                or self._last_frame_ts is None
                or time.monotonic() - self._last_frame_ts <= self.stall_s
            )

        while not self._stop.wait(period):
            with self._cond:
                if self._finished:
                    return
                stalled = not flowing()
            if stalled:
                self._set_state("down", "source_stalled", f"no frame for {self.stall_s:g} s", unless=flowing)
