"""Store: the durable gallery. Every write is one transaction: all of it lands or none.

It returns its own records (``facegate.store.records``); the search index is built from
:meth:`Store.index_rows` by the service tier.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
from sqlalchemy import Engine, delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from facegate.core.ids import new_id
from facegate.core.vectors import unit_embeddings
from facegate.store.errors import StoreError
from facegate.store.records import (
    DEFAULT_COLLECTION,
    DerivedTemplate,
    IndexRows,
    NewTemplate,
    Person,
    PersonRecord,
    StoredChip,
    TemplateRecord,
    TemplatesAdded,
    check_metadata,
)
from facegate.store.refkeys import RefKeys
from facegate.store.schema import CameraRow, ChangeRow, CollectionRow, PersonRow, TemplateRow

# The change log keeps this many versions per collection (pruned every PRUNE_EVERY writes);
# an index older than half of it reloads the whole collection instead.
CHANGE_LOG_KEEP = 100_000
CHANGE_LOG_PRUNE_EVERY = 10_000
# a write of templates that collides with a concurrent one (same new name, same image) is tried again this often
WRITE_ATTEMPTS = 5


# what the search index needs of a person and of a template
_PERSON_COLUMNS = (PersonRow.id, PersonRow.public_id, PersonRow.name, PersonRow.created_at, PersonRow.meta)
_TEMPLATE_COLUMNS = (
    TemplateRow.public_id,
    TemplateRow.person_id,
    TemplateRow.embedding,
    TemplateRow.quality,
    TemplateRow.source,
    TemplateRow.quality_class,
)


def _templates_query(collection_id: int, model_id: str, dim: int, *where):
    """A collection's templates of one model, oldest first, with what the index needs of each."""
    return (
        select(*_TEMPLATE_COLUMNS)
        .join(PersonRow)
        .where(PersonRow.collection_id == collection_id, TemplateRow.model_id == model_id, TemplateRow.dim == dim)
        .where(*where)
        .order_by(TemplateRow.id)
    )


def _index_rows(people: list, templates: list, dim: int) -> IndexRows:
    """Rows of ``_PERSON_COLUMNS`` and ``_TEMPLATE_COLUMNS`` as people and template columns."""
    owner_of = {row_id: public_id for row_id, public_id, *_ in people}
    persons = [Person(public_id, name, created, dict(meta or {})) for _, public_id, name, created, meta in people]
    if not templates:
        return IndexRows.empty(persons, dim)
    matrix = np.frombuffer(b"".join(r.embedding for r in templates), dtype="<f4").reshape(len(templates), dim)
    return IndexRows(
        persons,
        [r.public_id for r in templates],
        [owner_of[r.person_id] for r in templates],
        [r.quality for r in templates],
        [r.source for r in templates],
        matrix.astype(np.float32),  # a writable copy
        [r.quality_class or "ok" for r in templates],
    )


def _as_record(row: PersonRow, collection: str, template_count: int, thumbnail_id: str | None) -> PersonRecord:
    return PersonRecord(
        row.public_id,
        row.name,
        collection,
        dict(row.meta or {}),
        template_count,
        row.created_at,
        row.updated_at,
        thumbnail_id,
    )


def _as_person(row: PersonRow) -> Person:
    return Person(row.public_id, row.name, row.created_at, dict(row.meta or {}))


def _encode(vector: np.ndarray, dim: int) -> bytes:
    """One embedding as the stored bytes: unit length, little-endian float32."""
    return unit_embeddings(vector, dim)[0].astype("<f4").tobytes()


