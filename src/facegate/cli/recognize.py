"""``facegate identify``, ``verify`` and ``detect``: recognition from the command line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from facegate.cli.common import CollectionOpt, DbOpt, DetectorOpt, ThresholdOpt, app, runtime


@app.command()
def identify(
    image: Annotated[Path, typer.Argument(help="A photo to recognise every face in.")],
    db: DbOpt = None,
    collection: CollectionOpt = "default",
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    top_k: Annotated[int, typer.Option(help="Also list the best K candidates per face.")] = 0,
    threshold: ThresholdOpt = None,
    detector: DetectorOpt = None,
) -> None:
    """Find every face in IMAGE and name it, or call it unknown."""
    from facegate.service.pipeline import FrameOptions

    with runtime(database_url=db, detector=detector) as rt:
        result = rt.recognition.recognize(image, FrameOptions(collection, threshold, None, top_k))
    rows = [
        {"box": f.face.box.to_list(), "det_score": round(f.face.det_score, 3), "quality": f.face.quality.to_dict()}
        | f.decision.to_dict()
        for f in result.faces
    ]
    if as_json:
        typer.echo(json.dumps({"image": str(image), "threshold": result.threshold, "faces": rows}, indent=2))
        return
    if not rows:
        typer.echo("no face found")
    for row in rows:
        who = row["name"] if row["status"] == "match" else f"unknown ({row['reason']})"
        typer.echo(f"{who:24s} confidence={row['confidence']:.2f} similarity={row['similarity']:.3f} box={row['box']}")


@app.command()
def verify(
    image_a: Annotated[Path, typer.Argument()],
    image_b: Annotated[Path, typer.Argument()],
    threshold: ThresholdOpt = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    db: DbOpt = None,
) -> None:
    """Say whether the largest faces of two photos are the same person."""
    with runtime(database_url=db) as rt:
        v = rt.recognition.verify(image_a, image_b, threshold=threshold, labels=(str(image_a), str(image_b)))
    result = v.verification
    out = {
        "same": result.same,
        "similarity": round(result.similarity, 4),
        "confidence": round(result.confidence, 4),
        "threshold": result.threshold,
    }
    if as_json:
        typer.echo(json.dumps(out))
    else:
        verdict = "same person" if out["same"] else "different people"
        typer.echo(f"{verdict} (similarity={out['similarity']:.3f}, confidence={out['confidence']:.2f})")


@app.command()
def detect(
    image: Annotated[Path, typer.Argument()],
    draw: Annotated[Path | None, typer.Option("--draw", help="Write a copy with boxes and landmarks.")] = None,
    detector: DetectorOpt = None,
    thorough: Annotated[bool, typer.Option(help="Also search large images tile by tile.")] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    db: DbOpt = None,
) -> None:
    """List the faces in IMAGE with their quality; optionally draw them."""
    with runtime(database_url=db, detector=detector) as rt:
        found = rt.recognition.detect(image, thorough=thorough, keep_pixels=draw is not None)
    rows = [
        {"box": f.box.to_list(), "det_score": round(f.det_score, 3), "quality": f.quality.to_dict()}
        for f in found.faces
    ]
    if as_json:
        typer.echo(json.dumps({"image": str(image), "faces": rows}, indent=2))
    else:
        typer.echo(f"{len(rows)} face(s)")
        for row in rows:
            q = row["quality"]
            typer.echo(f"box={row['box']} score={row['det_score']} quality={q['score']} {' '.join(q['reasons'])}")
    if draw is not None:
        from facegate.vision.draw import draw_faces

        draw_faces(found.pixels, found.faces).save(draw)
        typer.echo(f"drawn -> {draw}")
