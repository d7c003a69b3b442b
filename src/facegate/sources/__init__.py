"""Frames in: RTSP streams, video files, HTTP MJPEG and USB cameras; no recognition, no storage.

May import only ``facegate.core``, ``facegate.vision.image`` and ``facegate.vision.errors``.
PyAV (``av``) is imported only when an RTSP, file or USB source is opened.
"""

from __future__ import annotations

from facegate.sources.base import (
    DEFAULT_MAX_PIXELS,
    SOURCE_ERROR_CODES,
    Backoff,
    FrameSource,
    SourceError,
    SourceFrame,
    SourceInfo,
)
from facegate.sources.ffmpeg import AvSource
from facegate.sources.mjpeg import MjpegSource
from facegate.sources.reader import LatestFrameReader, ReaderStats
from facegate.sources.registry import open_source, redact_url, validate_camera_url
from facegate.sources.usb import UsbSource

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "SOURCE_ERROR_CODES",
    "AvSource",
    "Backoff",
    "FrameSource",
    "LatestFrameReader",
    "MjpegSource",
    "ReaderStats",
    "SourceError",
    "SourceFrame",
    "SourceInfo",
    "UsbSource",
    "open_source",
    "redact_url",
    "validate_camera_url",
]
