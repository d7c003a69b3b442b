"""Privacy (issue 12): a random reference key per install, erase leaves no trace, bounded finite metadata."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import stat
import zipfile
from pathlib import Path

import httpx
import numpy as np
import pytest
from sqlalchemy import select

from api_server import free_port, running_server
from facegate.config import Settings
from facegate.core.errors import FacegateError
from facegate.store.archive import export_collection, import_archive
from facegate.store.db import make_engine, upgrade
from facegate.store.repository import NewTemplate, Store
from facegate.store.schema import ChangeRow, PersonRow

MODEL = "test_model"


def vector(seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=128).astype(np.float32)


@pytest.fixture
def store(database_url):
    engine = make_engine(database_url)
    upgrade(engine)
    yield Store(engine)
    engine.dispose()


def runtime_for(db: Path):
    from facegate.service.runtime import Runtime

    return Runtime.build(Settings().with_values(database_url=f"sqlite:///{db}", data_dir=str(db.parent)))


# ----------------------------------------------------------------- 1. the reference key


def test_reference_hash_is_not_keyed_by_a_constant(store):
    """Failed before: every install hashed with the constant key b"facegate"."""
    unkeyed = hmac.new(b"facegate", b"ada@example.org", hashlib.sha256).hexdigest()
    assert store.external_ref_hash("Ada@Example.org") != unkeyed
    assert store.external_ref_hash("Ada@Example.org") == store.external_ref_hash("ada@example.org ")


def test_runtime_key_file_is_random_private_and_kept(tmp_path):
    """Failed before: no key file; the runtime's store used the constant."""
    (tmp_path / "a").mkdir()
    first = runtime_for(tmp_path / "a" / "facegate.db")
    key_file = tmp_path / "a" / "facegate.db.refkey"
    assert key_file.exists()
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    person = first.people.create("Ada", "default", external_ref="ada@example.org")
    first.close()
    again = runtime_for(tmp_path / "a" / "facegate.db")  # the same install keeps its key
    assert again.people.by_reference("ada@example.org", "default").id == person.id
    again.close()
    (tmp_path / "b").mkdir()
    other = runtime_for(tmp_path / "b" / "facegate.db")  # another install gets another key
    assert other.store.external_ref_hash("ada@example.org") != again.store.external_ref_hash("ada@example.org")
    other.close()


def test_references_survive_export_and_import_into_another_install(tmp_path):
    """Failed before: both installs 'agreed' only because the key was the same public constant."""
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    source, target = runtime_for(tmp_path / "a" / "src.db"), runtime_for(tmp_path / "b" / "dst.db")
    source.store.create_person("Ada", [NewTemplate(vector(1))], model_id=MODEL, external_ref="ada@example.org")
    target.store.create_person("Bob", [NewTemplate(vector(2))], model_id=MODEL, external_ref="bob@example.org")
    export_collection(source.store, tmp_path / "a.zip")
    assert import_archive(target.store, tmp_path / "a.zip") == (1, 1)
    assert target.store.find_by_external_ref("ada@example.org").name == "Ada"  # the archive's key
    assert target.store.find_by_external_ref("bob@example.org").name == "Bob"  # the install's own key
    target.close()
    reopened = runtime_for(tmp_path / "b" / "dst.db")  # the imported key was saved in the key file
    assert reopened.store.find_by_external_ref("ada@example.org").name == "Ada"
    reopened.close()
    source.close()


def test_key_file_is_created_once_and_refuses_damage(tmp_path):
    from facegate.store.refkeys import RefKeyError, RefKeys

    path = tmp_path / "k" / "facegate.refkey"
    first, second = RefKeys.open(path), RefKeys.open(path)
    assert first.current == second.current and first.keys == second.keys
    assert [p.name for p in path.parent.iterdir() if p.name.endswith(".tmp")] == []
    doc = json.loads(path.read_text())
    doc["keys"][doc["current"]] = "AAAA" + doc["keys"][doc["current"]][4:]  # a key that is not its id's
    path.write_text(json.dumps(doc))
    with pytest.raises(RefKeyError) as err:
        RefKeys.open(path)
    assert err.value.code == "ref_key_invalid"


def _rewrite_manifest(src: Path, dst: Path, change) -> None:
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for item in zin.infolist():
            data = zin.read(item)
            if item.filename == "manifest.json":
                manifest = json.loads(data)
                change(manifest)
                data = json.dumps(manifest).encode()
            zout.writestr(item, data)


