"""The database store, on SQLite and on PostgreSQL (required in CI, skipped elsewhere if absent)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sqlalchemy import func, select, text

from conftest import ENROLLED, STRANGER, identify, load_gallery, photos
from facegate.core.errors import FacegateError
from facegate.store.db import current_revision, head_revision, make_engine, upgrade
from facegate.store.repository import NewTemplate, Store
from facegate.store.schema import PersonRow, TemplateRow


@pytest.fixture
def store(database_url):
    engine = make_engine(database_url)
    upgrade(engine)
    yield Store(engine)
    engine.dispose()


@pytest.fixture(scope="module")
def faces(engine) -> dict[str, list[np.ndarray]]:
    """Descriptors of the four photos of each enrolled test person, and the stranger's."""
    out = {name: [engine.analyze(p, max_faces=1)[0].embedding for p in photos(name)] for name in ENROLLED}
    out["stranger"] = [engine.analyze(STRANGER, max_faces=1)[0].embedding]
    return out


def _counts(store: Store) -> tuple[int, int]:
    with store.engine.connect() as conn:
        people = conn.scalar(select(func.count()).select_from(PersonRow))
        templates = conn.scalar(select(func.count()).select_from(TemplateRow))
    return people, templates


def test_upgrade_from_the_first_revision_keeps_data(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    upgrade(engine, "0001")
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO collections (name, created_at) VALUES ('default', 0)"))
    upgrade(engine)
    assert current_revision(engine) == head_revision()
    assert Store(engine).version() == 0
    assert Store(engine).collections() == ["default"]


def test_migrations_apply_and_are_idempotent(store):
    assert current_revision(store.engine) == head_revision()
    upgrade(store.engine)
    assert current_revision(store.engine) == head_revision()


def test_enrolled_people_survive_a_restart_and_are_recognised(store, faces, engine):
    for name in ENROLLED:
        store.enroll(name, [NewTemplate(v, source=f"{name}.jpg") for v in faces[name][:3]], model_id=engine.model_id)
    # a new Store on the same database, as after a restart
    reopened = Store(make_engine(store.engine.url.render_as_string(hide_password=False)))
    gallery = load_gallery(reopened, engine.model_id)
    assert sorted(p.name for p in gallery.people) == sorted(ENROLLED)
    assert gallery.template_count == 3 * len(ENROLLED)
    for name in ENROLLED:
        assert identify(gallery, faces[name][3][None])[0].name == name
    assert identify(gallery, faces["stranger"][0][None])[0].status == "unknown"
    reopened.engine.dispose()


def test_enrolment_is_all_or_nothing(store, faces, engine):
    good = NewTemplate(faces[ENROLLED[0]][0])
    bad = NewTemplate(np.ones(64, np.float32))
    with pytest.raises(FacegateError) as err:
        store.enroll("Half", [good, bad], model_id=engine.model_id)
    assert err.value.code == "bad_embedding_dim"
    with pytest.raises(FacegateError) as err:
        store.enroll("Nan", [good, NewTemplate(np.full(128, np.nan, np.float32))], model_id=engine.model_id)
    assert err.value.code == "bad_embedding"
    assert _counts(store) == (0, 0)
    store.enroll("Once", [good], model_id=engine.model_id)
    with pytest.raises(FacegateError) as err:
        store.enroll("Once", [good, good], model_id=engine.model_id)
    assert err.value.code == "duplicate_name"
    assert _counts(store) == (1, 1)


def test_delete_leaves_no_trace(store, faces, engine):
    keep = store.enroll("Keep", [NewTemplate(faces[ENROLLED[1]][0])], model_id=engine.model_id)
    gone = store.enroll(
        "Gone",
        [NewTemplate(v, chip_jpeg=b"\xff\xd8chip\xff\xd9") for v in faces[ENROLLED[2]][:3]],
        model_id=engine.model_id,
        external_ref="gone@example.org",
    )
    assert store.delete_person(gone.id) == 3
    with store.engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(PersonRow).where(PersonRow.public_id == gone.id)) == 0
        assert conn.scalar(select(func.count()).select_from(TemplateRow).where(TemplateRow.chip_jpeg.is_not(None))) == 0
    assert _counts(store) == (1, 1)
    assert [p.id for p in load_gallery(store, engine.model_id).people] == [keep.id]
    with pytest.raises(FacegateError) as err:
        store.delete_person(gone.id)
    assert err.value.code == "person_not_found"


