"""``facegate serve``, ``config``, ``keys`` and ``db``: running and administering the service."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from facegate.cli.common import DbOpt, ThresholdOpt, app, failures, runtime, settings


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to bind (default 127.0.0.1; $FACEGATE_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 8000; $FACEGATE_PORT).")] = None,
    db: DbOpt = None,
    auth: Annotated[
        str | None, typer.Option(help="auto (keys required beyond loopback), required or off; $FACEGATE_AUTH.")
    ] = None,
    cors: Annotated[str | None, typer.Option(help="Allowed CORS origins, comma-separated (default: none).")] = None,
    threshold: ThresholdOpt = None,
) -> None:
    """Run the REST and WebSocket service and the web UI (OpenAPI docs at /docs)."""
    import uvicorn

    from facegate.api.app import create_app
    from facegate.api.server import uvicorn_config

    with failures():
        effective = settings(
            host=host,
            port=port,
            database_url=db,
            auth=auth,
            cors_origins=tuple(o.strip() for o in cors.split(",") if o.strip()) if cors else None,
            match_threshold=threshold,
        )
    server = effective.server
    typer.echo(f"facegate {server.host}:{server.port}: web UI at http://{server.host}:{server.port}/, docs at /docs")
    with failures():
        config = uvicorn_config(create_app(effective), effective)
    uvicorn.Server(config).run()


@app.command("config")
def config_cmd(as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False) -> None:
    """Print the effective settings and where each value came from (secrets masked), then the
    onnxruntime providers the embedder runs on (text output only: it loads the embedder)."""
    with failures():
        effective = settings()
        items = effective.items()
    if as_json:
        typer.echo(json.dumps({key: {"value": value, "source": source} for key, value, source in items}, indent=2))
        return
    width = max(len(key) for key, _, _ in items)
    for key, value, source in items:
        shown = json.dumps(list(value) if isinstance(value, tuple) else value)
        typer.echo(f"{key:{width}s} = {shown:30s} # {source}")
    from facegate.service.runtime import execution_providers

    with failures():
        providers = execution_providers(effective)
    typer.echo(f"# the embedder runs on: {', '.join(providers) or 'the CPU (dlib)'}")


keys_app = typer.Typer(help="API keys of the service.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Argument(help="What the key is for.")],
    scope: Annotated[list[str] | None, typer.Option("--scope", help="admin and/or recognize (repeatable).")] = None,
    collection: Annotated[
        list[str] | None, typer.Option("--collection", help="Limit the key to this collection (repeatable).")
    ] = None,
    db: DbOpt = None,
) -> None:
    """Create an API key; its secret is printed once."""
    with runtime(database_url=db) as rt:
        created = rt.keys.create(name, scope or ["recognize"], collection or ())
    key = created.key
    limited = f"  collections={','.join(key.collections)}" if key.collections else ""
    typer.echo(f"{key.id}  {key.name}  scopes={','.join(key.scopes)}{limited}")
    typer.echo(created.secret)


@keys_app.command("list")
def keys_list(db: DbOpt = None) -> None:
    """List API keys (never their secrets)."""
    with runtime(database_url=db) as rt:
        keys = rt.keys.list()
    for key in keys:
        state = "revoked" if key.revoked_at else "active"
        typer.echo(f"{key.id}  {key.name}  scopes={','.join(key.scopes)}  {state}")


@keys_app.command("revoke")
def keys_revoke(key_id: Annotated[str, typer.Argument()], db: DbOpt = None) -> None:
    """Revoke an API key; it stops working at once."""
    with runtime(database_url=db) as rt:
        key = rt.keys.revoke(key_id)
    typer.echo(f"revoked {key.id} ({key.name})")


db_app = typer.Typer(help="The database: migrations.", no_args_is_help=True)
app.add_typer(db_app, name="db")


@db_app.command("upgrade")
def db_upgrade(
    url: Annotated[str | None, typer.Option(help="Database URL (default: the store.database_url setting).")] = None,
) -> None:
    """Apply the schema migrations to the database (safe to run again)."""
    with runtime(database_url=url) as rt:
        revision, where = rt.database()
    typer.echo(f"database at revision {revision}: {where}")
