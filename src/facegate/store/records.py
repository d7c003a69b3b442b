"""What the store returns: plain records (no gallery or vision types; ``Person`` is core's)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

import numpy as np

from facegate.core.person import Person
from facegate.store.errors import StoreError

DEFAULT_COLLECTION = "default"
# a person's metadata: JSON of finite numbers, at most this long (UTF-8, compact) and this deeply nested
MAX_METADATA_BYTES = 16 * 1024
MAX_METADATA_DEPTH = 8


def check_metadata(metadata: object) -> dict:
    """A person's metadata as stored: a JSON object of finite numbers, at most ``MAX_METADATA_BYTES``
    serialised and ``MAX_METADATA_DEPTH`` levels of objects and arrays (the outer object is one);
    otherwise ``StoreError(code='invalid_metadata')``. Returns a plain copy."""

    def refuse(why: str) -> StoreError:
        return StoreError(f"metadata {why}", code="invalid_metadata")

    if not isinstance(metadata, dict):
        raise refuse("must be a JSON object")
    pending: list[tuple[object, int]] = [(metadata, 1)]
    while pending:  # depth and finiteness first, without recursion
        value, depth = pending.pop()
        if isinstance(value, dict | list | tuple):
            if depth > MAX_METADATA_DEPTH:
                raise refuse(f"nests more than {MAX_METADATA_DEPTH} levels")
            items = value.items() if isinstance(value, dict) else enumerate(value)
            for key, item in items:
                if isinstance(value, dict) and not isinstance(key, str):
                    raise refuse("keys must be strings")
                pending.append((item, depth + 1))
        elif isinstance(value, float) and not math.isfinite(value):
            raise refuse("must not hold NaN or infinity")
        elif not (value is None or isinstance(value, str | int | float)):
            raise refuse(f"holds a {type(value).__name__}, which is not JSON")
    text = json.dumps(metadata, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    if len(text.encode()) > MAX_METADATA_BYTES:
        raise refuse(f"is {len(text.encode())} bytes as JSON; the limit is {MAX_METADATA_BYTES}")
    return json.loads(text)


@dataclass(frozen=True)
class NewTemplate:
    """A template to store: a descriptor and, optionally, where it came from, its chip and its image's hash.

    ``content_hash`` (SHA-256 hex of the image file) makes the write idempotent: a person
    keeps one template per image and model, whoever sends it again.
    """

    embedding: np.ndarray
    quality: float = 1.0
    source: str = ""
    chip_jpeg: bytes | None = None
    content_hash: str | None = None
    quality_class: str = "ok"  # facegate.gallery.openset.quality_class of the face


@dataclass(frozen=True)
class TemplatesAdded:
    """What one write of templates did: the person, whether it created them, and which templates it stored.

    ``added`` and ``already`` are positions in the list written; ``already`` are images the
    person had (same content hash and model), or repeats within the list, and were not stored.
    """

    person: Person
    created: bool
    added: tuple[int, ...]
    already: tuple[int, ...] = ()


@dataclass(frozen=True)
class PersonRecord:
    """A stored person as clients see it: public id, name, metadata and template count."""

    id: str
    name: str
    collection: str
    metadata: dict
    template_count: int
    created_at: float
    updated_at: float
    thumbnail_id: str | None = None  # the best-quality template that has a stored chip


@dataclass(frozen=True)
class TemplateRecord:
    """A stored template's description (not its embedding)."""

    id: str
    person_id: str
    model_id: str
    quality: float
    source: str
    has_chip: bool
    created_at: float


@dataclass(frozen=True)
class IndexRows:
    """A collection's people and their templates of one model, column by column.

    Row ``i`` of ``matrix`` is template ``ids[i]`` of person ``owners[i]`` (a public id
    among ``people``); the service builds the search index from this.
    """

    people: list[Person]
    ids: list[str]
    owners: list[str]
    qualities: list[float]
    sources: list[str]
    matrix: np.ndarray
    classes: list[str]  # each template's quality class

    @classmethod
    def empty(cls, people: list[Person], dim: int) -> IndexRows:
        return cls(people, [], [], [], [], np.zeros((0, dim), np.float32), [])


@dataclass(frozen=True)
class StoredChip:
    """A stored template's aligned face JPEG, for re-embedding with another model."""

    template_id: str
    chip_jpeg: bytes


@dataclass(frozen=True)
class DerivedTemplate:
    """A template recomputed from a stored one (its chip) by another embedding model."""

    origin_id: str
    embedding: np.ndarray


