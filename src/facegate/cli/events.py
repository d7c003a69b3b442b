"""``facegate events tail|export``: the event log from the command line."""

from __future__ import annotations

import datetime as dt
import json
import sys
import time
from typing import Annotated

import typer

from facegate.cli.common import DbOpt, app, runtime

events_app = typer.Typer(help="The event log: recognitions, unknowns, departures, camera state.", no_args_is_help=True)
app.add_typer(events_app, name="events")

KindOpt = Annotated[str | None, typer.Option("--kind", help="recognized, unknown, left, camera_down, camera_up.")]
SourceOpt = Annotated[str | None, typer.Option("--source", help="camera:<id>")]


def _line(e: dict) -> str:
    when = dt.datetime.fromtimestamp(e["ts"]).strftime("%Y-%m-%d %H:%M:%S")
    who = e["name"] or ("unknown" if e["kind"] == "unknown" else "")
    confidence = f" {e['confidence']:.2f}" if e["confidence"] is not None else ""
    detail = f" {e['detail']}" if e["detail"] else ""
    return f"{when}  {e['kind']:<12} {e['source']:<24} {who}{confidence}{detail}"


@events_app.command("tail")
def tail(
    kind: KindOpt = None,
    source: SourceOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
    last: Annotated[int, typer.Option("--last", help="Show this many past events first.")] = 10,
    db: DbOpt = None,
) -> None:
    """Print events as they are logged (by every process on this database), until Ctrl-C."""
    from facegate.store.records import EventQuery

    with runtime(database_url=db) as rt:
        log = rt.events.log
        after = log.cursor_before_last(last, source, kind)
        try:
            while True:
                for e in log.query(EventQuery(source=source, kind=kind, after=after, limit=500)):
                    typer.echo(json.dumps(e) if as_json else _line(e))
                    after = e["id"]
                sys.stdout.flush()
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass


@events_app.command("export")
def export(
    start: Annotated[str | None, typer.Option("--from", help="YYYY-MM-DD (local), included.")] = None,
    end: Annotated[str | None, typer.Option("--to", help="YYYY-MM-DD (local), included.")] = None,
    kind: KindOpt = None,
    source: SourceOpt = None,
    db: DbOpt = None,
) -> None:
    """Write the events of a date range as CSV to standard output (streamed)."""
    from facegate.service.attendance import local_day_start
    from facegate.store.records import EventQuery

    since = local_day_start(dt.date.fromisoformat(start)) if start else None
    until = local_day_start(dt.date.fromisoformat(end) + dt.timedelta(days=1)) if end else None
    with runtime(database_url=db) as rt:
        for chunk in rt.events.csv(EventQuery(since=since, until=until, kind=kind, source=source)):
            sys.stdout.write(chunk)
