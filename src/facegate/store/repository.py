"""Store: the durable gallery. Every write is one transaction: all of it lands or none.

The in-memory :class:`~facegate.gallery.index.Gallery` used for search is built from the
store with :meth:`Store.load_gallery`.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

import numpy as np
from sqlalchemy import Engine, delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from facegate.gallery.index import Gallery, GalleryError, Person, Template, new_id, unit_embeddings
from facegate.store.schema import CollectionRow, PersonRow, TemplateRow

DEFAULT_COLLECTION = "default"


@dataclass(frozen=True)
class NewTemplate:
    """A template to store: a descriptor and, optionally, where it came from and its chip."""

    embedding: np.ndarray
    quality: float = 1.0
    source: str = ""
    chip_jpeg: bytes | None = None


def _encode(vector: np.ndarray, dim: int) -> bytes:
    """One embedding as the stored bytes: unit length, little-endian float32."""
    return unit_embeddings(vector, dim)[0].astype("<f4").tobytes()


class Store:
    """People and templates in a SQL database (SQLite or PostgreSQL), per collection."""

    def __init__(self, engine: Engine, ref_key: bytes = b"facegate") -> None:
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self._ref_key = ref_key

    # ----------------------------------------------------------------- helpers

    def transaction(self):
        """A session whose changes commit together when the ``with`` block ends (or none do)."""
        return self._sessions.begin()

    def external_ref_hash(self, reference: str) -> str:
        """The keyed hash stored in place of an external reference (e.g. an e-mail)."""
        normalised = reference.strip().lower().encode()
        return hmac.new(self._ref_key, normalised, hashlib.sha256).hexdigest()

    def collection_row(self, session: Session, name: str) -> CollectionRow:
        """The named collection; ``default`` is created on first use, others must exist."""
        row = session.scalar(select(CollectionRow).where(CollectionRow.name == name))
        if row is None:
            if name != DEFAULT_COLLECTION:
                raise GalleryError(f"no collection named {name!r}", code="collection_not_found")
            try:  # the migration creates it; this only runs if someone removed it
                with session.begin_nested():
                    row = CollectionRow(name=name)
                    session.add(row)
            except IntegrityError:  # another writer made it first
                row = session.scalar(select(CollectionRow).where(CollectionRow.name == name))
        return row

    @staticmethod
    def _person(session: Session, public_id: str) -> PersonRow:
        row = session.scalar(select(PersonRow).where(PersonRow.public_id == public_id))
        if row is None:
            raise GalleryError(f"no person with id {public_id!r}", code="person_not_found")
        return row

    @staticmethod
    def bump_version(session: Session, collection_id: int) -> None:
        """Count a change to a collection, in the writing transaction (readers poll it)."""
        session.execute(
            update(CollectionRow).where(CollectionRow.id == collection_id).values(version=CollectionRow.version + 1)
        )

    def version(self, collection: str = DEFAULT_COLLECTION) -> int | None:
        """The collection's change counter (None if it does not exist)."""
        with self.engine.connect() as conn:
            return conn.scalar(select(CollectionRow.version).where(CollectionRow.name == collection))

    # ----------------------------------------------------------------- collections

    def create_collection(self, name: str) -> None:
        """Create an (empty) collection; its name must be new."""
        name = name.strip()
        if not name:
            raise GalleryError("a collection needs a name", code="invalid_name")
        try:
            with self._sessions.begin() as session:
                session.add(CollectionRow(name=name))
        except IntegrityError:
            raise GalleryError(f"a collection named {name!r} exists already", code="duplicate_name") from None

    def collections(self) -> list[str]:
        with self._sessions() as session:
            return list(session.scalars(select(CollectionRow.name).order_by(CollectionRow.name)))

    # ----------------------------------------------------------------- people

    def enroll(
        self,
        name: str,
        templates: list[NewTemplate],
        *,
        model_id: str,
        dim: int = 128,
        collection: str = DEFAULT_COLLECTION,
        metadata: dict | None = None,
        external_ref: str | None = None,
    ) -> Person:
        """Create a person with their templates in one transaction (all or nothing)."""
        name = name.strip()
        if not name:
            raise GalleryError("a person needs a non-empty name", code="invalid_name")
        if not templates:
            raise GalleryError("enrolment needs at least one face template", code="no_templates")
        encoded = [_encode(t.embedding, dim) for t in templates]  # validate before writing
        try:
            with self._sessions.begin() as session:
                coll = self.collection_row(session, collection)
                person = PersonRow(
                    public_id=new_id("p"),
                    collection_id=coll.id,
                    name=name,
                    meta=dict(metadata or {}),
                    external_ref_hash=self.external_ref_hash(external_ref) if external_ref else None,
                )
                session.add(person)
                session.flush()
                for t, blob in zip(templates, encoded, strict=True):
                    session.add(self._template_row(person.id, t, blob, model_id, dim))
                self.bump_version(session, coll.id)
                return Person(person.public_id, person.name, person.created_at, dict(person.meta))
        except IntegrityError:
            raise GalleryError(f"a person named {name!r} exists already", code="duplicate_name") from None

    @staticmethod
    def _template_row(person_id: int, t: NewTemplate, blob: bytes, model_id: str, dim: int) -> TemplateRow:
        return TemplateRow(
            public_id=new_id("t"),
            person_id=person_id,
            model_id=model_id,
            dim=dim,
            embedding=blob,
            quality=float(t.quality),
            source=t.source[:500],
            chip_jpeg=t.chip_jpeg,
        )

    def add_templates(self, person_id: str, templates: list[NewTemplate], *, model_id: str, dim: int = 128) -> int:
        """Add templates to an existing person (all or nothing); returns how many."""
        encoded = [_encode(t.embedding, dim) for t in templates]
        with self._sessions.begin() as session:
            person = self._person(session, person_id)
            for t, blob in zip(templates, encoded, strict=True):
                session.add(self._template_row(person.id, t, blob, model_id, dim))
            self.bump_version(session, person.collection_id)
        return len(templates)

    def rename(self, person_id: str, name: str) -> None:
        """Give a person a new display name, unique in their collection."""
        name = name.strip()
        if not name:
            raise GalleryError("a person needs a non-empty name", code="invalid_name")
        try:
            with self._sessions.begin() as session:
                person = self._person(session, person_id)
                person.name = name
                self.bump_version(session, person.collection_id)
        except IntegrityError:
            raise GalleryError(f"a person named {name!r} exists already", code="duplicate_name") from None

    def delete_person(self, person_id: str) -> int:
        """Erase a person with every template and chip; returns how many templates went."""
        with self._sessions.begin() as session:
            person = self._person(session, person_id)
            count = session.scalar(select(func.count()).where(TemplateRow.person_id == person.id)) or 0
            session.execute(delete(TemplateRow).where(TemplateRow.person_id == person.id))
            session.delete(person)
            self.bump_version(session, person.collection_id)
        return int(count)

    def remove_template(self, template_id: str) -> None:
        """Delete one template (and its chip)."""
        with self._sessions.begin() as session:
            row = session.execute(
                select(TemplateRow.id, PersonRow.collection_id)
                .join(PersonRow)
                .where(TemplateRow.public_id == template_id)
            ).first()
            if row is None:
                raise GalleryError(f"no template with id {template_id!r}", code="template_not_found")
            session.execute(delete(TemplateRow).where(TemplateRow.id == row.id))
            self.bump_version(session, row.collection_id)

    def move_templates(self, template_ids: list[str], to_person_id: str) -> int:
        """Move templates to another person of the same collection (fixes a wrong enrolment)."""
        with self._sessions.begin() as session:
            target = self._person(session, to_person_id)
            rows = session.execute(
                select(TemplateRow, PersonRow.collection_id)
                .join(PersonRow)
                .where(TemplateRow.public_id.in_(template_ids))
            ).all()
            found = {t.public_id for t, _ in rows}
            missing = [t for t in template_ids if t not in found]
            if missing:
                raise GalleryError(f"no template with id {missing[0]!r}", code="template_not_found")
            if any(coll != target.collection_id for _, coll in rows):
                raise GalleryError("templates can only move within their collection", code="cross_collection")
            for template, _ in rows:
                template.person_id = target.id
            self.bump_version(session, target.collection_id)
        return len(rows)

    def find_by_external_ref(self, reference: str, collection: str = DEFAULT_COLLECTION) -> Person | None:
        """The person enrolled with this external reference, looked up by its keyed hash."""
        with self._sessions() as session:
            row = session.scalar(
                select(PersonRow)
                .join(CollectionRow)
                .where(
                    CollectionRow.name == collection, PersonRow.external_ref_hash == self.external_ref_hash(reference)
                )
            )
            return Person(row.public_id, row.name, row.created_at, dict(row.meta)) if row else None

    def find_by_name(self, name: str, collection: str = DEFAULT_COLLECTION) -> Person | None:
        """The person with exactly this display name in a collection, if any."""
        with self._sessions() as session:
            row = session.scalar(
                select(PersonRow).join(CollectionRow).where(CollectionRow.name == collection, PersonRow.name == name)
            )
            return Person(row.public_id, row.name, row.created_at, dict(row.meta)) if row else None

    def template_sources(self, person_id: str, model_id: str) -> set[str]:
        """Where a person's templates of one model came from (what an interrupted import stored)."""
        with self._sessions() as session:
            person = self._person(session, person_id)
            return set(
                session.scalars(
                    select(TemplateRow.source).where(
                        TemplateRow.person_id == person.id, TemplateRow.model_id == model_id
                    )
                )
            )

    def people(self, collection: str = DEFAULT_COLLECTION) -> list[tuple[Person, int]]:
        """Everyone in a collection with their number of templates, by name."""
        with self._sessions() as session:
            rows = session.execute(
                select(PersonRow, func.count(TemplateRow.id))
                .join(CollectionRow)
                .outerjoin(TemplateRow)
                .where(CollectionRow.name == collection)
                .group_by(PersonRow.id)
                .order_by(PersonRow.name)
            ).all()
            return [(Person(p.public_id, p.name, p.created_at, dict(p.meta)), int(n)) for p, n in rows]

    def template_counts(self, collection: str = DEFAULT_COLLECTION) -> dict[str, int]:
        """How many templates each embedding model has in a collection."""
        with self._sessions() as session:
            rows = session.execute(
                select(TemplateRow.model_id, func.count())
                .join(PersonRow)
                .join(CollectionRow)
                .where(CollectionRow.name == collection)
                .group_by(TemplateRow.model_id)
            ).all()
            return {model: int(n) for model, n in rows}

    # ----------------------------------------------------------------- index

    def load_gallery(self, model_id: str, collection: str = DEFAULT_COLLECTION, dim: int = 128) -> Gallery:
        """Build the in-memory search index of one collection for one embedding model."""
        gallery = Gallery(model_id, dim)
        with self._sessions() as session:
            coll = session.scalar(select(CollectionRow).where(CollectionRow.name == collection))
            if coll is None:
                return gallery
            people = session.execute(
                select(PersonRow.id, PersonRow.public_id, PersonRow.name, PersonRow.created_at, PersonRow.meta).where(
                    PersonRow.collection_id == coll.id
                )
            ).all()
            rows = session.execute(
                select(
                    TemplateRow.public_id,
                    TemplateRow.person_id,
                    TemplateRow.embedding,
                    TemplateRow.quality,
                    TemplateRow.source,
                )
                .join(PersonRow)
                .where(PersonRow.collection_id == coll.id, TemplateRow.model_id == model_id, TemplateRow.dim == dim)
                .order_by(TemplateRow.id)
            ).all()
        public = {pid: public_id for pid, public_id, *_ in people}
        matrix = (
            np.frombuffer(b"".join(r.embedding for r in rows), dtype="<f4").reshape(len(rows), dim)
            if rows
            else np.zeros((0, dim), np.float32)
        )
        gallery.restore(
            [Person(public_id, name, created, dict(meta or {})) for _, public_id, name, created, meta in people],
            [Template(r.public_id, public[r.person_id], matrix[i], r.quality, r.source) for i, r in enumerate(rows)],
        )
        gallery.prepare_search()
        return gallery
