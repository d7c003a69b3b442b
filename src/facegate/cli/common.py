"""The typer app, the options every command shares, and how a command gets its runtime."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from facegate.core.errors import FacegateError

if TYPE_CHECKING:
    from facegate.config import Settings
    from facegate.service.runtime import Runtime

app = typer.Typer(
    help="facegate: self-hosted face recognition (CPU, offline).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

DbOpt = Annotated[
    str | None,
    typer.Option("--db", help="Database URL (default: the store.database_url setting, else SQLite in the data dir)."),
]
CollectionOpt = Annotated[str, typer.Option("--collection", help="The collection (an isolated gallery).")]
ChipsOpt = Annotated[
    bool | None, typer.Option("--chips/--no-chips", help="Store each face's aligned chip (JPEG); default: on.")
]
ThresholdOpt = Annotated[
    float | None,
    typer.Option(help="Match threshold, cosine similarity (default: the match_threshold setting, else calibrated)."),
]
DetectorOpt = Annotated[
    str | None, typer.Option("--detector", help="blazeface (fast, default), hog, or cnn (slow, accurate).")
]


@dataclass
class _Global:
    config: Path | None = None
    embedder: str | None = None
    flip: bool | None = None


_global = _Global()


@app.callback()
def _options(
    config: Annotated[
        Path | None, typer.Option("--config", help="A TOML settings file (default: $FACEGATE_CONFIG).")
    ] = None,
    embedder: Annotated[str | None, typer.Option(help="onnx (fast, default) or dlib (dlib's own, slow).")] = None,
    flip: Annotated[
        bool | None, typer.Option("--flip/--no-flip", help="Average each descriptor with its mirror image's.")
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(message)s")
    _global.config, _global.embedder, _global.flip = config, embedder, flip


def settings(**flags: Any) -> Settings:
    """The effective settings: defaults < file < variables < the global and this command's flags."""
    from facegate.config import load_settings

    return load_settings(_global.config, flags={"embedder": _global.embedder, "flip": _global.flip, **flags})


@contextlib.contextmanager
def runtime(**flags: Any) -> Iterator[Runtime]:
    """A runtime for one command (database migrated; models load on first use); errors end the command."""
    from facegate.service.runtime import Runtime

    with failures():
        built = Runtime.build(settings(**flags))
        try:
            yield built
        finally:
            built.close()


@contextlib.contextmanager
def failures() -> Iterator[None]:
    """Turn a facegate error into its code and message on stderr, and exit status 2."""
    try:
        yield
    except FacegateError as exc:
        fail(f"error [{exc.code}]: {exc.message}")


def fail(message: str, code: int = 2) -> NoReturn:
    typer.secho(message, err=True, fg=typer.colors.RED)
    raise typer.Exit(code=code)


def warn(message: str) -> None:
    typer.secho(message, err=True, fg=typer.colors.YELLOW)


@contextlib.contextmanager
def progress_bar(label: str, total: int | None = None):
    """A transient progress bar; yields the ``(done, total)`` callback the use cases take."""
    from rich.progress import Progress

    with Progress(transient=True) as bar:
        task = bar.add_task(label, total=total)
        yield lambda done, total: bar.update(task, completed=done, total=total)
