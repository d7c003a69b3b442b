"""Enrolment you can trust: one person per enrolment, no strongly turned faces, and a report of how
distinct the new person is from everyone already enrolled. A real server on loopback, real photos.

The server runs with ``enrol_max_yaw = 30`` so that a committed photo is beyond it:
Hugo_Chavez_0003, a three-quarter view, measures 35.4 degrees (the default limit, 40, takes it).
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from api_server import files, free_port, running_server
from conftest import photos
from facegate.config import Settings
from facegate.gallery.decision import DecisionPolicy
from facegate.service.enrolment import Enrolment

PROBLEM = "application/problem+json"
TURNED = photos("Hugo_Chavez")[2]  # Hugo_Chavez_0003: yaw 35.4


@pytest.fixture(scope="module")
def server(tmp_path_factory, engine):
    engine.warmup()
    db = tmp_path_factory.mktemp("trust") / "facegate.db"
    settings = Settings().with_values(port=free_port(), database_url=f"sqlite:///{db}", enrol_max_yaw=30.0)
    with running_server(settings) as app:
        yield app, f"http://127.0.0.1:{settings.server.port}"


@pytest.fixture()
def client(server):
    with httpx.Client(base_url=server[1], timeout=120) as c:
        yield c


@pytest.fixture()
def collection(client, request):
    """A fresh collection per test, so each test's gallery holds only the people it enrolled."""
    name = request.node.name.replace("test_", "")[:60].replace("[", "-").replace("]", "")
    assert client.post("/v1/collections", json={"name": name}).status_code == 201
    return name


def new_person(client, name: str, collection: str) -> str:
    created = client.post("/v1/people", json={"name": name}, params={"collection": collection})
    assert created.status_code == 201, created.text
    return created.json()["id"]


def add(client, pid: str, paths: list[Path], collection: str) -> httpx.Response:
    return client.post(f"/v1/people/{pid}/faces", files=files(*paths), params={"collection": collection})


def templates(client, pid: str, collection: str) -> int:
    return client.get(f"/v1/people/{pid}", params={"collection": collection}).json()["template_count"]


def test_two_peoples_photos_in_one_enrolment_are_refused_whole(client, collection):
    pid = new_person(client, "Colin", collection)
    colin, tony = photos("Colin_Powell"), photos("Tony_Blair")
    refused = add(client, pid, [colin[0], colin[1], tony[0], colin[2]], collection)
    assert refused.status_code == 422, refused.text
    assert refused.headers["content-type"].startswith(PROBLEM)
    body = refused.json()
    assert body["code"] == "mixed_identities"
    assert body["photos"] == [tony[0].name]  # the odd one out, by its file name
    assert tony[0].name in body["detail"]
    assert body["threshold"] == pytest.approx(DecisionPolicy().threshold, abs=0.2)
    pairs = {(p["a"], p["b"]): p for p in body["pairs"]}
    assert len(pairs) == 6  # every pair of the four photos
    assert not pairs[(colin[0].name, tony[0].name)]["same"] and pairs[(colin[0].name, colin[1].name)]["same"]
    assert templates(client, pid, collection) == 0  # nothing half-written

    # two photos of two people: neither is "the" person, both are named
    both = add(client, pid, [colin[0], tony[0]], collection)
    assert both.status_code == 422 and both.json()["photos"] == [colin[0].name, tony[0].name]


def test_a_stranger_is_not_added_to_an_enrolled_person(client, collection):
    pid = new_person(client, "Colin", collection)
    assert add(client, pid, photos("Colin_Powell")[:2], collection).status_code == 201
    stranger = photos("Tony_Blair")[1]
    refused = add(client, pid, [stranger], collection)
    assert refused.status_code == 422 and refused.json()["code"] == "mixed_identities"
    assert refused.json()["photos"] == [stranger.name]
    # and the same person's other photos are taken: they match the stored templates
    assert add(client, pid, photos("Colin_Powell")[2:], collection).status_code == 201
    assert templates(client, pid, collection) == 4


def test_genuine_photos_that_miss_the_pairwise_threshold_are_linked_by_the_others(engine):
    # George_W_Bush_0004 is below the threshold with 0001 and 0003, yet matches 0002: one person
    policy = DecisionPolicy.for_model(engine.model_id)
    enrolment = Enrolment(None, None, engine, False, policy)  # check_identity needs only the policy
    faces = [(p.name, engine.analyze(p, max_faces=1)[0].embedding) for p in photos("George_W_Bush")]
    check = enrolment.check_identity(faces)
    assert any(not p.same for p in check.pairs)
    assert check.one_person
    stranger = photos("Tony_Blair")[0]
    mixed = enrolment.check_identity([*faces, (stranger.name, engine.analyze(stranger, max_faces=1)[0].embedding)])
    assert mixed.disagreeing == (stranger.name,)


