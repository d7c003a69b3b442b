"""USB (V4L2) cameras: ``usb:N`` or ``/dev/videoN`` through PyAV's ``v4l2`` demuxer.

Kept thin on purpose: it is :class:`facegate.sources.ffmpeg.AvSource` with ``format="v4l2"``
on a device path. A missing device raises ``source_not_found``, a device the process may
not open ``source_unauthorized``.
"""

from __future__ import annotations

import re

from facegate.sources.base import DEFAULT_MAX_PIXELS, SourceError, SourceFrame, SourceInfo
from facegate.sources.ffmpeg import AvSource

_USB = re.compile(r"usb:(\d{1,3})")
_DEVICE = re.compile(r"/dev/video(\d{1,3})")
MAX_DEVICE_INDEX = 255


def usb_device_path(url: str) -> str:
    """``usb:N`` -> ``/dev/videoN``; ``/dev/videoN`` as is; anything else is ``invalid_camera_url``."""
    text = url.strip()
    match = _USB.fullmatch(text) or _DEVICE.fullmatch(text)
    if match is None or int(match.group(1)) > MAX_DEVICE_INDEX:
        raise SourceError(
            f"not a USB camera: {text[:80]!r} (use usb:N or /dev/videoN, N from 0 to {MAX_DEVICE_INDEX})",
            code="invalid_camera_url",
        )
    return f"/dev/video{int(match.group(1))}"


class UsbSource:
    """A V4L2 capture device (a live source). ``options`` go to the v4l2 demuxer, e.g.
    ``{"video_size": "1280x720", "framerate": "30", "input_format": "mjpeg"}``."""

    def __init__(
        self,
        url: str,
        *,
        timeout_s: float = 5.0,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        options: dict[str, str] | None = None,
    ) -> None:
        self.url = url
        self.device = usb_device_path(url)
        self._av = AvSource(
            self.device, live=True, timeout_s=timeout_s, max_pixels=max_pixels, format="v4l2", options=options
        )

    def __repr__(self) -> str:
        return f"UsbSource({self.device!r})"

    def open(self) -> SourceInfo:
        return self._av.open()

    def read(self) -> SourceFrame | None:
        return self._av.read()

    def close(self) -> None:
        self._av.close()
