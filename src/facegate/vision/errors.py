"""Typed errors raised by the vision layer; each carries a stable machine-readable code."""

from __future__ import annotations


class FacegateError(Exception):
    """Base of every error facegate raises on purpose; ``code`` is stable and machine-readable."""

    code: str = "facegate_error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        if code is not None:
            self.code = code

    @property
    def message(self) -> str:
        """The human-readable explanation."""
        return str(self.args[0]) if self.args else ""


class ImageError(FacegateError):
    """The input is not an image facegate accepts (see ``code`` for why)."""

    code = "image_invalid"


class ModelUnavailableError(FacegateError):
    """A model file or runtime is missing; the message names the package to install."""

    code = "model_unavailable"


class ModelFormatError(FacegateError):
    """A model file exists but does not have the expected format."""

    code = "model_format"