class Store:
    """People and templates in a SQL database (SQLite or PostgreSQL), per collection."""

    def __init__(self, engine: Engine, ref_keys: RefKeys | None = None) -> None:
        """``ref_keys``: the install's reference keys (``RefKeys.open(file)``); without, a random key held
        in memory only (tests, tools), so references written then do not resolve in another process."""
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self.ref_keys = ref_keys or RefKeys.generate()

    # ----------------------------------------------------------------- helpers

    def transaction(self):
        """A session whose changes commit together when the ``with`` block ends (or none do)."""
        return self._sessions.begin()

    def external_ref_hash(self, reference: str) -> str:
        """The keyed hash stored in place of an external reference (e.g. an e-mail), under the current key."""
        return self.ref_keys.hash(reference)[1]

    def _set_reference(self, person: PersonRow, reference: str | None) -> None:
        """Store a reference's keyed hash and its key id on a person (None or blank clears it)."""
        if reference and reference.strip():
            person.ref_key_id, person.external_ref_hash = self.ref_keys.hash(reference)
        else:
            person.ref_key_id = person.external_ref_hash = None

    def reference_key_ids(self) -> set[str]:
        """The ids of the keys people's external references are hashed with (``store.refkeys``)."""
        with self._sessions() as session:
            rows = session.scalars(select(PersonRow.ref_key_id).where(PersonRow.ref_key_id.is_not(None)).distinct())
            return set(rows)

    def scrub(self) -> None:
        """After an erase on SQLite: copy the WAL into the file and truncate it, so the erased rows' old pages
        (secure_delete zeroes them in the file) do not stay readable in ``-wal``. Best effort: a reader still
        inside an older snapshot makes SQLite stop short; the next erase (or checkpoint) finishes it."""
        if self.engine.dialect.name != "sqlite":
            return
        with self.engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")

    def collection_row(self, session: Session, name: str) -> CollectionRow:
        """The named collection; ``default`` is created on first use, others must exist."""
        row = session.scalar(select(CollectionRow).where(CollectionRow.name == name))
        if row is None:
            if name != DEFAULT_COLLECTION:
                raise StoreError(f"no collection named {name!r}", code="collection_not_found")
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
            raise StoreError(f"no person with id {public_id!r}", code="person_not_found")
        return row

    @staticmethod
    def bump_version(session: Session, collection_id: int, person_ids: Iterable[str] | None = None) -> None:
        """Count a change to a collection and log whom it touched, in the writing transaction.

        Readers poll the counter (see ``service.indexes``) and reload only the logged people;
        ``person_ids=None`` asks them to reload the whole collection.
        """
        session.execute(
            update(CollectionRow).where(CollectionRow.id == collection_id).values(version=CollectionRow.version + 1)
        )
        version = session.scalar(select(CollectionRow.version).where(CollectionRow.id == collection_id))
        people = sorted(set(person_ids or ())) or [None]  # None (or nobody named): everyone
        session.add_all(ChangeRow(collection_id=collection_id, version=version, person_id=p) for p in people)
        if version % CHANGE_LOG_PRUNE_EVERY == 0:  # keep the log bounded
            session.execute(
                delete(ChangeRow).where(
                    ChangeRow.collection_id == collection_id, ChangeRow.version <= version - CHANGE_LOG_KEEP
                )
            )

    def changes_since(self, collection: str, version: int | None) -> tuple[int | None, set[str] | None]:
        """The collection's version now, and the people changed after ``version`` up to it.

        The set is None when the whole collection must be reloaded (no earlier version, a
        change that touched everyone, or one older than the log keeps).
        """
        with self.engine.connect() as conn:
            row = conn.execute(
                select(CollectionRow.id, CollectionRow.version).where(CollectionRow.name == collection)
            ).first()
            if row is None:
                return None, None
            if version is None or version > row.version or row.version - version > CHANGE_LOG_KEEP // 2:
                return row.version, None
            if version == row.version:
                return row.version, set()
            changed = set(
                conn.scalars(
                    select(ChangeRow.person_id).where(
                        ChangeRow.collection_id == row.id, ChangeRow.version > version, ChangeRow.version <= row.version
                    )
                )
            )
        return row.version, (None if None in changed else changed)

    def load_people(self, model_id: str, collection: str, person_ids: set[str], dim: int = 128) -> IndexRows:
        """Those of ``person_ids`` that exist in the collection, and all their templates of one model."""
        people, rows = [], []
        wanted = sorted(person_ids)
        with self._sessions() as session:
            coll = session.scalar(select(CollectionRow.id).where(CollectionRow.name == collection))
            for start in range(0, len(wanted), 500):
                chunk = wanted[start : start + 500]
                named = PersonRow.public_id.in_(chunk)
                people += session.execute(select(*_PERSON_COLUMNS).where(PersonRow.collection_id == coll, named)).all()
                rows += session.execute(_templates_query(coll, model_id, dim, named)).all()
        return _index_rows(people, rows, dim)

    def version(self, collection: str = DEFAULT_COLLECTION) -> int | None:
        """The collection's change counter (None if it does not exist)."""
        with self.engine.connect() as conn:
            return conn.scalar(select(CollectionRow.version).where(CollectionRow.name == collection))

    # ----------------------------------------------------------------- collections

    def create_collection(self, name: str) -> None:
        """Create an (empty) collection; its name must be new."""
        name = name.strip()
        if not name:
            raise StoreError("a collection needs a name", code="invalid_name")
        try:
            with self._sessions.begin() as session:
                session.add(CollectionRow(name=name))
        except IntegrityError:
            raise StoreError(f"a collection named {name!r} exists already", code="duplicate_name") from None

    def collections(self) -> list[str]:
        with self._sessions() as session:
            return list(session.scalars(select(CollectionRow.name).order_by(CollectionRow.name)))

    def rename_collection(self, name: str, new_name: str) -> None:
        """Give a collection a new (unused) name; the ``default`` collection keeps its name."""
        new_name = new_name.strip()
        if not new_name:
            raise StoreError("a collection needs a name", code="invalid_name")
        if name == DEFAULT_COLLECTION:
            raise StoreError("the default collection cannot be renamed", code="collection_protected")
        try:
            with self._sessions.begin() as session:
                coll = session.scalar(select(CollectionRow).where(CollectionRow.name == name))
                if coll is None:
                    raise StoreError(f"no collection named {name!r}", code="collection_not_found")
                coll.name = new_name
                session.flush()
                self.bump_version(session, coll.id)
        except IntegrityError:
            raise StoreError(f"a collection named {new_name!r} exists already", code="duplicate_name") from None

    def delete_collection(self, name: str) -> int:
        """Erase a collection with its people, templates and chips; returns how many people went.

        The ``default`` collection cannot be deleted.
        """
        if name == DEFAULT_COLLECTION:
            raise StoreError("the default collection cannot be deleted", code="collection_protected")
        with self._sessions.begin() as session:
            coll = session.scalar(select(CollectionRow).where(CollectionRow.name == name))
            if coll is None:
                raise StoreError(f"no collection named {name!r}", code="collection_not_found")
            cameras = session.scalars(select(CameraRow.name).where(CameraRow.collection_id == coll.id)).all()
            if cameras:
                raise StoreError(
                    f"cameras decide against collection {name!r}: {', '.join(sorted(cameras))}; "
                    "move or remove them first",
                    code="collection_in_use",
                )
            people = select(PersonRow.id).where(PersonRow.collection_id == coll.id)
            count = session.scalar(select(func.count()).select_from(people.subquery())) or 0
            session.execute(delete(TemplateRow).where(TemplateRow.person_id.in_(people)))
            session.execute(delete(PersonRow).where(PersonRow.collection_id == coll.id))
            session.execute(delete(ChangeRow).where(ChangeRow.collection_id == coll.id))
            session.delete(coll)
        self.scrub()
        return int(count)

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
        if not templates:
            raise StoreError("enrolment needs at least one face template", code="no_templates")
        return self.create_person(
            name,
            templates,
            model_id=model_id,
            dim=dim,
            collection=collection,
            metadata=metadata,
            external_ref=external_ref,
        )

    def create_person(
        self,
        name: str,
        templates: list[NewTemplate] = (),
        *,
        model_id: str = "",
        dim: int = 128,
        collection: str = DEFAULT_COLLECTION,
        metadata: dict | None = None,
        external_ref: str | None = None,
    ) -> Person:
        """Create a person, with no templates yet or with some (one transaction either way)."""
        name = name.strip()
        if not name:
            raise StoreError("a person needs a non-empty name", code="invalid_name")
        metadata = check_metadata(metadata or {})
        encoded = [_encode(t.embedding, dim) for t in templates]  # validate before writing
        try:
            with self._sessions.begin() as session:
                coll = self.collection_row(session, collection)
                person = PersonRow(public_id=new_id("p"), collection_id=coll.id, name=name, meta=metadata)
                self._set_reference(person, external_ref)
                session.add(person)
                session.flush()
                self._store_new(session, person, templates, encoded, model_id, dim)
                self.bump_version(session, coll.id, [person.public_id])
                return Person(person.public_id, person.name, person.created_at, dict(person.meta))
        except IntegrityError:
            raise StoreError(f"a person named {name!r} exists already", code="duplicate_name") from None

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
            content_hash=t.content_hash,
            quality_class=t.quality_class,
        )

    def _store_new(
        self,
        session: Session,
        person: PersonRow,
        templates: list[NewTemplate],
        encoded: list[bytes],
        model_id: str,
        dim: int,
    ) -> tuple[list[int], list[int]]:
        """Add the templates whose image the person does not hold for this model; (added, already) positions."""
        wanted = sorted({t.content_hash for t in templates if t.content_hash})
        held: set[str] = set()
        for start in range(0, len(wanted), 500):
            held.update(
                session.scalars(
                    select(TemplateRow.content_hash).where(
                        TemplateRow.person_id == person.id,
                        TemplateRow.model_id == model_id,
                        TemplateRow.content_hash.in_(wanted[start : start + 500]),
                    )
                )
            )
        added, already = [], []
        for i, (t, blob) in enumerate(zip(templates, encoded, strict=True)):
            if t.content_hash is not None and t.content_hash in held:
                already.append(i)
                continue
            if t.content_hash is not None:
                held.add(t.content_hash)
            session.add(self._template_row(person.id, t, blob, model_id, dim))
            added.append(i)
        return added, already

    def _write_templates(self, write: Callable[[Session], TemplatesAdded], what: str) -> TemplatesAdded:
        """Run a templates write in its own transaction; a collision with a concurrent writer (the unique
        person name, or an image the person got meanwhile) rolls it back and runs it again."""
        for _ in range(WRITE_ATTEMPTS):
            try:
                with self._sessions.begin() as session:
                    result = write(session)
            except IntegrityError:
                continue  # the other writer has committed: the next attempt sees its rows
            return result
        raise StoreError(f"could not write {what}: concurrent writes kept colliding", code="write_conflict")

    def add_templates(self, person_id: str, templates: list[NewTemplate], *, model_id: str, dim: int = 128) -> int:
        """Add templates to an existing person (all or nothing); returns how many were new (see ``add_to_person``)."""
        return len(self.add_to_person(person_id, templates, model_id=model_id, dim=dim).added)

    def add_to_person(
        self, person_id: str, templates: list[NewTemplate], *, model_id: str, dim: int = 128
    ) -> TemplatesAdded:
        """Add templates to an existing person in one transaction, skipping images the person already holds."""
        encoded = [_encode(t.embedding, dim) for t in templates]

        def write(session: Session) -> TemplatesAdded:
            person = self._person(session, person_id)
            added, already = self._store_new(session, person, templates, encoded, model_id, dim)
            if added:
                self.bump_version(session, person.collection_id, [person.public_id])
            return TemplatesAdded(_as_person(person), False, tuple(added), tuple(already))

        return self._write_templates(write, f"person {person_id!r}")

    def add_to_named(
        self,
        name: str,
        templates: list[NewTemplate],
        *,
        model_id: str,
        dim: int = 128,
        collection: str = DEFAULT_COLLECTION,
    ) -> TemplatesAdded:
        """Add templates to the person called ``name`` in a collection, created if new; one transaction.

        Images the person already holds (same ``content_hash`` and model) are skipped. Writers
        racing to create the same person merge: the one that loses the name adds to the winner.
        """
        name = name.strip()
        if not name:
            raise StoreError("a person needs a non-empty name", code="invalid_name")
        if not templates:
            raise StoreError("enrolment needs at least one face template", code="no_templates")
        encoded = [_encode(t.embedding, dim) for t in templates]

        def write(session: Session) -> TemplatesAdded:
            coll = self.collection_row(session, collection)
            person = session.scalar(select(PersonRow).where(PersonRow.collection_id == coll.id, PersonRow.name == name))
            created = person is None
            if person is None:
                person = PersonRow(public_id=new_id("p"), collection_id=coll.id, name=name, meta={})
                session.add(person)
                session.flush()  # a concurrent creator of the same name makes this fail: then it is found
            added, already = self._store_new(session, person, templates, encoded, model_id, dim)
            if added:
                self.bump_version(session, coll.id, [person.public_id])
            return TemplatesAdded(_as_person(person), created, tuple(added), tuple(already))

        return self._write_templates(write, repr(name))

    def rename(self, person_id: str, name: str) -> None:
        """Give a person a new display name, unique in their collection."""
        name = name.strip()
        if not name:
            raise StoreError("a person needs a non-empty name", code="invalid_name")
        try:
            with self._sessions.begin() as session:
                person = self._person(session, person_id)
                person.name = name
                self.bump_version(session, person.collection_id, [person.public_id])
        except IntegrityError:
            raise StoreError(f"a person named {name!r} exists already", code="duplicate_name") from None

    def delete_person(self, person_id: str) -> int:
        """Erase a person with every template and chip; returns how many templates went.

        The change log keeps no trace of them: their entries go, and the erase is logged as a
        change to everyone (indexes reload the collection), never under their id. On SQLite the
        WAL is then checkpointed (see ``scrub``).
        """
        with self._sessions.begin() as session:
            person = self._person(session, person_id)
            count = session.scalar(select(func.count()).where(TemplateRow.person_id == person.id)) or 0
            session.execute(delete(TemplateRow).where(TemplateRow.person_id == person.id))
            session.execute(
                delete(ChangeRow).where(
                    ChangeRow.collection_id == person.collection_id, ChangeRow.person_id == person.public_id
                )
            )
            session.delete(person)
            self.bump_version(session, person.collection_id)
        self.scrub()
        return int(count)

    def remove_template(self, template_id: str) -> None:
        """Delete one template (and its chip)."""
        with self._sessions.begin() as session:
            row = session.execute(
                select(TemplateRow.id, PersonRow.collection_id, PersonRow.public_id)
                .join(PersonRow)
                .where(TemplateRow.public_id == template_id)
            ).first()
            if row is None:
                raise StoreError(f"no template with id {template_id!r}", code="template_not_found")
            session.execute(delete(TemplateRow).where(TemplateRow.id == row.id))
            self.bump_version(session, row.collection_id, [row.public_id])
        self.scrub()  # its chip

    def move_templates(self, template_ids: list[str], to_person_id: str) -> int:
        """Move templates to another person of the same collection (fixes a wrong enrolment).

        Refused (``already_enrolled``) when the target holds a moved template's image already.
        """
        try:
            return self._move_templates(template_ids, to_person_id)
        except IntegrityError:
            raise StoreError(
                "the target person holds the image of a template being moved already", code="already_enrolled"
            ) from None

    def _move_templates(self, template_ids: list[str], to_person_id: str) -> int:
        with self._sessions.begin() as session:
            target = self._person(session, to_person_id)
            rows = session.execute(
                select(TemplateRow, PersonRow.collection_id, PersonRow.public_id)
                .join(PersonRow)
                .where(TemplateRow.public_id.in_(template_ids))
            ).all()
            found = {t.public_id for t, _, _ in rows}
            missing = [t for t in template_ids if t not in found]
            if missing:
                raise StoreError(f"no template with id {missing[0]!r}", code="template_not_found")
            if any(coll != target.collection_id for _, coll, _ in rows):
                raise StoreError("templates can only move within their collection", code="cross_collection")
            for template, _, _ in rows:
                template.person_id = target.id
            session.flush()
            self.bump_version(session, target.collection_id, [target.public_id, *(owner for _, _, owner in rows)])
        return len(rows)

    def find_by_external_ref(self, reference: str, collection: str = DEFAULT_COLLECTION) -> Person | None:
        """The person enrolled with this external reference, looked up by its keyed hash."""
        candidates = self.ref_keys.candidates(reference)  # the hash under each known key
        with self._sessions() as session:
            rows = session.scalars(
                select(PersonRow)
                .join(CollectionRow)
                .where(
                    CollectionRow.name == collection,
                    PersonRow.external_ref_hash.in_([h for _, h in candidates]),
                )
                .order_by(PersonRow.id)
            ).all()
            pairs = set(candidates)
            row = next((r for r in rows if (r.ref_key_id, r.external_ref_hash) in pairs), None)
            return Person(row.public_id, row.name, row.created_at, dict(row.meta)) if row else None

    def find_by_name(self, name: str, collection: str = DEFAULT_COLLECTION) -> Person | None:
        """The person with exactly this display name in a collection, if any."""
        with self._sessions() as session:
            row = session.scalar(
                select(PersonRow).join(CollectionRow).where(CollectionRow.name == collection, PersonRow.name == name)
            )
            return Person(row.public_id, row.name, row.created_at, dict(row.meta)) if row else None

    def _record(self, session: Session, row: PersonRow, collection: str | None = None) -> PersonRecord:
        count = session.scalar(select(func.count()).where(TemplateRow.person_id == row.id)) or 0
        if collection is None:
            collection = session.scalar(select(CollectionRow.name).where(CollectionRow.id == row.collection_id))
        return _as_record(row, collection, int(count), self._thumbnails(session, [row.id]).get(row.id))

    @staticmethod
    def _thumbnails(session: Session, person_ids: list[int]) -> dict[int, str]:
        """Each person's best-quality template that has a chip: person row id -> template public id."""
        rows = session.execute(
            select(TemplateRow.person_id, TemplateRow.public_id)
            .where(TemplateRow.person_id.in_(person_ids), TemplateRow.chip_jpeg.is_not(None))
            .order_by(TemplateRow.person_id, TemplateRow.quality.desc(), TemplateRow.id)
        ).all()
        best: dict[int, str] = {}
        for person_id, public_id in rows:
            best.setdefault(person_id, public_id)
        return best

    def get_person(self, person_id: str, collection: str | None = None) -> PersonRecord:
        """One person by public id, who must belong to ``collection`` when one is named (collections are
        isolated); ``StoreError(code='person_not_found')`` otherwise."""
        with self._sessions() as session:
            record = self._record(session, self._person(session, person_id))
        if collection is not None and record.collection != collection:
            raise StoreError(f"no person with id {person_id!r} in collection {collection!r}", code="person_not_found")
        return record

    def require_collection(self, name: str) -> str:
        """The collection's name; ``StoreError(code='collection_not_found')`` when there is none."""
        if name not in self.collections():
            raise StoreError(f"no collection named {name!r}", code="collection_not_found")
        return name

    def list_people(
        self, collection: str = DEFAULT_COLLECTION, *, offset: int = 0, limit: int = 50, name_contains: str = ""
    ) -> tuple[list[PersonRecord], int]:
        """A page of a collection's people by name (optionally whose name contains a text), and the total."""
        with self._sessions() as session:
            coll = session.scalar(select(CollectionRow).where(CollectionRow.name == collection))
            if coll is None:
                raise StoreError(f"no collection named {collection!r}", code="collection_not_found")
            where = [PersonRow.collection_id == coll.id]
            if name_contains:
                escaped = name_contains.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
                where.append(func.lower(PersonRow.name).like(f"%{escaped}%", escape="\\"))
            total = session.scalar(select(func.count()).select_from(PersonRow).where(*where)) or 0
            rows = session.execute(
                select(PersonRow, func.count(TemplateRow.id))
                .outerjoin(TemplateRow)
                .where(*where)
                .group_by(PersonRow.id)
                .order_by(PersonRow.name, PersonRow.id)
                .offset(offset)
                .limit(limit)
            ).all()
            thumbnails = self._thumbnails(session, [p.id for p, _ in rows])
            return [_as_record(p, collection, int(n), thumbnails.get(p.id)) for p, n in rows], int(total)

    def update_person(
        self,
        person_id: str,
        *,
        name: str | None = None,
        metadata: dict | None = None,
        external_ref: str | None = None,
    ) -> PersonRecord:
        """Change a person's name, metadata (replaced whole) or external reference ("" clears it)."""
        if metadata is not None:
            metadata = check_metadata(metadata)
        try:
            with self._sessions.begin() as session:
                person = self._person(session, person_id)
                if name is not None:
                    name = name.strip()
                    if not name:
                        raise StoreError("a person needs a non-empty name", code="invalid_name")
                    person.name = name
                if metadata is not None:
                    person.meta = dict(metadata)
                if external_ref is not None:
                    self._set_reference(person, external_ref)
                session.flush()
                self.bump_version(session, person.collection_id, [person.public_id])
                return self._record(session, person)
        except IntegrityError:
            raise StoreError(f"a person named {name!r} exists already", code="duplicate_name") from None

    def templates(self, person_id: str) -> list[TemplateRecord]:
        """A person's templates, oldest first."""
        with self._sessions() as session:
            person = self._person(session, person_id)
            rows = session.execute(
                select(
                    TemplateRow.public_id,
                    TemplateRow.model_id,
                    TemplateRow.quality,
                    TemplateRow.source,
                    TemplateRow.chip_jpeg.is_not(None),
                    TemplateRow.created_at,
                )
                .where(TemplateRow.person_id == person.id)
                .order_by(TemplateRow.id)
            ).all()
            return [TemplateRecord(r[0], person_id, r[1], r[2], r[3], bool(r[4]), r[5]) for r in rows]

    def template_owner(self, template_id: str) -> tuple[str, str] | None:
        """(person id, collection name) of a template, or None if there is no such template."""
        with self._sessions() as session:
            row = session.execute(
                select(PersonRow.public_id, CollectionRow.name)
                .select_from(TemplateRow)
                .join(PersonRow)
                .join(CollectionRow)
                .where(TemplateRow.public_id == template_id)
            ).first()
            return (row[0], row[1]) if row else None

    def template_chip(self, template_id: str) -> bytes | None:
        """The stored aligned-face JPEG of a template (None when chips are not stored)."""
        with self._sessions() as session:
            row = session.execute(select(TemplateRow.chip_jpeg).where(TemplateRow.public_id == template_id)).first()
            if row is None:
                raise StoreError(f"no template with id {template_id!r}", code="template_not_found")
            return row[0]

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

    def content_hashes(self, person_id: str, model_id: str) -> set[str]:
        """The images (SHA-256 hex) a person's templates of one model were made from, where recorded."""
        with self._sessions() as session:
            person = self._person(session, person_id)
            return set(
                session.scalars(
                    select(TemplateRow.content_hash).where(
                        TemplateRow.person_id == person.id,
                        TemplateRow.model_id == model_id,
                        TemplateRow.content_hash.is_not(None),
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

    def index_rows(self, model_id: str, collection: str = DEFAULT_COLLECTION, dim: int = 128) -> IndexRows:
        """Everyone in a collection and all their templates of one embedding model (what an index needs)."""
        with self._sessions() as session:
            coll = session.scalar(select(CollectionRow).where(CollectionRow.name == collection))
            if coll is None:
                return IndexRows.empty([], dim)
            people = session.execute(select(*_PERSON_COLUMNS).where(PersonRow.collection_id == coll.id)).all()
            rows = session.execute(_templates_query(coll.id, model_id, dim)).all()
        return _index_rows(people, rows, dim)

    # ----------------------------------------------------------------- re-embedding

    def reembed_pending(self, model_id: str, collection: str = DEFAULT_COLLECTION) -> list[str]:
        """Public ids of templates with a chip, of another model, not yet recomputed for ``model_id``."""
        with self.engine.connect() as conn:
            done = select(TemplateRow.origin_id).where(
                TemplateRow.model_id == model_id, TemplateRow.origin_id.is_not(None)
            )
            return list(
                conn.scalars(
                    select(TemplateRow.public_id)
                    .join(PersonRow)
                    .join(CollectionRow)
                    .where(
                        CollectionRow.name == collection,
                        TemplateRow.model_id != model_id,
                        TemplateRow.chip_jpeg.is_not(None),
                        TemplateRow.public_id.not_in(done),
                    )
                    .order_by(TemplateRow.id)
                )
            )

    def chips(self, template_ids: list[str]) -> list[StoredChip]:
        """The stored chips of these templates (those that have one), oldest first."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(TemplateRow.public_id, TemplateRow.chip_jpeg)
                .where(TemplateRow.public_id.in_(template_ids), TemplateRow.chip_jpeg.is_not(None))
                .order_by(TemplateRow.id)
            ).all()
        return [StoredChip(public_id, chip) for public_id, chip in rows]

    def add_derived_templates(self, model_id: str, derived: list[DerivedTemplate]) -> int:
        """Store templates recomputed from others (one transaction): each keeps its origin's person,
        quality, source and chip, and records the origin, so a re-run skips it."""
        if not derived:
            return 0
        dim = int(np.asarray(derived[0].embedding).shape[-1])
        encoded = {d.origin_id: _encode(d.embedding, dim) for d in derived}
        with self._sessions.begin() as session:
            origins = session.scalars(select(TemplateRow).where(TemplateRow.public_id.in_(list(encoded)))).all()
            hashes = sorted({row.content_hash for row in origins if row.content_hash})
            held = {  # (person, image) pairs that have a template of this model already
                (person_id, content_hash)
                for person_id, content_hash in session.execute(
                    select(TemplateRow.person_id, TemplateRow.content_hash).where(
                        TemplateRow.model_id == model_id, TemplateRow.content_hash.in_(hashes)
                    )
                )
            }
            changed: dict[int, set[str]] = {}  # collection -> people given new templates
            for row in origins:
                image = (row.person_id, row.content_hash)
                content_hash = row.content_hash if row.content_hash and image not in held else None
                held.add(image)
                session.add(
                    TemplateRow(
                        public_id=new_id("t"),
                        person_id=row.person_id,
                        model_id=model_id,
                        dim=dim,
                        embedding=encoded[row.public_id],
                        quality=row.quality,
                        source=row.source,
                        chip_jpeg=row.chip_jpeg,
                        origin_id=row.public_id,
                        content_hash=content_hash,
                        quality_class=row.quality_class,
                    )
                )
                changed.setdefault(row.person.collection_id, set()).add(row.person.public_id)
            for collection_id, people in changed.items():
                self.bump_version(session, collection_id, people)
        return len(origins)
