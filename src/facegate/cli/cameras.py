"""``facegate cameras add|list|show|update|remove`` and ``facegate worker``: cameras that run by themselves."""

from __future__ import annotations

import asyncio
import json
import signal
from typing import Annotated

import typer

from facegate.cli.common import DbOpt, app, failures, runtime, settings

cameras_app = typer.Typer(
    help="Cameras: RTSP, HTTP MJPEG or USB sources recognised continuously.", no_args_is_help=True
)
app.add_typer(cameras_app, name="cameras")

CameraId = Annotated[str, typer.Argument(help="The camera's id (cam_…), as `facegate cameras list` shows it.")]
FpsOpt = Annotated[float | None, typer.Option("--fps", help="Frames processed per second at most (default 5).")]
CooldownOpt = Annotated[
    float | None, typer.Option("--cooldown", help="Seconds of absence before a person is an event again (default 5).")
]
MinFaceOpt = Annotated[int | None, typer.Option("--min-face", help="Smallest face recognised, px (default 40).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable output.")]


def _row(view) -> dict:
    c = view.camera
    return {
        "id": c.id,
        "name": c.name,
        "url": c.url,
        "collection": c.collection,
        "enabled": c.enabled,
        "fps": c.fps,
        "cooldown_s": c.cooldown_s,
        "min_face_px": c.min_face_px,
        "state": view.state,
        "error_code": view.error_code,
        "error_detail": view.error_detail,
        "worker": view.worker,
        "stats": view.stats,
    }


def _fields(**values):
    from facegate.store.records import CameraFields

    return CameraFields(**values)


@cameras_app.command("add")
def add(
    name: Annotated[str, typer.Argument(help="A name for the camera, e.g. 'front door'.")],
    url: Annotated[str, typer.Argument(help="rtsp://user:pass@host/stream, http://host/video.mjpg, usb:0 …")],
    collection: Annotated[str, typer.Option("--collection", help="The collection it recognises.")] = "default",
    fps: FpsOpt = None,
    cooldown: CooldownOpt = None,
    min_face: MinFaceOpt = None,
    disabled: Annotated[bool, typer.Option("--disabled", help="Add it without starting it.")] = False,
    db: DbOpt = None,
) -> None:
    """Add a camera; `facegate serve` (or a worker) starts it within a few seconds."""
    with runtime(database_url=db) as rt:
        camera = rt.cameras.add(
            _fields(
                name=name,
                url=url,
                collection=collection,
                enabled=not disabled,
                fps=fps,
                cooldown_s=cooldown,
                min_face_px=min_face,
            )
        )
    typer.echo(f"added camera {camera.name!r} ({camera.id}): {camera.url}")


@cameras_app.command("list")
def list_cameras(as_json: JsonOpt = False, db: DbOpt = None) -> None:
    """Every camera with its state (live, connecting, down, stopped, unknown)."""
    with runtime(database_url=db) as rt:
        rows = [_row(v) for v in rt.cameras.views()]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    for r in rows:
        error = f" [{r['error_code']}]" if r["error_code"] else ""
        typer.echo(f"{r['id']}  {r['name']:<20} {r['state']:<10}{error}  {r['collection']}  {r['url']}")


@cameras_app.command("show")
def show(camera_id: CameraId, db: DbOpt = None) -> None:
    """One camera's settings, state, statistics and current tracks (JSON)."""
    with runtime(database_url=db) as rt:
        row = _row(rt.cameras.view(rt.cameras.get(camera_id)))
        row["latest"] = rt.cameras.latest(camera_id)
    typer.echo(json.dumps(row, indent=2))


@cameras_app.command("update")
def update(
    camera_id: CameraId,
    name: Annotated[str | None, typer.Option("--name")] = None,
    url: Annotated[str | None, typer.Option("--url")] = None,
    collection: Annotated[str | None, typer.Option("--collection")] = None,
    fps: FpsOpt = None,
    cooldown: CooldownOpt = None,
    min_face: MinFaceOpt = None,
    enabled: Annotated[bool | None, typer.Option("--enable/--disable", help="Start or stop it.")] = None,
    db: DbOpt = None,
) -> None:
    """Change a camera (it restarts where it runs)."""
    with runtime(database_url=db) as rt:
        camera = rt.cameras.update(
            camera_id,
            _fields(
                name=name,
                url=url,
                collection=collection,
                enabled=enabled,
                fps=fps,
                cooldown_s=cooldown,
                min_face_px=min_face,
            ),
        )
    typer.echo(f"updated camera {camera.name!r} ({camera.id})")


@cameras_app.command("remove")
def remove(camera_id: CameraId, db: DbOpt = None) -> None:
    """Stop and forget a camera."""
    with runtime(database_url=db) as rt:
        camera = rt.cameras.get(camera_id)
        rt.cameras.remove(camera_id)
    typer.echo(f"removed camera {camera.name!r} ({camera_id})")


@app.command("worker")
def worker(db: DbOpt = None) -> None:
    """Run cameras without the HTTP server: several workers on one PostgreSQL database share the cameras
    (each claims a lease per camera; a worker that dies loses its cameras to the others within a lease)."""
    from facegate.service.runtime import Runtime

    with failures():
        effective = settings(database_url=db)
        asyncio.run(_run_worker(Runtime.build(effective)))


async def _run_worker(rt) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    warming = await rt.start(warm=True, cameras=True)
    typer.echo(f"facegate worker {rt.camera_manager.worker}: running cameras (Ctrl-C stops)")
    try:
        await stop.wait()
    finally:
        if warming:
            warming.cancel()
        await rt.stop()