def test_rename_templates_and_unknown_ids(store, faces, engine):
    person = store.enroll("Ada", [NewTemplate(faces[ENROLLED[0]][0])], model_id=engine.model_id)
    other = store.enroll("Bob", [NewTemplate(faces[ENROLLED[1]][0])], model_id=engine.model_id)
    store.rename(person.id, "Ada Lovelace")
    with pytest.raises(FacegateError) as err:
        store.rename(other.id, "Ada Lovelace")
    assert err.value.code == "duplicate_name"
    assert (
        store.add_templates(person.id, [NewTemplate(v) for v in faces[ENROLLED[0]][1:3]], model_id=engine.model_id) == 2
    )
    gallery = load_gallery(store, engine.model_id)
    assert {p.name for p in gallery.people} == {"Ada Lovelace", "Bob"}
    template = gallery.templates_of(person.id)[0]
    store.remove_template(template.id)
    assert load_gallery(store, engine.model_id).template_count == 3
    for call in (lambda: store.rename("p_missing", "X"), lambda: store.add_templates("p_missing", [], model_id="m")):
        with pytest.raises(FacegateError) as err:
            call()
        assert err.value.code == "person_not_found"
    with pytest.raises(FacegateError) as err:
        store.remove_template("t_missing")
    assert err.value.code == "template_not_found"


def test_external_reference_is_stored_only_as_a_keyed_hash(store, faces, engine):
    person = store.enroll(
        "Eve", [NewTemplate(faces[ENROLLED[3]][0])], model_id=engine.model_id, external_ref="Eve@Example.org"
    )
    assert store.find_by_external_ref("eve@example.org").id == person.id
    assert store.find_by_external_ref("someone@else.org") is None
    with store.engine.connect() as conn:
        stored = conn.execute(select(PersonRow.external_ref_hash, PersonRow.meta)).all()
    assert "example.org" not in repr(stored).lower()
    assert stored[0][0] == store.external_ref_hash("eve@example.org")


def test_collections_are_isolated_and_models_do_not_mix(store, faces, engine):
    store.create_collection("office")
    with pytest.raises(FacegateError) as err:
        store.create_collection("office")
    assert err.value.code == "duplicate_name"
    with pytest.raises(FacegateError) as err:
        store.enroll("X", [NewTemplate(faces[ENROLLED[0]][0])], model_id=engine.model_id, collection="nowhere")
    assert err.value.code == "collection_not_found"
    store.enroll("Office Ada", [NewTemplate(faces[ENROLLED[0]][0])], model_id=engine.model_id, collection="office")
    store.enroll("Home Ada", [NewTemplate(faces[ENROLLED[0]][1])], model_id=engine.model_id)
    store.enroll("Other model", [NewTemplate(faces[ENROLLED[1]][0])], model_id="another_model_v2")
    assert [p.name for p in load_gallery(store, engine.model_id, "office").people] == ["Office Ada"]
    home = load_gallery(store, engine.model_id)
    assert home.template_count == 1  # the other model's template is not in this index
    assert sorted(store.collections()) == ["default", "office"]


ENROL_SCRIPT = """
import sys, numpy as np
from facegate.store.db import make_engine
from facegate.store.repository import NewTemplate, Store
url, name, vectors, model = sys.argv[1], sys.argv[2], np.load(sys.argv[3]), sys.argv[4]
Store(make_engine(url)).enroll(name, [NewTemplate(v) for v in vectors], model_id=model)
"""


