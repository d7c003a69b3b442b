"""Collections, people and their templates: reads and writes that keep collections isolated.

Every write is one store transaction and is searchable in this process before the call
returns (the live index of its collection is refreshed).
"""

from __future__ import annotations

from facegate.service.indexes import IndexRegistry
from facegate.store.errors import StoreError
from facegate.store.records import Person, PersonRecord, TemplateRecord
from facegate.store.repository import Store


class People:
    """The admin use cases: collections, people, templates."""

    def __init__(self, store: Store, indexes: IndexRegistry) -> None:
        self.store = store
        self.indexes = indexes

    # ----------------------------------------------------------------- collections

    def collections(self) -> list[str]:
        return self.store.collections()

    def get_collection(self, name: str) -> str:
        """The collection's name; ``collection_not_found`` when there is none."""
        return self.store.require_collection(name)

    def create_collection(self, name: str) -> str:
        self.store.create_collection(name)
        return name.strip()

    def rename_collection(self, name: str, new_name: str) -> str:
        self.store.rename_collection(name, new_name)
        self.indexes.forget(name)
        self.indexes.forget(new_name)
        return new_name.strip()

    def delete_collection(self, name: str) -> int:
        """Erase a collection with everyone in it; returns how many people went."""
        removed = self.store.delete_collection(name)
        self.indexes.forget(name)
        return removed

    # ----------------------------------------------------------------- people

    def list(
        self, collection: str, *, offset: int = 0, limit: int = 50, name_contains: str = ""
    ) -> tuple[list[PersonRecord], int]:
        return self.store.list_people(collection, offset=offset, limit=limit, name_contains=name_contains)

    def everyone(self, collection: str) -> list[tuple[Person, int]]:
        """Everyone in a collection with their number of templates, by name."""
        return self.store.people(self.get_collection(collection))

    def get(self, person_id: str, collection: str) -> PersonRecord:
        """The person, who must belong to ``collection`` (``person_not_found`` otherwise)."""
        return self.store.get_person(person_id, collection)

    def by_name(self, name: str, collection: str) -> PersonRecord:
        person = self.store.find_by_name(name, collection)
        if person is None:
            raise StoreError(f"no person named {name!r} in collection {collection!r}", code="person_not_found")
        return self.store.get_person(person.id)

    def by_reference(self, reference: str, collection: str) -> PersonRecord:
        """The person enrolled with this external reference (stored as a keyed hash)."""
        person = self.store.find_by_external_ref(reference, collection)
        if person is None:
            raise StoreError("no person has this reference", code="person_not_found")
        return self.store.get_person(person.id)

    def create(
        self, name: str, collection: str, *, metadata: dict | None = None, external_ref: str | None = None
    ) -> PersonRecord:
        """A person without faces yet."""
        person = self.store.create_person(name, collection=collection, metadata=metadata, external_ref=external_ref)
        self.indexes.changed(collection)
        return self.store.get_person(person.id)

    def update(
        self,
        person_id: str,
        collection: str,
        *,
        name: str | None = None,
        metadata: dict | None = None,
        external_ref: str | None = None,
    ) -> PersonRecord:
        """Rename, replace metadata or change the external reference ("" clears it)."""
        self.get(person_id, collection)
        record = self.store.update_person(person_id, name=name, metadata=metadata, external_ref=external_ref)
        self.indexes.changed(collection)
        return record

    def delete(self, person_id: str, collection: str) -> int:
        """Erase a person with every template and chip; returns how many templates went."""
        self.get(person_id, collection)
        removed = self.store.delete_person(person_id)
        self.indexes.changed(collection)
        return removed

    # ----------------------------------------------------------------- templates

    def templates(self, person_id: str, collection: str) -> list[TemplateRecord]:
        self.get(person_id, collection)
        return self.store.templates(person_id)

    def chip(self, template_id: str, collection: str) -> bytes:
        """A template's stored aligned-face JPEG; ``not_found`` when chips were not stored."""
        self._owner(template_id, collection)
        chip = self.store.template_chip(template_id)
        if not chip:
            raise StoreError("this template has no stored chip", code="not_found")
        return chip

    def delete_template(self, template_id: str, collection: str) -> None:
        self._owner(template_id, collection)
        self.store.remove_template(template_id)
        self.indexes.changed(collection)

    def move_template(self, template_id: str, to_person_id: str, collection: str) -> TemplateRecord:
        """Move a template to another person of the same collection (fixes a wrong enrolment)."""
        self._owner(template_id, collection)
        self.get(to_person_id, collection)
        self.store.move_templates([template_id], to_person_id)
        self.indexes.changed(collection)
        return next(t for t in self.store.templates(to_person_id) if t.id == template_id)

    def _owner(self, template_id: str, collection: str) -> str:
        """The id of the person owning a template of ``collection`` (``template_not_found`` otherwise)."""
        owner = self.store.template_owner(template_id)
        if owner is None or owner[1] != collection:
            raise StoreError(
                f"no template with id {template_id!r} in collection {collection!r}", code="template_not_found"
            )
        return owner[0]
