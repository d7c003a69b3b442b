"""The base of every error facegate raises on purpose; each layer subclasses it."""

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


class ConfigError(FacegateError):
    """A setting has a value facegate cannot use."""

    code = "bad_config"


class EmbeddingError(FacegateError):
    """An embedding has the wrong shape, NaN or infinity, or zero length."""

    code = "bad_embedding"
