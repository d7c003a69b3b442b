"""``facegate enroll`` and ``facegate import``: people from photos."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from facegate.cli.common import ChipsOpt, CollectionOpt, DbOpt, DetectorOpt, app, fail, progress_bar, runtime, warn


@app.command()
def enroll(
    name: Annotated[str, typer.Argument(help="The person's display name.")],
    images: Annotated[list[Path], typer.Argument(help="Photos of this person (largest face is used).")],
    db: DbOpt = None,
    collection: CollectionOpt = "default",
    chips: ChipsOpt = None,
    detector: DetectorOpt = None,
) -> None:
    """Enrol NAME from one or more photos; adds templates if NAME exists already."""
    with runtime(database_url=db, store_chips=chips, detector=detector) as rt:
        with progress_bar(f"enrolling {name}", len(images)) as report:
            found = []
            for i, path in enumerate(images, 1):
                found += rt.enrolment.faces([(str(path), path)])
                report(i, len(images))
        for e in found:
            if e.face is None:
                warn(f"skipped {e.source}: {e.error.code}")
            elif e.low_quality:
                q = e.face.quality
                warn(f"warning: {e.source}: low face quality {q.score:.2f} ({', '.join(q.reasons)})")
        if all(e.face is None for e in found):
            fail("no usable face in any image; nothing enrolled", code=1)
        enrolled = rt.enrolment.enrol(name, found, collection)
    skipped = sum(e.face is None for e in enrolled.files)  # no face, or an image this person already has
    typer.echo(f"enrolled {name}: {enrolled.added} template(s) added ({skipped} image(s) skipped)")
    closest = enrolled.closest
    if closest is None:
        typer.echo(f"closest other person: none (nobody else in {collection!r} has templates)")
    else:
        typer.echo(
            f"closest other person: {closest.name} (similarity {closest.similarity:.3f}; "
            f"the same person from {enrolled.threshold:.3f})"
        )
    for w in enrolled.warnings:
        warn(f"warning [{w.code}]: {w.detail}")


@app.command(name="import")
def import_dir(
    directory: Annotated[Path, typer.Argument(help="A folder with one sub-folder of photos per person.")],
    db: DbOpt = None,
    collection: CollectionOpt = "default",
    chips: ChipsOpt = None,
    detector: DetectorOpt = None,
) -> None:
    """Enrol everyone in DIRECTORY: each sub-folder's name is a person's name.

    Each person is written in one transaction, and photos already stored for that person
    are skipped, so an interrupted import can simply be run again.
    """
    with runtime(database_url=db, store_chips=chips, detector=detector) as rt, progress_bar("importing") as report:
        done = rt.enrolment.import_folder(directory, collection, report)
    typer.echo(
        f"imported {done.people_created + done.people_updated} people, {done.templates_added} templates, "
        f"{done.skipped} image(s) skipped, {done.already} already imported"
    )
    for w in done.warnings:
        warn(f"warning [{w.code}]: {w.detail}")