def test_writes_from_other_processes_are_visible_within_a_second(store, faces, engine, tmp_path):
    import subprocess
    import sys
    import time

    from facegate.service.indexes import LiveIndex

    live = LiveIndex(store, engine.model_id, poll_interval=0.2)
    assert live.gallery.template_count == 0
    url = store.engine.url.render_as_string(hide_password=False)
    procs = []
    for name in ENROLLED[:2]:
        path = tmp_path / f"{name}.npy"
        np.save(path, np.stack(faces[name][:3]))
        procs.append(subprocess.Popen([sys.executable, "-c", ENROL_SCRIPT, url, name, str(path), engine.model_id]))
    assert [p.wait(timeout=120) for p in procs] == [0, 0]  # two writers at once, both succeed
    done = time.monotonic()
    while {p.name for p in live.gallery.people} != set(ENROLLED[:2]):
        assert time.monotonic() - done < 1.0, "the other processes' writes did not show up within 1 s"
        time.sleep(0.02)
    assert live.gallery.template_count == 6
    assert identify(live.gallery, faces[ENROLLED[1]][3][None])[0].name == ENROLLED[1]
    # writes in this process too, including a rename and a delete
    person = store.find_by_name(ENROLLED[0])
    store.rename(person.id, "Renamed")
    assert live.refresh() and {p.name for p in live.gallery.people} == {"Renamed", ENROLLED[1]}
    store.delete_person(person.id)
    assert live.refresh() and live.gallery.template_count == 3
    assert not live.refresh()  # nothing changed since


def test_readers_get_the_current_index_while_a_reload_runs(store, faces, engine, monkeypatch):
    import threading
    import time

    from facegate.service import indexes as live_module

    store.enroll(ENROLLED[0], [NewTemplate(v) for v in faces[ENROLLED[0]][:3]], model_id=engine.model_id)
    live = live_module.LiveIndex(store, engine.model_id, poll_interval=0.0)
    loading, release = threading.Event(), threading.Event()

    def held(load):
        def held_load(*args, **kwargs):  # the real load, held until the test lets it finish
            loading.set()
            assert release.wait(30)
            return load(*args, **kwargs)

        return held_load

    monkeypatch.setattr(store, "index_rows", held(store.index_rows))
    monkeypatch.setattr(store, "load_people", held(store.load_people))
    store.enroll(ENROLLED[1], [NewTemplate(v) for v in faces[ENROLLED[1]][:3]], model_id=engine.model_id)
    writer = threading.Thread(target=live.refresh)  # a writer waits for its write to be searchable
    writer.start()
    assert loading.wait(30)
    seen: list[set[str]] = []  # a reader, while the load is held: it must not wait for it
    reader = threading.Thread(target=lambda: seen.append({p.name for p in live.gallery.people}))
    reader.start()
    reader.join(30)
    assert seen == [{ENROLLED[0]}]  # answered from the old index, the load still held
    release.set()
    writer.join(30)
    assert {p.name for p in live.gallery.people} == set(ENROLLED[:2])

    # a large gallery reloads on a thread of its own: the reader that notices the change does not wait
    monkeypatch.setattr(live_module, "BACKGROUND_RELOAD_TEMPLATES", 1)
    loading.clear()
    release.clear()
    store.rename(store.find_by_name(ENROLLED[0]).id, "Renamed")
    assert {p.name for p in live.gallery.people} == set(ENROLLED[:2])  # starts the reload, answers at once
    assert loading.wait(30)
    release.set()
    deadline = time.monotonic() + 10
    while {p.name for p in live.gallery.people} != {"Renamed", ENROLLED[1]}:
        assert time.monotonic() < deadline, "the background reload did not land"
        time.sleep(0.01)


def _content(gallery) -> tuple:
    """What searches depend on, independent of row order: people, and each template's owner and vector."""
    rows = gallery._rows
    people = sorted((p.id, p.name, p.created_at, json.dumps(p.metadata, sort_keys=True)) for p in gallery.people)
    templates = sorted(
        (i, o, q, src, v.tobytes())
        for i, o, q, src, v in zip(rows.ids, rows.owners, rows.qualities, rows.sources, rows.matrix, strict=True)
    )
    return people, templates


