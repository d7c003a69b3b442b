"""REST v1: collections, people and their face templates (scope ``admin``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from facegate.api.auth import require
from facegate.api.deps import Collection, runtime_of
from facegate.api.problems import ApiError, problem
from facegate.api.schemas import (
    CollectionCreate,
    CollectionOut,
    CollectionRename,
    EnrolCheckOut,
    FacesAdded,
    PairOut,
    PeoplePage,
    PersonCreate,
    PersonOut,
    PersonUpdate,
    TemplateMove,
    TemplateOut,
)
from facegate.api.uploads import image_body, read_images
from facegate.service.enrolment import MixedIdentities
from facegate.store.records import DEFAULT_COLLECTION

router = APIRouter(prefix="/v1", dependencies=[Depends(require("admin"))])

MAX_ENROL_FILES = 20


def mixed_identities(request: Request, exc: MixedIdentities) -> JSONResponse:
    """The 422 problem of an enrolment refused as not one person, naming the photos that disagree."""
    check = exc.check
    return problem(
        422,
        exc.code,
        exc.message,
        request.url.path,
        photos=list(check.disagreeing),
        pairs=[PairOut.of(p).model_dump() for p in check.pairs],
        threshold=check.threshold,
    )


# ----------------------------------------------------------------- collections


@router.get("/collections", response_model=list[CollectionOut], tags=["collections"])
def list_collections(request: Request) -> list[CollectionOut]:
    key = getattr(request.state, "api_key", None)
    return [CollectionOut(name=n) for n in runtime_of(request).people.collections() if key is None or key.reaches(n)]


@router.post("/collections", response_model=CollectionOut, status_code=201, tags=["collections"])
def create_collection(request: Request, body: CollectionCreate) -> CollectionOut:
    return CollectionOut(name=runtime_of(request).people.create_collection(body.name))


@router.patch("/collections/{name}", response_model=CollectionOut, tags=["collections"])
def rename_collection(request: Request, name: str, body: CollectionRename) -> CollectionOut:
    """Give a collection a new name (the ``default`` collection keeps its name)."""
    return CollectionOut(name=runtime_of(request).people.rename_collection(name, body.name))


@router.delete("/collections/{name}", status_code=204, tags=["collections"])
def delete_collection(request: Request, name: str) -> Response:
    """Erase a collection with everyone in it (the ``default`` collection cannot be deleted)."""
    runtime_of(request).people.delete_collection(name)
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
    records, total = runtime_of(request).people.list(collection, offset=offset, limit=limit, name_contains=q)
    return PeoplePage(items=[PersonOut.of(r) for r in records], total=total, offset=offset, limit=limit)


@router.post("/people", response_model=PersonOut, status_code=201, tags=["people"])
def create_person(request: Request, body: PersonCreate, collection: Collection = DEFAULT_COLLECTION) -> PersonOut:
    """Create a person without faces yet (add them with ``POST /v1/people/{id}/faces``)."""
    record = runtime_of(request).people.create(
        body.name, collection, metadata=body.metadata, external_ref=body.external_ref
    )
    return PersonOut.of(record)


@router.get("/people/by-ref", response_model=PersonOut, tags=["people"])
def person_by_reference(
    request: Request,
    ref: Annotated[str, Query(min_length=1, max_length=500, description="the external reference, e.g. an e-mail")],
    collection: Collection = DEFAULT_COLLECTION,
) -> PersonOut:
    """Look a person up by the external reference they were enrolled with (it is stored hashed)."""
    return PersonOut.of(runtime_of(request).people.by_reference(ref, collection))


@router.get("/people/{person_id}", response_model=PersonOut, tags=["people"])
def get_person(request: Request, person_id: str, collection: Collection = DEFAULT_COLLECTION) -> PersonOut:
    return PersonOut.of(runtime_of(request).people.get(person_id, collection))


@router.patch("/people/{person_id}", response_model=PersonOut, tags=["people"])
def update_person(
    request: Request, person_id: str, body: PersonUpdate, collection: Collection = DEFAULT_COLLECTION
) -> PersonOut:
    """Rename a person, replace their metadata or change their external reference."""
    record = runtime_of(request).people.update(
        person_id, collection, name=body.name, metadata=body.metadata, external_ref=body.external_ref
    )
    return PersonOut.of(record)


@router.delete("/people/{person_id}", status_code=204, tags=["people"])
def delete_person(request: Request, person_id: str, collection: Collection = DEFAULT_COLLECTION) -> Response:
    """Erase a person with every template and face chip."""
    runtime_of(request).people.delete(person_id, collection)
    return Response(status_code=204)


# ----------------------------------------------------------------- faces


@router.post(
    "/people/{person_id}/faces",
    response_model=FacesAdded,
    status_code=201,
    tags=["faces"],
    openapi_extra=image_body(fields=("images",), many=True),
)
async def add_faces(
    request: Request, person_id: str, collection: Collection = DEFAULT_COLLECTION
) -> FacesAdded | JSONResponse:
    """Add the largest face of each image to a person (all found faces in one transaction).

    The faces must be one person, with each other and with the person's stored templates (the pairwise
    verification of ``/v1/verify``), else nothing is added: 422 ``mixed_identities`` naming the photos
    that disagree. A face turned beyond ``enrol_max_yaw`` is skipped (``face_turned``). The answer says
    how distinct the person is (``closest``: the most similar other person of the collection) and warns
    (``similar_person``) when the two could be confused.
    """
    runtime = runtime_of(request)
    await run_in_threadpool(runtime.people.get, person_id, collection)
    uploads = await read_images(request, ("images",), runtime.settings.limits, max_files=MAX_ENROL_FILES)
    found = await runtime.scheduler.run(runtime.enrolment.faces, uploads["images"])
    try:
        enrolled = await run_in_threadpool(runtime.enrolment.add_faces, person_id, found, collection)
    except MixedIdentities as exc:
        return mixed_identities(request, exc)
    return FacesAdded.of(enrolled)


@router.post(
    "/enroll/check",
    response_model=EnrolCheckOut,
    tags=["faces"],
    openapi_extra=image_body(fields=("images",), many=True),
)
async def check_enrolment(request: Request) -> EnrolCheckOut:
    """A dry run of an enrolment, nothing written: is each photo usable (one face, not turned beyond
    ``enrol_max_yaw``), and are they all one person (``one_person``; ``pairs`` has every pair's similarity
    and the pairwise verdict)? Guided capture asks this before it keeps a shot."""
    runtime = runtime_of(request)
    uploads = await read_images(request, ("images",), runtime.settings.limits, max_files=MAX_ENROL_FILES)
    if not uploads["images"]:
        raise ApiError("no image was sent as 'images'", code="image_missing", status=422)
    checked = await runtime.scheduler.run(runtime.enrolment.check, uploads["images"])
    return EnrolCheckOut.of(checked)


@router.get("/people/{person_id}/faces", response_model=list[TemplateOut], tags=["faces"])
def list_faces(request: Request, person_id: str, collection: Collection = DEFAULT_COLLECTION) -> list[TemplateOut]:
    return [TemplateOut.of(t, collection) for t in runtime_of(request).people.templates(person_id, collection)]


@router.get(
    "/faces/{template_id}/chip",
    tags=["faces"],
    response_class=Response,
    responses={200: {"content": {"image/jpeg": {}}, "description": "the aligned 150x150 face"}},
)
def face_chip(request: Request, template_id: str, collection: Collection = DEFAULT_COLLECTION) -> Response:
    chip = runtime_of(request).people.chip(template_id, collection)
    return Response(chip, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=3600"})


@router.delete("/faces/{template_id}", status_code=204, tags=["faces"])
def delete_face(request: Request, template_id: str, collection: Collection = DEFAULT_COLLECTION) -> Response:
    runtime_of(request).people.delete_template(template_id, collection)
    return Response(status_code=204)


@router.post("/faces/{template_id}/move", response_model=TemplateOut, tags=["faces"])
def move_face(
    request: Request, template_id: str, body: TemplateMove, collection: Collection = DEFAULT_COLLECTION
) -> TemplateOut:
    """Move a template to another person of the same collection (fixes a wrong enrolment)."""
    moved = runtime_of(request).people.move_template(template_id, body.to_person_id, collection)
    return TemplateOut.of(moved, collection)
