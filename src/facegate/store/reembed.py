"""Recompute templates with a new embedding model from their stored chips.

Old templates stay in place, so the index of the old model keeps serving while this runs;
each new template records the template it came from, so an interrupted run resumes
without duplicates. Switch the service to the new model once this has finished.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from sqlalchemy import select

from facegate.gallery.index import new_id
from facegate.store.repository import DEFAULT_COLLECTION, Store
from facegate.store.schema import CollectionRow, PersonRow, TemplateRow

BATCH = 32


def pending(store: Store, model_id: str, collection: str = DEFAULT_COLLECTION) -> list[str]:
    """Public ids of templates with a chip, of another model, not yet recomputed for ``model_id``."""
    with store.engine.connect() as conn:
        done = select(TemplateRow.origin_id).where(TemplateRow.model_id == model_id, TemplateRow.origin_id.is_not(None))
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


def reembed(
    store: Store, engine, collection: str = DEFAULT_COLLECTION, progress: Callable[[int, int], None] | None = None
) -> int:
    """Add a template of ``engine.model_id`` for every chip that lacks one; returns how many.

    Works in batches of 32, one transaction each: an interruption loses at most a batch.
    """
    import cv2

    todo = pending(store, engine.model_id, collection)
    added = 0
    for start in range(0, len(todo), BATCH):
        ids = todo[start : start + BATCH]
        with store.transaction() as session:
            rows = session.scalars(select(TemplateRow).where(TemplateRow.public_id.in_(ids))).all()
            chips, usable = [], []
            for row in rows:
                image = cv2.imdecode(np.frombuffer(row.chip_jpeg, np.uint8), cv2.IMREAD_COLOR)
                if image is not None and image.shape[:2] == (150, 150):
                    chips.append(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
                    usable.append(row)
            vectors = engine.embed_chips(np.stack(chips)) if chips else []
            changed: dict[int, set[str]] = {}  # collection -> people given new templates
            for row, vector in zip(usable, vectors, strict=True):
                session.add(
                    TemplateRow(
                        public_id=new_id("t"),
                        person_id=row.person_id,
                        model_id=engine.model_id,
                        dim=int(vector.shape[0]),
                        embedding=vector.astype("<f4").tobytes(),
                        quality=row.quality,
                        source=row.source,
                        chip_jpeg=row.chip_jpeg,
                        origin_id=row.public_id,
                    )
                )
                changed.setdefault(row.person.collection_id, set()).add(row.person.public_id)
            for collection_id, people in changed.items():
                store.bump_version(session, collection_id, people)
            added += len(usable)
        if progress:
            progress(min(start + BATCH, len(todo)), len(todo))
    return added