def test_a_strongly_turned_face_is_refused(client, collection):
    pid = new_person(client, "Hugo", collection)
    refused = add(client, pid, [TURNED], collection)
    assert refused.status_code == 422, refused.text
    assert refused.json()["code"] == "face_turned" and "35 degrees" in refused.json()["detail"]
    taken = add(client, pid, photos("Hugo_Chavez")[:3], collection)
    assert taken.status_code == 201, taken.text
    report = {f["source"]: f for f in taken.json()["files"]}
    assert report[TURNED.name]["status"] == "skipped" and report[TURNED.name]["code"] == "face_turned"
    assert taken.json()["added"] == 2


def test_every_enrolment_reports_the_closest_person_and_warns_of_a_lookalike(client, collection):
    first = add(client, new_person(client, "Colin", collection), photos("Colin_Powell")[:2], collection).json()
    assert first["closest"] is None and first["warnings"] == []  # nobody else yet

    tony = add(client, new_person(client, "Tony", collection), photos("Tony_Blair")[:2], collection).json()
    assert tony["closest"]["name"] == "Colin" and not tony["closest"]["confusable"]
    assert tony["closest"]["similarity"] < tony["threshold"] and tony["warnings"] == []

    # the same man enrolled a second time under another name
    twice = add(client, new_person(client, "General Powell", collection), photos("Colin_Powell")[2:], collection)
    assert twice.status_code == 201, twice.text
    body = twice.json()
    assert body["closest"]["name"] == "Colin" and body["closest"]["confusable"]
    assert body["closest"]["similarity"] >= body["threshold"]
    [warning] = body["warnings"]
    assert warning["code"] == "similar_person" and warning["name"] == "Colin"
    assert warning["person_id"] == body["closest"]["person_id"] and "Colin" in warning["detail"]


def test_the_dry_run_says_whether_shots_are_one_person(client):
    colin, tony = photos("Colin_Powell"), photos("Tony_Blair")
    same = client.post("/v1/enroll/check", files=files(colin[0], colin[1]))
    assert same.status_code == 200, same.text
    assert same.json()["one_person"] and same.json()["pairs"][0]["same"] and same.json()["max_yaw"] == 30.0
    mixed = client.post("/v1/enroll/check", files=files(colin[0], colin[1], tony[0])).json()
    assert not mixed["one_person"] and mixed["disagreeing"] == [tony[0].name]
    turned = client.post("/v1/enroll/check", files=files(TURNED)).json()
    assert turned["files"][0]["code"] == "face_turned" and not turned["files"][0]["usable"]
    assert client.get("/v1/people").json()["total"] == 0  # nothing was written
    empty = client.post("/v1/enroll/check", json={"images": []})
    assert empty.status_code == 422 and empty.json()["code"] == "image_missing"


def zip_of(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def test_zip_enrolment_skips_a_mixed_folder_and_warns_of_a_lookalike(client, collection):
    colin, tony = photos("Colin_Powell"), photos("Tony_Blair")
    archive = zip_of(
        {
            "Colin/1.jpg": colin[0].read_bytes(),
            "Colin/2.jpg": colin[1].read_bytes(),
            "Mixed/1.jpg": tony[0].read_bytes(),
            "Mixed/2.jpg": photos("Hugo_Chavez")[0].read_bytes(),
            "Powell/1.jpg": colin[2].read_bytes(),
        }
    )
    sent = client.post(
        "/v1/enroll/zip", files={"archive": ("a.zip", archive, "application/zip")}, params={"collection": collection}
    )
    assert sent.status_code == 200, sent.text
    report = sent.json()
    codes = {f["source"]: f["code"] for f in report["files"]}
    assert codes["Mixed/1.jpg"] == codes["Mixed/2.jpg"] == "mixed_identities"
    assert report["people_created"] == 2 and report["templates_added"] == 3  # Colin and Powell; Mixed not at all
    names = {p["name"] for p in client.get("/v1/people", params={"collection": collection}).json()["items"]}
    assert names == {"Colin", "Powell"}
    assert {(w["code"], w["name"]) for w in report["warnings"]} == {
        ("similar_person", "Colin"),
        ("similar_person", "Powell"),
    }


def test_cli_enrol_prints_the_closest_person_and_the_warning(tmp_path):
    from facegate.cli import app

    db = f"sqlite:///{tmp_path / 'cli.db'}"
    runner = CliRunner()
    first = runner.invoke(app, ["enroll", "Colin", *map(str, photos("Colin_Powell")[:2]), "--db", db])
    assert first.exit_code == 0, first.output
    assert "closest other person: none" in first.stdout
    again = runner.invoke(app, ["enroll", "Powell", *map(str, photos("Colin_Powell")[2:]), "--db", db])
    assert again.exit_code == 0, again.output
    assert "closest other person: Colin (similarity 0.9" in again.stdout
    assert "warning [similar_person]" in again.stderr
    mixed = runner.invoke(
        app, ["enroll", "Tony", str(photos("Tony_Blair")[0]), str(photos("Hugo_Chavez")[0]), "--db", db]
    )
    assert mixed.exit_code == 2 and "mixed_identities" in mixed.stderr
