"""Collection archives (export, import) and re-embedding with another model, as use cases."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from facegate.service.indexes import IndexRegistry
from facegate.store import archive
from facegate.store.records import DerivedTemplate, StoredChip
from facegate.store.repository import Store
from facegate.vision.engine import ChipEmbedder

Progress = Callable[[int, int], None]
REEMBED_BATCH = 32
CHIP_SIZE = (150, 150)


class Archives:
    """Export and import collections; recompute templates of other models from stored chips."""

    def __init__(self, store: Store, indexes: IndexRegistry) -> None:
        self.store = store
        self.indexes = indexes

    def export(self, path: Path, collection: str, progress: Progress | None = None) -> int:
        """Write every person and template of a collection to a ZIP; returns the template count."""
        return archive.export_collection(self.store, path, collection, progress)

    def import_(self, path: Path, collection: str, replace: bool = False, progress: Progress | None = None):
        """Import an exported archive (merge, or replace the collection), all or nothing.

        Returns (people, templates) imported; searchable when this returns.
        """
        counts = archive.import_archive(self.store, path, collection, replace, progress)
        self.indexes.changed(collection)
        return counts

    def reembed(self, embedder: ChipEmbedder, collection: str, progress: Progress | None = None) -> int:
        """Add a template of ``embedder.model_id`` for every stored chip that lacks one; returns how many.

        Old templates stay (the old model's index keeps serving); batches of 32, one
        transaction each, so an interruption loses at most a batch and a re-run resumes.
        """
        todo = self.store.reembed_pending(embedder.model_id, collection)
        added = 0
        for start in range(0, len(todo), REEMBED_BATCH):
            chips = [c for c in map(_decoded, self.store.chips(todo[start : start + REEMBED_BATCH])) if c]
            if chips:
                vectors = embedder.embed_chips(np.stack([pixels for _, pixels in chips]))
                derived = [DerivedTemplate(c.template_id, v) for (c, _), v in zip(chips, vectors, strict=True)]
                added += self.store.add_derived_templates(embedder.model_id, derived)
            if progress:
                progress(min(start + REEMBED_BATCH, len(todo)), len(todo))
        self.indexes.changed(collection)
        return added


def _decoded(chip: StoredChip) -> tuple[StoredChip, np.ndarray] | None:
    """A stored chip as RGB pixels, or None when it does not decode to a 150x150 face."""
    import cv2

    image = cv2.imdecode(np.frombuffer(chip.chip_jpeg, np.uint8), cv2.IMREAD_COLOR)
    if image is None or image.shape[:2] != CHIP_SIZE:
        return None
    return chip, cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
