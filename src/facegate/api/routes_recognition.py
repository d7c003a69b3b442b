"""REST v1: recognise, verify and detect (scope ``recognize``), and ZIP enrolment (scope ``admin``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from starlette.concurrency import run_in_threadpool

from facegate.api.auth import require
from facegate.api.deps import Collection, runtime_of
from facegate.api.schemas import (
    DetectOut,
    EnrolWarningOut,
    FaceOut,
    FileReport,
    RecognizeOut,
    VerifyOut,
    ZipReport,
)
from facegate.api.uploads import image_body, one_image, read_images, read_zip, zip_body, zip_upload
from facegate.service.enrolment import BatchImage, BatchReport
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
    openapi_extra=zip_body(),
)
async def enroll_zip(request: Request, collection: Collection = DEFAULT_COLLECTION) -> ZipReport:
    """Enrol everyone in a ZIP: each folder of photos is a person, named by the folder (``staff/Ada/1.jpg``: Ada).

    Returns a report line per file: ``added``, or ``skipped`` with a code. The archive is spooled
    to a temporary file and read entry by entry; each person is written in one transaction, and a
    photo the person has already is skipped (``already_enrolled``), so sending it again adds
    nothing. Archives over the size, entry-count or compression-ratio limits, whose entries
    overlap or hold more than they declare, are refused whole before anything is written.
    """
    runtime = runtime_of(request)
    limits = runtime.settings.limits
    await run_in_threadpool(runtime.people.get_collection, collection)
    async with zip_upload(request, limits) as archive:

        def enrol() -> BatchReport:  # one turn of the scheduler, off the event loop
            entries = read_zip(archive, limits)
            return runtime.enrolment.enrol_batch(
                (BatchImage(e.path, e.person, e.data, e.error) for e in entries), collection
            )

        report = await runtime.scheduler.run(enrol)
    return ZipReport(
        people_created=report.people_created,
        people_updated=report.people_updated,
        templates_added=report.templates_added,
        files=[
            FileReport(source=f.source, status=f.status, code=f.code, detail=f.detail, quality=f.quality)
            for f in report.files
        ],
        warnings=[EnrolWarningOut.of(w) for w in report.warnings],
    )
