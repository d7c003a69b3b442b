"""REST v1: visitor sessions (scope ``recognize``): a visitor's own people over a shared base collection.

``POST /v1/sessions?collection=<base>`` answers the session's id and token (shown once); every
other call names the session in its path and sends the token as ``X-Session-Token``. A wrong
or expired token is answered 404 ``session_not_found``, whichever session it belongs to. A
visitor enrols into and lists their session only, and recognises against it and the base:
the base is never written through a session.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials
from starlette.concurrency import run_in_threadpool

from facegate.api.auth import bearer, check_collection, check_key, header_key, require
from facegate.api.deps import Collection, runtime_of
from facegate.api.problems import ApiError
from facegate.api.routes_people import MAX_ENROL_FILES, mixed_identities
from facegate.api.routes_recognition import MaxFaces, Threshold
from facegate.api.schemas import FacesAdded, PeoplePage, PersonOut, RecognizeOut, SessionCreated, SessionOut
from facegate.api.uploads import image_body, one_image, read_images
from facegate.service.enrolment import MixedIdentities
from facegate.service.pipeline import FrameOptions
from facegate.service.sessions import SessionNotFound, VisitorSession
from facegate.store.records import DEFAULT_COLLECTION, PersonRecord

router = APIRouter(prefix="/v1/sessions", tags=["sessions"])
session_header = APIKeyHeader(
    name="X-Session-Token", auto_error=False, description="a visitor session's token: `fgs_...`"
)
SessionId = Annotated[str, Path(min_length=1, max_length=40, description="the session's id")]
CONFLICT = {409: {"description": "Conflict: the base holds templates of another model"}}


async def visitor(
    request: Request,
    session_id: SessionId,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    api_key: Annotated[str | None, Depends(header_key)],
    token: Annotated[str | None, Depends(session_header)],
) -> VisitorSession:
    """The session named in the path, if the token is its own (and the API key may recognise in its base)."""
    key = await check_key(request.app, credentials.credentials if credentials else api_key, "recognize")
    try:
        session = await run_in_threadpool(runtime_of(request).sessions.resolve, session_id, token or "")
    except SessionNotFound as exc:
        raise ApiError(exc.message, code=exc.code, status=404) from None
    check_collection(key, session.base)
    return session


Visitor = Annotated[VisitorSession, Depends(visitor)]


def _own(record: PersonRecord) -> PersonOut:
    """A session's person (chips are served to administrators only, so no thumbnail)."""
    return PersonOut.of(record).model_copy(update={"thumbnail_url": None})


@router.post(
    "", response_model=SessionCreated, status_code=201, dependencies=[Depends(require("recognize"))], responses=CONFLICT
)
def create_session(request: Request, collection: Collection = DEFAULT_COLLECTION) -> SessionCreated:
    """Start a visitor session over a base collection; keep the ``token``: it is shown once."""
    created = runtime_of(request).sessions.create(collection)
    return SessionCreated(**SessionOut.of(created.session).model_dump(), token=created.token)


@router.get("/{session_id}", response_model=SessionOut)
def get_session(session: Visitor) -> SessionOut:
    """The session (each call to it extends it)."""
    return SessionOut.of(session)


@router.delete("/{session_id}", status_code=204)
def end_session(request: Request, session: Visitor) -> Response:
    """End the session now: everyone enrolled in it is erased with their templates and chips."""
    runtime_of(request).sessions.erase(session.id)
    return Response(status_code=204)


@router.get("/{session_id}/people", response_model=PeoplePage)
def list_session_people(
    request: Request,
    session: Visitor,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> PeoplePage:
    """The people enrolled in this session (the base's are not listed)."""
    records, total = runtime_of(request).people.list(session.collection, offset=offset, limit=limit, name_contains="")
    return PeoplePage(items=[_own(r) for r in records], total=total, offset=offset, limit=limit)


@router.post(
    "/{session_id}/people",
    response_model=FacesAdded,
    status_code=201,
    responses=CONFLICT,
    openapi_extra=image_body(fields=("images",), many=True),
)
async def enrol_in_session(
    request: Request,
    session: Visitor,
    name: Annotated[str, Query(min_length=1, max_length=200, description="the person's name in this session")],
) -> FacesAdded | JSONResponse:
    """Enrol the largest face of each image as ``name`` in this session only (added to them if the name is
    taken in the session); 422 ``mixed_identities`` when the faces are not one person."""
    runtime = runtime_of(request)
    if not name.strip():
        raise ApiError("a person needs a name", code="invalid_name", status=422)
    uploads = await read_images(request, ("images",), runtime.settings.limits, max_files=MAX_ENROL_FILES)
    if not uploads["images"]:
        raise ApiError("no image was sent as 'images'", code="image_missing", status=422)
    found = await runtime.scheduler.run(runtime.enrolment.faces, uploads["images"])
    try:
        enrolled = await run_in_threadpool(runtime.enrolment.enrol, name, found, session.collection)
    except MixedIdentities as exc:
        return mixed_identities(request, exc)
    out = FacesAdded.of(enrolled)
    return out.model_copy(update={"person": _own(enrolled.person)})


@router.delete("/{session_id}/people/{person_id}", status_code=204)
def delete_session_person(
    request: Request, session: Visitor, person_id: Annotated[str, Path(min_length=1, max_length=40)]
) -> Response:
    """Erase one person of this session with their templates and chips."""
    runtime_of(request).people.delete(person_id, session.collection)
    return Response(status_code=204)


@router.post(
    "/{session_id}/recognize",
    response_model=RecognizeOut,
    responses=CONFLICT,
    openapi_extra=image_body(fields=("image",), many=False),
)
async def recognize_in_session(
    request: Request,
    session: Visitor,
    threshold: Threshold = None,
    max_faces: MaxFaces = None,
    top_k: Annotated[int, Query(ge=0, le=20, description="also list the best K candidates per face")] = 0,
) -> RecognizeOut:
    """Every face in an image, decided against this session's people and its base's together."""
    runtime = runtime_of(request)
    image = one_image(await read_images(request, ("image",), runtime.settings.limits), "image")
    options = runtime.sessions.options(session, FrameOptions(threshold=threshold, max_faces=max_faces, top_k=top_k))
    result = await runtime.scheduler.run(runtime.recognition.recognize, image, options)
    request.app.state.metrics.count_decisions("http", result.statuses)
    return RecognizeOut.of(result, session.base, runtime.model_id)
