"""Errors the store raises: a refused write or a missing row, each with a stable code."""

from __future__ import annotations

from facegate.core.errors import FacegateError


class StoreError(FacegateError):
    """A store operation was refused (unknown id, duplicate name, protected collection...)."""

    code = "store_error"
