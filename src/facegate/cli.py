"""The ``facegate`` command line: enroll, import, identify, verify, detect, people."""

from __future__ import annotations

import contextlib
import json
import logging
from pathlib import Path
from typing import Annotated

import typer

from facegate.vision.errors import FacegateError

app = typer.Typer(
    help="facegate: self-hosted face recognition (CPU, offline).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp"}
LOW_QUALITY = 0.3  # enrolment warns below this face quality score

DbOpt = Annotated[
    str | None,
    typer.Option("--db", help="Database URL (default: $FACEGATE_DATABASE_URL, else SQLite in $FACEGATE_DATA_DIR)."),
]
CollectionOpt = Annotated[str, typer.Option("--collection", help="The collection (an isolated gallery).")]
ChipsOpt = Annotated[bool, typer.Option("--chips/--no-chips", help="Store each face's aligned chip (JPEG).")]
ThresholdOpt = Annotated[
    float | None,
    typer.Option(help="Match threshold, cosine similarity (default: $FACEGATE_MATCH_THRESHOLD or the calibrated one)."),
]
DetectorOpt = Annotated[str, typer.Option("--detector", help="blazeface (fast), hog, or cnn (slow, accurate).")]


class _State:
    embedder: str = "onnx"
    flip: bool = False


_state = _State()


