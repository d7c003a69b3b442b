"""REST v1: collections, people and their face templates (scope ``admin``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from facegate.api.auth import require
from facegate.api.problems import ApiError
from facegate.api.schemas import (
    CollectionCreate,
    CollectionOut,
    FacesAdded,
    FileReport,
    PeoplePage,
    PersonCreate,
    PersonOut,
    PersonUpdate,
    TemplateMove,
    TemplateOut,
)
from facegate.api.service import EnrolFace, FaceService
from facegate.api.uploads import image_body, read_images
from facegate.store.repository import DEFAULT_COLLECTION

router = APIRouter(prefix="/v1", dependencies=[Depends(require("admin"))])

Collection = Annotated[str, Query(min_length=1, max_length=200, description="the collection (isolated gallery)")]
MAX_ENROL_FILES = 20


def service_of(request: Request) -> FaceService:
    return request.app.state.service


def file_reports(found: list[EnrolFace]) -> list[FileReport]:
    """One line per uploaded image: added (with its face quality) or skipped (with the reason)."""
    return [
        FileReport(source=e.source, status="added", quality=round(e.face.quality.score, 3) if e.face.quality else None)
        if e.face is not None
        else FileReport(source=e.source, status="skipped", code=e.error.code, detail=e.error.message)
        for e in found
    ]


def _person_in(service: FaceService, person_id: str, collection: str):
    """The person, who must belong to ``collection`` (404 otherwise: collections are isolated)."""
    record = service.store.get_person(person_id)
    if record.collection != collection:
        raise ApiError(f"no person with id {person_id!r} in collection {collection!r}", code="person_not_found")
    return record


# ----------------------------------------------------------------- collections


@router.get("/collections", response_model=list[CollectionOut], tags=["collections"])
def list_collections(request: Request) -> list[CollectionOut]:
    return [CollectionOut(name=n) for n in service_of(request).store.collections()]


@router.post("/collections", response_model=CollectionOut, status_code=201, tags=["collections"])
def create_collection(request: Request, body: CollectionCreate) -> CollectionOut:
    service_of(request).store.create_collection(body.name)
    return CollectionOut(name=body.name)


@router.delete("/collections/{name}", status_code=204, tags=["collections"])
def delete_collection(request: Request, name: str) -> Response:
    """Erase a collection with everyone in it (the ``default`` collection cannot be deleted)."""
    service = service_of(request)
    service.store.delete_collection(name)
    service.forget(name)
    return Response(status_code=204)


# ----------------------------------------------------------------- people


@router.get("/people", response_model=PeoplePage, tags=["people"])
def list_people(
    request: Request,
    collection: Collection = DEFAULT_COLLECTION,
    q: Annotated[str, Query(max_length=200, description="part of the name")] = "",
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> PeoplePage:
    records, total = service_of(request).store.list_people(collection, offset=offset, limit=limit, name_contains=q)
    return PeoplePage(items=[PersonOut.of(r) for r in records], total=total, offset=offset, limit=limit)


@router.post("/people", response_model=PersonOut, status_code=201, tags=["people"])
def create_person(request: Request, body: PersonCreate, collection: Collection = DEFAULT_COLLECTION) -> PersonOut:
    """Create a person without faces yet (add them with ``POST /v1/people/{id}/faces``)."""
    service = service_of(request)
    person = service.store.create_person(
        body.name, collection=collection, metadata=body.metadata, external_ref=body.external_ref
    )
    service.changed(collection)
    return PersonOut.of(service.store.get_person(person.id))


@router.get("/people/by-ref", response_model=PersonOut, tags=["people"])
def person_by_reference(
    request: Request,
    ref: Annotated[str, Query(min_length=1, max_length=500, description="the external reference, e.g. an e-mail")],
    collection: Collection = DEFAULT_COLLECTION,
) -> PersonOut:
    """Look a person up by the external reference they were enrolled with (it is stored hashed)."""
    store = service_of(request).store
    person = store.find_by_external_ref(ref, collection)
    if person is None:
        raise ApiError("no person has this reference", code="person_not_found")
    return PersonOut.of(store.get_person(person.id))


@router.get("/people/{person_id}", response_model=PersonOut, tags=["people"])
def get_person(request: Request, person_id: str, collection: Collection = DEFAULT_COLLECTION) -> PersonOut:
    return PersonOut.of(_person_in(service_of(request), person_id, collection))


@router.patch("/people/{person_id}", response_model=PersonOut, tags=["people"])
def update_person(
    request: Request, person_id: str, body: PersonUpdate, collection: Collection = DEFAULT_COLLECTION
) -> PersonOut:
    """Rename a person, replace their metadata or change their external reference."""
    service = service_of(request)
    _person_in(service, person_id, collection)
    record = service.store.update_person(
        person_id, name=body.name, metadata=body.metadata, external_ref=body.external_ref
    )
    service.changed(collection)
    return PersonOut.of(record)


@router.delete("/people/{person_id}", status_code=204, tags=["people"])
def delete_person(request: Request, person_id: str, collection: Collection = DEFAULT_COLLECTION) -> Response:
    """Erase a person with every template and face chip."""
    service = service_of(request)
    _person_in(service, person_id, collection)
    service.store.delete_person(person_id)
    service.changed(collection)
    return Response(status_code=204)


# ----------------------------------------------------------------- faces


@router.post(
    "/people/{person_id}/faces",
    response_model=FacesAdded,
    status_code=201,
    tags=["faces"],
    openapi_extra=image_body(fields=("images",), many=True),
)
async def add_faces(request: Request, person_id: str, collection: Collection = DEFAULT_COLLECTION) -> FacesAdded:
    """Add the largest face of each image to a person (all found faces in one transaction)."""
    service = service_of(request)
    await run_in_threadpool(_person_in, service, person_id, collection)
    uploads = await read_images(request, ("images",), service.settings, max_files=MAX_ENROL_FILES)
    found = await request.app.state.scheduler.run(service.enrol_faces, uploads["images"])
    templates = service.templates_from(found)
    if not templates:
        raise ApiError("no usable face in any image; nothing was added", code="no_face", status=422)
    added = await run_in_threadpool(service.store.add_templates, person_id, templates, model_id=service.model_id)
    service.changed(collection)
    person = await run_in_threadpool(service.store.get_person, person_id)
    return FacesAdded(person=PersonOut.of(person), added=added, files=file_reports(found))


@router.get("/people/{person_id}/faces", response_model=list[TemplateOut], tags=["faces"])
def list_faces(request: Request, person_id: str, collection: Collection = DEFAULT_COLLECTION) -> list[TemplateOut]:
    service = service_of(request)
    _person_in(service, person_id, collection)
    return [TemplateOut.of(t, collection) for t in service.store.templates(person_id)]


@router.get(
    "/faces/{template_id}/chip",
    tags=["faces"],
    response_class=Response,
    responses={200: {"content": {"image/jpeg": {}}, "description": "the aligned 150x150 face"}},
)
def face_chip(request: Request, template_id: str, collection: Collection = DEFAULT_COLLECTION) -> Response:
    service = service_of(request)
    _template_in(service, template_id, collection)
    chip = service.store.template_chip(template_id)
    if not chip:
        raise ApiError("this template has no stored chip", code="not_found")
    return Response(chip, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=3600"})


def _template_in(service: FaceService, template_id: str, collection: str) -> str:
    """The id of the person owning a template of ``collection`` (404 otherwise)."""
    owner = service.store.template_owner(template_id)
    if owner is None or owner[1] != collection:
        raise ApiError(f"no template with id {template_id!r} in collection {collection!r}", code="template_not_found")
    return owner[0]


@router.delete("/faces/{template_id}", status_code=204, tags=["faces"])
def delete_face(request: Request, template_id: str, collection: Collection = DEFAULT_COLLECTION) -> Response:
    service = service_of(request)
    _template_in(service, template_id, collection)
    service.store.remove_template(template_id)
    service.changed(collection)
    return Response(status_code=204)


@router.post("/faces/{template_id}/move", response_model=TemplateOut, tags=["faces"])
def move_face(
    request: Request, template_id: str, body: TemplateMove, collection: Collection = DEFAULT_COLLECTION
) -> TemplateOut:
    """Move a template to another person of the same collection (fixes a wrong enrolment)."""
    service = service_of(request)
    _template_in(service, template_id, collection)
    _person_in(service, body.to_person_id, collection)
    service.store.move_templates([template_id], body.to_person_id)
    service.changed(collection)
    moved = next(t for t in service.store.templates(body.to_person_id) if t.id == template_id)
    return TemplateOut.of(moved, collection)
