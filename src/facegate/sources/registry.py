"""Camera URLs: which are accepted, how they are shown (redacted), which source reads them.

==================================  =================================================
``rtsp://`` ``rtsps://``            :class:`~facegate.sources.ffmpeg.AvSource` (live)
``http://`` ``https://``            :class:`~facegate.sources.mjpeg.MjpegSource`
``usb:N``, ``/dev/videoN``          :class:`~facegate.sources.usb.UsbSource`
a file path (``allow_files`` only)  :class:`~facegate.sources.ffmpeg.AvSource` (every frame)
==================================  =================================================
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from urllib.parse import unquote, urlsplit

from facegate.core.urls import redact_url as _redact
from facegate.sources.base import DEFAULT_MAX_PIXELS, FrameSource, SourceError
from facegate.sources.ffmpeg import AvSource
from facegate.sources.mjpeg import MjpegSource
from facegate.sources.usb import UsbSource, usb_device_path
from facegate.vision.image import DEFAULT_LIMITS, ImageLimits

__all__ = ["MAX_URL_LENGTH", "open_source", "redact_url", "validate_camera_url"]

MAX_URL_LENGTH = 2000
NETWORK_SCHEMES = ("rtsp", "rtsps", "http", "https")
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*):")
_ACCEPTED = "rtsp://, rtsps://, http://, https://, usb:N or /dev/videoN"


def redact_url(url: str) -> str:
    """``url`` with its password (and secret query parameters) replaced by ``***``."""
    return _redact(url)


def _invalid(why: str) -> SourceError:
    return SourceError(why, code="invalid_camera_url")


def validate_camera_url(url: str, allow_files: bool = False) -> str:
    """The URL as it will be opened (surrounding blanks removed; ``file://`` made a path), or
    ``SourceError(code="invalid_camera_url")`` saying precisely what is wrong.

    Accepted: rtsp, rtsps, http and https URLs with a host; ``usb:N``; ``/dev/videoN``; and
    only when ``allow_files`` a path to a video file (or a ``file://`` URL).
    """
    if not isinstance(url, str):
        raise _invalid("a camera URL must be a string")
    text = url.strip()
    if not text:
        raise _invalid("the camera URL is empty")
    if len(text) > MAX_URL_LENGTH:
        raise _invalid(f"the camera URL has more than {MAX_URL_LENGTH} characters")
    if any(ord(c) < 0x20 or ord(c) == 0x7F or c.isspace() for c in text):
        raise _invalid("the camera URL contains spaces or control characters")
    if text.startswith("usb:") or text.startswith("/dev/"):
        usb_device_path(text)  # raises for anything but usb:N and /dev/videoN
        return text
    scheme_match = _SCHEME.match(text)
    scheme = scheme_match.group(1).lower() if scheme_match else ""
    if len(scheme) == 1:  # a Windows drive letter, C:\...
        scheme = ""
    if scheme in NETWORK_SCHEMES:
        return _validate_network(text, scheme)
    if scheme == "file":
        if not allow_files:
            raise _invalid(f"file URLs are not accepted for cameras; use {_ACCEPTED}")
        parts = urlsplit(text)
        if parts.netloc not in ("", "localhost"):
            raise _invalid("a file:// URL must name a local path")
        return _validate_path(unquote(parts.path))
    if scheme:
        raise _invalid(f"unsupported scheme {scheme!r}; use {_ACCEPTED}")
    if not allow_files:
        raise _invalid(f"file paths are not accepted for cameras; use {_ACCEPTED}")
    return _validate_path(text)


def _validate_network(text: str, scheme: str) -> str:
    safe = redact_url(text)
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        raise _invalid(f"malformed URL or port in {safe}") from None
    if not text[len(scheme) + 1 :].startswith("//"):
        raise _invalid(f"{scheme} URLs need //host: {safe}")
    if not parts.hostname:
        raise _invalid(f"no host in {safe}")
    if port == 0:
        raise _invalid(f"port 0 in {safe}")
    if parts.fragment:
        raise _invalid(f"a camera URL has no #fragment: {safe}")
    return text


def _validate_path(path: str) -> str:
    if not path:
        raise _invalid("the file path is empty")
    if "\x00" in path:
        raise _invalid("the file path contains a NUL byte")
    if Path(path).is_dir():
        raise _invalid(f"{path} is a directory, not a video file")
    return path


def open_source(
    url: str,
    *,
    limits: ImageLimits = DEFAULT_LIMITS,
    timeout_s: float = 5.0,
    allow_files: bool = False,
    max_pixels: int | None = None,
    stride: int = 1,
) -> FrameSource:
    """A source for ``url`` (validated first), not yet opened.

    Frames over ``max_pixels`` (default: the smaller of ``limits.max_pixels`` and 4K) raise
    ``frame_too_large``; ``stride`` applies to files.
    """
    target = validate_camera_url(url, allow_files=allow_files)
    pixels = max_pixels if max_pixels is not None else min(limits.max_pixels, DEFAULT_MAX_PIXELS)
    scheme_match = _SCHEME.match(target)
    scheme = scheme_match.group(1).lower() if scheme_match else ""
    if scheme in ("rtsp", "rtsps"):
        return AvSource(target, live=True, timeout_s=timeout_s, max_pixels=pixels)
    if scheme in ("http", "https"):
        mjpeg_limits = limits if limits.max_pixels <= pixels else _with_pixels(limits, pixels)
        return MjpegSource(target, mjpeg_limits, timeout_s)
    if target.startswith(("usb:", "/dev/video")):
        return UsbSource(target, timeout_s=timeout_s, max_pixels=pixels)
    return AvSource(target, live=False, timeout_s=timeout_s, max_pixels=pixels, stride=stride)


def _with_pixels(limits: ImageLimits, pixels: int) -> ImageLimits:
    return replace(limits, max_pixels=pixels)
