"""``facegate people`` and ``facegate delete``: who is enrolled."""

from __future__ import annotations

from typing import Annotated

import typer

from facegate.cli.common import CollectionOpt, DbOpt, app, runtime


@app.command()
def people(db: DbOpt = None, collection: CollectionOpt = "default") -> None:
    """List enrolled people and their template counts."""
    with runtime(database_url=db) as rt:
        everyone = rt.people.everyone(collection)
    for person, count in everyone:
        typer.echo(f"{person.id}  {person.name}  templates={count}")
    typer.echo(f"{len(everyone)} people, {sum(n for _, n in everyone)} templates")


@app.command()
def delete(name: Annotated[str, typer.Argument()], db: DbOpt = None, collection: CollectionOpt = "default") -> None:
    """Delete a person with all their templates and chips."""
    with runtime(database_url=db) as rt:
        removed = rt.people.delete(rt.people.by_name(name, collection).id, collection)
    typer.echo(f"deleted {name} ({removed} templates)")
