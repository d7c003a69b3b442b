"""REST v1: recognise, verify and detect (scope ``recognize``), and ZIP enrolment (scope ``admin``)."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from starlette.concurrency import run_in_threadpool

from facegate.api.auth import require
from facegate.api.deps import Collection, runtime_of
from facegate.api.schemas import DetectOut, FaceOut, FileReport, RecognizeOut, VerifyOut, ZipReport, file_reports
from facegate.api.uploads import image_body, one_image, read_images, read_zip
from facegate.service.pipeline import FrameOptions
from facegate.store.records import DEFAULT_COLLECTION

router = APIRouter(prefix="/v1")
recognize_scope = [Depends(require("recognize"))]

Threshold = Annotated[
    float | None, Query(ge=-1.0, le=1.0, description="match threshold on cosine similarity (default: calibrated)")
]
MaxFaces = Annotated[int | None, Query(ge=1, le=1000, description="keep the largest N faces")]


@router.post(
    "/recognize",
    response_model=RecognizeOut,
    tags=["recognition"],
    dependencies=recognize_scope,
    openapi_extra=image_body(fields=("image",), many=False),
)
async def recognize(
    request: Request,
    collection: Collection = DEFAULT_COLLECTION,
    threshold: Threshold = None,
    max_faces: MaxFaces = None,
    largest_only: Annotated[bool, Query(description="only the largest face")] = False,
    top_k: Annotated[int, Query(ge=0, le=20, description="also list the best K candidates per face")] = 0,
) -> RecognizeOut:
    """Every face in an image: box, landmarks, quality, and a ``decision``: ``match`` (person, confidence) or
    ``unknown``."""
    runtime = runtime_of(request)
    image = one_image(await read_images(request, ("image",), runtime.settings.limits), "image")
    options = FrameOptions(collection, threshold, 1 if largest_only else max_faces, top_k)
    result = await runtime.scheduler.run(runtime.recognition.recognize, image, options)
    request.app.state.metrics.count_decisions("http", result.statuses)
    return RecognizeOut.of(result, collection, runtime.model_id)


@router.post(
    "/detect",
    response_model=DetectOut,
    tags=["recognition"],
    dependencies=recognize_scope,
    openapi_extra=image_body(fields=("image",), many=False),
)
async def detect(request: Request, max_faces: MaxFaces = None) -> DetectOut:
    """Faces with landmarks and quality only: what a guided capture needs."""
    runtime = runtime_of(request)
    image = one_image(await read_images(request, ("image",), runtime.settings.limits), "image")
    found = await runtime.scheduler.run(lambda: runtime.recognition.detect(image, max_faces=max_faces))
    return DetectOut(width=found.width, height=found.height, faces=[FaceOut.of(f) for f in found.faces])


@router.post(
    "/verify",
    response_model=VerifyOut,
    tags=["recognition"],
    dependencies=recognize_scope,
    openapi_extra=image_body(fields=("image_a", "image_b"), many=False),
)
async def verify(
    request: Request,
    person_id: Annotated[str | None, Query(max_length=40, description="compare image_a with this person")] = None,
    collection: Collection = DEFAULT_COLLECTION,
    threshold: Threshold = None,
) -> VerifyOut:
    """Same person or not: two images (``image_a``, ``image_b``), or ``image_a`` and ``person_id``."""
    runtime = runtime_of(request)
    found = await read_images(request, ("image_a", "image_b"), runtime.settings.limits, max_files=2)
    image_a = one_image(found, "image_a")
    image_b = one_image(found, "image_b") if found.get("image_b") else None
    result = await runtime.scheduler.run(
        lambda: runtime.recognition.verify(
            image_a, image_b, person_id=person_id, collection=collection, threshold=threshold
        )
    )
    return VerifyOut.of(result)


# ----------------------------------------------------------------- ZIP enrolment


@router.post(
    "/enroll/zip",
    response_model=ZipReport,
    tags=["people"],
    dependencies=[Depends(require("admin"))],
    openapi_extra=image_body(fields=("archive",), many=False),
)
async def enroll_zip(request: Request, collection: Collection = DEFAULT_COLLECTION) -> ZipReport:
    """Enrol everyone in a ZIP: a folder name (``Ada/1.jpg``) or a file name (``Ada.jpg``) names the person.

    Returns a report line per file. Hostile entries (absolute paths, ``..``, links) are
    refused; archives over the size, entry-count or compression-ratio limits are refused whole.
    """
    runtime = runtime_of(request)
    limits = runtime.settings.limits
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind in ("application/zip", "application/x-zip-compressed"):
        data = await request.body()
    else:
        zip_sized = replace(limits, max_image_bytes=limits.max_zip_bytes)  # the upload is the archive
        data = one_image(await read_images(request, ("archive",), zip_sized), "archive")
    await run_in_threadpool(runtime.people.get_collection, collection)
    entries = await run_in_threadpool(read_zip, data, limits)
    reports: list[FileReport] = [
        FileReport(source=e.path, status="skipped", code=e.code, detail=e.detail) for e in entries if e.data is None
    ]
    readable = [e for e in entries if e.data is not None]
    found = await runtime.scheduler.run(runtime.enrolment.faces, [(e.path, e.data) for e in readable])
    groups: dict[str, list] = {}
    for entry, face in zip(readable, found, strict=True):
        groups.setdefault(entry.person, []).append(face)
    report = await run_in_threadpool(runtime.enrolment.enrol_groups, groups, collection)
    return ZipReport(
        people_created=report.people_created,
        people_updated=report.people_updated,
        templates_added=report.templates_added,
        files=reports + file_reports(found),
    )
