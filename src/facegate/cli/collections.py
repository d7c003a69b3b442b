"""``facegate collections list|create|rename|delete``: isolated galleries."""

from __future__ import annotations

from typing import Annotated

import typer

from facegate.cli.common import DbOpt, app, runtime

collections_app = typer.Typer(help="Collections: isolated galleries of people.", no_args_is_help=True)
app.add_typer(collections_app, name="collections")

Name = Annotated[str, typer.Argument(help="The collection's name.")]


@collections_app.command("list")
def list_collections(db: DbOpt = None) -> None:
    """List the collections."""
    with runtime(database_url=db) as rt:
        names = rt.people.collections()
    for name in names:
        typer.echo(name)


@collections_app.command("create")
def create(name: Name, db: DbOpt = None) -> None:
    """Create an empty collection."""
    with runtime(database_url=db) as rt:
        created = rt.people.create_collection(name)
    typer.echo(f"created collection {created!r}")


@collections_app.command("rename")
def rename(name: Name, new_name: Annotated[str, typer.Argument(help="Its new name.")], db: DbOpt = None) -> None:
    """Give a collection a new name (``default`` keeps its name)."""
    with runtime(database_url=db) as rt:
        renamed = rt.people.rename_collection(name, new_name)
    typer.echo(f"renamed collection {name!r} to {renamed!r}")


@collections_app.command("delete")
def delete(
    name: Name,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    db: DbOpt = None,
) -> None:
    """Erase a collection with everyone in it (asks first, unless --yes)."""
    with runtime(database_url=db) as rt:
        rt.people.get_collection(name)
        if not yes and not typer.confirm(f"Erase collection {name!r} with everyone in it?", default=False):
            typer.echo("nothing deleted")
            raise typer.Exit(code=1)
        removed = rt.people.delete_collection(name)
    typer.echo(f"deleted collection {name!r} ({removed} people)")
