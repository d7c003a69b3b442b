"""Visitor sessions against a real server on loopback, on SQLite and PostgreSQL: each session's people are
searched with the base and seen by that session only, and an expired session leaves nothing behind."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import pytest
import websockets
from sqlalchemy import func, select

from api_server import files, free_port, running_server
from conftest import STRANGER, photos
from facegate.config import Settings
from facegate.store.schema import CollectionRow, PersonRow, TemplateRow, VisitorSessionRow

SESSIONS = 100
BASE_PERSON, VISITOR = "Colin_Powell", "Tony_Blair"


@pytest.fixture()
def served(database_url, engine, tmp_path):
    """A real server on ``database_url`` with Colin Powell enrolled in the base (``default``) collection."""
    engine.warmup()  # the server shares this process's models
    settings = Settings().with_values(
        port=free_port(), database_url=database_url, data_dir=str(tmp_path), inference_threads=2
    )
    with running_server(settings) as app:
        base = f"http://127.0.0.1:{settings.server.port}"
        with httpx.Client(base_url=base, timeout=120) as client:
            created = client.post("/v1/people", json={"name": "Colin"}).json()
            client.post(f"/v1/people/{created['id']}/faces", files=files(*photos(BASE_PERSON)[:2]))
            yield app, client


def counts(app) -> dict[str, int]:
    """Rows of sessions, their collections, people and templates in the database."""
    store = app.state.runtime.store
    with store.transaction() as s:
        session_collections = select(CollectionRow.id).where(CollectionRow.name.like("session-%"))
        people = select(PersonRow.id).where(PersonRow.collection_id.in_(session_collections))
        return {
            "sessions": s.scalar(select(func.count()).select_from(VisitorSessionRow)),
            "collections": s.scalar(select(func.count()).select_from(session_collections.subquery())),
            "people": s.scalar(select(func.count()).select_from(people.subquery())),
            "templates": s.scalar(select(func.count()).where(TemplateRow.person_id.in_(people))),
            "chips": s.scalar(
                select(func.count()).where(TemplateRow.person_id.in_(people), TemplateRow.chip_jpeg.is_not(None))
            ),
        }


def start(client: httpx.Client) -> tuple[str, dict]:
    created = client.post("/v1/sessions")
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["token"].startswith("fgs_") and len(body["token"]) > 40 and body["base"] == "default"
    return body["id"], {"X-Session-Token": body["token"]}


def decided(answer: dict) -> str | None:
    return answer["faces"][0]["decision"]["name"]


def test_a_session_sees_its_people_and_the_base_and_leaves_nothing_when_it_expires(served):
    app, client = served
    a, a_token = start(client)
    b, b_token = start(client)
    enrolled = client.post(f"/v1/sessions/{a}/people?name=Tony", files=files(*photos(VISITOR)[:2]), headers=a_token)
    assert enrolled.status_code == 201, enrolled.text
    tony = enrolled.json()["person"]
    assert tony["thumbnail_url"] is None and enrolled.json()["added"] == 2
    probe = files(photos(VISITOR)[3], field="image")

    def recognise(session: str, headers: dict, path: object = photos(VISITOR)[3]) -> str | None:
        answer = client.post(f"/v1/sessions/{session}/recognize", files=files(path, field="image"), headers=headers)
        assert answer.status_code == 200, answer.text
        return decided(answer.json())

    assert recognise(a, a_token) == "Tony"  # the session's own person
    assert recognise(a, a_token, photos(BASE_PERSON)[3]) == "Colin"  # and the base's
    assert recognise(a, a_token, STRANGER) is None
    assert recognise(b, b_token) is None  # another session never sees Tony
    assert recognise(b, b_token, photos(BASE_PERSON)[3]) == "Colin"
    assert decided(client.post("/v1/recognize", files=probe).json()) is None  # nor does the base
    assert [p["name"] for p in client.get(f"/v1/sessions/{a}/people", headers=a_token).json()["items"]] == ["Tony"]
    assert client.get(f"/v1/sessions/{b}/people", headers=b_token).json()["total"] == 0
    assert [p["name"] for p in client.get("/v1/people").json()["items"]] == ["Colin"]
    # a token opens its own session only, and a session cannot reach the base's people
    assert client.get(f"/v1/sessions/{a}/people", headers=b_token).json()["code"] == "session_not_found"
    assert client.get(f"/v1/sessions/{a}").status_code == 404
    colin = client.get("/v1/people").json()["items"][0]["id"]
    assert client.delete(f"/v1/sessions/{a}/people/{colin}", headers=a_token).status_code == 404
    assert client.post("/v1/sessions?collection=nowhere").status_code == 404

    assert counts(app) == {"sessions": 2, "collections": 2, "people": 1, "templates": 2, "chips": 2}
    expires = client.get(f"/v1/sessions/{a}", headers=a_token).json()["expires_at"]
    sessions = app.state.runtime.sessions
    assert sessions.sweep(now=expires - 1) == 0  # not yet
    assert sessions.sweep(now=expires + sessions.ttl_s + 1) == 2
    assert counts(app) == {"sessions": 0, "collections": 0, "people": 0, "templates": 0, "chips": 0}
    assert client.get(f"/v1/sessions/{a}", headers=a_token).status_code == 404
    assert client.post(f"/v1/sessions/{a}/recognize", files=probe, headers=a_token).status_code == 404
    assert [p["name"] for p in client.get("/v1/people").json()["items"]] == ["Colin"]  # the base is untouched

    c, c_token = start(client)  # ended by its visitor: erased at once
    client.post(f"/v1/sessions/{c}/people?name=Tony", files=files(photos(VISITOR)[0]), headers=c_token)
    assert client.delete(f"/v1/sessions/{c}", headers=c_token).status_code == 204
    assert counts(app) == {"sessions": 0, "collections": 0, "people": 0, "templates": 0, "chips": 0}


def test_the_sweeper_erases_expired_sessions_by_itself(database_url, tmp_path):
    settings = Settings().with_values(
        port=free_port(), database_url=database_url, data_dir=str(tmp_path), session_ttl_s=0.5
    )
    with running_server(settings) as app, httpx.Client(base_url=f"http://127.0.0.1:{settings.server.port}") as client:
        session, token = start(client)
        deadline = time.monotonic() + 60
        while client.get(f"/v1/sessions/{session}", headers=token).status_code == 200:
            assert time.monotonic() < deadline, "the session never expired"
            time.sleep(0.6)  # without use, it expires
        while counts(app)["sessions"]:
            assert time.monotonic() < deadline, "the sweeper never erased the session"
            time.sleep(0.1)
        assert counts(app)["collections"] == 0


async def _visit(base: str, n: int) -> dict:
    """One visitor: a session, a person enrolled in it under a name of its own, then recognition over HTTP
    and over the WebSocket stream (the same face is enrolled in every session under another name)."""
    async with httpx.AsyncClient(base_url=base, timeout=600) as client:
        created = (await client.post("/v1/sessions")).json()
        session, headers = created["id"], {"X-Session-Token": created["token"]}
        enrol = files(photos(VISITOR)[n % 3], field="images")
        answer = await client.post(f"/v1/sessions/{session}/people?name=Tony-{n}", files=enrol, headers=headers)
        assert answer.status_code == 201, answer.text
        probe = photos(VISITOR)[3].read_bytes()
        recognised = await client.post(
            f"/v1/sessions/{session}/recognize", files=[("image", ("p.jpg", probe, "image/jpeg"))], headers=headers
        )
        listed = await client.get(f"/v1/sessions/{session}/people", headers=headers)
    url = base.replace("http", "ws") + f"/v1/stream?session={session}"
    async with websockets.connect(url, subprotocols=["facegate", f"facegate.session.{created['token']}"]) as ws:
        assert json.loads(await ws.recv())["type"] == "ready"
        await ws.send(probe)
        streamed = json.loads(await ws.recv())
        await ws.send(photos(BASE_PERSON)[3].read_bytes())
        base_streamed = json.loads(await ws.recv())
    return {
        "http": decided(recognised.json()),
        "stream": decided(streamed),
        "base": decided(base_streamed),
        "people": [p["name"] for p in listed.json()["items"]],
    }


def test_a_hundred_concurrent_sessions_never_see_each_others_people(served):
    app, client = served
    base = str(client.base_url).rstrip("/")

    async def everyone() -> list[dict]:
        return await asyncio.gather(*(_visit(base, n) for n in range(SESSIONS)))

    seen = asyncio.run(everyone())
    for n, visit in enumerate(seen):
        mine = f"Tony-{n}"
        assert visit == {"http": mine, "stream": mine, "base": "Colin", "people": [mine]}, (n, visit)
    assert counts(app)["sessions"] == SESSIONS
    assert [p["name"] for p in client.get("/v1/people").json()["items"]] == ["Colin"]  # the base never sees them
    assert app.state.runtime.sessions.sweep(now=time.time() + 10 * app.state.runtime.sessions.ttl_s) == SESSIONS
    assert counts(app) == {"sessions": 0, "collections": 0, "people": 0, "templates": 0, "chips": 0}


def test_a_kiosk_key_uses_sessions_but_never_writes_the_base(tmp_path, engine):
    settings = Settings().with_values(
        port=free_port(), database_url=f"sqlite:///{tmp_path / 'k.db'}", data_dir=str(tmp_path), auth="required"
    )
    with running_server(settings) as app, httpx.Client(base_url=f"http://127.0.0.1:{settings.server.port}") as c:
        keys = app.state.runtime.keys
        kiosk = {"Authorization": f"Bearer {keys.create('kiosk', ['recognize']).secret}"}
        lobby = {"Authorization": f"Bearer {keys.create('lobby', ['recognize'], collections=['lobby']).secret}"}
        assert c.post("/v1/sessions").status_code == 401
        assert c.post("/v1/sessions", headers=lobby).status_code == 403  # the default base is not its collection
        created = c.post("/v1/sessions", headers=kiosk).json()
        mine = {**kiosk, "X-Session-Token": created["token"]}
        assert c.get(f"/v1/sessions/{created['id']}", headers={"X-Session-Token": created["token"]}).status_code == 401
        assert c.get(f"/v1/sessions/{created['id']}", headers=mine).status_code == 200
        assert c.post("/v1/people", json={"name": "Eve"}, headers=kiosk).status_code == 403
        assert c.get("/v1/people", headers=kiosk).status_code == 403
        assert c.delete(f"/v1/sessions/{created['id']}", headers=mine).status_code == 204