def test_incremental_reload_equals_a_full_load(store, faces, engine, monkeypatch):
    from facegate.service.indexes import LiveIndex, build_gallery

    model = engine.model_id
    ada = store.enroll("Ada", [NewTemplate(v) for v in faces["Colin_Powell"][:3]], model_id=model)
    bob = store.enroll("Bob", [NewTemplate(v) for v in faces["Tony_Blair"][:2]], model_id=model)
    cy = store.enroll("Cy", [NewTemplate(faces["Hugo_Chavez"][0])], model_id=model)
    live = LiveIndex(store, model, poll_interval=0.0)
    full_loads = []
    load = store.index_rows
    monkeypatch.setattr(store, "index_rows", lambda *a, **k: full_loads.append(1) or load(*a, **k))
    ada_templates = [t.id for t in live.gallery.templates_of(ada.id)]
    changes = [
        lambda: store.enroll("Dee", [NewTemplate(faces["George_W_Bush"][0])], model_id=model),
        lambda: store.add_templates(bob.id, [NewTemplate(faces["Tony_Blair"][2])], model_id=model),
        lambda: store.move_templates([ada_templates[0]], bob.id),
        lambda: store.remove_template(ada_templates[1]),
        lambda: store.rename(ada.id, "Ada L."),
        lambda: store.update_person(bob.id, metadata={"team": "blue"}),
        lambda: store.delete_person(cy.id),
        lambda: store.add_templates(ada.id, [NewTemplate(faces["Colin_Powell"][3])], model_id="another_model"),
    ]
    for change in changes:
        change()
        assert live.refresh()
        assert _content(live.gallery) == _content(build_gallery(load(model), model)), change
    # every reload above read only the people the log named, but the erase: it is logged as a change to
    # everyone, so the log never keeps an erased person's id (tests/test_privacy.py)
    assert full_loads == [1]
    assert identify(live.gallery, faces["Tony_Blair"][3][None])[0].name == "Bob"
    # a change that touches everyone (an archive import) reloads the whole collection
    with store.transaction() as session:
        store.bump_version(session, store.collection_row(session, "default").id)
    assert live.refresh() and full_loads == [1, 1]
    assert _content(live.gallery) == _content(build_gallery(load(model), model))


def test_change_log_names_changed_people_and_stays_bounded(store, faces, engine, monkeypatch):
    from facegate.store import repository
    from facegate.store.schema import ChangeRow

    monkeypatch.setattr(repository, "CHANGE_LOG_KEEP", 6)
    monkeypatch.setattr(repository, "CHANGE_LOG_PRUNE_EVERY", 3)
    start, _ = store.changes_since("default", None)
    ada = store.enroll("Ada", [NewTemplate(faces["Colin_Powell"][0])], model_id=engine.model_id)
    bob = store.enroll("Bob", [NewTemplate(faces["Tony_Blair"][0])], model_id=engine.model_id)
    assert store.changes_since("default", start) == (start + 2, {ada.id, bob.id})
    assert store.changes_since("default", start + 1) == (start + 2, {bob.id})
    assert store.changes_since("default", start + 2) == (start + 2, set())
    assert store.changes_since("default", None) == (start + 2, None)  # no version yet: load everything
    for i in range(8):
        store.rename(ada.id, f"Ada {i}")
    now = start + 10
    assert store.changes_since("default", now - 2) == (now, {ada.id})
    assert store.changes_since("default", now - 4)[1] is None  # older than half the log: load everything
    with store.engine.connect() as conn:
        kept = conn.scalars(select(ChangeRow.version)).all()
    assert min(kept) > now - 6 - 3 and len(kept) <= 6 + 3  # pruned as it goes


