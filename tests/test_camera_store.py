"""Cameras as data (SQLite and PostgreSQL): definitions, redaction, leases between workers, status."""

from __future__ import annotations

import time

import pytest

from facegate.store.cameras import CameraStore
from facegate.store.db import make_engine, upgrade
from facegate.store.errors import StoreError
from facegate.store.records import CameraFields
from facegate.store.repository import Store

SECRET_URL = "rtsp://admin:s3cr3t-pw@192.0.2.10:554/stream1"
DEFAULTS = {"fps": 5.0, "cooldown_s": 5.0, "min_face_px": 40}


@pytest.fixture
def cameras(database_url):
    engine = make_engine(database_url)
    upgrade(engine)
    store = Store(engine)
    yield CameraStore(store), store
    engine.dispose()


def test_definitions_never_show_the_password(cameras):
    cams, store = cameras
    store.create_collection("lobby")
    camera = cams.create(CameraFields(name="front door", url=SECRET_URL, collection="lobby"), **DEFAULTS)
    assert camera.url == "rtsp://admin:***@192.0.2.10:554/stream1"
    assert (camera.collection, camera.enabled, camera.fps, camera.min_face_px) == ("lobby", True, 5.0, 40)
    assert "s3cr3t" not in repr(cams.list()) + repr(cams.get(camera.id))
    assert cams.source_url(camera.id) == SECRET_URL  # only for the process that opens it

    changed = cams.update(camera.id, CameraFields(fps=2.5, enabled=False, name="door"))
    assert (changed.name, changed.fps, changed.enabled, changed.collection) == ("door", 2.5, False, "lobby")
    assert changed.updated_at >= camera.updated_at


def test_refusals_have_codes(cameras):
    cams, _ = cameras
    cams.create(CameraFields(name="a", url="rtsp://h/a"), **DEFAULTS)
    cases = [
        (CameraFields(name="a", url="rtsp://h/b"), "duplicate_name"),
        (CameraFields(name="b", url="rtsp://h/b", collection="nope"), "collection_not_found"),
        (CameraFields(name="b", url="rtsp://h/b", fps=0), "invalid_camera"),
        (CameraFields(name="b", url="rtsp://h/b", fps=float("nan")), "invalid_camera"),
        (CameraFields(name="b", url="rtsp://h/b", cooldown_s=-1), "invalid_camera"),
        (CameraFields(name=" ", url="rtsp://h/b"), "invalid_camera"),
        (CameraFields(name="b", url="x" * 2001), "invalid_camera"),
    ]
    for fields, code in cases:
        with pytest.raises(StoreError) as err:
            cams.create(fields, **DEFAULTS)
        assert err.value.code == code, fields
    with pytest.raises(StoreError) as err:
        cams.get("cam_missing")
    assert err.value.code == "camera_not_found"
    assert [c.name for c in cams.list()] == ["a"]


def test_a_collection_watched_by_a_camera_is_not_deleted(cameras):
    cams, store = cameras
    store.create_collection("lobby")
    camera = cams.create(CameraFields(name="door", url="rtsp://h/a", collection="lobby"), **DEFAULTS)
    with pytest.raises(StoreError) as err:
        store.delete_collection("lobby")
    assert err.value.code == "collection_in_use" and "door" in err.value.message
    cams.delete(camera.id)
    store.delete_collection("lobby")
    assert "lobby" not in store.collections()


def test_leases_share_the_cameras_between_workers_and_expire(cameras, monkeypatch):
    import facegate.store.cameras as camera_store

    monkeypatch.setattr(camera_store, "HANDOVER_GRACE_S", 0.3)
    cams, _ = cameras
    ids = [cams.create(CameraFields(name=f"c{i}", url=f"rtsp://h/{i}"), **DEFAULTS).id for i in range(5)]
    cams.update(ids[4], CameraFields(enabled=False))
    assert sorted(cams.claim("w1", lease_s=30)) == sorted(ids[:4])  # alone: every enabled camera
    assert cams.claim("w2", lease_s=30) == []  # all held; but w2 now counts among the workers alive
    first = cams.claim("w1", lease_s=30)  # w1 gives up what exceeds its share...
    assert cams.claim("w2", lease_s=30) == []  # ...after a grace in which it stops them
    time.sleep(0.4)
    second = cams.claim("w2", lease_s=30)
    assert len(first) == len(second) == 2 and set(first) | set(second) == set(ids[:4])
    before = {c.id: c for c in cams.list()}
    assert cams.claim("w1", lease_s=30) == first  # renewed, nothing taken from w2
    assert {c.id: c for c in cams.list()} == before  # a renewal is not a change (runners are not restarted)

    cams.claim("w2", lease_s=0.05)  # w2 stops renewing (killed): its leases and its heartbeat run out
    time.sleep(0.1)
    assert sorted(cams.claim("w1", lease_s=0.5)) == sorted(ids[:4])
    cams.release("w1")  # a clean stop gives everything back at once
    assert sorted(cams.claim("w2", lease_s=30)) == sorted(ids[:4])


def test_status_reports_replace_each_other_and_go_with_the_camera(cameras):
    cams, _ = cameras
    camera = cams.create(CameraFields(name="door", url="rtsp://h/a"), **DEFAULTS)
    assert cams.status(camera.id) is None
    cams.report(camera.id, "w1", "down", ("source_unreachable", "connection refused"), {"decoded": 0}, {})
    cams.report(camera.id, "w1", "live", None, {"decoded": 10}, {"tracks": [{"track_id": 1}]})
    status = cams.status(camera.id)
    assert (status.state, status.error_code, status.stats, status.latest["tracks"][0]["track_id"]) == (
        "live",
        None,
        {"decoded": 10},
        1,
    )
    assert set(cams.statuses()) == {camera.id}
    cams.delete(camera.id)
    assert cams.statuses() == {}
    cams.report(camera.id, "w1", "live", None, {}, {})  # a late report of a deleted camera is ignored
