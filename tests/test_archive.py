"""Export a collection and import it elsewhere: identical results; bad archives change nothing."""

from __future__ import annotations

import json
import zipfile

import numpy as np
import pytest

from conftest import ENROLLED, STRANGER, identify, load_gallery, photos
from facegate.store.archive import ArchiveError, export_collection, import_archive
from facegate.store.db import make_engine, upgrade
from facegate.store.repository import NewTemplate, Store


@pytest.fixture(scope="module")
def enrolled_archive(engine, tmp_path_factory):
    """A collection of the four test people (3 photos each, with chips) exported to a ZIP."""
    root = tmp_path_factory.mktemp("src")
    store = Store(make_engine(f"sqlite:///{root / 'src.db'}"))
    upgrade(store.engine)
    for name in ENROLLED:
        faces = [engine.analyze(p, max_faces=1, keep_chips=True)[0] for p in photos(name)[:3]]
        store.enroll(
            name,
            [NewTemplate(f.embedding, f.quality.score, f"{name}.jpg", b"\xff\xd8chip") for f in faces],
            model_id=engine.model_id,
            external_ref=f"{name}@example.org",
        )
    path = root / "export.zip"
    seen = []
    assert export_collection(store, path, progress=lambda done, total: seen.append((done, total))) == 12
    assert seen[-1] == (12, 12)
    return store, path


@pytest.fixture
def target(database_url):
    store = Store(make_engine(database_url))
    upgrade(store.engine)
    yield store
    store.engine.dispose()


def probes(engine):
    return np.stack(
        [engine.analyze(p, max_faces=1)[0].embedding for p in [photos(n)[3] for n in ENROLLED] + [STRANGER]]
    )


def test_export_then_import_gives_identical_results(enrolled_archive, target, engine):
    source, path = enrolled_archive
    assert import_archive(target, path) == (4, 12)
    q = probes(engine)
    before = [d.to_dict() for d in identify(load_gallery(source, engine.model_id), q, top_k=3)]
    after = [d.to_dict() for d in identify(load_gallery(target, engine.model_id), q, top_k=3)]
    assert before == after
    assert [d["name"] for d in after] == [*ENROLLED, None]
    assert target.find_by_external_ref(f"{ENROLLED[0]}@example.org").name == ENROLLED[0]
    assert import_archive(target, path) == (0, 0)  # merging again adds nothing
    assert import_archive(target, path, replace=True) == (4, 12)
    assert load_gallery(target, engine.model_id).template_count == 12


def _rewrite(path, out, change):
    with zipfile.ZipFile(path) as zf:
        members = {n: zf.read(n) for n in zf.namelist()}
    change(members)
    with zipfile.ZipFile(out, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return out


def _npy(array) -> bytes:
    import io

    buf = io.BytesIO()
    np.save(buf, array)
    return buf.getvalue()


def _manifest(members, edit):
    manifest = json.loads(members["manifest.json"])
    edit(manifest)
    members["manifest.json"] = json.dumps(manifest).encode()


@pytest.mark.parametrize(
    "damage",
    [
        lambda m: m.pop("embeddings.npy"),
        lambda m: m.__setitem__("manifest.json", b"{not json"),
        lambda m: _manifest(m, lambda x: x.__setitem__("format", "something-else")),
        lambda m: _manifest(m, lambda x: x["templates"].pop()),  # 11 entries, 12 embeddings
        lambda m: _manifest(m, lambda x: x["templates"][0].__setitem__("person", "p_nobody_here")),
        lambda m: _manifest(m, lambda x: x["people"][0].__setitem__("id", "../../etc/passwd")),
        lambda m: m.__setitem__("embeddings.npy", b"\x93NUMPY garbage"),
        lambda m: m.__setitem__("embeddings.npy", _npy(np.zeros((12, 128), np.float32))),  # zero vectors
    ],
)
def test_corrupt_archives_are_refused_and_change_nothing(enrolled_archive, target, engine, tmp_path, damage):
    _, path = enrolled_archive
    target.enroll("Existing", [NewTemplate(np.eye(128, dtype=np.float32)[0])], model_id=engine.model_id)
    bad = _rewrite(path, tmp_path / "bad.zip", damage)
    with pytest.raises(ArchiveError) as err:
        import_archive(target, bad, replace=True)
    assert err.value.code == "archive_invalid"
    assert [p.name for p, _ in target.people()] == ["Existing"]


def test_not_a_zip_and_name_clash(enrolled_archive, target, engine, tmp_path):
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(ArchiveError):
        import_archive(target, junk)
    _, path = enrolled_archive
    target.enroll(ENROLLED[0], [NewTemplate(np.eye(128, dtype=np.float32)[1])], model_id=engine.model_id)
    with pytest.raises(ArchiveError) as err:
        import_archive(target, path)
    assert err.value.code == "duplicate_name"
    assert [(p.name, n) for p, n in target.people()] == [(ENROLLED[0], 1)]  # the merge rolled back
