"""Enrolment: the largest face of each image -> templates of a new or existing person.

Every person's templates are written in one transaction and are searchable (in this
process) when a call returns. Enrolment detects thoroughly (tile by tile on large
photos), so small faces in big photos are found.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from facegate.core.errors import FacegateError
from facegate.service.indexes import IndexRegistry
from facegate.store.errors import StoreError
from facegate.store.records import NewTemplate, PersonRecord
from facegate.store.repository import Store
from facegate.vision.engine import FaceEngine
from facegate.vision.image import ImageSource, encode_jpeg
from facegate.vision.types import Face

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp"}
LOW_QUALITY = 0.3  # enrolment warns below this face quality score

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class EnrolFace:
    """The face taken from one image for enrolment, or why none was."""

    source: str
    face: Face | None
    error: FacegateError | None = None

    @property
    def low_quality(self) -> bool:
        return self.face is not None and self.face.quality is not None and self.face.quality.score < LOW_QUALITY


@dataclass(frozen=True)
class Enrolled:
    """What one enrolment did: the person (new or existing) and the templates it added."""

    person: PersonRecord
    created: bool
    added: int
    files: list[EnrolFace]


@dataclass(frozen=True)
class BatchReport:
    """What a batch (a folder or a ZIP) did, person by person."""

    people_created: int = 0
    people_updated: int = 0
    templates_added: int = 0
    skipped: int = 0  # images without a usable face
    already: int = 0  # images stored by an earlier, interrupted run


class Enrolment:
    """Enrol people from images: one, a batch grouped by person, or a folder of folders."""

    def __init__(self, store: Store, indexes: IndexRegistry, engine: FaceEngine, store_chips: bool) -> None:
        self.store = store
        self.indexes = indexes
        self.engine = engine
        self.store_chips = store_chips

    @property
    def model_id(self) -> str:
        return self.engine.model_id

    def faces(self, images: Iterable[tuple[str, ImageSource]]) -> list[EnrolFace]:
        """The largest face of each named image, or the error that image gave."""
        out = []
        for source, data in images:
            try:
                faces = self.engine.analyze(data, max_faces=1, keep_chips=True)
            except FacegateError as exc:
                out.append(EnrolFace(source, None, exc))
                continue
            if faces:
                out.append(EnrolFace(source, faces[0]))
            else:
                out.append(EnrolFace(source, None, FacegateError("no face found", code="no_face")))
        return out

    def templates(self, found: list[EnrolFace]) -> list[NewTemplate]:
        """Store-ready templates from the faces that were found."""
        return [
            NewTemplate(
                e.face.embedding,
                e.face.quality.score if e.face.quality else 1.0,
                e.source,
                encode_jpeg(e.face.chip) if self.store_chips and e.face.chip is not None else None,
            )
            for e in found
            if e.face is not None
        ]

    def enrol(self, name: str, found: list[EnrolFace], collection: str) -> Enrolled:
        """Add the faces to the person called ``name`` in a collection, creating them if new."""
        templates = self._usable(found)
        person, created = self._save(name, templates, collection)
        self.indexes.changed(collection)
        return Enrolled(self.store.get_person(person), created, len(templates), found)

    def add_faces(self, person_id: str, found: list[EnrolFace], collection: str) -> Enrolled:
        """Add the faces to an existing person of a collection."""
        self._person_in(person_id, collection)
        templates = self._usable(found)
        self.indexes.check_writable(collection)
        added = self.store.add_templates(person_id, templates, model_id=self.model_id)
        self.indexes.changed(collection)
        return Enrolled(self.store.get_person(person_id), False, added, found)

    def enrol_groups(self, groups: dict[str, list[EnrolFace]], collection: str) -> BatchReport:
        """Each person's faces in one transaction: new people are enrolled, existing ones get templates."""
        self._collection_exists(collection)
        created = updated = added = 0
        for name, found in groups.items():
            templates = self.templates(found)
            if not templates:
                continue
            _, new = self._save(name, templates, collection)
            created, updated, added = created + new, updated + (not new), added + len(templates)
        self.indexes.changed(collection)
        skipped = sum(e.face is None for found in groups.values() for e in found)
        return BatchReport(created, updated, added, skipped)

    def import_folder(self, directory: Path, collection: str, progress: Progress | None = None) -> BatchReport:
        """Enrol everyone in a folder with one sub-folder of photos per person (its name names them).

        Each person is written in one transaction and photos already stored for them are
        skipped, so an interrupted import is finished by running it again.
        """
        if not directory.is_dir():
            raise FacegateError(f"{directory} is not a directory", code="not_a_directory")
        self._collection_exists(collection)
        people = {
            d.name: sorted(p for p in d.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            for d in sorted(directory.iterdir())
            if d.is_dir() and not d.name.startswith((".", "_"))
        }
        total = sum(len(v) for v in people.values())
        done = created = updated = added = skipped = already = 0
        for name, images in people.items():
            person = self.store.find_by_name(name, collection)
            stored = self.store.template_sources(person.id, self.model_id) if person else set()
            todo = [p for p in images if str(p) not in stored]
            already += len(images) - len(todo)
            found = []
            for image in todo:
                found += self.faces([(str(image), image)])
                done += 1
                if progress:
                    progress(done + already, total)
            templates = self.templates(found)
            skipped += len(found) - len(templates)
            if templates:
                _, new = self._save(name, templates, collection)
                created, updated, added = created + new, updated + (not new), added + len(templates)
        self.indexes.changed(collection)
        return BatchReport(created, updated, added, skipped, already)

    # ----------------------------------------------------------------- helpers

    def _usable(self, found: list[EnrolFace]) -> list[NewTemplate]:
        templates = self.templates(found)
        if not templates:
            raise FacegateError("no usable face in any image; nothing was added", code="no_face")
        return templates

    def _save(self, name: str, templates: list[NewTemplate], collection: str) -> tuple[str, bool]:
        """Templates to the person called ``name`` (created if new); returns their id and whether they are new."""
        self.indexes.check_writable(collection)
        person = self.store.find_by_name(name, collection)
        if person is not None:
            self.store.add_templates(person.id, templates, model_id=self.model_id)
            return person.id, False
        created = self.store.enroll(name, templates, model_id=self.model_id, collection=collection)
        return created.id, True

    def _person_in(self, person_id: str, collection: str) -> PersonRecord:
        record = self.store.get_person(person_id)
        if record.collection != collection:
            raise StoreError(f"no person with id {person_id!r} in collection {collection!r}", code="person_not_found")
        return record

    def _collection_exists(self, collection: str) -> None:
        if collection not in self.store.collections():
            raise StoreError(f"no collection named {collection!r}", code="collection_not_found")
