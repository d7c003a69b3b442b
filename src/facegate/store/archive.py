"""Export a collection to a portable ZIP archive, and import one (merge or replace).

The archive holds ``manifest.json`` (people, templates, models, and the reference keys its
people's external-reference hashes were made with), ``embeddings.npy`` (float32, one row per
template in manifest order) and ``chips/<template id>.jpg``. The keys make an archive as
secret as the install's key file: on import they join the target's key ring, so imported
references keep resolving (a hash cannot be recomputed under another key). Version 1
archives (no keys) were hashed with the old constant key and import as such.
Importing validates the whole archive before writing, then writes in one transaction:
a corrupt or hostile archive raises ``ArchiveError`` and changes nothing.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
from sqlalchemy import delete, select
from sqlalchemy.orm import Session, contains_eager

from facegate.core.errors import EmbeddingError
from facegate.core.presets import QUALITY_CLASSES
from facegate.core.vectors import unit_embeddings
from facegate.store.errors import StoreError
from facegate.store.records import DEFAULT_COLLECTION, check_metadata
from facegate.store.refkeys import decode_keys
from facegate.store.repository import Store
from facegate.store.schema import ChangeRow, CollectionRow, PersonRow, TemplateRow

FORMAT = "facegate-collection"
FORMAT_VERSION = 2  # 2: people carry ref_key_id and the manifest the keys (ref_keys)
READABLE_VERSIONS = (1, 2)
_HASH = re.compile(r"^[0-9a-f]{64}$")
MAX_ENTRY_BYTES = 512 * 1024 * 1024  # no single member may unpack to more than this
_ID = re.compile(r"^[pt]_[A-Za-z0-9_-]{6,36}$")

Progress = Callable[[int, int], None]


class ArchiveError(StoreError):
    """The archive is not a valid facegate collection export."""

    code = "archive_invalid"


def export_collection(
    store: Store, path: Path, collection: str = DEFAULT_COLLECTION, progress: Progress | None = None
) -> int:
    """Write every person and template of a collection to ``path``; returns the template count."""
    with Session(store.engine) as session:
        coll = session.scalar(select(CollectionRow.id).where(CollectionRow.name == collection))
        if coll is None:
            raise StoreError(f"no collection named {collection!r}", code="collection_not_found")
        people = session.scalars(select(PersonRow).where(PersonRow.collection_id == coll).order_by(PersonRow.id)).all()
        templates = session.scalars(
            select(TemplateRow)
            .join(PersonRow)
            .options(contains_eager(TemplateRow.person))
            .where(PersonRow.collection_id == coll)
            .order_by(TemplateRow.id)
        ).all()
    ref_keys = store.ref_keys.export({p.ref_key_id for p in people if p.external_ref_hash and p.ref_key_id})
    dims = {t.dim for t in templates} or {128}
    if len(dims) > 1:
        raise StoreError("templates of different dimensions cannot share one archive", code="mixed_dimensions")
    manifest = {
        "format": FORMAT,
        "version": FORMAT_VERSION,
        "collection": collection,
        "dim": dims.pop(),
        "ref_keys": ref_keys,
        "people": [
            {
                "id": p.public_id,
                "name": p.name,
                "metadata": p.meta,
                "external_ref_hash": p.external_ref_hash,
                "ref_key_id": p.ref_key_id if p.external_ref_hash else None,
                "created_at": p.created_at,
            }
            for p in people
        ],
        "templates": [
            {
                "id": t.public_id,
                "person": t.person.public_id,
                "model_id": t.model_id,
                "quality": t.quality,
                "quality_class": t.quality_class or "ok",
                "source": t.source,
                "chip": t.chip_jpeg is not None,
                "created_at": t.created_at,
            }
            for t in templates
        ],
    }
    matrix = np.frombuffer(b"".join(t.embedding for t in templates), dtype="<f4").reshape(len(templates), -1)
    tmp = path.with_name(f".{path.name}.tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("manifest.json", json.dumps(manifest))
        buf = io.BytesIO()
        np.save(buf, matrix, allow_pickle=False)
        zf.writestr("embeddings.npy", buf.getvalue())
        for i, t in enumerate(templates):
            if t.chip_jpeg is not None:
                zf.writestr(f"chips/{t.public_id}.jpg", t.chip_jpeg)
            if progress:
                progress(i + 1, len(templates))
    tmp.replace(path)
    return len(templates)


def _read(zf: zipfile.ZipFile, name: str) -> bytes:
    try:
        info = zf.getinfo(name)
    except KeyError:
        raise ArchiveError(f"the archive has no {name}") from None
    if info.file_size > MAX_ENTRY_BYTES:
        raise ArchiveError(f"{name} unpacks to {info.file_size} bytes; the limit is {MAX_ENTRY_BYTES}")
    return zf.read(info)


def _load(path: Path) -> tuple[dict, np.ndarray, dict[str, bytes]]:
    """Read and validate an archive completely (nothing is written yet)."""
    try:
        with zipfile.ZipFile(path) as zf:
            manifest = json.loads(_read(zf, "manifest.json"))
            matrix = np.load(io.BytesIO(_read(zf, "embeddings.npy")), allow_pickle=False)
            chips = {
                t["id"]: _read(zf, f"chips/{t['id']}.jpg")
                for t in manifest.get("templates", [])
                if isinstance(t, dict) and t.get("chip") and isinstance(t.get("id"), str) and _ID.match(t["id"])
            }
    except ArchiveError:
        raise
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise ArchiveError(f"cannot read the archive: {exc}") from exc
    if (
        not isinstance(manifest, dict)
        or manifest.get("format") != FORMAT
        or manifest.get("version") not in READABLE_VERSIONS
    ):
        raise ArchiveError("not a facegate collection archive (or an unsupported version)")
    ref_keys = manifest.setdefault("ref_keys", {})
    if not isinstance(ref_keys, dict) or not all(isinstance(v, str) for v in ref_keys.values()):
        raise ArchiveError("ref_keys must map key ids to base64 keys")
    try:
        manifest["ref_keys"] = decode_keys(ref_keys)
    except StoreError as exc:
        raise ArchiveError(exc.message) from None
    people, templates, dim = manifest.get("people"), manifest.get("templates"), manifest.get("dim")
    if not isinstance(people, list) or not isinstance(templates, list) or not isinstance(dim, int):
        raise ArchiveError("the manifest lacks people, templates or dim")
    if matrix.dtype != np.float32 or matrix.shape != (len(templates), dim):
        raise ArchiveError(f"embeddings.npy must be float32 ({len(templates)}, {dim})")
    try:
        matrix = unit_embeddings(matrix, dim) if len(matrix) else matrix
    except EmbeddingError as exc:
        raise ArchiveError(f"embeddings.npy: {exc.message}") from None
    ids = set()
    for p in people:
        if not (
            isinstance(p, dict)
            and isinstance(p.get("id"), str)
            and _ID.match(p["id"])
            and isinstance(p.get("name"), str)
            and p["name"].strip()
        ):
            raise ArchiveError(f"bad person entry: {str(p)[:100]}")
        ref, kid = p.get("external_ref_hash"), p.get("ref_key_id")
        if ref is not None and not (isinstance(ref, str) and _HASH.match(ref)):
            raise ArchiveError(f"bad external_ref_hash of {p['id']}")
        if kid is not None and kid not in manifest["ref_keys"]:
            raise ArchiveError(f"person {p['id']}: reference key {str(kid)[:20]!r} is not in the archive")
        try:
            p["metadata"] = check_metadata(p.get("metadata") or {})
        except StoreError as exc:
            raise ArchiveError(f"person {p['id']}: {exc.message}", code="invalid_metadata") from None
        ids.add(p["id"])
    for t in templates:
        if not (
            isinstance(t, dict)
            and isinstance(t.get("id"), str)
            and _ID.match(t["id"])
            and t.get("person") in ids
            and isinstance(t.get("model_id"), str)
        ):
            raise ArchiveError(f"bad template entry: {str(t)[:100]}")
    return manifest, matrix, chips


def import_archive(
    store: Store,
    path: Path,
    collection: str = DEFAULT_COLLECTION,
    replace: bool = False,
    progress: Progress | None = None,
) -> tuple[int, int]:
    """Import an archive into a collection; returns (people added, templates added).

    ``replace`` empties the collection first; otherwise people and templates whose ids
    exist already are skipped (merge). All of it is one transaction.
    """
    manifest, matrix, chips = _load(path)
    dim = manifest["dim"]
    store.ref_keys.add(manifest["ref_keys"])  # before writing: a reference is never stored without its key
    added_people = added_templates = 0
    with store.transaction() as session:
        coll = store.collection_row(session, collection)
        if replace:
            person_ids = select(PersonRow.id).where(PersonRow.collection_id == coll.id)
            session.execute(delete(TemplateRow).where(TemplateRow.person_id.in_(person_ids)))
            session.execute(delete(PersonRow).where(PersonRow.collection_id == coll.id))
            session.execute(delete(ChangeRow).where(ChangeRow.collection_id == coll.id))  # no erased ids kept
        rows: dict[str, int] = dict(
            session.execute(select(PersonRow.public_id, PersonRow.id).where(PersonRow.collection_id == coll.id)).all()
        )
        elsewhere = session.scalars(
            select(PersonRow.public_id).where(
                PersonRow.public_id.in_([p["id"] for p in manifest["people"]]), PersonRow.collection_id != coll.id
            )
        ).first()
        if elsewhere:
            raise ArchiveError(f"person {elsewhere} belongs to another collection", code="id_conflict")
        for p in manifest["people"]:
            if p["id"] in rows:
                continue
            if session.scalar(
                select(PersonRow.id).where(PersonRow.collection_id == coll.id, PersonRow.name == p["name"])
            ):
                raise ArchiveError(f"a different person named {p['name']!r} exists already", code="duplicate_name")
            row = PersonRow(
                public_id=p["id"],
                collection_id=coll.id,
                name=p["name"].strip(),
                meta=p["metadata"],
                external_ref_hash=p.get("external_ref_hash"),
                ref_key_id=p.get("ref_key_id") if p.get("external_ref_hash") else None,
            )
            session.add(row)
            session.flush()
            rows[p["id"]] = row.id
            added_people += 1
        existing = set(
            session.scalars(
                select(TemplateRow.public_id).where(TemplateRow.public_id.in_([t["id"] for t in manifest["templates"]]))
            )
        )
        total = len(manifest["templates"])
        for i, t in enumerate(manifest["templates"]):
            if t["id"] not in existing:
                vector = matrix[i]
                session.add(
                    TemplateRow(
                        public_id=t["id"],
                        person_id=rows[t["person"]],
                        model_id=t["model_id"],
                        dim=dim,
                        embedding=vector.astype("<f4").tobytes(),
                        quality=float(t.get("quality", 1.0)),
                        quality_class=_quality_class(t.get("quality_class")),
                        source=str(t.get("source", ""))[:500],
                        chip_jpeg=chips.get(t["id"]),
                    )
                )
                added_templates += 1
            if progress:
                progress(i + 1, total)
        store.bump_version(session, coll.id)
    if replace:
        store.scrub()
    return added_people, added_templates


def _quality_class(value: object) -> str:
    """An archive's quality class of a template (older archives have none: ``ok``)."""
    return value if isinstance(value, str) and value in QUALITY_CLASSES else "ok"