@dataclass(frozen=True)
class ApiKey:
    """An API key's public description (the secret is not part of it)."""

    id: str
    name: str
    scopes: tuple[str, ...]
    created_at: float
    last_used_at: float | None
    revoked_at: float | None
    collections: tuple[str, ...] = ()  # the collections it may use; empty: every one

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def reaches(self, collection: str) -> bool:
        """Whether this key may use ``collection``."""
        return not self.collections or collection in self.collections

    def allows(self, scope: str) -> bool:
        """``admin`` may do everything; other scopes only their own calls."""
        return "admin" in self.scopes or scope in self.scopes


@dataclass(frozen=True)
class Camera:
    """A camera definition as shown to clients: ``url`` is redacted (no password)."""

    id: str
    name: str
    url: str
    collection: str
    enabled: bool
    fps: float  # frames processed per second at most
    cooldown_s: float  # a recognised person becomes an event again after this long
    min_face_px: int  # faces smaller than this (shorter side) are not recognised
    created_at: float
    updated_at: float


@dataclass(frozen=True)
class CameraStatus:
    """What the process running a camera last reported (``state``: connecting, live, down, stopped)."""

    camera_id: str
    worker: str
    state: str
    error_code: str | None
    error_detail: str | None
    stats: dict
    latest: dict
    updated_at: float


MAX_FPS = 30.0
MAX_COOLDOWN_S = 24 * 3600.0
MAX_URL_LENGTH = 2000


@dataclass(frozen=True)
class CameraFields:
    """The settable fields of a camera (None: unchanged, in an update)."""

    name: str | None = None
    url: str | None = None
    collection: str | None = None
    enabled: bool | None = None
    fps: float | None = None
    cooldown_s: float | None = None
    min_face_px: int | None = None

    def check(self) -> None:
        """``StoreError(code='invalid_camera')`` for a value out of range."""

        def refuse(why: str) -> StoreError:
            return StoreError(why, code="invalid_camera")

        if self.name is not None and not 0 < len(self.name.strip()) <= 200:
            raise refuse("a camera needs a name of 1 to 200 characters")
        if self.url is not None and not 0 < len(self.url) <= MAX_URL_LENGTH:
            raise refuse(f"a camera URL has 1 to {MAX_URL_LENGTH} characters")
        if self.fps is not None and not (math.isfinite(self.fps) and 0 < self.fps <= MAX_FPS):
            raise refuse(f"fps must be in (0, {MAX_FPS:g}]")
        cooldown = self.cooldown_s
        if cooldown is not None and not (math.isfinite(cooldown) and 0 <= cooldown <= MAX_COOLDOWN_S):
            raise refuse(f"cooldown_s must be in [0, {MAX_COOLDOWN_S:g}]")
        if self.min_face_px is not None and not 0 <= self.min_face_px <= 4096:
            raise refuse("min_face_px must be in [0, 4096]")


@dataclass(frozen=True)
class VideoJob:
    """A video file being (or to be) analysed; ``result`` is the timeline once ``state`` is ``done``."""

    id: str
    name: str
    collection: str
    path: str
    options: dict
    state: str  # queued, running, done, failed, cancelled
    progress: float
    processing_fps: float | None
    eta_s: float | None
    attempts: int
    error_code: str | None
    error_detail: str | None
    video: dict | None
    created_at: float
    started_at: float | None
    finished_at: float | None

    @property
    def finished(self) -> bool:
        return self.state in ("done", "failed", "cancelled")


EVENT_FIELDS = (
    "id",
    "ts",
    "kind",
    "source",
    "collection",
    "track_id",
    "person_id",
    "name",
    "confidence",
    "decision",
    "box",
    "detail",
    "has_snapshot",
)


@dataclass(frozen=True)
class EventQuery:
    """Which events: a time range (Unix seconds), filters, and a cursor (the last id already seen)."""

    since: float | None = None
    until: float | None = None
    source: str | None = None
    person_id: str | None = None
    kind: str | None = None
    collection: str | None = None
    after: str | None = None  # ids sort by time: the next page starts after this one
    limit: int = 100


@dataclass(frozen=True)
class Webhook:
    """A webhook as shown to clients (the secret is shown once, when it is created)."""

    id: str
    url: str
    kinds: tuple[str, ...]  # empty: every kind
    sources: tuple[str, ...]
    collections: tuple[str, ...]
    enabled: bool
    created_at: float
    pending: int = 0
    delivered: int = 0
    dead: int = 0
    last_error: str | None = None

    def wants(self, event: dict) -> bool:
        """Whether an event (a dict of ``EVENT_FIELDS``) goes to this webhook."""
        return (
            self.enabled
            and (not self.kinds or event["kind"] in self.kinds)
            and (not self.sources or event["source"] in self.sources)
            and (not self.collections or event.get("collection") in self.collections)
        )


@dataclass(frozen=True)
class Delivery:
    """One event due at one webhook, with what the sender needs."""

    id: int
    webhook_id: str
    url: str
    secret: str
    event_id: str
    payload: dict
    attempts: int
