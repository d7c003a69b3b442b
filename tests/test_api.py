"""The service over real HTTP and WebSocket connections to a real server on loopback, with real photos."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import stat
import zipfile

import httpx
import numpy as np
import pytest
import websockets
from PIL import Image

from api_server import files, free_port, running_server
from conftest import GROUP, GROUP_FACES, NO_FACE, STRANGER, photos
from facegate.config import Settings, load_settings
from facegate.vision.errors import FacegateError

PROBLEM = "application/problem+json"


@pytest.fixture(scope="module")
def server(tmp_path_factory, engine):
    engine.warmup()  # the server shares this process's models
    db = tmp_path_factory.mktemp("api") / "facegate.db"
    settings = Settings().with_values(port=free_port(), database_url=f"sqlite:///{db}")
    with running_server(settings) as app:
        yield app, f"http://127.0.0.1:{settings.server.port}"


@pytest.fixture()
def client(server):
    with httpx.Client(base_url=server[1], timeout=60) as c:
        yield c


def people_count(client) -> int:
    return client.get("/v1/people").json()["total"]


def assert_problem(response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert body["code"] == code and body["status"] == status and body["detail"]


def test_enrol_recognise_rename_delete_cycle(client):
    colin = client.post("/v1/people", json={"name": "Colin", "external_ref": "colin@example.org"})
    assert colin.status_code == 201, colin.text
    pid = colin.json()["id"]
    added = client.post(f"/v1/people/{pid}/faces", files=files(*photos("Colin_Powell")[:3]))
    assert added.status_code == 201, added.text
    assert added.json()["added"] == 3 and added.json()["person"]["template_count"] == 3
    # base64 JSON for the second person
    tony = client.post("/v1/people", json={"name": "Tony"}).json()["id"]
    b64 = [base64.b64encode(p.read_bytes()).decode() for p in photos("Tony_Blair")[:3]]
    assert client.post(f"/v1/people/{tony}/faces", json={"images": b64}).status_code == 201

    probe = photos("Colin_Powell")[3]
    result = client.post("/v1/recognize", files=files(probe, field="image"), params={"top_k": 2}).json()
    assert [f["decision"]["status"] for f in result["faces"]] == ["match"]
    face = result["faces"][0]
    assert face["decision"]["name"] == "Colin" and face["decision"]["confidence"] > 0.5
    assert len(face["landmarks"]) == 5 and face["quality"]["score"] > 0
    assert face["candidates"][0]["person_id"] == pid
    stranger = client.post("/v1/recognize", files=files(STRANGER, field="image")).json()
    assert stranger["faces"][0]["decision"]["status"] == "unknown"

    assert client.get("/v1/people/by-ref", params={"ref": "Colin@Example.org "}).json()["id"] == pid
    faces = client.get(f"/v1/people/{pid}/faces").json()
    chip = client.get(faces[0]["chip_url"])
    assert chip.headers["content-type"] == "image/jpeg" and Image.open(io.BytesIO(chip.content)).size == (150, 150)
    best = max(faces, key=lambda t: t["quality"])  # the person's thumbnail is their best template's chip
    listed = client.get("/v1/people", params={"q": "colin"}).json()["items"][0]
    assert listed["thumbnail_url"] == client.get(f"/v1/people/{pid}").json()["thumbnail_url"] == best["chip_url"]
    assert client.post("/v1/people", json={"name": "Nobody yet"}).json()["thumbnail_url"] is None

    assert client.patch(f"/v1/people/{pid}", json={"name": "Colin Powell"}).json()["name"] == "Colin Powell"
    renamed = client.post("/v1/recognize", files=files(probe, field="image")).json()
    assert renamed["faces"][0]["decision"]["name"] == "Colin Powell"
    assert [p["name"] for p in client.get("/v1/people", params={"q": "powell"}).json()["items"]] == ["Colin Powell"]

    assert client.delete(f"/v1/people/{pid}").status_code == 204
    assert_problem(client.get(f"/v1/people/{pid}"), 404, "person_not_found")
    gone = client.post("/v1/recognize", files=files(probe, field="image")).json()
    assert gone["faces"][0]["decision"]["status"] == "unknown"
    assert client.delete(f"/v1/people/{tony}").status_code == 204


def test_verify_detect_and_group_photo(client):
    a, b = photos("Hugo_Chavez")[:2]
    same = client.post("/v1/verify", files=[*files(a, field="image_a"), *files(b, field="image_b")]).json()
    assert same["same"] is True and same["distance"] == pytest.approx(1 - same["similarity"], abs=1e-3)
    other = client.post("/v1/verify", files=[*files(a, field="image_a"), *files(STRANGER, field="image_b")]).json()
    assert other["same"] is False
    detected = client.post("/v1/detect", files=files(GROUP, field="image")).json()
    assert len(detected["faces"]) == GROUP_FACES
    largest = client.post("/v1/recognize", files=files(GROUP, field="image"), params={"largest_only": True}).json()
    assert len(largest["faces"]) == 1
    none = client.post("/v1/recognize", files=files(NO_FACE, field="image")).json()
    assert none["faces"] == []


def zip_of(entries: dict[str, bytes], links: tuple[str, ...] = ()) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in entries.items():
            info = zipfile.ZipInfo(name)
            if name in links:
                info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, data, zipfile.ZIP_DEFLATED)
    return buf.getvalue()


def test_zip_enrolment_reports_every_file_and_refuses_hostile_entries(client):
    bush = photos("George_W_Bush")
    archive = zip_of(
        {
            "team/George Bush/1.jpg": bush[0].read_bytes(),
            "team/George Bush/2.jpg": bush[1].read_bytes(),
            "team/Hugo Chavez/1.jpg": photos("Hugo_Chavez")[0].read_bytes(),
            "team/Hugo.jpg": photos("Hugo_Chavez")[1].read_bytes(),  # a file name names nobody
            "team/../../etc/evil.jpg": bush[2].read_bytes(),
            "/abs/evil.jpg": bush[2].read_bytes(),
            "team/link.jpg": b"/etc/passwd",
            "team/notes.txt": b"hello",
            "team/George Bush/empty.jpg": NO_FACE.read_bytes(),
        },
        links=("team/link.jpg",),
    )
    report = client.post("/v1/enroll/zip", files={"archive": ("team.zip", archive, "application/zip")})
    assert report.status_code == 200, report.text
    body = report.json()
    assert body["people_created"] == 2 and body["templates_added"] == 3
    codes = {f["source"]: f.get("code") for f in body["files"]}
    assert codes["team/../../etc/evil.jpg"] == "zip_unsafe_entry"
    assert codes["/abs/evil.jpg"] == "zip_unsafe_entry"
    assert codes["team/link.jpg"] == "zip_unsafe_entry"
    assert codes["team/notes.txt"] == "not_an_image"
    assert codes["team/George Bush/empty.jpg"] == "no_face"
    assert codes["team/Hugo.jpg"] == "no_person_folder"
    names = {p["name"] for p in client.get("/v1/people").json()["items"]}
    assert {"George Bush", "Hugo Chavez"} <= names and "Hugo" not in names and "team" not in names
    for person in client.get("/v1/people").json()["items"]:
        client.delete(f"/v1/people/{person['id']}")


def test_whole_archive_refusals_change_nothing(client):
    before = people_count(client)
    bomb = io.BytesIO()
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("Bomb/1.jpg", b"\0" * (20 * 1024 * 1024))
    response = client.post("/v1/enroll/zip", files={"archive": ("b.zip", bomb.getvalue(), "application/zip")})
    assert_problem(response, 413, "zip_bomb")
    many = zip_of({f"P/{i}.jpg": b"x" for i in range(2_001)})
    assert_problem(
        client.post("/v1/enroll/zip", content=many, headers={"content-type": "application/zip"}),
        413,
        "zip_too_many_entries",
    )
    garbage = client.post(
        "/v1/enroll/zip", content=b"PK\x03\x04 not really", headers={"content-type": "application/zip"}
    )
    assert_problem(garbage, 422, "zip_corrupt")
    assert people_count(client) == before


def broken_png() -> bytes:
    """A PNG whose compressed pixel data is overwritten with zeros."""
    buf = io.BytesIO()
    Image.fromarray((np.random.default_rng(0).random((64, 64, 3)) * 255).astype("uint8")).save(buf, "PNG")
    data = bytearray(buf.getvalue())
    data[60:200] = bytes(140)
    return bytes(data)


def test_bad_input_gets_a_problem_and_changes_nothing(client, tmp_path):
    person = client.post("/v1/people", json={"name": "Target"}).json()["id"]
    before = client.get(f"/v1/people/{person}").json()["template_count"]
    jpeg = photos("Tony_Blair")[0].read_bytes()
    cases = [
        (("x.png", broken_png(), "image/png"), 422, "image_corrupt"),
        (("x.jpg", jpeg[: len(jpeg) // 2], "image/jpeg"), 422, "image_truncated"),
        (("x.txt", b"just some text, not an image", "text/plain"), 415, "image_unsupported_type"),
        (("x.jpg", b"", "image/jpeg"), 422, "image_empty"),
    ]
    bomb = io.BytesIO()
    Image.new("1", (20_000, 20_000)).save(bomb, "PNG")  # 2.5 KB of PNG, 400 MP decoded
    cases.append((("bomb.png", bomb.getvalue(), "image/png"), 413, "image_too_many_pixels"))
    for upload, status, code in cases:
        assert_problem(client.post("/v1/recognize", files={"image": upload}), status, code)
        added = client.post(f"/v1/people/{person}/faces", files={"images": upload})
        assert_problem(added, status, code)  # every file skipped: their shared error, not "no_face"
    assert_problem(
        client.post("/v1/recognize", content=b"hello", headers={"content-type": "text/plain"}),
        415,
        "unsupported_media_type",
    )
    assert_problem(
        client.post("/v1/recognize", content=b"{nope", headers={"content-type": "application/json"}),
        422,
        "invalid_json",
    )
    assert_problem(client.post("/v1/recognize", json={"image": "***"}), 422, "invalid_base64")
    assert_problem(client.post("/v1/recognize", json={}), 422, "image_missing")
    huge = b"\0" * (31 * 1024 * 1024)
    assert_problem(
        client.post("/v1/recognize", content=huge, headers={"content-type": "image/jpeg"}), 413, "request_too_large"
    )
    assert_problem(client.post("/v1/people", json={"name": ""}), 422, "invalid_request")
    assert_problem(client.post("/v1/people", json={"name": "Target"}), 409, "duplicate_name")
    assert_problem(client.post("/v1/people", json={"name": "X", "surprise": 1}), 422, "invalid_request")
    assert_problem(client.get("/v1/people/p_nobody"), 404, "person_not_found")
    assert_problem(client.get("/v1/people", params={"collection": "nowhere"}), 404, "collection_not_found")
    assert_problem(
        client.post("/v1/recognize", files=files(STRANGER, field="image"), params={"threshold": 5}),
        422,
        "invalid_request",
    )
    assert_problem(client.delete("/v1/collections/default"), 409, "collection_protected")
    assert client.get(f"/v1/people/{person}").json()["template_count"] == before
    assert client.get("/healthz").json() == {"status": "ok"}  # still serving
    client.delete(f"/v1/people/{person}")


def test_collections_are_isolated(client):
    assert client.post("/v1/collections", json={"name": "office"}).status_code == 201
    pid = client.post("/v1/people", json={"name": "Hugo"}, params={"collection": "office"}).json()["id"]
    client.post(f"/v1/people/{pid}/faces", files=files(*photos("Hugo_Chavez")[:2]), params={"collection": "office"})
    probe = files(photos("Hugo_Chavez")[3], field="image")
    in_office = client.post("/v1/recognize", files=probe, params={"collection": "office"}).json()
    assert in_office["faces"][0]["decision"]["name"] == "Hugo"
    in_default = client.post("/v1/recognize", files=probe).json()
    assert in_default["faces"][0]["decision"]["status"] == "unknown"
    assert_problem(client.get(f"/v1/people/{pid}"), 404, "person_not_found")  # not in default
    assert client.delete("/v1/collections/office").status_code == 204
    assert "office" not in [c["name"] for c in client.get("/v1/collections").json()]


def test_docs_and_metrics(client):
    spec = client.get("/openapi.json").json()
    assert "/v1/recognize" in spec["paths"] and "/v1/people/{person_id}/faces" in spec["paths"]
    assert client.get("/docs").status_code == 200
    client.post("/v1/recognize", files=files(GROUP, field="image"))
    text = client.get("/metrics").text
    assert "facegate_faces_total" in text and "facegate_request_seconds_bucket" in text
    info = client.get("/v1/info").json()
    assert info["model_id"] == "dlib_resnet_v1" and info["auth_required"] is False


# ----------------------------------------------------------------- WebSocket stream


async def _stream(url: str, frames: list[bytes], *, wait_each: bool, extra: list | None = None) -> list[dict]:
    answers = []
    async with websockets.connect(url, max_size=None) as ws:
        assert json.loads(await ws.recv())["type"] == "ready"
        for message in extra or []:
            await ws.send(message)
            answers.append(json.loads(await ws.recv()))
        for frame in frames:
            await ws.send(frame)
            if wait_each:
                answers.append(json.loads(await ws.recv()))
        if not wait_each:
            while True:
                try:
                    answer = json.loads(await asyncio.wait_for(ws.recv(), timeout=5))
                except TimeoutError:
                    break
                answers.append(answer)
                if answer.get("frame_id") == len(frames):
                    break
    return answers


def test_stream_names_faces_and_survives_bad_frames(server, client):
    pid = client.post("/v1/people", json={"name": "Tony"}).json()["id"]
    client.post(f"/v1/people/{pid}/faces", files=files(*photos("Tony_Blair")[:3]))
    url = server[1].replace("http", "ws") + "/v1/stream"
    probe = photos("Tony_Blair")[3].read_bytes()
    answers = asyncio.run(
        _stream(
            url,
            [probe, b"not a jpeg", STRANGER.read_bytes()],
            wait_each=True,
            extra=['{"type": "options", "top_k": 1}', "{bad json", '{"type": "options", "top_k": 99}'],
        )
    )
    ready, bad_json, bad_option, first, broken, third = answers
    assert ready["type"] == "ready"
    assert bad_json["type"] == "error" and bad_option["code"] == "invalid_message"
    assert first["frame_id"] == 1 and first["faces"][0]["decision"]["name"] == "Tony"
    assert broken == {"type": "error", "frame_id": 2, "code": "image_unsupported_type", "detail": broken["detail"]}
    assert third["frame_id"] == 3 and third["faces"][0]["decision"]["status"] == "unknown"
    client.delete(f"/v1/people/{pid}")


def test_stream_backpressure_keeps_only_the_newest_frame(server):
    url = server[1].replace("http", "ws") + "/v1/stream"
    frames = [GROUP.read_bytes()] * 30  # sent at once; each takes tens of ms to process
    answers = asyncio.run(_stream(url, frames, wait_each=False))
    results = [a for a in answers if a["type"] == "result"]
    assert results[-1]["frame_id"] == 30  # the newest frame is always processed
    assert len(results) < 30 and results[-1]["dropped"] == 30 - len(results)
    assert all(len(r["faces"]) == GROUP_FACES for r in results)


# ----------------------------------------------------------------- auth


def test_auth_scopes_when_bound_publicly(tmp_path, engine, capfd):
    settings = Settings().with_values(
        host="0.0.0.0", port=free_port(), database_url=f"sqlite:///{tmp_path / 'auth.db'}"
    )
    assert settings.server.auth_required
    with running_server(settings):
        printed = capfd.readouterr().out
        admin = next(w for w in printed.split() if w.startswith("fgk_"))  # the first admin key, shown once
        base = f"http://127.0.0.1:{settings.server.port}"
        with httpx.Client(base_url=base, timeout=60) as c:
            assert_problem(c.get("/v1/people"), 401, "unauthorized")
            assert_problem(c.post("/v1/recognize", files=files(STRANGER, field="image")), 401, "unauthorized")
            assert_problem(c.get("/v1/people", headers={"Authorization": "Bearer fgk_wrong"}), 401, "unauthorized")
            as_admin = {"Authorization": f"Bearer {admin}"}
            created = c.post("/v1/keys", json={"name": "kiosk", "scopes": ["recognize"]}, headers=as_admin).json()
            kiosk = {"X-API-Key": created["secret"]}
            assert c.post("/v1/recognize", files=files(STRANGER, field="image"), headers=kiosk).status_code == 200
            assert_problem(c.post("/v1/people", json={"name": "Eve"}, headers=kiosk), 403, "forbidden")
            assert_problem(c.get("/v1/keys", headers=kiosk), 403, "forbidden")
            assert c.post("/v1/people", json={"name": "Eve"}, headers=as_admin).status_code == 201
            keys = c.get("/v1/keys", headers=as_admin).json()
            assert all("secret" not in k for k in keys) and len(keys) == 2

            ws_url = base.replace("http", "ws") + "/v1/stream"

            async def stream_status(url: str) -> tuple[int | None, str]:
                async with websockets.connect(url) as ws:
                    first = json.loads(await ws.recv())
                    if first["type"] == "ready":
                        return None, "ready"
                    with pytest.raises(websockets.ConnectionClosed):
                        await ws.recv()
                    return ws.close_code, first["code"]

            assert asyncio.run(stream_status(ws_url)) == (4401, "unauthorized")
            assert asyncio.run(stream_status(f"{ws_url}?api_key={created['secret']}")) == (None, "ready")

            assert c.delete(f"/v1/keys/{created['id']}", headers=as_admin).json()["revoked_at"]
            revoked = c.post("/v1/recognize", files=files(STRANGER, field="image"), headers=kiosk)
            assert_problem(revoked, 401, "unauthorized")
            assert c.get("/healthz").status_code == 200  # health needs no key


def test_the_ui_and_docs_are_served_by_facegate_itself(client):
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert '<script type="module" src="/ui/app.js">' in page.text
    script = client.get("/ui/app.js")
    assert script.headers["content-type"].startswith("text/javascript")
    assert script.headers["cache-control"] == "no-cache"  # revalidated, so an upgrade shows at once
    assert client.get("/ui/app.js", headers={"If-None-Match": script.headers["etag"]}).status_code == 304
    assert client.get("/ui/../api/app.py").status_code == 404
    docs = client.get("/docs").text
    assert "/docs/assets/swagger-ui-bundle.js" in docs and "cdn." not in docs
    assert client.get("/docs/assets/swagger-ui-bundle.js").status_code == 200


@pytest.mark.parametrize("raw", ["0", "-1", "two"])
def test_thread_settings_refuse_bad_values(raw):
    for name in ("FACEGATE_INFERENCE_THREADS", "FACEGATE_MODEL_THREADS"):
        with pytest.raises(FacegateError) as err:
            load_settings(environ={name: raw})
        assert err.value.code == "bad_config"
    engine = load_settings(environ={}).engine
    assert engine.inference_threads == 2 and engine.model_threads == 1


def test_keys_limited_to_collections(tmp_path, engine):
    """A key limited to a collection reads and writes only there; a threshold of -1 cannot list other galleries."""
    settings = Settings().with_values(port=free_port(), database_url=f"sqlite:///{tmp_path / 'k.db'}", auth="required")
    with running_server(settings) as app:
        admin = {"Authorization": f"Bearer {app.state.runtime.keys.create('admin', ['admin']).secret}"}
        with httpx.Client(base_url=f"http://127.0.0.1:{settings.server.port}", timeout=60) as c:
            assert c.post("/v1/collections", json={"name": "office"}, headers=admin).status_code == 201
            home = c.post("/v1/people", json={"name": "Tony"}, headers=admin).json()["id"]
            c.post(f"/v1/people/{home}/faces", files=files(*photos("Tony_Blair")[:3]), headers=admin)
            made = c.post(
                "/v1/keys", json={"name": "office kiosk", "scopes": ["admin"], "collections": ["office"]}, headers=admin
            ).json()
            assert made["collections"] == ["office"]
            kiosk = {"X-API-Key": made["secret"]}
            probe = files(photos("Tony_Blair")[3], field="image")
            assert c.post("/v1/recognize?collection=office&threshold=-1", files=probe, headers=kiosk).status_code == 200
            for call in (
                c.post("/v1/recognize?threshold=-1", files=probe, headers=kiosk),  # the default collection
                c.get("/v1/people", headers=kiosk),
                c.get(f"/v1/people/{home}", headers=kiosk),
                c.post("/v1/collections", json={"name": "mine"}, headers=kiosk),
                c.delete("/v1/collections/office", headers=kiosk),
                c.get("/v1/keys", headers=kiosk),
            ):
                assert_problem(call, 403, "collection_forbidden")
            assert c.post("/v1/people?collection=office", json={"name": "Ada"}, headers=kiosk).status_code == 201
            assert [x["name"] for x in c.get("/v1/collections", headers=kiosk).json()] == ["office"]
            assert [x["name"] for x in c.get("/v1/collections", headers=admin).json()] == ["default", "office"]

        async def stream(collection: str, then: dict | None = None) -> list[str]:
            url = f"ws://127.0.0.1:{settings.server.port}/v1/stream?collection={collection}"
            async with websockets.connect(url, additional_headers=kiosk) as ws:
                seen = [json.loads(await ws.recv()).get("code", "ready")]
                if then is not None and seen == ["ready"]:
                    await ws.send(json.dumps(then))
                    seen.append(json.loads(await ws.recv()).get("code", "ready"))
                return seen

        assert asyncio.run(stream("default")) == ["collection_forbidden"]
        assert asyncio.run(stream("office", {"type": "options", "collection": "default"})) == [
            "ready",
            "collection_forbidden",
        ]
