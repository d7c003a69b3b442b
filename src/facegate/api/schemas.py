"""Request and response bodies of the REST API (pydantic), and their builders from facegate's types."""

from __future__ import annotations

from typing import Literal
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field, field_validator

from facegate.gallery.decision import Decision, ScoredCandidate
from facegate.service.enrolment import ClosestPerson, EnrolCheck, EnrolFace, Enrolled, EnrolWarning, PairScore
from facegate.service.pipeline import FrameResult
from facegate.service.recognition import VerifyResult
from facegate.service.sessions import VisitorSession
from facegate.store.records import (
    MAX_METADATA_BYTES,
    MAX_METADATA_DEPTH,
    ApiKey,
    PersonRecord,
    TemplateRecord,
    check_metadata,
)
from facegate.stream.types import FusedDecision
from facegate.vision.types import Face

NAME = Field(min_length=1, max_length=200)


def chip_url(template_id: str, collection: str) -> str:
    """Where a template's face chip is served."""
    return f"/v1/faces/{template_id}/chip?collection={quote(collection)}"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ----------------------------------------------------------------- people


METADATA_DESCRIPTION = (
    f"any JSON object of finite numbers, at most {MAX_METADATA_BYTES} bytes as compact JSON and "
    f"{MAX_METADATA_DEPTH} levels deep (else 422 invalid_metadata)"
)


def _checked_metadata(value: dict | None) -> dict | None:
    """The store's own check, raised as its ``invalid_metadata`` error (422), not as a generic invalid body."""
    return None if value is None else check_metadata(value)


class PersonCreate(Strict):
    name: str = NAME
    metadata: dict = Field(default_factory=dict, description=METADATA_DESCRIPTION)
    external_ref: str | None = Field(
        default=None, max_length=500, description="e.g. an e-mail; stored only as a keyed hash"
    )

    _metadata = field_validator("metadata")(_checked_metadata)


class PersonUpdate(Strict):
    name: str | None = Field(default=None, min_length=1, max_length=200)
    metadata: dict | None = Field(default=None, description=METADATA_DESCRIPTION)
    external_ref: str | None = Field(default=None, max_length=500, description='"" removes it')

    _metadata = field_validator("metadata")(_checked_metadata)


class PersonOut(BaseModel):
    id: str
    name: str
    collection: str
    metadata: dict
    template_count: int
    created_at: float
    updated_at: float
    thumbnail_url: str | None = Field(description="the chip of the person's best template, when one is stored")

    @classmethod
    def of(cls, record: PersonRecord) -> PersonOut:
        fields = {k: v for k, v in record.__dict__.items() if k != "thumbnail_id"}
        thumbnail = record.thumbnail_id
        return cls(**fields, thumbnail_url=chip_url(thumbnail, record.collection) if thumbnail else None)


class PeoplePage(BaseModel):
    items: list[PersonOut]
    total: int
    offset: int
    limit: int


# ----------------------------------------------------------------- faces / templates


class TemplateOut(BaseModel):
    id: str
    person_id: str
    model_id: str
    quality: float
    source: str
    created_at: float
    chip_url: str | None = Field(description="the aligned face as a JPEG thumbnail, when chips are stored")

    @classmethod
    def of(cls, record: TemplateRecord, collection: str) -> TemplateOut:
        chip = chip_url(record.id, collection) if record.has_chip else None
        return cls(
            id=record.id,
            person_id=record.person_id,
            model_id=record.model_id,
            quality=round(record.quality, 4),
            source=record.source,
            created_at=record.created_at,
            chip_url=chip,
        )


class FileReport(BaseModel):
    source: str
    status: Literal["added", "skipped"]
    code: str | None = None
    detail: str | None = None
    quality: float | None = None


def file_reports(found: list[EnrolFace]) -> list[FileReport]:
    """One line per uploaded image: added (with its face quality) or skipped (with the reason)."""
    return [
        FileReport(source=e.source, status="added", quality=round(e.face.quality.score, 3) if e.face.quality else None)
        if e.face is not None
        else FileReport(source=e.source, status="skipped", code=e.error.code, detail=e.error.message)
        for e in found
    ]


class ClosestPersonOut(BaseModel):
    """The other enrolled person most like this one (best template to best template)."""

    person_id: str
    name: str
    similarity: float
    confusable: bool = Field(description="at or above the pairwise verify threshold: recognition could confuse them")

    @classmethod
    def of(cls, c: ClosestPerson) -> ClosestPersonOut:
        return cls(person_id=c.person_id, name=c.name, similarity=round(c.similarity, 4), confusable=c.confusable)


class EnrolWarningOut(BaseModel):
    code: str = Field(description="similar_person: another enrolled person could be confused with this one")
    detail: str
    person_id: str | None = None
    name: str | None = None
    similarity: float | None = None

    @classmethod
    def of(cls, w: EnrolWarning) -> EnrolWarningOut:
        similarity = None if w.similarity is None else round(w.similarity, 4)
        return cls(code=w.code, detail=w.detail, person_id=w.person_id, name=w.name, similarity=similarity)


