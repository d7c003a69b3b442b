"""REST v1: recognise, verify and detect (scope ``recognize``), and ZIP enrolment (scope ``admin``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from starlette.concurrency import run_in_threadpool

from facegate.api.auth import require
from facegate.api.problems import ApiError
from facegate.api.routes_people import Collection, file_reports, service_of
from facegate.api.schemas import DetectOut, FaceOut, FileReport, RecognizeOut, VerifyOut, ZipReport
from facegate.api.service import EnrolFace, FaceService
from facegate.api.uploads import image_body, one_image, read_images, read_zip
from facegate.store.repository import DEFAULT_COLLECTION
from facegate.vision.errors import FacegateError

router = APIRouter(prefix="/v1")
recognize_scope = [Depends(require("recognize"))]

Threshold = Annotated[
    float | None, Query(ge=-1.0, le=1.0, description="match threshold on cosine similarity (default: calibrated)")
]
MaxFaces = Annotated[int | None, Query(ge=1, le=1000, description="keep the largest N faces")]


def _count(request: Request, source: str, statuses: list[str]) -> None:
    request.app.state.metrics.count_decisions(source, statuses)


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
    """Every face in an image: box, landmarks, quality, and ``match`` (person, confidence) or ``unknown``."""
    service = service_of(request)
    image = one_image(await read_images(request, ("image",), service.settings), "image")
    result = await request.app.state.scheduler.run(
        lambda: service.recognize(
            image, collection=collection, threshold=threshold, max_faces=1 if largest_only else max_faces, top_k=top_k
        )
    )
    _count(request, "http", [f.decision.status for f in result.faces])
    return RecognizeOut.of(result, collection, service.model_id)


@router.post(
    "/detect",
    response_model=DetectOut,
    tags=["recognition"],
    dependencies=recognize_scope,
    openapi_extra=image_body(fields=("image",), many=False),
)
async def detect(request: Request, max_faces: MaxFaces = None) -> DetectOut:
    """Faces with landmarks and quality only: what a guided capture needs."""
    service = service_of(request)
    image = one_image(await read_images(request, ("image",), service.settings), "image")
    width, height, faces = await request.app.state.scheduler.run(lambda: service.detect(image, max_faces=max_faces))
    return DetectOut(width=width, height=height, faces=[FaceOut.of(f) for f in faces])


def _verify(
    service: FaceService, image_a: bytes, image_b: bytes | None, person_id: str | None, collection: str, threshold
) -> VerifyOut:
    policy = service.policy_for(threshold)
    face_a = service.largest_face(image_a)
    if face_a is None:
        raise ApiError("no face found in image_a", code="no_face", status=422)
    if image_b is not None:
        face_b = service.largest_face(image_b)
        if face_b is None:
            raise ApiError("no face found in image_b", code="no_face", status=422)
        similarity = float(face_a.embedding @ face_b.embedding)
    else:
        record = service.store.get_person(person_id)
        if record.collection != collection:
            raise ApiError(f"no person with id {person_id!r} in collection {collection!r}", code="person_not_found")
        best = service.index(collection).best_similarity(person_id, face_a.embedding)
        if best is None:
            raise ApiError("this person has no templates of the current model", code="no_templates", status=409)
        similarity = best
    return VerifyOut(
        same=similarity >= policy.threshold,
        similarity=round(similarity, 4),
        distance=round(1.0 - similarity, 4),
        confidence=round(policy.confidence(similarity), 4),
        threshold=policy.threshold,
        person_id=person_id,
    )


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
    service = service_of(request)
    found = await read_images(request, ("image_a", "image_b"), service.settings, max_files=2)
    image_a = one_image(found, "image_a")
    image_b = one_image(found, "image_b") if found.get("image_b") else None
    if (image_b is None) == (person_id is None):
        raise ApiError("send image_b or person_id (one of them)", code="invalid_request", status=422)
    return await request.app.state.scheduler.run(
        lambda: _verify(service, image_a, image_b, person_id, collection, threshold)
    )


# ----------------------------------------------------------------- ZIP enrolment


def _save_zip(service: FaceService, collection: str, by_person: dict[str, list[EnrolFace]]) -> tuple[int, int, int]:
    """Each person's faces in one transaction: new people are enrolled, existing ones get templates."""
    created = updated = added = 0
    for name, found in by_person.items():
        templates = service.templates_from(found)
        if not templates:
            continue
        person = service.store.find_by_name(name, collection)
        if person is None:
            service.store.enroll(name, templates, model_id=service.model_id, collection=collection)
            created += 1
        else:
            service.store.add_templates(person.id, templates, model_id=service.model_id)
            updated += 1
        added += len(templates)
    return created, updated, added


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
    service = service_of(request)
    settings = service.settings
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind in ("application/zip", "application/x-zip-compressed"):
        data = await request.body()
    else:
        data = one_image(await read_images(request, ("archive",), _zip_sized(settings)), "archive")
    if collection not in await run_in_threadpool(service.store.collections):
        raise FacegateError(f"no collection named {collection!r}", code="collection_not_found")
    entries = await run_in_threadpool(read_zip, data, settings)
    reports: list[FileReport] = [
        FileReport(source=e.path, status="skipped", code=e.code, detail=e.detail) for e in entries if e.data is None
    ]
    readable = [e for e in entries if e.data is not None]
    found = await request.app.state.scheduler.run(service.enrol_faces, [(e.path, e.data) for e in readable])
    by_person: dict[str, list[EnrolFace]] = {}
    for entry, face in zip(readable, found, strict=True):
        by_person.setdefault(entry.person, []).append(face)
    created, updated, added = await run_in_threadpool(_save_zip, service, collection, by_person)
    service.changed(collection)
    return ZipReport(
        people_created=created, people_updated=updated, templates_added=added, files=reports + file_reports(found)
    )


def _zip_sized(settings):
    """The settings with the per-upload size limit raised to the archive limit."""
    from dataclasses import replace

    return replace(settings, max_image_bytes=settings.max_zip_bytes)
