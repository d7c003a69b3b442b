"""Typed errors raised by the vision layer; each carries a stable machine-readable code."""

from __future__ import annotations

from facegate.core.errors import FacegateError

__all__ = ["FacegateError", "ImageError", "ModelFormatError", "ModelUnavailableError"]


class ImageError(FacegateError):
    """The input is not an image facegate accepts (see ``code`` for why)."""

    code = "image_invalid"


class ModelUnavailableError(FacegateError):
    """A model file or runtime is missing; the message names the package to install."""

    code = "model_unavailable"


class ModelFormatError(FacegateError):
    """A model file exists but does not have the expected format."""

    code = "model_format"