class FacesAdded(BaseModel):
    person: PersonOut
    added: int
    files: list[FileReport]
    closest: ClosestPersonOut | None = Field(
        default=None, description="how distinct the person is: the closest other person of the collection"
    )
    threshold: float | None = Field(default=None, description="the pairwise verify threshold compared with")
    warnings: list[EnrolWarningOut] = Field(default_factory=list)

    @classmethod
    def of(cls, enrolled: Enrolled) -> FacesAdded:
        return cls(
            person=PersonOut.of(enrolled.person),
            added=enrolled.added,
            files=file_reports(enrolled.files),
            closest=ClosestPersonOut.of(enrolled.closest) if enrolled.closest else None,
            threshold=enrolled.threshold,
            warnings=[EnrolWarningOut.of(w) for w in enrolled.warnings],
        )


class PairOut(BaseModel):
    a: str
    b: str
    similarity: float
    same: bool = Field(description="the pairwise verification calls them the same person")

    @classmethod
    def of(cls, p: PairScore) -> PairOut:
        return cls(a=p.a, b=p.b, similarity=p.similarity, same=p.same)


class CheckedFile(BaseModel):
    source: str
    usable: bool
    code: str | None = Field(default=None, description="why not: no_face, multiple_faces, face_turned, ...")
    detail: str | None = None
    quality: float | None = None
    yaw: float | None = None


class EnrolCheckOut(BaseModel):
    """A dry run of an enrolment: would these photos be taken, and are they one person?"""

    one_person: bool = Field(description="false: an enrolment of these photos is refused (mixed_identities)")
    disagreeing: list[str] = Field(description="the photos outside the main group of one person")
    threshold: float = Field(description="the pairwise verify threshold")
    max_yaw: float = Field(description="degrees: a face turned further is refused (face_turned)")
    files: list[CheckedFile]
    pairs: list[PairOut] = Field(description="every pair of usable photos, in upload order")

    @classmethod
    def of(cls, check: EnrolCheck) -> EnrolCheckOut:
        files = [
            CheckedFile(
                source=e.source,
                usable=True,
                quality=round(e.face.quality.score, 3) if e.face.quality else None,
                yaw=round(e.face.quality.yaw, 1) if e.face.quality else None,
            )
            if e.face is not None
            else CheckedFile(source=e.source, usable=False, code=e.error.code, detail=e.error.message)
            for e in check.files
        ]
        identity = check.identity
        return cls(
            one_person=identity.one_person,
            disagreeing=list(identity.disagreeing),
            threshold=identity.threshold,
            max_yaw=check.max_yaw,
            files=files,
            pairs=[PairOut.of(p) for p in identity.pairs],
        )


class TemplateMove(Strict):
    to_person_id: str = Field(min_length=1, max_length=40)


class Base64Images(Strict):
    images: list[str] = Field(min_length=1, max_length=100, description="base64-encoded images")


class Base64Image(Strict):
    image: str = Field(min_length=1, description="a base64-encoded image")


class Base64Pair(Strict):
    image_a: str = Field(min_length=1)
    image_b: str | None = Field(default=None, description="or person_id")
    person_id: str | None = None


# ----------------------------------------------------------------- recognition


class BoxOut(BaseModel):
    x1: float
    y1: float
    x2: float
    y2: float


class QualityOut(BaseModel):
    score: float
    reasons: list[str]
    size: float
    sharpness: float
    brightness: float
    yaw: float
    pitch: float
    roll: float
    colour: float | None = Field(None, description="mean chroma of the face; 0 for a greyscale picture")
    blockiness: float | None = Field(None, description="JPEG block artefacts around the face (1: none)")


class CandidateOut(BaseModel):
    person_id: str
    name: str
    similarity: float
    confidence: float

    @classmethod
    def of(cls, c: ScoredCandidate) -> CandidateOut:
        return cls(
            person_id=c.person_id, name=c.name, similarity=round(c.similarity, 4), confidence=round(c.confidence, 4)
        )


class DecisionOut(BaseModel):
    status: Literal["match", "unknown"]
    person_id: str | None
    name: str | None
    similarity: float
    confidence: float = Field(
        description="calibrated probability that the name (or, if unknown, the best candidate) is right"
    )
    reason: str | None = Field(
        None,
        description="why unknown: no_match, low_margin (two people too close), too_small, blurry, turned, "
        "tilted_up_down, too_dark, too_bright, greyscale, compressed, no_one_enrolled",
    )
    threshold: float | None = Field(None, description="the similarity this face needed for a name in this gallery")

    @classmethod
    def of(cls, d: Decision) -> DecisionOut:
        return cls(
            status=d.status,
            person_id=d.person_id,
            name=d.name,
            similarity=round(d.similarity, 4),
            confidence=round(d.confidence, 4),
            reason=d.reason,
            threshold=None if d.threshold is None else round(d.threshold, 4),
        )


