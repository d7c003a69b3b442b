"""Persist a gallery to one local file (until the database store replaces it).

The file is a NumPy ``.npz`` holding the embeddings matrix and a JSON description of
people and templates. Saving writes a temporary file and renames it over the old one,
so a crash never leaves a half-written gallery.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from facegate.gallery.index import Gallery, GalleryError, Person, Template

FORMAT_VERSION = 1


def default_data_dir() -> Path:
    """``$FACEGATE_DATA_DIR`` or the user's data directory (e.g. ``~/.local/share/facegate``)."""
    env = os.environ.get("FACEGATE_DATA_DIR")
    if env:
        return Path(env)
    from platformdirs import user_data_dir

    return Path(user_data_dir("facegate"))


def default_gallery_path() -> Path:
    return default_data_dir() / "gallery.npz"


def save_gallery(gallery: Gallery, path: Path) -> None:
    """Write the gallery atomically to ``path``."""
    templates = [t for p in gallery.people for t in gallery.templates_of(p.id)]
    meta = {
        "format": FORMAT_VERSION,
        "model_id": gallery.model_id,
        "dim": gallery.dim,
        "people": [
            {"id": p.id, "name": p.name, "created_at": p.created_at, "metadata": p.metadata} for p in gallery.people
        ],
        "templates": [
            {"id": t.id, "person_id": t.person_id, "quality": t.quality, "source": t.source} for t in templates
        ],
    }
    matrix = np.stack([t.embedding for t in templates]) if templates else np.zeros((0, gallery.dim), np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        np.savez(fh, embeddings=matrix.astype(np.float32), meta=np.array(json.dumps(meta)))
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def load_gallery(path: Path, model_id: str, dim: int = 128) -> Gallery:
    """Read a gallery file; a missing file gives an empty gallery."""
    gallery = Gallery(model_id, dim)
    if not path.exists():
        return gallery
    try:
        with np.load(path, allow_pickle=False) as data:
            meta = json.loads(str(data["meta"]))
            matrix = data["embeddings"]
    except (OSError, ValueError, KeyError) as exc:
        raise GalleryError(f"cannot read gallery file {path}: {exc}", code="gallery_corrupt") from exc
    if meta.get("model_id") != model_id:
        raise GalleryError(
            f"gallery {path} holds {meta.get('model_id')} templates; this engine makes {model_id}",
            code="model_mismatch",
        )
    if len(meta["templates"]) != len(matrix):
        raise GalleryError(f"gallery file {path} is inconsistent", code="gallery_corrupt")
    people = [Person(p["id"], p["name"], p["created_at"], p.get("metadata", {})) for p in meta["people"]]
    templates = [
        Template(t["id"], t["person_id"], matrix[i], t["quality"], t["source"]) for i, t in enumerate(meta["templates"])
    ]
    gallery.restore(people, templates)
    return gallery
