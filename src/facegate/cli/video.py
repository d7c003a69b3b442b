"""``facegate video FILE``: who appears when in a video file, with JSON, CSV and an annotated MP4."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from facegate.cli.common import CollectionOpt, DbOpt, app, runtime


@app.command()
def video(
    file: Annotated[Path, typer.Argument(help="A video file (MP4, MKV, AVI, MOV… anything FFmpeg reads).")],
    collection: CollectionOpt = "default",
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the timeline as JSON here.")] = None,
    csv_out: Annotated[Path | None, typer.Option("--csv", help="Write one row per segment here.")] = None,
    draw: Annotated[Path | None, typer.Option("--draw", help="Write an MP4 with boxes and names here.")] = None,
    fps: Annotated[float, typer.Option("--fps", help="Frames analysed per second of video.")] = 10.0,
    every_frame: Annotated[bool, typer.Option("--every-frame", help="Analyse every frame.")] = False,
    db: DbOpt = None,
) -> None:
    """Find who appears when in FILE: a timeline per person, a best frame, unknown faces grouped."""
    from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeRemainingColumn

    from facegate.service.video import VideoAnalysis, VideoOptions, timeline_csv

    with runtime(database_url=db) as rt:
        rt.people.get_collection(collection)
        rt.warmup()
        analysis = VideoAnalysis(
            rt.processor,
            VideoOptions(collection=collection, analysis_fps=fps, every_frame=every_frame),
            max_pixels=rt.settings.limits.max_image_pixels,
        )
        columns = (TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(), TimeRemainingColumn())
        with Progress(*columns, transient=True) as bar:
            task = bar.add_task(file.name, total=None)
            result = analysis.run(
                str(file),
                progress=lambda done, total: bar.update(task, completed=done, total=total),
                draw=str(draw) if draw else None,
            )
    data = result.to_dict()
    if json_out:
        json_out.write_text(json.dumps(data, indent=2))
    if csv_out:
        csv_out.write_text(timeline_csv(result))
    v = result.video
    speed = v.duration_s / result.processing_s if result.processing_s else 0.0
    typer.echo(
        f"{file.name}: {v.duration_s:.1f} s, {v.width}x{v.height} at {v.fps:.1f} fps; "
        f"{v.analysed} frames analysed in {result.processing_s:.1f} s ({speed:.1f}x real time)"
    )
    if v.truncated is not None:
        typer.echo(
            f"TRUNCATED at {v.truncated.at_s:.2f} s of {v.duration_s:.2f} s ({v.truncated.code}): "
            f"{v.truncated.detail}; the timeline covers 0-{v.truncated.at_s:.2f} s"
        )
    for group in (result.people, result.unknown):
        for a in group:
            spans = ", ".join(f"{s.start_s:.1f}-{s.end_s:.1f}" for s in a.segments[:6])
            more = f" (+{len(a.segments) - 6} more)" if len(a.segments) > 6 else ""
            typer.echo(f"{a.label:24s} {a.seconds:6.1f} s ({a.share:.0%})  {spans}{more}")
    if not result.people and not result.unknown:
        typer.echo("nobody appears")
