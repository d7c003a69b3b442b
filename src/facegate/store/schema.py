"""Database schema (SQLAlchemy 2): collections, people and their face templates.

Embeddings are stored as little-endian float32 bytes with their model id and dimension,
so templates of another embedding model can live beside them (and be recomputed from
the stored chip when the model changes).
"""

from __future__ import annotations

import time

from sqlalchemy import (
    JSON,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def _now() -> float:
    return time.time()


class Base(DeclarativeBase):
    pass


class CollectionRow(Base):
    """An isolated gallery; every install has a ``default`` one."""

    __tablename__ = "collections"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True, nullable=False)
    created_at: Mapped[float] = mapped_column(Float, default=_now, nullable=False)
    # bumped by every write to the collection's people or templates (see service.indexes)
    version: Mapped[int] = mapped_column(Integer, default=0, server_default="0", nullable=False)


class ChangeRow(Base):
    """Which person a collection version changed (``person_id`` None: reload the whole collection)."""

    __tablename__ = "collection_changes"
    __table_args__ = (Index("ix_collection_changes_version", "collection_id", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    collection_id: Mapped[int] = mapped_column(ForeignKey("collections.id", ondelete="CASCADE"), nullable=False)
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    person_id: Mapped[str | None] = mapped_column(String(40), nullable=True)  # a person's public id


class PersonRow(Base):
    """An enrolled person. ``public_id`` is the stable opaque id shown to clients."""

    __tablename__ = "people"
    __table_args__ = (
        UniqueConstraint("collection_id", "name", name="uq_people_collection_name"),
        Index("ix_people_external_ref", "collection_id", "external_ref_hash"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    public_id: Mapped[str] = mapped_column(String(40), unique=True, nullable=False)
    collection_id: Mapped[int] = mapped_column(ForeignKey("collections.id", ondelete="CASCADE"), nullable=False)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    meta: Mapped[dict] = mapped_column("metadata", JSON, default=dict, nullable=False)
    # keyed hash (HMAC-SHA256) of an external reference such as an e-mail; never the clear value
    external_ref_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # id of the key of that hash (store.refkeys); None: the constant of installs before 0007
    ref_key_id: Mapped[str | None] = mapped_column(String(16), nullable=True)
    created_at: Mapped[float] = mapped_column(Float, default=_now, nullable=False)
    updated_at: Mapped[float] = mapped_column(Float, default=_now, onupdate=_now, nullable=False)

    templates: Mapped[list[TemplateRow]] = relationship(
        back_populates="person", cascade="all, delete-orphan", passive_deletes=True
    )


class TemplateRow(Base):
    """One face template: an embedding, where it came from, and optionally the aligned chip."""

    __tablename__ = "templates"
    __table_args__ = (
        Index("ix_templates_person", "person_id"),
        Index("ix_templates_model", "model_id"),
        Index("ix_templates_origin", "origin_id"),
        # a person holds one template per image (content hash) and model: re-sending a photo adds nothing
        Index("ux_templates_person_image", "person_id", "content_hash", "model_id", unique=True),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    public_id: Mapped[str] = mapped_column(String(40), unique=True, nullable=False)
    person_id: Mapped[int] = mapped_column(ForeignKey("people.id", ondelete="CASCADE"), nullable=False)
    model_id: Mapped[str] = mapped_column(String(100), nullable=False)
    dim: Mapped[int] = mapped_column(Integer, nullable=False)
    embedding: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)
    quality: Mapped[float] = mapped_column(Float, default=1.0, nullable=False)
    source: Mapped[str] = mapped_column(String(500), default="", nullable=False)
    chip_jpeg: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    # public id of the template this one was recomputed from (facegate reembed), if any
    origin_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    # SHA-256 (hex) of the image file the template was made from; None for templates stored before 0006
    content_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # the quality class of the face it was made from (facegate.gallery.openset); None before 0013: "ok"
    quality_class: Mapped[str | None] = mapped_column(String(16), nullable=True)
    created_at: Mapped[float] = mapped_column(Float, default=_now, nullable=False)

    person: Mapped[PersonRow] = relationship(back_populates="templates")


class ApiKeyRow(Base):
    """An API key of the service. Only a SHA-256 of the secret is kept; ``scopes`` is space-separated."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    public_id: Mapped[str] = mapped_column(String(40), unique=True, nullable=False)
    name: Mapped[str] = mapped_column(String(200), nullable=False)
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    scopes: Mapped[str] = mapped_column(String(200), nullable=False)
    created_at: Mapped[float] = mapped_column(Float, default=_now, nullable=False)
    last_used_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    revoked_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    collections: Mapped[list | None] = mapped_column(JSON, nullable=True)  # None: every collection


class CameraRow(Base):
    """A camera that facegate runs by itself: where to read it, what to decide against, how often.

    ``url`` may carry credentials: it is never returned by the store's records in clear
    (``store.records.Camera.url`` is the redacted form; ``CameraStore.source_url`` reads it).
    ``lease_owner``/``lease_until``: the worker process running it (``service.cameras``).
    """

    __tablename__ = "cameras"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    public_id: Mapped[str] = mapped_column(String(40), unique=True, nullable=False)
    name: Mapped[str] = mapped_column(String(200), unique=True, nullable=False)
    url: Mapped[str] = mapped_column(String(2000), nullable=False)
    collection_id: Mapped[int] = mapped_column(ForeignKey("collections.id"), nullable=False)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True, nullable=False)
    fps: Mapped[float] = mapped_column(Float, nullable=False)
    cooldown_s: Mapped[float] = mapped_column(Float, nullable=False)
    min_face_px: Mapped[int] = mapped_column(Integer, nullable=False)
    created_at: Mapped[float] = mapped_column(Float, default=_now, nullable=False)
    # set by CameraStore.update only: a lease renewal is not a change of the camera
    updated_at: Mapped[float] = mapped_column(Float, default=_now, nullable=False)
    lease_owner: Mapped[str | None] = mapped_column(String(200), nullable=True)
    lease_until: Mapped[float | None] = mapped_column(Float, nullable=True)


class CameraStatusRow(Base):
    """What the process running a camera last reported about it (written about once a second)."""

    __tablename__ = "camera_status"

    camera_id: Mapped[int] = mapped_column(ForeignKey("cameras.id", ondelete="CASCADE"), primary_key=True)
    worker: Mapped[str] = mapped_column(String(200), nullable=False)
    state: Mapped[str] = mapped_column(String(20), nullable=False)
    error_code: Mapped[str | None] = mapped_column(String(60), nullable=True)
    error_detail: Mapped[str | None] = mapped_column(String(500), nullable=True)
    stats: Mapped[dict] = mapped_column(JSON, default=dict, nullable=False)
    latest: Mapped[dict] = mapped_column(JSON, default=dict, nullable=False)
    updated_at: Mapped[float] = mapped_column(Float, default=_now, nullable=False)


class CameraWorkerRow(Base):
    """A process that runs cameras, alive until its last claim's lease ends (workers alive share the cameras)."""

    __tablename__ = "camera_workers"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    alive_until: Mapped[float] = mapped_column(Float, nullable=False)  # its last claim plus its lease


class VideoJobRow(Base):
    """A video file to analyse, its progress and, once done, its timeline (``result``, JSON)."""

    __tablename__ = "video_jobs"
    __table_args__ = (Index("ix_video_jobs_state", "state"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    public_id: Mapped[str] = mapped_column(String(40), unique=True, nullable=False)
    name: Mapped[str] = mapped_column(String(255), nullable=False)  # the uploaded file's name
    collection_id: Mapped[int] = mapped_column(ForeignKey("collections.id", ondelete="CASCADE"), nullable=False)
    path: Mapped[str] = mapped_column(String(1000), nullable=False)
    options: Mapped[dict] = mapped_column(JSON, default=dict, nullable=False)
    state: Mapped[str] = mapped_column(String(20), nullable=False)  # queued running done failed cancelled
    progress: Mapped[float] = mapped_column(Float, default=0.0, nullable=False)
    processing_fps: Mapped[float | None] = mapped_column(Float, nullable=True)
    eta_s: Mapped[float | None] = mapped_column(Float, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    error_code: Mapped[str | None] = mapped_column(String(60), nullable=True)
    error_detail: Mapped[str | None] = mapped_column(String(500), nullable=True)
    video: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    result: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    owner: Mapped[str | None] = mapped_column(String(200), nullable=True)
    lease_until: Mapped[float | None] = mapped_column(Float, nullable=True)
    created_at: Mapped[float] = mapped_column(Float, default=_now, nullable=False)
    started_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    finished_at: Mapped[float | None] = mapped_column(Float, nullable=True)


class EventRow(Base):
    """One event (``events.types.Event``); ``id`` sorts by time (the paging cursor of the history), ``seq``
    by writing (the cursor of a live feed: an event of a slower camera may be written after a newer one)."""

    __tablename__ = "events"
    __table_args__ = (
        Index("ix_events_ts", "ts"),
        Index("ix_events_person", "person_id", "ts"),
        Index("ix_events_source", "source", "ts"),
    )

    seq: Mapped[int] = mapped_column(Integer, primary_key=True)  # order of writing: what a live feed follows
    id: Mapped[str] = mapped_column(String(40), unique=True, nullable=False)
    ts: Mapped[float] = mapped_column(Float, nullable=False)
    kind: Mapped[str] = mapped_column(String(20), nullable=False)
    source: Mapped[str] = mapped_column(String(200), nullable=False)
    collection: Mapped[str | None] = mapped_column(String(200), nullable=True)
    track_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    person_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    confidence: Mapped[float | None] = mapped_column(Float, nullable=True)
    decision: Mapped[str | None] = mapped_column(String(10), nullable=True)
    box: Mapped[list | None] = mapped_column(JSON, nullable=True)
    detail: Mapped[str | None] = mapped_column(String(500), nullable=True)
    has_snapshot: Mapped[bool] = mapped_column(Boolean, default=False, server_default="0", nullable=False)


class EventSnapshotRow(Base):
    """The face of a recognized or unknown event, JPEG (kept ``events.snapshot_retention_days``)."""

    __tablename__ = "event_snapshots"

    event_id: Mapped[str] = mapped_column(ForeignKey("events.id", ondelete="CASCADE"), primary_key=True)
    jpeg: Mapped[bytes] = mapped_column(LargeBinary, nullable=False)


class WebhookRow(Base):
    """A receiver of events: URL, signing secret, and which events (None: every kind/source/collection)."""

    __tablename__ = "webhooks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    public_id: Mapped[str] = mapped_column(String(40), unique=True, nullable=False)
    url: Mapped[str] = mapped_column(String(2000), nullable=False)
    secret: Mapped[str] = mapped_column(String(200), nullable=False)
    kinds: Mapped[list | None] = mapped_column(JSON, nullable=True)
    sources: Mapped[list | None] = mapped_column(JSON, nullable=True)
    collections: Mapped[list | None] = mapped_column(JSON, nullable=True)
    enabled: Mapped[bool] = mapped_column(Boolean, default=True, nullable=False)
    created_at: Mapped[float] = mapped_column(Float, default=_now, nullable=False)


class DeliveryRow(Base):
    """One event to deliver to one webhook (the outbox): pending until delivered, dead after too many tries."""

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("webhook_id", "event_id", name="uq_webhook_deliveries_event"),
        Index("ix_webhook_deliveries_due", "state", "webhook_id", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    webhook_id: Mapped[int] = mapped_column(ForeignKey("webhooks.id", ondelete="CASCADE"), nullable=False)
    event_id: Mapped[str] = mapped_column(String(40), nullable=False)
    payload: Mapped[dict] = mapped_column(JSON, nullable=False)
    state: Mapped[str] = mapped_column(String(12), nullable=False)  # pending, delivered, dead
    attempts: Mapped[int] = mapped_column(Integer, default=0, nullable=False)
    next_attempt_at: Mapped[float] = mapped_column(Float, nullable=False)
    last_error: Mapped[str | None] = mapped_column(String(500), nullable=True)
    owner: Mapped[str | None] = mapped_column(String(200), nullable=True)
    lease_until: Mapped[float | None] = mapped_column(Float, nullable=True)
    created_at: Mapped[float] = mapped_column(Float, default=_now, nullable=False)
    delivered_at: Mapped[float | None] = mapped_column(Float, nullable=True)


class VisitorSessionRow(Base):
    """A visitor's session: a collection of its own searched together with a ``base`` collection.

    Only a SHA-256 of the token is kept. The row goes with its collection; a session whose base
    was deleted (``base_id`` None) is erased by the sweeper (``service.sessions``).
    """

    __tablename__ = "visitor_sessions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    public_id: Mapped[str] = mapped_column(String(40), unique=True, nullable=False)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    collection_id: Mapped[int] = mapped_column(
        ForeignKey("collections.id", ondelete="CASCADE"), unique=True, nullable=False
    )
    base_id: Mapped[int | None] = mapped_column(ForeignKey("collections.id", ondelete="SET NULL"), nullable=True)
    created_at: Mapped[float] = mapped_column(Float, default=_now, nullable=False)
    expires_at: Mapped[float] = mapped_column(Float, nullable=False, index=True)