def test_archive_keys_and_metadata_are_checked_before_anything_is_written(store, tmp_path):
    source = Store(store.engine)  # another key than ``store``'s
    source.create_collection("src")
    source.create_person("Ada", [NewTemplate(vector(1))], model_id=MODEL, collection="src", external_ref="a@b.c")
    export_collection(source, tmp_path / "a.zip", "src")
    with zipfile.ZipFile(tmp_path / "a.zip") as zf:
        manifest = json.loads(zf.read("manifest.json"))
    assert manifest["version"] == 2 and list(manifest["ref_keys"]) == [manifest["people"][0]["ref_key_id"]]

    def wrong_key(m):
        m["ref_keys"] = {m["people"][0]["ref_key_id"]: "QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQQ=="}

    def missing_key(m):
        m["ref_keys"] = {}

    def nan_metadata(m):
        m["people"][0]["metadata"] = {"x": float("nan")}

    for change, code in (
        (wrong_key, "archive_invalid"),
        (missing_key, "archive_invalid"),
        (nan_metadata, "invalid_metadata"),
    ):
        _rewrite_manifest(tmp_path / "a.zip", tmp_path / "bad.zip", change)
        with pytest.raises(FacegateError) as err:
            import_archive(store, tmp_path / "bad.zip")
        assert err.value.code == code, change
        assert store.people() == []


def test_archives_of_the_previous_format_import_with_the_old_constant(store, tmp_path):
    source = Store(store.engine)
    source.create_collection("src")
    source.create_person("Ada", [NewTemplate(vector(1))], model_id=MODEL, collection="src")
    export_collection(source, tmp_path / "a.zip", "src")
    legacy = hmac.new(b"facegate", b"ada@example.org", hashlib.sha256).hexdigest()

    def version_1(m):
        m["version"] = 1
        del m["ref_keys"]
        m["people"][0]["external_ref_hash"] = legacy
        del m["people"][0]["ref_key_id"]

    _rewrite_manifest(tmp_path / "a.zip", tmp_path / "v1.zip", version_1)
    source.delete_collection("src")
    store.create_collection("old")
    assert import_archive(store, tmp_path / "v1.zip", "old") == (1, 1)
    assert store.find_by_external_ref("ADA@example.org", "old").name == "Ada"


def test_references_of_existing_databases_still_resolve(store):
    """Rows hashed before the key file (no key id) used the old constant: still found, and re-keyed when re-set."""
    person = store.create_person("Old", external_ref="old@example.org")
    legacy = hmac.new(b"facegate", b"old@example.org", hashlib.sha256).hexdigest()
    with store.transaction() as session:
        row = session.scalar(select(PersonRow).where(PersonRow.public_id == person.id))
        row.external_ref_hash, row.ref_key_id = legacy, None
    assert store.find_by_external_ref("old@example.org").id == person.id
    store.update_person(person.id, external_ref="old@example.org")
    assert store.find_by_external_ref("old@example.org").id == person.id


# ----------------------------------------------------------------- 2. erase leaves no trace

NAME = "Zebulon Quixotic-Marmalade"
META_VALUE = "secret-badge-77314-xylophone"
REF = "zebulon.quixotic@example.org"


def _enrol_and_delete(store: Store) -> tuple[str, bytes]:
    chip = np.random.default_rng(7).bytes(6000)
    keep = store.create_person("Keeper", [NewTemplate(vector(3))], model_id=MODEL)
    person = store.create_person(
        NAME,
        [NewTemplate(vector(4), chip_jpeg=chip, source="zebulon.jpg")],
        model_id=MODEL,
        metadata={"badge": META_VALUE},
        external_ref=REF,
    )
    store.update_person(person.id, metadata={"badge": META_VALUE, "n": 1})
    assert store.delete_person(person.id) == 1
    assert store.get_person(keep.id).name == "Keeper"
    return person.id, chip


def test_deleted_person_is_not_in_the_sqlite_file_or_its_wal(tmp_path):
    """Failed before: the name, metadata and chip stayed readable in facegate.db / its WAL."""
    db = tmp_path / "facegate.db"
    engine = make_engine(f"sqlite:///{db}")
    upgrade(engine)
    store = Store(engine)
    with engine.connect():  # a connection held open (as a server holds its pool) must not keep the WAL
        person_id, chip = _enrol_and_delete(store)
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("facegate.db"))
    for secret in (NAME.encode(), META_VALUE.encode(), chip[1000:1032], chip[5000:5032], person_id.encode()):
        assert secret not in raw, secret[:40]
    assert store.external_ref_hash(REF).encode() not in raw
    engine.dispose()


def test_deleted_collection_is_not_in_the_sqlite_file(tmp_path):
    db = tmp_path / "facegate.db"
    engine = make_engine(f"sqlite:///{db}")
    upgrade(engine)
    store = Store(engine)
    store.create_collection("office")
    store.create_person(NAME, [NewTemplate(vector(5))], model_id=MODEL, collection="office", metadata={"b": META_VALUE})
    assert store.delete_collection("office") == 1
    raw = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("facegate.db"))
    assert NAME.encode() not in raw and META_VALUE.encode() not in raw
    engine.dispose()


