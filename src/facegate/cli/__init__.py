"""The ``facegate`` command line: an adapter that parses, calls the service tier and renders."""

from __future__ import annotations

from facegate.cli import (  # noqa: F401  (commands register)
    admin,
    archive,
    cameras,
    collections,
    enrol,
    events,
    people,
    recognize,
    video,
)
from facegate.cli.common import app


def main() -> None:
    """Console-script entry point."""
    app()


__all__ = ["app", "main"]