def test_move_templates_fixes_a_wrong_enrolment(store, faces, engine):
    # Tony Blair's photos enrolled under Hugo Chavez by mistake, one correct template each
    chavez = store.enroll(
        "Hugo_Chavez",
        [NewTemplate(faces["Hugo_Chavez"][0])] + [NewTemplate(v) for v in faces["Tony_Blair"][:2]],
        model_id=engine.model_id,
    )
    blair = store.enroll("Tony_Blair", [NewTemplate(faces["Tony_Blair"][2])], model_id=engine.model_id)
    wrong = [t.id for t in load_gallery(store, engine.model_id).templates_of(chavez.id)][1:]
    with pytest.raises(FacegateError) as err:
        store.move_templates([*wrong, "t_missing_template"], blair.id)
    assert err.value.code == "template_not_found"
    assert store.move_templates(wrong, blair.id) == 2
    gallery = load_gallery(store, engine.model_id)
    assert len(gallery.templates_of(chavez.id)) == 1 and len(gallery.templates_of(blair.id)) == 3
    assert identify(gallery, faces["Tony_Blair"][3][None])[0].name == "Tony_Blair"
    store.create_collection("other")
    elsewhere = store.enroll(
        "X", [NewTemplate(faces["George_W_Bush"][0])], model_id=engine.model_id, collection="other"
    )
    with pytest.raises(FacegateError) as err:
        store.move_templates(wrong[:1], elsewhere.id)
    assert err.value.code == "cross_collection"


def test_reembed_from_stored_chips(store, engine):
    import cv2

    from facegate.service.archives import Archives
    from facegate.service.indexes import IndexRegistry
    from facegate.vision.engine import EngineConfig, FaceEngine

    for name in ENROLLED:
        faces_ = [engine.analyze(p, max_faces=1, keep_chips=True)[0] for p in photos(name)[:3]]
        chips = [cv2.imencode(".jpg", cv2.cvtColor(f.chip, cv2.COLOR_RGB2BGR))[1].tobytes() for f in faces_]
        store.enroll(
            name,
            [NewTemplate(f.embedding, chip_jpeg=c) for f, c in zip(faces_, chips, strict=True)],
            model_id=engine.model_id,
        )
    new_engine = FaceEngine(EngineConfig(flip=True))  # another embedding space: dlib_resnet_v1+flip
    archives = Archives(store, IndexRegistry(store, new_engine.model_id))
    assert len(store.reembed_pending(new_engine.model_id)) == 12
    old = load_gallery(store, engine.model_id)
    seen = []
    assert archives.reembed(new_engine, "default", progress=lambda d, t: seen.append((d, t))) == 12
    assert seen[-1] == (12, 12)
    assert store.reembed_pending(new_engine.model_id) == []
    assert archives.reembed(new_engine, "default") == 0  # resumable
    fresh = load_gallery(store, new_engine.model_id)
    assert fresh.template_count == 12 and load_gallery(store, engine.model_id).template_count == old.template_count
    for name in ENROLLED:
        probe = new_engine.analyze(photos(name)[3], max_faces=1)[0].embedding[None]
        assert identify(fresh, probe)[0].name == name


def test_api_keys_are_stored_hashed_scoped_and_revocable(store):

    from facegate.store.keys import KeyStore
    from facegate.store.schema import ApiKeyRow

    keys = KeyStore(store)
    key, secret = keys.create("kiosk", ["recognize"])
    assert keys.authenticate(secret) == keys.list()[0] == keys.authenticate(secret)
    assert key.allows("recognize") and not key.allows("admin")
    with store.transaction() as session:
        assert secret not in session.scalar(select(ApiKeyRow.secret_hash))  # only the hash is kept
    assert keys.authenticate(secret + "x") is None and keys.authenticate("nonsense") is None
    with pytest.raises(FacegateError) as err:
        keys.create("bad", ["root"])
    assert err.value.code == "invalid_scope"
    assert keys.active_admin_keys() == 0
    keys.revoke(key.id)
    assert keys.authenticate(secret) is None
    with pytest.raises(FacegateError) as err:
        keys.revoke("k_missing")
    assert err.value.code == "key_not_found"