@app.callback()
def _options(
    embedder: Annotated[str, typer.Option(help="onnx (fast) or dlib (dlib's own, slow).")] = "onnx",
    flip: Annotated[bool, typer.Option(help="Average each descriptor with its mirror image's.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(message)s")
    _state.embedder = embedder
    _state.flip = flip


def _engine(detector: str = "blazeface", thorough: bool = False):
    from facegate.vision.engine import EngineConfig, FaceEngine

    return FaceEngine(EngineConfig(detector=detector, embedder=_state.embedder, flip=_state.flip, thorough=thorough))


def _store(url: str | None):
    """The store at ``url`` (or the default database), migrated to the current schema."""
    from facegate.store.db import default_database_url, make_engine, upgrade
    from facegate.store.repository import Store

    engine = make_engine(url or default_database_url())
    upgrade(engine)
    return Store(engine)


def _search_index(store, engine, collection: str):
    """The in-memory index of a collection for the engine's embedding model."""
    from facegate.gallery.index import GalleryError

    gallery = store.load_gallery(engine.model_id, collection)
    if gallery.template_count == 0:
        others = sorted(m for m in store.template_counts(collection) if m != engine.model_id)
        if others:
            raise GalleryError(
                f"collection {collection!r} holds {', '.join(others)} templates only; this engine makes "
                f"{engine.model_id}",
                code="model_mismatch",
            )
    return gallery


def _fail(exc: FacegateError) -> typer.Exit:
    typer.secho(f"error [{exc.code}]: {exc.message}", err=True, fg=typer.colors.RED)
    return typer.Exit(code=2)


def _largest_faces(engine, images: list[Path], label: str):
    """The largest face of each image, skipping (and reporting) images without one."""
    from rich.progress import track

    found, skipped = [], []
    for path in track(images, description=label, transient=True, disable=len(images) < 3):
        try:
            faces = engine.analyze(path, max_faces=1, keep_chips=True)
        except FacegateError as exc:
            skipped.append((path, exc.code))
            continue
        if faces:
            found.append((path, faces[0]))
        else:
            skipped.append((path, "no_face"))
    return found, skipped


def _save_faces(store, engine, name: str, found, collection: str, chips: bool, person=None) -> int:
    """Add the faces to the person called ``name`` (created if new), in one transaction.

    ``person``: that person when the caller has looked them up already.
    """
    from facegate.store.repository import NewTemplate
    from facegate.vision.image import encode_jpeg

    templates = [
        NewTemplate(face.embedding, face.quality.score, str(path), encode_jpeg(face.chip) if chips else None)
        for path, face in found
    ]
    person = person or store.find_by_name(name, collection)
    if person is not None:
        return store.add_templates(person.id, templates, model_id=engine.model_id)
    store.enroll(name, templates, model_id=engine.model_id, collection=collection)
    return len(templates)


@app.command()
def enroll(
    name: Annotated[str, typer.Argument(help="The person's display name.")],
    images: Annotated[list[Path], typer.Argument(help="Photos of this person (largest face is used).")],
    db: DbOpt = None,
    collection: CollectionOpt = "default",
    chips: ChipsOpt = True,
    detector: DetectorOpt = "blazeface",
) -> None:
    """Enrol NAME from one or more photos; adds templates if NAME exists already."""
    engine = _engine(detector, thorough=True)
    try:
        store = _store(db)
        found, skipped = _largest_faces(engine, images, f"enrolling {name}")
        for image, why in skipped:
            typer.secho(f"skipped {image}: {why}", err=True, fg=typer.colors.YELLOW)
        for image, face in found:
            if face.quality.score < LOW_QUALITY:
                reasons = ", ".join(face.quality.reasons)
                typer.secho(
                    f"warning: {image}: low face quality {face.quality.score:.2f} ({reasons})",
                    err=True,
                    fg=typer.colors.YELLOW,
                )
        if not found:
            typer.secho("no usable face in any image; nothing enrolled", err=True, fg=typer.colors.RED)
            raise typer.Exit(code=1)
        count = _save_faces(store, engine, name, found, collection, chips)
    except FacegateError as exc:
        raise _fail(exc) from exc
    typer.echo(f"enrolled {name}: {count} template(s) added ({len(skipped)} image(s) skipped)")


@app.command(name="import")
def import_dir(
    directory: Annotated[Path, typer.Argument(help="A folder with one sub-folder of photos per person.")],
    db: DbOpt = None,
    collection: CollectionOpt = "default",
    chips: ChipsOpt = True,
    detector: DetectorOpt = "blazeface",
) -> None:
    """Enrol everyone in DIRECTORY: each sub-folder's name is a person's name.

    Each person is written in one transaction, and photos already stored for that person
    are skipped, so an interrupted import can simply be run again.
    """
    from rich.progress import Progress

    if not directory.is_dir():
        typer.secho(f"error: {directory} is not a directory", err=True, fg=typer.colors.RED)
        raise typer.Exit(code=2)
    people = {
        d.name: sorted(p for p in d.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        for d in sorted(directory.iterdir())
        if d.is_dir() and not d.name.startswith((".", "_"))
    }
    engine = _engine(detector, thorough=True)
    total_images = sum(len(v) for v in people.values())
    enrolled = templates = skipped = already = 0
    try:
        store = _store(db)
        with Progress(transient=True) as progress:
            task = progress.add_task("importing", total=total_images)
            for name, images in people.items():
                person = store.find_by_name(name, collection)
                done = store.template_sources(person.id, engine.model_id) if person else set()
                found = []
                for image in images:
                    if str(image) in done:
                        already += 1
                        progress.advance(task)
                        continue
                    found_one, skipped_one = _largest_faces(engine, [image], name)
                    found += found_one
                    skipped += len(skipped_one)
                    progress.advance(task)
                if found:
                    templates += _save_faces(store, engine, name, found, collection, chips, person)
                    enrolled += 1
    except FacegateError as exc:
        raise _fail(exc) from exc
    typer.echo(
        f"imported {enrolled} people, {templates} templates, {skipped} image(s) skipped, {already} already imported"
    )


@app.command()
def identify(
    image: Annotated[Path, typer.Argument(help="A photo to recognise every face in.")],
    db: DbOpt = None,
    collection: CollectionOpt = "default",
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    top_k: Annotated[int, typer.Option(help="Also list the best K candidates per face.")] = 0,
    threshold: ThresholdOpt = None,
    detector: DetectorOpt = "blazeface",
) -> None:
    """Find every face in IMAGE and name it, or call it unknown."""
    import numpy as np

    from facegate.gallery.decision import MatchPolicy

    engine = _engine(detector)
    try:
        index = _search_index(_store(db), engine, collection)
        index.policy = MatchPolicy.from_env(threshold, flip=engine.config.flip)
        faces = engine.analyze(image)
        decisions = index.identify(np.stack([f.embedding for f in faces]), top_k=top_k) if faces else []
    except FacegateError as exc:
        raise _fail(exc) from exc
    rows = [
        {
            "box": f.box.to_list(),
            "det_score": round(f.det_score, 3),
            "quality": f.quality.to_dict(),
            **d.to_dict(),
        }
        for f, d in zip(faces, decisions, strict=True)
    ]
    if as_json:
        typer.echo(json.dumps({"image": str(image), "faces": rows}, indent=2))
        return
    if not rows:
        typer.echo("no face found")
    for row in rows:
        who = row["name"] if row["status"] == "match" else "unknown"
        typer.echo(f"{who:24s} confidence={row['confidence']:.2f} similarity={row['similarity']:.3f} box={row['box']}")


@app.command()
def verify(
    image_a: Annotated[Path, typer.Argument()],
    image_b: Annotated[Path, typer.Argument()],
    threshold: ThresholdOpt = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Say whether the largest faces of two photos are the same person."""
    from facegate.gallery.decision import MatchPolicy

    engine = _engine()
    try:
        policy = MatchPolicy.from_env(threshold, flip=engine.config.flip)
        faces = [engine.analyze(p, max_faces=1) for p in (image_a, image_b)]
    except FacegateError as exc:
        raise _fail(exc) from exc
    for path, found in zip((image_a, image_b), faces, strict=True):
        if not found:
            typer.secho(f"error [no_face]: no face found in {path}", err=True, fg=typer.colors.RED)
            raise typer.Exit(code=2)
    similarity = float(faces[0][0].embedding @ faces[1][0].embedding)
    result = {
        "same": similarity >= policy.threshold,
        "similarity": round(similarity, 4),
        "confidence": round(policy.confidence(similarity), 4),
        "threshold": policy.threshold,
    }
    if as_json:
        typer.echo(json.dumps(result))
    else:
        verdict = "same person" if result["same"] else "different people"
        typer.echo(f"{verdict} (similarity={result['similarity']:.3f}, confidence={result['confidence']:.2f})")


@app.command()
def detect(
    image: Annotated[Path, typer.Argument()],
    draw: Annotated[Path | None, typer.Option("--draw", help="Write a copy with boxes and landmarks.")] = None,
    detector: DetectorOpt = "blazeface",
    thorough: Annotated[bool, typer.Option(help="Also search large images tile by tile.")] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """List the faces in IMAGE with their quality; optionally draw them."""
    engine = _engine(detector, thorough=thorough)
    try:
        pixels = engine.load(image)
        faces = engine.analyze(pixels, embed=False)
    except FacegateError as exc:
        raise _fail(exc) from exc
    rows = [{"box": f.box.to_list(), "det_score": round(f.det_score, 3), "quality": f.quality.to_dict()} for f in faces]
    if as_json:
        typer.echo(json.dumps({"image": str(image), "faces": rows}, indent=2))
    else:
        typer.echo(f"{len(rows)} face(s)")
        for row in rows:
            q = row["quality"]
            typer.echo(f"box={row['box']} score={row['det_score']} quality={q['score']} {' '.join(q['reasons'])}")
    if draw is not None:
        from facegate.vision.draw import draw_faces

        draw_faces(pixels, faces).save(draw)
        typer.echo(f"drawn -> {draw}")


@app.command()
def people(db: DbOpt = None, collection: CollectionOpt = "default") -> None:
    """List enrolled people and their template counts."""
    try:
        everyone = _store(db).people(collection)
    except FacegateError as exc:
        raise _fail(exc) from exc
    for person, count in everyone:
        typer.echo(f"{person.id}  {person.name}  templates={count}")
    typer.echo(f"{len(everyone)} people, {sum(n for _, n in everyone)} templates")


@app.command()
def delete(name: Annotated[str, typer.Argument()], db: DbOpt = None, collection: CollectionOpt = "default") -> None:
    """Delete a person with all their templates and chips."""
    try:
        store = _store(db)
        person = store.find_by_name(name, collection)
        if person is None:
            typer.secho(f"error [person_not_found]: no person named {name!r}", err=True, fg=typer.colors.RED)
            raise typer.Exit(code=2)
        removed = store.delete_person(person.id)
    except FacegateError as exc:
        raise _fail(exc) from exc
    typer.echo(f"deleted {name} ({removed} templates)")


@contextlib.contextmanager
def _progress_bar(label: str):
    """A transient progress bar; yields the ``(done, total)`` callback the store functions take."""
    from rich.progress import Progress

    with Progress(transient=True) as progress:
        task = progress.add_task(label, total=None)
        yield lambda done, total: progress.update(task, completed=done, total=total)


@app.command("export")
def export_cmd(
    archive: Annotated[Path, typer.Argument(help="The ZIP archive to write.")],
    db: DbOpt = None,
    collection: CollectionOpt = "default",
) -> None:
    """Export a collection (people, templates, chips) to a portable archive."""
    from facegate.store.archive import export_collection

    try:
        store = _store(db)
        with _progress_bar("exporting") as report:
            count = export_collection(store, archive, collection, report)
    except FacegateError as exc:
        raise _fail(exc) from exc
    typer.echo(f"exported {count} templates of collection {collection!r} -> {archive}")


@app.command("import-archive")
def import_archive_cmd(
    archive: Annotated[Path, typer.Argument(help="An archive written by `facegate export`.")],
    db: DbOpt = None,
    collection: CollectionOpt = "default",
    replace: Annotated[bool, typer.Option("--replace", help="Empty the collection first (default: merge).")] = False,
) -> None:
    """Import an exported archive into a collection, all or nothing."""
    from facegate.store.archive import import_archive

    try:
        store = _store(db)
        with _progress_bar("importing") as report:
            people, templates = import_archive(store, archive, collection, replace, report)
    except FacegateError as exc:
        raise _fail(exc) from exc
    typer.echo(f"imported {people} people and {templates} templates into collection {collection!r}")


@app.command()
def reembed(db: DbOpt = None, collection: CollectionOpt = "default") -> None:
    """Recompute templates of other embedding models with this engine, from their stored chips."""
    from facegate.store.reembed import reembed as recompute

    engine = _engine()
    try:
        store = _store(db)
        with _progress_bar("re-embedding") as report:
            added = recompute(store, engine, collection, report)
    except FacegateError as exc:
        raise _fail(exc) from exc
    typer.echo(f"added {added} {engine.model_id} templates in collection {collection!r}")


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
    """Run the REST and WebSocket service (OpenAPI docs at /docs)."""
    import uvicorn

    from facegate.api.app import create_app
    from facegate.api.settings import Settings

    try:
        settings = Settings.from_env(
            host=host,
            port=port,
            database_url=db,
            auth=auth,
            cors_origins=tuple(o.strip() for o in cors.split(",") if o.strip()) if cors else None,
            match_threshold=threshold,
            flip=_state.flip or None,
        )
    except FacegateError as exc:
        raise _fail(exc) from exc
    typer.echo(f"facegate {settings.host}:{settings.port}: docs at http://{settings.host}:{settings.port}/docs")
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        ws_max_size=settings.max_stream_frame_bytes + 1024,
    )


keys_app = typer.Typer(help="API keys of the service.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")


def _keys(db: str | None):
    from facegate.store.keys import KeyStore

    return KeyStore(_store(db))


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Argument(help="What the key is for.")],
    scope: Annotated[list[str] | None, typer.Option("--scope", help="admin and/or recognize (repeatable).")] = None,
    db: DbOpt = None,
) -> None:
    """Create an API key; its secret is printed once."""
    try:
        key, secret = _keys(db).create(name, scope or ["recognize"])
    except FacegateError as exc:
        raise _fail(exc) from exc
    typer.echo(f"{key.id}  {key.name}  scopes={','.join(key.scopes)}")
    typer.echo(secret)


@keys_app.command("list")
def keys_list(db: DbOpt = None) -> None:
    """List API keys (never their secrets)."""
    for key in _keys(db).list():
        state = "revoked" if key.revoked_at else "active"
        typer.echo(f"{key.id}  {key.name}  scopes={','.join(key.scopes)}  {state}")


@keys_app.command("revoke")
def keys_revoke(key_id: Annotated[str, typer.Argument()], db: DbOpt = None) -> None:
    """Revoke an API key; it stops working at once."""
    try:
        key = _keys(db).revoke(key_id)
    except FacegateError as exc:
        raise _fail(exc) from exc
    typer.echo(f"revoked {key.id} ({key.name})")


db_app = typer.Typer(help="The database: migrations.", no_args_is_help=True)
app.add_typer(db_app, name="db")


@db_app.command("upgrade")
def db_upgrade(
    url: Annotated[str | None, typer.Option(help="Database URL (default: $FACEGATE_DATABASE_URL or SQLite).")] = None,
) -> None:
    """Apply the schema migrations to the database (safe to run again)."""
    from facegate.store.db import current_revision, default_database_url, make_engine, upgrade

    engine = make_engine(url or default_database_url())
    upgrade(engine)
    typer.echo(f"database at revision {current_revision(engine)}: {engine.url.render_as_string(hide_password=True)}")


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