class TrackDecisionOut(BaseModel):
    """A track's decision, fused over its frames (the stream and cameras report these)."""

    status: Literal["match", "unknown", "pending"]
    person_id: str | None
    name: str | None
    confidence: float
    reason: str | None = Field(
        description="why not a match: too_few_hits, tie, no_match, or the latest frame's reason "
        "(low_margin, too_small, blurry, turned, greyscale, compressed, ...)"
    )
    hits: int = Field(description="frames of this track that were embedded and decided")

    @classmethod
    def of(cls, fused: FusedDecision) -> TrackDecisionOut:
        return cls(
            status=fused.status,
            person_id=fused.person_id,
            name=fused.name,
            confidence=round(fused.confidence, 4),
            reason=fused.reason,
            hits=fused.hits,
        )


class FaceOut(BaseModel):
    box: BoxOut
    det_score: float
    landmarks: list[list[float]] = Field(description="dlib's 5 points (x, y): eye corners and nose base")
    quality: QualityOut | None
    decision: DecisionOut | None = None
    candidates: list[CandidateOut] | None = None

    @classmethod
    def of(cls, face: Face, decision: Decision | None = None) -> FaceOut:
        b = face.box.to_list()
        landmarks = (
            [] if face.landmarks is None else [[round(float(x), 1), round(float(y), 1)] for x, y in face.landmarks]
        )
        return cls(
            box=BoxOut(x1=b[0], y1=b[1], x2=b[2], y2=b[3]),
            det_score=round(face.det_score, 4),
            landmarks=landmarks,
            quality=QualityOut(**face.quality.to_dict()) if face.quality else None,
            decision=DecisionOut.of(decision) if decision else None,
            candidates=[CandidateOut.of(c) for c in decision.candidates] if decision and decision.candidates else None,
        )


class StreamFaceOut(FaceOut):
    """A face of a stream frame: also its track, and the track's decision fused over its frames."""

    track_id: int = Field(description="the same face keeps its id across the stream's frames")
    track: TrackDecisionOut = Field(description="the decision to show: fused over the track's frames")


class RecognizeOut(BaseModel):
    width: int
    height: int
    collection: str
    model_id: str
    threshold: float
    processing_ms: float
    faces: list[FaceOut]

    @classmethod
    def of(cls, r: FrameResult, collection: str, model_id: str) -> RecognizeOut:
        return cls(
            width=r.width,
            height=r.height,
            collection=collection,
            model_id=model_id,
            threshold=r.threshold,
            processing_ms=round(r.processing_ms, 2),
            faces=[FaceOut.of(f.face, f.decision) for f in r.faces],
        )


class DetectOut(BaseModel):
    width: int
    height: int
    faces: list[FaceOut]


class VerifyOut(BaseModel):
    same: bool
    similarity: float
    distance: float = Field(description="1 - cosine similarity")
    confidence: float
    threshold: float
    person_id: str | None = None

    @classmethod
    def of(cls, result: VerifyResult) -> VerifyOut:
        v = result.verification
        return cls(
            same=v.same,
            similarity=round(v.similarity, 4),
            distance=round(1.0 - v.similarity, 4),
            confidence=round(v.confidence, 4),
            threshold=v.threshold,
            person_id=result.person_id,
        )


# ----------------------------------------------------------------- collections, keys, system


COLLECTION_NAME = Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class CollectionCreate(Strict):
    name: str = COLLECTION_NAME


class CollectionRename(Strict):
    name: str = COLLECTION_NAME


class CollectionOut(BaseModel):
    name: str


class KeyCreate(Strict):
    name: str = NAME
    scopes: list[Literal["admin", "recognize"]] = Field(min_length=1, max_length=2)
    collections: list[str] = Field(
        default_factory=list, max_length=100, description="limit the key to these collections (empty: every one)"
    )


class KeyOut(BaseModel):
    id: str
    name: str
    scopes: list[str]
    collections: list[str] = Field(description="the collections it may use (empty: every one)")
    created_at: float
    last_used_at: float | None
    revoked_at: float | None

    @classmethod
    def of(cls, key: ApiKey) -> KeyOut:
        return cls(
            id=key.id,
            name=key.name,
            scopes=list(key.scopes),
            collections=list(key.collections),
            created_at=key.created_at,
            last_used_at=key.last_used_at,
            revoked_at=key.revoked_at,
        )


class KeyCreated(KeyOut):
    secret: str = Field(description="shown once; store it now")


class ZipReport(BaseModel):
    people_created: int
    people_updated: int
    templates_added: int
    files: list[FileReport]
    warnings: list[EnrolWarningOut] = Field(
        default_factory=list, description="similar_person: a person written could be confused with another"
    )


# ----------------------------------------------------------------- visitor sessions


class SessionOut(BaseModel):
    """A visitor session: its own people are searched together with the base collection's."""

    id: str
    base: str = Field(description="the collection searched together with the session's own people")
    created_at: float
    expires_at: float = Field(description="when it is erased unless used again (each use extends it)")

    @classmethod
    def of(cls, session: VisitorSession) -> SessionOut:
        return cls(id=session.id, base=session.base, created_at=session.created_at, expires_at=session.expires_at)


class SessionCreated(SessionOut):
    token: str = Field(description="the session's secret (shown once): send it as X-Session-Token")
