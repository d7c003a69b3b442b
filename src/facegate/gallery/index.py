"""In-memory gallery: people with several face templates each, and exact cosine search."""

from __future__ import annotations

import functools
import itertools
import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from facegate.core.errors import FacegateError
from facegate.core.ids import new_id
from facegate.core.person import Person
from facegate.core.vectors import unit_embeddings
from facegate.gallery.decision import Candidate
from facegate.gallery.openset import GalleryShape, PairShift
from facegate.gallery.quantized import QuantizedMatrix

# Below this many multiply-adds a search runs on one BLAS thread. OpenBLAS would split
# even a small product over its threads, which then busy-wait after the call and take the
# cores from the next frame's detector and embedder (bench/speed.py: a 5-face 640x480 frame
# took 67 ms with BLAS threads, 28 ms with one). Larger searches are memory-bound and do
# better on every BLAS thread.
SINGLE_THREAD_MACS = 4_000_000

# From this many templates searches shortlist by an int8 copy first (bench/store.py: at 100k
# 0.97 ms float32 vs 0.4 ms for the int8 product; below ~20k the float32 product is as fast).
QUANTIZED_MIN_TEMPLATES = 20_000


@functools.cache
def _blas_controller():
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def similarities(queries: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Cosine similarities (M, T) of unit-length queries (M, D) with templates (T, D)."""
    if queries.shape[0] * matrix.shape[0] * matrix.shape[1] >= SINGLE_THREAD_MACS:
        return queries @ matrix.T
    with _blas_controller().limit(limits=1, user_api="blas"):
        return queries @ matrix.T


class GalleryError(FacegateError):
    """A gallery operation was refused (unknown id, bad embedding, duplicate name)."""

    code = "gallery_error"


@dataclass(frozen=True)
class Template:
    """One face template of a person: a unit-length embedding and where it came from."""

    id: str
    person_id: str
    embedding: np.ndarray
    quality: float = 1.0
    source: str = ""
    quality_class: str = "ok"  # facegate.gallery.openset.quality_class of the face it was made from


@dataclass(frozen=True)
class TemplateRows:
    """Templates column by column: row ``i`` of ``matrix`` is template ``ids[i]`` of ``owners[i]``.

    A gallery keeps its templates this way (not as :class:`Template` objects) so that a
    million of them cost a few lists and one matrix, and a patch copies rows, not objects.
    """

    ids: list[str]
    owners: list[str]
    qualities: list[float]
    sources: list[str]
    matrix: np.ndarray
    classes: list[str]  # quality class of each template

    @classmethod
    def empty(cls, dim: int) -> TemplateRows:
        return cls([], [], [], [], np.zeros((0, dim), np.float32), [])

    @classmethod
    def of(cls, templates: list[Template], dim: int) -> TemplateRows:
        if not templates:
            return cls.empty(dim)
        matrix = np.stack([t.embedding for t in templates]).astype(np.float32)
        return cls(
            [t.id for t in templates],
            [t.person_id for t in templates],
            [float(t.quality) for t in templates],
            [t.source for t in templates],
            np.ascontiguousarray(matrix),
            [t.quality_class for t in templates],
        )

    def __len__(self) -> int:
        return len(self.ids)

    def template(self, i: int) -> Template:
        return Template(
            self.ids[i], self.owners[i], self.matrix[i], self.qualities[i], self.sources[i], self.classes[i]
        )

    def where(self, keep: np.ndarray) -> TemplateRows:
        """The rows where the boolean mask ``keep`` is set."""
        selectors = keep.tolist()
        return TemplateRows(
            list(itertools.compress(self.ids, selectors)),
            list(itertools.compress(self.owners, selectors)),
            list(itertools.compress(self.qualities, selectors)),
            list(itertools.compress(self.sources, selectors)),
            np.ascontiguousarray(self.matrix[keep]),
            list(itertools.compress(self.classes, selectors)),
        )

    def without_owners(self, owners: set[str]) -> TemplateRows:
        """These rows less those of ``owners`` (the same object when none belong to them)."""
        keep = np.fromiter((o not in owners for o in self.owners), bool, len(self))
        return self if keep.all() else self.where(keep)

    def plus(self, other: TemplateRows) -> TemplateRows:
        """These rows followed by ``other``'s."""
        if not len(other):
            return self
        return TemplateRows(
            self.ids + other.ids,
            self.owners + other.owners,
            self.qualities + other.qualities,
            self.sources + other.sources,
            np.concatenate([self.matrix, other.matrix]),
            self.classes + other.classes,
        )


@dataclass(frozen=True)
class _Owners:
    """What a search reports of the people owning templates: names and template counts."""

    names: dict[str, Person]
    counts: Counter

    def __len__(self) -> int:
        return len(self.names)


class Gallery:
    """People and their templates for one embedding model, searched by float32 matmul.

    Writes are copy-on-write (new dict and :class:`TemplateRows` objects), so a search works
    on a consistent snapshot without holding the lock during the matrix product.
    """

    def __init__(self, model_id: str, dim: int = 128) -> None:
        self.model_id = model_id
        self.dim = dim
        self._people: dict[str, Person] = {}
        self._rows = TemplateRows.empty(dim)
        self._quantized: QuantizedMatrix | None = None  # of ``_rows.matrix``, built on first search
        self._counts: Counter | None = None  # templates per person, counted on first search
        self._penalty_cache: dict[tuple[int, str], np.ndarray] = {}  # (pair shift, probe class) -> per template
        self._owner_codes: tuple[list[str], np.ndarray] | None = None  # owners list -> int code per template
        self._lock = threading.RLock()

    # ----------------------------------------------------------------- people

    @property
    def people(self) -> list[Person]:
        with self._lock:
            return list(self._people.values())

    def __len__(self) -> int:
        return len(self._people)

    @property
    def template_count(self) -> int:
        return len(self._rows)

    def get(self, person_id: str) -> Person:
        """The person with this id; raises ``GalleryError(code='person_not_found')``."""
        try:
            return self._people[person_id]
        except KeyError:
            raise GalleryError(f"no person with id {person_id!r}", code="person_not_found") from None

    def find_by_name(self, name: str) -> Person | None:
        """The person with exactly this display name, if any."""
        with self._lock:
            return next((p for p in self._people.values() if p.name == name), None)

    def add_person(self, name: str, metadata: dict | None = None) -> Person:
        """Create a person; display names must be unique and non-empty."""
        name = name.strip()
        if not name:
            raise GalleryError("a person needs a non-empty name", code="invalid_name")
        with self._lock:
            if self.find_by_name(name):
                raise GalleryError(f"a person named {name!r} exists already", code="duplicate_name")
            person = Person(id=new_id("p"), name=name, metadata=dict(metadata or {}))
            self._people = {**self._people, person.id: person}
            return person

    def rename(self, person_id: str, name: str) -> Person:
        """Give a person a new (unique) display name."""
        name = name.strip()
        with self._lock:
            person = self.get(person_id)
            other = self.find_by_name(name)
            if not name or (other and other.id != person_id):
                raise GalleryError(f"cannot rename to {name!r}", code="duplicate_name" if name else "invalid_name")
            person.name = name
            return person

    def remove_person(self, person_id: str) -> int:
        """Delete a person and all their templates; returns how many templates went."""
        with self._lock:
            self.get(person_id)
            before = len(self._rows)
            self._people = {pid: p for pid, p in self._people.items() if pid != person_id}
            self._set_rows(self._rows.without_owners({person_id}))
            return before - len(self._rows)

    # ----------------------------------------------------------------- templates

    def templates_of(self, person_id: str) -> list[Template]:
        with self._lock:
            self.get(person_id)
            rows = self._rows
        return [rows.template(i) for i, owner in enumerate(rows.owners) if owner == person_id]

    def add_templates(
        self,
        person_id: str,
        embeddings: np.ndarray,
        qualities: list[float] | None = None,
        sources: list[str] | None = None,
        classes: list[str] | None = None,
    ) -> list[Template]:
        """Attach embeddings (N, dim) to a person; they are normalised to unit length."""
        vectors = self._validate(embeddings)
        n = len(vectors)
        new = TemplateRows(
            [new_id("t") for _ in range(n)],
            [person_id] * n,
            [float(q) for q in (qualities or [1.0] * n)],
            list(sources or [""] * n),
            vectors,
            list(classes or ["ok"] * n),
        )
        with self._lock:
            self.get(person_id)
            self._set_rows(self._rows.plus(new))
            return [new.template(i) for i in range(n)]

    def remove_template(self, template_id: str) -> Template:
        """Delete one template by id."""
        with self._lock:
            rows = self._rows
            try:
                index = rows.ids.index(template_id)
            except ValueError:
                raise GalleryError(f"no template with id {template_id!r}", code="template_not_found") from None
            found = rows.template(index)
            keep = np.ones(len(rows), bool)
            keep[index] = False
            self._set_rows(rows.where(keep))
            return found

    def restore(self, people: list[Person], templates: list[Template] | TemplateRows) -> None:
        """Replace the whole content (used when loading from storage)."""
        rows = templates if isinstance(templates, TemplateRows) else TemplateRows.of(templates, self.dim)
        with self._lock:
            self._people = {p.id: p for p in people}
            self._check_owners(rows)
            if rows.matrix.shape != (len(rows), self.dim):
                raise GalleryError("the embedding matrix does not match the templates", code="gallery_corrupt")
            self._set_rows(rows)

    def patched(self, person_ids: set[str], people: list[Person], rows: TemplateRows) -> Gallery:
        """A new gallery: these people (and their templates) replaced by ``people`` and ``rows``.

        ``people`` holds the ones among ``person_ids`` that still exist, ``rows`` all their
        templates; the others are gone. Everyone else is carried over untouched.
        """
        with self._lock:
            old_people, old_rows = self._people, self._rows
        fresh = Gallery(self.model_id, self.dim)
        fresh._people = {pid: p for pid, p in old_people.items() if pid not in person_ids}
        fresh._people.update({p.id: p for p in people})
        fresh._check_owners(rows)
        fresh._set_rows(old_rows.without_owners(person_ids).plus(rows))
        return fresh

    def _check_owners(self, rows: TemplateRows) -> None:
        for template_id, owner in zip(rows.ids, rows.owners, strict=True):
            if owner not in self._people:
                raise GalleryError(f"template {template_id} belongs to no person", code="gallery_corrupt")

    def _set_rows(self, rows: TemplateRows) -> None:
        self._rows = rows
        self._quantized = None
        self._counts = None
        self._penalty_cache = {}
        self._owner_codes = None

    def _template_counts(self) -> Counter:
        """Templates per person of the current rows (counted once per version of them)."""
        counts = self._counts
        if counts is None:
            counts = self._counts = Counter(self._rows.owners)
        return counts

    def shape(self) -> GalleryShape:
        """How many people (with templates) a search compares a face with, and their templates on average."""
        with self._lock:
            counts = self._template_counts()
        people = len(counts)
        return GalleryShape(max(1, people), sum(counts.values()) / people if people else 1.0)

    def _validate(self, embeddings: np.ndarray) -> np.ndarray:
        return unit_embeddings(embeddings, self.dim)

    # ----------------------------------------------------------------- search

    def prepare_search(self) -> None:
        """Build the int8 prefilter now if this gallery is large enough to use one."""
        with self._lock:
            self._prefilter()

    def _prefilter(self) -> QuantizedMatrix | None:
        """The int8 prefilter of the current matrix (built on first use), or None when small."""
        if len(self._rows) < QUANTIZED_MIN_TEMPLATES:
            return None
        if self._quantized is None:
            self._quantized = QuantizedMatrix(self._rows.matrix)
        return self._quantized

    def search(
        self,
        queries: np.ndarray,
        top_k: int = 1,
        *,
        probe_classes: Sequence[str] | None = None,
        pair_shift: PairShift | None = None,
    ) -> list[list[Candidate]]:
        """Best ``top_k`` distinct people per query, each with their best template's similarity.

        With ``pair_shift`` (probe class -> template class -> similarity, all >= 0) and the
        queries' ``probe_classes``, templates are ranked by similarity less the shift of their
        pair of quality classes, and each candidate reports the shift of its template.

        Exact: large galleries shortlist candidates with an int8 copy and re-score them in
        float32, falling back to the full product whenever the shortlist cannot prove its
        answer (see ``facegate.gallery.quantized``).
        """
        q = self._validate(queries)
        with self._lock:
            rows, people = self._rows, self._people
            if not len(rows):
                return [[] for _ in range(len(q))]
            prefilter = self._prefilter()
            counts = self._template_counts()
            penalties = self._penalties(rows, pair_shift, probe_classes, len(q))
        matrix, owners = rows.matrix, rows.owners
        people = _Owners(people, counts)
        if prefilter is None:
            return [
                self._full_search(row, owners, people, top_k, penalty)
                for row, penalty in zip(similarities(q, matrix), penalties, strict=True)
            ]
        shortlist = prefilter.shortlist(q)
        wanted = min(top_k, len(people))
        out = []
        for query, shortlisted, ceiling, penalty in zip(
            q, shortlist.indices, shortlist.ceiling, penalties, strict=True
        ):
            sims = matrix[shortlisted] @ query
            if penalty is not None:
                sims = sims - penalty[shortlisted]
            found = self._rank(shortlisted, sims, owners, people, top_k, penalty)
            # penalties are >= 0, so a template off the shortlist scores at most the ceiling
            if len(found) < wanted or found[-1].similarity - (found[-1].shift or 0.0) <= ceiling:
                found = self._full_search(similarities(query[None], matrix)[0], owners, people, top_k, penalty)
            out.append(found)
        return out

    def _owner_index(self, owners: list[str]) -> np.ndarray:
        """Each template's owner as a small integer (counted once per version of the rows)."""
        cached = self._owner_codes
        if cached is None or cached[0] is not owners:
            codes: dict[str, int] = {}
            index = np.fromiter((codes.setdefault(o, len(codes)) for o in owners), np.int32, len(owners))
            cached = self._owner_codes = (owners, index)
        return cached[1]

    def _penalties(
        self, rows: TemplateRows, pair_shift: PairShift | None, probe_classes: Sequence[str] | None, n: int
    ) -> list[np.ndarray | None]:
        """Per query, the similarity each template loses for its pair of quality classes (None: no shift)."""
        if pair_shift is None or probe_classes is None:
            return [None] * n
        cache = self._penalty_cache
        out = []
        for probe_class in probe_classes:
            key = (id(pair_shift), probe_class)
            if key not in cache:
                row = pair_shift.get(probe_class, {})
                cache[key] = np.fromiter((max(0.0, row.get(c, 0.0)) for c in rows.classes), np.float32, len(rows))
            out.append(cache[key])
        return out

    def _full_search(
        self, sims: np.ndarray, owners: list[str], people: _Owners, top_k: int, penalty: np.ndarray | None = None
    ) -> list[Candidate]:
        """The best ``top_k`` people from every template's similarity (T,), less its ``penalty``."""
        if penalty is not None:
            sims = sims - penalty
        if top_k <= 2:  # the common case (a decision weighs the best person and the next): no partial sort
            best = int(sims.argmax())
            if top_k == 1:
                return self._rank(np.array([best]), sims[best : best + 1], owners, people, 1, penalty)
            owner_index = self._owner_index(owners)
            others = np.where(owner_index == owner_index[best], -np.inf, sims)
            second = int(others.argmax())
            picked = np.array([best] if others[second] == -np.inf else [best, second])
            return self._rank(picked, sims[picked], owners, people, 2, penalty)
        # the best templates, deeper until they hold top_k people (then those are the best people)
        depth = max(8, top_k * 8)
        while True:
            depth = min(depth, len(sims))
            rows = np.argpartition(-sims, depth - 1)[:depth] if depth < len(sims) else np.arange(len(sims))
            found = self._rank(rows, sims[rows], owners, people, top_k, penalty)
            if len(found) >= top_k or depth == len(sims):
                return found
            depth *= 4

    def _rank(
        self,
        rows: np.ndarray,
        sims: np.ndarray,
        owners: list[str],
        people: _Owners,
        top_k: int,
        penalty: np.ndarray | None = None,
    ) -> list[Candidate]:
        """The first ``top_k`` distinct people among template ``rows`` scored ``sims``, best first."""
        seen: dict[str, Candidate] = {}
        for i in np.argsort(-sims, kind="stable"):
            pid = owners[rows[i]]
            if pid not in seen:
                shift = None if penalty is None else float(penalty[rows[i]])
                sim = float(sims[i]) + (shift or 0.0)
                seen[pid] = Candidate(pid, people.names[pid].name, sim, people.counts[pid], shift)
                if len(seen) >= top_k:
                    break
        return list(seen.values())

    def best_similarity(self, person_id: str, embedding: np.ndarray) -> float | None:
        """The similarity of an embedding to a person's closest template (None without templates)."""
        query = self._validate(embedding)[0]
        with self._lock:
            rows = self._rows
        mine = [i for i, owner in enumerate(rows.owners) if owner == person_id]
        return float((rows.matrix[mine] @ query).max()) if mine else None
