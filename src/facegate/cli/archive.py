"""``facegate export``, ``import-archive`` and ``reembed``: moving and recomputing galleries."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from facegate.cli.common import CollectionOpt, DbOpt, app, progress_bar, runtime


@app.command("export")
def export_cmd(
    archive: Annotated[Path, typer.Argument(help="The ZIP archive to write.")],
    db: DbOpt = None,
    collection: CollectionOpt = "default",
) -> None:
    """Export a collection (people, templates, chips) to a portable archive."""
    with runtime(database_url=db) as rt, progress_bar("exporting") as report:
        count = rt.archives.export(archive, collection, report)
    typer.echo(f"exported {count} templates of collection {collection!r} -> {archive}")


@app.command("import-archive")
def import_archive_cmd(
    archive: Annotated[Path, typer.Argument(help="An archive written by `facegate export`.")],
    db: DbOpt = None,
    collection: CollectionOpt = "default",
    replace: Annotated[bool, typer.Option("--replace", help="Empty the collection first (default: merge).")] = False,
) -> None:
    """Import an exported archive into a collection, all or nothing."""
    with runtime(database_url=db) as rt, progress_bar("importing") as report:
        people, templates = rt.archives.import_(archive, collection, replace, report)
    typer.echo(f"imported {people} people and {templates} templates into collection {collection!r}")


@app.command()
def reembed(db: DbOpt = None, collection: CollectionOpt = "default") -> None:
    """Recompute templates of other embedding models with this engine, from their stored chips."""
    with runtime(database_url=db) as rt, progress_bar("re-embedding") as report:
        added = rt.reembed(collection, report)
        model_id = rt.model_id
    typer.echo(f"added {added} {model_id} templates in collection {collection!r}")
