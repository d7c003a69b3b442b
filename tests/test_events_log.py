"""The event log on SQLite and PostgreSQL, and over HTTP: pages with a cursor, filters, CSV, the live feed."""

from __future__ import annotations

import asyncio
import base64
import csv
import io
import json
import time

import httpx
import pytest
import websockets

from api_server import free_port, running_server
from facegate.events.types import Event, event_id
from facegate.store.db import make_engine, upgrade
from facegate.store.events import EventLog
from facegate.store.records import EventQuery
from facegate.store.repository import Store


def event(n: int, kind: str = "recognized", source: str = "camera:c1", person: str = "p_ann") -> Event:
    ts = 1_800_000_000 + n
    return Event(
        id=event_id(ts),
        ts=ts,
        kind=kind,
        source=source,
        collection="default",
        track_id=n,
        person_id=person,
        name="Ann",
        confidence=0.99,
        decision="PASS",
        box=(1.0, 2.0, 3.0, 4.0),
    )


def test_pages_filters_and_idempotent_appends(database_url):
    engine = make_engine(database_url)
    upgrade(engine)
    log = EventLog(Store(engine))
    events = [event(n, source="camera:c1" if n % 2 else "camera:c2") for n in range(25)]
    assert log.append(e.to_dict() for e in events) == 25
    assert log.append(e.to_dict() for e in events[:5]) == 0  # an id already logged is skipped
    first = log.query(EventQuery(limit=10))
    second = log.query(EventQuery(limit=10, after=first[-1]["id"]))
    assert [e["id"] for e in first + second] == [e.id for e in events[:20]]
    assert {e["source"] for e in log.query(EventQuery(source="camera:c2", limit=100))} == {"camera:c2"}
    window = log.query(EventQuery(since=1_800_000_005, until=1_800_000_010, limit=100))
    assert [e["track_id"] for e in window] == [5, 6, 7, 8, 9] and window[0]["box"] == [1.0, 2.0, 3.0, 4.0]
    assert len(list(log.export(EventQuery()))) == 25
    assert log.prune(1_800_000_010) == 10 and len(log.query(EventQuery(limit=100))) == 15
    engine.dispose()


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    from facegate.config import load_settings

    settings = load_settings().with_values(data_dir=str(tmp_path_factory.mktemp("events")), port=free_port())
    with running_server(settings) as app:
        yield app, f"http://127.0.0.1:{settings.server.port}"


def test_published_events_are_logged_listed_exported_and_fed_live(service):
    app, base = service
    bus = app.state.runtime.bus

    async def live() -> list[dict]:
        async with websockets.connect(base.replace("http", "ws") + "/v1/events/ws?kind=recognized") as ws:
            assert json.loads(await ws.recv())["type"] == "ready"
            for n in range(3):
                bus.publish(event(1000 + n))
            bus.publish(event(1003, kind="left"))  # filtered out
            got = [json.loads(await asyncio.wait_for(ws.recv(), 5)) for _ in range(3)]
            return got

    async def compat() -> dict:
        async with websockets.connect(base.replace("http", "ws") + "/v1/events/ws?format=compat") as ws:
            assert json.loads(await ws.recv())["type"] == "ready"
            bus.publish(Event(**{**event(2000).__dict__, "snapshot": b"\xff\xd8jpeg\xff\xd9"}))
            return json.loads(await asyncio.wait_for(ws.recv(), 5))

    face = asyncio.run(compat())
    assert set(face) >= {"type", "name", "distance", "status", "box", "timestamp", "frame"}
    assert (face["type"], face["name"], face["distance"], face["status"]) == ("face", "Ann", 0.01, "PASS")
    assert base64.b64decode(face["frame"]).startswith(b"\xff\xd8")
    started = time.monotonic()
    fed = asyncio.run(live())
    assert [e["track_id"] for e in fed] == [1000, 1001, 1002] and time.monotonic() - started < 10
    page = httpx.get(f"{base}/v1/events", params={"limit": 2}).json()
    assert len(page["events"]) == 2 and page["next_cursor"] == page["events"][-1]["id"]
    rest = httpx.get(f"{base}/v1/events", params={"cursor": page["next_cursor"]}).json()
    kinds = ["recognized"] * 3 + ["left", "recognized"]  # by time: the compat event is the newest
    assert [e["kind"] for e in page["events"] + rest["events"]] == kinds
    assert rest["next_cursor"] is None
    rows = list(csv.DictReader(io.StringIO(httpx.get(f"{base}/v1/events/export.csv").text)))
    assert [r["kind"] for r in rows] == kinds and rows[0]["box"] == "1,2,3,4"
    bad = httpx.get(f"{base}/v1/events", params={"kind": "exploded"})
    assert bad.status_code == 422


def test_the_cli_exports_and_tails_the_log(tmp_path):
    import os
    import subprocess
    import sys

    from facegate.config import load_settings
    from facegate.service.runtime import Runtime

    runtime = Runtime.build(load_settings().with_values(data_dir=str(tmp_path)))
    runtime.events.log.append(e.to_dict() for e in [event(n) for n in range(12)] + [event(12, kind="left")])
    runtime.close()
    env = {**os.environ, "FACEGATE_DATA_DIR": str(tmp_path)}
    exported = subprocess.run(
        [sys.executable, "-m", "facegate", "events", "export", "--kind", "recognized"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    rows = list(csv.DictReader(io.StringIO(exported.stdout)))
    assert exported.returncode == 0 and len(rows) == 12 and {r["kind"] for r in rows} == {"recognized"}
    tail = subprocess.Popen(
        [sys.executable, "-m", "facegate", "events", "tail", "--last", "3"], env=env, stdout=subprocess.PIPE, text=True
    )
    time.sleep(5)
    tail.terminate()
    lines = tail.communicate(timeout=30)[0].splitlines()
    assert len(lines) == 3 and "left" in lines[-1] and "Ann" in lines[0]