def test_change_log_forgets_an_erased_person_and_indexes_still_follow(store):
    """Failed before: collection_changes kept the erased person's public id."""
    from facegate.service.indexes import LiveIndex

    live = LiveIndex(store, MODEL, poll_interval=0)
    person_id, _ = _enrol_and_delete(store)
    with store.engine.connect() as conn:
        assert person_id not in set(conn.scalars(select(ChangeRow.person_id)))
    assert [p.name for p in live.gallery.people] == ["Keeper"]


# ----------------------------------------------------------------- 3. metadata is finite and bounded


@pytest.mark.parametrize(
    "metadata",
    [
        {"x": float("nan")},
        {"x": [1.0, float("inf")]},
        {"x": {"y": -float("inf")}},
        {"x": "a" * 17_000},
        {"a": {"b": {"c": {"d": {"e": {"f": {"g": {"h": {"i": 1}}}}}}}}},
    ],
    ids=["nan", "inf", "-inf", "too-large", "too-deep"],
)
def test_store_refuses_bad_metadata(store, metadata):
    """Failed before: all were stored (NaN then broke every JSON answer naming the person)."""
    with pytest.raises(FacegateError) as err:
        store.create_person("Ada", metadata=metadata)
    assert err.value.code == "invalid_metadata"
    person = store.create_person("Bob", metadata={"ok": [1, 2.5, "x", None, True]})
    with pytest.raises(FacegateError) as err:
        store.update_person(person.id, metadata=metadata)
    assert err.value.code == "invalid_metadata"
    assert store.get_person(person.id).metadata == {"ok": [1, 2.5, "x", None, True]}
    assert len(store.people()) == 1


def test_store_accepts_metadata_at_the_bounds(store):
    deep = {"a": {"b": {"c": {"d": {"e": {"f": {"g": {"h": 1}}}}}}}}  # 8 levels
    store.create_person("Ada", metadata=deep)
    store.create_person("Bob", metadata={"x": "a" * 16_000})


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    db = tmp_path_factory.mktemp("privacy-api") / "facegate.db"
    settings = Settings().with_values(port=free_port(), database_url=f"sqlite:///{db}", data_dir=str(db.parent))
    url = f"http://127.0.0.1:{settings.server.port}"
    with running_server(settings), httpx.Client(base_url=url, timeout=60) as client:
        yield client


@pytest.mark.parametrize(
    "body",
    [
        '{"name": "Nan", "metadata": {"x": NaN}}',
        '{"name": "Inf", "metadata": {"x": [Infinity]}}',
        json.dumps({"name": "Big", "metadata": {"x": "a" * 17_000}}),
        json.dumps({"name": "Deep", "metadata": {"a": {"b": {"c": {"d": {"e": {"f": {"g": {"h": {"i": 1}}}}}}}}}}),
    ],
    ids=["nan", "inf", "too-large", "too-deep"],
)
def test_api_refuses_bad_metadata_with_422(api, body):
    """Failed before: NaN was stored (then every answer naming the person was a 500), 17 kB too."""
    person = api.post("/v1/people", json={"name": f"P{os.urandom(4).hex()}"}).json()["id"]
    headers = {"content-type": "application/json"}
    for answer in (
        api.post("/v1/people", content=body, headers=headers),
        api.patch(f"/v1/people/{person}", content=body, headers=headers),
    ):
        assert answer.status_code == 422, answer.text
        assert answer.json()["code"] == "invalid_metadata"
    assert all(p["name"].startswith("P") for p in api.get("/v1/people?limit=100").json()["items"])


def test_ref_key_file_setting_and_a_warning_for_keys_this_process_lacks(tmp_path, caplog):
    """``store.ref_key_file`` puts the key ring where it is told; a database holding references hashed with a
    key that ring lacks (a second server without a copy of the file) is named in a warning at start."""
    import logging

    from facegate.config import load_settings
    from facegate.service.runtime import Runtime

    database = f"sqlite:///{tmp_path / 'shared.db'}"
    first = load_settings().with_values(database_url=database, ref_key_file=str(tmp_path / "a.refkey"))
    runtime = Runtime.build(first)
    runtime.store.create_person("Ada", external_ref="ada@example.org")
    runtime.close()
    assert (tmp_path / "a.refkey").exists() and not (tmp_path / "shared.db.refkey").exists()

    with caplog.at_level(logging.WARNING, logger="facegate.service.runtime"):
        Runtime.build(first).close()
    assert not [r for r in caplog.records if "key" in r.getMessage()]
    second = first.with_values(ref_key_file=str(tmp_path / "b.refkey"))
    with caplog.at_level(logging.WARNING, logger="facegate.service.runtime"):
        Runtime.build(second).close()
    warned = [r.getMessage() for r in caplog.records if "external-reference key" in r.getMessage()]
    assert warned and str(tmp_path / "b.refkey") in warned[0]
